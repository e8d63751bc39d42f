"""`pop3watch check` as users run it: a subprocess, its output and its exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.fixtures.certs import CertBundle
from tests.fixtures.dovecot import DovecotServer
from tests.fixtures.scripted import Pop3Script, ScriptedFactory


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
        r"\|time=\d+\.\d{6}s;;;0\.000000;7\.000000 cert_days=\d+;14;;;\n",
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
    ],
)
def test_bad_configuration_exits_3(args: list[str], message: str) -> None:
    proc = pop3watch("127.0.0.1", *args)
    assert proc.returncode == 3
    assert message in proc.stderr


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
