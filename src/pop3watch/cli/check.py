"""``pop3watch check``: one POP3 check from the command line (also a Nagios plugin).

Rule: thin. Options become ``CheckSettings``; the probe runs; ``render`` prints.
A password is never accepted on the command line, only by reference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from pop3watch import aio
from pop3watch.cli.render import EXIT_CONFIG, exit_code, human_line, nagios_output
from pop3watch.errors import ConfigError, InternalError
from pop3watch.probe import CheckResult, check_pop3
from pop3watch.probe.settings import (
    SASL_MECHANISMS,
    AuthMode,
    CheckSettings,
    IpFamily,
    TlsMode,
)


def settings_from_options(options: dict[str, Any]) -> CheckSettings:
    """Build validated settings from CLI options; unset options keep the model defaults."""
    return CheckSettings(**{k: v for k, v in options.items() if v is not None})


def print_transcript(result: CheckResult, *, err: bool) -> None:
    for line in result.transcript:
        typer.echo(f"{line.t_ms:10.3f} {line.dir}: {line.text}", err=err)


def validation_problems(exc: ValidationError) -> list[str]:
    """Each problem as ``--option: what is wrong`` (or just what is wrong, for a rule
    between options), without pydantic's "Value error, " prefix."""
    problems = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        where = ".".join(str(x) for x in err["loc"])
        if where == "host":
            problems.append(f"HOST: {message}")
        else:
            problems.append(f"--{where.replace('_', '-')}: {message}" if where else message)
    return problems


def config_problem_output(
    host: str, problems: list[str], *, json_output: bool, nagios: bool
) -> str | None:
    """What stdout says of settings that could not be built: with ``--json`` a result of
    the usual shape (code ``config_invalid``, so a script parses one schema), with
    ``--nagios`` the reasons on the one line Nagios shows; None otherwise (stderr says it)."""
    if json_output:
        error = ConfigError("; ".join(problems))
        result = CheckResult.failed(error, target=host, started_at=datetime.now(UTC))
        return result.model_dump_json(indent=2)
    if nagios:
        return f"POP3 UNKNOWN - invalid configuration: {'; '.join(problems)}"
    return None


def usage_error_output(args: list[str], message: str) -> str | None:
    """What ``check --json`` or ``check --nagios`` prints on stdout when the command line
    itself does not parse (an unknown ``--tls`` mode, a port that is not a number): the
    same shapes as any other bad configuration, so a script or Nagios sees the reason.
    None for other commands and outputs (the usage message on stderr says it all)."""
    if "check" not in args:
        return None
    rest = args[args.index("check") + 1 :]
    host = next((a for a in rest if not a.startswith("-")), "")
    return config_problem_output(
        host,
        [message.strip().replace("Value error, ", "")],
        json_output="--json" in args,
        nagios="--nagios" in args,
    )


def check(
    host: Annotated[
        str, typer.Argument(metavar="HOST", help="DNS name or IP address of the POP3 server")
    ],
    port: Annotated[
        int | None,
        typer.Option(help="TCP port (default 110, or 995 with --tls tls or tls-if-available)"),
    ] = None,
    tls: Annotated[TlsMode, typer.Option("--tls", help="TLS mode")] = TlsMode.NONE,
    ca_file: Annotated[
        Path | None, typer.Option(help="PEM bundle to verify the server against")
    ] = None,
    fingerprint: Annotated[
        str | None, typer.Option(help="pinned SHA-256 of the server certificate")
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="accept any certificate (marked unverified)")
    ] = False,
    server_name: Annotated[
        str | None, typer.Option(help="name for SNI and verification (default HOST)")
    ] = None,
    cert_warn_days: Annotated[
        int | None,
        typer.Option(
            help="warn when the certificate, or one above it in the verified chain, "
            "expires within N days (default 14)"
        ),
    ] = None,
    ip_family: Annotated[IpFamily, typer.Option(help="auto, 4 or 6")] = IpFamily.AUTO,
    auth: Annotated[
        AuthMode, typer.Option("--auth", help="none, user, apop or sasl")
    ] = AuthMode.NONE,
    sasl_mechanism: Annotated[
        str | None,
        typer.Option(help=", ".join(SASL_MECHANISMS)),
    ] = None,
    user: Annotated[str | None, typer.Option(help="mailbox user name")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="read the password from this environment variable")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="read the password from this file")
    ] = None,
    password_command: Annotated[
        str | None,
        typer.Option(
            help="run this command (no shell) and read the password from the first line of "
            "its output; the command line itself must not contain the password"
        ),
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="OAuth bearer token from this environment variable")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="OAuth bearer token from this file")
    ] = None,
    token_command: Annotated[
        str | None,
        typer.Option(help="run this command (no shell) and read an OAuth token from its output"),
    ] = None,
    allow_plaintext_auth: Annotated[
        bool, typer.Option("--allow-plaintext-auth", help="allow credentials without TLS")
    ] = False,
    stat: Annotated[
        bool, typer.Option("--stat", help="report message count and size (needs --auth)")
    ] = False,
    warn_messages: Annotated[int | None, typer.Option(help="warn above this many messages")] = None,
    down_messages: Annotated[int | None, typer.Option(help="down above this many messages")] = None,
    warn_octets: Annotated[
        int | None, typer.Option(help="warn above this mailbox size in octets")
    ] = None,
    down_octets: Annotated[
        int | None, typer.Option(help="down above this mailbox size in octets")
    ] = None,
    capa: Annotated[bool, typer.Option(help="ask CAPA and report capabilities")] = True,
    timeout: Annotated[
        float | None, typer.Option(help="seconds for the whole check (default 10, max 900)")
    ] = None,
    warn_rtt_ms: Annotated[
        float | None, typer.Option(help="warn when the greeting takes longer")
    ] = None,
    down_rtt_ms: Annotated[
        float | None, typer.Option(help="down when the greeting takes longer")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="print the whole result as JSON")
    ] = False,
    nagios: Annotated[
        bool, typer.Option("--nagios", help="monitoring-plugins output and exit codes")
    ] = False,
    diagnose: Annotated[
        bool,
        typer.Option(
            "--diagnose",
            help="print the redacted session transcript (on stderr with --json or --nagios)",
        ),
    ] = False,
) -> None:
    """Check one POP3 server. Exit 0 up, 1 warn, 2 down, 3 bad configuration."""
    options = dict(locals())
    for flag in ("json_output", "nagios", "diagnose", "no_verify"):
        options.pop(flag)
    options["verify"] = not no_verify
    try:
        if json_output and nagios:
            raise ValueError("give at most one of --json and --nagios")
        settings = settings_from_options(options)
    except (ValidationError, ValueError) as exc:
        problems = validation_problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
        stdout = config_problem_output(host, problems, json_output=json_output, nagios=nagios)
        if stdout is not None:
            typer.echo(stdout)
        for problem in problems:
            typer.echo(f"pop3watch: invalid configuration: {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        result = aio.run(check_pop3(settings))
    except Exception as exc:  # a bug of ours: say so in the output's own shape, exit 3
        result = CheckResult.failed(
            InternalError(type(exc).__name__),
            target=settings.target,
            started_at=datetime.now(UTC),
        )
    if diagnose:
        # JSON must parse and a plugin's first line is its status: the transcript goes to
        # stderr then, and stays on stdout (before the human line) otherwise.
        print_transcript(result, err=json_output or nagios)
    if json_output:
        typer.echo(result.model_dump_json(indent=2))
    elif nagios:
        typer.echo(
            nagios_output(
                result,
                thresholds=settings.thresholds,
                timeout_s=settings.timeout,
            )
        )
    else:
        typer.echo(human_line(result))
    raise typer.Exit(exit_code(result))
