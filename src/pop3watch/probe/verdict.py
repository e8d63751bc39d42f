"""Grade a finished check: up, warn or down, and the one reason.

Job: turn what a session found (an error, the response time, the certificate, the
mailbox size) into the stable verdict vocabulary. Rule: a pure function, so every
threshold rule is tested without a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pop3watch.errors import (
    CertExpiring,
    CheckError,
    MailboxThreshold,
    Pop3WatchError,
    SlowResponse,
)
from pop3watch.probe.result import CertInfo, ErrorInfo, MailboxInfo, Status


@dataclass(frozen=True, slots=True)
class Thresholds:
    warn_rtt_ms: float | None = None
    down_rtt_ms: float | None = None
    cert_warn_days: int | None = None
    warn_messages: int | None = None
    down_messages: int | None = None
    warn_octets: int | None = None
    down_octets: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    error: ErrorInfo | None
    warnings: list[ErrorInfo]


def _above(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value > limit


def _mailbox_findings(
    mailbox: MailboxInfo | None, t: Thresholds, *, down: bool
) -> list[CheckError]:
    if mailbox is None:
        return []
    found: list[CheckError] = []
    messages_limit = t.down_messages if down else t.warn_messages
    octets_limit = t.down_octets if down else t.warn_octets
    if _above(mailbox.messages, messages_limit):
        found.append(MailboxThreshold(f"{mailbox.messages} messages, limit {messages_limit}"))
    if _above(mailbox.octets, octets_limit):
        found.append(MailboxThreshold(f"{mailbox.octets} octets, limit {octets_limit}"))
    return found


def _cert_finding(
    cert: CertInfo | None, warn_days: int | None, now: datetime | None
) -> CheckError | None:
    if cert is None or warn_days is None:
        return None
    remaining = cert.not_after - (now or datetime.now(UTC))
    if remaining > timedelta(days=warn_days):
        return None
    if remaining.total_seconds() < 0:
        return CertExpiring(
            f"expired {-cert.days_left} days ago ({cert.not_after:%Y-%m-%d %H:%M} UTC)"
        )
    return CertExpiring(
        f"{cert.days_left} days left (not after {cert.not_after:%Y-%m-%d %H:%M} UTC)"
    )


_NO_THRESHOLDS = Thresholds()


def grade(
    error: Pop3WatchError | None,
    *,
    rtt_ms: float | None,
    cert: CertInfo | None = None,
    mailbox: MailboxInfo | None = None,
    thresholds: Thresholds = _NO_THRESHOLDS,
    now: datetime | None = None,
) -> Verdict:
    """The verdict for one check. A session error is always down and always the reason;
    otherwise down thresholds come before warnings, and the other findings are listed."""
    if error is not None:
        return Verdict(Status.DOWN, ErrorInfo.from_error(error), [])
    if (
        cert is None
        and mailbox is None
        and not _above(rtt_ms, thresholds.warn_rtt_ms)
        and not _above(rtt_ms, thresholds.down_rtt_ms)
    ):
        # The common verdict, told without building the lists of findings below.
        return Verdict(Status.UP, None, [])
    down: list[CheckError] = []
    if _above(rtt_ms, thresholds.down_rtt_ms):
        down.append(SlowResponse(f"{rtt_ms:.1f} ms, down above {thresholds.down_rtt_ms:g} ms"))
    down += _mailbox_findings(mailbox, thresholds, down=True)
    warn: list[CheckError] = []
    cert_finding = _cert_finding(cert, thresholds.cert_warn_days, now)
    if cert_finding is not None:
        warn.append(cert_finding)
    if not down and _above(rtt_ms, thresholds.warn_rtt_ms):
        warn.append(SlowResponse(f"{rtt_ms:.1f} ms, warn above {thresholds.warn_rtt_ms:g} ms"))
    if not any(isinstance(d, MailboxThreshold) for d in down):
        warn += _mailbox_findings(mailbox, thresholds, down=False)
    findings = [ErrorInfo.from_error(e) for e in (*down, *warn)]
    if down:
        return Verdict(Status.DOWN, findings[0], findings[1:])
    if warn:
        return Verdict(Status.WARN, findings[0], findings[1:])
    return Verdict(Status.UP, None, [])
