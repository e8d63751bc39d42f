"""A redacted, escaped, bounded transcript of one POP3 session.

Job: keep the C:/S: lines of a check so a failure explains itself (blackbox_exporter's
debug log). Rules: every secret (and its base64 form) is replaced by ``***`` wherever it
appears, server text is escaped so no terminal control character survives, and a
hostile server cannot make the transcript grow without bound.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

from pop3watch.probe.result import TranscriptLine

REDACTED = "***"
MAX_LINES = 200
MAX_LINE_CHARS = 300


def escape(text: str) -> str:
    """Make server text safe to print: control characters become ``\\xNN`` escapes."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


@dataclass
class Redactor:
    """Replaces known secrets (and their base64 and PLAIN-style encodings) with ``***``."""

    _secrets: set[str] = field(default_factory=set)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            if len(secret) >= 3:
                self._secrets.add(secret)
                self._secrets.add(base64.b64encode(secret.encode()).decode())

    def __call__(self, text: str) -> str:
        # Longest first, so a secret containing another is replaced whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class Transcript:
    """Accumulates transcript lines with timestamps relative to the check's start."""

    def __init__(self, redactor: Redactor, *, started: float | None = None) -> None:
        self.redact = redactor
        self._started = time.perf_counter() if started is None else started
        self._lines: list[TranscriptLine] = []
        self._dropped = 0

    def _add(self, direction: str, text: str) -> None:
        if len(self._lines) >= MAX_LINES:
            self._dropped += 1
            return
        text = escape(self.redact(text))
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + "..."
        t_ms = round((time.perf_counter() - self._started) * 1000, 3)
        self._lines.append(TranscriptLine(t_ms=t_ms, dir=direction, text=text))

    def client(self, text: str) -> None:
        self._add("C", text)

    def server(self, text: str) -> None:
        self._add("S", text)

    def note(self, text: str) -> None:
        self._add("*", text)

    def lines(self) -> list[TranscriptLine]:
        if self._dropped:
            return [
                *self._lines,
                TranscriptLine(
                    t_ms=self._lines[-1].t_ms,
                    dir="*",
                    text=f"... {self._dropped} more lines dropped",
                ),
            ]
        return list(self._lines)

    def render(self) -> str:
        return "\n".join(f"{line.t_ms:9.3f} {line.dir}: {line.text}" for line in self.lines())
