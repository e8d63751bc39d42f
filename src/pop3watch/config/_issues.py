"""Turn pydantic errors and YAML problems into located, value-free ``ConfigIssue``s.

Job: from an error's location inside a section or monitor, find the file line (through
the YAML marks), the monitor and the field, and word the message for a person. Rule:
messages come from pydantic's ``msg`` or from us, never from ``input``; for fields named
like a secret, anything that looks like the input is masked anyway.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic_core import ErrorDetails

from pop3watch.config._yaml import Loc, Located
from pop3watch.config.errors import ConfigIssue
from pop3watch.config.maintenance import MaintenanceWindow, WeeklySchedule
from pop3watch.config.monitors import MONITOR_TYPES

_SECRETISH = re.compile(r"pass|secret|token|credential|api_?key", re.IGNORECASE)
_PREFIXES = ("Value error, ", "Assertion failed, ")
_WORD = re.compile(r"[a-z][a-z0-9_]*")


def format_loc(loc: Loc) -> str:
    """``("maintenance", 0, "weekly", "days", 1)`` as ``maintenance[0].weekly.days[1]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _suggest(key: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _nested_fields(loc: Loc, known: Collection[str]) -> Collection[str]:
    """Field names valid at ``loc`` (the parent of an unknown key), for suggestions."""
    if "weekly" in loc:
        return WeeklySchedule.model_fields.keys()
    if "maintenance" in loc:
        return MaintenanceWindow.model_fields.keys()
    return known


class IssueBuilder:
    """Collects issues for one file; knows its name and its YAML marks."""

    def __init__(self, source: str, located: Located) -> None:
        self.source = source
        self.located = located
        self.issues: list[ConfigIssue] = []
        self._seen: set[ConfigIssue] = set()

    def add(self, line: int | None, monitor: str | None, field: str | None, message: str) -> None:
        issue = ConfigIssue(self.source, line, monitor, field, message)
        if issue not in self._seen:  # a bad default would otherwise repeat per monitor
            self._seen.add(issue)
            self.issues.append(issue)

    def sorted(self) -> list[ConfigIssue]:
        """By line, file-less issues last; issues on one line keep their order."""
        return sorted(self.issues, key=lambda i: (i.line is None, i.line or 0))

    def yaml_problems(self, labels: list[str]) -> None:
        for problem in self.located.problems:
            loc = problem.loc
            if len(loc) >= 2 and loc[0] == "monitors" and isinstance(loc[1], int):
                label = labels[loc[1]] if loc[1] < len(labels) else None
                self.add(problem.line, label, format_loc(loc[2:]) or None, problem.message)
            else:
                self.add(problem.line, None, format_loc(loc) or None, problem.message)

    def unknown_key(
        self, loc: Loc, monitor: str | None, field: str, known: Collection[str], message: str
    ) -> None:
        key = str(loc[-1])
        self.add(self.located.line_of(loc), monitor, field, message + _hint(key, known))

    def section_error(self, section: str, error: ErrorDetails, known: Collection[str]) -> None:
        """An error inside ``service:`` (``section``), located from the section's root."""
        loc = _located_loc(error, lambda part: self.located.has((section, *part)))
        if (section, *loc) in self.located.broken:
            return
        line = self.located.line_of((section, *loc))
        field = format_loc((section, *loc))
        self.add(line, None, field, _message(error, loc, _nested_fields(loc[:-1], known)))

    def monitor_error(
        self,
        index: int,
        label: str,
        error: ErrorDetails,
        origin: Mapping[Any, Loc],
        known: Collection[str],
    ) -> None:
        """An error of monitor ``index``. ``origin`` says, per key, whether the value was
        the monitor's own (``("monitors", i)``) or came from ``("defaults",)``."""
        own: Loc = ("monitors", index)
        field_level = _is_field_level(error)

        def where(loc: Loc) -> Loc:
            return (*origin.get(loc[0], own), *loc) if loc else own

        loc = _located_loc(error, lambda part: part[0] in origin and self.located.has(where(part)))
        if where(loc) in self.located.broken:
            return  # the YAML problem there is already reported
        message = _message(error, loc, _nested_fields(loc[:-1], known))
        line = self.located.line_of(where(loc))
        if field_level and loc and origin.get(loc[0]) == ("defaults",):
            # The value itself is wrong, wherever it is used: report it once, at defaults.
            self.add(line, None, format_loc(("defaults", *loc)), message)
        else:
            self.add(line, label, format_loc(loc) or None, message)


def _hint(key: str, known: Collection[str]) -> str:
    if _SECRETISH.search(key):
        return (
            ": the file holds no secrets; say where the secret is with password_env,"
            " password_file or password_command (token_* for tokens)"
        )
    return _suggest(key, known)


def _strip_tag(loc: tuple[int | str, ...]) -> Loc:
    """Drop the discriminator tag pydantic puts first in a monitor's error locations."""
    if loc and loc[0] in MONITOR_TYPES:
        return loc[1:]
    return loc


def _is_field_level(error: ErrorDetails) -> bool:
    """An error inside one field's value (its type, range, a nested window's rules), as
    opposed to a monitor-level rule relating several fields (located at the monitor)."""
    return bool(_strip_tag(error["loc"]))


def broken_fields(errors: list[ErrorDetails]) -> set[str]:
    """Top-level fields with errors of their own; empty when any error is monitor-level
    (then the monitor's rules have run already, or its type is unknown)."""
    fields: set[str] = set()
    for error in errors:
        loc = _strip_tag(error["loc"])
        if not loc or not isinstance(loc[0], str):
            return set()
        fields.add(loc[0])
    return fields


def concerns(error: ErrorDetails, fields: set[str]) -> bool:
    """Whether a monitor-level rule's error involves any of ``fields`` (by the field it
    names in ``ctx`` or any word of its message)."""
    words = set(_WORD.findall(_clean(error["msg"]).lower()))
    words.update(str(value) for value in error.get("ctx", {}).values())
    return bool(words & fields)


def _located_loc(error: ErrorDetails, present: Callable[[Loc], bool]) -> Loc:
    """The error's location, made as precise as we can.

    Rules we own name their field in ``ctx["field"]``. Rules inherited from the probe's
    settings (``ca_file and fingerprint need a TLS mode``) are model-level: they go to the
    first field their message names that is written in the file. A rule about a field
    left at its default (``timeout``) goes to the other field it names that is written
    (``interval_up``), since that is the line to change.
    """
    loc = _strip_tag(error["loc"])
    named = error.get("ctx", {}).get("field")
    candidates = [named] if isinstance(named, str) else []
    if candidates or error["type"] in ("value_error", "assertion_error"):
        candidates += _WORD.findall(_clean(error["msg"]))
    for candidate in candidates:
        if present((*loc, candidate)):
            return (*loc, candidate)
    return (*loc, named) if isinstance(named, str) else loc


def _clean(message: str) -> str:
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return message


def _message(error: ErrorDetails, loc: Loc, known: Collection[str]) -> str:
    kind = error["type"]
    key = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        return "unknown field" + _hint(key, known)
    if kind == "missing":
        return "required field is missing"
    if kind == "monitor_type":
        given = error["input"].get("type") if isinstance(error["input"], dict) else None
        ok = isinstance(given, str) and given.isprintable() and len(given) <= 20
        return f"unknown monitor type{f' {given!r}' if ok else ''}: use 'pop3' or 'tcp'"
    message = _clean(error["msg"])
    value = error.get("input")
    secretish = any(isinstance(part, str) and _SECRETISH.search(part) for part in loc)
    if secretish and isinstance(value, str) and value and value in message:
        message = message.replace(value, "***")
    return message
