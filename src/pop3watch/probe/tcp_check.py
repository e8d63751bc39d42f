"""The TCP check: resolve, connect, optionally match a banner. A parent for POP3 monitors.

Rule: same result vocabulary and phases as the POP3 check (blackbox_exporter's model).
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime

from pop3watch.errors import CheckTimeout, Disconnected, Phase, Pop3WatchError, ProtocolViolation
from pop3watch.probe.connect import describe_os_error, open_stream, resolve
from pop3watch.probe.result import CheckResult, Timings, round_ms
from pop3watch.probe.settings import TcpSettings
from pop3watch.probe.stream import Stream
from pop3watch.probe.transcript import KeepTranscript, Redactor, Transcript, escape
from pop3watch.probe.verdict import Thresholds, grade

MAX_BANNER = 1024


async def _read_banner(stream: Stream) -> str:
    data = b""
    while b"\n" not in data:
        chunk = await stream.read()
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_BANNER:
            raise ProtocolViolation(f"banner longer than {MAX_BANNER} octets")
    return data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")


async def check_tcp(
    settings: TcpSettings, *, transcript: KeepTranscript = KeepTranscript.ALWAYS
) -> CheckResult:
    """Connect (and read a banner when ``expect_banner`` is set); never raises for the network.
    ``transcript`` as for ``check_pop3``."""
    t0 = time.perf_counter()
    started_at = datetime.now(UTC)
    log = Transcript(Redactor(), started=t0)
    timings: dict[str, float] = {}
    phase = Phase.DNS
    address: str | None = None
    rtt_ms: float | None = None
    stream: Stream | None = None
    error: Pop3WatchError | None = None
    try:
        async with asyncio.timeout(settings.timeout):
            start = time.perf_counter()
            addresses = await resolve(settings.host, settings.port, settings.ip_family)
            timings["dns"] = (time.perf_counter() - start) * 1000
            phase, start = Phase.CONNECT, time.perf_counter()
            stream = await open_stream(addresses, settings.port)
            address = stream.address
            timings["connect"] = (time.perf_counter() - start) * 1000
            # The handshake as the kernel saw it, not as a busy event loop noticed it.
            rtt_ms = (stream.established_at - stream.connect_started_at) * 1000
            log.note(f"connected to {address}")
            if settings.expect_banner is not None:
                phase, start = Phase.GREETING, time.perf_counter()
                banner = await _read_banner(stream)
                timings["greeting"] = (time.perf_counter() - start) * 1000
                rtt_ms = max(0.0, (stream.received_at - stream.established_at) * 1000)
                log.server(banner)
                if not re.search(settings.expect_banner, banner):
                    raise ProtocolViolation(f"banner {escape(banner[:60])!r} does not match")
    except Pop3WatchError as exc:
        error = exc
    except TimeoutError:
        error = CheckTimeout(f"nothing complete within {settings.timeout:g} s", phase=phase)
    except (OSError, EOFError) as exc:
        error = Disconnected(describe_os_error(exc), phase=phase)
    finally:
        if stream is not None:
            stream.abort()
    if error is not None and error.phase is None:
        error.phase = phase
    verdict = grade(
        error, rtt_ms=rtt_ms, thresholds=Thresholds(settings.warn_rtt_ms, settings.down_rtt_ms)
    )
    timings["total"] = (time.perf_counter() - t0) * 1000
    return CheckResult(
        probe="tcp",
        status=verdict.status,
        error=verdict.error,
        warnings=verdict.warnings,
        started_at=started_at,
        target=settings.target,
        address=address,
        rtt_ms=round_ms(rtt_ms) if rtt_ms is not None else None,
        timings_ms=Timings(**{k: round_ms(v) for k, v in timings.items()}),
        transcript=log.lines() if transcript.keeps(verdict.status) else [],
    )
