"""One invalid-config fixture per validation rule (the blackbox_exporter habit).

Each ``invalid/*.yaml`` states what it breaks in ``# expect:`` comments:
``LINE | MONITOR | FIELD | MESSAGE FRAGMENT`` (``-`` for none). The file must report
exactly those issues: same lines, monitors and fields, in that order, nothing more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pop3watch.config import ConfigFileError, ConfigIssue, load_config

INVALID = Path(__file__).parent / "invalid"
FIXTURES = sorted(INVALID.glob("*.yaml"))


def _none(text: str) -> str | None:
    text = text.strip()
    return None if text == "-" else text


def expectations(path: Path) -> list[tuple[int | None, str | None, str | None, str]]:
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            line_no, monitor, field, message = line.removeprefix("# expect:").split(" | ", 3)
            number = _none(line_no)
            found.append(
                (None if number is None else int(number), _none(monitor), _none(field), message)
            )
    return found


def test_there_is_a_fixture_per_rule() -> None:
    assert len(FIXTURES) >= 50
    for path in FIXTURES:
        assert expectations(path), f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_invalid_fixture_reports_exactly_its_issues(path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    issues = caught.value.issues
    expected = expectations(path)
    assert [(i.line, i.monitor, i.field) for i in issues] == [e[:3] for e in expected], issues
    for issue, (_, _, _, fragment) in zip(issues, expected, strict=True):
        assert fragment.strip() in issue.message
        assert issue.source == str(path)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_error_keeps_the_config_invalid_code_and_lists_every_issue(path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    error = caught.value
    assert error.code == "config_invalid"
    assert error.__cause__ is None  # no chained pydantic error carrying input values
    text = str(error)
    for issue in error.issues:
        assert str(issue) in text


def test_issue_text_names_file_line_monitor_and_field() -> None:
    issue = ConfigIssue(
        "pop3watch.yaml", 14, "mail-1", "port", "Input should be less than or equal to 65535"
    )
    assert str(issue) == (
        "pop3watch.yaml:14: monitor 'mail-1': field 'port':"
        " Input should be less than or equal to 65535"
    )
    assert str(ConfigIssue("a.yaml", None, None, None, "the file is empty")) == (
        "a.yaml: the file is empty"
    )
