"""The network stream under a check: read, write, start_tls, close (httpcore's layer).

Job: wrap one asyncio transport in four calls the session needs, built on a plain
``asyncio.Protocol`` so the read buffer is ours. That matters for STLS: before the
handshake we can prove nothing unread is buffered (anything there is an injection).
Rule: no POP3 knowledge here; deadlines are the caller's (``asyncio.timeout_at``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from contextlib import suppress
from typing import cast

from pop3watch.errors import StarttlsInjection

# Reading pauses once this much is buffered; the protocol core stops far earlier.
_HIGH_WATER = 256 * 1024


class StreamProtocol(asyncio.Protocol):
    """Buffers received bytes and wakes one reader."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # perf_counter() stamps taken in the callbacks themselves, straight from the poll,
        # so timings do not include however long the event loop takes to resume a task.
        self.connected_at = 0.0
        self.received_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connected_at = time.perf_counter()
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_at = time.perf_counter()
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None and not self._paused:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_readable(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        if self._paused and self.transport is not None:
            self.transport.resume_reading()
            self._paused = False
        return data


class Stream:
    """One connection: plain at first, TLS after ``start_tls``."""

    def __init__(self, transport: asyncio.Transport, protocol: StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    @property
    def peer_address(self) -> str | None:
        peer = self._transport.get_extra_info("peername")
        return str(peer[0]) if peer else None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self._transport.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    @property
    def connected_at(self) -> float:
        """``time.perf_counter()`` when the TCP connection was established."""
        return self._protocol.connected_at

    @property
    def received_at(self) -> float:
        """``time.perf_counter()`` when the last bytes arrived."""
        return self._protocol.received_at

    @property
    def buffered(self) -> int:
        """Bytes received and not read yet."""
        return len(self._protocol.buffer)

    async def read(self) -> bytes:
        """Whatever has arrived (at least one byte), or ``b""`` once the peer closed.

        Raises the transport's error (e.g. ConnectionResetError) if it died abnormally.
        """
        protocol = self._protocol
        while not protocol.buffer:
            if protocol.eof:
                if protocol.error is not None:
                    raise protocol.error
                return b""
            await protocol.wait_readable()
        return protocol.take()

    def write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ConnectionResetError("the connection is already closed")
        try:
            self._transport.write(data)
        except RuntimeError as exc:  # uvloop: the handle is closed
            raise ConnectionResetError("the connection is already closed") from exc

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """Upgrade to TLS in place. Raises StarttlsInjection if unread bytes are buffered."""
        if self._protocol.buffer:
            raise StarttlsInjection(
                f"{len(self._protocol.buffer)} octets were waiting before the handshake"
            )
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self._transport, self._protocol, context, server_hostname=server_hostname
        )
        if transport is None:  # pragma: no cover - only for protocols without TLS support
            raise ssl.SSLError("the event loop could not start TLS")
        self._transport = transport
        self._protocol.transport = transport

    async def aclose(self, grace_s: float = 1.0) -> None:
        """Orderly close (TLS close_notify included), aborted after ``grace_s``."""
        if not self._transport.is_closing():
            with suppress(RuntimeError):
                self._transport.close()
        try:
            async with asyncio.timeout(grace_s):
                await asyncio.shield(self._protocol.closed)
        except TimeoutError:
            self.abort()

    def close(self) -> None:
        """Close without waiting for the peer (plain TCP has nothing to wait for)."""
        with suppress(RuntimeError):
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once (after a timeout or a protocol violation).

        Safe on a transport that is already gone: uvloop raises RuntimeError there (for
        instance after a failed TLS handshake closed it).
        """
        with suppress(RuntimeError):
            self._transport.abort()
