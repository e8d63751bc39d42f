"""What a POP3 check is asked to do: one validated, immutable settings model.

Job: describe target, TLS, certificate, auth, STAT and thresholds, with safe defaults
(verify certificates, never send credentials in clear). Rule: secrets are *references*
(environment variable, file, command), never values, so settings can be stored, logged
and shown without leaking anything.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pop3watch.pop3 import PASSWORD_MECHANISMS, TOKEN_MECHANISMS
from pop3watch.probe.verdict import Thresholds

MAX_TIMEOUT_S = 900.0
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
# "mail.example.com:995", "10.0.0.1:110", "[::1]:995"
_HOST_AND_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.%\w]+\]|[^:\[\]]+):\d+$")


class TlsMode(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    STARTTLS_IF_AVAILABLE = "starttls-if-available"
    TLS = "tls"
    TLS_IF_AVAILABLE = "tls-if-available"

    @property
    def implicit(self) -> bool:
        return self in (TlsMode.TLS, TlsMode.TLS_IF_AVAILABLE)

    @property
    def starttls(self) -> bool:
        return self in (TlsMode.STARTTLS, TlsMode.STARTTLS_IF_AVAILABLE)

    @property
    def required(self) -> bool:
        return self in (TlsMode.STARTTLS, TlsMode.TLS)


class AuthMode(StrEnum):
    NONE = "none"
    USER = "user"
    APOP = "apop"
    SASL = "sasl"


class IpFamily(StrEnum):
    AUTO = "auto"
    V4 = "4"
    V6 = "6"


SASL_MECHANISMS = (*PASSWORD_MECHANISMS, *TOKEN_MECHANISMS)

Port = Annotated[int, Field(ge=1, le=65535)]
NonNegative = Annotated[int, Field(ge=0)]
Millis = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)  # an IPv6 zone ("fe80::1%eth0") is accepted too
    except ValueError:
        return False
    return True


def _dns_name(value: str) -> str | None:
    """``value`` as an ASCII DNS name (an internationalized one in its IDNA form), or
    None: labels of 1-63 letters, digits, hyphens or underscores, 253 octets in all."""
    if not value.isascii():
        try:
            value = value.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = value.removesuffix(".").split(".")
    if len(value) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return value


def normalize_host(value: str) -> str:
    """Strip blanks and IPv6 brackets; refuse anything that is not a name or address.

    Refused here rather than when the check runs: a port glued to the host
    ("mail:995") would otherwise be looked up in DNS and reported as dns_failed, and a
    malformed name would only fail inside the TLS library."""
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if _is_ip(value):
        return value
    name = _dns_name(value)
    if name is not None:
        return name
    if _HOST_AND_PORT.match(value):
        raise ValueError("not a host name or IP address (give the port on its own)")
    raise ValueError("not a host name or IP address")


def _env_name(value: str | None) -> str | None:
    """An environment variable's name, never a value: a password pasted where its
    variable's name belongs would otherwise be stored with the settings and quoted in
    every "is not set" message. Deliberately not echoed in the error."""
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(
            "must be the name of an environment variable (letters, digits and _, not "
            "starting with a digit), not the secret itself"
        )
    return value


class SecretSource(BaseModel):
    """Where a secret comes from; exactly one of the three is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None
    command: str | None = None

    _env = field_validator("env")(_env_name)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(x is not None for x in (self.env, self.file, self.command)) != 1:
            raise ValueError("give exactly one of env, file, command")
        return self

    def describe(self) -> str:
        """Where the secret lives, for messages; never the secret itself."""
        if self.env is not None:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "command"


class CheckSettings(BaseModel):
    """Everything one POP3 check needs. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=253)
    port: Port | None = None
    ip_family: IpFamily = IpFamily.AUTO
    tls: TlsMode = TlsMode.NONE
    ca_file: Path | None = None
    fingerprint: str | None = None
    verify: bool = True
    server_name: str | None = None
    cert_warn_days: Annotated[int, Field(ge=0, le=3650)] = 14
    capa: bool = True
    auth: AuthMode = AuthMode.NONE
    sasl_mechanism: str | None = None
    user: str | None = Field(default=None, max_length=255)
    password_env: str | None = None
    password_file: Path | None = None
    password_command: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    token_command: str | None = None
    allow_plaintext_auth: bool = False
    stat: bool = False
    warn_messages: NonNegative | None = None
    down_messages: NonNegative | None = None
    warn_octets: NonNegative | None = None
    down_octets: NonNegative | None = None
    timeout: Timeout = 10.0
    warn_rtt_ms: Millis | None = None
    down_rtt_ms: Millis | None = None

    _host = field_validator("host")(normalize_host)
    _env_names = field_validator("password_env", "token_env")(_env_name)

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str | None) -> str | None:
        return None if value is None else normalize_host(value)

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalized = value.replace(":", "").replace(" ", "").lower()
        normalized = normalized.removeprefix("sha256/").removeprefix("sha256:")
        if not _FINGERPRINT.match(normalized):
            raise ValueError("must be a SHA-256 fingerprint: 64 hex digits, colons allowed")
        return normalized

    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in SASL_MECHANISMS:
            raise ValueError(f"must be one of {', '.join(SASL_MECHANISMS)}")
        return value.upper()

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "\r\n\0"):
            raise ValueError("must not contain CR, LF or NUL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (
            sum(
                x is not None
                for x in (self.password_env, self.password_file, self.password_command)
            )
            > 1
        ):
            raise ValueError("give at most one of password_env, password_file, password_command")
        if sum(x is not None for x in (self.token_env, self.token_file, self.token_command)) > 1:
            raise ValueError("give at most one of token_env, token_file, token_command")
        if self.tls is TlsMode.NONE and (self.ca_file or self.fingerprint):
            raise ValueError("ca_file and fingerprint need a TLS mode")
        if self.auth is not AuthMode.SASL and self.sasl_mechanism is not None:
            raise ValueError("sasl_mechanism needs auth: sasl")
        if self.uses_token and self.user is not None and "\x01" in self.user:
            raise ValueError("user must not contain ^A (0x01) with an OAuth token mechanism")
        for low, high in (
            ("warn_rtt_ms", "down_rtt_ms"),
            ("warn_messages", "down_messages"),
            ("warn_octets", "down_octets"),
        ):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} must not exceed {high}")
        if not self.stat and any(
            v is not None
            for v in (self.warn_messages, self.down_messages, self.warn_octets, self.down_octets)
        ):
            raise ValueError("mailbox thresholds need stat: true")
        if self.auth is AuthMode.NONE and any(
            v is not None
            for v in (
                self.user,
                self.password_env,
                self.password_file,
                self.password_command,
                self.token_env,
                self.token_file,
                self.token_command,
            )
        ):
            # Credentials without an auth mode would give a green check that never
            # logged in: surely not what was meant.
            raise ValueError("user, password and token need an auth mode (user, apop or sasl)")
        if self.auth is AuthMode.APOP and self.user is not None and " " in self.user:
            raise ValueError("user must not contain a space with auth: apop (APOP name digest)")
        if self.stat and self.auth is AuthMode.NONE:
            raise ValueError("stat: true needs an auth mode (STAT works only after login)")
        return self

    # --- derived values ---------------------------------------------------------------
    # Cached per instance: every check of a monitor reads them, and settings are frozen.
    # (model_copy below drops the cache, since an update can change what they derive from.)

    @cached_property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 995 if self.tls.implicit else 110

    @property
    def uses_token(self) -> bool:
        """SASL with an OAuth bearer token: a token mechanism was named, or none was named
        and only a token (no password) is configured."""
        if self.auth is not AuthMode.SASL:
            return False
        if self.sasl_mechanism is not None:
            return self.sasl_mechanism in TOKEN_MECHANISMS
        return self.password_is_unset() and not self.token_is_unset()

    def secret_source(self) -> SecretSource | None:
        """The configured source of the password (or bearer token), if any."""
        if self.uses_token:
            env, file, command = self.token_env, self.token_file, self.token_command
        else:
            env, file, command = self.password_env, self.password_file, self.password_command
        if env is None and file is None and command is None:
            return None
        return SecretSource(env=env, file=file, command=command)

    def token_is_unset(self) -> bool:
        return self.token_env is None and self.token_file is None and self.token_command is None

    def password_is_unset(self) -> bool:
        return (
            self.password_env is None
            and self.password_file is None
            and self.password_command is None
        )

    def missing_fields(self) -> list[str]:
        """Required fields that are absent for the chosen auth mode (config_missing)."""
        if self.auth is AuthMode.NONE:
            return []
        missing = [] if self.user else ["user"]
        if self.secret_source() is None:
            missing.append(
                "token_env/token_file/token_command"
                if self.uses_token
                else "password_env/password_file"
            )
        return missing

    @cached_property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.effective_port}"

    @cached_property
    def thresholds(self) -> Thresholds:
        """The grading thresholds among these settings."""
        return Thresholds(
            warn_rtt_ms=self.warn_rtt_ms,
            down_rtt_ms=self.down_rtt_ms,
            cert_warn_days=self.cert_warn_days,
            warn_messages=self.warn_messages,
            down_messages=self.down_messages,
            warn_octets=self.warn_octets,
            down_octets=self.down_octets,
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """``BaseModel.model_copy`` without the cached derived values of the original."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _DERIVED:
            copy.__dict__.pop(name, None)
        return copy


# The cached derived values, as the class declares them (a new one is dropped too).
_DERIVED = tuple(
    name for name, value in vars(CheckSettings).items() if isinstance(value, cached_property)
)


class TcpSettings(BaseModel):
    """A plain TCP check (a dependency parent for POP3 monitors): connect, optionally
    read a banner and match it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=253)
    port: Port
    ip_family: IpFamily = IpFamily.AUTO
    timeout: Timeout = 10.0
    expect_banner: str | None = Field(
        default=None, description="regular expression the first line must match"
    )
    warn_rtt_ms: Millis | None = None
    down_rtt_ms: Millis | None = None

    _host = field_validator("host")(normalize_host)

    @field_validator("expect_banner")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @property
    def effective_port(self) -> int:
        return self.port

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
