"""write_batch: one transaction, compare-and-swap on status, the alert outbox, UTC."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pop3watch.errors import StorageError
from pop3watch.model import AlertKind, MonitorState, MonitorStatus, Transition
from pop3watch.storage import StatusUpdate, Storage, StoredResult, WriteBatch
from tests.storage.helpers import make_monitors, ts

T0 = ts("2025-03-01 12:00")


def down_result(monitor_id: int, at: datetime) -> StoredResult:
    return StoredResult(
        monitor_id=monitor_id,
        started_at=at,
        status="down",
        error_code="auth_failed",
        error_message="Credentials rejected",
        error_phase="auth",
        rtt_ms=12.5,
        timings={
            "dns": 1.0,
            "connect": 2.25,
            "tls": 3.5,
            "greeting": 4.0,
            "auth": 1.75,
            "total": 12.5,
        },
        tls_days_left=42,
        maintenance=False,
        address="192.0.2.1",
        node="node-a",
        transcript=[
            {"t_ms": 0.5, "dir": "S", "text": "+OK ready"},
            {"t_ms": 1.0, "dir": "C", "text": "USER alice"},
        ],
    )


def status(version: int, state: MonitorState = MonitorState.DOWN, **kw: object) -> MonitorStatus:
    return MonitorStatus(state=state, since=T0, version=version, **kw)  # type: ignore[arg-type]


def flip(
    monitor_id: int,
    to: MonitorState,
    *,
    alert: AlertKind | None = None,
    at: datetime = T0,
    seq: int | None = None,
) -> Transition:
    return Transition(
        monitor_id=monitor_id,
        at=at,
        from_state=MonitorState.UP,
        to_state=to,
        reason_code="auth_failed",
        reason_message="Credentials rejected",
        alert=alert,
        alert_seq=seq,
        extra={"target": "mx"},
    )


async def test_batch_round_trip(storage: Storage) -> None:
    ids = await make_monitors(storage, "a")
    a = ids["a"]
    result = down_result(a, T0)
    st = status(
        1,
        consecutive_failures=3,
        alerts_sent=1,
        last_result_status="down",
        last_checked_at=T0,
        next_due_at=T0 + timedelta(minutes=1),
    )
    tr = flip(a, MonitorState.DOWN, alert=AlertKind.DOWN, seq=1)
    outcome = await storage.write_batch(
        WriteBatch(results=[result], statuses=[StatusUpdate(a, 0, st)], transitions=[tr])
    )
    assert (outcome.results_written, outcome.transitions_written, outcome.conflicts) == (1, 1, [])

    [stored] = await storage.results(a)
    assert stored.id is not None
    assert stored == StoredResult(**{**_fields(result), "id": stored.id})
    assert await storage.load_statuses() == {a: st}
    [back] = await storage.transitions(monitor_id=a)
    assert back.id is not None and back == Transition(**{**_fields(tr), "id": back.id})
    assert await storage.last_results() == {a: stored}


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


async def test_timestamps_come_back_utc_aware_and_equal(storage: Storage) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    paris = timezone(timedelta(hours=2))
    local = datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=paris)
    await storage.write_batch(
        WriteBatch(
            results=[StoredResult(monitor_id=a, started_at=local, status="up", rtt_ms=3.0)],
            statuses=[
                StatusUpdate(a, 0, MonitorStatus(state=MonitorState.UP, since=local, version=1))
            ],
            transitions=[],
        )
    )
    [back] = await storage.results(a)
    assert back.started_at == local
    assert back.started_at.tzinfo == UTC and back.started_at.hour == 12
    loaded = (await storage.load_statuses())[a]
    assert loaded.since == local and loaded.since is not None and loaded.since.tzinfo == UTC
    [row] = await storage.list_monitors()
    assert row.created_at.tzinfo == UTC


async def test_naive_timestamps_are_a_value_error_and_nothing_is_written(
    storage: Storage,
) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    good = StoredResult(monitor_id=a, started_at=T0, status="up")
    naive = StoredResult(monitor_id=a, started_at=datetime(2025, 1, 1), status="up")
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.write_batch(WriteBatch(results=[good, naive], statuses=[], transitions=[]))
    with pytest.raises(ValueError, match="status"):
        await storage.write_batch(
            WriteBatch(
                results=[StoredResult(monitor_id=a, started_at=T0, status="fine")],
                statuses=[],
                transitions=[],
            )
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.results(a, since=datetime(2025, 1, 1))
    assert await storage.results(a) == []


async def test_stale_version_is_a_conflict_and_drops_only_that_monitors_writes(
    storage: Storage,
) -> None:
    ids = await make_monitors(storage, "a", "b")
    a, b = ids["a"], ids["b"]
    await storage.write_batch(
        WriteBatch(
            results=[],
            transitions=[],
            statuses=[StatusUpdate(a, 0, status(1)), StatusUpdate(b, 0, status(1))],
        )
    )
    # Another writer moves a to version 2 first.
    await storage.write_batch(
        WriteBatch(results=[], transitions=[], statuses=[StatusUpdate(a, 1, status(2))])
    )
    stale = WriteBatch(
        results=[down_result(a, T0), down_result(b, T0)],
        statuses=[
            StatusUpdate(a, 1, status(2, MonitorState.LOST)),
            StatusUpdate(b, 1, status(2, MonitorState.LOST)),
        ],
        transitions=[
            flip(a, MonitorState.LOST, alert=AlertKind.DOWN),
            flip(b, MonitorState.LOST, alert=AlertKind.DOWN),
        ],
    )
    outcome = await storage.write_batch(stale)
    assert outcome.conflicts == [a]
    assert (outcome.results_written, outcome.transitions_written) == (2, 1)
    statuses = await storage.load_statuses()
    assert statuses[a].state is MonitorState.DOWN and statuses[a].version == 2
    assert statuses[b].state is MonitorState.LOST and statuses[b].version == 2
    assert [t.monitor_id for t in await storage.transitions()] == [b]
    assert len(await storage.results(a)) == 1  # observations are kept


async def test_insert_when_a_row_exists_is_a_conflict(storage: Storage) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    first = await storage.write_batch(WriteBatch([], [StatusUpdate(a, 0, status(1))], []))
    second = await storage.write_batch(
        WriteBatch([], [StatusUpdate(a, 0, status(1, MonitorState.UP))], [flip(a, MonitorState.UP)])
    )
    assert (first.conflicts, second.conflicts) == ([], [a])
    assert (await storage.load_statuses())[a].state is MonitorState.DOWN
    assert await storage.transitions() == []


async def test_version_must_advance(storage: Storage) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    with pytest.raises(ValueError, match="expected_version"):
        await storage.write_batch(WriteBatch([], [StatusUpdate(a, 0, status(0))], []))
    # A writer that buffered through an outage coalesces updates: versions may jump.
    outcome = await storage.write_batch(WriteBatch([], [StatusUpdate(a, 0, status(3))], []))
    assert outcome.conflicts == []
    assert (await storage.load_statuses())[a].version == 3


@pytest.mark.parametrize("expected", [0, 1])
async def test_concurrent_writers_exactly_one_wins(db_url: str, expected: int) -> None:
    stores = [await Storage.connect(db_url) for _ in range(4)]
    try:
        a = (await make_monitors(stores[0], "a"))["a"]
        if expected:
            await stores[0].write_batch(WriteBatch([], [StatusUpdate(a, 0, status(1))], []))

        async def attempt(i: int, store: Storage) -> list[int]:
            batch = WriteBatch(
                results=[],
                statuses=[StatusUpdate(a, expected, status(expected + 1, alerts_sent=i + 1))],
                transitions=[flip(a, MonitorState.DOWN, alert=AlertKind.DOWN, seq=i + 1)],
            )
            return (await store.write_batch(batch)).conflicts

        attempts = [attempt(i, s) for i, s in enumerate(stores) for _ in range(3)]
        outcomes = await asyncio.gather(*attempts)
        winners = [i for i, conflicts in enumerate(outcomes) if not conflicts]
        assert len(winners) == 1
        alerts = await stores[0].pending_alerts()
        assert len(alerts) == 1
        final = (await stores[0].load_statuses())[a]
        assert final.version == expected + 1
        assert final.alerts_sent == alerts[0].alert_seq
    finally:
        for store in stores:
            await store.close()


async def test_first_statuses_race_in_bulk_one_winner_per_monitor(db_url: str) -> None:
    """Two writers insert the first statuses of overlapping monitor sets at once (more rows
    than one multi-row INSERT takes): every monitor gets exactly one first status, each
    writer is told which monitors it lost, and the overlapping inserts do not deadlock."""
    stores = [await Storage.connect(db_url) for _ in range(2)]
    try:
        names = [f"m{i:04d}" for i in range(1_500)]
        ids = sorted((await make_monitors(stores[0], *names)).values())
        sets = [ids[:1_100], ids[400:]]  # ids[400:1_100] are wanted by both

        async def first_statuses(writer: int) -> list[int]:
            batch = WriteBatch(
                results=[],
                statuses=[
                    StatusUpdate(m, 0, status(1, alerts_sent=writer + 1)) for m in sets[writer]
                ],
                transitions=[],
            )
            return (await stores[writer].write_batch(batch)).conflicts

        lost = await asyncio.gather(first_statuses(0), first_statuses(1))
        stored = await stores[0].load_statuses()
        assert set(stored) == set(ids)
        assert all(stored[m].version == 1 for m in ids)
        overlap = set(ids[400:1_100])
        assert set(lost[0]) | set(lost[1]) == overlap  # each contested monitor lost once
        assert not set(lost[0]) & set(lost[1])
        for writer in (0, 1):
            won = set(sets[writer]) - set(lost[writer])
            assert all(stored[m].alerts_sent == writer + 1 for m in won)
    finally:
        for store in stores:
            await store.close()


async def test_pending_alerts_oldest_first_and_mark_delivered(storage: Storage) -> None:
    a = (await make_monitors(storage, "a"))["a"]
    later = flip(a, MonitorState.DOWN, alert=AlertKind.DOWN, at=T0 + timedelta(minutes=5), seq=2)
    earlier = flip(a, MonitorState.DOWN, alert=AlertKind.DOWN, at=T0, seq=1)
    silent = flip(a, MonitorState.WARN, at=T0 + timedelta(minutes=1))
    # written late (e.g. after a buffered retry): order is by time, not by insertion
    await storage.write_batch(WriteBatch([], [], [later, silent, earlier]))
    pending = await storage.pending_alerts()
    assert [t.alert_seq for t in pending] == [1, 2]
    assert [t.alert_seq for t in await storage.pending_alerts(limit=1)] == [1]
    assert len(await storage.transitions(alerts_only=True)) == 2
    assert len(await storage.transitions(since=T0 + timedelta(minutes=1))) == 2

    first_id = pending[0].id
    assert first_id is not None
    await storage.mark_delivered([first_id], T0 + timedelta(minutes=6))
    await storage.mark_delivered([first_id], T0 + timedelta(minutes=9))  # idempotent
    assert [t.alert_seq for t in await storage.pending_alerts()] == [2]
    await storage.mark_delivered([], T0)


async def test_results_window_and_limit(storage: Storage) -> None:
    ids = await make_monitors(storage, "a", "b")
    a, b = ids["a"], ids["b"]
    rows = [
        StoredResult(
            monitor_id=a, started_at=T0 + timedelta(minutes=i), status="up", rtt_ms=float(i)
        )
        for i in range(10)
    ]
    rows.append(StoredResult(monitor_id=b, started_at=T0, status="warn"))
    await storage.write_batch(WriteBatch(rows, [], []))
    window = await storage.results(
        a, since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5)
    )
    assert [r.rtt_ms for r in window] == [2.0, 3.0, 4.0]
    newest = await storage.results(a, limit=3)
    assert [r.rtt_ms for r in newest] == [7.0, 8.0, 9.0]
    last = await storage.last_results([a, b])
    assert last[a].rtt_ms == 9.0 and last[b].status == "warn"
    assert set(await storage.last_results([b])) == {b}


async def test_result_for_an_unknown_monitor_is_a_storage_error(storage: Storage) -> None:
    await make_monitors(storage, "a")
    with pytest.raises(StorageError):
        await storage.write_batch(
            WriteBatch([StoredResult(monitor_id=999_999, started_at=T0, status="up")], [], [])
        )
