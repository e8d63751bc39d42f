"""The raw-socket stream under every check: kernel receive stamps, writes under
back-pressure, end of stream, resets, refused
connections. Runs on both event loops (see conftest)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress

import pytest

from pop3watch.probe.stream import EpollStream, Stream, parse_tcp_info
from tests.fixtures.certs import CertBundle

ServerFn = Callable[[socket.socket], None]


@pytest.fixture(params=[Stream, EpollStream], ids=["loop-callbacks", "epoll"])
def stream_cls(request: pytest.FixtureRequest) -> type[Stream]:
    """Both ways a stream learns readiness: the event loop's reader and writer
    callbacks (portable), and the shared edge-triggered epoll set (Linux)."""
    cls: type[Stream] = request.param
    return cls


@pytest.fixture
def serve() -> Iterator[Callable[[ServerFn], tuple[str, int]]]:
    """Start a one-connection server thread running ``fn(conn)``; returns its address."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(fn: ServerFn) -> tuple[str, int]:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                fn(conn)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        host, port = listener.getsockname()[:2]
        return str(host), int(port)

    yield start
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(timeout=5)


def _recv_all(conn: socket.socket, size: int, pace_s: float = 0.0) -> int:
    got = 0
    while got < size:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += len(chunk)
        if pace_s:
            time.sleep(pace_s)
    return got


async def test_read_is_stamped_when_the_packet_arrived_not_when_the_loop_looked(
    serve: Callable[[ServerFn], tuple[str, int]],
    stream_cls: type[Stream],
) -> None:
    def greet_late(conn: socket.socket) -> None:
        time.sleep(0.1)
        conn.sendall(b"+OK late\r\n")
        conn.recv(100)

    host, port = serve(greet_late)
    stream = await stream_cls.connect(host, port)
    try:
        assert stream.connect_started_at <= stream.established_at <= stream.connected_at
        time.sleep(0.4)  # the event loop is stuck while the greeting arrives at ~100 ms
        read_at = time.perf_counter()
        assert await stream.read() == b"+OK late\r\n"
        waited = stream.received_at - stream.established_at
        assert 0.09 <= waited < 0.3, waited
        assert read_at - stream.received_at > 0.1  # the stamp is older than the read
    finally:
        stream.close()


async def test_large_writes_are_queued_and_drained_under_back_pressure(
    serve: Callable[[ServerFn], tuple[str, int]],
    stream_cls: type[Stream],
) -> None:
    size = 8 * 1024 * 1024  # far beyond the socket buffers: the writer path must drain it

    def slow_reader(conn: socket.socket) -> None:
        got = _recv_all(conn, size, pace_s=0.0005)
        conn.sendall(f"+OK {got}\r\n".encode())

    host, port = serve(slow_reader)
    stream = await stream_cls.connect(host, port)
    try:
        stream.write(b"x" * (size // 2))
        stream.write(b"y" * (size // 2))
        async with asyncio.timeout(30):
            assert await stream.read() == f"+OK {size}\r\n".encode()
    finally:
        stream.close()


async def test_reads_resume_after_back_pressure_and_nothing_is_lost(
    serve: Callable[[ServerFn], tuple[str, int]],
    stream_cls: type[Stream],
) -> None:
    """More than the stream buffers before it pauses reading: after each pause the rest
    must still come, although (epoll) no new edge announces bytes already queued."""
    size = 3 * 1024 * 1024

    def flood(conn: socket.socket) -> None:
        conn.sendall(bytes(range(256)) * (size // 256))

    host, port = serve(flood)
    stream = await stream_cls.connect(host, port)
    try:
        await asyncio.sleep(0.3)  # let the stream hit its high-water mark meanwhile
        got = bytearray()
        async with asyncio.timeout(30):
            while chunk := await stream.read():
                got += chunk
                assert stream.buffered <= 512 * 1024  # reading paused, not unbounded
        assert len(got) == size
        assert got == bytes(range(256)) * (size // 256)
    finally:
        stream.close()


async def test_eof_reads_empty_and_write_after_close_raises(
    serve: Callable[[ServerFn], tuple[str, int]],
    stream_cls: type[Stream],
) -> None:
    host, port = serve(lambda conn: conn.sendall(b"+OK bye\r\n"))
    stream = await stream_cls.connect(host, port)
    assert await stream.read() == b"+OK bye\r\n"
    assert await stream.read() == b""
    stream.close()
    with pytest.raises(ConnectionResetError):
        stream.write(b"QUIT\r\n")
    stream.abort()  # closing twice is harmless


async def test_tls_records_and_close_notify_arriving_together_are_all_read(
    serve: Callable[[ServerFn], tuple[str, int]],
    stream_cls: type[Stream],
    certs: CertBundle,
) -> None:
    """Several TLS records and the close_notify behind them land in one read: every
    byte is decrypted and the end of stream is seen (decrypting goes on until OpenSSL
    asks for more, so nothing that has arrived is left inside it)."""

    def server(conn: socket.socket) -> None:
        with certs.good.wrap_socket(conn, server_side=True) as tls:
            time.sleep(0.2)  # the client is idle: all that follows arrives at once
            for line in (b"+OK one\r\n", b"+OK two\r\n", b"+OK three\r\n"):
                tls.sendall(line)  # one record each
            with suppress(ssl.SSLError, OSError):  # the client leaves without its own
                tls.unwrap()

    host, port = serve(server)
    stream = await stream_cls.connect(host, port)
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    await stream.start_tls(context, "localhost")
    await asyncio.sleep(0.4)
    got = b""
    while chunk := await stream.read():
        got += chunk
    assert got == b"+OK one\r\n+OK two\r\n+OK three\r\n"
    stream.close()


async def test_reset_surfaces_as_the_connection_error(
    serve: Callable[[ServerFn], tuple[str, int]],
    stream_cls: type[Stream],
) -> None:
    def reset(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    host, port = serve(reset)
    stream = await stream_cls.connect(host, port)
    try:
        with pytest.raises(ConnectionResetError):
            await stream.read()
    finally:
        stream.close()


async def test_connect_refused_raises_and_leaves_no_socket_behind(
    stream_cls: type[Stream],
) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(ConnectionRefusedError):  # first use: the loop's epoll set is made
        await stream_cls.connect("127.0.0.1", port)
    open_fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ConnectionRefusedError):
        await stream_cls.connect("127.0.0.1", port)
    assert len(os.listdir("/proc/self/fd")) == open_fds  # the socket was closed


def _tcp_info_bytes(state: int, rtt_us: int, total_retrans: int) -> bytes:
    info = bytearray(104)
    info[0] = state
    struct.pack_into("I", info, 68, rtt_us)  # native order, as the kernel writes it
    struct.pack_into("I", info, 100, total_retrans)
    return bytes(info)


@pytest.mark.parametrize(
    ("rtt_us", "retrans", "expected"),
    [
        (250, 0, 0.00025),  # the handshake's round trip, as measured
        (0, 0, None),  # no sample yet
        (250, 1, None),  # a SYN was retransmitted: connect start + RTT would be too early
    ],
)
def test_handshake_rtt_is_trusted_only_without_retransmissions(
    rtt_us: int, retrans: int, expected: float | None
) -> None:
    assert parse_tcp_info(_tcp_info_bytes(1, rtt_us, retrans)) == (1, expected)
