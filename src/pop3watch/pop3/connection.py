"""The sans-IO POP3 client connection: bytes in, events out, commands to bytes.

Job: the whole client side of RFC 1939/2449/2595/5034 as a state machine with no I/O
(h11's ``Connection``). The driver calls ``send(command)`` and writes the bytes, feeds
what it reads to ``receive_data`` and pulls ``next_event()`` until it gets an event.

Rules:
- Every malformed input raises ``ProtocolViolation`` (or ``Disconnected`` for a close in
  the middle of a response) and leaves the connection in ``State.ERROR``: it is never
  reused. No other exception escapes, whatever the bytes.
- Limits (line length, multi-line budget, SASL rounds) are enforced here.
- Bytes the server sent that no command asked for are a violation; after STLS they are an
  injection attack (``start_tls`` raises ``StarttlsInjection``).
"""

from __future__ import annotations

import base64
import binascii

from pop3watch.errors import (
    Disconnected,
    LocalProtocolError,
    Pop3WatchError,
    ProtocolViolation,
    StarttlsInjection,
)
from pop3watch.pop3.apop import find_timestamp
from pop3watch.pop3.commands import Auth, Command, ResponseKind, SaslCancel, SaslResponse, Stls
from pop3watch.pop3.events import (
    NEED_DATA,
    Challenge,
    ConnectionClosed,
    Err,
    Event,
    Greeting,
    MultiLine,
    NeedData,
    Ok,
    split_response_code,
)
from pop3watch.pop3.reader import Limits, LineReader
from pop3watch.pop3.states import ALLOWED, State, after_response


def _text(raw: bytes) -> str:
    """Server text as str; invalid UTF-8 is replaced, never raised (RFC 6856 allows UTF-8)."""
    return raw.decode("utf-8", "replace")


# Built once: these are looked at for every command and response.
_DEFAULT_LIMITS = Limits()
_NOTHING_ALLOWED: frozenset[type[Command]] = frozenset()
_SASL_FOLLOW_UPS = (SaslResponse, SaslCancel)
_SPACE = 0x20


class Pop3Connection:
    """Client-side POP3 protocol state machine."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or _DEFAULT_LIMITS
        self._reader = LineReader(self.limits.max_line)
        self._state = State.AWAIT_GREETING
        self._in_flight: Command | None = None
        self._awaiting_greeting = True
        self._body: list[str] | None = None
        self._body_octets = 0
        self._body_status: tuple[str, str | None] = ("", None)
        self._sasl_rounds = 0
        self._sasl_client_turn = False
        self.tls_active = False

    # --- introspection ------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def awaiting_response(self) -> bool:
        """True while a response (or the greeting) is still owed by the server."""
        return self._awaiting_greeting or (
            self._in_flight is not None and not self._sasl_client_turn
        )

    @property
    def can_quit(self) -> bool:
        """Whether QUIT may be sent now (a session state, nothing pending)."""
        return self._state in ALLOWED and not self.awaiting_response and not self._sasl_client_turn

    @property
    def needs_data(self) -> bool:
        """True when ``next_event()`` could only answer NEED_DATA: nothing unread, the
        stream still open, no error. A driver checks this instead of asking, which
        saves a round through the parser before nearly every read."""
        reader = self._reader
        return not reader.pending and not reader.eof and self._state is not State.ERROR

    @property
    def pending_octets(self) -> int:
        """Bytes received and not yet consumed; non-zero between responses means trouble."""
        return self._reader.pending

    # --- client side ------------------------------------------------------------------

    def send(self, command: Command) -> bytes:
        """Check that ``command`` is allowed now and return its wire bytes.

        Raises LocalProtocolError for a command out of order or with unsafe arguments
        (nothing is sent), ProtocolViolation if the server sent bytes nobody asked for.
        """
        if self._state is State.ERROR:
            raise LocalProtocolError("the connection is dead after a protocol error")
        if self._sasl_client_turn:
            if not isinstance(command, _SASL_FOLLOW_UPS):
                raise LocalProtocolError(f"{command.verb} sent in the middle of a SASL exchange")
            if self._reader.pending:
                # After a challenge the server waits for our answer; anything more it
                # sent would be taken as the reply to an answer it has not seen.
                self._fail()
                raise ProtocolViolation(
                    f"server sent {self._reader.pending} octets after its SASL challenge"
                )
            data = command.encode()
            self._sasl_client_turn = False
            self._in_flight = command
            return data
        if self.awaiting_response:
            raise LocalProtocolError(f"{command.verb} sent while a response is still pending")
        if isinstance(command, _SASL_FOLLOW_UPS):
            raise LocalProtocolError("SASL response sent outside a SASL exchange")
        if type(command) not in ALLOWED.get(self._state, _NOTHING_ALLOWED):
            raise LocalProtocolError(f"{command.verb} is not allowed in state {self._state.value}")
        if isinstance(command, Stls) and self.tls_active:
            raise LocalProtocolError("STLS after TLS is already active")
        if self._reader.pending:
            self._fail()
            raise ProtocolViolation(f"server sent {self._reader.pending} octets nobody asked for")
        data = command.encode()  # may raise LocalProtocolError: state is untouched then
        self._in_flight = command
        self._sasl_rounds = 0
        return data

    def start_tls(self) -> None:
        """Call after STLS got +OK, right before the TLS handshake.

        Raises StarttlsInjection if the server sent anything after its +OK: those bytes
        were sent in clear text and would otherwise be read as if they came over TLS.
        """
        if self._state is not State.TLS_PENDING:
            raise LocalProtocolError("start_tls() without an accepted STLS")
        if self._reader.pending:
            self._fail()
            raise StarttlsInjection(f"{self._reader.pending} octets")
        self._reader = LineReader(self.limits.max_line)
        self._state = State.AUTHORIZATION
        self.tls_active = True

    # --- server side ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the server; ``b""`` means the server closed."""
        if self._state is not State.ERROR:
            self._reader.feed(data)

    def next_event(self) -> Event | NeedData:
        """The next complete event, or NEED_DATA. Raises the typed errors described above."""
        if self._state is State.ERROR:
            raise LocalProtocolError("the connection is dead after a protocol error")
        try:
            return self._next_event()
        except Pop3WatchError:
            self._fail()
            raise

    def _fail(self) -> None:
        self._state = State.ERROR
        self._in_flight = None
        self._awaiting_greeting = False

    def _next_event(self) -> Event | NeedData:
        if not self.awaiting_response:
            if self._state is State.CLOSED or not self._reader.pending:
                return ConnectionClosed() if self._reader.eof else NEED_DATA
            raise ProtocolViolation(f"server sent {self._reader.pending} octets nobody asked for")
        while True:
            line = self._reader.next_line()
            if line is None:
                if self._reader.eof:
                    raise Disconnected("the server closed the connection mid-response")
                return NEED_DATA
            event = self._on_line(line)
            if event is not None:
                return event

    def _on_line(self, line: bytes) -> Event | None:
        # find(), not ``in``: CPython's bytes ``in`` first tries the operand as an
        # integer and raises and clears a TypeError on every call.
        if line.find(b"\0") >= 0:
            raise ProtocolViolation("NUL octet in a response")
        if self._body is not None:
            return self._on_body_line(line)
        if self._awaiting_greeting:
            return self._on_greeting(line)
        assert self._in_flight is not None
        if self._in_flight.response is ResponseKind.SASL and (
            line == b"+" or line.startswith(b"+ ")
        ):
            return self._on_challenge(line[2:])
        ok, text, code = self._status(line)
        if ok and self._in_flight.response is ResponseKind.MULTI:
            self._body = []
            self._body_octets = 0
            self._body_status = (text, code)
            return None
        return self._complete(Ok(text, code) if ok else Err(text, code), ok)

    @staticmethod
    def _status(line: bytes) -> tuple[bool, str, str | None]:
        # "+OK" or "-ERR", alone or followed by a space; compared by prefix and one octet
        # rather than by regex: this runs for every response.
        if line.startswith(b"+OK") and (len(line) == 3 or line[3] == _SPACE):
            ok = True
            text = line[4:].decode("utf-8", "replace")
        elif line.startswith(b"-ERR") and (len(line) == 4 or line[4] == _SPACE):
            ok = False
            text = line[5:].decode("utf-8", "replace")
        else:
            raise ProtocolViolation("expected +OK or -ERR", server_text=_text(line))
        if text.startswith("["):
            code, text = split_response_code(text)
            return ok, text, code
        return ok, text, None

    def _on_greeting(self, line: bytes) -> Event:
        ok, text, code = self._status(line)
        self._awaiting_greeting = False
        self._state = State.AUTHORIZATION if ok else State.CLOSED
        return Greeting(ok, text, code, find_timestamp(text) if ok else None)

    def _on_challenge(self, payload: bytes) -> Event:
        self._sasl_rounds += 1
        if self._sasl_rounds > self.limits.max_sasl_rounds:
            raise ProtocolViolation(f"more than {self.limits.max_sasl_rounds} SASL challenges")
        if isinstance(self._in_flight, SaslCancel):
            raise ProtocolViolation("SASL challenge after the client cancelled")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProtocolViolation("SASL challenge is not valid base64") from exc
        self._sasl_client_turn = True
        return Challenge(data)

    def _on_body_line(self, line: bytes) -> Event | None:
        assert self._body is not None
        if line == b".":
            text, code = self._body_status
            event = MultiLine(text, code, tuple(self._body))
            self._body = None
            return self._complete(event, True)
        self._body_octets += len(line) + 2
        if self._body_octets > self.limits.max_multiline:
            raise ProtocolViolation(f"multi-line response over {self.limits.max_multiline} octets")
        if len(self._body) >= self.limits.max_multiline_lines:
            raise ProtocolViolation(
                f"multi-line response over {self.limits.max_multiline_lines} lines"
            )
        if line.startswith(b"."):
            line = line[1:]
        self._body.append(_text(line))
        return None

    def _complete(self, event: Event, ok: bool) -> Event:
        command = self._in_flight
        assert command is not None
        kind = type(command)
        if isinstance(command, _SASL_FOLLOW_UPS):
            kind = Auth
            if ok and isinstance(command, SaslCancel):
                raise ProtocolViolation("the server accepted a cancelled SASL exchange")
        self._state = after_response(self._state, kind, ok)
        self._in_flight = None
        return event
