"""The one result vocabulary of every prober (blackbox_exporter's model).

Job: what a check found, as data the engine stores, the API returns and the CLI prints:
status, one typed error, timings per phase, TLS and certificate facts, capabilities,
mailbox size, the address used and a redacted transcript. Rule: nothing in here may
ever hold a secret.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from pop3watch.errors import Pop3WatchError


def round_ms(value: float) -> float:
    """Milliseconds to three decimals (a microsecond), what results report.

    ``round(value * 1000) / 1000`` rather than ``round(value, 3)``: for a float with
    digits CPython's ``round`` goes through a decimal string and back (dtoa, snprintf,
    strtod), several thousand instructions, and a check rounds half a dozen values.
    The two differ only on exact halves, below the clock's precision.
    """
    return round(value * 1000) / 1000


class Status(StrEnum):
    UP = "up"
    WARN = "warn"
    DOWN = "down"


class ErrorInfo(BaseModel):
    """A typed reason: stable ``code``, human ``message``, and the phase it happened in."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    phase: str | None = None

    @classmethod
    def from_error(cls, error: Pop3WatchError) -> ErrorInfo:
        return cls(
            code=error.code, message=error.message, phase=error.phase.value if error.phase else None
        )


class CertInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    issuer: str
    sans: list[str]
    serial: str
    not_before: datetime
    not_after: datetime
    days_left: int
    fingerprint_sha256: str
    verified: bool
    #: The leaf's public key ("RSA", "EC", "Ed25519", "Ed448", "DSA"), its size in bits
    #: and, for EC, its curve; None where ``cryptography`` cannot read the key.
    key_type: str | None = None
    key_bits: int | None = None
    key_curve: str | None = None
    #: The hash of the issuer's signature on the leaf ("sha256"; "sha1" is what a
    #: security review looks for); None for Ed25519/Ed448, which have none apart.
    signature_hash: str | None = None


class ChainCertInfo(BaseModel):
    """The certificate above the leaf (an intermediate, or the trusted root) that
    expires first in the chain OpenSSL verified: when it expires the chain stops
    verifying, however long the leaf itself still has (the pattern of DST Root CA X3 in
    2021, or of an intermediate nobody renewed)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    not_after: datetime
    days_left: int


class TlsInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: str  # "implicit" or "starttls"
    version: str | None = None
    cipher: str | None = None
    cert: CertInfo | None = None
    # None when the chain was not verified (verify off, a pinned certificate) or the
    # trusted certificate is the leaf itself.
    chain_expiry: ChainCertInfo | None = None


class MailboxInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: int
    octets: int


class Timings(BaseModel):
    """Milliseconds spent in each phase; None where the phase did not run."""

    dns: float | None = None
    connect: float | None = None
    tls: float | None = None
    greeting: float | None = None
    capa: float | None = None
    auth: float | None = None
    stat: float | None = None
    quit: float | None = None
    total: float = 0.0


class TranscriptLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    t_ms: float
    dir: str  # "C" client, "S" server, "*" note from pop3watch
    text: str


class CheckResult(BaseModel):
    """Outcome of one check. ``error`` is set for warn and down, None for up."""

    probe: str = "pop3"
    status: Status
    error: ErrorInfo | None = None
    # default_factory, not a shared default: pydantic deep-copies a default model or
    # list on every construction, which costs more than the rest of the result.
    warnings: list[ErrorInfo] = Field(default_factory=list)
    started_at: datetime
    target: str
    address: str | None = None
    rtt_ms: float | None = None
    timings_ms: Timings = Field(default_factory=Timings)
    tls: TlsInfo | None = None
    capabilities: list[str] = Field(default_factory=list)
    auth_mechanism: str | None = None
    mailbox: MailboxInfo | None = None
    greeting: str | None = None
    transcript: list[TranscriptLine] = Field(default_factory=list)

    @classmethod
    def failed(
        cls, error: Pop3WatchError, *, target: str, probe: str = "pop3", started_at: datetime
    ) -> CheckResult:
        """The result of a check that could not run: down, with ``error`` as its reason
        and nothing measured (the shape every reader already parses)."""
        return cls(
            probe=probe,
            status=Status.DOWN,
            error=ErrorInfo.from_error(error),
            started_at=started_at,
            target=target,
        )

    @property
    def ok(self) -> bool:
        return self.status is not Status.DOWN
