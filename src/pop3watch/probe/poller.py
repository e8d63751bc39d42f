"""One edge-triggered epoll set per event loop for every probe socket (Linux).

Job: tell streams when their socket became readable or writable, for thousands of
short-lived sockets a second, at the least cost. Rule: no socket I/O here, only
readiness; a stream registers its socket once and the poller never touches it again.

Why not ``loop.add_reader`` per socket: uvloop gives every registration its own poll
handle, and adding and removing one costs about ten system calls and as many Python
objects, several times per check (connect, read, close). Here each socket is added once
to a private epoll set with ``EPOLLET`` and every event bit it can ever need, so it is
never modified; ``close()`` takes it out of the set (the kernel does that for the last
reference to a file), and one ``epoll_wait`` hands over the events of every socket that
became ready, in one system call. The epoll set itself is one reader on the event loop,
so the loop, uvloop or asyncio's own, sees a single file descriptor.

Edge-triggered means an event is reported once, when readiness changes: a stream must
read until a short read (or ``EAGAIN``) and, when it stops reading for a while
(back-pressure), remember that it may have missed an edge (see ``stream.EpollStream``).
"""

from __future__ import annotations

import asyncio
import select
import sys
import weakref
from collections.abc import Callable

AVAILABLE = sys.platform == "linux" and hasattr(select, "epoll")

if AVAILABLE:
    #: "Try reading": data, the peer's FIN, or an error or hang-up (recv tells which).
    READ_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLERR | select.EPOLLHUP
    #: "Try writing", or a pending connect() finished either way.
    WRITE_EVENTS = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
    #: The peer is done (FIN) or the connection failed: nothing follows what is queued.
    END_EVENTS = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
    OUT = select.EPOLLOUT
    _MASK = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
else:  # pragma: no cover - no epoll: streams use the event loop's callbacks
    READ_EVENTS = WRITE_EVENTS = END_EVENTS = OUT = _MASK = 0
# Events taken per epoll_wait; more wait for the loop's next turn.
_BATCH = 1024

Handler = Callable[[int], None]


class Poller:
    """The epoll set of one event loop; streams get events through ``handler(mask)``."""

    __slots__ = ("_epoll", "_handlers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._epoll = select.epoll()
        self._handlers: dict[int, Handler] = {}
        loop.add_reader(self._epoll.fileno(), self._dispatch)

    def register(self, fd: int, handler: Handler) -> None:
        """Watch ``fd`` until it is closed; ``handler`` gets each event mask."""
        self._handlers[fd] = handler
        self._epoll.register(fd, _MASK)

    def forget(self, fd: int) -> None:
        """Stop calling the handler of ``fd``; call right before closing it. No system
        call: the kernel drops a closed socket from the set by itself."""
        self._handlers.pop(fd, None)

    def _dispatch(self) -> None:
        handlers = self._handlers
        for fd, mask in self._epoll.poll(0, _BATCH):
            handler = handlers.get(fd)
            if handler is not None:
                handler(mask)


# A poller lives as long as its loop (its epoll fd closes when it is collected); the
# most recent one is also kept in _last, so the lookup on every connect is one compare.
_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Poller] = weakref.WeakKeyDictionary()
_last: tuple[asyncio.AbstractEventLoop, Poller] | None = None


def poller_for(loop: asyncio.AbstractEventLoop) -> Poller:
    """The loop's poller, made on first use. Only where ``AVAILABLE``."""
    global _last
    last = _last
    if last is not None and last[0] is loop:  # nearly always: one loop per process
        return last[1]
    poller = _POLLERS.get(loop)
    if poller is None:
        poller = _POLLERS[loop] = Poller(loop)
    _last = (loop, poller)
    return poller
