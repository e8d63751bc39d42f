"""The lean deadline keeps ``asyncio.timeout_at``'s contract, on both event loops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from pop3watch.aio import Deadline, run

LOOPS = pytest.mark.parametrize("uvloop", [True, False], ids=["uvloop", "asyncio"])


def _run(body: Callable[[], Coroutine[Any, Any, None]], uvloop: bool) -> None:
    run(body(), use_uvloop=uvloop)


@LOOPS
def test_a_passed_deadline_cancels_the_block_and_raises_timeout_error(uvloop: bool) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = Deadline(loop, started + 0.05)
        with pytest.raises(TimeoutError), deadline:
            await asyncio.sleep(5)
        assert deadline.expired
        assert 0.04 <= loop.time() - started < 1.0
        # The task is not left marked as cancelled: it can go on awaiting.
        assert asyncio.current_task() is not None
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        await asyncio.sleep(0)

    _run(body, uvloop)


@LOOPS
def test_a_block_that_finishes_in_time_is_never_cancelled_later(uvloop: bool) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop, loop.time() + 0.05)
        with deadline:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.15)  # past the deadline: its timer must be gone
        assert not deadline.expired

    _run(body, uvloop)


async def _cancelled_from_outside(deadline_in_s: float) -> asyncio.Task[None]:
    """A task inside a Deadline ``deadline_in_s`` seconds away, cancelled by someone
    else (as a service shutting down cancels its checks)."""
    entered = asyncio.Event()

    async def guarded() -> None:
        loop = asyncio.get_running_loop()
        with Deadline(loop, loop.time() + deadline_in_s):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(guarded())
    await entered.wait()
    task.cancel()
    return task


@LOOPS
@pytest.mark.parametrize(
    "deadline_in_s",
    [5, 0],
    # 0: both fire in the same loop iteration; the service's cancel must not be eaten.
    ids=["deadline-far", "deadline-racing"],
)
def test_someone_elses_cancellation_passes_through_unchanged(
    uvloop: bool, deadline_in_s: float
) -> None:
    async def body() -> None:
        task = await _cancelled_from_outside(deadline_in_s)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    _run(body, uvloop)


@LOOPS
def test_nested_deadlines_each_see_only_their_own(uvloop: bool) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        outer = Deadline(loop, loop.time() + 5)
        with outer:
            # An inner, shorter stdlib timeout expires and is handled inside.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await asyncio.sleep(5)
            # An inner lean deadline likewise.
            inner = Deadline(loop, loop.time() + 0.02)
            with pytest.raises(TimeoutError), inner:
                await asyncio.sleep(5)
            assert inner.expired
            await asyncio.sleep(0.01)
        assert not outer.expired

        # The outer one is shorter: it wins, and the inner stdlib timeout stays quiet.
        async def under_a_long_stdlib_timeout() -> None:
            async with asyncio.timeout(5):
                await asyncio.sleep(5)

        outer = Deadline(loop, loop.time() + 0.02)
        with pytest.raises(TimeoutError), outer:
            await under_a_long_stdlib_timeout()
        assert outer.expired

    _run(body, uvloop)


def test_outside_a_task_it_is_an_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="inside a task"), Deadline(loop, loop.time() + 1):
            pass
    finally:
        loop.close()
