"""``pop3watch check``: one POP3 check from the command line (also a Nagios plugin).

Rule: thin. Options become ``CheckSettings``; the probe runs; ``render`` prints.
A password is never accepted on the command line, only by reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from pop3watch import aio
from pop3watch.cli.render import EXIT_CONFIG, exit_code, human_line, nagios_output
from pop3watch.probe import CheckResult, check_pop3
from pop3watch.probe.settings import AuthMode, CheckSettings, IpFamily, TlsMode


def settings_from_options(options: dict[str, Any]) -> CheckSettings:
    """Build validated settings from CLI options; unset options keep the model defaults."""
    return CheckSettings(**{k: v for k, v in options.items() if v is not None})


def print_transcript(result: CheckResult, *, err: bool) -> None:
    for line in result.transcript:
        typer.echo(f"{line.t_ms:10.3f} {line.dir}: {line.text}", err=err)


def print_validation_error(exc: ValidationError) -> None:
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"]) or "settings"
        typer.echo(f"pop3watch: invalid {where.replace('_', '-')}: {err['msg']}", err=True)


def check(
    host: Annotated[str, typer.Argument(help="DNS name or IP address of the POP3 server")],
    port: Annotated[
        int | None, typer.Option(help="TCP port (default 110, or 995 with --tls tls)")
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
        int | None, typer.Option(help="warn when the certificate expires within N days")
    ] = None,
    ip_family: Annotated[IpFamily, typer.Option(help="auto, 4 or 6")] = IpFamily.AUTO,
    auth: Annotated[
        AuthMode, typer.Option("--auth", help="none, user, apop or sasl")
    ] = AuthMode.NONE,
    sasl_mechanism: Annotated[
        str | None, typer.Option(help="PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER")
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
        bool, typer.Option(help="allow credentials without TLS")
    ] = False,
    stat: Annotated[
        bool, typer.Option("--stat", help="report message count and size (needs --auth)")
    ] = False,
    warn_messages: Annotated[int | None, typer.Option(help="warn above this many messages")] = None,
    down_messages: Annotated[int | None, typer.Option(help="down above this many messages")] = None,
    warn_octets: Annotated[int | None, typer.Option(help="warn above this mailbox size")] = None,
    down_octets: Annotated[int | None, typer.Option(help="down above this mailbox size")] = None,
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
        settings = settings_from_options(options)
    except ValidationError as exc:
        if nagios:
            typer.echo(f"POP3 UNKNOWN - invalid configuration: {exc.error_count()} error(s)")
        print_validation_error(exc)
        raise typer.Exit(EXIT_CONFIG) from None
    result = aio.run(check_pop3(settings))
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
                warn_rtt_ms=settings.warn_rtt_ms,
                down_rtt_ms=settings.down_rtt_ms,
                timeout_s=settings.timeout,
                cert_warn_days=settings.cert_warn_days
                if settings.tls is not TlsMode.NONE
                else None,
            )
        )
    else:
        typer.echo(human_line(result))
    raise typer.Exit(exit_code(result))
