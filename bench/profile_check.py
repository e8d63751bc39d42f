"""Profile pop3watch's client side of a greeting+QUIT check against the bench Dovecot.

    .venv/bin/python bench/profile_check.py [--tls] [--cert-key rsa] [--checks 5000]
    py-spy record --native -f raw -o out.txt -- .venv/bin/python bench/profile_check.py

Runs ``run_probe('pop3', ...)`` (the service's call; capa=False) ``--checks`` times
with ``--concurrency`` in flight on uvloop and prints the CPU per check (user and sys,
from getrusage); ``--floor`` runs a minimal asyncio Protocol client instead (connect,
read greeting, QUIT, close, nothing else), the floor that Python + uvloop + the kernel
(+ OpenSSL) cost on this machine.
With ``--cprofile`` it also runs under cProfile timed in process CPU time and prints the
top functions by own and cumulative time; that timer costs a system call per event, so
absolute numbers are inflated: use the shares, or a sampling profiler (py-spy) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import resource
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


class _FloorProtocol(asyncio.Protocol):
    """The least a greeting+QUIT check can do on asyncio: no result, no bookkeeping."""

    def __init__(self, done: asyncio.Future[bool]) -> None:
        self.done = done
        self.buffer = b""
        self.greeted = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n" in self.buffer and not self.done.done():
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            assert self.transport is not None
            if not line.startswith(b"+OK"):
                self.transport.close()
                self.done.set_result(False)
            elif not self.greeted:
                self.greeted = True
                self.transport.write(b"QUIT\r\n")
            else:
                self.transport.close()
                self.done.set_result(True)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(False)


async def _floor_check(host: str, port: int, context: ssl.SSLContext | None) -> bool:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    await loop.create_connection(
        lambda: _FloorProtocol(done),
        host,
        port,
        ssl=context,
        server_hostname="localhost" if context else None,
    )
    return await done


async def _load(
    check: Callable[[], Awaitable[bool]], checks: int, concurrency: int
) -> tuple[int, int]:
    remaining = checks
    ok = failed = 0

    async def worker() -> None:
        nonlocal remaining, ok, failed
        while remaining > 0:
            remaining -= 1
            if await check():
                ok += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tls", action="store_true")
    parser.add_argument(
        "--cert-key", choices=("ecdsa", "rsa"), default="ecdsa", help="server key type"
    )
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--cprofile", action="store_true", help="also run under cProfile")
    parser.add_argument(
        "--floor", action="store_true", help="a minimal asyncio Protocol client instead"
    )
    args = parser.parse_args()
    sys.path[:0] = [str(BENCH), str(ROOT)]
    from _dovecot import start_bench_dovecot, stop_dovecot

    from pop3watch.aio import run
    from pop3watch.probe import CheckSettings, run_probe

    workdir = Path(tempfile.mkdtemp(prefix="p3wp-", dir="/tmp"))
    dovecot = None
    try:
        server, dovecot = start_bench_dovecot(workdir, cert_key=args.cert_key)
        settings = CheckSettings(
            host=server.host,
            port=server.pop3s_port if args.tls else server.pop3_port,
            tls="tls" if args.tls else "none",
            ca_file=server.ca_file if args.tls else None,
            server_name=server.cert_hostname if args.tls else None,
            capa=False,
            timeout=10,
        )
        context = ssl.create_default_context(cafile=str(server.ca_file)) if args.tls else None

        async def check() -> bool:
            if args.floor:
                return await _floor_check(server.host, settings.effective_port, context)
            return (await run_probe("pop3", settings)).status == "up"

        run(_load(check, 200, args.concurrency))  # warm-up: imports, caches
        # CPU time, not wall time: waiting for the server or the scheduler is not cost.
        profiler = cProfile.Profile(time.process_time)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if args.cprofile:
            profiler.enable()
        ok, failed = run(_load(check, args.checks, args.concurrency))
        if args.cprofile:
            profiler.disable()
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        if dovecot is not None:
            stop_dovecot(dovecot)
        shutil.rmtree(workdir, ignore_errors=True)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    sys_cpu = ru1.ru_stime - ru0.ru_stime
    print(
        f"{'floor ' if args.floor else ''}{'TLS' if args.tls else 'plain'}: "
        f"{ok} ok, {failed} failed in {wall:.2f} s; "
        f"CPU {cpu:.2f} s ({sys_cpu:.2f} s sys) = {cpu / max(ok + failed, 1) * 1e6:.0f} us "
        f"per check{' (under cProfile)' if args.cprofile else ''}"
    )
    if not args.cprofile:
        return 0
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(key).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
