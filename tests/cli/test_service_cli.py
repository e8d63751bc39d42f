"""`pop3watch validate | status | history | report` as subprocesses, on a database the
storage layer filled with a known story."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pop3watch.model import AlertKind, MonitorState, MonitorStatus, Transition
from pop3watch.storage import MonitorRecord, StatusUpdate, Storage, StoredResult, WriteBatch


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pop3watch", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


@pytest.fixture
async def filled(tmp_path: Path) -> Path:
    """A config whose database holds: 'good' up for two hours, 'bad' down for the last 30 min."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'pop3watch.db'}"
    config = tmp_path / "pop3watch.yaml"
    config.write_text(
        f'service: {{database_url: "{url}"}}\n'
        "monitors:\n"
        "  - {name: good, host: 127.0.0.1}\n"
        "  - {name: bad, host: 127.0.0.1}\n"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    storage = await Storage.connect(url)
    try:
        ids = await storage.sync_monitors(
            [MonitorRecord("good", "pop3", True, {}), MonitorRecord("bad", "pop3", True, {})]
        )
        results = []
        for i in range(120):
            at = now - timedelta(minutes=120 - i)
            results.append(StoredResult(ids["good"], at, "up", rtt_ms=10.0 + i % 5))
            down = i >= 90
            results.append(
                StoredResult(
                    ids["bad"],
                    at,
                    "down" if down else "up",
                    error_code="connect_failed" if down else None,
                    # Server text with rich markup in it, shown literally by the table.
                    error_message="Unable to connect [/] [link=http://evil]x[/link]"
                    if down
                    else None,
                    rtt_ms=None if down else 20.0,
                )
            )
        went_down = now - timedelta(minutes=30)
        batch = WriteBatch(
            results=results,
            statuses=[
                StatusUpdate(
                    ids["good"],
                    0,
                    MonitorStatus(MonitorState.UP, now - timedelta(hours=2), version=1),
                ),
                StatusUpdate(
                    ids["bad"],
                    0,
                    MonitorStatus(MonitorState.DOWN, went_down, 30, 1, "down", version=1),
                ),
            ],
            transitions=[
                Transition(
                    ids["bad"],
                    went_down,
                    MonitorState.UP,
                    MonitorState.DOWN,
                    "connect_failed",
                    "x",
                    AlertKind.DOWN,
                    1,
                )
            ],
        )
        await storage.write_batch(batch)
    finally:
        await storage.close()
    return config


def test_validate_ok_and_every_error_at_once(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("monitors:\n  - {name: a, host: 127.0.0.1}\n")
    proc = cli("validate", str(good))
    assert proc.returncode == 0
    assert "OK, 1 monitors" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "monitors:\n"
        "  - name: a\n"
        "    host: 127.0.0.1\n"
        "    port: 99999\n"
        "  - name: b\n"
        "    host: 127.0.0.1\n"
        "    tls: sometimes\n"
        "    depends_on: [nobody]\n"
    )
    proc = cli("validate", str(bad))
    assert proc.returncode == 3
    assert f"{bad}:4: monitor 'a': field 'port'" in proc.stderr
    assert f"{bad}:7: monitor 'b': field 'tls'" in proc.stderr
    assert "nobody" in proc.stderr
    assert "3 error(s)" in proc.stderr


def test_status_json(filled: Path) -> None:
    proc = cli("status", "--config", str(filled), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["good"]["state"] == "up"
    assert rows["good"]["uptime_24h"] == pytest.approx(100.0)
    assert rows["bad"]["state"] == "down"
    assert rows["bad"]["last_error"] == "connect_failed"
    assert rows["bad"]["uptime_24h"] == pytest.approx(75.0)


def test_status_table(filled: Path) -> None:
    proc = cli("status", "--config", str(filled))
    assert proc.returncode == 0, proc.stderr
    assert "bad" in proc.stdout
    assert "75.000%" in proc.stdout


def test_history_csv_and_json(filled: Path) -> None:
    proc = cli("history", "bad", "--config", str(filled), "--since", "1h", "--csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert 59 <= len(rows) <= 61
    assert {r["status"] for r in rows} == {"up", "down"}
    assert "transcript" not in rows[0]
    proc = cli("history", "good", "--config", str(filled), "--since", "10m", "--json")
    data = json.loads(proc.stdout)
    assert 9 <= len(data) <= 11
    assert all(r["status"] == "up" for r in data)
    missing = cli("history", "nobody", "--config", str(filled))
    assert missing.returncode == 3
    assert "no monitor named 'nobody'" in missing.stderr
    bad_since = cli("history", "good", "--config", str(filled), "--since", "yesterday-ish")
    assert bad_since.returncode == 3


def test_report_json_and_csv(filled: Path) -> None:
    proc = cli("report", "--config", str(filled), "--period", "24h", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["monitor"]: row for row in json.loads(proc.stdout)}
    assert rows["good"]["checks"] == 120
    assert rows["good"]["uptime_pct"] == pytest.approx(100.0)
    assert rows["good"]["incidents"] == 0
    assert rows["bad"]["failures"] == 30
    assert rows["bad"]["incidents"] == 1
    # Still down: the outage counts until the report runs, a little after the fixture.
    assert 1800 <= rows["bad"]["downtime_s"] <= 1800 + 120
    assert rows["good"]["rtt_p95_ms"] == pytest.approx(14.0)
    proc = cli("report", "--config", str(filled), "--csv")
    header = proc.stdout.splitlines()[0]
    assert (
        header
        == "monitor,checks,failures,warnings,uptime_pct,downtime_s,incidents,rtt_avg_ms,rtt_p95_ms"
    )


def database_config(tmp_path: Path, url: str) -> Path:
    """A configuration with no monitors and this database URL."""
    config = tmp_path / "db.yaml"
    config.write_text(f'service: {{database_url: "{url}"}}\nmonitors: []\n')
    return config


def test_database_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    config = database_config(tmp_path, "postgresql+asyncpg://u:hunter2@127.0.0.1:1/x")
    proc = cli("status", "--config", str(config))
    assert proc.returncode == 2
    assert proc.stderr.startswith("pop3watch: ")
    assert "hunter2" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_history_table_shows_server_text_literally(filled: Path) -> None:
    """rich reads "[link=...]" as markup and "[/]" would crash it: a hostile server's
    words must reach the terminal as text."""
    proc = cli("history", "bad", "--config", str(filled), "--since", "5m")
    assert proc.returncode == 0, proc.stderr
    assert "[/] [link=http://evil]x[/link]" in proc.stdout
    assert "\x1b]8;" not in proc.stdout  # no hyperlink escape sequence


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql+asyncpg://u:Hun/ter2@127.0.0.1:1/x", "Hun/ter2"),
        ("postgresql+asyncpg://u:Hun#ter?2@127.0.0.1:1/x", "ter?2"),
        ("postgresql+asyncpg://u@127.0.0.1:1/x?password=QueryPw2", "QueryPw2"),
        ("postgresql+asyncpg://u:Hunter2@at@127.0.0.1:1/x", "Hunter2@at"),
    ],
)
def test_a_database_password_is_masked_whatever_it_holds(
    tmp_path: Path, url: str, secret: str
) -> None:
    proc = cli("status", "--config", str(database_config(tmp_path, url)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for piece in (secret, secret[:4], secret[-4:]):
        assert piece not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@127.0.0.1/db", "unsupported database"),
        ("sqlite://", "in-memory SQLite"),
        ("postgresql+asyncpg://u:x@[::1/db", "cannot be parsed"),
    ],
)
def test_a_database_url_the_storage_cannot_open_fails_validation(
    tmp_path: Path, url: str, message: str
) -> None:
    config = str(database_config(tmp_path, url))
    for args in (["validate", config], ["status", "--config", config]):
        proc = cli(*args)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert message in proc.stderr + proc.stdout
        assert "Traceback" not in proc.stderr


def test_a_secret_pasted_where_its_variable_name_belongs_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "pasted.yaml"
    config.write_text(
        "monitors:\n"
        "  - {name: m, host: 127.0.0.1, auth: user, user: a, password_env: 'p@ss w0rd!#Real'}\n"
    )
    proc = cli("validate", str(config))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "name of an environment variable" in proc.stdout + proc.stderr
    assert "w0rd" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("level", ["info", "debug"])
def test_the_service_log_holds_no_sql(tmp_path: Path, level: str) -> None:
    """The SQL drivers' loggers print statements and every parameter below WARNING:
    monitor settings, server text, transcripts. They stay quiet at any log_level."""
    config = tmp_path / "pop3watch.yaml"
    config.write_text(
        f"service: {{log_level: {level}, flush_interval_s: 0.1}}\n"
        "defaults: {interval_up: 1, interval_down: 1, timeout: 1}\n"
        "monitors:\n  - {name: closed, type: tcp, host: 127.0.0.1, port: 1}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pop3watch", "run", "--config", str(config),
         "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(4)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "pop3watch running" in err, err
    assert not re.search(r"(DEBUG|INFO) (sqlalchemy|aiosqlite|asyncpg|psycopg)", err), err
    for statement in ("INSERT", "SELECT", "COMMIT"):
        assert statement not in err, err
