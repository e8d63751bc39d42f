"""``pop3watch run | validate | status | history | report``: the service from a shell.

Rule: thin. Each command loads the config, calls the service or the repository, prints.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pop3watch import aio
from pop3watch.cli.durations import parse_since
from pop3watch.cli.render import EXIT_CONFIG
from pop3watch.config import ConfigFileError, Pop3WatchConfig, ServiceSettings, load_config
from pop3watch.engine.service import Service
from pop3watch.errors import StorageError
from pop3watch.storage import Storage

T = TypeVar("T")

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="the YAML file (pop3watch.yaml)")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="where the SQLite database lives (overrides the file)"),
]
DEFAULT_CONFIG = Path("pop3watch.yaml")

err_console = Console(stderr=True)
# Tables hold server text: shown as it is, never read as rich markup (a hostile server's
# "[link=...]" would reach the terminal as a hyperlink, and "[/]" would crash the print).
table_console = Console(markup=False, highlight=False)


def _load(path: Path) -> Pop3WatchConfig:
    try:
        return load_config(path)
    except ConfigFileError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        typer.echo(f"{len(exc.issues)} error(s) in {path}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _service_settings(path: Path) -> ServiceSettings:
    """The file's service section, or the defaults when reading with no file at hand."""
    if not path.exists() and path == DEFAULT_CONFIG:
        return ServiceSettings()
    return _load(path).service


def validate(file: Annotated[Path, typer.Argument(help="the YAML file to check")]) -> None:
    """Check a configuration file and print every error at once (exit 3 if any)."""
    config = _load(file)
    typer.echo(f"{file}: OK, {len(config.monitors)} monitors")


def run(config: ConfigOption = DEFAULT_CONFIG, data_dir: DataDirOption = None) -> None:
    """Run the monitor service until SIGTERM or SIGINT."""
    loaded = _load(config)
    logging.basicConfig(
        level=loaded.service.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Below WARNING these loggers write SQL statements and every parameter (monitor
    # settings, server text, transcripts); pop3watch's own debug output never holds them.
    for chatty in ("aiosqlite", "sqlalchemy", "asyncpg", "psycopg"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    async def main() -> bool:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        service = Service(loaded, data_dir=data_dir)
        await service.run(stop)
        return service.failed

    if aio.run(main()):
        raise typer.Exit(1)


@contextmanager
def _progress(label: str) -> Iterator[None]:
    """A spinner with elapsed time on stderr for long work (hidden when not a terminal)."""
    with Progress(
        SpinnerColumn(),
        TextColumn(label),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        progress.add_task(label, total=None)
        yield


def _with_storage(
    config: Path, data_dir: Path | None, work: Callable[[Storage], Awaitable[T]]
) -> T:
    url = _service_settings(config).effective_database_url(data_dir)

    async def main() -> T:
        storage = await Storage.connect(url, migrate=False)
        try:
            return await work(storage)
        finally:
            await storage.close()

    try:
        return aio.run(main())
    except StorageError as exc:
        typer.echo(f"pop3watch: {exc.message}", err=True)
        raise typer.Exit(2) from None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}%"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def status(
    config: ConfigOption = DEFAULT_CONFIG,
    data_dir: DataDirOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every monitor: state, since when, last result, uptime over 24 h and 30 days."""

    async def gather(storage: Storage) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        monitors = await storage.list_monitors()
        ids = [m.id for m in monitors]
        statuses = await storage.load_statuses()
        last = await storage.last_results(ids)
        day = await storage.uptime(ids, since=now - parse_since("24h", now), now=now)
        month = await storage.uptime(ids, since=now - parse_since("30d", now), now=now)
        rows = []
        for m in monitors:
            st = statuses.get(m.id)
            result = last.get(m.id)
            rows.append(
                {
                    "name": m.name,
                    "type": m.probe,
                    "enabled": m.enabled,
                    "state": st.state.value if st else "unknown",
                    "since": _iso(st.since if st else None),
                    "last_checked_at": _iso(result.started_at if result else None),
                    "last_status": result.status if result else None,
                    "last_error": result.error_code if result else None,
                    "last_message": result.error_message if result else None,
                    "rtt_ms": result.rtt_ms if result else None,
                    "uptime_24h": day.get(m.id),
                    "uptime_30d": month.get(m.id),
                }
            )
        return rows

    rows = _with_storage(config, data_dir, gather)
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("monitor", "state", "since", "last", "rtt", "24h", "30d", "reason")
    for row in rows:
        table.add_row(
            row["name"],
            row["state"],
            (row["since"] or "-")[:19],
            row["last_status"] or "-",
            "-" if row["rtt_ms"] is None else f"{row['rtt_ms']:.1f} ms",
            _pct(row["uptime_24h"]),
            _pct(row["uptime_30d"]),
            row["last_error"] or "",
        )
    table_console.print(table)


def _print_rows(rows: Sequence[dict[str, Any]], *, as_json: bool, as_csv: bool) -> None:
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2, default=str))
    elif as_csv:
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        typer.echo(out.getvalue(), nl=False)
    else:
        if not rows:
            typer.echo("(no rows)")
            return
        table = Table(*rows[0].keys())
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        table_console.print(table)


def history(
    name: Annotated[str, typer.Argument(help="monitor name")],
    config: ConfigOption = DEFAULT_CONFIG,
    data_dir: DataDirOption = None,
    since: Annotated[str, typer.Option(help="how far back: 24h, 7d, 90m, or an ISO date")] = "24h",
    json_output: Annotated[bool, typer.Option("--json")] = False,
    csv_output: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """One monitor's raw results (and state transitions with --json)."""

    async def gather(storage: Storage) -> list[dict[str, Any]] | None:
        now = datetime.now(UTC)
        monitor = next(
            (m for m in await storage.list_monitors(include_deleted=True) if m.name == name), None
        )
        if monitor is None:
            return None
        with _progress(f"reading results of {name}"):
            results = await storage.results(monitor.id, since=now - parse_since(since, now))
        rows = []
        for r in results:
            row = asdict(r)
            row.pop("transcript", None)
            row.pop("monitor_id", None)
            timings = row.pop("timings", {}) or {}
            row["started_at"] = r.started_at.isoformat()
            row.update({f"t_{k}": v for k, v in timings.items()})
            rows.append(row)
        return rows

    rows = _with_storage(config, data_dir, gather)
    if rows is None:
        typer.echo(f"pop3watch: no monitor named {name!r}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    _print_rows(rows, as_json=json_output, as_csv=csv_output)


def report(
    config: ConfigOption = DEFAULT_CONFIG,
    data_dir: DataDirOption = None,
    period: Annotated[str, typer.Option(help="30d, 7d, 24h, or since an ISO date")] = "30d",
    json_output: Annotated[bool, typer.Option("--json")] = False,
    csv_output: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """Uptime %, downtime, incidents and rtt avg/p95 per monitor over a period."""

    async def gather(storage: Storage) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        since = now - parse_since(period, now)
        with _progress(f"computing the report since {since:%Y-%m-%d %H:%M} UTC"):
            rows = await storage.report(since=since, until=now)
        return [
            {
                "monitor": r.name,
                "checks": r.checks,
                "failures": r.failures,
                "warnings": r.warnings,
                "uptime_pct": None if r.uptime_pct is None else round(r.uptime_pct, 4),
                "downtime_s": round(r.downtime_s, 1),
                "incidents": r.incidents,
                "rtt_avg_ms": None if r.rtt_avg_ms is None else round(r.rtt_avg_ms, 2),
                "rtt_p95_ms": None if r.rtt_p95_ms is None else round(r.rtt_p95_ms, 2),
            }
            for r in rows
        ]

    _print_rows(_with_storage(config, data_dir, gather), as_json=json_output, as_csv=csv_output)
