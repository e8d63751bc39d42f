"""How check results look on a terminal: one human line, or the Nagios plugin format.

Rule: presentation only; the result already holds everything (and no secret).
"""

from __future__ import annotations

from pop3watch.errors import ConfigError, ConfigMissing, InternalError
from pop3watch.probe.result import ChainCertInfo, CheckResult, Status
from pop3watch.probe.verdict import Thresholds

EXIT_CODES = {Status.UP: 0, Status.WARN: 1, Status.DOWN: 2}
EXIT_CONFIG = 3
#: Codes that say the check could not run: bad configuration, or a bug of ours (not a
#: verdict on the server): exit 3, UNKNOWN, as plugins report their own faults.
NOT_RUN_CODES = frozenset({ConfigError.code, ConfigMissing.code, InternalError.code})
NAGIOS_STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def exit_code(result: CheckResult) -> int:
    """0 up, 1 warn, 2 down, 3 when the check could not run for lack of configuration
    (or because of a fault of pop3watch's own)."""
    if result.error is not None and result.error.code in NOT_RUN_CODES:
        return EXIT_CONFIG
    return EXIT_CODES[result.status]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def human_line(result: CheckResult) -> str:
    """``UP 12.3 ms mail.example.com:995 (192.0.2.1) TLSv1.3, cert 89 days``, or the reason."""
    parts = [result.status.value.upper(), _ms(result.rtt_ms), result.target]
    if result.address:
        parts.append(f"({result.address})")
    if result.tls is not None:
        tls = f"{result.tls.version}"
        if result.tls.cert is not None:
            verified = "" if result.tls.cert.verified else " UNVERIFIED"
            tls += f", cert {result.tls.cert.days_left} days{verified}"
            chain = _chain_first(result)
            if chain is not None:
                tls += f" (chain {chain.days_left} days)"
        parts.append(tls)
    if result.mailbox is not None:
        parts.append(f"{result.mailbox.messages} messages / {result.mailbox.octets} octets")
    line = " ".join(parts)
    if result.error is not None:
        line += f" - {result.error.code}: {result.error.message}"
    for warning in result.warnings:
        line += f"; {warning.code}: {warning.message}"
    return line


def _chain_first(result: CheckResult) -> ChainCertInfo | None:
    """The verified chain's first expiry, when it comes before the leaf's own."""
    tls = result.tls
    if tls is None or tls.cert is None or tls.chain_expiry is None:
        return None
    return tls.chain_expiry if tls.chain_expiry.not_after < tls.cert.not_after else None


def _threshold(value: float | None, scale: float = 1.0) -> str:
    return "" if value is None else f"{value * scale:.6f}"


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def nagios_output(result: CheckResult, *, thresholds: Thresholds, timeout_s: float) -> str:
    """monitoring-plugins format: ``POP3 OK - text|time=0.012000s;warn;crit;0;timeout ...``.

    Performance data is only what was measured: without a greeting there is no ``time``,
    and with nothing measured at all there is no ``|`` part. Thresholds use the plugins'
    range syntax: ``14:`` for the certificate's days (alert below 14), a plain number for
    the measures that alert above it.
    """
    t = thresholds
    state = NAGIOS_STATES[exit_code(result)]
    if result.error is None:
        text = f"{_ms(result.rtt_ms)} response time on {result.target}"
        if result.tls is not None and result.tls.cert is not None:
            cert = result.tls.cert
            if cert.verified:
                text += f", {result.tls.version}, certificate valid {cert.days_left} days"
                chain = _chain_first(result)
                if chain is not None:
                    text += f", its chain {chain.days_left} days ({chain.subject})"
            else:
                text += (
                    f", {result.tls.version}, certificate UNVERIFIED, "
                    f"expires in {cert.days_left} days"
                )
        if result.mailbox is not None:
            text += f", {result.mailbox.messages} messages"
    else:
        text = f"{result.error.code}: {result.error.message}"
    text = text.replace("|", "/").replace("\n", " ")
    perf = []
    # No greeting, no response time: a made-up time=0 would graph as the fastest answer.
    if result.rtt_ms is not None:
        perf.append(
            f"time={result.rtt_ms / 1000:.6f}s;{_threshold(t.warn_rtt_ms, 0.001)};"
            f"{_threshold(t.down_rtt_ms, 0.001)};0.000000;{timeout_s:.6f}"
        )
    if result.tls is not None and result.tls.cert is not None:
        warn_days = "" if t.cert_warn_days is None else f"{t.cert_warn_days}:"
        perf.append(f"cert_days={result.tls.cert.days_left};{warn_days};;;")
        if result.tls.chain_expiry is not None:
            perf.append(f"chain_days={result.tls.chain_expiry.days_left};{warn_days};;;")
    if result.mailbox is not None:
        perf.append(
            f"messages={result.mailbox.messages};{_count(t.warn_messages)};"
            f"{_count(t.down_messages)};0;"
        )
        perf.append(
            f"octets={result.mailbox.octets}B;{_count(t.warn_octets)};{_count(t.down_octets)};0;"
        )
    if not perf:
        return f"POP3 {state} - {text}"
    return f"POP3 {state} - {text}|{' '.join(perf)}"
