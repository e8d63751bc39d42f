"""Configuration: ``pop3watch.yaml`` as validated, frozen models.

Job: the service settings, monitors (the probe's check settings plus scheduling,
alerting, dependencies and maintenance windows) and the loader that reports every problem
in a file with its line. Rule: the configuration holds secret references, never secret
values, and nothing in it is expanded or executed while loading.
"""

from __future__ import annotations

from pop3watch.config.errors import ConfigFileError, ConfigIssue
from pop3watch.config.loader import load_config, parse_config
from pop3watch.config.maintenance import MaintenanceWindow, Weekday, WeeklySchedule
from pop3watch.config.models import Pop3WatchConfig, apply_defaults
from pop3watch.config.monitors import (
    DEFAULTABLE_FIELDS,
    MONITOR_ADAPTER,
    Monitor,
    MonitorCommon,
    Pop3Monitor,
    TcpMonitor,
)
from pop3watch.config.names import NAME_CHARS, NAME_MAX, TAG_MAX, MonitorName, check_name
from pop3watch.config.service import ServiceSettings

__all__ = [
    "DEFAULTABLE_FIELDS",
    "MONITOR_ADAPTER",
    "NAME_CHARS",
    "NAME_MAX",
    "TAG_MAX",
    "ConfigFileError",
    "ConfigIssue",
    "MaintenanceWindow",
    "Monitor",
    "MonitorCommon",
    "MonitorName",
    "Pop3Monitor",
    "Pop3WatchConfig",
    "ServiceSettings",
    "TcpMonitor",
    "Weekday",
    "WeeklySchedule",
    "apply_defaults",
    "check_name",
    "load_config",
    "parse_config",
]
