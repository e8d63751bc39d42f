"""The whole configuration: service settings, monitor defaults and the monitors.

Job: the top-level model and the rules that need more than one monitor (unique names,
known and acyclic dependencies, valid ``defaults`` keys). Rule: usable on its own
(``Pop3WatchConfig.model_validate(data)`` applies ``defaults`` and all rules); the loader
uses the same helpers piece by piece to put a file line on every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pop3watch.config.graph import check_graph
from pop3watch.config.monitors import (
    DEFAULT_TYPE,
    DEFAULTABLE_FIELDS,
    Monitor,
    Pop3Monitor,
    TcpMonitor,
    fields_of,
)
from pop3watch.config.service import ServiceSettings


def invalid_default_key(key: object) -> str | None:
    """Why ``key`` may not appear under ``defaults:``, or None if it may."""
    if key == "name":
        return "a monitor name cannot have a default: names must be unique"
    if not isinstance(key, str) or key not in DEFAULTABLE_FIELDS:
        return "not a monitor field"
    return None


def apply_defaults(defaults: Mapping[str, Any], monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The monitor's keys over ``defaults``; a default is applied only to monitor types that
    have the field (``tls`` in defaults leaves TCP monitors alone)."""
    fields = fields_of(monitor.get("type", defaults.get("type", DEFAULT_TYPE)))
    merged = {key: value for key, value in defaults.items() if key in fields}
    merged.update(monitor)
    return merged


class Pop3WatchConfig(BaseModel):
    """A validated ``pop3watch.yaml``. ``monitors`` already include the ``defaults``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    defaults: dict[str, Any] = Field(default_factory=dict)
    monitors: tuple[Monitor, ...]

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if not (k in ("service", "defaults") and v is None)}
        defaults = data.get("defaults")
        monitors = data.get("monitors")
        if isinstance(defaults, dict) and isinstance(monitors, list | tuple):
            data["monitors"] = [
                apply_defaults(defaults, m) if isinstance(m, dict) else m for m in monitors
            ]
        return data

    @field_validator("defaults")
    @classmethod
    def _defaults_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [f"{key}: {why}" for key in value if (why := invalid_default_key(key))]
        if bad:
            raise ValueError("; ".join(bad))
        return value

    @model_validator(mode="after")
    def _graph(self) -> Self:
        problems = check_graph(
            [m.name for m in self.monitors], [m.depends_on for m in self.monitors]
        )
        if problems:
            raise ValueError(
                "; ".join(
                    f"monitor '{self.monitors[p.monitor].name}': {p.message}" for p in problems
                )
            )
        return self

    def get(self, name: str) -> Pop3Monitor | TcpMonitor | None:
        """The monitor called ``name``, or None."""
        return next((m for m in self.monitors if m.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.monitors)
