"""Happy Eyeballs over the raw-socket stream: the first address that answers wins, the
address used is reported, and when none answers every reason is named."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pop3watch.errors import ConnectFailed
from pop3watch.probe.connect import open_stream


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """An IPv4 loopback listener; the same port on ::1 has nobody listening."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def _free_port() -> int:
    probe = socket.create_server(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


async def test_refused_first_address_falls_through_to_the_next(listener: socket.socket) -> None:
    port = int(listener.getsockname()[1])
    stream = await open_stream(["::1", "127.0.0.1"], port)
    try:
        assert stream.address == "127.0.0.1"
        assert stream.connect_started_at <= stream.established_at <= stream.connected_at
    finally:
        stream.close()


async def test_no_address_answers_names_every_reason() -> None:
    port = _free_port()
    with pytest.raises(ConnectFailed) as caught:
        await open_stream(["::1", "127.0.0.1"], port)
    message = str(caught.value)
    assert "::1" in message
    assert "127.0.0.1" in message
    assert "refused" in message.lower()


async def test_single_address_refused_is_connect_failed() -> None:
    with pytest.raises(ConnectFailed, match="Connection refused"):
        await open_stream(["127.0.0.1"], _free_port())
