"""The ``pop3watch`` command line: parses, calls, prints (no logic of its own).

Usage errors exit with 3 (bad configuration), never with 2, which means "down".
"""

from __future__ import annotations

import sys

import typer

from pop3watch.cli import service
from pop3watch.cli.check import check, usage_error_output
from pop3watch.cli.render import EXIT_CONFIG

app = typer.Typer(
    name="pop3watch",
    help="Self-hosted POP3 monitoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help, as click writes it: it fits any width (a pipe is 80 columns), shows
    # flags without a value placeholder and never cuts an option's name.
    rich_markup_mode=None,
)
app.command("check")(check)
app.command("run")(service.run)
app.command("validate")(service.validate)
app.command("status")(service.status)
app.command("history")(service.history)
app.command("report")(service.report)


@app.callback()
def _root() -> None:
    """Self-hosted POP3 monitoring: checks, a monitor service, reports."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pop3watch`` script."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="pop3watch", standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:
        args = sys.argv[1:] if argv is None else argv
        stdout = usage_error_output(args, exc.format_message())
        if stdout is not None:
            typer.echo(stdout)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"pop3watch: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    sys.exit(code if isinstance(code, int) else 0)
