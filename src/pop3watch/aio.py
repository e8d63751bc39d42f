"""Event-loop helpers: run a coroutine on the fastest loop, and a lean deadline.

Job: the asyncio plumbing every layer shares. Rule: behaviour matches the stdlib's
(``asyncio.run``, ``asyncio.timeout_at``); only the cost differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """``asyncio.run`` on uvloop when available; the stdlib loop otherwise."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a hard dependency on Linux
            pass
        else:
            result: T = uvloop.run(main)
            return result
    return asyncio.run(main)


class Deadline:
    """``with Deadline(loop, when):`` - ``asyncio.timeout_at(when)`` for a hot path.

    Same contract as the stdlib's: when the loop's clock reaches ``when`` the current
    task is cancelled, and the cancellation leaves the block as ``TimeoutError``; a
    cancellation from anyone else (a service shutting down) passes through unchanged, and
    nested deadlines each see only their own. Why not ``asyncio.timeout_at``: every check
    enters one, and the stdlib's (Python 3.11) looks the running loop up twice (a
    ``getpid()`` system call each) and keeps a state machine; this is one timer handle.
    A plain ``with``, since entering and leaving need not await anything.
    """

    __slots__ = ("_cancelling", "_expired", "_handle", "_loop", "_task", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._loop = loop
        self._when = when
        self._expired = False
        self._cancelling = 0
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None

    @property
    def expired(self) -> bool:
        """Whether the deadline passed and cancelled the task."""
        return self._expired

    def __enter__(self) -> Deadline:
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = self._loop.call_at(self._when, self._expire)
        return self

    def _expire(self) -> None:
        assert self._task is not None
        self._expired = True
        self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._handle is not None
        assert self._task is not None
        self._handle.cancel()
        if not self._expired:
            return
        # Our cancel() is counted once; uncancel it. Only when no other cancellation is
        # pending (the count is back where it was at entry) is it ours to turn into
        # TimeoutError.
        if (
            self._task.uncancel() <= self._cancelling
            and exc_type is not None
            and issubclass(exc_type, asyncio.CancelledError)
        ):
            raise TimeoutError from exc
