"""Monitor, service and top-level models used directly (without the YAML loader)."""

from __future__ import annotations

import json
import socket
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pop3watch.config import (
    MONITOR_ADAPTER,
    NAME_MAX,
    Pop3Monitor,
    Pop3WatchConfig,
    ServiceSettings,
    TcpMonitor,
    check_name,
)
from pop3watch.probe.settings import AuthMode, CheckSettings, TcpSettings, TlsMode

SECRET = "s3cr3t-value-never-stored"

MAILBOX: dict[str, Any] = {
    "name": "mailbox",
    "host": "[::1]",
    "tls": "starttls",
    "auth": "user",
    "user": "monitor@example.com",
    "password_env": "POP3WATCH_TEST_PASSWORD",
    "stat": True,
    "warn_messages": 10,
    "down_messages": 100,
    "tags": ["b", "a", "b"],
    "depends_on": ["gw"],
    "maintenance": [
        {
            "weekly": {"days": ["sun"], "start": "02:00", "end": "04:00"},
            "timezone": "Europe/Berlin",
        },
        {"start": "2026-12-24T08:00", "end": "2026-12-24T12:00", "timezone": "Europe/Berlin"},
    ],
}


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


# --- the discriminator ------------------------------------------------------------------


def test_missing_type_means_pop3() -> None:
    monitor = MONITOR_ADAPTER.validate_python({"name": "m", "host": "127.0.0.1"})
    assert isinstance(monitor, Pop3Monitor)
    assert monitor.type == "pop3"
    assert monitor.check_settings().effective_port == 110


def test_type_tcp_selects_the_tcp_model_and_its_rules() -> None:
    monitor = MONITOR_ADAPTER.validate_python(
        {"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": 25}
    )
    assert isinstance(monitor, TcpMonitor)
    with pytest.raises(ValidationError) as caught:  # pop3-only field on a tcp monitor
        MONITOR_ADAPTER.validate_python(
            {"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": 25, "tls": "tls"}
        )
    assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize("kind", ["imap", "POP3", "", 3, None])
def test_unknown_type_is_refused(kind: object) -> None:
    with pytest.raises(ValidationError) as caught:
        MONITOR_ADAPTER.validate_python({"name": "m", "host": "h", "type": kind})
    assert caught.value.errors()[0]["type"] == "monitor_type"


def test_models_are_frozen_and_closed() -> None:
    monitor = Pop3Monitor(name="m", host="127.0.0.1")
    with pytest.raises(ValidationError):
        monitor.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Pop3Monitor.model_validate({"name": "m", "host": "h", "colour": "red"})
    with pytest.raises(ValidationError):
        ServiceSettings.model_validate({"workers": 3})


# --- the check part ---------------------------------------------------------------------


def test_check_settings_is_exactly_the_check_part() -> None:
    monitor = Pop3Monitor.model_validate(MAILBOX)
    settings = monitor.check_settings()
    assert type(settings) is CheckSettings
    expected = {k: v for k, v in MAILBOX.items() if k in CheckSettings.model_fields}
    assert settings == CheckSettings.model_validate(expected)
    assert settings.host == "::1"  # normalized by the probe's own rule
    assert settings.auth is AuthMode.USER
    assert settings.tls is TlsMode.STARTTLS


def test_tcp_check_settings() -> None:
    monitor = TcpMonitor.model_validate(
        {"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": 110, "expect_banner": "^\\+OK"}
    )
    settings = monitor.check_settings()
    assert type(settings) is TcpSettings
    assert settings.target == "127.0.0.1:110"
    assert settings.expect_banner == "^\\+OK"


def test_check_rules_of_the_probe_apply_to_monitors() -> None:
    with pytest.raises(ValidationError, match="stat: true needs an auth mode"):
        Pop3Monitor.model_validate({"name": "m", "host": "h", "stat": True})


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"timeout": 60, "interval_up": 60}, True),
        ({"timeout": 60.5, "interval_up": 60}, False),
        ({"timeout": 20, "interval_up": 10, "interval_down": 30}, False),
        ({"timeout": 5, "interval_up": 10, "interval_down": 1}, True),  # only interval_up
    ],
)
def test_timeout_may_not_exceed_interval_up(fields: dict[str, Any], ok: bool) -> None:
    data = {"name": "m", "host": "h", **fields}
    if ok:
        Pop3Monitor.model_validate(data)
    else:
        with pytest.raises(ValidationError, match="must not exceed interval_up"):
            Pop3Monitor.model_validate(data)


def test_monitor_defaults() -> None:
    monitor = Pop3Monitor(name="m", host="h")
    assert (monitor.enabled, monitor.store_statistics, monitor.priority) == (True, True, 3)
    assert (monitor.interval_up, monitor.interval_down, monitor.interval_lost) == (60, 30, 300)
    assert (monitor.failures_before_alert, monitor.max_alerts) == (3, 5)
    assert (monitor.tags, monitor.depends_on, monitor.maintenance) == ((), (), ())


def test_tags_and_dependencies_are_deduplicated_in_order() -> None:
    monitor = Pop3Monitor.model_validate(
        {"name": "m", "host": "h", "tags": ["b", "a", "b"], "depends_on": ["x", "y", "x"]}
    )
    assert monitor.tags == ("b", "a")
    assert monitor.depends_on == ("x", "y")


def test_description_refuses_control_characters_but_keeps_newlines() -> None:
    Pop3Monitor.model_validate({"name": "m", "host": "h", "description": "a\n\tb\xa0ü"})
    with pytest.raises(ValidationError, match="control characters"):
        Pop3Monitor.model_validate({"name": "m", "host": "h", "description": "a\x1b[31m"})
    with pytest.raises(ValidationError, match="control characters"):
        Pop3Monitor.model_validate({"name": "m", "host": "h", "description": "x\u202ey"})


# --- record_config ----------------------------------------------------------------------


def test_record_config_holds_references_never_secret_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POP3WATCH_TEST_PASSWORD", SECRET)
    record = Pop3Monitor.model_validate(MAILBOX).record_config()
    text = json.dumps(record)
    assert SECRET not in text
    assert all(SECRET not in s for s in _strings(record))
    assert record["password_env"] == "POP3WATCH_TEST_PASSWORD"
    secretish = {k for k in record if "password" in k or "token" in k}
    assert secretish == {
        "password_env",
        "password_file",
        "password_command",
        "token_env",
        "token_file",
        "token_command",
    }


def test_record_config_is_json_and_round_trips() -> None:
    monitor = Pop3Monitor.model_validate(MAILBOX)
    record = monitor.record_config()
    assert list(record)[:3] == ["name", "type", "enabled"]
    restored = MONITOR_ADAPTER.validate_python(json.loads(json.dumps(record)))
    assert restored == monitor
    assert restored.record_config() == record
    assert record["maintenance"][1]["start"] == "2026-12-24T08:00:00+01:00"
    assert record["tags"] == ["b", "a"]


def test_tcp_record_config_round_trips() -> None:
    monitor = TcpMonitor.model_validate(
        {"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": 110, "priority": 1}
    )
    record = monitor.record_config()
    assert record["type"] == "tcp"
    assert "tls" not in record
    assert MONITOR_ADAPTER.validate_python(json.loads(json.dumps(record))) == monitor


MONITOR_DATA = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z][a-z0-9.:@_-]{0,20}", fullmatch=True),
        "host": st.sampled_from(["127.0.0.1", "mail.example.com", "::1"]),
    },
    optional={
        "port": st.integers(1, 65535),
        "tls": st.sampled_from([m.value for m in TlsMode]),
        "priority": st.integers(1, 5),
        "interval_up": st.integers(30, 86400),
        "interval_down": st.integers(1, 86400),
        "tags": st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), max_size=4),
        "description": st.text(st.characters(categories=["L", "N", "Zs"]), max_size=50),
        "timeout": st.floats(0.1, 30),
        "enabled": st.booleans(),
        "maintenance": st.lists(
            st.builds(
                lambda h, m, d, z: {
                    "weekly": {"days": d, "start": f"{h:02d}:{m:02d}", "end": "24:00"},
                    "timezone": z,
                },
                st.integers(0, 23),
                st.integers(0, 59),
                st.lists(st.sampled_from(["mon", "sun", "wed"]), min_size=1),
                st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
            ),
            max_size=2,
        ),
    },
)


@given(MONITOR_DATA)
def test_any_valid_monitor_round_trips_through_json(data: dict[str, Any]) -> None:
    monitor = MONITOR_ADAPTER.validate_python(data)
    record = monitor.record_config()
    assert MONITOR_ADAPTER.validate_python(json.loads(json.dumps(record))) == monitor


# --- names ------------------------------------------------------------------------------

NAME_CHARS = string.ascii_letters + string.digits + "._-:@"


@given(
    st.text(string.ascii_letters + string.digits, min_size=1, max_size=1),
    st.text(NAME_CHARS, max_size=NAME_MAX - 1),
)
def test_names_of_allowed_characters_are_accepted(first: str, rest: str) -> None:
    assert check_name(first + rest) == first + rest


@given(st.text(min_size=1, max_size=NAME_MAX))
def test_names_with_any_other_character_are_refused(name: str) -> None:
    allowed = name[0] in string.ascii_letters + string.digits and all(
        ch in NAME_CHARS for ch in name
    )
    if allowed:
        assert check_name(name) == name
    else:
        with pytest.raises(ValueError, match="may contain only"):
            check_name(name)


@pytest.mark.parametrize(
    "name", ["", "x" * (NAME_MAX + 1), "-rf", ".hidden", "a b", "a/b", "a\nb", "mäil", "a%2F"]
)
def test_awkward_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        Pop3Monitor(name=name, host="h")


# --- service ----------------------------------------------------------------------------


def test_service_defaults_give_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    service = ServiceSettings()
    assert service.data_dir == Path("data")
    assert (service.concurrency, service.retention_days, service.buffer_limit) == (
        200,
        30,
        100_000,
    )
    assert service.effective_database_url() == (
        f"sqlite+aiosqlite:///{Path('data').absolute()}/pop3watch.db"
    )
    # the CLI's --data-dir wins over the file
    assert service.effective_database_url(tmp_path) == (
        f"sqlite+aiosqlite:///{tmp_path}/pop3watch.db"
    )


def test_an_explicit_database_url_wins_and_is_not_shown(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://pop3watch:hunter2@db.internal/pop3watch"
    service = ServiceSettings(database_url=url)
    assert service.effective_database_url(tmp_path) == url
    assert "hunter2" not in repr(service)
    assert service.display_database_url() == (
        "postgresql+asyncpg://pop3watch:***@db.internal/pop3watch"
    )


def test_node_name_defaults_to_the_host_name() -> None:
    assert ServiceSettings().effective_node_name == socket.gethostname()
    assert ServiceSettings(node_name="probe-1").effective_node_name == "probe-1"


def test_log_level_is_case_insensitive() -> None:
    assert ServiceSettings.model_validate({"log_level": "WARNING"}).log_level == "warning"


# --- the whole configuration ------------------------------------------------------------


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "defaults": {"interval_up": 120, "tls": "starttls"},
        "monitors": [
            {"name": "gw", "type": "tcp", "host": "127.0.0.1", "port": 110},
            {"name": "mail", "host": "127.0.0.1", "depends_on": ["gw"], "interval_up": 30},
        ],
        **extra,
    }


def test_config_applies_defaults_where_the_field_exists() -> None:
    config = Pop3WatchConfig.model_validate(_config())
    gw, mail = config.monitors
    assert gw.interval_up == 120
    assert isinstance(gw, TcpMonitor)  # tls default skipped: tcp has no tls
    assert mail.interval_up == 30  # own key wins
    assert isinstance(mail, Pop3Monitor)
    assert mail.tls is TlsMode.STARTTLS
    assert config.defaults == {"interval_up": 120, "tls": "starttls"}
    assert config.get("mail") is mail
    assert config.get("nope") is None
    assert config.names == ("gw", "mail")


def test_config_rules_across_monitors_apply_without_the_loader() -> None:
    data = _config()
    data["monitors"][0]["depends_on"] = ["mail"]
    with pytest.raises(ValidationError, match=r"dependency cycle: gw -> mail -> gw"):
        Pop3WatchConfig.model_validate(data)
    with pytest.raises(ValidationError, match="not a monitor field"):
        Pop3WatchConfig.model_validate(_config(defaults={"colour": "red"}))
    with pytest.raises(ValidationError, match="cannot have a default"):
        Pop3WatchConfig.model_validate(_config(defaults={"name": "x"}))


def test_monitors_are_required_but_may_be_empty() -> None:
    with pytest.raises(ValidationError):
        Pop3WatchConfig.model_validate({})
    assert Pop3WatchConfig.model_validate({"monitors": []}).monitors == ()
