"""The example `make run` starts with: valid, local only, and showing each feature."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pop3watch.config import Pop3Monitor, TcpMonitor, load_config
from pop3watch.probe.settings import AuthMode, TlsMode

EXAMPLE = Path(__file__).parents[2] / "examples" / "pop3watch.yaml"


def test_example_validates() -> None:
    config = load_config(EXAMPLE)
    assert len(config.monitors) >= 5


def test_example_needs_no_internet() -> None:
    config = load_config(EXAMPLE)
    assert {m.host for m in config.monitors} == {"127.0.0.1"}
    assert config.service.database_url is None
    assert config.service.effective_database_url().endswith("/data/pop3watch.db")


def test_example_shows_each_kind_of_monitor() -> None:
    config = load_config(EXAMPLE)
    pop3 = [m for m in config.monitors if isinstance(m, Pop3Monitor)]
    tcp = [m for m in config.monitors if isinstance(m, TcpMonitor)]
    assert tcp, "a tcp parent"
    assert any(m.tls is TlsMode.NONE and m.check_settings().effective_port == 110 for m in pop3)
    pop3s = [m for m in pop3 if m.tls is TlsMode.TLS and m.check_settings().effective_port == 995]
    assert pop3s, "a pop3s monitor"
    assert any(m.server_name or m.ca_file or m.fingerprint for m in pop3s), "cert options"
    mailbox = [m for m in pop3 if m.auth is not AuthMode.NONE]
    assert mailbox, "a monitor that logs in"
    assert all(m.password_env and m.stat and m.warn_messages is not None for m in mailbox)
    assert all(m.missing_fields() == [] for m in mailbox)
    parents = {m.name for m in tcp}
    assert any(set(m.depends_on) & parents for m in pop3), "a dependency on the tcp parent"
    assert len({m.priority for m in config.monitors}) > 1
    assert all(m.tags for m in config.monitors)
    assert any(not m.enabled for m in config.monitors)


def test_example_maintenance_windows_work() -> None:
    config = load_config(EXAMPLE)
    windows = [w for m in config.monitors for w in m.maintenance]
    assert any(w.weekly is not None and w.timezone == "Europe/Berlin" for w in windows)
    assert any(w.weekly is not None and w.weekly.crosses_midnight for w in windows)
    assert any(w.weekly is None for w in windows)
    # Sunday 2026-06-07 03:00 in Berlin (01:00 UTC) is inside the weekly window
    assert any(w.active(datetime(2026, 6, 7, 1, 0, tzinfo=UTC)) for w in windows)


def test_example_records_hold_references_only() -> None:
    config = load_config(EXAMPLE)
    for monitor in config.monitors:
        record = json.loads(json.dumps(monitor.record_config()))
        assert record["name"] == monitor.name
        assert not {k for k, v in record.items() if k in ("password", "token") and v}
