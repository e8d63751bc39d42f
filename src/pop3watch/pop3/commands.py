"""Client commands as values: how each one is encoded, redacted and answered.

Job: one small frozen class per command. ``encode()`` refuses unsafe arguments (CR, LF,
NUL) before a single byte exists, ``redacted()`` is what transcripts show (secrets become
``***``), and ``response`` tells the core which kind of answer to parse.
Rule: there is no DELE here, on purpose: pop3watch never deletes mail.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from pop3watch.errors import LocalProtocolError

REDACTED = "***"
# RFC 5034 section 4: an AUTH command line, CRLF included, is at most 255 octets.
MAX_AUTH_LINE = 255


class ResponseKind(Enum):
    """What a command's answer looks like on the wire."""

    SINGLE = "single"  # +OK/-ERR on one line
    MULTI = "multi"  # +OK followed by a body ending in ".", or -ERR on one line
    SASL = "sasl"  # "+ challenge" lines until +OK/-ERR


def check_argument(value: str, what: str) -> str:
    """Refuse CR, LF and NUL (command injection) and empty values; return the value."""
    if not value:
        raise LocalProtocolError(f"{what} is empty")
    if any(ch in value for ch in "\r\n\0"):
        raise LocalProtocolError(f"{what} contains CR, LF or NUL; nothing was sent")
    return value


def _ascii_line(text: str) -> bytes:
    return text.encode("utf-8") + b"\r\n"


class Command:
    """Base of every command the core can send."""

    verb: ClassVar[str]
    response: ClassVar[ResponseKind] = ResponseKind.SINGLE
    #: The wire form of a command without arguments: its verb and CRLF, made once per
    #: class from ``verb`` (so the two cannot disagree).
    bare: ClassVar[bytes] = b""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        verb = cls.__dict__.get("verb")
        if isinstance(verb, str):
            cls.bare = _ascii_line(verb)

    def encode(self) -> bytes:
        return self.bare

    def redacted(self) -> str:
        return self.verb

    def secrets(self) -> tuple[str, ...]:
        """Secret strings this command carries, so transcripts can scrub echoes of them."""
        return ()


@dataclass(frozen=True, slots=True)
class Capa(Command):
    verb: ClassVar[str] = "CAPA"
    response: ClassVar[ResponseKind] = ResponseKind.MULTI


@dataclass(frozen=True, slots=True)
class Stls(Command):
    verb: ClassVar[str] = "STLS"


@dataclass(frozen=True, slots=True)
class Stat(Command):
    verb: ClassVar[str] = "STAT"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    verb: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Quit(Command):
    verb: ClassVar[str] = "QUIT"


@dataclass(frozen=True, slots=True)
class User(Command):
    verb: ClassVar[str] = "USER"
    name: str

    def encode(self) -> bytes:
        return _ascii_line(f"USER {check_argument(self.name, 'user name')}")

    def redacted(self) -> str:
        return f"USER {self.name}"


@dataclass(frozen=True, slots=True)
class Pass(Command):
    verb: ClassVar[str] = "PASS"
    password: str = field(repr=False)

    def encode(self) -> bytes:
        return _ascii_line(f"PASS {check_argument(self.password, 'password')}")

    def redacted(self) -> str:
        return f"PASS {REDACTED}"

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@dataclass(frozen=True, slots=True)
class Apop(Command):
    """APOP name digest; the digest is redacted too (MD5 is crackable offline)."""

    verb: ClassVar[str] = "APOP"
    name: str
    digest: str = field(repr=False)

    def encode(self) -> bytes:
        name = check_argument(self.name, "user name")
        if " " in name:
            raise LocalProtocolError("user name contains a space, which APOP cannot carry")
        return _ascii_line(f"APOP {name} {check_argument(self.digest, 'digest')}")

    def redacted(self) -> str:
        return f"APOP {self.name} {REDACTED}"

    def secrets(self) -> tuple[str, ...]:
        return (self.digest,)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii") if data else "="


@dataclass(frozen=True, slots=True)
class Auth(Command):
    """RFC 5034 AUTH with an optional initial response (``=`` stands for an empty one)."""

    verb: ClassVar[str] = "AUTH"
    response: ClassVar[ResponseKind] = ResponseKind.SASL
    mechanism: str
    initial: bytes | None = field(default=None, repr=False)

    @classmethod
    def starting(cls, mechanism: str, initial: bytes | None) -> Auth:
        """AUTH carrying ``initial`` when the line stays within RFC 5034's 255 octets,
        else AUTH alone: the client then sends it in answer to the server's empty
        challenge (a Microsoft 365 OAuth token alone is well over a kilobyte)."""
        if initial is not None:
            with_initial = cls(mechanism, initial)
            if len(with_initial.encode()) <= MAX_AUTH_LINE:
                return with_initial
        return cls(mechanism)

    def encode(self) -> bytes:
        mechanism = check_argument(self.mechanism, "SASL mechanism")
        if self.initial is None:
            return _ascii_line(f"AUTH {mechanism}")
        return _ascii_line(f"AUTH {mechanism} {_b64(self.initial)}")

    def redacted(self) -> str:
        if self.initial is None:
            return f"AUTH {self.mechanism}"
        return f"AUTH {self.mechanism} {REDACTED}"

    def secrets(self) -> tuple[str, ...]:
        return () if not self.initial else (_b64(self.initial),)


@dataclass(frozen=True, slots=True)
class SaslResponse(Command):
    """The client's answer to a SASL challenge, base64-encoded on the wire."""

    verb: ClassVar[str] = ""
    response: ClassVar[ResponseKind] = ResponseKind.SASL
    data: bytes = field(repr=False)

    def encode(self) -> bytes:
        return _ascii_line(base64.b64encode(self.data).decode("ascii"))

    def redacted(self) -> str:
        return REDACTED

    def secrets(self) -> tuple[str, ...]:
        return (base64.b64encode(self.data).decode("ascii"),) if self.data else ()


@dataclass(frozen=True, slots=True)
class SaslCancel(Command):
    """``*``: abandon a SASL exchange (RFC 5034); the server must answer -ERR."""

    verb: ClassVar[str] = "*"
    response: ClassVar[ResponseKind] = ResponseKind.SASL
