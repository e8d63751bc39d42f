"""The ``service:`` section: how the monitoring service itself runs.

Job: typed service settings with defaults that work on a fresh machine (SQLite under
``./data``). Rule: ``database_url`` is the one place a file could hold a secret (a
PostgreSQL password), so it is left out of ``repr`` and never echoed in messages.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pop3watch.config.names import check_name
from pop3watch.storage import masked_url, normalize_url

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
DB_FILE = "pop3watch.db"
_DB_URL = re.compile(r"[a-z][a-z0-9]*(\+[a-z0-9_]+)?://.*", re.DOTALL)


class ServiceSettings(BaseModel):
    """Everything in ``service:``; all optional. Relative paths are relative to the working
    directory of the service (as for the CLI's ``--data-dir``), not to the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, repr=False)
    concurrency: Annotated[int, Field(ge=1, le=100_000)] = 200
    retention_days: Annotated[int, Field(ge=1, le=36_500)] = 30
    node_name: str | None = None
    log_level: LogLevel = "info"
    shutdown_grace_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    flush_interval_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    buffer_limit: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not _DB_URL.fullmatch(value):
            raise ValueError(
                "must be an SQLAlchemy URL such as postgresql+asyncpg://user@host/db"
                " or sqlite+aiosqlite:///path/to/file.db"
            )
        if value is not None:
            # What the storage will refuse when it opens (another database, an in-memory
            # SQLite, an unparsable host) is refused here, where the line number is known;
            # the storage's messages never quote the URL.
            normalize_url(value)
        return value

    @field_validator("node_name")
    @classmethod
    def _node(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def effective_database_url(self, data_dir: Path | None = None) -> str:
        """``database_url``, or SQLite in the data directory (``data_dir`` if given: the
        CLI's ``--data-dir`` wins over the file). The path is made absolute, so logs show
        where the database is whatever the working directory becomes later."""
        if self.database_url is not None:
            return self.database_url
        directory = (data_dir if data_dir is not None else self.data_dir).absolute()
        return f"sqlite+aiosqlite:///{directory / DB_FILE}"

    def display_database_url(self, data_dir: Path | None = None) -> str:
        """The effective URL with any password replaced by ``***``, for logs and pages."""
        return masked_url(self.effective_database_url(data_dir))

    @property
    def effective_node_name(self) -> str:
        """``node_name``, or this machine's host name."""
        return self.node_name if self.node_name is not None else socket.gethostname()
