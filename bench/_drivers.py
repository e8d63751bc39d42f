"""Load drivers for bench/check_throughput.py, each run in its own process.

``python bench/_drivers.py '<json spec>'`` runs one cell and prints one JSON object
(the measurements) as the last line of stdout. Every driver keeps ``concurrency``
checks in flight without pause, lets them run for ``warmup_s``, then measures a window
of ``duration_s``: completions (ok and failed) inside the window, wall time, and the
client's CPU time in the same window. After the window no new check starts; the ones
in flight are drained (bounded) and not counted.

- ``pop3watch``: ``run_probe('pop3', settings)`` (what the service runs for a check) in this
  process on uvloop; client CPU is this process's
  ``getrusage(RUSAGE_SELF)`` (user+sys). Optionally also samples RTT against the
  delayed-greeting server every ``rtt_interval_s`` from the same event loop (or *only*
  that, with ``concurrency = 0``).
- ``pop3watch_full``: the same, with no chain remembered between checks
  (``VERIFIED_CHAINS.enabled = False``): every handshake verifies the chain's signatures.
- ``check_pop``: a posix_spawn/wait4 driver keeping ``concurrency`` plugin processes
  running; client CPU is the sum of the reaped plugins' rusage (from wait4, cross-checked
  against ``RUSAGE_CHILDREN``). The driver's own CPU (spawning, reaping) is reported
  separately and not counted.
- ``blackbox``: ``concurrency`` keep-alive HTTP/1.1 connections to the exporter's
  ``/probe``; client CPU is the exporter process's utime+stime from /proc (the
  exporter is the POP3 client). The HTTP load generator's CPU is reported separately.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from _procs import CLK_TCK, proc_cpu_s, stat_fields

DRAIN_TIMEOUT_S = 15.0


# --- /proc helpers -----------------------------------------------------------------------


def session_cpu_s(sid: int) -> float:
    """CPU of every process in session `sid` (live ones, plus children they reaped)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            f = stat_fields(entry.name)
        except (OSError, ValueError):
            continue
        if int(f[3]) == sid:
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK_TCK


def machine_cpu_s() -> tuple[float, float]:
    """(busy, steal) CPU-seconds of all cores since boot; busy is user+nice+system+irq+
    softirq (idle, iowait and the hypervisor's steal excluded)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    return busy / CLK_TCK, values[7] / CLK_TCK


def self_cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Window:
    """Snapshots at the start and end of the measured window."""

    spec: dict[str, Any]
    marks: dict[str, float] = field(default_factory=dict)

    def _outside(self) -> dict[str, float]:
        busy, steal = machine_cpu_s()
        out = {"busy": busy, "steal": steal}
        if self.spec.get("server_sid"):
            out["server"] = session_cpu_s(int(self.spec["server_sid"]))
        return out

    def start(self, client: float) -> None:
        # Foreign readings first, so reading /proc is not inside our own CPU window.
        for key, value in self._outside().items():
            self.marks[f"{key}0"] = value
        self.marks["client0"] = client
        self.marks["t0"] = time.perf_counter()

    def end(self, client: float) -> None:
        self.marks["t1"] = time.perf_counter()
        self.marks["client1"] = client
        for key, value in self._outside().items():
            self.marks[f"{key}1"] = value

    def delta(self, key: str) -> float | None:
        if f"{key}0" not in self.marks:
            return None
        return self.marks[f"{key}1"] - self.marks[f"{key}0"]

    def report(self) -> dict[str, Any]:
        return {
            "concurrency": int(self.spec["concurrency"]),
            "wall_s": self.delta("t"),
            "client_cpu_s": self.delta("client"),
            "server_cpu_s": self.delta("server"),
            "machine_busy_s": self.delta("busy"),
            "machine_steal_s": self.delta("steal"),
        }


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> tuple[int, int, Counter[str]]:
        return self.ok, self.failed, Counter(self.errors)


def _tally_delta(
    a: tuple[int, int, Counter[str]], b: tuple[int, int, Counter[str]]
) -> dict[str, Any]:
    errors = b[2] - a[2]
    return {"ok": b[0] - a[0], "failed": b[1] - a[1], "errors": dict(errors)}


# --- pop3watch ---------------------------------------------------------------------------


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None, "min": None}
    ordered = sorted(values)
    if len(ordered) == 1:
        p50 = p99 = ordered[0]
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p50, p99 = cuts[49], cuts[98]
    return {"p50": p50, "p99": p99, "max": ordered[-1], "min": ordered[0]}


async def _pop3watch_cell(spec: dict[str, Any]) -> dict[str, Any]:
    from pop3watch.probe import CheckSettings, run_probe
    from pop3watch.probe.verified_chains import VERIFIED_CHAINS

    # "pop3watch_full": the reference without remembered chains, every handshake
    # verifying the chain's signatures as the first check of a server does.
    VERIFIED_CHAINS.enabled = spec["tool"] != "pop3watch_full"
    tls = bool(spec["tls"])
    settings = CheckSettings(
        host=spec["host"],
        port=spec["port"],
        tls="tls" if tls else "none",
        ca_file=spec["ca_file"] if tls else None,
        server_name=spec["server_name"] if tls else None,
        capa=False,
        timeout=10,
    )
    tally = Tally()
    stop = asyncio.Event()

    rate = float(spec.get("rate_per_s") or 0.0)
    next_start = 0.0

    async def pace() -> None:
        """With a rate, starts are spread evenly (at most `rate` per second in total)."""
        nonlocal next_start
        loop = asyncio.get_running_loop()
        next_start = max(next_start + 1.0 / rate, loop.time())
        delay = next_start - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def worker() -> None:
        while not stop.is_set():
            if rate:
                await pace()
            result = await run_probe("pop3", settings)
            if result.status == "up":
                tally.ok += 1
            else:
                tally.failed += 1
                tally.errors[result.error.code if result.error else str(result.status)] += 1

    samples: list[dict[str, Any]] = []
    sampling = asyncio.Event()
    sampler_tasks: set[asyncio.Task[None]] = set()

    async def sample_one(delayed: CheckSettings) -> None:
        result = await run_probe("pop3", delayed)
        server_us = None
        if result.greeting and "delay_us=" in result.greeting:
            server_us = int(result.greeting.split("delay_us=", 1)[1].split()[0])
        samples.append(
            {
                "status": str(result.status),
                "rtt_ms": result.rtt_ms,
                "server_delay_ms": server_us / 1000 if server_us is not None else None,
                "error": result.error.code if result.error else None,
            }
        )

    async def sampler() -> None:
        delayed = CheckSettings(
            host=spec["host"], port=spec["rtt_port"], tls="none", capa=False, timeout=10
        )
        loop = asyncio.get_running_loop()
        interval = float(spec["rtt_interval_s"])
        await sampling.wait()
        due = loop.time()
        while sampling.is_set():
            task = asyncio.create_task(sample_one(delayed))
            sampler_tasks.add(task)
            task.add_done_callback(sampler_tasks.discard)
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))

    lags: list[float] = []

    async def lag_monitor() -> None:
        """How late the event loop runs a 10 ms sleep: the queueing and scheduling delay
        any timestamp taken after an await also suffers (1 ms timer granularity)."""
        await sampling.wait()
        while sampling.is_set():
            due = time.perf_counter() + 0.010
            await asyncio.sleep(0.010)
            lags.append((time.perf_counter() - due) * 1000)

    workers = [asyncio.create_task(worker()) for _ in range(int(spec["concurrency"]))]
    sampler_task = asyncio.create_task(sampler()) if spec.get("rtt_port") else None
    lag_task = asyncio.create_task(lag_monitor()) if spec.get("rtt_port") else None
    window = Window(spec)
    await asyncio.sleep(float(spec["warmup_s"]))
    window.start(self_cpu_s())
    before = tally.snapshot()
    sampling.set()
    await asyncio.sleep(float(spec["duration_s"]))
    sampling.clear()
    after = tally.snapshot()
    window.end(self_cpu_s())
    stop.set()
    extra = [t for t in (sampler_task, lag_task) if t is not None]
    pending = [*workers, *sampler_tasks, *extra]
    if pending:
        _done, still = await asyncio.wait(pending, timeout=DRAIN_TIMEOUT_S)
        for task in still:
            task.cancel()
    out: dict[str, Any] = {**window.report(), **_tally_delta(before, after)}
    if sampler_task is not None:
        rtts = [s for s in samples if s["rtt_ms"] is not None and s["status"] == "up"]
        nominal = float(spec["rtt_delay_ms"])
        err = [s["rtt_ms"] - nominal for s in rtts]
        vs_server = [
            s["rtt_ms"] - s["server_delay_ms"] for s in rtts if s["server_delay_ms"] is not None
        ]
        server_dev = [
            s["server_delay_ms"] - nominal for s in rtts if s["server_delay_ms"] is not None
        ]
        out["rtt"] = {
            "samples": len(samples),
            "failed": len(samples) - len(rtts),
            "failed_errors": dict(Counter(str(s["error"]) for s in samples if s not in rtts)),
            "error_ms": _quantiles(err),
            "abs_error_ms": _quantiles([abs(e) for e in err]),
            "error_vs_server_ms": _quantiles(vs_server),
            "server_delay_dev_ms": _quantiles(server_dev),
            "loop_lag_ms": _quantiles(lags),
        }
    return out


def run_pop3watch(spec: dict[str, Any]) -> dict[str, Any]:
    from pop3watch.aio import run

    return run(_pop3watch_cell(spec))


# --- check_pop / check_spop ----------------------------------------------------------


def run_check_pop(spec: dict[str, Any]) -> dict[str, Any]:
    argv = [spec["plugin"], "-H", spec["host"], "-p", str(spec["port"]), "-t", "10"]
    argv += list(spec.get("plugin_args", []))
    devnull = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
    ]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
    concurrency = int(spec["concurrency"])
    tally = Tally()
    plugin_cpu = 0.0
    running: set[int] = set()

    def spawn() -> None:
        running.add(os.posix_spawn(argv[0], argv, env, file_actions=actions))

    window = Window(spec)
    t_start = time.perf_counter() + float(spec["warmup_s"])
    t_end = t_start + float(spec["duration_s"])
    before: tuple[int, int, Counter[str]] | None = None
    after: tuple[int, int, Counter[str]] | None = None
    children0 = driver0 = children1 = driver1 = 0.0
    drain_deadline = float("inf")
    try:
        for _ in range(concurrency):
            spawn()
        while running:
            pid, status, ru = os.wait4(-1, 0)
            now = time.perf_counter()
            running.discard(pid)
            if before is None and now >= t_start:
                children0, driver0 = self_cpu_s(resource.RUSAGE_CHILDREN), self_cpu_s()
                window.start(plugin_cpu)
                before = tally.snapshot()
            if before is not None and now < t_end:
                plugin_cpu += ru.ru_utime + ru.ru_stime
                code = os.waitstatus_to_exitcode(status)
                if code == 0:
                    tally.ok += 1
                else:
                    tally.failed += 1
                    tally.errors[f"exit {code}"] += 1
            if now < t_end:
                spawn()
            elif after is None:
                after = tally.snapshot()
                window.end(plugin_cpu)
                children1, driver1 = self_cpu_s(resource.RUSAGE_CHILDREN), self_cpu_s()
                drain_deadline = now + DRAIN_TIMEOUT_S
            elif now > drain_deadline:
                break
    finally:
        for pid in running:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
    assert before is not None
    assert after is not None
    out: dict[str, Any] = {**window.report(), **_tally_delta(before, after)}
    out["children_rusage_cpu_s"] = children1 - children0
    out["driver_cpu_s"] = driver1 - driver0
    return out


# --- blackbox_exporter -------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return status, await reader.read()


async def _blackbox_cell(spec: dict[str, Any]) -> dict[str, Any]:
    exporter_pid = int(spec["exporter_pid"])
    request = (
        f"GET /probe?module={spec['module']}&target={spec['host']}:{spec['port']} HTTP/1.1\r\n"
        f"Host: {spec['exporter']}\r\nUser-Agent: pop3watch-bench\r\n\r\n"
    ).encode()
    ex_host, ex_port = spec["exporter"].rsplit(":", 1)
    tally = Tally()
    stop = asyncio.Event()

    async def worker() -> None:
        writer: asyncio.StreamWriter | None = None
        while not stop.is_set():
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(ex_host, int(ex_port))
                writer.write(request)
                status, body = await asyncio.wait_for(_read_response(reader), 30)
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
                tally.failed += 1
                tally.errors[f"http {type(exc).__name__}"] += 1
                if writer is not None:
                    writer.close()
                writer = None
                continue
            if status == 200 and b"\nprobe_success 1\n" in b"\n" + body:
                tally.ok += 1
            else:
                tally.failed += 1
                tally.errors["probe_success 0" if status == 200 else f"http {status}"] += 1
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(int(spec["concurrency"]))]
    window = Window(spec)
    await asyncio.sleep(float(spec["warmup_s"]))
    loadgen0 = self_cpu_s()
    window.start(proc_cpu_s(exporter_pid))
    before = tally.snapshot()
    await asyncio.sleep(float(spec["duration_s"]))
    after = tally.snapshot()
    window.end(proc_cpu_s(exporter_pid))
    loadgen1 = self_cpu_s()
    stop.set()
    _done, still = await asyncio.wait(workers, timeout=DRAIN_TIMEOUT_S)
    for task in still:
        task.cancel()
    out: dict[str, Any] = {**window.report(), **_tally_delta(before, after)}
    out["loadgen_cpu_s"] = loadgen1 - loadgen0
    return out


def run_blackbox(spec: dict[str, Any]) -> dict[str, Any]:
    import uvloop

    result: dict[str, Any] = uvloop.run(_blackbox_cell(spec))
    return result


DRIVERS = {
    "pop3watch": run_pop3watch,
    "pop3watch_full": run_pop3watch,
    "check_pop": run_check_pop,
    "blackbox": run_blackbox,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = DRIVERS[spec["tool"]](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
