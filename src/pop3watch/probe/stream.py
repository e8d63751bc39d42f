"""The network stream under a check: connect, read, write, start_tls, close (httpcore's layer).

Job: one non-blocking socket driven by the event loop's reader/writer callbacks, with TLS
as an ``ssl.SSLObject`` over memory BIOs. Rule: no POP3 knowledge here; deadlines are the
caller's (``pop3watch.aio.Deadline``).

Why not an asyncio transport:
- every read is a ``recvmsg()`` carrying the kernel's receive timestamp (SO_TIMESTAMPNS),
  so the response time is measured from packets, not from whenever a busy event loop got
  round to the callback (a monitor under load must not report its own queueing as the
  server's slowness);
- the read buffer is ours, so before STLS we can prove nothing unread is buffered
  (anything there is a response injection);
- fewer objects per check: no transport, protocol or SSL protocol machinery.

Two ways to learn readiness: ``Stream`` asks the event loop (``add_reader`` and
``add_writer``, level-triggered, portable); on Linux ``EpollStream`` registers the socket
once in the loop's shared edge-triggered epoll set (``probe.poller``) and never again.
``stream_class()`` says which one a connection gets.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import struct
import sys
import time
from contextlib import suppress

from pop3watch.aio import Deadline
from pop3watch.errors import StarttlsInjection
from pop3watch.probe import poller as _poller

# Reading pauses once this much is buffered; the protocol core stops far earlier.
_HIGH_WATER = 256 * 1024
_RECV_SIZE = 64 * 1024

# SO_TIMESTAMPNS (Linux, 64-bit): each recvmsg() carries a struct timespec of the
# packet's arrival on CLOCK_REALTIME. Elsewhere reads are stamped when they are read.
_TIMESPEC = struct.Struct("qq")
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" and struct.calcsize("l") == 8 else None
_ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size) if _SO_TIMESTAMPNS is not None else 0
# What a read says may be left in the kernel (Stream._read_once).
_DONE, _SHORT, _FULL = 0, 1, 2
_RESET_AFTER_ACCEPT = frozenset({errno.ECONNRESET, errno.EPIPE})
_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR})
# A kernel stamp older than this (or in the future) means the wall clock stepped.
_MAX_STAMP_AGE_NS = 10 * 1_000_000_000
# struct tcp_info (Linux): tcpi_state is byte 0, tcpi_rtt (microseconds) a u32 at 68,
# tcpi_total_retrans a u32 at 100.
_TCPI_U32 = struct.Struct("I")
_TCPI_RTT_OFFSET = 68
_TCPI_TOTAL_RETRANS_OFFSET = 100
_TCPI_SIZE = 104
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_TCP_ESTABLISHED = 1
# Created non-blocking: one system call fewer than setblocking(False) afterwards.
_SOCK_TYPE = socket.SOCK_STREAM | getattr(socket, "SOCK_NONBLOCK", 0)


def parse_tcp_info(info: bytes) -> tuple[int, float | None]:
    """(tcpi_state, the handshake's round trip in seconds) from a struct tcp_info.

    The round trip is None when the kernel has no sample, or when a SYN was retransmitted:
    the sample then covers the last SYN only, and the connection came up a retransmission
    timeout later than connect start + RTT would say.
    """
    if len(info) < _TCPI_SIZE:  # pragma: no cover - kernels before 2.6
        return (info[0] if info else 0), None
    micros: int = _TCPI_U32.unpack_from(info, _TCPI_RTT_OFFSET)[0]
    retransmitted: int = _TCPI_U32.unpack_from(info, _TCPI_TOTAL_RETRANS_OFFSET)[0]
    if not micros or retransmitted:
        return info[0], None
    return info[0], micros / 1e6


def _tcp_info(sock: socket.socket) -> tuple[int, float | None]:
    """``parse_tcp_info`` of the socket; (0, None) where the kernel does not tell."""
    if _TCP_INFO is None:
        return 0, None
    try:
        return parse_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCPI_SIZE))
    except OSError:  # pragma: no cover - every Linux since 2.4 answers
        return 0, None


class Stream:
    """One connection: plain at first, TLS after ``start_tls``.

    Time stamps are ``time.perf_counter()`` values:
    - ``connect_started_at``: just before the connect() system call;
    - ``established_at``: when the TCP handshake completed (connect start + the round
      trip the kernel measured), independent of when the event loop noticed;
    - ``received_at``: when the packet behind the last read arrived (kernel stamp);
    - ``ready_at``: when the server could start speaking: ``established_at``, and after
      ``start_tls`` the end of the TLS handshake (TLS 1.3: when our Finished left, the
      server answers it; TLS 1.2: when the server's Finished arrived, its last word).
    """

    # Slots: thousands of streams are made a second, and every attribute is hot.
    __slots__ = (
        "_buffer",
        "_closed",
        "_eof",
        "_error",
        "_fd",
        "_handshake_rtt",
        "_incoming",
        "_loop",
        "_out",
        "_outgoing",
        "_reading",
        "_sock",
        "_ssl",
        "_tls_ready",
        "_waiter",
        "_writing",
        "address",
        "connect_started_at",
        "connected_at",
        "established_at",
        "ready_at",
        "received_at",
    )

    def __init__(self, sock: socket.socket, address: str, connect_started_at: float) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = asyncio.get_running_loop()
        self.address = address
        self.connect_started_at = connect_started_at
        self.connected_at = 0.0
        self.established_at = 0.0
        self._handshake_rtt: float | None = None
        self.received_at = 0.0
        self.ready_at = 0.0
        self._buffer = bytearray()
        self._out = bytearray()
        self._eof = False
        self._error: OSError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading = False
        self._writing = False
        self._closed = False
        self._ssl: ssl.SSLObject | None = None
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
        self._tls_ready = False

    # --- opening ----------------------------------------------------------------------

    @classmethod
    async def connect(cls, ip: str, port: int) -> Stream:
        """A TCP connection to one address. Raises OSError when it cannot be made.

        connect() is issued here rather than through ``loop.sock_connect``, which resolves
        the address again (uvloop) and would let time pass between the stamp and the call.
        """
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, _SOCK_TYPE)
        stream: Stream | None = None
        try:
            if _SOCK_TYPE == socket.SOCK_STREAM:  # pragma: no cover - no SOCK_NONBLOCK
                sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if _SO_TIMESTAMPNS is not None:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            stream = cls(sock, ip, time.perf_counter())
            code = sock.connect_ex((ip, port))
            if code in _IN_PROGRESS:
                await stream._connected()
            elif code:
                raise OSError(code, os.strerror(code))
            stream._established()
            return stream
        except BaseException:
            if stream is not None:
                stream.close()
            else:
                sock.close()
            raise

    async def _connected(self) -> None:
        """Wait for the non-blocking connect() to finish; raise its error if it failed."""
        self._loop.add_writer(self._fd, self._wake)
        try:
            await self._wait()
        except BaseException:
            self._drop_writer()
            raise
        state, self._handshake_rtt = _tcp_info(self._sock)
        if state == _TCP_ESTABLISHED:
            # The usual case, told by the same system call as the handshake RTT. Start
            # reading before the writer goes: the event loop then keeps the one
            # registration it has for this socket (uvloop pays several system calls for
            # every new registration and every removal).
            self._resume_reading()
            self._drop_writer()
            return
        self._drop_writer()
        self._not_established()

    def _not_established(self) -> None:
        """After a connect() that did not leave the socket ESTABLISHED: raise its error,
        unless the handshake completed and the server hung up at once (a connection was
        made; the failure belongs to the next phase, as a transport would report it)."""
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in _RESET_AFTER_ACCEPT:
            self._error = OSError(code, os.strerror(code))
            self._eof = True
        elif code:
            raise OSError(code, os.strerror(code))

    def _drop_writer(self) -> None:
        """Forget the connect() writer; uvloop may already have closed a failed socket's
        registration, and says so with RuntimeError."""
        with suppress(RuntimeError):
            self._loop.remove_writer(self._fd)

    def _established(self) -> None:
        self.connected_at = time.perf_counter()
        rtt = self._handshake_rtt
        if rtt is None:
            rtt = _tcp_info(self._sock)[1]
        self.established_at = (
            min(self.connect_started_at + rtt, self.connected_at) if rtt else self.connected_at
        )
        self.ready_at = self.established_at
        self._resume_reading()

    # --- facts ------------------------------------------------------------------------

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS connection once its handshake completed."""
        return self._ssl if self._tls_ready else None

    @property
    def buffered(self) -> int:
        """Bytes received and not read yet."""
        return len(self._buffer)

    # --- reading ----------------------------------------------------------------------

    def _resume_reading(self) -> None:
        if not self._reading and not self._closed and not self._eof:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            with suppress(RuntimeError):  # uvloop: a failed socket's handle is closed
                self._loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        self._read_once()

    def _read_once(self) -> int:
        """One ``recvmsg()``. Says what may be left: ``_DONE`` (nothing: EAGAIN, end of
        stream, an error, or reading paused), ``_SHORT`` (it took less than a whole
        buffer: all there was, unless the peer's FIN came right behind) or ``_FULL``."""
        try:
            data, ancillary, _flags, _addr = self._sock.recvmsg(_RECV_SIZE, _ANC_SIZE)
        except (BlockingIOError, InterruptedError):
            return _DONE
        except OSError as exc:
            self._fail(exc)
            return _DONE
        if not data:
            self._eof = True  # not stamped: received_at is when the last *bytes* came
            self._pause_reading()
            self._wake()
            return _DONE
        self.received_at = self._stamp(ancillary)
        if self._ssl is None:
            self._buffer += data
        else:
            assert self._incoming is not None
            self._incoming.write(data)
            if self._tls_ready:
                self._decrypt()
        if len(self._buffer) > _HIGH_WATER:
            self._pause_reading()
        self._wake()
        if not self._reading:
            return _DONE
        return _FULL if len(data) == _RECV_SIZE else _SHORT

    @staticmethod
    def _stamp(ancillary: list[tuple[int, int, bytes]]) -> float:
        """The packet's arrival on the perf_counter() clock (now, without a kernel stamp)."""
        now = time.perf_counter()
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                seconds, nanos = _TIMESPEC.unpack_from(payload)
                age_ns = time.time_ns() - (seconds * 1_000_000_000 + nanos)
                if 0 <= age_ns < _MAX_STAMP_AGE_NS:
                    return float(now - age_ns / 1e9)
        return now

    def _decrypt(self) -> None:
        """Move every decrypted byte from the TLS object into the read buffer."""
        sslobj = self._ssl
        assert sslobj is not None
        while True:
            try:
                chunk = sslobj.read(_RECV_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True  # close_notify, or the transport ended
                break
            except ssl.SSLError as exc:
                self._fail(exc)
                break
            if not chunk:
                self._eof = True
                break
            self._buffer += chunk
        self._flush_tls()  # TLS 1.3 may answer post-handshake messages

    def _fail(self, exc: OSError) -> None:
        self._error = exc
        self._eof = True
        self._pause_reading()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read(self) -> bytes:
        """Whatever has arrived (at least one byte), or ``b""`` once the peer closed.

        Raises the connection's error (e.g. ConnectionResetError) if it died abnormally.
        """
        while not self._buffer:
            if self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            # _wait() inlined: this is the hottest await of a check.
            self._waiter = waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer)
        self._buffer.clear()
        self._resume_reading()
        return data

    # --- writing ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the peer. Errors surface on the next read, as from a transport."""
        if self._closed:
            raise ConnectionResetError("the connection is already closed")
        if self._ssl is not None:
            try:
                self._ssl.write(data)
            except ssl.SSLError as exc:
                self._fail(exc)
                return
            self._flush_tls()
        else:
            self._send(data)

    def _flush_tls(self) -> None:
        outgoing = self._outgoing
        if outgoing is not None and outgoing.pending:
            self._send(outgoing.read())

    def _send(self, data: bytes) -> None:
        if self._closed or self._error is not None:
            return
        if self._out:
            self._out += data
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        if sent < len(data):
            self._out += data[sent:]
            self._watch_writable()

    def _watch_writable(self) -> None:
        """Call ``_on_writable`` once the kernel takes more."""
        if not self._writing:
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._out.clear()
            self._stop_writing()
            self._fail(exc)
            return
        del self._out[:sent]
        if not self._out:
            self._stop_writing()
            self._wake()

    def _stop_writing(self) -> None:
        if self._writing:
            self._writing = False
            with suppress(RuntimeError):  # as in _pause_reading
                self._loop.remove_writer(self._fd)

    # --- TLS --------------------------------------------------------------------------

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """Upgrade to TLS in place. Raises StarttlsInjection if unread bytes are buffered,
        the SSLError of a failed handshake, or ConnectionResetError if the peer left."""
        if self._buffer:
            raise StarttlsInjection(f"{len(self._buffer)} octets were waiting before the handshake")
        if self._eof:
            raise self._error or ConnectionResetError("the server closed the connection")
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_tls()
                if self._eof:
                    raise self._error or ConnectionResetError(
                        "the server closed the connection during the TLS handshake"
                    ) from None
                await self._wait()
        finished_sent_at = time.perf_counter()
        self._flush_tls()  # our Finished (TLS 1.3): the server speaks once it has it
        if self._ssl.version() == "TLSv1.3":
            self.ready_at = finished_sent_at
        else:
            self.ready_at = self.received_at or finished_sent_at
        self._tls_ready = True
        self._decrypt()  # application data that arrived with the handshake's last flight

    # --- closing ----------------------------------------------------------------------

    async def aclose(self, grace_s: float = 1.0) -> None:
        """Orderly close: TLS close_notify, then wait (at most ``grace_s``) for the peer
        to close, so its last bytes do not meet a closed socket and draw a reset.

        A peer that has already closed (after QUIT, POP3 servers do) gets no close_notify:
        it would only meet a closed socket and come back as a reset.
        """
        if self._closed:
            return
        if self._eof and not self._out:
            self.close()
            return
        if self._ssl is not None and self._tls_ready:
            with suppress(ssl.SSLError):
                self._ssl.unwrap()
            self._flush_tls()
        try:
            with Deadline(self._loop, self._loop.time() + grace_s):
                while not self._eof or self._out:
                    self._buffer.clear()
                    self._resume_reading()
                    await self._wait()
        except TimeoutError:
            pass
        self.close()

    def close(self) -> None:
        """Close without waiting for the peer (plain TCP has nothing to wait for)."""
        if self._closed:
            return
        self._closed = True
        self._pause_reading()
        self._stop_writing()
        self._sock.close()
        self._wake()

    def abort(self) -> None:
        """Drop the connection at once (after a timeout or a protocol violation)."""
        self.close()


class EpollStream(Stream):
    """A ``Stream`` whose readiness comes from the loop's shared edge-triggered epoll set.

    The socket is registered once, before connect(), for every event it can need, and
    is never modified or removed (``close()`` drops it from the set). Edge-triggered:
    reads go on until a short read, and an edge that arrives while reading is paused
    (connecting, or back-pressure) is remembered and served on resume.
    """

    __slots__ = ("_connecting", "_missed", "_poller")

    def __init__(self, sock: socket.socket, address: str, connect_started_at: float) -> None:
        super().__init__(sock, address, connect_started_at)
        self._connecting = False
        self._missed = 0  # read event bits seen while not reading (see _drain)
        self._poller = _poller.poller_for(self._loop)
        self._poller.register(self._fd, self._on_event)

    def _on_event(self, mask: int) -> None:
        if self._closed:
            return
        if self._connecting:
            if mask & _poller.WRITE_EVENTS:
                self._wake()
            self._missed |= mask & _poller.READ_EVENTS
            return
        if mask & _poller.READ_EVENTS:
            if self._reading:
                self._drain(mask)
            else:
                self._missed |= mask & _poller.READ_EVENTS
        if mask & _poller.OUT and self._writing:
            self._on_writable()

    def _drain(self, mask: int) -> None:
        """Read until this edge is used up. A short read is the end of it, unless the
        event also said the peer closed or failed: the FIN (or error) can sit right
        behind the data and would get no edge of its own, so read on to the end."""
        to_the_end = bool(mask & _poller.END_EVENTS)
        while True:
            left = self._read_once()
            if left == _DONE or (left == _SHORT and not to_the_end):
                return

    async def _connected(self) -> None:
        self._connecting = True
        try:
            await self._wait()
        finally:
            self._connecting = False
        state, self._handshake_rtt = _tcp_info(self._sock)
        if state != _TCP_ESTABLISHED:
            self._not_established()

    def _resume_reading(self) -> None:
        if not self._reading and not self._closed and not self._eof:
            self._reading = True
            missed, self._missed = self._missed, 0
            if missed:
                self._drain(missed)

    def _pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            # Bytes may stay queued with no new edge to announce them: on resume, read
            # until the kernel says there is nothing left.
            self._missed |= _poller.READ_EVENTS

    def _watch_writable(self) -> None:
        self._writing = True

    def _stop_writing(self) -> None:
        self._writing = False

    def close(self) -> None:
        if not self._closed:
            self._poller.forget(self._fd)
        super().close()


def stream_class() -> type[Stream]:
    """The stream every check connects with: ``EpollStream`` where epoll exists."""
    return EpollStream if _poller.AVAILABLE else Stream
