"""SASL client mechanisms (RFC 4422) for POP3 AUTH (RFC 5034), pure and I/O-free.

Job: produce initial responses and answers to challenges for PLAIN, LOGIN, CRAM-MD5,
SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, 7677), XOAUTH2 and OAUTHBEARER (RFC 7628). A
mechanism that cannot answer a challenge raises ``SaslAbort`` and the driver sends ``*``
to cancel. Rule: secrets stay inside the mechanism; ``secrets()`` lists them only so
transcripts can scrub them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random_source
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from pop3watch.errors import LocalProtocolError


class SaslAbort(Exception):
    """The mechanism cannot go on; the driver cancels the exchange with ``*``.

    Raised as itself, the server is taken to have refused the credentials; the
    subclasses say the server broke the mechanism or asked for what we will not do.
    """


class SaslViolation(SaslAbort):
    """The server's challenge breaks the mechanism's rules (a protocol violation)."""


class SaslUnusable(SaslAbort):
    """The server asks for something this client refuses to do (the mechanism cannot
    be used against it)."""


def _saslname(user: str) -> str:
    """RFC 5802 saslname (OAUTHBEARER's gs2 header takes it too): ``=`` and ``,`` are
    escaped, since they frame the fields."""
    return user.replace("=", "=3D").replace(",", "=2C")


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
    #: Whether answering a challenge costs enough CPU to run off the event loop.
    costly: ClassVar[bool] = False
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
        """The secret strings in play, for redaction; asked again after every answer,
        since a mechanism may learn one from the server."""

    def unfinished(self) -> str | None:
        """Why a success (``+OK``) at this point would come too early, or None. A
        mechanism that authenticates the server too (SCRAM) is not done until it has."""
        return None


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
        gs2 = f"n,a={_saslname(self.user)},"
        fields = f"\x01host={self.host}\x01port={self.port}" if self.host else ""
        return f"{gs2}{fields}\x01auth=Bearer {self.token}\x01\x01".encode()

    def answer(self, challenge: bytes) -> bytes:
        if self._errored:
            raise SaslAbort("OAUTHBEARER server sent a second challenge")
        self._errored = True
        return b"\x01"

    def secrets(self) -> tuple[str, ...]:
        return (self.token,)


#: A server asking a SCRAM client for more PBKDF2 rounds than this is refused: each
#: round costs the client as much as the server, a hostile server can ask anew on every
#: check, and checks share one machine. Servers use 4,096 (RFC 7677's floor; Dovecot,
#: PostgreSQL) to about 15,000; 100,000 rounds cost the client some 40 ms.
MAX_SCRAM_ITERATIONS = 100_000
#: Without TLS, a server asking for fewer rounds than RFC 7677's floor is refused: an
#: active attacker posing as the server could otherwise have a proof made cheap to
#: attack offline. Over TLS the server has proven who it is, and its count is its own.
MIN_SCRAM_ITERATIONS_IN_CLEAR = 4096
#: RFC 5802 server-error values that say the mechanism cannot work between this client
#: and this server, rather than that the credentials were refused.
_SCRAM_UNUSABLE_ERRORS = frozenset(
    {
        "invalid-encoding",
        "extensions-not-supported",
        "channel-bindings-dont-match",
        "server-does-support-channel-binding",
        "channel-binding-not-supported",
        "unsupported-channel-binding-type",
        "invalid-username-encoding",
    }
)

_SCRAM_GS2_HEADER = b"n,,"  # no channel binding, no authorisation identity


def _scram_attributes(message: bytes, what: str) -> dict[str, str]:
    """``a=value,b=value`` of a SCRAM message, each attribute once."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslViolation(f"the SCRAM {what} is not UTF-8") from None
    attributes: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or len(name) != 1 or not name.isalpha() or not name.isascii():
            raise SaslViolation(f"the SCRAM {what} is not a list of a=value attributes")
        if name in attributes:
            raise SaslViolation(f"the SCRAM {what} repeats attribute {name}")
        attributes[name] = value
    return attributes


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SaslViolation(f"the SCRAM {what} is not base64") from None


@dataclass
class Scram(SaslMechanism):
    """RFC 5802 SCRAM: the password never crosses the wire, only a proof derived from
    it, and the server proves in turn that it knows the password (its signature),
    which neither CRAM-MD5 nor PLAIN asks of it. Without channel binding (``n,,``).

    The password is used as it is, not prepared with SASLprep (RFC 4013): Dovecot
    derives its keys from the password unprepared, so a prepared one that differs
    (a no-break space, a ligature) would fail to log in where PLAIN succeeds. Nothing
    derived from the password is kept after the check (no key cache, as in
    ``probe.secrets``): at up to ``MAX_SCRAM_ITERATIONS`` rounds it costs milliseconds,
    and the driver runs it off the event loop (``costly``).
    """

    name: ClassVar[str] = "SCRAM"
    hash_name: ClassVar[str] = ""
    costly: ClassVar[bool] = True
    user: str
    password: str = field(repr=False)
    #: The fewest PBKDF2 rounds accepted (``MIN_SCRAM_ITERATIONS_IN_CLEAR`` without TLS).
    min_iterations: int = 1
    #: The client's nonce; random unless a test fixes it (RFC 5802's examples).
    nonce: str = field(default_factory=lambda: random_source.token_urlsafe(24))
    _server_signature: bytes = field(default=b"", repr=False)
    _final_seen: str = field(default="", repr=False)
    _step: int = 0
    _server_verified: bool = False

    def _client_first_bare(self) -> bytes:
        return f"n={_saslname(self.user)},r={self.nonce}".encode()

    def initial_response(self) -> bytes:
        return _SCRAM_GS2_HEADER + self._client_first_bare()

    def answer(self, challenge: bytes) -> bytes:
        self._step += 1
        if self._step == 1:
            return self._client_final(challenge)
        if self._step == 2:
            if b"v=" in challenge:
                # The signature and the AuthMessage would let a reader of the transcript
                # test passwords offline, as a client proof would: the message is
                # scrubbed like one, in the form the transcript shows it, before it is
                # even parsed (a malformed one is still a signature).
                self._final_seen = challenge.decode("utf-8", "replace")
            self._verify_server(challenge)
            return b""
        raise SaslViolation(f"{self.name} takes no challenge after the server's signature")

    def _client_final(self, server_first: bytes) -> bytes:
        attributes = _scram_attributes(server_first, "server-first message")
        if "m" in attributes:
            raise SaslUnusable(f"the server requires a {self.name} extension (m=) not known here")
        missing = [name for name in "rsi" if name not in attributes]
        if missing:
            raise SaslViolation(f"the SCRAM server-first message lacks {', '.join(missing)}")
        nonce = attributes["r"]
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce):
            raise SaslViolation("the server's SCRAM nonce does not extend the client's")
        if not all("!" <= ch <= "~" for ch in nonce):
            raise SaslViolation("the server's SCRAM nonce is not printable ASCII")
        salt = _b64decode(attributes["s"], "salt")
        if not salt:
            raise SaslViolation("the server's SCRAM salt is empty")
        digits = attributes["i"]
        if not (digits.isascii() and digits.isdigit()) or digits.startswith("0"):
            raise SaslViolation(
                f"the SCRAM iteration count {digits[:20]!r} is not a positive number"
            )
        # Compared as text first: int() of a hostile server's 5,000 digits would raise.
        if len(digits) > len(str(MAX_SCRAM_ITERATIONS)) or int(digits) > MAX_SCRAM_ITERATIONS:
            shown = digits if len(digits) <= 20 else f"{digits[:20]}... ({len(digits)} digits)"
            raise SaslUnusable(
                f"the server asks for {shown} SCRAM iterations, more than the"
                f" {MAX_SCRAM_ITERATIONS:,} this client computes"
            )
        iterations = int(digits)
        if iterations < self.min_iterations:
            raise SaslUnusable(
                f"the server asks for only {iterations:,} SCRAM iterations without TLS,"
                f" fewer than RFC 7677's {self.min_iterations:,}: a proof that cheap to"
                " attack offline is not sent in clear text"
            )
        salted = hashlib.pbkdf2_hmac(self.hash_name, self.password.encode(), salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", self.hash_name)
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        without_proof = b"c=" + base64.b64encode(_SCRAM_GS2_HEADER) + b",r=" + nonce.encode()
        auth_message = b",".join((self._client_first_bare(), server_first, without_proof))
        signature = hmac.digest(stored_key, auth_message, self.hash_name)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", self.hash_name)
        self._server_signature = hmac.digest(server_key, auth_message, self.hash_name)
        return without_proof + b",p=" + base64.b64encode(proof)

    def _verify_server(self, server_final: bytes) -> None:
        attributes = _scram_attributes(server_final, "server-final message")
        if "e" in attributes:
            error = attributes["e"][:100]
            if error in _SCRAM_UNUSABLE_ERRORS:
                raise SaslUnusable(f"the server cannot take this SCRAM exchange: {error}")
            raise SaslAbort(f"the server refused the proof: {error}")
        if "v" not in attributes:
            raise SaslViolation("the SCRAM server-final message carries no signature (v=)")
        signature = _b64decode(attributes["v"], "server signature")
        if not hmac.compare_digest(signature, self._server_signature):
            # The server took the proof, so it is no refusal of the credentials: a server
            # that cannot sign is an impostor (a man in the middle) or a broken one.
            raise SaslViolation(
                "the server's SCRAM signature is wrong: it accepted the proof without"
                " knowing the password (an impostor, or something between us altered"
                " the exchange)"
            )
        self._server_verified = True

    def unfinished(self) -> str | None:
        if self._server_verified:
            return None
        return f"the server accepted {self.name} without proving it knows the password"

    def secrets(self) -> tuple[str, ...]:
        return (self.password, self._final_seen) if self._final_seen else (self.password,)


@dataclass
class ScramSha1(Scram):
    name: ClassVar[str] = "SCRAM-SHA-1"
    hash_name: ClassVar[str] = "sha1"


@dataclass
class ScramSha256(Scram):
    name: ClassVar[str] = "SCRAM-SHA-256"
    hash_name: ClassVar[str] = "sha256"


PASSWORD_MECHANISMS: tuple[str, ...] = (
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
)
TOKEN_MECHANISMS: tuple[str, ...] = ("OAUTHBEARER", "XOAUTH2")


def preferred_mechanisms(*, token: bool, tls_active: bool) -> tuple[str, ...]:
    """Best-first order among the mechanisms we implement.

    Over TLS, PLAIN is the standard and needs nothing special on the server: a server
    may offer SCRAM or CRAM-MD5 and still be unable to use them for a password it keeps
    hashed, and a check that picked them would report a login failure that is not there.
    Without TLS (only when the owner allowed plaintext auth) the mechanisms that never
    send the password itself come first, SCRAM (which authenticates the server too)
    before CRAM-MD5.
    """
    if token:
        return TOKEN_MECHANISMS
    if tls_active:
        return ("PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5")
    return ("SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN")


def build_mechanism(
    name: str, *, user: str, secret: str, host: str = "", port: int = 0, tls_active: bool = True
) -> SaslMechanism:
    """Instantiate mechanism ``name`` (case-insensitive); KeyError when unknown.
    ``tls_active`` False sets SCRAM's floor on the iteration count."""
    upper = name.upper()
    if upper == "PLAIN":
        return Plain(user, secret)
    if upper == "LOGIN":
        return Login(user, secret)
    if upper == "CRAM-MD5":
        return CramMd5(user, secret)
    floor = 1 if tls_active else MIN_SCRAM_ITERATIONS_IN_CLEAR
    if upper == "SCRAM-SHA-1":
        return ScramSha1(user, secret, min_iterations=floor)
    if upper == "SCRAM-SHA-256":
        return ScramSha256(user, secret, min_iterations=floor)
    if upper == "XOAUTH2":
        return XOAuth2(user, secret)
    if upper == "OAUTHBEARER":
        return OAuthBearer(user, secret, host, port)
    raise KeyError(name)
