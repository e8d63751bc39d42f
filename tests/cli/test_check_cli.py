"""`pop3watch check` as users run it: a subprocess, its output and its exit code."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.certs import CertBundle
from tests.fixtures.dovecot import DovecotServer
from tests.fixtures.scripted import Pop3Script, ScriptedFactory, ScriptedServer, silent


def pop3watch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pop3watch", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.dovecot
def test_human_line_and_exit_zero(dovecot: DovecotServer) -> None:
    proc = pop3watch(dovecot.host, "--port", str(dovecot.pop3_port))
    assert proc.returncode == 0, proc.stderr
    assert re.match(
        rf"UP \d+\.\d ms 127\.0\.0\.1:{dovecot.pop3_port} \(127\.0\.0\.1\)", proc.stdout
    )


@pytest.mark.dovecot
def test_json_has_the_documented_fields(dovecot: DovecotServer) -> None:
    proc = pop3watch(
        dovecot.host,
        "--port", str(dovecot.pop3s_port),
        "--tls", "tls",
        "--ca-file", str(dovecot.ca_file),
        "--auth", "user",
        "--user", dovecot.user,
        "--password-env", "P3W_CLI_PW",
        "--stat",
        "--json",
        env={"P3W_CLI_PW": dovecot.password},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data["status"] == "up"
    assert data["error"] is None
    assert data["target"] == f"127.0.0.1:{dovecot.pop3s_port}"
    assert data["address"] == "127.0.0.1"
    assert data["rtt_ms"] > 0
    assert set(data["timings_ms"]) >= {"dns", "connect", "tls", "greeting", "auth", "stat", "total"}
    cert = data["tls"]["cert"]
    assert set(cert) >= {
        "subject",
        "issuer",
        "sans",
        "not_after",
        "days_left",
        "fingerprint_sha256",
        "verified",
    }
    assert cert["fingerprint_sha256"] == dovecot.cert_sha256
    assert data["mailbox"] == {"messages": dovecot.messages, "octets": dovecot.octets}
    assert data["capabilities"]
    assert dovecot.password not in proc.stdout


def test_json_error_has_code_message_phase(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script(greeting=b"-ERR [SYS/TEMP] maintenance\r\n"))
    proc = pop3watch(srv.host, "--port", str(srv.port), "--json")
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "service_unavailable"
    assert error["phase"] == "greeting"
    assert "[SYS/TEMP] maintenance" in error["message"]


def test_nagios_ok_warning_critical(scripted: ScriptedFactory, certs: CertBundle) -> None:
    ok = scripted(Pop3Script(), tls_context=certs.good)
    proc = pop3watch(
        ok.host,
        "--port",
        str(ok.port),
        "--tls",
        "tls",
        "--ca-file",
        str(certs.ca_file),
        "--nagios",
        "--timeout",
        "7",
    )
    assert proc.returncode == 0, proc.stdout
    assert re.fullmatch(
        r"POP3 OK - \d+\.\d ms response time on 127\.0\.0\.1:\d+, TLSv1\.[23], "
        r"certificate valid \d+ days"
        r"\|time=\d+\.\d{6}s;;;0\.000000;7\.000000 cert_days=\d+;14:;;; chain_days=\d+;14:;;;\n",
        proc.stdout,
    ), proc.stdout
    slow = scripted(Pop3Script(greeting_delay=0.2))
    proc = pop3watch(
        slow.host,
        "--port",
        str(slow.port),
        "--nagios",
        "--warn-rtt-ms",
        "50",
        "--down-rtt-ms",
        "5000",
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("POP3 WARNING - slow_response:")
    seconds = float(re.search(r"\|time=(\d+\.\d+)s", proc.stdout).group(1))  # type: ignore[union-attr]
    assert 0.15 < seconds < 1.0
    assert ";0.050000;5.000000;0.000000;10.000000" in proc.stdout
    err = scripted(Pop3Script(greeting=b"220 smtp.example.org ESMTP\r\n"))
    proc = pop3watch(err.host, "--port", str(err.port), "--nagios")
    assert proc.returncode == 2
    assert proc.stdout.startswith("POP3 CRITICAL - protocol_violation:")


def test_diagnose_prints_a_redacted_transcript(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script())
    proc = pop3watch(
        srv.host, "--port", str(srv.port), "--auth", "user", "--user", "alice",
        "--password-env", "P3W_CLI_PW", "--allow-plaintext-auth", "--diagnose",
        env={"P3W_CLI_PW": "wonderland"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert " C: PASS ***" in proc.stdout
    assert " S: +OK" in proc.stdout
    assert "wonderland" not in proc.stdout + proc.stderr


def test_password_is_never_a_command_line_argument() -> None:
    proc = pop3watch("127.0.0.1", "--user", "alice", "--password", "hunter2")
    assert proc.returncode == 3
    assert "No such option: --password" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "port"),
        (["--tls", "sslv3"], "sslv3"),
        (["--auth", "user", "--stat", "--warn-messages", "-1"], "warn-messages"),
        (["--tls", "tls", "--server-name", ".example.com"], "--server-name: not a host name"),
        (["--warn-rtt-ms", "inf"], "finite number"),
        (["--user", "alice", "--password-env", "X"], "need an auth mode"),
        (["--json", "--nagios"], "at most one of --json and --nagios"),
    ],
)
def test_bad_configuration_exits_3(args: list[str], message: str) -> None:
    proc = pop3watch("127.0.0.1", *args)
    assert proc.returncode == 3
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("host", ["127.0.0.1:995", "[::1]:995", "mail.example.com:110"])
def test_a_port_glued_to_the_host_is_bad_configuration(host: str) -> None:
    """Not looked up in DNS (which would report dns_failed, a down server)."""
    proc = pop3watch(host)
    assert proc.returncode == 3
    assert "HOST: not a host name or IP address (give the port on its own)" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--timeout", "0"],  # refused by the settings model
        ["--tls", "bogus"],  # refused by the command line parser
        ["--port", "abc"],
    ],
)
def test_bad_configuration_is_told_on_stdout_to_nagios_and_json(args: list[str]) -> None:
    """Nagios shows a plugin's first line only, and a script reads stdout: the reason
    must be there, in the shape each expects."""
    proc = pop3watch("127.0.0.1", *args, "--nagios")
    assert proc.returncode == 3
    first = proc.stdout.splitlines()[0]
    assert first.startswith("POP3 UNKNOWN - invalid configuration: ")
    assert args[0] in first
    proc = pop3watch("127.0.0.1", *args, "--json")
    assert proc.returncode == 3
    data = json.loads(proc.stdout)
    assert data["status"] == "down"
    assert data["target"] == "127.0.0.1"
    assert (data["error"]["code"], data["error"]["phase"]) == ("config_invalid", "config")
    assert args[0] in data["error"]["message"]
    assert "Value error" not in data["error"]["message"]


def test_missing_secret_is_config_missing_and_unknown_for_nagios(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script())
    args = [
        srv.host,
        "--port",
        str(srv.port),
        "--auth",
        "user",
        "--user",
        "a",
        "--password-env",
        "P3W_UNSET_VAR",
    ]
    proc = pop3watch(*args, "--nagios")
    assert proc.returncode == 3
    assert proc.stdout.startswith("POP3 UNKNOWN - config_missing:")
    assert srv.connections == 0


def test_diagnose_goes_to_stderr_with_json_or_nagios(scripted: ScriptedFactory) -> None:
    """Machine-read output stays parseable: JSON parses, the plugin line comes first."""
    srv = scripted(Pop3Script())
    base = [srv.host, "--port", str(srv.port), "--diagnose"]
    proc = pop3watch(*base, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "up"
    assert " C: QUIT" in proc.stderr
    proc = pop3watch(*base, "--nagios")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("POP3 OK - ")
    assert proc.stdout.count("\n") == 1
    assert " C: QUIT" in proc.stderr
    plain = pop3watch(*base)  # alone, --diagnose still prints to stdout, then the line
    assert " C: QUIT" in plain.stdout
    assert plain.stdout.splitlines()[-1].startswith("UP ")


def test_nagios_without_a_greeting_has_no_time_perfdata(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """No greeting means no response time: time=0 would graph as the fastest answer yet."""
    plain = scripted(silent())
    proc = pop3watch(plain.host, "--port", str(plain.port), "--nagios", "--timeout", "0.5")
    assert proc.returncode == 2
    assert proc.stdout.startswith("POP3 CRITICAL - timeout: ")
    assert "|" not in proc.stdout  # nothing was measured at all
    tls = scripted(silent(), tls_context=certs.good)  # a certificate, then silence
    proc = pop3watch(
        tls.host, "--port", str(tls.port), "--tls", "tls", "--ca-file", str(certs.ca_file),
        "--nagios", "--timeout", "0.5",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "time=" not in proc.stdout
    perfdata = proc.stdout.rstrip("\n")
    assert re.search(r"\|cert_days=\d+;14:;;; chain_days=\d+;14:;;;$", perfdata), proc.stdout


def test_fingerprint_pins_the_certificate(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.self_signed)
    base = [srv.host, "--port", str(srv.port), "--tls", "tls"]
    sha = certs.self_signed_sha256
    colons = ":".join(sha[i : i + 2] for i in range(0, 64, 2)).upper()  # as openssl prints it
    proc = pop3watch(*base, "--fingerprint", colons)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("UP ")
    proc = pop3watch(*base, "--fingerprint", certs.good_sha256, "--json")
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], error["phase"]) == ("cert_invalid", "tls")
    assert "pin mismatch" in error["message"]
    proc = pop3watch(*base, "--fingerprint", "not-a-fingerprint")
    assert proc.returncode == 3
    assert "fingerprint" in proc.stderr


def test_no_verify_accepts_a_self_signed_certificate_as_unverified(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.self_signed)
    base = [srv.host, "--port", str(srv.port), "--tls", "tls"]
    refused = pop3watch(*base)
    assert refused.returncode == 2
    assert "cert_invalid" in refused.stdout
    proc = pop3watch(*base, "--no-verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.match(r"UP .* TLSv1\.[23], cert \d+ days UNVERIFIED$", proc.stdout.rstrip("\n"))
    proc = pop3watch(*base, "--no-verify", "--nagios")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r", certificate UNVERIFIED, expires in \d+ days\|", proc.stdout)
    assert "certificate valid" not in proc.stdout


def test_cert_warn_days_sets_when_an_expiring_certificate_warns(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.expiring_soon)  # 5 days left
    base = [srv.host, "--port", str(srv.port), "--tls", "tls", "--ca-file", str(certs.ca_file)]
    proc = pop3watch(*base)  # the default, 14 days
    assert proc.returncode == 1
    assert proc.stdout.startswith("WARN ")
    assert " - cert_expiring: " in proc.stdout
    proc = pop3watch(*base, "--cert-warn-days", "3")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("UP ")
    proc = pop3watch(*base, "--cert-warn-days", "7", "--nagios")
    assert proc.returncode == 1
    assert proc.stdout.startswith("POP3 WARNING - cert_expiring: ")
    assert "cert_days=5;7:;;;" in proc.stdout


def test_an_intermediate_expiring_before_the_leaf_is_shown_and_warned_about(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.expiring_intermediate)
    base = [srv.host, "--port", str(srv.port), "--tls", "tls", "--ca-file", str(certs.ca_file)]
    proc = pop3watch(*base)
    assert proc.returncode == 1, proc.stdout
    assert re.match(
        r"WARN .* cert 89 days \(chain 5 days\) - cert_expiring: .*"
        r"the chain's CN=Short Intermediate: 5 days left",
        proc.stdout,
    ), proc.stdout
    proc = pop3watch(*base, "--cert-warn-days", "3", "--nagios")
    assert proc.returncode == 0, proc.stdout
    assert ", certificate valid 89 days, its chain 5 days (CN=Short Intermediate)|" in proc.stdout
    assert "cert_days=89;3:;;; chain_days=5;3:;;;" in proc.stdout
    chain = json.loads(pop3watch(*base, "--json").stdout)["tls"]["chain_expiry"]
    assert chain["subject"] == "CN=Short Intermediate" and chain["days_left"] == 5


def test_warn_exits_1_in_default_mode(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script(greeting_delay=0.2))
    proc = pop3watch(srv.host, "--port", str(srv.port), "--warn-rtt-ms", "50")
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.startswith("WARN ")
    assert " - slow_response: " in proc.stdout


def login_args(srv: ScriptedServer) -> list[str]:
    return [
        srv.host, "--port", str(srv.port), "--auth", "user", "--user", "alice",
        "--allow-plaintext-auth",
    ]  # fmt: skip


def test_password_file(scripted: ScriptedFactory, tmp_path: Path) -> None:
    """The file's final newline is not part of the password."""
    srv = scripted(Pop3Script())
    path = tmp_path / "password"
    path.write_text("wonderland\n")
    proc = pop3watch(*login_args(srv), "--password-file", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert srv.wait_idle()
    assert b"PASS wonderland" in [r.line for r in srv.received]
    assert "wonderland" not in proc.stdout + proc.stderr


def test_password_command(scripted: ScriptedFactory, tmp_path: Path) -> None:
    """The command prints the secret; the command line does not hold it."""
    srv = scripted(Pop3Script())
    helper = tmp_path / "print_password.py"
    helper.write_text("print('wonder' + 'land')\n")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(helper))}"
    proc = pop3watch(*login_args(srv), "--password-command", command)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert srv.wait_idle()
    assert b"PASS wonderland" in [r.line for r in srv.received]


def test_password_env_and_file_together_exit_3(scripted: ScriptedFactory, tmp_path: Path) -> None:
    srv = scripted(Pop3Script())
    path = tmp_path / "password"
    path.write_text("wonderland\n")
    proc = pop3watch(
        *login_args(srv), "--password-env", "P3W_CLI_PW", "--password-file", str(path),
        env={"P3W_CLI_PW": "wonderland"},
    )  # fmt: skip
    assert proc.returncode == 3
    assert "at most one of password_env, password_file, password_command" in proc.stderr
    assert srv.connections == 0


def test_nagios_mailbox_perfdata_carries_its_thresholds(scripted: ScriptedFactory) -> None:
    """A graphing front end draws the warn and crit lines from the perfdata."""
    srv = scripted(Pop3Script())
    proc = pop3watch(
        *login_args(srv), "--password-env", "P3W_CLI_PW", "--stat", "--nagios",
        "--warn-messages", "1", "--down-messages", "50", "--down-octets", "100",
        env={"P3W_CLI_PW": "wonderland"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("POP3 CRITICAL - mailbox_threshold: ")
    assert " messages=2;1;50;0; octets=320B;;100;0;" in proc.stdout


def test_a_password_file_that_never_ends_cannot_outlast_the_timeout(
    scripted: ScriptedFactory, tmp_path: Path
) -> None:
    """A pipe whose writer never writes: the check ends at its deadline, and so does the
    process (a thread stuck in read() would keep it alive)."""
    srv = scripted(Pop3Script())
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        started = time.monotonic()
        proc = pop3watch(*login_args(srv), "--password-file", str(fifo), "--timeout", "1")
        assert time.monotonic() - started < 8  # interpreter start-up included
    finally:
        os.close(writer)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert " - timeout: " in proc.stdout
    assert srv.connections == 0


def test_a_fault_of_pop3watch_itself_is_unknown_not_down(tmp_path: Path) -> None:
    """A bug in the check (here: one injected) is not a verdict on the server: exit 3
    (UNKNOWN for Nagios), with the output's usual shape and no traceback."""
    runner = tmp_path / "faulty.py"
    runner.write_text(
        "import sys\n"
        "from pop3watch.cli import main\n"
        "async def broken(settings):\n"
        "    raise RuntimeError('a bug')\n"
        "sys.modules['pop3watch.cli.check'].check_pop3 = broken\n"
        "main(sys.argv[1:])\n"
    )
    for output, first in (("--nagios", "POP3 UNKNOWN - internal_error: "), ("", "DOWN ")):
        proc = subprocess.run(
            [sys.executable, str(runner), "check", "127.0.0.1", *([output] if output else [])],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert proc.stdout.startswith(first), proc.stdout
        assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, str(runner), "check", "127.0.0.1", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 3
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "internal_error"
    assert "RuntimeError" in error["message"]
