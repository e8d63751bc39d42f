"""A redacted, escaped, bounded transcript of one POP3 session.

Job: keep the C:/S: lines of a check so a failure explains itself (blackbox_exporter's
debug log). Rules: every secret (and its base64 form) is replaced by ``***`` wherever it
appears, server text is escaped so no terminal control character survives, and a
hostile server cannot make the transcript grow without bound.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from pop3watch.probe.result import Status, TranscriptLine, round_ms

REDACTED = "***"
MAX_LINES = 200
MAX_LINE_CHARS = 300

_Said = TypeVar("_Said")
# What the transcript keeps per entry: (seconds since start, direction, what was said,
# and the function that turns it into lines, None when it is one line of text already).
_Entry = tuple[float, str, Any, Callable[[Any], list[str]] | None]


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


class Redactor:
    """Replaces known secrets (and their base64 and PLAIN-style encodings) with ``***``."""

    __slots__ = ("_secrets",)

    def __init__(self) -> None:
        #: Longest first, so a secret containing another is replaced whole.
        self._secrets: list[str] = []

    def add(self, *secrets: str) -> None:
        """Scrub ``secrets`` from now on. Any non-empty secret counts, however short: a
        two-character password echoed in an -ERR would otherwise be printed as it is
        (the price, a short secret also masks its letters in unrelated text, is paid only
        by whoever chose such a password)."""
        for secret in secrets:
            if secret:
                for form in (secret, base64.b64encode(secret.encode()).decode()):
                    if form not in self._secrets:
                        self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class KeepTranscript(StrEnum):
    """When a check's result carries its transcript."""

    ALWAYS = "always"  # the CLI, --diagnose, anyone asking about one check
    FAILURES = "failures"  # warn and down only: the service, which stores no others

    def keeps(self, status: Status) -> bool:
        """Whether a result with ``status`` carries the transcript."""
        return self is KeepTranscript.ALWAYS or status is not Status.UP


class Transcript:
    """Accumulates transcript lines with timestamps relative to the check's start.

    Lines are kept as they were said and made safe when read (``rows``): redacted with
    every secret known by then, also one learned after the line, and escaped. A check
    whose transcript nobody reads (a passing check in the service) pays only for
    appending a tuple per line.
    """

    def __init__(self, redactor: Redactor, *, started: float | None = None) -> None:
        self.redact = redactor
        self._started = time.perf_counter() if started is None else started
        # Made safe (and rendered) only in rows().
        self._lines: list[_Entry] = []
        self._dropped = 0

    def _add(
        self, direction: str, said: object, render: Callable[[Any], list[str]] | None = None
    ) -> None:
        if len(self._lines) >= MAX_LINES:
            self._dropped += 1
            return
        self._lines.append((time.perf_counter() - self._started, direction, said, render))

    def client(self, text: str) -> None:
        self._add("C", text)

    def server(self, text: str) -> None:
        self._add("S", text)

    def server_said(self, said: _Said, render: Callable[[_Said], list[str]]) -> None:
        """What the server said, as data; ``render(said)`` makes it lines only if the
        transcript is read, which for a passing check in the service it never is."""
        self._add("S", said, render)

    def note(self, text: str) -> None:
        self._add("*", text)

    def rows(self) -> list[dict[str, Any]]:
        """The transcript, redacted and escaped, as plain data in the shape of
        ``TranscriptLine`` (for a result validated in one go)."""
        redact = self.redact
        rows: list[dict[str, Any]] = []
        dropped = self._dropped
        t_ms = 0.0
        for t, direction, said, render in self._lines:
            t_ms = round_ms(t * 1000)
            for line in render(said) if render is not None else (said,):
                if len(rows) >= MAX_LINES:  # a long multi-line answer is one entry
                    dropped += 1
                    continue
                text = escape(redact(line))
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + "..."
                rows.append({"t_ms": t_ms, "dir": direction, "text": text})
        if dropped:
            rows.append({"t_ms": t_ms, "dir": "*", "text": f"... {dropped} more lines dropped"})
        return rows

    def lines(self) -> list[TranscriptLine]:
        """The transcript as result models."""
        return [TranscriptLine.model_validate(row) for row in self.rows()]

    def render(self) -> str:
        return "\n".join(f"{line.t_ms:9.3f} {line.dir}: {line.text}" for line in self.lines())
