"""Grading a finished check against thresholds (pure, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pop3watch.errors import AuthFailed, Phase
from pop3watch.probe.result import CertInfo, ChainCertInfo, MailboxInfo, Status
from pop3watch.probe.verdict import Thresholds, grade

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def cert(days: float) -> CertInfo:
    not_after = NOW + timedelta(days=days)
    return CertInfo(
        subject="CN=x",
        issuer="CN=ca",
        sans=[],
        serial="1",
        not_before=NOW - timedelta(days=300),
        not_after=not_after,
        days_left=int((not_after - NOW).total_seconds() // 86400),
        fingerprint_sha256="0" * 64,
        verified=True,
    )


def test_a_session_error_is_always_down_and_the_reason() -> None:
    v = grade(
        AuthFailed("no", phase=Phase.AUTH),
        rtt_ms=9999,
        thresholds=Thresholds(warn_rtt_ms=1),
        now=NOW,
    )
    assert v.status is Status.DOWN
    assert v.error is not None
    assert (v.error.code, v.error.phase) == ("auth_failed", "auth")
    assert v.warnings == []


@pytest.mark.parametrize(
    ("rtt", "status", "code"),
    [
        (50.0, Status.UP, None),
        (150.0, Status.WARN, "slow_response"),
        (250.0, Status.DOWN, "slow_response"),
    ],
)
def test_rtt_thresholds(rtt: float, status: Status, code: str | None) -> None:
    v = grade(None, rtt_ms=rtt, thresholds=Thresholds(warn_rtt_ms=100, down_rtt_ms=200), now=NOW)
    assert v.status is status
    assert (v.error.code if v.error else None) == code


@pytest.mark.parametrize(
    ("days", "status"), [(30, Status.UP), (14.5, Status.UP), (13.9, Status.WARN), (-2, Status.WARN)]
)
def test_certificate_expiry_window(days: float, status: Status) -> None:
    v = grade(None, rtt_ms=1, cert=cert(days), thresholds=Thresholds(cert_warn_days=14), now=NOW)
    assert v.status is status
    if status is Status.WARN:
        assert v.error is not None
        assert v.error.code == "cert_expiring"
        assert ("expired" in v.error.message) is (days < 0)


def test_down_threshold_wins_and_warnings_are_kept() -> None:
    v = grade(
        None,
        rtt_ms=500,
        cert=cert(3),
        mailbox=MailboxInfo(messages=10, octets=5),
        thresholds=Thresholds(down_rtt_ms=100, cert_warn_days=14, warn_messages=5),
        now=NOW,
    )
    assert v.status is Status.DOWN
    assert v.error is not None
    assert v.error.code == "slow_response"
    assert [w.code for w in v.warnings] == ["cert_expiring", "mailbox_threshold"]


def test_mailbox_down_beats_mailbox_warn_of_the_same_measure_only() -> None:
    """The count is over its down limit, so it is not warned about as well; the size
    is a measure of its own and its warning is kept."""
    v = grade(
        None,
        rtt_ms=1,
        mailbox=MailboxInfo(messages=10, octets=5000),
        thresholds=Thresholds(warn_messages=5, down_messages=8, warn_octets=100),
        now=NOW,
    )
    assert v.status is Status.DOWN
    assert v.error is not None
    assert v.error.message.endswith("10 messages, down above 8")
    assert [w.message.rsplit(": ", 1)[1] for w in v.warnings] == ["5000 octets, warn above 100"]


def test_a_down_mailbox_keeps_the_slow_response_warning() -> None:
    v = grade(
        None,
        rtt_ms=300,
        mailbox=MailboxInfo(messages=5000, octets=10**9),
        thresholds=Thresholds(warn_rtt_ms=200, warn_messages=100, down_octets=1000),
        now=NOW,
    )
    assert v.status is Status.DOWN
    assert v.error is not None
    assert "octets, down above 1000" in v.error.message
    assert sorted(w.code for w in v.warnings) == ["mailbox_threshold", "slow_response"]


def test_a_slow_response_over_its_down_limit_is_not_also_a_warning() -> None:
    v = grade(None, rtt_ms=500, thresholds=Thresholds(warn_rtt_ms=100, down_rtt_ms=200))
    assert v.status is Status.DOWN
    assert v.warnings == []


def chain(days: float, subject: str = "CN=Intermediate") -> ChainCertInfo:
    not_after = NOW + timedelta(days=days)
    return ChainCertInfo(
        subject=subject,
        not_after=not_after,
        days_left=int((not_after - NOW).total_seconds() // 86400),
    )


@pytest.mark.parametrize(
    ("leaf_days", "chain_days", "status", "names_the_chain"),
    [
        (90, 5, Status.WARN, True),  # the intermediate goes first: the chain breaks then
        (5, 3, Status.WARN, True),
        (3, 5, Status.WARN, False),  # the leaf goes first: it is the one named
        (90, 30, Status.UP, False),
        (90, None, Status.UP, False),
    ],
)
def test_the_chain_above_the_leaf_counts_for_expiry(
    leaf_days: float, chain_days: float | None, status: Status, names_the_chain: bool
) -> None:
    v = grade(
        None,
        rtt_ms=1,
        cert=cert(leaf_days),
        chain=chain(chain_days) if chain_days is not None else None,
        thresholds=Thresholds(cert_warn_days=14),
        now=NOW,
    )
    assert v.status is status
    if status is Status.WARN:
        assert v.error is not None and v.error.code == "cert_expiring"
        assert ("the chain's CN=Intermediate" in v.error.message) is names_the_chain
        days = chain_days if names_the_chain else leaf_days
        assert f"{days} days left" in v.error.message


def test_an_expired_chain_certificate_is_named() -> None:
    v = grade(
        None,
        rtt_ms=1,
        cert=cert(90),
        chain=chain(-2, "CN=Old Root"),
        thresholds=Thresholds(cert_warn_days=14),
        now=NOW,
    )
    assert v.error is not None
    assert v.error.message.endswith(
        "the chain's CN=Old Root: expired 2 days ago (2026-11-21 12:00 UTC)"
    )


def test_without_cert_warn_days_the_chain_is_not_judged() -> None:
    v = grade(None, rtt_ms=1, cert=cert(90), chain=chain(1), now=NOW)
    assert v.status is Status.UP
