"""SASL client mechanisms (RFC 4422) for POP3 AUTH (RFC 5034), pure and I/O-free.

Job: produce initial responses and answers to challenges for PLAIN, LOGIN, CRAM-MD5,
XOAUTH2 and OAUTHBEARER (RFC 7628). A mechanism that cannot answer a challenge raises
``SaslAbort`` and the driver sends ``*`` to cancel. Rule: secrets stay inside the
mechanism; ``secrets()`` lists them only so transcripts can scrub them.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from pop3watch.errors import LocalProtocolError


class SaslAbort(Exception):
    """The mechanism cannot go on; the driver cancels the exchange with ``*``."""


def _unframed(value: str, what: str, mechanism: str) -> str:
    """XOAUTH2 and OAUTHBEARER separate their fields with ^A (0x01): one inside the user
    name or token would end its field early and start another, so it is refused before
    anything is encoded."""
    if "\x01" in value:
        raise LocalProtocolError(f"{what} contains ^A (0x01), which {mechanism} cannot carry")
    return value


class SaslMechanism(ABC):
    """One SASL exchange from the client side.

    A mechanism with an initial response sends it either with the AUTH command or, when
    that line would be too long (``Auth.starting``), in answer to the server's first,
    empty challenge; the driver says which through ``initial_sent``. Every later
    challenge goes to ``answer``, so a credential is never sent twice.
    """

    name: ClassVar[str]
    #: Whether the mechanism sends the secret itself (True) or a proof derived from it.
    sends_secret: ClassVar[bool] = True
    #: Set by the driver when the initial response went out with the AUTH command.
    initial_sent: bool = False

    def initial_response(self) -> bytes | None:
        """The RFC 4422 initial response, or None when the server speaks first."""
        return None

    def respond(self, challenge: bytes) -> bytes:
        """Answer one server challenge; raise SaslAbort to cancel."""
        if not self.initial_sent:
            initial = self.initial_response()
            if initial is not None:
                if challenge:
                    raise SaslAbort(f"{self.name} expected an empty challenge first")
                self.initial_sent = True
                return initial
        return self.answer(challenge)

    @abstractmethod
    def answer(self, challenge: bytes) -> bytes:
        """Answer a challenge that comes after the initial response (if any)."""

    @abstractmethod
    def secrets(self) -> tuple[str, ...]:
        """The secret strings in play, for redaction."""


@dataclass
class Plain(SaslMechanism):
    name: ClassVar[str] = "PLAIN"
    user: str
    password: str = field(repr=False)
    authzid: str = ""

    def initial_response(self) -> bytes:
        return f"{self.authzid}\0{self.user}\0{self.password}".encode()

    def answer(self, challenge: bytes) -> bytes:
        raise SaslAbort("PLAIN takes no challenge after its credentials")

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@dataclass
class Login(SaslMechanism):
    """The obsolete but common LOGIN mechanism: user name, then password, as prompted."""

    name: ClassVar[str] = "LOGIN"
    user: str
    password: str = field(repr=False)
    _step: int = 0

    def answer(self, challenge: bytes) -> bytes:
        self._step += 1
        if self._step == 1:
            return self.user.encode()
        if self._step == 2:
            return self.password.encode()
        raise SaslAbort("LOGIN asked for more than a user name and a password")

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@dataclass
class CramMd5(SaslMechanism):
    """RFC 2195: the password never crosses the wire, only an HMAC of the challenge."""

    name: ClassVar[str] = "CRAM-MD5"
    sends_secret: ClassVar[bool] = False
    user: str
    password: str = field(repr=False)
    _answered: bool = False

    def answer(self, challenge: bytes) -> bytes:
        if self._answered or not challenge:
            raise SaslAbort("CRAM-MD5 expects exactly one non-empty challenge")
        self._answered = True
        proof = hmac.new(self.password.encode(), challenge, hashlib.md5).hexdigest()
        return f"{self.user} {proof}".encode()

    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@dataclass
class XOAuth2(SaslMechanism):
    """Google/Microsoft XOAUTH2: on failure the server sends a JSON error challenge,
    which the client acknowledges with an empty response before the final -ERR."""

    name: ClassVar[str] = "XOAUTH2"
    user: str
    token: str = field(repr=False)
    _errored: bool = False

    def __post_init__(self) -> None:
        _unframed(self.user, "user name", self.name)
        _unframed(self.token, "token", self.name)

    def initial_response(self) -> bytes:
        return f"user={self.user}\x01auth=Bearer {self.token}\x01\x01".encode()

    def answer(self, challenge: bytes) -> bytes:
        if self._errored:
            raise SaslAbort("XOAUTH2 server sent a second challenge")
        self._errored = True
        return b""

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)


@dataclass
class OAuthBearer(SaslMechanism):
    """RFC 7628 OAUTHBEARER; an error challenge is acknowledged with ``%x01``."""

    name: ClassVar[str] = "OAUTHBEARER"
    user: str
    token: str = field(repr=False)
    host: str = ""
    port: int = 0
    _errored: bool = False

    def __post_init__(self) -> None:
        _unframed(self.user, "user name", self.name)
        _unframed(self.token, "token", self.name)

    def initial_response(self) -> bytes:
        gs2 = f"n,a={self.user.replace('=', '=3D').replace(',', '=2C')},"
        fields = f"\x01host={self.host}\x01port={self.port}" if self.host else ""
        return f"{gs2}{fields}\x01auth=Bearer {self.token}\x01\x01".encode()

    def answer(self, challenge: bytes) -> bytes:
        if self._errored:
            raise SaslAbort("OAUTHBEARER server sent a second challenge")
        self._errored = True
        return b"\x01"

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)


PASSWORD_MECHANISMS: tuple[str, ...] = ("PLAIN", "LOGIN", "CRAM-MD5")
TOKEN_MECHANISMS: tuple[str, ...] = ("OAUTHBEARER", "XOAUTH2")


def preferred_mechanisms(*, token: bool, tls_active: bool) -> tuple[str, ...]:
    """Best-first order among the mechanisms we implement.

    Over TLS, PLAIN is the standard and needs nothing special on the server. Without TLS
    (only when the owner allowed plaintext auth) CRAM-MD5 comes first because it never
    sends the password itself.
    """
    if token:
        return TOKEN_MECHANISMS
    if tls_active:
        return ("PLAIN", "LOGIN", "CRAM-MD5")
    return ("CRAM-MD5", "PLAIN", "LOGIN")


def build_mechanism(
    name: str, *, user: str, secret: str, host: str = "", port: int = 0
) -> SaslMechanism:
    """Instantiate mechanism ``name`` (case-insensitive); KeyError when unknown."""
    upper = name.upper()
    if upper == "PLAIN":
        return Plain(user, secret)
    if upper == "LOGIN":
        return Login(user, secret)
    if upper == "CRAM-MD5":
        return CramMd5(user, secret)
    if upper == "XOAUTH2":
        return XOAuth2(user, secret)
    if upper == "OAUTHBEARER":
        return OAuthBearer(user, secret, host, port)
    raise KeyError(name)
