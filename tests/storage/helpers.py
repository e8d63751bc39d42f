"""Small builders shared by the storage tests."""

from __future__ import annotations

from datetime import UTC, datetime

from pop3watch.storage import MonitorRecord, Storage


def ts(text: str) -> datetime:
    """``"2025-03-01 12:00"`` (or with seconds) as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def make_monitors(store: Storage, *names: str) -> dict[str, int]:
    records = [MonitorRecord(name=n, probe="pop3", enabled=True, config={}) for n in names]
    return await store.sync_monitors(records)
