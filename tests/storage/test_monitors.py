"""sync_monitors: upsert by name per source, soft delete, undelete, clashes."""

from __future__ import annotations

import pytest

from pop3watch.storage import MonitorRecord, Storage


def rec(name: str, *, enabled: bool = True, **config: object) -> MonitorRecord:
    return MonitorRecord(name=name, probe="pop3", enabled=enabled, config=dict(config))


async def test_sync_inserts_and_returns_ids(storage: Storage) -> None:
    ids = await storage.sync_monitors([rec("a", host="mx.example"), rec("b", enabled=False)])
    rows = {m.name: m for m in await storage.list_monitors()}
    assert set(ids) == {"a", "b"} and ids["a"] != ids["b"]
    assert rows["a"].id == ids["a"]
    assert rows["a"].config == {"host": "mx.example"}
    assert rows["a"].source == "file" and rows["a"].probe == "pop3"
    assert rows["b"].enabled is False
    assert rows["a"].created_at.tzinfo is not None and rows["a"].deleted_at is None


async def test_sync_updates_in_place_and_only_touches_changed_rows(storage: Storage) -> None:
    first = await storage.sync_monitors([rec("a", port=110), rec("b")])
    before = {m.name: m for m in await storage.list_monitors()}
    second = await storage.sync_monitors([rec("a", port=995), rec("b")])
    after = {m.name: m for m in await storage.list_monitors()}
    assert first == second
    assert after["a"].config == {"port": 995}
    assert after["a"].updated_at > before["a"].updated_at
    assert after["a"].created_at == before["a"].created_at
    assert after["b"] == before["b"]


async def test_missing_monitors_are_soft_deleted_and_come_back_with_their_id(
    storage: Storage,
) -> None:
    ids = await storage.sync_monitors([rec("a"), rec("b")])
    await storage.sync_monitors([rec("a")])
    assert [m.name for m in await storage.list_monitors()] == ["a"]
    every = {m.name: m for m in await storage.list_monitors(include_deleted=True)}
    assert every["b"].deleted_at is not None

    again = await storage.sync_monitors([rec("a"), rec("b")])
    assert again["b"] == ids["b"]
    restored = {m.name: m for m in await storage.list_monitors()}
    assert restored["b"].deleted_at is None


async def test_other_sources_are_untouched(storage: Storage) -> None:
    api = await storage.sync_monitors([rec("from-api")], source="api")
    await storage.sync_monitors([rec("from-file")])
    await storage.sync_monitors([])  # the file lists nothing any more
    live = {m.name: m for m in await storage.list_monitors()}
    assert list(live) == ["from-api"]
    assert live["from-api"].id == api["from-api"] and live["from-api"].source == "api"


async def test_a_name_owned_by_another_source_is_a_value_error(storage: Storage) -> None:
    await storage.sync_monitors([rec("shared")], source="api")
    with pytest.raises(ValueError, match=r"'shared'.*source 'api'"):
        await storage.sync_monitors([rec("ok"), rec("shared")])
    # the failed sync wrote nothing
    assert [m.name for m in await storage.list_monitors(include_deleted=True)] == ["shared"]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([rec("x" * 65)], "1..64"),
        ([rec("a"), rec("a")], "listed twice"),
        ([rec("a", password="hunter2")], "password_env"),
        ([rec("a", auth={"Secret": "x"})], "Secret"),
        ([rec("a", when=object())], "JSON"),
    ],
)
async def test_invalid_records_are_refused_before_writing(
    storage: Storage, records: list[MonitorRecord], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await storage.sync_monitors(records)
    assert await storage.list_monitors(include_deleted=True) == []


async def test_unknown_source_is_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="source"):
        await storage.sync_monitors([rec("a")], source="ldap")


async def test_a_64_character_name_and_references_to_secrets_are_fine(storage: Storage) -> None:
    ids = await storage.sync_monitors([rec("n" * 64, password_env="POP3_PASSWORD")])
    [row] = await storage.list_monitors()
    assert row.id == ids["n" * 64] and row.config == {"password_env": "POP3_PASSWORD"}
