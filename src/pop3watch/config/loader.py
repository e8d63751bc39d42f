"""Read ``pop3watch.yaml``: safe YAML in, a validated config or *every* problem out.

Job: validate each section and each monitor on its own (so one bad monitor does not hide
the next), then the rules across monitors, and put a file line on every problem by
mapping pydantic error locations through the YAML node marks. Rule: nothing from the file
is expanded or executed (``password_env`` stays a name; the probe resolves it at check
time), and no message quotes a value from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from pop3watch.config._issues import IssueBuilder, broken_fields, concerns
from pop3watch.config._yaml import Located, YamlSyntaxError, read_yaml
from pop3watch.config.errors import ConfigFileError, ConfigIssue
from pop3watch.config.graph import check_graph
from pop3watch.config.models import Pop3WatchConfig, apply_defaults, invalid_default_key
from pop3watch.config.monitors import (
    DEFAULTABLE_FIELDS,
    MONITOR_ADAPTER,
    Pop3Monitor,
    TcpMonitor,
    fields_of,
)
from pop3watch.config.names import NAME_MAX, is_valid_name
from pop3watch.config.service import ServiceSettings

SECTIONS = ("service", "defaults", "monitors")
#: Top-level keys with this prefix are ignored: a place for YAML anchors to reuse (the
#: docker-compose convention), e.g. ``x-imap-host: &host {host: mail.example.com}``.
EXTENSION = "x-"


def load_config(path: Path) -> Pop3WatchConfig:
    """Read and validate the file at ``path``.

    Raises :class:`ConfigFileError` listing every problem (an unreadable file or text that
    is not UTF-8 is one problem).
    """
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        issue = ConfigIssue(source, None, None, None, f"cannot read: {reason}")
        raise ConfigFileError([issue]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        issue = ConfigIssue(source, line, None, None, "not UTF-8 text")
        raise ConfigFileError([issue]) from None
    return parse_config(text, source)


def parse_config(text: str, source: str = "<string>") -> Pop3WatchConfig:
    """Validate configuration ``text``; ``source`` names it in messages.

    Raises :class:`ConfigFileError` listing every problem, each with its line.
    """
    try:
        located = read_yaml(text)
    except YamlSyntaxError as exc:
        raise ConfigFileError([ConfigIssue(source, exc.line, None, None, exc.message)]) from None
    if located is None:
        message = "the file is empty: it needs at least 'monitors:' (a list, may be empty)"
        raise ConfigFileError([ConfigIssue(source, None, None, None, message)])
    return _Validation(source, located).run()


class _Validation:
    """One pass over a parsed file, collecting issues instead of stopping at the first."""

    def __init__(self, source: str, located: Located) -> None:
        self.located = located
        self.out = IssueBuilder(source, located)

    def run(self) -> Pop3WatchConfig:
        data = self.located.data
        if not isinstance(data, dict):
            self.out.add(
                self.located.root_line,
                None,
                None,
                "the top level must be a mapping with the keys service, defaults and monitors"
                f" (found {_kind(data)})",
            )
            raise ConfigFileError(self.out.issues)
        labels = self._labels(data.get("monitors"))
        self.out.yaml_problems(labels)
        for key in data:
            if key not in SECTIONS and not (isinstance(key, str) and key.startswith(EXTENSION)):
                message = f"unknown section (keys starting with '{EXTENSION}' are ignored)"
                self.out.unknown_key((key,), None, str(key), SECTIONS, message)
        service = self._service(data.get("service"))
        defaults = self._defaults(data.get("defaults"))
        monitors = self._monitors(data, defaults, labels)
        if self.out.issues or service is None or monitors is None:
            raise ConfigFileError(self.out.sorted())
        try:
            return Pop3WatchConfig(service=service, defaults=defaults, monitors=tuple(monitors))
        except ValidationError as exc:  # the pieces passed; only a bug lands here
            self.out.add(None, None, None, f"invalid configuration: {exc.error_count()} errors")
            raise ConfigFileError(self.out.sorted()) from None

    # --- sections -----------------------------------------------------------------------

    def _service(self, raw: Any) -> ServiceSettings | None:
        if raw is None:
            return ServiceSettings()
        if not isinstance(raw, dict):
            self._not_a("service", "a mapping", raw)
            return None
        try:
            return ServiceSettings.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.out.section_error("service", error, frozenset(ServiceSettings.model_fields))
            return None

    def _defaults(self, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self._not_a("defaults", "a mapping of monitor fields", raw)
            return {}
        valid: dict[str, Any] = {}
        for key, value in raw.items():
            why = invalid_default_key(key)
            if why is None:
                valid[key] = value
            elif key == "name":
                self.out.add(self.located.line_of(("defaults", key)), None, "defaults.name", why)
            else:
                self.out.unknown_key(
                    ("defaults", key),
                    None,
                    f"defaults.{key}",
                    DEFAULTABLE_FIELDS,
                    "not a monitor field",
                )
        return valid

    def _monitors(
        self, data: dict[Any, Any], defaults: dict[str, Any], labels: list[str]
    ) -> list[Pop3Monitor | TcpMonitor] | None:
        if "monitors" not in data:
            self.out.add(
                self.located.root_line,
                None,
                "monitors",
                "missing: list the monitors to check ('monitors: []' for none yet)",
            )
            return None
        raw = data["monitors"]
        if raw is None:
            return []
        if not isinstance(raw, list):
            self._not_a("monitors", "a list of monitors", raw)
            return None
        valid: list[Pop3Monitor | TcpMonitor] = []
        merged_all: list[dict[str, Any] | None] = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                self.out.add(
                    self.located.line_of(("monitors", i)),
                    labels[i],
                    None,
                    "a monitor must be a mapping with at least name and host"
                    f" (found {_kind(item)})",
                )
                merged_all.append(None)
                continue
            merged = apply_defaults(defaults, item)
            merged_all.append(merged)
            try:
                valid.append(MONITOR_ADAPTER.validate_python(merged))
            except ValidationError as exc:
                origin = {key: ("monitors", i) if key in item else ("defaults",) for key in merged}
                known = fields_of(merged.get("type", "pop3"))
                for error in [*exc.errors(include_url=False), *_rules_without(merged, exc)]:
                    self.out.monitor_error(i, labels[i], error, origin, known)
        self._graph(raw, merged_all, labels)
        return valid

    def _graph(
        self, raw: list[Any], merged_all: list[dict[str, Any] | None], labels: list[str]
    ) -> None:
        names: list[str | None] = []
        depends: list[list[str]] = []
        for merged in merged_all:
            name = None if merged is None else merged.get("name")
            names.append(name if is_valid_name(name) else None)
            deps = None if merged is None else merged.get("depends_on")
            depends.append(
                [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
            )
        for problem in check_graph(names, depends):
            i = problem.monitor
            own = isinstance(raw[i], dict) and problem.field in raw[i]
            base: tuple[str | int, ...] = ("monitors", i) if own else ("defaults",)
            loc: tuple[str | int, ...] = (problem.field,)
            field = problem.field
            if problem.item is not None:
                loc = (problem.field, problem.item)
                field = f"{problem.field}[{problem.item}]"
            message = problem.message
            if problem.related is not None:
                first = self.located.line_of(("monitors", problem.related, "name"))
                message = f"{message} (first at line {first})"
            self.out.add(self.located.line_of(base + loc), labels[i], field, message)

    # --- helpers ------------------------------------------------------------------------

    def _labels(self, raw: Any) -> list[str]:
        """How each monitor is named in messages: its name when it has a printable one."""
        if not isinstance(raw, list):
            return []
        labels = []
        for i, item in enumerate(raw):
            name = item.get("name") if isinstance(item, dict) else None
            ok = isinstance(name, str) and 0 < len(name) <= NAME_MAX and name.isprintable()
            labels.append(name if ok and isinstance(name, str) else f"monitors[{i}]")
        return labels

    def _not_a(self, section: str, wanted: str, raw: Any) -> None:
        self.out.add(
            self.located.line_of((section,)),
            None,
            section,
            f"must be {wanted} (found {_kind(raw)})",
        )


#: Stand-ins for required fields that were invalid, so the rules can still run; no rule
#: involves these fields.
_PLACEHOLDERS: dict[str, Any] = {"name": "placeholder", "host": "localhost", "port": 1}


def _rules_without(merged: dict[str, Any], failed: ValidationError) -> list[ErrorDetails]:
    """The monitor-level rules (``timeout`` vs ``interval_up``, TLS options without TLS,
    ...) that pydantic skipped because some fields were invalid: validate again without
    those fields and keep the rule errors that do not involve any of them, so one pass
    reports them too, and never a rule whose verdict depends on a value we dropped."""
    broken = broken_fields(failed.errors(include_url=False))
    if not broken:
        return []
    retry = {k: v for k, v in merged.items() if k not in broken}
    retry.update({k: v for k, v in _PLACEHOLDERS.items() if k in broken})
    try:
        MONITOR_ADAPTER.validate_python(retry)
    except ValidationError as exc:
        return [
            error
            for error in exc.errors(include_url=False)
            if not broken_fields([error]) and not concerns(error, broken)
        ]
    return []


def _kind(value: Any) -> str:
    """What was found, by type only: a value may be a secret pasted in the wrong place."""
    if value is None:
        return "nothing"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), "a " + type(value).__name__)
