"""Bounded line reader: turns a byte stream into lines without ever growing unbounded.

Job: split what the server sent into lines and enforce the limits (line length and the
budget of one multi-line response). A hostile server that sends 10 MB without CRLF is
stopped after ``max_line`` octets, not after 10 MB are buffered (h11's receive buffer).
"""

from __future__ import annotations

from dataclasses import dataclass

from pop3watch.errors import ProtocolViolation


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard caps the core enforces; the defaults follow RFC 1939 with some slack.

    RFC 2449 caps a response line at 512 octets including CRLF; real servers overshoot a
    little in greetings and error texts, so the default allows a quarter more, 640.
    Beyond that a line is a protocol violation, not a long greeting.
    """

    max_line: int = 640
    max_multiline: int = 64 * 1024
    max_multiline_lines: int = 1024
    max_sasl_rounds: int = 8


_CR = 0x0D


class LineReader:
    """Accumulates bytes and yields complete lines (CRLF or bare LF stripped).

    The unread bytes are one immutable ``bytes`` and an offset into it, so a response
    that arrives in one read (nearly all of them) becomes a line with one slice, and
    nothing is copied or moved until more bytes arrive behind an unread rest.
    """

    __slots__ = ("_data", "_max_line", "_pos", "_scanned", "eof")

    def __init__(self, max_line: int) -> None:
        self._data = b""
        self._pos = 0  # start of the unread bytes in _data
        self._scanned = 0  # where the search for LF goes on (no LF before it)
        self._max_line = max_line
        self.eof = False

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` marks end of stream."""
        if not data:
            self.eof = True
            return
        pos = self._pos
        if pos >= len(self._data):
            self._data = bytes(data)
            self._scanned = 0
        else:
            self._data = self._data[pos:] + data
            self._scanned -= pos
        self._pos = 0

    def next_line(self) -> bytes | None:
        """Return the next complete line, or None when more bytes are needed.

        Raises ProtocolViolation when a line (complete or not) exceeds the limit.
        """
        data, pos = self._data, self._pos
        end = data.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(data)
            if len(data) - pos > self._max_line:
                raise ProtocolViolation(f"response line longer than {self._max_line} octets")
            return None
        if end - pos > self._max_line:
            raise ProtocolViolation(f"response line longer than {self._max_line} octets")
        self._pos = self._scanned = end + 1
        if end > pos and data[end - 1] == _CR:
            return data[pos : end - 1]
        return data[pos:end]

    @property
    def pending(self) -> int:
        """Octets received but not yet consumed as a line."""
        return len(self._data) - self._pos
