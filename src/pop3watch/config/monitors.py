"""Monitors: what to check (the probe's settings) plus how the service treats the results.

Job: one frozen model per monitor type, built by inheriting the probe's settings model, so
a check field exists in exactly one place (``pop3watch.probe.settings``) and is validated
by the same rules the probe relies on. Rule: a monitor holds secret *references*
(``password_env``, ``token_file``, ...), never secret values, so ``record_config`` can be
stored in the database as is.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pop3watch.config.maintenance import MaintenanceWindow
from pop3watch.config.names import MonitorName, unique
from pop3watch.config.names import Tag as TagName
from pop3watch.probe.settings import CheckSettings, TcpSettings

DAY_S = 86_400
Seconds = Annotated[int, Field(ge=1, le=DAY_S)]
Count = Annotated[int, Field(ge=1, le=1000)]
DEFAULT_TYPE = "pop3"


class MonitorCommon(BaseModel):
    """What every monitor has besides its check: identity, schedule, alerting, windows.

    Intervals are whole seconds: ``interval_up`` while Up/Warn, ``interval_down`` while
    Down (retry sooner), ``interval_lost`` once Lost (``max_alerts`` failure alerts sent).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: MonitorName
    enabled: bool = True
    store_statistics: bool = True
    tags: tuple[TagName, ...] = Field(default=(), max_length=32)
    priority: Annotated[int, Field(ge=1, le=5)] = 3
    description: str = Field(default="", max_length=1000)
    interval_up: Seconds = 60
    interval_down: Seconds = 30
    interval_lost: Seconds = 300
    failures_before_alert: Count = 3
    max_alerts: Count = 5
    depends_on: tuple[MonitorName, ...] = Field(default=(), max_length=64)
    maintenance: tuple[MaintenanceWindow, ...] = Field(default=(), max_length=100)

    _unique = field_validator("tags", "depends_on")(unique)

    @field_validator("description")
    @classmethod
    def _printable(cls, value: str) -> str:
        # Control and format characters (terminal escapes, bidi overrides) would let a
        # description rewrite the screen or the page it is shown on.
        if any(unicodedata.category(ch)[0] == "C" and ch not in "\n\t" for ch in value):
            raise ValueError("must not contain control characters (newlines and tabs are fine)")
        return value

    @model_validator(mode="after")
    def _timeout_fits(self) -> Self:
        # Both subclasses inherit ``timeout`` from their settings model; a check that
        # outlasts its interval would overlap the next one.
        timeout: float = getattr(self, "timeout", 0.0)
        if timeout > self.interval_up:
            raise PydanticCustomError(
                "timeout_exceeds_interval",
                "timeout ({timeout} s) must not exceed interval_up ({interval_up} s):"
                " a check may not outlast its interval",
                {"field": "timeout", "timeout": f"{timeout:g}", "interval_up": self.interval_up},
            )
        return self

    def check_settings(self) -> CheckSettings | TcpSettings:
        """Only the check part, as the probe's own settings model."""
        raise NotImplementedError

    def record_config(self) -> dict[str, Any]:
        """The monitor's settings as a JSON-safe dict, ``name`` and ``type`` first.

        Holds secret references (``password_env``...), never values: it is stored with
        every configuration version in the database.
        """
        dumped = self.model_dump(mode="json")
        order = dict.fromkeys(["name", "type", *MonitorCommon.model_fields, *dumped])
        return {key: dumped[key] for key in order if key in dumped}


class Pop3Monitor(MonitorCommon, CheckSettings):
    """A POP3 (or POP3S) monitor; ``type`` may be left out."""

    type: Literal["pop3"] = "pop3"

    def check_settings(self) -> CheckSettings:
        return CheckSettings.model_validate(
            {key: getattr(self, key) for key in CheckSettings.model_fields}
        )


class TcpMonitor(MonitorCommon, TcpSettings):
    """A plain TCP connect (and banner) monitor, typically the parent of POP3 monitors."""

    type: Literal["tcp"]

    def check_settings(self) -> TcpSettings:
        return TcpSettings.model_validate(
            {key: getattr(self, key) for key in TcpSettings.model_fields}
        )


MONITOR_TYPES: dict[str, type[Pop3Monitor] | type[TcpMonitor]] = {
    "pop3": Pop3Monitor,
    "tcp": TcpMonitor,
}


def monitor_type(value: Any) -> Any:
    """The discriminator: the ``type`` key of raw data (``pop3`` when absent), or the
    ``type`` attribute of a model."""
    if isinstance(value, dict):
        return value.get("type", DEFAULT_TYPE)
    return getattr(value, "type", None)


Monitor = Annotated[
    Annotated[Pop3Monitor, Tag("pop3")] | Annotated[TcpMonitor, Tag("tcp")],
    Discriminator(
        monitor_type,
        custom_error_type="monitor_type",
        custom_error_message="type must be one of 'pop3', 'tcp'",
        custom_error_context={"field": "type"},
    ),
]
MONITOR_ADAPTER: TypeAdapter[Pop3Monitor | TcpMonitor] = TypeAdapter(Monitor)


ALL_MONITOR_FIELDS: frozenset[str] = frozenset(
    name for model in MONITOR_TYPES.values() for name in model.model_fields
)
#: Keys allowed in ``defaults:``: any monitor field except the name, which must be unique.
DEFAULTABLE_FIELDS: frozenset[str] = ALL_MONITOR_FIELDS - {"name"}


def fields_of(type_name: object) -> frozenset[str]:
    """Field names of a monitor type; all known monitor fields for an unknown type."""
    model = MONITOR_TYPES.get(type_name) if isinstance(type_name, str) else None
    if model is None:
        return ALL_MONITOR_FIELDS
    return frozenset(model.model_fields)
