"""The whole service against real servers, on SQLite and PostgreSQL.

The service runs in-process against the real Dovecot and scripted servers; a separate
storage connection watches what it writes. Up, Warn, Down, Lost, Unreachable and
Maintenance must all happen, with exactly the right alerts in the outbox.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pop3watch.config import parse_config
from pop3watch.engine.service import Service
from pop3watch.model import AlertKind, MonitorState
from pop3watch.storage import Storage
from tests.fixtures.dovecot import DovecotServer
from tests.fixtures.scripted import Pop3Script, ScriptedFactory, ServerConn
from tests.storage.conftest import db_url

__all__ = ["db_url"]

pytestmark = pytest.mark.dovecot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


class Switch:
    """A server that answers -ERR until switched on."""

    def __init__(self) -> None:
        self.ok = False

    async def __call__(self, conn: ServerConn) -> None:
        if self.ok:
            await Pop3Script()(conn)
        else:
            await conn.send(b"-ERR [SYS/TEMP] backend down\r\n")
            await conn.close()


async def test_states_and_alerts_end_to_end(
    db_url: str, dovecot: DovecotServer, scripted: ScriptedFactory, tmp_path: Path
) -> None:
    switch = Switch()
    flaky = scripted(switch)
    slow = scripted(Pop3Script(greeting_delay=0.15))
    now = datetime.now(UTC)
    config = parse_config(
        f"""
service:
  database_url: "{db_url}"
  flush_interval_s: 0.1
  shutdown_grace_s: 2
defaults: {{interval_up: 1, interval_down: 1, interval_lost: 1, timeout: 1,
            failures_before_alert: 2, max_alerts: 2}}
monitors:
  - {{name: dovecot, host: 127.0.0.1, port: {dovecot.pop3_port}}}
  - {{name: slow, host: 127.0.0.1, port: {slow.port}, warn_rtt_ms: 50}}
  - {{name: flaky, host: 127.0.0.1, port: {flaky.port}}}
  - {{name: parent, type: tcp, host: 127.0.0.1, port: {free_port()}}}
  - {{name: child, host: 127.0.0.1, port: {free_port()}, depends_on: [parent]}}
  - name: maint
    host: 127.0.0.1
    port: {free_port()}
    maintenance:
      - start: "{(now - timedelta(hours=1)).isoformat()}"
        end: "{(now + timedelta(hours=1)).isoformat()}"
  - {{name: paused-one, host: 127.0.0.1, port: {free_port()}, enabled: false}}
"""
    )
    stop = asyncio.Event()
    service = Service(config)
    task = asyncio.create_task(service.run(stop))
    watcher = await Storage.connect(db_url, migrate=False) if await _ready(service) else None
    assert watcher is not None
    try:
        ids = {m.name: m.id for m in await watcher.list_monitors()}

        async def state(name: str) -> MonitorState | None:
            st = (await watcher.load_statuses()).get(ids[name])
            return st.state if st else None

        async def lost_and_settled() -> bool:
            return (
                await state("flaky") is MonitorState.LOST
                and await state("parent") is MonitorState.LOST
                and await state("slow") is MonitorState.WARN
                and await state("dovecot") is MonitorState.UP
                and await state("child") is MonitorState.UNREACHABLE
                and await state("maint") is MonitorState.MAINTENANCE
            )

        await wait_for(lost_and_settled, 30, "flaky and parent to be Lost, the rest settled")
        switch.ok = True

        async def recovered() -> bool:
            return await state("flaky") is MonitorState.UP

        await wait_for(recovered, 15, "flaky to recover")
        await asyncio.sleep(1.5)  # a few more rounds: nothing may be alerted twice
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)

    try:
        names = {v: k for k, v in ids.items()}
        alerts: dict[str, list[tuple[AlertKind | None, int | None]]] = {n: [] for n in ids}
        for t in await watcher.transitions(alerts_only=True):
            alerts[names[t.monitor_id]].append((t.alert, t.alert_seq))
        assert alerts == {
            "dovecot": [],
            "slow": [(AlertKind.WARN, None)],
            "flaky": [(AlertKind.DOWN, 1), (AlertKind.DOWN, 2), (AlertKind.RECOVERY, None)],
            "parent": [(AlertKind.DOWN, 1), (AlertKind.DOWN, 2)],
            "child": [],
            "maint": [],
            "paused-one": [],
        }
        assert await state("paused-one") is MonitorState.PAUSED
        flaky_path = [
            (t.from_state, t.to_state) for t in await watcher.transitions(monitor_id=ids["flaky"])
        ]
        assert flaky_path == [
            (MonitorState.UNKNOWN, MonitorState.WARN),
            (MonitorState.WARN, MonitorState.DOWN),
            (MonitorState.DOWN, MonitorState.LOST),
            (MonitorState.LOST, MonitorState.UP),
        ]
        flaky_results = await watcher.results(ids["flaky"])
        assert {r.error_code for r in flaky_results} >= {"service_unavailable", None}
        failed = [r for r in flaky_results if r.status == "down"]
        assert failed[0].transcript  # failures keep their transcript...
        assert all(
            r.transcript is None for r in flaky_results if r.status == "up"
        )  # ...successes do not
        maint_results = await watcher.results(ids["maint"])
        assert maint_results
        assert all(r.maintenance for r in maint_results)
        assert service.writer is not None
        assert service.writer.stats.dropped_results == 0
    finally:
        await watcher.close()


async def _ready(service: Service) -> bool:
    await asyncio.wait_for(service.ready.wait(), 30)
    return True
