"""kill -9 in the middle of an outage, restart: no history lost, nothing alerted twice."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pop3watch.model import AlertKind, MonitorState, Transition
from pop3watch.storage import Storage
from tests.fixtures.dovecot import DovecotServer
from tests.storage.conftest import db_url

__all__ = ["db_url"]

pytestmark = pytest.mark.dovecot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pop3watch", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def wait_for(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, log: Path
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}; service log:\n{log.read_text()}")
        await asyncio.sleep(0.2)


def assert_consistent_chain(transitions: list[Transition]) -> None:
    """Each transition starts where the previous one ended: a duplicate breaks the chain."""
    for before, after in itertools.pairwise(transitions):
        assert after.from_state is before.to_state, (before, after)
    seqs = [t.alert_seq for t in transitions if t.alert is AlertKind.DOWN]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


async def test_kill_9_and_restart(db_url: str, dovecot: DovecotServer, tmp_path: Path) -> None:
    config = tmp_path / "pop3watch.yaml"
    config.write_text(
        f"""
service: {{database_url: "{db_url}", flush_interval_s: 0.1}}
defaults: {{interval_up: 1, interval_down: 1, interval_lost: 1, timeout: 1,
            failures_before_alert: 2, max_alerts: 4}}
monitors:
  - {{name: dovecot, host: 127.0.0.1, port: {dovecot.pop3_port}}}
  - {{name: broken, host: 127.0.0.1, port: {free_port()}}}
"""
    )
    log = tmp_path / "service.log"
    proc = start(config, log)
    storage: Storage | None = None
    try:
        for _ in range(100):
            try:
                storage = await Storage.connect(db_url, migrate=False)
                break
            except Exception:
                await asyncio.sleep(0.2)
        assert storage is not None, log.read_text()
        watcher = storage

        async def broken_id() -> int | None:
            return next((m.id for m in await watcher.list_monitors() if m.name == "broken"), None)

        async def down_alerts() -> int:
            mid = await broken_id()
            if mid is None:
                return 0
            return sum(t.alert is AlertKind.DOWN for t in await watcher.transitions(monitor_id=mid))

        async def first_alert() -> bool:
            return await down_alerts() >= 1

        await wait_for(first_alert, 30, "the first failure alert", log)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        mid = await broken_id()
        assert mid is not None
        before_results = {r.id for r in await watcher.results(mid)}
        before_transitions = await watcher.transitions()

        proc = start(config, log)

        async def lost() -> bool:
            st = (await watcher.load_statuses()).get(mid)
            return st is not None and st.state is MonitorState.LOST

        await wait_for(lost, 40, "the monitor to go Lost after the restart", log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()

        after_results = {r.id for r in await watcher.results(mid)}
        assert before_results <= after_results
        assert len(after_results) > len(before_results)
        after_transitions = await watcher.transitions()
        assert {t.id for t in before_transitions} <= {t.id for t in after_transitions}
        for monitor in await watcher.list_monitors():
            assert_consistent_chain(await watcher.transitions(monitor_id=monitor.id))
        assert await down_alerts() == 4
        assert "stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if storage is not None:
            await storage.close()
