"""The long-running service: wires config, storage, writer, engine and housekeeping.

Job: start (connect the database, sync the monitors the file declares, restore their
state and schedule), run until told to stop, then shut down gracefully: no new checks,
in-flight ones finish or are cut after ``shutdown_grace_s``, buffered results flushed.
Rule: wiring only; every decision lives in the modules it wires.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from pop3watch.config import Pop3WatchConfig
from pop3watch.engine.engine import Engine, ProbeRunner
from pop3watch.engine.runtime import MonitorRuntime
from pop3watch.engine.scheduler import LoopClock
from pop3watch.engine.writer import ResultWriter
from pop3watch.errors import StorageError
from pop3watch.probe.registry import run_probe
from pop3watch.storage import MonitorRecord, Storage

log = logging.getLogger(__name__)
T = TypeVar("T")

ROLLUP_EVERY_S = 300.0
PURGE_EVERY_S = 3600.0
CONNECT_RETRY_MAX_S = 30.0
GC_GEN0_THRESHOLD = 10_000


def monitor_records(config: Pop3WatchConfig) -> list[MonitorRecord]:
    """What the database stores of each declared monitor (secret references only)."""
    return [MonitorRecord(m.name, m.type, m.enabled, m.record_config()) for m in config.monitors]


async def _unless_stopped(stop: asyncio.Event, attempt: Awaitable[T]) -> T | None:
    """``attempt``, cancelled if ``stop`` is set first (None then): opening a database
    can wait a minute for a lock or a server, and a Ctrl-C must not wait with it."""
    work = asyncio.ensure_future(attempt)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        abandoned = not work.done()
        if abandoned:
            work.cancel()
    if abandoned:
        with suppress(asyncio.CancelledError, StorageError):
            await work  # let it clean up (an engine half opened is disposed)
        return None
    return work.result()


class Service:
    def __init__(
        self,
        config: Pop3WatchConfig,
        *,
        data_dir: Path | None = None,
        probe: ProbeRunner = run_probe,
    ) -> None:
        self.config = config
        self.settings = config.service
        self.database_url = self.settings.effective_database_url(data_dir)
        self.display_url = self.settings.display_database_url(data_dir)
        self._probe = probe
        self.engine: Engine | None = None
        self.writer: ResultWriter | None = None
        self.ready = asyncio.Event()
        self.failed = False

    async def _retrying(
        self, stop: asyncio.Event, what: str, attempt: Callable[[], Awaitable[T]]
    ) -> T | None:
        """``attempt()`` until it stops raising StorageError (backing off to 30 s), or
        None once ``stop`` is set: the database may come up after the service."""
        delay = 1.0
        while not stop.is_set():
            try:
                return await _unless_stopped(stop, attempt())
            except StorageError as exc:
                if exc.permanent:
                    log.error("%s: %s; this needs fixing by hand, stopping", what, exc.message)
                    self.failed = True
                    return None
                log.error("%s: %s; retrying in %.0f s", what, exc.message, delay)
            with suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(delay * 2, CONNECT_RETRY_MAX_S)
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down gracefully."""
        storage = await self._retrying(
            stop,
            f"database {self.display_url} unavailable",
            lambda: Storage.connect(self.database_url),
        )
        if storage is None:
            return
        try:
            await self._run(storage, stop)
        finally:
            await storage.close()

    async def _setup(self, storage: Storage) -> Engine:
        ids = await storage.sync_monitors(monitor_records(self.config))
        statuses = await storage.load_statuses()
        runtimes = [MonitorRuntime.from_config(m, ids) for m in self.config.monitors]
        self.writer = ResultWriter(
            storage,
            flush_interval_s=self.settings.flush_interval_s,
            buffer_limit=self.settings.buffer_limit,
        )
        engine = Engine(
            runtimes,
            writer=self.writer,
            clock=LoopClock(),
            concurrency=self.settings.concurrency,
            node=self.settings.effective_node_name,
            probe=self._probe,
        )
        engine.start(statuses)
        # Everything built so far lives as long as the service: take it out of the
        # cyclic GC's view, so collections stay short on a busy loop (no long pauses).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        return engine

    async def _run(self, storage: Storage, stop: asyncio.Event) -> None:
        engine = await self._retrying(
            stop, "cannot load monitors from the database", lambda: self._setup(storage)
        )
        if engine is None:
            return
        assert self.writer is not None
        self.engine = engine
        log.info(
            "pop3watch running: %d monitors, database %s, concurrency %d",
            len(engine.monitors),
            self.display_url,
            self.settings.concurrency,
        )
        tasks = [
            asyncio.create_task(engine.scheduler.run(), name="scheduler"),
            asyncio.create_task(self.writer.run(), name="writer"),
            asyncio.create_task(self._housekeeping(storage), name="housekeeping"),
        ]
        self.ready.set()
        stopped = asyncio.create_task(stop.wait(), name="stop")
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopped}:
            # A core task ended on its own: that is a bug; stop rather than run headless.
            log.critical(
                "%s stopped unexpectedly: %r; shutting down", task.get_name(), task.exception()
            )
            self.failed = True
        stopped.cancel()
        log.info("stopping: no new checks; %d in flight", engine.scheduler.in_flight)
        cancelled = await engine.scheduler.drain(self.settings.shutdown_grace_s)
        if cancelled:
            log.warning("%d checks were cut at the shutdown bound", cancelled)
        unwritten = await self.writer.close(self.settings.shutdown_grace_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopped (%d items could not be written)", unwritten)

    async def _housekeeping(self, storage: Storage) -> None:
        """Roll results up into hourly/daily figures and purge raw results past retention."""
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            now = datetime.now(UTC)
            try:
                written = await storage.rollup(now)
                if written:
                    log.debug("rollups: %d rows", written)
                if loop.time() - last_purge >= PURGE_EVERY_S:
                    purged = await storage.purge_results(
                        now - timedelta(days=self.settings.retention_days)
                    )
                    last_purge = loop.time()
                    if purged:
                        log.info(
                            "purged %d raw results older than %d days",
                            purged,
                            self.settings.retention_days,
                        )
            except StorageError as exc:
                log.warning("housekeeping skipped: %s", exc.message)
            await asyncio.sleep(ROLLUP_EVERY_S)
