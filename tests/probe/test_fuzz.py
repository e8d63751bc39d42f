"""Whatever a server sends, the check returns a typed result and never raises."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3watch.errors import ERROR_CODES
from pop3watch.probe import CheckSettings, check_pop3

PREFIXES = [b"", b"+OK hi <a@b>\r\n", b"+OK hi\r\n+OK\r\n", b"+OK hi\r\n+OK caps\r\nSTLS\r\n"]


async def serve_once(payload: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(payload)
            await writer.drain()
            await asyncio.wait_for(reader.read(65536), 0.2)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.binary(max_size=2048),
    tls=st.sampled_from(["none", "starttls"]),
)
def test_arbitrary_server_bytes_give_a_typed_result(prefix: bytes, body: bytes, tls: str) -> None:
    async def main() -> None:
        server, port = await serve_once(prefix + body)
        try:
            result = await check_pop3(
                CheckSettings(host="127.0.0.1", port=port, tls=tls, timeout=2, verify=False)
            )
        finally:
            server.close()
            await server.wait_closed()
        if result.error is not None:
            assert result.error.code in ERROR_CODES
            assert result.error.phase is not None

    asyncio.run(main())
