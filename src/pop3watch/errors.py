"""The one error tree of pop3watch and its stable codes.

Job: name every way a check (or the service around it) can fail, with a stable ``code``
and the ``phase`` it happened in. The engine, storage, API, UI and CLI all speak this
vocabulary, so codes and default messages never change once published.

Rule: this module is a leaf. It imports nothing of ours, so even the sans-IO protocol core
(``pop3watch.pop3``) can raise these errors without depending on anything else.
Errors also inherit the matching builtin (``TimeoutError``, ``ConnectionError``) so
generic handlers keep working (the aiosmtplib habit).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Phase(StrEnum):
    """Where in a check (or in the service) something happened."""

    CONFIG = "config"
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    GREETING = "greeting"
    CAPA = "capa"
    STARTTLS = "starttls"
    AUTH = "auth"
    STAT = "stat"
    QUIT = "quit"
    STORAGE = "storage"


#: How much of the server's text an error message quotes.
SHOWN_SERVER_TEXT = 60


def shorten(text: str, limit: int = SHOWN_SERVER_TEXT) -> str:
    """``text`` in double quotes, cut to ``limit`` characters (marked with an ellipsis)."""
    return f'"{text[:limit]}..."' if len(text) > limit else f'"{text}"'


class Pop3WatchError(Exception):
    """Base of every error pop3watch raises on purpose.

    ``code`` is stable and machine-readable; ``message`` is for people and never
    contains a secret (callers pass server text through the transcript redactor first).
    """

    code: ClassVar[str] = "error"
    default_message: ClassVar[str] = "pop3watch error"
    default_phase: ClassVar[Phase | None] = None

    def __init__(
        self, detail: str = "", *, phase: Phase | None = None, server_text: str | None = None
    ) -> None:
        self.detail = detail
        self.phase: Phase | None = phase if phase is not None else self.default_phase
        #: The server's words that caused the error, whole, kept apart from ``detail``:
        #: they may echo a secret, so they are redacted whole before they are shortened
        #: for the message (a secret cut in half would no longer be found).
        self.server_text = server_text
        # No args: str() and repr() are computed from the fields, so once the check has
        # redacted them no copy of the raw text is left in the exception.
        super().__init__()

    @property
    def message(self) -> str:
        """The stable default message, then what is specific to this occurrence."""
        text = self.default_message
        if self.phase is not None and self.phase not in (Phase.CONFIG, Phase.STORAGE):
            text = f"{text} (phase: {self.phase.value})"
        if self.detail:
            text = f"{text}: {self.detail}"
        if self.server_text is not None:
            text = f"{text}, got {shorten(self.server_text)}"
        return text

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --- configuration --------------------------------------------------------------------


class ConfigError(Pop3WatchError):
    """The settings cannot describe a valid check or monitor; nothing was attempted."""

    code = "config_invalid"
    default_message = "Configuration information for this item is invalid"
    default_phase = Phase.CONFIG


class ConfigMissing(ConfigError):
    code = "config_missing"
    default_message = "Configuration information for this item is missing some required fields"


# --- the check --------------------------------------------------------------------------


class CheckError(Pop3WatchError):
    """A check failed; ``phase`` says where. Raised by the probe and the protocol core."""

    code = "check_error"
    default_message = "The check failed"


class DnsFailed(CheckError):
    code = "dns_failed"
    default_message = "Could not obtain an IP address for the remote device"
    default_phase = Phase.DNS


class ConnectFailed(CheckError, ConnectionError):
    code = "connect_failed"
    default_message = "Unable to connect to the remote device"
    default_phase = Phase.CONNECT


class CheckTimeout(CheckError, TimeoutError):
    code = "timeout"
    default_message = "The remote device timed out before sending a response"


class Disconnected(CheckError, ConnectionError):
    code = "disconnected"
    default_message = "Unexpected disconnection from the remote device"


class ProtocolViolation(CheckError):
    """The server broke the protocol (h11's RemoteProtocolError): the session is dead."""

    code = "protocol_violation"
    default_message = (
        "The response from the remote device does not adhere to protocol specification"
    )


class LocalProtocolError(ConfigError):
    """We were asked to send something unsafe or out of order; nothing was sent.

    A CR or LF inside a user name or password lands here: it comes from configuration,
    so it carries the configuration code.
    """

    code = "config_invalid"
    default_message = "Refused to send an unsafe or out-of-order command"


class ServiceUnavailable(CheckError):
    code = "service_unavailable"
    default_message = "The POP3 service answered -ERR"


class TlsUnavailable(CheckError):
    code = "tls_unavailable"
    default_message = "TLS is required, but the server does not offer STLS or refuses it"
    default_phase = Phase.STARTTLS


class TlsFailed(CheckError):
    code = "tls_failed"
    default_message = "TLS handshake failed"
    default_phase = Phase.TLS


class StarttlsInjection(ProtocolViolation):
    code = "starttls_injection"
    default_message = (
        "Data arrived between the STLS reply and the TLS handshake (response injection)"
    )
    default_phase = Phase.STARTTLS


class CertInvalid(TlsFailed):
    code = "cert_invalid"
    default_message = "Certificate rejected"


class AuthUnsupported(CheckError):
    code = "auth_unsupported"
    default_message = "The chosen authentication method is not offered by the server"
    default_phase = Phase.AUTH


class InsecureAuthRefused(CheckError):
    code = "insecure_auth_refused"
    default_message = "Credentials would have been sent in clear text; nothing was sent"
    default_phase = Phase.AUTH


class AuthFailed(CheckError):
    code = "auth_failed"
    default_message = "Credentials rejected"
    default_phase = Phase.AUTH


class MailboxLocked(CheckError):
    code = "mailbox_locked"
    default_message = "The mailbox is locked by another session [IN-USE]"
    default_phase = Phase.AUTH


# Verdict-only codes: never raised by the session, produced when a completed check is
# graded against thresholds. They are classes so that every code has one home.


class CertExpiring(CheckError):
    code = "cert_expiring"
    default_message = "The certificate expires soon"
    default_phase = Phase.TLS


class SlowResponse(CheckError):
    code = "slow_response"
    default_message = "The remote device responded slowly"
    default_phase = Phase.GREETING


class MailboxThreshold(CheckError):
    code = "mailbox_threshold"
    default_message = "The mailbox is above a configured threshold"
    default_phase = Phase.STAT


# --- the service -------------------------------------------------------------------------


class StorageError(Pop3WatchError):
    """The database is locked, gone or refused a write; callers buffer and retry.

    ``permanent`` marks what waiting cannot mend (a file that is not a database, a
    schema from a newer pop3watch): the service says so and stops instead of retrying.
    """

    code = "storage_unavailable"
    default_message = "The database is unavailable"
    default_phase = Phase.STORAGE

    def __init__(
        self, detail: str = "", *, phase: Phase | None = None, permanent: bool = False
    ) -> None:
        super().__init__(detail, phase=phase)
        self.permanent = permanent


class InternalError(Pop3WatchError):
    """A bug of pop3watch's own surfaced while checking: not a verdict on the server."""

    code = "internal_error"
    default_message = "Internal error in pop3watch (a bug; please report it)"


def _all_codes() -> dict[str, type[Pop3WatchError]]:
    found: dict[str, type[Pop3WatchError]] = {}
    stack: list[type[Pop3WatchError]] = [Pop3WatchError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


#: Every stable code and the class that owns it (the first class declaring the code).
ERROR_CODES: dict[str, type[Pop3WatchError]] = _all_codes()

__all__ = [
    "ERROR_CODES",
    "AuthFailed",
    "AuthUnsupported",
    "CertExpiring",
    "CertInvalid",
    "CheckError",
    "CheckTimeout",
    "ConfigError",
    "ConfigMissing",
    "ConnectFailed",
    "Disconnected",
    "InsecureAuthRefused",
    "LocalProtocolError",
    "MailboxLocked",
    "MailboxThreshold",
    "Phase",
    "Pop3WatchError",
    "ProtocolViolation",
    "ServiceUnavailable",
    "SlowResponse",
    "StarttlsInjection",
    "StorageError",
    "TlsFailed",
    "TlsUnavailable",
]
