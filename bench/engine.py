"""Engine benchmark: many POP3 monitors on one service, on SQLite and on PostgreSQL.

    .venv/bin/python bench/engine.py                    # 10,000 monitors, 60 s, both cells
    .venv/bin/python bench/engine.py --quick            # 1,000 monitors, 15 s smoke run
    .venv/bin/python bench/engine.py --cells sqlite --monitors 5000 --seconds 30
    .venv/bin/python bench/engine.py --py-spy /tmp/prof # also sample each cell's window
    .venv/bin/python bench/engine.py --report-speed     # also run bench/report_speed.py
    .venv/bin/python bench/engine.py --nice -10 --timeline --seconds 330  # long, per 10 s

Not a test: it prints a table and writes ``bench/results/engine.md`` (``--no-write`` to
skip). Targets (the issue): >= 99.9 % of due checks ran, start lateness p99 <= 250 ms,
peak RSS <= 500 MB, no failed writes and no dropped results; and (bench/report_speed.py)
a 30-day report over 1,000 monitors with a year of rollups in <= 250 ms.

Method
------
- ``bench/pop3_load_server.py`` (asyncio + uvloop, its own process) listens on
  ``--ports`` loopback ports: ``+OK`` greeting, ``QUIT`` answered ``+OK`` and closed. It
  also holds a bound, non-listening port: ``--failing-pct`` of the monitors point there,
  are refused at once, and so exercise the failure path (Warn/Down/Lost transitions,
  failure transcripts stored with the result).
- Every monitor is ``type: pop3, capa: false, timeout: 5`` (greeting + QUIT) with
  ``interval_up = interval_down = interval_lost = --interval``, so every monitor is due
  exactly once per interval whatever its state. Initial due times are spread over the
  first interval (``spread_offset``): 10,000 monitors at 10 s are ~1,000 due checks/s.
- Each cell runs ``Service`` in a fresh child process on uvloop (``pop3watch.aio.run``),
  against a fresh database (SQLite in a temporary directory; a new PostgreSQL database,
  dropped afterwards). CPU and peak RSS are the child's own ``getrusage(RUSAGE_SELF)``
  (all its threads, aiosqlite's included; ``ru_maxrss`` is the peak over its whole life,
  config parsing and start-up included).
- After ``service.ready`` the child waits ``--warmup`` (at least one interval, so every
  monitor has had its first due time), then measures a window of ``--seconds`` on the
  event loop's clock, then sets the stop event and times the graceful shutdown.
- *Due (ideal)*: the due times inside the window of the schedule as planned, each
  monitor first due at start + ``spread_offset(name, interval)`` and then every interval
  (due times are anchored), so window / interval per monitor. *Due (scheduler)* and
  *started* are deltas of ``SchedulerStats.due`` (due entries popped from the heap) and
  ``.started`` (checks that got a slot and began) over the window.
  **Ran** = started / due (scheduler). Due (scheduler) must match due (ideal) within
  0.1 %: else the scheduler itself lost or added due times (a separate verdict).
- Lateness: ``SchedulerStats.lateness_s`` samples recorded inside the window (each is
  start time - due time, measured on the loop clock, which uvloop keeps in ms); p50/p99
  nearest rank, like ``SchedulerStats.percentile``.
- Rows/s: (results + transitions written) / window from ``WriterStats`` deltas, and
  again from the database after the run (rows whose time falls inside the window).
  Status rows (compare-and-swap updates) are not counted. The writer's queue is sampled
  every 0.25 s: its largest value, in seconds of checks, says whether the writer kept up.
- The load server's, PostgreSQL's and the whole machine's CPU over the window are read
  from /proc, so a busy machine is visible next to the figures; so are the event loop
  thread's time on a CPU and time runnable but waiting for one (schedstat), and the
  cyclic GC's pauses. ``--nice -10`` (root) gives the service and the load server
  priority on a shared machine; ``--timeline`` prints 10 s buckets of the window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import platform
import queue
import re
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from _procs import CLK_TCK, fields_cpu_s, kill_group, proc_cpu_s

from pop3watch.percentiles import nearest_rank

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOAD_SERVER = BENCH / "pop3_load_server.py"
REPORT_SPEED = BENCH / "report_speed.py"
RESULTS_MD = BENCH / "results" / "engine.md"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"

TARGET_RAN_PCT = 99.9
TARGET_P99_MS = 250.0
TARGET_RSS_MB = 500.0
TARGET_REPORT_MS = 250.0

STARTUP_TIMEOUT_S = 300.0
SHUTDOWN_GRACE_S = 10.0
BACKLOG_SAMPLE_S = 0.25
#: The writer keeps up while its queue never holds more than this many seconds of checks
#: (it flushes every 0.5 s by default).
TARGET_BACKLOG_S = 2.0
TIMELINE_STEP_S = 10.0
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME text format


# --- /proc readings (parent and child) ---------------------------------------------------


#: PostgreSQL's own background processes (their CPU is part of any cell's database load).
_PG_AUX = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum",
    "logical replication launcher",
    "stats collector",
)


def postgres_cpu(database: str) -> dict[str, float]:
    """utime+stime per live PostgreSQL process that serves ``database`` (its backends) or
    the server as a whole (postmaster, background processes); other databases' backends
    (other people's work) are left out. Keyed by pid."""
    out: dict[str, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text()
            if text[text.index("(") + 1 : text.rindex(")")] != "postgres":
                continue
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            continue
        title = cmdline.decode(errors="replace")
        mine = f" {database} " in title
        server = title.startswith("/") or any(f": {aux}" in title for aux in _PG_AUX)
        if mine or server:
            out[entry.name] = fields_cpu_s(text[text.rindex(")") + 2 :].split())
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> float:
    """CPU used between two ``postgres_cpu`` readings (a process new at the end counts
    whole; one gone by then is lost)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_busy_s() -> float:
    """CPU-seconds all cores spent not idle since boot."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


def self_cpu_s() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


def loop_thread_sched() -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of this process's main
    thread, the one running the event loop (from /proc schedstat; zeros where absent)."""
    try:
        fields = Path(f"/proc/self/task/{os.getpid()}/schedstat").read_text().split()
    except OSError:
        return 0.0, 0.0
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9


def self_rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


# --- the child: one cell -----------------------------------------------------------------


def monitor_ports(count: int, ports: Sequence[int], closed: int, failing_pct: float) -> list[int]:
    """The port of each monitor: spread over ``ports``; exactly floor(count x pct / 100),
    evenly placed, on the refused ``closed`` port."""
    share = failing_pct / 100
    out = []
    for i in range(count):
        failing = share > 0 and math.floor((i + 1) * share) > math.floor(i * share)
        out.append(closed if failing else ports[i % len(ports)])
    return out


def config_data(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``pop3watch.yaml`` of a cell, as the dict ``Pop3WatchConfig`` validates."""
    interval = int(spec["interval"])
    service: dict[str, Any] = {"log_level": "info", "node_name": "bench"}
    if spec["database_url"]:
        service["database_url"] = spec["database_url"]
    if spec.get("concurrency"):
        service["concurrency"] = int(spec["concurrency"])
    ports = monitor_ports(
        int(spec["monitors"]), spec["ports"], int(spec["closed_port"]), float(spec["failing_pct"])
    )
    return {
        "service": service,
        "defaults": {
            "type": "pop3",
            "host": "127.0.0.1",
            "capa": False,
            "timeout": 5,
            "interval_up": interval,
            "interval_down": interval,
            "interval_lost": interval,
        },
        "monitors": [{"name": f"bench-{i:05d}", "port": port} for i, port in enumerate(ports)],
    }


def due_between(first_due: Sequence[float], interval: float, start: float, end: float) -> int:
    """How many due times ``first + k * interval`` (k >= 0) fall in [start, end)."""
    total = 0
    for first in first_due:
        k0 = max(0, math.ceil((start - first) / interval))
        total += max(0, math.ceil((end - first) / interval) - k0)
    return total


class GcPauses:
    """Pauses of the cyclic garbage collector (they stall the event loop), per generation."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gen = int(info.get("generation", 2))
        pause = time.perf_counter() - self._started
        self.count[gen] += 1
        self.total_s[gen] += pause
        self.max_s[gen] = max(self.max_s[gen], pause)

    def reading(self) -> dict[str, list[float]]:
        return {"count": list(self.count), "total_s": list(self.total_s)}


@dataclass
class Snapshot:
    """Counters at one edge of the measured window."""

    loop_t: float
    wall: str  # UTC, in SQLite's DATETIME text format
    cpu_user_s: float
    cpu_sys_s: float
    loop_run_s: float
    loop_wait_s: float
    due: int
    started: int
    finished: int
    failed_jobs: int
    samples: int
    batches: int
    results: int
    transitions: int
    failed_attempts: int
    dropped: int
    server_cpu_s: float | None
    pg_cpu: dict[str, float] | None
    gc: dict[str, list[float]]
    busy_s: float


async def _cell(spec: dict[str, Any]) -> dict[str, Any]:
    from pop3watch.config import Pop3WatchConfig
    from pop3watch.engine.scheduler import spread_offset
    from pop3watch.engine.service import Service

    loop = asyncio.get_running_loop()
    t_begin = time.perf_counter()
    config = Pop3WatchConfig.model_validate(config_data(spec))
    service = Service(config, data_dir=Path(spec["data_dir"]))
    config_s = time.perf_counter() - t_begin
    stop = asyncio.Event()
    t_start = time.perf_counter()
    runner = asyncio.create_task(service.run(stop), name="service")
    ready = asyncio.create_task(service.ready.wait(), name="ready")
    await asyncio.wait(
        {runner, ready}, timeout=float(spec["startup_timeout_s"]), return_when="FIRST_COMPLETED"
    )
    if not ready.done():
        ready.cancel()
        stop.set()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SHUTDOWN_GRACE_S * 2):
                await runner
        raise RuntimeError("the service did not become ready (see the cell's log)")
    startup_s = time.perf_counter() - t_start
    engine, writer = service.engine, service.writer
    assert engine is not None
    assert writer is not None
    sched = engine.scheduler
    interval = float(spec["interval"])
    # New monitors (a fresh database) are first due at the engine's start time plus their
    # spread offset, then every interval (anchored). The start time follows from the
    # earliest entry still in the heap: the (popped + 1)-th smallest offset.
    offsets = sorted(
        spread_offset(m.name, m.intervals.up) for m in engine.monitors.values() if m.enabled
    )
    next_due, popped = sched.schedule.next_due(), sched.stats.due
    if next_due is not None and popped < len(offsets):
        base = next_due - offsets[popped]
    else:  # pragma: no cover - every monitor already ran: estimate
        base = loop.time()
    first_due = [base + offset for offset in offsets]
    rate = len(engine.monitors) / interval
    needed = int(rate * (float(spec["warmup"]) + float(spec["seconds"])) * 1.2) + 1000
    # Keep every lateness sample of the run (the default keeps the last 100,000).
    sched.stats.keep_samples = max(sched.stats.keep_samples, needed)
    server_pid = int(spec["server_pid"])
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    pg_name = spec.get("pg_database")

    def snap() -> Snapshot:
        # Foreign readings first, so reading /proc is not inside our own CPU window.
        try:
            server: float | None = proc_cpu_s(server_pid)
        except (OSError, ValueError):
            server = None
        busy = machine_busy_s()
        pg = postgres_cpu(pg_name) if pg_name else None
        s, w = sched.stats, writer.stats
        user, system = self_cpu_s()
        run, wait = loop_thread_sched()
        return Snapshot(
            loop_t=loop.time(),
            wall=datetime.now(UTC).strftime(_SQLITE_TIME),
            cpu_user_s=user,
            cpu_sys_s=system,
            loop_run_s=run,
            loop_wait_s=wait,
            due=s.due,
            started=s.started,
            finished=s.finished,
            failed_jobs=s.failed_jobs,
            samples=len(s.lateness_s),
            batches=w.batches,
            results=w.results_written,
            transitions=w.transitions_written,
            failed_attempts=w.failed_attempts,
            dropped=w.dropped_results,
            server_cpu_s=server,
            pg_cpu=pg,
            gc=gc_pauses.reading(),
            busy_s=busy,
        )

    backlog: list[int] = []
    ticks: list[tuple[float, int, int]] = []  # (loop time, lateness samples so far, queue)

    async def sample_backlog() -> None:
        while True:
            backlog.append(writer.buffered)
            ticks.append((loop.time(), len(sched.stats.lateness_s), writer.buffered))
            await asyncio.sleep(BACKLOG_SAMPLE_S)

    await asyncio.sleep(float(spec["warmup"]))
    a = snap()
    print(json.dumps({"event": "window", "pid": os.getpid()}), flush=True)
    sampler = asyncio.create_task(sample_backlog())
    await asyncio.sleep(float(spec["seconds"]))
    sampler.cancel()
    b = snap()
    backlog.append(writer.buffered)
    gc_max_ms = [m * 1000 for m in gc_pauses.max_s]  # since ready (warm-up included)
    rss_at_end_mb = self_rss_mb()
    in_flight = sched.in_flight
    ticks.append((b.loop_t, b.samples, writer.buffered))
    timeline = _timeline(ticks, sched.stats.lateness_s, a.loop_t, TIMELINE_STEP_S)
    window_lateness = sorted(sched.stats.lateness_s[a.samples : b.samples])
    all_lateness = sorted(sched.stats.lateness_s)
    t_stop = time.perf_counter()
    stop.set()
    shutdown_error = None
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE_S * 3):
            await runner
    except TimeoutError:
        shutdown_error = "the service did not stop within the bound"
        runner.cancel()
    shutdown_s = time.perf_counter() - t_stop
    ru = resource.getrusage(resource.RUSAGE_SELF)
    states: dict[str, int] = {}
    for monitor in engine.monitors.values():
        states[monitor.status.state.value] = states.get(monitor.status.state.value, 0) + 1
    ws = writer.stats
    return {
        "monitors": len(engine.monitors),
        "enabled": sum(1 for m in engine.monitors.values() if m.enabled),
        "config_s": config_s,
        "startup_s": startup_s,
        "window": {"a": a.__dict__, "b": b.__dict__},
        "window_s": b.loop_t - a.loop_t,
        "due_ideal": due_between(first_due, interval, a.loop_t, b.loop_t),
        "wall_a": a.wall,
        "wall_b": b.wall,
        "lateness_ms": {
            "p50": _ms(nearest_rank(window_lateness, 50)),
            "p90": _ms(nearest_rank(window_lateness, 90)),
            "p99": _ms(nearest_rank(window_lateness, 99)),
            "p999": _ms(nearest_rank(window_lateness, 99.9)),
            "max": _ms(window_lateness[-1] if window_lateness else None),
            "samples": len(window_lateness),
            "run_p99": _ms(nearest_rank(all_lateness, 99)),
            "run_max": _ms(all_lateness[-1] if all_lateness else None),
        },
        "in_flight_at_end": in_flight,
        "timeline": timeline,
        "backlog_max": max(backlog),
        "backlog_end": backlog[-1],
        "rate": rate,
        "gc_max_ms": gc_max_ms,
        "rss_at_end_mb": rss_at_end_mb,
        "peak_rss_mb": ru.ru_maxrss * 1024 / 1e6,
        "total_cpu_s": ru.ru_utime + ru.ru_stime,
        "shutdown_s": shutdown_s,
        "shutdown_error": shutdown_error,
        "unwritten": writer.buffered,
        "states": states,
        "writer_total": {
            "batches": ws.batches,
            "results": ws.results_written,
            "transitions": ws.transitions_written,
            "failed_attempts": ws.failed_attempts,
            "dropped": ws.dropped_results,
            "conflicts": ws.conflicts,
        },
        "scheduler_total": {
            "due": sched.stats.due,
            "started": sched.stats.started,
            "finished": sched.stats.finished,
            "failed_jobs": sched.stats.failed_jobs,
        },
    }


def _timeline(
    ticks: Sequence[tuple[float, int, int]], lateness: Sequence[float], t0: float, step: float
) -> list[dict[str, float]]:
    """Per ``step`` seconds of the window: checks started, lateness p99 and max (ms), and
    the writer's largest queue."""
    out: list[dict[str, float]] = []
    start = 0
    while start < len(ticks) - 1:
        end = start
        while end < len(ticks) - 1 and ticks[end + 1][0] - ticks[start][0] <= step + 1e-6:
            end += 1
        if end == start:
            end += 1
        chunk = sorted(lateness[ticks[start][1] : ticks[end][1]])
        out.append(
            {
                "t": round(ticks[start][0] - t0, 1),
                "started": len(chunk),
                "p99_ms": (nearest_rank(chunk, 99) or 0.0) * 1000,
                "max_ms": (chunk[-1] if chunk else 0.0) * 1000,
                "queue": max(q for _, _, q in ticks[start : end + 1]),
            }
        )
        start = end
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def child_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from pop3watch.aio import run

    report = run(_cell(spec))
    print(json.dumps(report), flush=True)
    return 0


# --- the parent: servers, databases, cells -----------------------------------------------


@dataclass
class LoadServer:
    proc: subprocess.Popen[bytes]
    ports: list[int]
    closed: int
    served: dict[str, int] = field(default_factory=dict)


def niced(argv: list[str], nice: int) -> list[str]:
    """``argv`` run at ``nice`` (negative: ahead of other work on a shared machine)."""
    if nice == 0 or shutil.which("nice") is None:
        return argv
    return ["nice", "-n", str(nice), *argv]


def spawn_niced(
    argv: list[str], nice: int, *, stdin: int, stderr: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session at ``nice``, stdout piped. Also sets the niceness
    of the process's scheduler autogroup: with autogroups on (the default), a new
    session's ``nice`` only ranks it against its own session."""
    proc = subprocess.Popen(
        niced(argv, nice),
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
    )
    if nice != 0:
        with contextlib.suppress(OSError):
            Path(f"/proc/{proc.pid}/autogroup").write_text(str(nice))
    return proc


@contextlib.contextmanager
def load_server(
    ports: int, lifetime_s: float, log_path: Path, nice: int = 0
) -> Iterator[LoadServer]:
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    argv = [sys.executable, str(LOAD_SERVER), "--ports", str(ports), "--closed", "1"]
    proc = spawn_niced(
        [*argv, "--max-seconds", str(int(lifetime_s))],
        nice,
        stdin=subprocess.PIPE,
        stderr=log_file,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        line = _readline(proc, 30.0)
        info = json.loads(line)
        server = LoadServer(proc, list(info["ports"]), int(info["closed"][0]))
        yield server
        proc.stdin.close()  # asks it to stop and print what it served
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            last = _readline(proc, 10.0)
            server.served = json.loads(last).get("served", {})
    finally:
        kill_group(proc)
        log_file.close()
        errors = log_path.read_text(errors="replace").strip()
        if errors:
            print(f"load server stderr:\n{errors[-2000:]}", file=sys.stderr)


def _readline(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """One line of a child's stdout, or raise after ``timeout_s``."""
    stream = proc.stdout
    assert stream is not None
    out: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: out.put(stream.readline()), daemon=True).start()
    try:
        line = out.get(timeout=timeout_s).decode().strip()
    except queue.Empty:
        raise subprocess.TimeoutExpired(proc.args, timeout_s) from None
    if not line:
        raise RuntimeError(f"{proc.args!r} exited without output")
    return line


def _pg_dsn(admin_dsn: str, database: str) -> str:
    return admin_dsn.rsplit("/", 1)[0] + "/" + database


@contextlib.contextmanager
def pg_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database for one cell (its libpq DSN); dropped on the way out."""
    import psycopg
    from psycopg import sql

    name = f"pop3watch_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _pg_dsn(admin_dsn, name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def pg_version(admin_dsn: str) -> str:
    import psycopg

    try:
        with psycopg.connect(admin_dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        return f"unavailable ({type(exc).__name__})"
    return str(row[0]) if row else "?"


def count_rows(kind: str, where: str, wall_a: str, wall_b: str) -> dict[str, int]:
    """Rows in the cell's database: totals, and those whose time is inside the window."""
    queries = {
        "results": "SELECT count(*) FROM results",
        "transitions": "SELECT count(*) FROM transitions",
        "statuses": "SELECT count(*) FROM monitor_status",
        "results_window": "SELECT count(*) FROM results WHERE started_at >= {a} AND "
        "started_at < {b}",
        "transitions_window": "SELECT count(*) FROM transitions WHERE at >= {a} AND at < {b}",
        "failure_transcripts": "SELECT count(*) FROM results WHERE transcript IS NOT NULL",
    }
    out: dict[str, int] = {}
    if kind == "sqlite":
        with contextlib.closing(sqlite3.connect(where)) as conn:
            for key, query in queries.items():
                cursor = conn.execute(
                    query.format(a="?", b="?"), (wall_a, wall_b)[: query.count("{")]
                )
                out[key] = int(cursor.fetchone()[0])
        return out
    import psycopg

    a = datetime.strptime(wall_a, _SQLITE_TIME).replace(tzinfo=UTC)
    b = datetime.strptime(wall_b, _SQLITE_TIME).replace(tzinfo=UTC)
    with psycopg.connect(where) as conn:
        for key, query in queries.items():
            params = (a, b)[: query.count("{")]
            fetched = conn.execute(query.format(a="%s", b="%s"), params).fetchone()
            out[key] = int(fetched[0]) if fetched else 0
    return out


@dataclass
class CellRun:
    name: str
    report: dict[str, Any] = field(default_factory=dict)
    db: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    log_tail: str = ""
    log_counts: dict[str, int] = field(default_factory=dict)
    profile: str | None = None


def run_child(
    cell: CellRun,
    spec: dict[str, Any],
    workdir: Path,
    timeout_s: float,
    py_spy: Path | None,
    nice: int = 0,
) -> None:
    log_path = workdir / f"{cell.name}.log"
    with open(log_path, "wb") as log_file:
        proc = spawn_niced(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
            nice,
            stdin=subprocess.DEVNULL,
            stderr=log_file,
        )
        spy: subprocess.Popen[bytes] | None = None
        lines: queue.Queue[bytes | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        last = ""
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    cell.error = f"the cell did not finish within {timeout_s:.0f} s"
                    break
                try:
                    raw = lines.get(timeout=min(remaining, 5.0))
                except queue.Empty:
                    continue
                if raw is None:
                    break
                text = raw.decode(errors="replace").strip()
                if not text:
                    continue
                last = text
                if py_spy is not None and '"event": "window"' in text:
                    spy = _start_py_spy(proc.pid, py_spy / f"{cell.name}.txt", spec["seconds"])
            if cell.error is None:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                if proc.returncode != 0:
                    cell.error = f"the cell exited with {proc.returncode}"
                else:
                    cell.report = json.loads(last)
        except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            cell.error = f"{type(exc).__name__}: {exc}"
        finally:
            kill_group(proc)
            if spy is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(timeout=30)
                kill_group(spy)
                cell.profile = str(py_spy / f"{cell.name}.txt") if py_spy else None
    log_text = log_path.read_text(errors="replace")
    cell.log_counts = {
        level: len(re.findall(rf"^\S+ \S+ {level} ", log_text, flags=re.MULTILINE))
        for level in ("INFO", "WARNING", "ERROR", "CRITICAL")
    }
    cell.log_tail = "\n".join(line for line in log_text.splitlines() if " INFO " not in line)[
        -3000:
    ]


def _start_py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("py-spy not found: no profile", file=sys.stderr)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run_cell(name: str, args: argparse.Namespace, server: LoadServer, workdir: Path) -> CellRun:
    cell = CellRun(name)
    spec: dict[str, Any] = {
        "monitors": args.monitors,
        "interval": args.interval,
        "warmup": args.warmup,
        "seconds": args.seconds,
        "failing_pct": args.failing_pct,
        "concurrency": args.concurrency,
        "ports": server.ports,
        "closed_port": server.closed,
        "server_pid": server.proc.pid,
        "startup_timeout_s": STARTUP_TIMEOUT_S,
    }
    timeout_s = STARTUP_TIMEOUT_S + args.warmup + args.seconds + 4 * SHUTDOWN_GRACE_S + 60
    print(f"[{name}] {args.monitors:,} monitors, {args.seconds:g} s window ...", flush=True)
    if name == "sqlite":
        data_dir = workdir / "sqlite"
        data_dir.mkdir()
        spec |= {"database_url": None, "data_dir": str(data_dir)}
        run_child(cell, spec, workdir, timeout_s, args.py_spy, args.nice)
        if cell.report:
            cell.db = count_rows(
                "sqlite",
                str(data_dir / "pop3watch.db"),
                cell.report["wall_a"],
                cell.report["wall_b"],
            )
        return cell
    with pg_database(args.pg) as dsn:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        spec |= {
            "database_url": url,
            "data_dir": str(workdir),
            "pg_database": dsn.rsplit("/", 1)[1],
        }
        run_child(cell, spec, workdir, timeout_s, args.py_spy, args.nice)
        if cell.report:
            cell.db = count_rows("postgresql", dsn, cell.report["wall_a"], cell.report["wall_b"])
    return cell


# --- figures, table, markdown ------------------------------------------------------------


@dataclass
class Figures:
    """What the table shows for one cell."""

    rows: list[tuple[str, str]]
    verdicts: list[tuple[str, str, bool]]


def _fmt(value: float | None, spec: str = ",.1f") -> str:
    return "n/a" if value is None else format(value, spec)


def figures(cell: CellRun, args: argparse.Namespace) -> Figures:
    r = cell.report
    a, b = r["window"]["a"], r["window"]["b"]
    w = r["window_s"]
    ideal = r["due_ideal"]
    due = b["due"] - a["due"]
    started = b["started"] - a["started"]
    ran = 100 * started / due if due > 0 else 0.0
    popped = 100 * due / ideal if ideal > 0 else 0.0
    user = b["cpu_user_s"] - a["cpu_user_s"]
    system = b["cpu_sys_s"] - a["cpu_sys_s"]
    cpu = user + system
    loop_run = b["loop_run_s"] - a["loop_run_s"]
    loop_wait = b["loop_wait_s"] - a["loop_wait_s"]
    results = b["results"] - a["results"]
    transitions = b["transitions"] - a["transitions"]
    failed_attempts = r["writer_total"]["failed_attempts"]
    dropped = r["writer_total"]["dropped"]
    lat = r["lateness_ms"]
    db = cell.db
    db_window = db.get("results_window", 0) + db.get("transitions_window", 0)
    stored = db.get("results_window", 0)
    backlog_s = r["backlog_max"] / r["rate"] if r["rate"] else 0.0
    server = (
        b["server_cpu_s"] - a["server_cpu_s"]
        if a["server_cpu_s"] is not None and b["server_cpu_s"] is not None
        else None
    )
    pg = cpu_delta(a["pg_cpu"], b["pg_cpu"]) if a["pg_cpu"] and b["pg_cpu"] else None
    busy = b["busy_s"] - a["busy_s"]
    other = busy - cpu - (server or 0.0) - (pg or 0.0)
    failing = sum(1 for p in monitor_ports(r["monitors"], [0], 1, args.failing_pct) if p == 1)
    states = ", ".join(f"{k} {v:,}" for k, v in sorted(r["states"].items()))
    rows = [
        ("monitors (to refused port)", f"{r['monitors']:,} ({failing:,})"),
        ("window (s)", f"{w:.1f}"),
        ("due, ideal (from the spread schedule)", f"{ideal:,}"),
        ("due, scheduler (popped)", f"{due:,}"),
        ("started", f"{started:,}"),
        ("**ran** = started / due (scheduler)", f"{ran:.3f} %"),
        ("due (scheduler) / due (ideal)", f"{popped:.3f} %"),
        ("checks/s started", f"{started / w:,.1f}"),
        ("lateness p50 / p90 (ms)", f"{_fmt(lat['p50'])} / {_fmt(lat['p90'])}"),
        ("**lateness p99** (ms)", _fmt(lat["p99"])),
        ("lateness p99.9 / max (ms)", f"{_fmt(lat['p999'])} / {_fmt(lat['max'])}"),
        ("lateness p99 / max, whole run (ms)", f"{_fmt(lat['run_p99'])} / {_fmt(lat['run_max'])}"),
        ("CPU in window: user + sys (s)", f"{user:.1f} + {system:.1f} = {cpu:.1f}"),
        ("**CPU** (% of one core)", f"{100 * cpu / w:.1f} %"),
        ("CPU per check (ms)", f"{1000 * cpu / started:.2f}" if started else "n/a"),
        (
            "event loop thread: on CPU / runnable, waiting for a CPU (% of window)",
            f"{100 * loop_run / w:.1f} % / {100 * loop_wait / w:.1f} %",
        ),
        ("**peak RSS** (MB, ru_maxrss)", f"{r['peak_rss_mb']:.0f}"),
        ("RSS at end of window (MB)", f"{r['rss_at_end_mb']:.0f}"),
        (
            "GC collections in window: gen 0 / 1 / 2",
            " / ".join(str(int(b["gc"]["count"][g] - a["gc"]["count"][g])) for g in range(3)),
        ),
        (
            "GC pause in window, total (ms); longest gen-2 pause since ready (ms)",
            f"{1000 * sum(b['gc']['total_s'][g] - a['gc']['total_s'][g] for g in range(3)):,.0f}"
            f"; {r['gc_max_ms'][2]:,.0f}",
        ),
        (
            "check tasks at end of window (running + waiting for a slot)",
            f"{r['in_flight_at_end']:,}",
        ),
        ("**rows/s** written (results + transitions)", f"{(results + transitions) / w:,.1f}"),
        ("rows/s in database (rows timed inside window)", f"{db_window / w:,.1f}"),
        ("  results / transitions written in window", f"{results:,} / {transitions:,}"),
        ("writer batches in window", f"{b['batches'] - a['batches']:,}"),
        (
            "writer queue in window: max / at end (items; s of checks)",
            f"{r['backlog_max']:,} / {r['backlog_end']:,}; {backlog_s:.1f} s",
        ),
        ("writer failed attempts / dropped results (run)", f"{failed_attempts} / {dropped}"),
        (
            "database totals: results / transitions",
            f"{db.get('results', 0):,} / {db.get('transitions', 0):,}",
        ),
        (
            "writer totals: results / transitions",
            f"{r['writer_total']['results']:,} / {r['writer_total']['transitions']:,}",
        ),
        ("failure results with transcript (db)", f"{db.get('failure_transcripts', 0):,}"),
        ("monitor states at end", states),
        ("failed check jobs (run)", f"{r['scheduler_total']['failed_jobs']}"),
        (
            "log lines: warning / error",
            f"{cell.log_counts.get('WARNING', 0)} / {cell.log_counts.get('ERROR', 0)}",
        ),
        ("config parse / start-up (s)", f"{r['config_s']:.1f} / {r['startup_s']:.1f}"),
        (
            "graceful shutdown (s)",
            f"{r['shutdown_s']:.2f}" + (f" ({r['shutdown_error']})" if r["shutdown_error"] else ""),
        ),
        ("unwritten at exit", f"{r['unwritten']:,}"),
        (
            "load server CPU (% of one core)",
            f"{100 * server / w:.1f} %" if server is not None else "n/a",
        ),
        (
            "PostgreSQL CPU, this database + server (% of one core)",
            f"{100 * pg / w:.1f} %" if pg is not None else "n/a",
        ),
        ("other processes on the machine (% of one core)", f"{100 * other / w:.1f} %"),
        ("machine busy (% of all cores)", f"{100 * busy / w / (os.cpu_count() or 1):.1f} %"),
    ]
    verdicts = [
        (f"ran >= {TARGET_RAN_PCT} %", f"{ran:.3f} %", ran >= TARGET_RAN_PCT),
        (
            f"lateness p99 <= {TARGET_P99_MS:g} ms",
            f"{_fmt(lat['p99'])} ms",
            lat["p99"] is not None and lat["p99"] <= TARGET_P99_MS,
        ),
        (
            f"peak RSS <= {TARGET_RSS_MB:g} MB",
            f"{r['peak_rss_mb']:.0f} MB",
            r["peak_rss_mb"] <= TARGET_RSS_MB,
        ),
        (
            "no failed writes, no dropped results",
            f"{failed_attempts} / {dropped}",
            failed_attempts == 0 and dropped == 0,
        ),
        (
            "(bench) scheduler popped the planned due times (within 0.1 %)",
            f"{popped:.3f} %",
            abs(popped - 100) <= 0.1,
        ),
        (
            f"(bench) writer keeps up: queue <= {TARGET_BACKLOG_S:g} s of checks",
            f"{backlog_s:.1f} s",
            backlog_s <= TARGET_BACKLOG_S,
        ),
        (
            "(bench) stored: results in db started in window >= 99 % of started",
            f"{100 * stored / started:.1f} %" if started else "n/a",
            started > 0 and stored >= 0.99 * started,
        ),
        (
            "(bench) nothing left unwritten at shutdown",
            f"{r['unwritten']:,}",
            r["unwritten"] == 0,
        ),
    ]
    return Figures(rows, verdicts)


def render_table(cells: list[CellRun], figs: dict[str, Figures], markdown: bool) -> str:
    names = [c.name for c in cells if c.name in figs]
    if not names:
        return "(no cell produced figures)"
    labels = [label for label, _ in figs[names[0]].rows]
    values = {n: dict(figs[n].rows) for n in names}
    if markdown:
        out = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        out += [f"| {lab} | " + " | ".join(values[n][lab] for n in names) + " |" for lab in labels]
        return "\n".join(out)
    width = max(len(lab.replace("**", "")) for lab in labels) + 2
    colw = max(14, *(len(values[n][lab]) + 2 for n in names for lab in labels))
    out = [f"{'metric':<{width}}" + "".join(f"{n:>{colw}}" for n in names)]
    out.append("-" * (width + colw * len(names)))
    for lab in labels:
        out.append(
            f"{lab.replace('**', ''):<{width}}"
            + "".join(f"{values[n][lab]:>{colw}}" for n in names)
        )
    return "\n".join(out)


def render_verdicts(cells: list[CellRun], figs: dict[str, Figures], markdown: bool) -> str:
    out = ["| cell | target | measured | verdict |", "|---|---|---:|---|"] if markdown else []
    for cell in cells:
        if cell.name not in figs:
            line = (cell.name, "all", "cell failed", False)
            out.append(_verdict_line(*line, markdown=markdown))
            continue
        for target, measured, ok in figs[cell.name].verdicts:
            out.append(_verdict_line(cell.name, target, measured, ok, markdown=markdown))
    return "\n".join(out)


def _verdict_line(cell: str, target: str, measured: str, ok: bool, *, markdown: bool) -> str:
    verdict = "PASS" if ok else "MISS"
    if markdown:
        return f"| {cell} | {target} | {measured} | **{verdict}** |"
    return f"{cell:<11} {target:<66} {measured:>14}  {verdict}"


# --- bench/report_speed.py ---------------------------------------------------------------


@dataclass
class ReportSpeed:
    output: str = ""
    medians_ms: dict[str, float] = field(default_factory=dict)  # dialect -> 30 d report
    error: str | None = None


def run_report_speed(pg: str, timeout_s: float) -> ReportSpeed:
    """Run bench/report_speed.py as it is and pick the 30-day, all-monitor medians."""
    rs = ReportSpeed()
    proc = subprocess.Popen(
        [sys.executable, str(REPORT_SPEED), "--pg", pg],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        rs.error = f"bench/report_speed.py did not finish within {timeout_s:.0f} s"
        return rs
    finally:
        kill_group(proc, grace_s=2.0)
    rs.output = out.decode(errors="replace")
    if proc.returncode != 0:
        rs.error = f"bench/report_speed.py exited with {proc.returncode}"
    dialect = None
    for line in rs.output.splitlines():
        head = re.match(r"^(sqlite|postgresql): ", line)
        if head:
            dialect = head.group(1)
        row = re.match(r"^report 30 d, all monitors\s+([\d.]+)", line)
        if row and dialect:
            rs.medians_ms[dialect] = float(row.group(1))
    return rs


# --- main --------------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, and the src/ files that differ from it (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--name-only", "HEAD", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return head + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")


def src_stamp() -> float:
    """Newest modification time under src/ (to notice code changing during a run)."""
    return max((p.stat().st_mtime for p in (ROOT / "src").rglob("*.py")), default=0.0)


def machine_info(pg: str) -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kib / 1024**2:.1f} GiB"
    versions = []
    for pkg in ("uvloop", "SQLAlchemy", "aiosqlite", "asyncpg", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{pkg} {metadata.version(pkg)}")
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version(pg),
        "packages": ", ".join(versions),
        "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def write_markdown(
    path: Path,
    args: argparse.Namespace,
    cells: list[CellRun],
    figs: dict[str, Figures],
    info: dict[str, str],
    server: LoadServer | None,
    report_speed: ReportSpeed | None,
    started: str,
) -> None:
    lines = [
        "# Engine benchmark (bench/engine.py)",
        "",
        f"Run: `{started}` (`date -u`), command `.venv/bin/python bench/engine.py "
        + " ".join(sys.argv[1:])
        + "`.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}; memory {info['memory']}; {info['os']}",
        f"- Python {info['python']}; SQLite {info['sqlite']}; PostgreSQL {info['postgresql']}",
        f"- {info['packages']}",
        f"- load average before the run (1/5/15 min): {info['load']}",
        f"- code measured: pop3watch at {info['code']}",
        "",
        "## Method",
        "",
        f"- {args.monitors:,} POP3 monitors (greeting + QUIT: `capa: false`, `timeout: 5`), "
        f"`interval_up = interval_down = interval_lost = {args.interval:g}` s, i.e. "
        f"{args.monitors / args.interval:,.0f} due checks/s; {args.failing_pct:g} % of them "
        "point at a bound, non-listening loopback port (refused at once: Warn/Down/Lost "
        "transitions and failure transcripts are written).",
        f"- Servers: `bench/pop3_load_server.py`, one asyncio + uvloop process, {args.ports} "
        "loopback ports (monitors spread round-robin): `+OK` greeting, `QUIT` -> `+OK`, close.",
        "- Each cell: `Service` (settings: concurrency "
        f"{args.concurrency or 'default (200)'}, other service settings default: flush every "
        "0.5 s, log level info) in a fresh child process on uvloop, fresh database (SQLite "
        "file in a temp dir, WAL; a new PostgreSQL database over asyncpg, dropped "
        "afterwards).",
        f"- Measured window: {args.seconds:g} s on the event loop's clock, starting "
        f"{args.warmup:g} s after `service.ready` (every monitor has had its first due time).",
        "- **ran** = checks started in the window / checks due in the window by the "
        "scheduler (`SchedulerStats.started` delta: got a concurrency slot and began; "
        "`SchedulerStats.due` delta: due entries popped from the heap). Cross-check: due by "
        "the scheduler / due ideal, where due ideal = the due times inside the window of "
        "the schedule as planned (each monitor first due at start + "
        "`spread_offset(name, interval)`, then every interval, anchored: "
        "`next = due + interval`; i.e. window / interval per monitor); it must be within "
        "0.1 % of 100 %.",
        "- **lateness**: `SchedulerStats.lateness_s` samples recorded in the window "
        "(start - due on the loop clock; uvloop's clock has 1 ms resolution), nearest rank.",
        "- **CPU**: the child's `getrusage(RUSAGE_SELF)` user + sys over the window (all "
        "threads, aiosqlite's too), as % of one core. **Peak RSS**: `ru_maxrss` of the "
        "child at exit (whole life: config parsing, start-up and shutdown included).",
        "- **rows/s**: results + transitions written per second (`WriterStats` deltas), "
        "cross-checked against the rows in the database whose time falls in the window; "
        "status rows (compare-and-swap updates) are not counted.",
        "- Load server, PostgreSQL and other CPU from /proc over the same window: the "
        "machine has 2 cores shared by the service, the load server and PostgreSQL (and, "
        "on this shared machine, whatever else runs: see *other processes*)."
        + (
            f" The service and the load server ran at nice {args.nice} (process and "
            "scheduler autogroup)."
            if args.nice
            else ""
        ),
        "",
        "## Results",
        "",
        render_table(cells, figs, markdown=True),
        "",
        "## Targets",
        "",
        render_verdicts(cells, figs, markdown=True),
    ]
    if report_speed is not None:
        lines += ["", "## 30-day report over 1,000 monitors with a year of rollups", ""]
        if report_speed.medians_ms:
            lines += [
                "| database | 30-day report, median (ms) | target | verdict |",
                "|---|---:|---:|---|",
            ]
            for dialect, ms in report_speed.medians_ms.items():
                ok = "PASS" if ms <= TARGET_REPORT_MS else "MISS"
                lines.append(f"| {dialect} | {ms:.1f} | <= {TARGET_REPORT_MS:g} | **{ok}** |")
        if report_speed.error:
            lines += ["", f"bench/report_speed.py: {report_speed.error}"]
        lines += [
            "",
            "Output of `bench/report_speed.py` (run by `--report-speed`):",
            "",
            "```",
            report_speed.output.strip(),
            "```",
        ]
    else:
        lines += [
            "",
            "The 30-day report target (<= 250 ms over 1,000 monitors with a year of rollups) "
            "is measured by `bench/report_speed.py` (`bench/engine.py --report-speed` runs it "
            "and adds its figures here).",
        ]
    if server is not None and server.served:
        lines += ["", f"Load server totals over all cells: {server.served}."]
    for cell in cells:
        if cell.error:
            lines += ["", f"**{cell.name} failed**: {cell.error}", "", "```", cell.log_tail, "```"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=None, help="default 10,000")
    parser.add_argument("--seconds", type=float, default=None, help="window; default 60")
    parser.add_argument("--quick", action="store_true", help="1,000 monitors for 15 s")
    parser.add_argument("--interval", type=int, default=10, help="check interval (s)")
    parser.add_argument("--warmup", type=float, default=None, help="default: one interval")
    parser.add_argument(
        "--failing-pct", type=float, default=2.0, help="%% of monitors pointed at a refused port"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="service default: 200")
    parser.add_argument("--ports", type=int, default=8, help="load server ports")
    parser.add_argument("--cells", default="sqlite,postgresql")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the service and the load server at this niceness, process and scheduler "
        "autogroup (e.g. -10 on a shared machine; needs root)",
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="admin DSN (a database is created)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample each cell's window with py-spy (folded stacks)",
    )
    parser.add_argument(
        "--report-speed",
        action="store_true",
        help="also run bench/report_speed.py and include its figures",
    )
    parser.add_argument(
        "--keep-workdir", action="store_true", help="keep logs and the SQLite database"
    )
    parser.add_argument(
        "--timeline", action="store_true", help="also print each cell's 10 s timeline"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.monitors is None:
        args.monitors = 1000 if args.quick else 10_000
    if args.seconds is None:
        args.seconds = 15.0 if args.quick else 60.0
    if args.warmup is None:
        args.warmup = float(args.interval)
    if args.warmup < args.interval:
        parser.error("--warmup must be at least one --interval")
    if not 5 <= args.interval <= 86_400:
        parser.error("--interval must be 5 s (the check timeout) to 86,400 s")
    args.cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = set(args.cells) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown cells: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())
    info = machine_info(args.pg)
    info["code"] = code_version()
    stamp = src_stamp()
    cells: list[CellRun] = []
    server: LoadServer | None = None
    budget = len(args.cells) * (STARTUP_TIMEOUT_S + args.warmup + args.seconds + 200)
    workdir = Path(tempfile.mkdtemp(prefix="p3w-engine-"))
    try:
        log = workdir / "load_server.log"
        with load_server(args.ports, budget, log, args.nice) as server:
            for name in args.cells:
                cells.append(run_cell(name, args, server, workdir))
    finally:
        if args.keep_workdir:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if src_stamp() != stamp:
        info["code"] += (
            " - WARNING: files under src/ changed while the benchmark ran; the cells may "
            f"have measured different code (now {code_version()})"
        )
    figs = {c.name: figures(c, args) for c in cells if c.report and not c.error}
    print(f"\ncode measured: {info['code']}")
    print()
    print(render_table(cells, figs, markdown=False))
    print()
    print(render_verdicts(cells, figs, markdown=False))
    for cell in cells:
        if args.timeline and cell.report:
            print(f"\n{cell.name} timeline (s into window: started, p99 / max ms, queue)")
            for row in cell.report["timeline"]:
                print(
                    f"  {row['t']:>6.0f}  {int(row['started']):>7,}  {row['p99_ms']:>9.1f} / "
                    f"{row['max_ms']:>9.1f}  {int(row['queue']):>8,}"
                )
        if cell.error:
            print(f"\n{cell.name} FAILED: {cell.error}\n{cell.log_tail}")
        if cell.profile:
            print(f"{cell.name}: py-spy samples in {cell.profile}")
    report_speed = None
    if args.report_speed:
        print("\nrunning bench/report_speed.py ...", flush=True)
        report_speed = run_report_speed(args.pg, timeout_s=3600)
        print(report_speed.output)
        for dialect, ms in report_speed.medians_ms.items():
            verdict = "PASS" if ms <= TARGET_REPORT_MS else "MISS"
            print(f"{dialect:<11} {'30-day report <= 250 ms':<66} {ms:>11.1f} ms  {verdict}")
    if not args.no_write:
        write_markdown(args.out, args, cells, figs, info, server, report_speed, started)
        shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
        print(f"\nwrote {shown}")
    ok = all(c.report and not c.error for c in cells) and all(
        v[2] for f in figs.values() for v in f.verdicts
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2]))
    sys.exit(main())
