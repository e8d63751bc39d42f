"""Throughput and client CPU cost of a greeting+QUIT POP3 check, pop3watch vs its peers.

Against a real Dovecot on loopback, plain and implicit TLS, at equal concurrency:
completed checks per second and per client CPU-second for

- pop3watch (``run_probe('pop3', ...)``, the service's code path, in-process on uvloop,
  ``capa=False``: greeting + QUIT),
- check_pop / check_spop (monitoring-plugins) run by a parallel spawn/reap driver,
- prometheus-blackbox-exporter's ``/probe`` (tcp prober, expect ``+OK``, send QUIT,
  expect ``+OK``) driven by a concurrent keep-alive HTTP/1.1 client;

plus the accuracy of pop3watch's reported rtt against a server that delays its
greeting by exactly 200 ms, idle and while the pop3watch load runs in the same process.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python bench/check_throughput.py            # full: 10 s cells, 3 rounds
    .venv/bin/python bench/check_throughput.py --quick    # 2 s smoke run, 1 round

Prints the tables and writes bench/RESULTS.md (``--no-write`` to skip). Every cell
runs in its own process (see bench/_drivers.py); Dovecot, the exporter, the delayed
server and all drivers are stopped on exit, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _procs import kill_group

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DRIVERS = BENCH / "_drivers.py"
DELAYED_SERVER = BENCH / "_delayed_server.py"
RESULTS = BENCH / "RESULTS.md"
PLUGINS = Path("/usr/lib/nagios/plugins")
EXPORTER = Path("/usr/bin/prometheus-blackbox-exporter")
KEEP_MARKER = "<!-- Everything below this line is kept when the benchmark rewrites the file. -->"

TOOLS = ("pop3watch", "pop3watch_full", "check_pop", "blackbox")
# Tools measured in TLS mode only: a plain check verifies no certificate chain.
TLS_ONLY_TOOLS = frozenset({"pop3watch_full"})
CERT_KEY_LABELS = {"ecdsa": "ECDSA P-256 (leaf and CA)", "rsa": "RSA 2048 (leaf and CA)"}
MODES = ("plain", "tls")
TOOL_LABEL = {
    ("pop3watch", "plain"): "pop3watch (in-process, uvloop)",
    ("pop3watch", "tls"): "pop3watch (in-process, uvloop)",
    ("pop3watch_full", "tls"): "pop3watch, every chain verified in full (reference)",
    ("check_pop", "plain"): "check_pop (spawn per check)",
    ("check_pop", "tls"): "check_spop (spawn per check)",
    ("blackbox", "plain"): "blackbox_exporter /probe",
    ("blackbox", "tls"): "blackbox_exporter /probe",
}
# (peer, mode, minimum ratio of pop3watch checks per client CPU-second to the peer's)
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("blackbox", "plain", 3.0),
    ("blackbox", "tls", 1.5),
    ("check_pop", "plain", 10.0),
    ("check_pop", "tls", 10.0),
)
RTT_TARGET_MS = 2.0
RTT_DELAY_MS = 200.0
# The interpreter scripts/debian-root.sh installs inside a client root.
CLIENT_ROOT_PYTHON = "/opt/pop3watch-venv/bin/python"


@dataclass
class Cell:
    """Pooled measurements of one tool and mode over all rounds."""

    tool: str
    mode: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def total(self, key: str) -> float:
        return sum(float(r.get(key) or 0.0) for r in self.runs)

    @property
    def ok(self) -> int:
        return int(self.total("ok"))

    @property
    def failed(self) -> int:
        return int(self.total("failed"))

    @property
    def rate(self) -> float | None:
        wall = self.total("wall_s")
        return self.ok / wall if wall > 0 else None

    @property
    def per_cpu(self) -> float | None:
        cpu = self.total("client_cpu_s")
        return self.ok / cpu if cpu > 0 else None

    def per_cpu_by_round(self) -> dict[int, float]:
        """Checks per client CPU-second, by round number (a failed round is missing)."""
        return {
            int(r["round"]): r["ok"] / r["client_cpu_s"]
            for r in self.runs
            if (r.get("client_cpu_s") or 0) > 0
        }

    def per_cpu_range(self) -> tuple[float, float] | None:
        values = list(self.per_cpu_by_round().values())
        return (min(values), max(values)) if values else None

    @property
    def harness_cpu(self) -> float:
        return self.total("driver_cpu_s") + self.total("loadgen_cpu_s")

    @property
    def pre_load(self) -> float:
        return max(float(r.get("pre_load_cores") or 0.0) for r in self.runs)

    @property
    def other_cpu(self) -> float:
        return (
            self.total("machine_busy_s")
            - self.total("client_cpu_s")
            - self.total("server_cpu_s")
            - self.harness_cpu
        )

    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for run in self.runs:
            for code, n in run.get("errors", {}).items():
                out[code] = out.get(code, 0) + int(n)
        return out


@dataclass
class Env:
    """Everything the cells run against."""

    workdir: Path
    host: str = "127.0.0.1"
    pop3_port: int = 0
    pop3s_port: int = 0
    ca_file: str = ""
    server_name: str = "localhost"
    dovecot_pid: int = 0
    login_processes: int = 0
    dovecot_log: Path | None = None
    exporter: str | None = None
    exporter_pid: int | None = None
    rtt_port: int = 0
    rtt_priority: str = "unknown"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    absent: dict[str, str] = field(default_factory=dict)
    # --client-root: the clients (pop3watch's interpreter, check_pop, blackbox_exporter)
    # come from another Debian release's root file system, entered with chroot(8); Dovecot,
    # the delayed server and this harness stay on the machine's own.
    client_root: Path | None = None
    client_python: str = sys.executable

    def client_argv(self, argv: list[str]) -> list[str]:
        """A client's command line: as given, or run inside the client root."""
        return argv if self.client_root is None else ["chroot", str(self.client_root), *argv]

    def client_file(self, path: Path) -> Path:
        """Where the harness finds a file the clients see at ``path``."""
        return path if self.client_root is None else self.client_root / path.relative_to("/")


# --- process handling --------------------------------------------------------------------


def wait_quiet(max_wait_s: float, threshold_cores: float) -> float:
    """Wait (at most `max_wait_s`) until the machine has been nearly idle for one second,
    so a cell does not start on top of somebody else's burst; returns the last reading
    (busy cores)."""
    from _drivers import machine_cpu_s

    deadline = time.monotonic() + max_wait_s
    while True:
        before = machine_cpu_s()[0]
        time.sleep(1.0)
        load = machine_cpu_s()[0] - before
        if load <= threshold_cores or time.monotonic() >= deadline:
            return load


def _run_driver(env: Env, spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """One cell in its own process (with the clients' interpreter); returns its JSON report
    or {"driver_error": ...}."""
    proc = subprocess.Popen(
        env.client_argv([env.client_python, str(DRIVERS), json.dumps(spec)]),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return {"driver_error": f"driver did not finish within {timeout_s:.0f} s"}
    finally:
        kill_group(proc, grace_s=1.0)
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = err.decode(errors="replace").strip()[-800:]
        return {"driver_error": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --- the servers and peers ---------------------------------------------------------------


def _start_delayed_server(env: Env) -> None:
    argv = [sys.executable, str(DELAYED_SERVER), str(RTT_DELAY_MS)]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
    )
    env.procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or not line[0].isdigit():
        raise RuntimeError(f"delayed server did not start: {line!r}")
    env.rtt_port, env.rtt_priority = int(line[0]), line[1]


def _write_exporter_config(env: Env) -> Path:
    query = [{"expect": "^\\+OK"}, {"send": "QUIT"}, {"expect": "^\\+OK"}]
    base = {"preferred_ip_protocol": "ip4", "query_response": query}
    config = {
        "modules": {
            "pop3": {"prober": "tcp", "timeout": "10s", "tcp": base},
            "pop3s": {
                "prober": "tcp",
                "timeout": "10s",
                "tcp": {
                    **base,
                    "tls": True,
                    "tls_config": {"ca_file": env.ca_file, "server_name": env.server_name},
                },
            },
        }
    }
    path = env.workdir / "blackbox.yml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def _http_get(url: str, timeout_s: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our URL
        return int(response.status), response.read().decode(errors="replace")


def _start_exporter(env: Env) -> None:
    if not env.client_file(EXPORTER).exists():
        env.absent["blackbox"] = f"{env.client_file(EXPORTER)} not installed"
        return
    from _dovecot import free_ports

    listen = f"127.0.0.1:{free_ports(1)[0]}"
    config = _write_exporter_config(env)
    with (env.workdir / "blackbox.log").open("wb") as log:
        proc = subprocess.Popen(
            env.client_argv(
                [
                    str(EXPORTER),
                    f"--config.file={config}",
                    f"--web.listen-address={listen}",
                    "--log.level=warn",
                ]
            ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    env.procs.append(proc)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            log_text = (env.workdir / "blackbox.log").read_text(errors="replace")
            env.absent["blackbox"] = f"exporter exited {proc.returncode}: {log_text[-300:]}"
            return
        with contextlib.suppress(OSError):
            if _http_get(f"http://{listen}/-/healthy", 1.0)[0] == 200:
                break
        if time.monotonic() > deadline:
            env.absent["blackbox"] = "exporter not healthy after 15 s"
            return
        time.sleep(0.1)
    for module, port in (("pop3", env.pop3_port), ("pop3s", env.pop3s_port)):
        url = f"http://{listen}/probe?module={module}&target={env.host}:{port}"
        status, body = _http_get(url, 15.0)
        if status != 200 or "\nprobe_success 1\n" not in "\n" + body:
            print(f"warning: blackbox sanity probe {module} failed:\n{body[-500:]}")
    env.exporter = listen
    env.exporter_pid = proc.pid


def _plugin(env: Env, mode: str) -> tuple[Path, list[str]]:
    """The plugin and its extra arguments, as the clients see it."""
    if mode == "plain":
        return PLUGINS / "check_pop", []
    spop = PLUGINS / "check_spop"
    if env.client_file(spop).exists():
        return spop, []
    return PLUGINS / "check_pop", ["-S"]


# --- the cells -----------------------------------------------------------------------------


def _spec(env: Env, tool: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    tls = mode == "tls"
    spec: dict[str, Any] = {
        "tool": tool,
        "host": env.host,
        "port": env.pop3s_port if tls else env.pop3_port,
        "tls": tls,
        "ca_file": env.ca_file,
        "server_name": env.server_name,
        "concurrency": args.concurrency,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "server_sid": env.dovecot_pid,
    }
    if tool == "check_pop":
        plugin, extra = _plugin(env, mode)
        spec["plugin"] = str(plugin)
        spec["plugin_args"] = extra
    elif tool == "blackbox":
        spec["exporter"] = env.exporter
        spec["exporter_pid"] = env.exporter_pid
        spec["module"] = "pop3s" if tls else "pop3"
    return spec


def _timeout(args: argparse.Namespace) -> float:
    return float(args.warmup + args.duration + 60)


def run_cells(env: Env, args: argparse.Namespace) -> dict[tuple[str, str], Cell]:
    cells = {
        (t, m): Cell(t, m)
        for m in MODES
        for t in args.tools
        if m == "tls" or t not in TLS_ONLY_TOOLS
    }
    for tool, reason in env.absent.items():
        for mode in MODES:
            if (tool, mode) in cells:
                cells[(tool, mode)].problems.append(f"skipped: {reason}")
    for tool in args.tools:
        if tool == "check_pop":
            for mode in MODES:
                plugin, _ = _plugin(env, mode)
                if not env.client_file(plugin).exists():
                    missing = env.client_file(plugin)
                    cells[(tool, mode)].problems.append(f"skipped: {missing} not installed")
    for rnd in range(1, args.repeat + 1):
        for mode in MODES:
            for tool in args.tools:
                if (tool, mode) not in cells:
                    continue
                cell = cells[(tool, mode)]
                if any(p.startswith("skipped") for p in cell.problems):
                    continue
                print(f"round {rnd}/{args.repeat}: {tool} {mode} ...", end=" ", flush=True)
                idle_load = wait_quiet(args.quiet_wait, args.quiet_threshold)
                result = _run_driver(env, _spec(env, tool, mode, args), _timeout(args))
                result["pre_load_cores"] = idle_load
                result["round"] = rnd
                if "driver_error" in result:
                    cell.problems.append(f"round {rnd}: {result['driver_error']}")
                    print("driver error")
                    continue
                cell.runs.append(result)
                cpu = result["client_cpu_s"]
                print(
                    f"{result['ok']} ok, {result['failed']} failed, "
                    f"{result['ok'] / result['wall_s']:.0f}/s, "
                    f"{result['ok'] / cpu if cpu else float('nan'):.0f}/CPU-s"
                )
    return cells


def run_rtt(
    env: Env, args: argparse.Namespace, cells: dict[tuple[str, str], Cell]
) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    plans: list[tuple[str, str, int, float]] = [
        ("idle (no load)", "plain", 0, 0.0),
        (
            f"pop3watch plain load, {args.concurrency} in flight, unpaced",
            "plain",
            args.concurrency,
            0,
        ),
        (f"pop3watch TLS load, {args.concurrency} in flight, unpaced", "tls", args.concurrency, 0),
    ]
    plain = cells.get(("pop3watch", "plain"))
    if plain is not None and plain.rate:
        half = float(round(plain.rate / 2))
        plans.append(
            (
                f"pop3watch plain load paced at {half:.0f}/s (half its max)",
                "plain",
                args.concurrency,
                half,
            )
        )
    for label, mode, concurrency, rate in plans:
        spec = _spec(env, "pop3watch", mode, args)
        spec.update(
            concurrency=concurrency,
            duration_s=args.rtt_duration,
            rtt_port=env.rtt_port,
            rtt_interval_s=args.rtt_interval,
            rtt_delay_ms=RTT_DELAY_MS,
            rate_per_s=rate,
        )
        print(f"rtt: {label} ...", end=" ", flush=True)
        idle_load = wait_quiet(args.quiet_wait, args.quiet_threshold)
        result = _run_driver(env, spec, float(args.warmup + args.rtt_duration + 60))
        result["pre_load_cores"] = idle_load
        if "driver_error" in result:
            print("driver error")
        else:
            rtt = result["rtt"]
            print(
                f"{rtt['samples']} samples, p50 {_ms(rtt['error_ms']['p50'])}, "
                f"p99 |err| {_ms(rtt['abs_error_ms']['p99'])}"
            )
        out.append((label, result))
    return out


# --- reporting -----------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


_CLIENT_VERSIONS = """
import json, platform, ssl
from importlib import metadata
try:
    uv = metadata.version("uvloop")
except metadata.PackageNotFoundError:
    uv = "absent"
print(json.dumps({"python": platform.python_version(), "uvloop": uv,
                  "openssl (python)": ssl.OPENSSL_VERSION}))
"""


def _versions(env: Env) -> dict[str, str]:
    """Versions of everything measured; the client side's as the clients run it."""
    from _dovecot import dovecot_version

    import pop3watch

    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(env.client_argv(argv), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "absent"
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else "unknown"

    client: dict[str, str] = {"python": "?", "uvloop": "?", "openssl (python)": "?"}
    with contextlib.suppress(ValueError):
        client.update(json.loads(first_line([env.client_python, "-c", _CLIENT_VERSIONS])))
    versions = {"pop3watch": getattr(pop3watch, "__version__", "0.1.0"), **client}
    if env.client_root is not None:
        os_release = env.client_file(Path("/etc/os-release"))
        with contextlib.suppress(OSError):
            for line in os_release.read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    versions["clients' root"] = line.split("=", 1)[1].strip('"')
    return {
        **versions,
        "dovecot": dovecot_version(),
        "check_pop": first_line([str(PLUGINS / "check_pop"), "-V"]),
        "blackbox_exporter": first_line([str(EXPORTER), "--version"]),
        "kernel": platform.release(),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def throughput_table(cells: dict[tuple[str, str], Cell]) -> list[str]:
    rows = [
        "| mode | tool | in flight | completed | failed | wall s | checks/s | client CPU s "
        "| checks per client CPU-s (range) | Dovecot CPU s | harness CPU s | other CPU s "
        "| steal s | idle load before (max) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for (tool, mode), cell in sorted(cells.items(), key=lambda kv: (kv[0][1] != "plain",)):
        label = TOOL_LABEL[(tool, mode)]
        if not cell.runs:
            reason = "; ".join(cell.problems) or "no data"
            rows.append(f"| {mode} | {label} | | | | | | | {reason} | | | | | |")
            continue
        rng = cell.per_cpu_range()
        rng_text = f" ({rng[0]:,.0f}-{rng[1]:,.0f})" if rng and len(cell.runs) > 1 else ""
        conc = int(cell.runs[0].get("concurrency", 0)) or "-"
        rows.append(
            f"| {mode} | {label} | {conc} | {cell.ok:,} | {cell.failed:,} "
            f"| {cell.total('wall_s'):.1f} | {_num(cell.rate)} | {cell.total('client_cpu_s'):.2f} "
            f"| **{_num(cell.per_cpu)}**{rng_text} | {cell.total('server_cpu_s'):.2f} "
            f"| {cell.harness_cpu:.2f} | {cell.other_cpu:.2f} "
            f"| {cell.total('machine_steal_s'):.2f} | {cell.pre_load:.2f} cores |"
        )
    return rows


def _paired_ratios(ours: Cell, theirs: Cell) -> list[float]:
    """Checks per CPU-second of ``ours`` over ``theirs``, round by round. Rounds are
    interleaved (every tool once per round), so round i of both ran on the same machine
    minutes apart: the spread shows how much of the pooled ratio is the machine's noise."""
    theirs_by_round = theirs.per_cpu_by_round()
    return [
        value / theirs_by_round[rnd]
        for rnd, value in ours.per_cpu_by_round().items()
        if rnd in theirs_by_round
    ]


def ratio_rows(cells: dict[tuple[str, str], Cell]) -> tuple[list[str], bool]:
    rows = [
        "| comparison | pop3watch checks/CPU-s | peer checks/CPU-s | ratio | target | "
        "result | ratio per round (min-max) | rounds at target | throughput ratio (checks/s) |",
        "|---|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    all_pass = True
    for peer, mode, target in TARGETS:
        ours, theirs = cells.get(("pop3watch", mode)), cells.get((peer, mode))
        name = f"{mode}: pop3watch vs {TOOL_LABEL[(peer, mode)].split(' ')[0]}"
        if not ours or not theirs or not ours.per_cpu or not theirs.per_cpu:
            rows.append(f"| {name} | | | | >= {target:g}x | not measured | | | |")
            all_pass = False
            continue
        ratio = ours.per_cpu / theirs.per_cpu
        verdict = "PASS" if ratio >= target else "MISS"
        if ours.failed:
            verdict += f" (pop3watch had {ours.failed} failures)"
        all_pass &= ratio >= target
        tput = (ours.rate or 0) / theirs.rate if theirs.rate else None
        paired = _paired_ratios(ours, theirs)
        spread = f"{min(paired):.2f}-{max(paired):.2f}x" if paired else ""
        at_target = f"{sum(r >= target for r in paired)} of {len(paired)}" if paired else ""
        rows.append(
            f"| {name} | {ours.per_cpu:,.0f} | {theirs.per_cpu:,.0f} | {ratio:.2f}x "
            f"| >= {target:g}x | {verdict} | {spread} | {at_target} | {_num(tput, 2)}x |"
        )
    for peer, mode, target in TARGETS:
        # For reference, not judged: the TLS check as the first check of a server runs it,
        # verifying the chain's signatures (see verified_chains), against the same peers.
        full, theirs = cells.get(("pop3watch_full", mode)), cells.get((peer, mode))
        if not full or not theirs or not full.per_cpu or not theirs.per_cpu:
            continue
        paired = _paired_ratios(full, theirs)
        spread = f"{min(paired):.2f}-{max(paired):.2f}x" if paired else ""
        tput = (full.rate or 0) / theirs.rate if theirs.rate else None
        peer_name = TOOL_LABEL[(peer, mode)].split(" ")[0]
        rows.append(
            f"| {mode}: pop3watch, every chain verified in full, vs {peer_name} "
            f"| {full.per_cpu:,.0f} | {theirs.per_cpu:,.0f} | {full.per_cpu / theirs.per_cpu:.2f}x "
            f"| (>= {target:g}x) | reference | {spread} | "
            f"{sum(r >= target for r in paired)} of {len(paired)} | {_num(tput, 2)}x |"
        )
    return rows, all_pass


def _other_cpu(result: dict[str, Any]) -> float:
    busy = float(result.get("machine_busy_s") or 0.0)
    return busy - float(result.get("client_cpu_s") or 0.0) - float(result.get("server_cpu_s") or 0)


def rtt_rows(rtt: list[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = [
        "| condition | samples | failed | load checks/s | error p50 ms | error p99 ms "
        "| abs error p99 ms | error min/max ms | target abs p99 <= 2 ms "
        "| server delay - 200 p50/p99/max ms | rtt - server's actual delay p50/p99 ms "
        "| event-loop lag p50/p99 ms | other CPU s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|",
    ]
    for label, result in rtt:
        if "driver_error" in result:
            rows.append(f"| {label} | driver error: {result['driver_error'][:120]} |")
            continue
        r = result["rtt"]
        err, ab, srv, vs, lag = (
            r["error_ms"],
            r["abs_error_ms"],
            r["server_delay_dev_ms"],
            r["error_vs_server_ms"],
            r["loop_lag_ms"],
        )
        p99 = ab["p99"]
        verdict = "n/a" if p99 is None else ("PASS" if p99 <= RTT_TARGET_MS else "MISS")
        load = result["ok"] / result["wall_s"] if result.get("ok") else 0.0
        rows.append(
            f"| {label} | {r['samples']} | {r['failed']} | {load:,.0f} | {_ms(err['p50'])} "
            f"| {_ms(err['p99'])} | {_ms(p99)} | {_ms(err['min'])} / {_ms(err['max'])} "
            f"| {verdict} | {_ms(srv['p50'])} / {_ms(srv['p99'])} / {_ms(srv['max'])} "
            f"| {_ms(vs['p50'])} / {_ms(vs['p99'])} "
            f"| {_ms(lag['p50'])} / {_ms(lag['p99'])} | {_other_cpu(result):.2f} |"
        )
    return rows


def _problems(cells: dict[tuple[str, str], Cell], env: Env) -> list[str]:
    lines: list[str] = []
    for (tool, mode), cell in cells.items():
        for problem in cell.problems:
            lines.append(f"- {tool} {mode}: {problem}")
        errors = cell.errors()
        if errors:
            listed = ", ".join(f"{code} x{n}" for code, n in sorted(errors.items()))
            lines.append(f"- {tool} {mode}: failed checks by reason: {listed}")
    if env.dovecot_log and env.dovecot_log.exists():
        log = env.dovecot_log.read_text(errors="replace").splitlines()
        bad = [line for line in log if "Warning" in line or "Error" in line or "Fatal" in line]
        if bad:
            lines.append(f"- Dovecot logged {len(bad)} warnings/errors, e.g. `{bad[0][:200]}`")
    return lines


def _crosschecks(cells: dict[tuple[str, str], Cell]) -> list[str]:
    lines: list[str] = []
    for mode in MODES:
        cell = cells.get(("check_pop", mode))
        if cell is None or not cell.runs:
            continue
        lines.append(
            f"- {TOOL_LABEL[('check_pop', mode)].split(' ')[0]}: plugin CPU from wait4() "
            f"{cell.total('client_cpu_s'):.2f} s vs the driver's RUSAGE_CHILDREN delta "
            f"{cell.total('children_rusage_cpu_s'):.2f} s; driver's own CPU (excluded) "
            f"{cell.total('driver_cpu_s'):.2f} s."
        )
    for mode in MODES:
        cell = cells.get(("blackbox", mode))
        if cell is None or not cell.runs:
            continue
        lines.append(
            f"- blackbox_exporter {mode}: HTTP load generator CPU (not the client, "
            f"excluded) {cell.total('loadgen_cpu_s'):.2f} s."
        )
    return lines


def render(
    args: argparse.Namespace,
    env: Env,
    cells: dict[tuple[str, str], Cell],
    rtt: list[tuple[str, dict[str, Any]]],
    started: datetime,
) -> str:
    versions = _versions(env)
    client_release = versions.get("clients' root", "unknown")
    ratios, all_pass = ratio_rows(cells)
    problems = _problems(cells, env)
    ncpu = os.cpu_count() or 0
    command = " ".join(["bench/check_throughput.py", *sys.argv[1:]])
    lines = [
        "# pop3watch check throughput benchmark",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}`.",
        "",
        f"Machine: {ncpu} cores (`nproc` = {ncpu}), {_cpu_model()}; "
        + "; ".join(f"{k}: {v}" for k, v in versions.items())
        + ".",
        "",
        f"Cells: {args.concurrency} checks in flight for every tool, {args.warmup:g} s warm-up "
        f"then a {args.duration:g} s measured window, {args.repeat} round(s) interleaved "
        "(pop3watch, its TLS reference, check_pop, blackbox; plain then TLS); figures "
        "pooled over the rounds "
        "(range = per-round spread). Dovecot in high-performance login mode with "
        f"{env.login_processes} pop3-login processes; server certificate: "
        f"{CERT_KEY_LABELS[args.cert_key]}.",
        "",
        "## Greeting + QUIT checks against Dovecot on loopback",
        "",
        *throughput_table(cells),
        "",
        *_crosschecks(cells),
        "",
        "## pop3watch vs targets (checks per client CPU-second)",
        "",
        *ratios,
        "",
        f"All throughput targets: **{'PASS' if all_pass else 'MISS'}**.",
        "",
        f"## Reported rtt against a server delaying its greeting by {RTT_DELAY_MS:g} ms",
        "",
        f"One check every {args.rtt_interval * 1000:g} ms for {args.rtt_duration:g} s against "
        "the delayed server, from the same process and event loop as the pop3watch load "
        "against Dovecot (load: "
        f"{args.concurrency} in flight). error = reported rtt_ms - {RTT_DELAY_MS:g}.",
        "",
        *rtt_rows(rtt),
        "",
        "## Failures and problems",
        "",
        *(problems or ["- none: every check in every measured window succeeded."]),
        "",
        "## Method",
        "",
        "- **What a check is.** pop3watch: `run_probe('pop3', CheckSettings(host='127.0.0.1', "
        "port, tls='none'|'tls', ca_file, server_name='localhost', capa=False))`, the call "
        "the service makes for every check - connect, (TLS handshake with certificate "
        "verification), greeting, QUIT, close; a full `CheckResult` per check, with the "
        "session transcript recorded and attached to results that did not pass (as the "
        "service keeps it); settings built once. As in the service, a chain verified in "
        "full is remembered (`pop3watch.probe.verified_chains`): the later handshakes "
        "trust exactly that leaf, so OpenSSL still checks the name, the dates and the "
        "server's key (CertificateVerify) but not the signature that ties the chain to "
        "the root (here the CA's on the leaf, the chain's only one; with intermediates "
        "their own signatures are still checked), and the chain presented must be the "
        "one verified, byte for byte. The reference row "
        "*every chain verified in full* turns that off: each handshake verifies the "
        "signatures, as the first check of a server does. check_pop / check_spop: "
        "`-H 127.0.0.1 "
        "-p PORT -t 10` (expects `+OK`, sends `QUIT`; check_spop does not verify the "
        "certificate). blackbox_exporter's tcp prober: `expect ^\\+OK`, `send QUIT`, "
        "`expect ^\\+OK`; the TLS module sets `tls: true` with the test CA and "
        "`server_name: localhost` (verifies).",
        "- **Completed** = checks that succeeded (pop3watch status `up`, plugin exit 0, "
        "HTTP 200 with `probe_success 1`) and finished inside the measured window; "
        "**failed** = every other outcome finishing in the window (down/warn, non-zero "
        "exit, HTTP errors, `probe_success 0`). Rates count completed checks only; the CPU "
        "of failed checks is still counted.",
        "- **Client CPU.** pop3watch: `getrusage(RUSAGE_SELF)` user+sys delta of a child "
        "process that does nothing but the load (interpreter start-up and warm-up "
        "excluded; the measurement loop itself is included). check_pop: the sum of the "
        "plugin processes' own rusage as returned by `wait4()` for every plugin reaped in "
        "the window (cross-checked with the driver's `RUSAGE_CHILDREN` delta); the Python "
        "driver's own CPU (posix_spawn + wait4) is **excluded** and shown as harness CPU. "
        "blackbox_exporter: utime+stime of the exporter process from `/proc/<pid>/stat` "
        "(10 ms ticks): the exporter is the POP3 client; the HTTP load generator (asyncio on "
        "uvloop, keep-alive HTTP/1.1, one connection per in-flight probe) is **not** the "
        "client and is shown as harness CPU.",
        "- **Dovecot CPU s** = CPU of all Dovecot processes (its session) in the window. "
        "**Other CPU s** = machine-wide busy CPU time (user+nice+system+irq+softirq from "
        "`/proc/stat`) minus client, Dovecot and harness: everything else running on the "
        "machine (other workloads, kernel threads). **Steal s** = time the hypervisor took "
        "the virtual CPUs away. Before every cell the script waits (at most "
        f"{args.quiet_wait:g} s) for one second with at most {args.quiet_threshold:g} busy "
        "cores; **idle load before** is the last such reading (the highest over the "
        "rounds).",
        f"- **Shared machine.** {ncpu} cores shared by Dovecot, the client under test and "
        "the load generator/driver; the checks/s figures are therefore bounded by the "
        "whole machine, not by the client alone. Checks per client CPU-second is the "
        "robust figure; it is what the targets are about. Other sessions' test runs may "
        "have used the machine at the same time (see the other CPU column).",
        "- **Ratio per round.** The targets are judged on the pooled figures (all rounds' "
        "checks over all rounds' CPU). Beside them, pop3watch's figure in round *i* over "
        "the peer's in the same round. The rounds are interleaved, so each pair ran "
        "minutes apart on the same machine. Their spread, and how many of them reach the "
        "target, show how much of a PASS or MISS is the machine's noise.",
        *(
            []
            if env.client_root is None
            else [
                f"- **Clients from another root** (`--client-root {env.client_root}`, "
                "scripts/debian-root.sh): pop3watch's interpreter, check_pop and "
                "blackbox_exporter are the ones of the release in that root file system "
                f"({client_release}), entered with "
                "chroot(8): its Python, its OpenSSL, its plugins and its exporter, on this "
                "machine's kernel. Dovecot, the delayed server and the harness stay the "
                "machine's own."
            ]
        ),
        "- **Dovecot configuration** (bench/_dovecot.py): standalone config as in "
        "tests/fixtures/dovecot.py but with `service pop3-login { service_count = 0; "
        f"process_min_avail = {env.login_processes}; client_limit = 4000 }}` and "
        "`info_log_path = /dev/null`. With the fixture's default (`service_count = 1`, a "
        "freshly forked login process per connection) Dovecot, not the client, is the "
        "bottleneck. A greeting+QUIT check never logs in, so "
        "`mail_max_userip_connections` does not apply.",
        "- **RTT.** pop3watch's rtt_ms is the time from connection ready to the complete "
        "greeting, both ends stamped independently of the event loop: ready = the moment "
        "just before `connect()` plus the handshake round trip the kernel measured "
        "(`TCP_INFO` tcpi_rtt), greeting = the kernel's receive timestamp "
        "(`SO_TIMESTAMPNS`, read with `recvmsg()`) of the packet that completed it. "
        "So a busy loop (see the lag column) delays when the greeting is *read*, not the "
        "rtt reported. The delayed server (bench/_delayed_server.py, a separate process, "
        f"scheduled {env.rtt_priority}) stamps `perf_counter()` when `accept()` returns, sleeps "
        "until the deadline, and writes its actual "
        "accept-to-send delay into the greeting; the last column subtracts that actual "
        "delay, isolating the client's measurement error from the server's scheduling "
        "jitter. Event-loop lag: how late a 10 ms `asyncio.sleep` in the same process wakes "
        "up (uvloop timers have 1 ms granularity), i.e. the queueing and CPU-scheduling "
        "delay that any timestamp taken after an `await` also suffers. Percentiles are "
        "linear-interpolated (`statistics.quantiles`, inclusive).",
        "",
    ]
    return "\n".join(lines)


def _kept_tail() -> str:
    if not RESULTS.exists():
        return ""
    text = RESULTS.read_text(encoding="utf-8")
    if KEEP_MARKER not in text:
        return ""
    return text[text.index(KEEP_MARKER) :]


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=16, help="checks in flight")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--rtt-duration", type=float, default=None, help="default: --duration")
    parser.add_argument("--rtt-interval", type=float, default=0.05, help="seconds between")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    parser.add_argument(
        "--quiet-wait", type=float, default=30.0, help="max seconds to wait for an idle machine"
    )
    parser.add_argument(
        "--quiet-threshold", type=float, default=0.2, help="busy cores that count as idle"
    )
    parser.add_argument(
        "--cert-key",
        choices=("ecdsa", "rsa"),
        default="ecdsa",
        help="key type of the server certificate and its CA (P-256 or RSA-2048)",
    )
    parser.add_argument(
        "--client-root",
        type=Path,
        help="run the clients (pop3watch's interpreter, check_pop, blackbox_exporter) from "
        "this root file system via chroot, e.g. a Debian 13 one made by "
        "scripts/debian-root.sh; Dovecot stays the machine's",
    )
    parser.add_argument(
        "--client-python",
        default=None,
        help="the interpreter for pop3watch's cells (default: this one; with --client-root, "
        f"{CLIENT_ROOT_PYTHON})",
    )
    parser.add_argument("--quick", action="store_true", help="2 s smoke run, one round")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--json", type=Path, help="also save the raw measurements here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeat, args.quiet_wait = 2.0, 0.5, 1, 0.0
    if args.rtt_duration is None:
        args.rtt_duration = args.duration
    args.tools = [t for t in args.tools.split(",") if t]
    unknown = set(args.tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path[:0] = [str(BENCH), str(ROOT)]
    from _dovecot import start_bench_dovecot, stop_dovecot

    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="p3wb-", dir="/tmp"))
    env = Env(workdir=workdir, client_root=args.client_root)
    if args.client_python is not None:
        env.client_python = args.client_python
    elif args.client_root is not None:
        env.client_python = CLIENT_ROOT_PYTHON
    dovecot: subprocess.Popen[bytes] | None = None
    # SIGTERM/SIGHUP become SystemExit so the finally clause cleans up.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    try:
        (workdir / "dovecot").mkdir()
        server, dovecot = start_bench_dovecot(workdir / "dovecot", cert_key=args.cert_key)
        env.pop3_port, env.pop3s_port = server.pop3_port, server.pop3s_port
        env.ca_file, env.server_name = str(server.ca_file), server.cert_hostname
        env.dovecot_pid, env.login_processes = server.pid, server.login_processes
        env.dovecot_log = server.log_path
        _start_delayed_server(env)
        if "blackbox" in args.tools:
            _start_exporter(env)
        cells = run_cells(env, args)
        rtt = run_rtt(env, args, cells)
        report = render(args, env, cells, rtt, started)
    finally:
        for proc in reversed(env.procs):
            kill_group(proc)
        if dovecot is not None:
            stop_dovecot(dovecot)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None:
        raw = {
            "cells": {f"{t}/{m}": c.runs for (t, m), c in cells.items()},
            "problems": {f"{t}/{m}": c.problems for (t, m), c in cells.items()},
            "rtt": dict(rtt),
            "cert_key": args.cert_key,
        }
        args.json.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    print()
    print(report)
    if not args.no_write:
        tail = _kept_tail()
        RESULTS.write_text(report + ("\n" + tail if tail else ""), encoding="utf-8")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
