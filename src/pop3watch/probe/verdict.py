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
from pop3watch.probe.result import CertInfo, ChainCertInfo, ErrorInfo, MailboxInfo, Status


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
    mailbox: MailboxInfo | None, t: Thresholds
) -> tuple[list[CheckError], list[CheckError]]:
    """(down findings, warn findings) for the mailbox. Each measure is judged on its
    own: a count over its down limit is not warned about again, but a size over its warn
    limit still is, whatever the count did."""
    if mailbox is None:
        return [], []
    down: list[CheckError] = []
    warn: list[CheckError] = []
    for value, what, down_limit, warn_limit in (
        (mailbox.messages, "messages", t.down_messages, t.warn_messages),
        (mailbox.octets, "octets", t.down_octets, t.warn_octets),
    ):
        if _above(value, down_limit):
            down.append(MailboxThreshold(f"{value} {what}, down above {down_limit}"))
        elif _above(value, warn_limit):
            warn.append(MailboxThreshold(f"{value} {what}, warn above {warn_limit}"))
    return down, warn


def _cert_finding(
    cert: CertInfo | None,
    chain: ChainCertInfo | None,
    warn_days: int | None,
    now: datetime | None,
) -> CheckError | None:
    """Warn about whichever expires first within ``warn_days``: the leaf, or a
    certificate above it in the verified chain (the chain breaks when that one does)."""
    if cert is None or warn_days is None:
        return None
    what, not_after, days_left = "", cert.not_after, cert.days_left
    if chain is not None and chain.not_after < cert.not_after:
        what, not_after, days_left = (
            f"the chain's {chain.subject}: ",
            chain.not_after,
            chain.days_left,
        )
    remaining = not_after - (now or datetime.now(UTC))
    if remaining > timedelta(days=warn_days):
        return None
    if remaining.total_seconds() < 0:
        return CertExpiring(f"{what}expired {-days_left} days ago ({not_after:%Y-%m-%d %H:%M} UTC)")
    return CertExpiring(f"{what}{days_left} days left (not after {not_after:%Y-%m-%d %H:%M} UTC)")


_NO_THRESHOLDS = Thresholds()


def grade(
    error: Pop3WatchError | None,
    *,
    rtt_ms: float | None,
    cert: CertInfo | None = None,
    chain: ChainCertInfo | None = None,
    mailbox: MailboxInfo | None = None,
    thresholds: Thresholds = _NO_THRESHOLDS,
    now: datetime | None = None,
) -> Verdict:
    """The verdict for one check. A session error is always down and always the reason;
    otherwise down thresholds come before warnings, and the other findings are listed.
    A measure over its down limit is not also listed as over its warn limit."""
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
    warn: list[CheckError] = []
    if _above(rtt_ms, thresholds.down_rtt_ms):
        down.append(SlowResponse(f"{rtt_ms:.1f} ms, down above {thresholds.down_rtt_ms:g} ms"))
    elif _above(rtt_ms, thresholds.warn_rtt_ms):
        warn.append(SlowResponse(f"{rtt_ms:.1f} ms, warn above {thresholds.warn_rtt_ms:g} ms"))
    cert_finding = _cert_finding(cert, chain, thresholds.cert_warn_days, now)
    if cert_finding is not None:
        warn.insert(0, cert_finding)
    mailbox_down, mailbox_warn = _mailbox_findings(mailbox, thresholds)
    down += mailbox_down
    warn += mailbox_warn
    findings = [ErrorInfo.from_error(e) for e in (*down, *warn)]
    if down:
        return Verdict(Status.DOWN, findings[0], findings[1:])
    if warn:
        return Verdict(Status.WARN, findings[0], findings[1:])
    return Verdict(Status.UP, None, [])
