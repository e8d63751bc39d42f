"""Keeping the ``monitors`` table in step with a source (the config file or the API).

Job: upsert by name, soft-delete what the source no longer lists, undelete what comes back.
Rule: a source only ever touches its own rows; a name owned by another source is a
configuration mistake (``ValueError``), not something to paper over, because names identify
monitors in alerts and reports. ``updated_at`` moves only when something really changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pop3watch.storage.convert import dump_json
from pop3watch.storage.records import MonitorRecord
from pop3watch.storage.schema import MONITOR_NAME_MAX, SOURCES, monitors

#: Keys that would hold a secret value; the config stores references (``password_env``).
SECRET_KEYS = frozenset(
    {"password", "passwd", "secret", "token", "api_key", "apikey", "private_key", "passphrase"}
)


def check_records(records: Sequence[MonitorRecord], source: str) -> dict[str, str]:
    """Validate the records; returns name -> canonical JSON config. Raises ``ValueError``."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    configs: dict[str, str] = {}
    for record in records:
        if not record.name or len(record.name) > MONITOR_NAME_MAX:
            raise ValueError(
                f"monitor name must be 1..{MONITOR_NAME_MAX} characters: {record.name!r}"
            )
        if record.name in configs:
            raise ValueError(f"monitor {record.name!r} is listed twice")
        if not record.probe:
            raise ValueError(f"monitor {record.name!r} has no probe")
        secret = _secret_key(record.config)
        if secret is not None:
            raise ValueError(
                f"monitor {record.name!r}: config key {secret!r} would store a secret; "
                "store a reference such as password_env instead"
            )
        configs[record.name] = dump_json(record.config, f"config of monitor {record.name!r}")
    return configs


def _secret_key(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() in SECRET_KEYS:
                return str(key)
            found = _secret_key(item)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            found = _secret_key(item)
            if found is not None:
                return found
    return None


async def sync(
    conn: AsyncConnection,
    records: Sequence[MonitorRecord],
    configs: Mapping[str, str],
    source: str,
    now: datetime,
) -> dict[str, int]:
    """Apply ``records`` for ``source`` inside the caller's (write) transaction."""
    # The table is small (one row per monitor ever defined): read it whole.
    existing = {row["name"]: row for row in (await conn.execute(select(monitors))).mappings()}
    ids: dict[str, int] = {}
    for record in records:
        row = existing.get(record.name)
        config = configs[record.name]
        if row is None:
            ids[record.name] = await _insert(conn, record, config, source, now)
            continue
        if row["source"] != source:
            state = "deleted " if row["deleted_at"] is not None else ""
            raise ValueError(
                f"monitor name {record.name!r} is already used by a {state}monitor "
                f"from source {row['source']!r}; rename one of them"
            )
        ids[record.name] = row["id"]
        changes: dict[str, Any] = {}
        if row["probe"] != record.probe:
            changes["probe"] = record.probe
        if bool(row["enabled"]) != record.enabled:
            changes["enabled"] = record.enabled
        if row["config"] != config:
            changes["config"] = config
        if row["deleted_at"] is not None:
            changes["deleted_at"] = None
        if changes:
            changes["updated_at"] = now
            await conn.execute(update(monitors).where(monitors.c.id == row["id"]).values(changes))
    gone = [
        row["id"]
        for name, row in existing.items()
        if row["source"] == source and name not in ids and row["deleted_at"] is None
    ]
    if gone:
        await conn.execute(
            update(monitors).where(monitors.c.id.in_(gone)).values(deleted_at=now, updated_at=now)
        )
    return ids


async def _insert(
    conn: AsyncConnection, record: MonitorRecord, config: str, source: str, now: datetime
) -> int:
    new_id = await conn.scalar(
        monitors.insert()
        .values(
            name=record.name,
            probe=record.probe,
            source=source,
            enabled=record.enabled,
            config=config,
            created_at=now,
            updated_at=now,
        )
        .returning(monitors.c.id)
    )
    if new_id is None:  # pragma: no cover - INSERT .. RETURNING always returns the row
        raise RuntimeError("insert returned no id")
    return int(new_id)
