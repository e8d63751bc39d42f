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

    RFC 1939 caps a response line at 512 octets including CRLF; real servers overshoot a
    little in greetings and error texts, so the default allows 1024.
    """

    max_line: int = 1024
    max_multiline: int = 64 * 1024
    max_multiline_lines: int = 1024
    max_sasl_rounds: int = 8


class LineReader:
    """Accumulates bytes and yields complete lines (CRLF or bare LF stripped)."""

    __slots__ = ("_buffer", "_max_line", "_scanned", "eof")

    def __init__(self, max_line: int) -> None:
        self._buffer = bytearray()
        self._max_line = max_line
        self._scanned = 0
        self.eof = False

    def feed(self, data: bytes) -> None:
        """Add received bytes; ``b""`` marks end of stream."""
        if not data:
            self.eof = True
            return
        self._buffer += data

    def next_line(self) -> bytes | None:
        """Return the next complete line, or None when more bytes are needed.

        Raises ProtocolViolation when an incomplete line already exceeds the limit.
        """
        end = self._buffer.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buffer)
            if self._scanned > self._max_line:
                raise ProtocolViolation(f"response line longer than {self._max_line} octets")
            return None
        if end + 1 > self._max_line + 1:
            raise ProtocolViolation(f"response line longer than {self._max_line} octets")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scanned = 0
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    @property
    def pending(self) -> int:
        """Octets received but not yet consumed as a line."""
        return len(self._buffer)
