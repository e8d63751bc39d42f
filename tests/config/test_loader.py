"""The loader: YAML handling, defaults, every problem with its line, nothing leaked."""

from __future__ import annotations

import pickle
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3watch.config import (
    ConfigFileError,
    ConfigIssue,
    Pop3Monitor,
    TcpMonitor,
    _yaml,
    load_config,
    parse_config,
)
from pop3watch.errors import ConfigError
from pop3watch.probe.settings import TlsMode


def issues_of(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigFileError) as caught:
        parse_config(textwrap.dedent(text), "test.yaml")
    return caught.value.issues


def where(issues: list[ConfigIssue]) -> list[tuple[int | None, str | None, str | None]]:
    return [(i.line, i.monitor, i.field) for i in issues]


# --- the happy path and defaults --------------------------------------------------------


def test_minimal_file() -> None:
    config = parse_config("monitors:\n  - {name: m, host: 127.0.0.1}\n")
    (monitor,) = config.monitors
    assert isinstance(monitor, Pop3Monitor)
    assert config.service.concurrency == 200


def test_defaults_apply_to_every_monitor_and_own_keys_win() -> None:
    config = parse_config(
        textwrap.dedent(
            """
            defaults:
              interval_up: 120
              priority: 1
              tls: tls
              tags: [fleet]
            monitors:
              - {name: a, host: 127.0.0.1}
              - {name: b, host: 127.0.0.1, priority: 4, tags: [own]}
              - {name: gw, type: tcp, host: 127.0.0.1, port: 110}
            """
        )
    )
    a, b, gw = config.monitors
    assert (a.interval_up, a.priority, a.tags) == (120, 1, ("fleet",))
    assert (b.interval_up, b.priority, b.tags) == (120, 4, ("own",))
    assert isinstance(a, Pop3Monitor)
    assert a.tls is TlsMode.TLS
    assert a.check_settings().effective_port == 995
    assert isinstance(gw, TcpMonitor)  # tls does not apply to tcp monitors
    assert (gw.interval_up, gw.priority) == (120, 1)


def test_a_type_default_decides_which_defaults_apply() -> None:
    config = parse_config(
        "defaults: {type: tcp, port: 25, tls: tls}\n"
        "monitors:\n  - {name: a, host: 127.0.0.1}\n  - {name: b, type: pop3, host: h}\n"
    )
    a, b = config.monitors
    assert isinstance(a, TcpMonitor)
    assert a.port == 25
    assert isinstance(b, Pop3Monitor)
    assert (b.port, b.tls) == (25, TlsMode.TLS)


def test_config_file_error_survives_pickling() -> None:
    with pytest.raises(ConfigFileError) as caught:
        parse_config("monitors: [{name: a}]", "x.yaml")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own object
    assert copy.issues == caught.value.issues
    assert str(copy) == str(caught.value)


def test_null_sections_mean_defaults() -> None:
    config = parse_config("service:\ndefaults:\nmonitors:\n")
    assert config.monitors == ()
    assert config.defaults == {}


def test_environment_references_are_not_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPASS", "expanded-secret")
    monkeypatch.setenv("HOME", "/home/expanded")
    config = parse_config(
        textwrap.dedent(
            """
            monitors:
              - name: m
                host: 127.0.0.1
                tls: starttls
                auth: user
                user: ${USER}
                password_env: MAILPASS
              - name: n
                host: 127.0.0.1
                tls: starttls
                auth: user
                user: monitor
                password_file: $HOME/.pop3pass
            """
        )
    )
    monitor, other = config.monitors
    assert isinstance(monitor, Pop3Monitor)
    assert isinstance(other, Pop3Monitor)
    assert monitor.user == "${USER}"
    assert monitor.password_env == "MAILPASS"
    assert str(other.password_file) == "$HOME/.pop3pass"
    assert "expanded" not in str(monitor.record_config()) + str(other.record_config())


def test_unquoted_times_are_not_base_60_numbers() -> None:
    # YAML 1.1 reads a plain 14:30 as the integer 870; here it stays a time.
    config = parse_config(
        "monitors:\n  - name: m\n    host: h\n    maintenance:\n"
        "      - weekly: {days: [sun], start: 2:00, end: 14:30}\n"
    )
    window = config.monitors[0].maintenance[0]
    assert window.weekly is not None
    assert (window.weekly.start, window.weekly.end) == ("02:00", "14:30")


def test_x_keys_hold_anchors_and_merge_keys_work() -> None:
    config = parse_config(
        textwrap.dedent(
            """
            x-pop3s: &pop3s {tls: tls, port: 995, priority: 2}
            monitors:
              - <<: *pop3s
                name: a
                host: 127.0.0.1
              - <<: *pop3s
                name: b
                host: 127.0.0.1
                priority: 5
            """
        )
    )
    a, b = config.monitors
    assert isinstance(a, Pop3Monitor)
    assert (a.tls, a.port, a.priority) == (TlsMode.TLS, 995, 2)
    assert b.priority == 5


def test_merged_values_are_reported_where_they_are_written() -> None:
    issues = issues_of(
        """\
        x-base: &base {host: 127.0.0.1, port: 99999}
        monitors:
          - <<: *base
            name: a
        """
    )
    assert where(issues) == [(1, "a", "port")]


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "pop3watch.yaml"
    path.write_bytes(b"\xef\xbb\xbfmonitors:\n  - {name: m, host: h}\n")  # with a BOM
    assert load_config(path).names == ("m",)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert where(caught.value.issues) == [(None, None, None)]
    assert "cannot read" in caught.value.issues[0].message
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"monitors:\n  - name: m\n    description: caf\xe9\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert where(caught.value.issues) == [(3, None, None)]


def test_config_file_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("monitors: {}")
    assert caught.value.code == "config_invalid"


# --- every problem at once ----------------------------------------------------------------


def test_all_monitors_are_validated_not_only_the_first_bad_one() -> None:
    issues = issues_of(
        """\
        monitors:
          - {name: a, host: 127.0.0.1, port: 0}
          - {name: b, host: 127.0.0.1}
          - {name: c, host: 127.0.0.1, priority: 0}
          - {name: d, type: tcp, host: 127.0.0.1}
        """
    )
    assert where(issues) == [(2, "a", "port"), (4, "c", "priority"), (5, "d", "port")]


def test_rules_across_fields_are_reported_with_field_errors_of_the_same_monitor() -> None:
    issues = issues_of(
        """\
        monitors:
          - name: a
            host: 127.0.0.1
            port: 0
            interval_up: 10
            timeout: 20
        """
    )
    assert where(issues) == [(4, "a", "port"), (6, "a", "timeout")]


def test_rules_still_run_when_a_required_field_is_invalid() -> None:
    issues = issues_of(
        """\
        monitors:
          - name: "bad name"
            host: "not a host!"
            interval_up: 5
        """
    )
    # timeout is left at its default (10 s): the line to change is interval_up's
    assert where(issues) == [
        (2, "bad name", "name"),
        (3, "bad name", "host"),
        (4, "bad name", "interval_up"),
    ]
    assert "timeout (10 s) must not exceed interval_up (5 s)" in issues[2].message


def test_a_rule_about_an_invalid_field_is_not_guessed() -> None:
    # tls itself is invalid: "fingerprint needs a TLS mode" would be a false lead.
    issues = issues_of(
        """\
        monitors:
          - name: a
            host: 127.0.0.1
            tls: ssl
            fingerprint: "{FINGERPRINT}"
        """.replace("{FINGERPRINT}", "ab" * 32)
    )
    assert where(issues) == [(4, "a", "tls")]


def test_issues_are_sorted_by_line() -> None:
    issues = issues_of(
        """\
        monitors:
          - {name: a, host: h, depends_on: [zz]}
          - {name: b, host: h, port: 0}
        service: {concurrency: 0}
        """
    )
    assert [i.line for i in issues] == [2, 3, 4]


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "snippet",
    [
        "password: {SECRET}",
        "password_env: [{SECRET}]",
        "token_env: {{value: {SECRET}}}",
        "password_file: [{SECRET}]",
        "secret: {SECRET}",
        "api_key: {SECRET}",
    ],
)
def test_values_are_never_echoed(snippet: str) -> None:
    secret = "hunter2-s3cr3t"
    text = f"monitors:\n  - name: m\n    host: h\n    {snippet.format(SECRET=secret)}\n"
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text)
    assert secret not in str(caught.value)
    assert all(secret not in str(issue) for issue in caught.value.issues)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or secret not in str(caught.value.__context__)


def test_yaml_syntax_errors_do_not_quote_the_line() -> None:
    issues = issues_of('monitors:\n  - name: m\n    password_env: "hunter2\n')
    assert len(issues) == 1
    assert "hunter2" not in str(issues[0])


def test_a_database_url_is_not_echoed() -> None:
    issues = issues_of('service:\n  database_url: "user:hunter2@db"\nmonitors: []\n')
    assert where(issues) == [(2, None, "service.database_url")]
    assert "hunter2" not in str(issues[0])


# --- YAML safety --------------------------------------------------------------------------


def test_alias_bombs_are_refused_quickly() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    lines.append("monitors: []")
    start = time.monotonic()
    issues = issues_of("\n".join(lines) + "\n")
    assert time.monotonic() - start < 10
    assert any("aliases expand too far" in i.message for i in issues)


def test_recursive_aliases_are_refused() -> None:
    issues = issues_of("monitors: &m\n  - *m\n")
    assert issues[0].message == "recursive alias"


def test_python_tags_are_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "created"
    issues = issues_of(
        "monitors: !!python/object/apply:pathlib.Path.touch\n"
        f'  [!!python/object/apply:pathlib.Path ["{marker}"]]\n'
    )
    assert not marker.exists()
    assert where(issues) == [(1, None, "monitors")]


@pytest.mark.parametrize("loader", [yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)])
def test_pure_and_libyaml_parsers_give_the_same_lines(
    loader: type[yaml.SafeLoader], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_yaml, "LOADER", loader)
    text = """\
        monitors:
          - name: a
            host: 127.0.0.1
            port: 0
            port: 1
          - name: b
            host 127.0.0.1
        """
    # the parser gives up at the end of the file, after the key without a colon
    assert where(issues_of(text)) == [(8, None, None)]
    text = """\
        monitors:
          - name: a
            host: 127.0.0.1
            port: 0
            port: 1
          - name: b
            host: 127.0.0.1
            maintenance:
              - weekly: {days: [xyz], start: "1:00", end: "2:00"}
        """
    assert where(issues_of(text)) == [
        (5, "a", "port"),
        (9, "b", "maintenance[0].weekly.days[0]"),
    ]


# --- property: reported lines are where the errors were put -------------------------------

BAD_VALUES: dict[str, object] = {
    "port": 70000,
    "priority": 0,
    "interval_down": 0,
    "max_alerts": "many",
    "tls": "ssl",
    "ip_family": 5,
    "cert_warn_days": -1,
    "enabled": "perhaps",
}
GOOD_VALUES: dict[str, object] = {
    "port": 110,
    "priority": 2,
    "interval_down": 15,
    "max_alerts": 3,
    "tls": "starttls",
    "ip_family": "auto",
    "cert_warn_days": 30,
    "enabled": True,
}


@st.composite
def broken_files(draw: st.DrawFn) -> tuple[str, set[tuple[int, str, str]]]:
    """A YAML file of monitors in random layouts with errors at random places, and the
    (line, monitor, field) of each error, counted while writing it."""
    lines = ["# generated", "monitors:"]
    expected: set[tuple[int, str, str]] = set()
    for index in range(draw(st.integers(1, 6))):
        name = f"m{index}"
        fields = draw(st.permutations(list(GOOD_VALUES)))[: draw(st.integers(0, len(GOOD_VALUES)))]
        broken = set(draw(st.lists(st.sampled_from(fields), unique=True))) if fields else set()
        entries: list[tuple[str, object]] = [("name", name), ("host", "127.0.0.1")]
        entries += [(f, BAD_VALUES[f] if f in broken else GOOD_VALUES[f]) for f in fields]
        order = draw(st.permutations(entries))
        for position, (key, value) in enumerate(order):
            if draw(st.booleans()):
                lines.append("    # a comment")
            if draw(st.integers(0, 4)) == 0:
                lines.append("")
            prefix = "  - " if position == 0 else "    "
            lines.append(
                f"{prefix}{key}: {value!r}"
                if isinstance(value, str)
                else f"{prefix}{key}: {str(value).lower()}"
            )
            if key in broken:
                expected.add((len(lines), name, key))
    return "\n".join(lines) + "\n", expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_files())
def test_every_error_is_reported_at_the_line_it_was_written(
    case: tuple[str, set[tuple[int, str, str]]],
) -> None:
    text, expected = case
    if not expected:
        parse_config(text)
        return
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text)
    reported = {(i.line, i.monitor, i.field) for i in caught.value.issues}
    assert reported == expected
