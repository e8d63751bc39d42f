"""One registry of probers (blackbox_exporter's model): the engine knows no protocol.

Job: map a monitor ``type`` to its settings model and its check coroutine. Adding a
protocol (a mail round-trip, later) is one entry here.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from pop3watch.probe.pop3_check import check_pop3
from pop3watch.probe.result import CheckResult
from pop3watch.probe.settings import CheckSettings, TcpSettings
from pop3watch.probe.tcp_check import check_tcp
from pop3watch.probe.transcript import KeepTranscript


class ProbeRun(Protocol):
    """What a prober runs: ``check_pop3``, ``check_tcp``. ``settings`` is an instance of
    the prober's ``settings_model`` (checked by ``run_probe``)."""

    def __call__(
        self, settings: Any, /, *, transcript: KeepTranscript
    ) -> Awaitable[CheckResult]: ...


@dataclass(frozen=True, slots=True)
class Prober:
    name: str
    settings_model: type[BaseModel]
    run: ProbeRun


PROBERS: dict[str, Prober] = {
    "pop3": Prober("pop3", CheckSettings, check_pop3),
    "tcp": Prober("tcp", TcpSettings, check_tcp),
}


async def run_probe(kind: str, settings: BaseModel) -> CheckResult:
    """Run the prober registered for ``kind`` with already validated settings, as the
    service runs checks: the transcript comes with failures (warn, down) only, which is
    all the service keeps, so a passing check does not pay for making it safe to show."""
    prober = PROBERS[kind]
    if not isinstance(settings, prober.settings_model):
        raise TypeError(f"{kind} prober needs {prober.settings_model.__name__}")
    return await prober.run(settings, transcript=KeepTranscript.FAILURES)
