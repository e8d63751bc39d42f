"""How a configuration file is rejected: every problem at once, each with its place.

Job: one exception for the whole file, holding a list of located issues, so an operator
fixes a broken file in one pass instead of one error per restart. Rule: an issue names the
file, line, monitor and field, never the offending value (values next to ``password_*`` or
``token_*`` keys are exactly what must not end up in a log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pop3watch.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file.

    ``line`` is 1-based (None when the problem has no place, e.g. an unreadable file);
    ``monitor`` is the monitor's name, or ``monitors[i]`` when it has no usable name;
    ``field`` is a path relative to the monitor (``maintenance[0].weekly.days[1]``), or a
    section-qualified path (``service.concurrency``, ``defaults.tls``) outside monitors.
    """

    source: str
    line: int | None
    monitor: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.source if self.line is None else f"{self.source}:{self.line}"]
        if self.monitor is not None:
            parts.append(f"monitor '{self.monitor}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        return ": ".join(parts)


class ConfigFileError(ConfigError):
    """The configuration file cannot be used; ``issues`` lists every problem found.

    Keeps the stable ``config_invalid`` code of :class:`pop3watch.errors.ConfigError`, so
    callers that only know the error tree still classify it correctly.
    """

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        count = len(self.issues)
        head = "1 problem" if count == 1 else f"{count} problems"
        super().__init__("\n".join([head, *(f"  {issue}" for issue in self.issues)]))

    def __reduce__(self) -> tuple[type[ConfigFileError], tuple[list[ConfigIssue]]]:
        # Rebuild from the issues, not from the message (e.g. across processes).
        return (type(self), (self.issues,))
