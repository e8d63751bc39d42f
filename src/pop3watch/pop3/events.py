"""Events the POP3 core hands to its driver: small frozen values, no behaviour.

Job: describe what the server said, already parsed (status, RFC 2449/3206 response code,
text, multi-line body, SASL challenge). Rule: events are data; deciding what they mean
for a check is the probe's job, not the core's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# RFC 2449 section 8: "[" resp-code "]" where resp-code is a "/"-separated path of atoms;
# some servers add an argument after a space ("[LOGIN-DELAY 900]"), which is kept.
_RESP_CODE = re.compile(r"^\[([A-Za-z0-9][A-Za-z0-9/\-]*)((?: [^\]]*)?)\]\s*")

#: Response codes pop3watch understands (RFC 2449, RFC 3206, RFC 5034 [AUTH]).
KNOWN_RESPONSE_CODES: Final = frozenset({"IN-USE", "LOGIN-DELAY", "SYS/TEMP", "SYS/PERM", "AUTH"})


def split_response_code(text: str) -> tuple[str | None, str]:
    """Split ``"[IN-USE] locked"`` into ``("IN-USE", "locked")``. The code's path is
    upper-cased; an argument after it stays as sent (``"LOGIN-DELAY 900"``)."""
    if not text.startswith("["):  # nearly every response: no regex needed
        return None, text
    match = _RESP_CODE.match(text)
    if match is None:
        return None, text
    return match.group(1).upper() + match.group(2), text[match.end() :]


def code_is(code: str | None, wanted: str) -> bool:
    """Whether response ``code`` is ``wanted`` or one of its refinements.

    RFC 2449 section 8 makes codes hierarchical: a client that knows ``SYS/TEMP`` treats
    ``[SYS/TEMP/DB-DOWN]`` as ``SYS/TEMP``, so a server's detail never hides its meaning.
    """
    if code is None:
        return False
    path = code.split(" ", 1)[0]
    return path == wanted or path.startswith(wanted + "/")


@dataclass(frozen=True, slots=True)
class Greeting:
    """The server's first line. ``ok`` is False for a ``-ERR`` greeting."""

    ok: bool
    text: str
    code: str | None
    #: The APOP timestamp (``<...@...>``) when the greeting carries a valid one.
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class Ok:
    """A single-line ``+OK`` response."""

    text: str
    code: str | None


@dataclass(frozen=True, slots=True)
class Err:
    """A ``-ERR`` response (single line, also where a multi-line answer was possible)."""

    text: str
    code: str | None


@dataclass(frozen=True, slots=True)
class MultiLine:
    """A ``+OK`` response with a body, dot-unstuffed, terminator removed."""

    text: str
    code: str | None
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Challenge:
    """A SASL server challenge (``+ base64``), already decoded."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The server closed the connection where that was allowed (after QUIT)."""


class NeedData:
    """Sentinel: the core needs more bytes before it can produce the next event."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

Event = Greeting | Ok | Err | MultiLine | Challenge | ConnectionClosed
