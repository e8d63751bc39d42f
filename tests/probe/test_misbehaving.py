"""The check against a scripted server that misbehaves one way per test.

Every row of the verdict table is produced here, plus the hostile behaviours no real
server shows. After each check the server's log proves that no DELE was sent and that no
credential crossed in clear text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import shlex
import socket
import ssl
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from pop3watch.pop3 import Limits, Pop3Connection
from pop3watch.pop3.sasl import MAX_SCRAM_ITERATIONS
from pop3watch.probe import (
    CheckResult,
    CheckSettings,
    KeepTranscript,
    Status,
    check_pop3,
    run_probe,
)
from tests.fixtures.certs import CertBundle, server_context
from tests.fixtures.scripted import (
    CRAM_MD5_CHALLENGE,
    DEFAULT_CAPABILITIES,
    DEFAULT_GREETING,
    Pop3Script,
    ScriptedFactory,
    ScriptedServer,
    close_mid_line,
    drip,
    garbage,
    http_banner,
    huge_line,
    reset_mid_greeting,
    reset_on_connect,
    silent,
    smtp_banner,
)

PASSWORD = "wonderland"
TOKEN = "ya29.good-token"
WRONG = "not-wonderland"  # used both as a wrong password and as a wrong token
SECRETS = (PASSWORD, TOKEN, WRONG)
_APOP_TIMESTAMP = DEFAULT_GREETING[DEFAULT_GREETING.index(b"<") : DEFAULT_GREETING.index(b">") + 1]


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _password_forms(secret: bytes) -> list[bytes]:
    """What each password mechanism puts on the wire (APOP and CRAM-MD5 send digests,
    which are credentials too: MD5 is cracked offline)."""
    cram = hmac.new(secret, CRAM_MD5_CHALLENGE, hashlib.md5).hexdigest().encode()
    return [
        secret,  # PASS
        _b64(secret),  # SASL LOGIN's second answer
        _b64(b"\0alice\0" + secret),  # SASL PLAIN
        hashlib.md5(_APOP_TIMESTAMP + secret).hexdigest().encode(),  # APOP
        _b64(b"alice " + cram),  # SASL CRAM-MD5
    ]


#: Every wire form of every secret the tests use that does not depend on the target.
SECRET_FORMS = [
    form
    for secret in SECRETS
    for form in (
        *_password_forms(secret.encode()),
        _b64(f"user=alice\x01auth=Bearer {secret}\x01\x01".encode()),  # XOAUTH2
    )
]


def secret_forms(host: str, port: int) -> list[bytes]:
    """``SECRET_FORMS`` plus OAUTHBEARER's initial response, which names the target."""
    return SECRET_FORMS + [
        _b64(f"n,a=alice,\x01host={host}\x01port={port}\x01auth=Bearer {secret}\x01\x01".encode())
        for secret in SECRETS
    ]


def assert_no_secret_in_clear(srv: ScriptedServer, host: str, port: int) -> None:
    """No known wire form of a secret crossed in clear text, and no base64 word of a
    clear-text line decodes to anything holding a secret (an encoding we did not list)."""
    clear = srv.sent_before_tls()
    for form in secret_forms(host, port):
        assert form not in clear
    for word in clear.split():
        try:
            decoded = base64.b64decode(word, validate=True)
        except (binascii.Error, ValueError):
            continue
        assert not any(secret.encode() in decoded for secret in SECRETS)


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTED_PW", PASSWORD)
    monkeypatch.setenv("SCRIPTED_TOKEN", TOKEN)
    monkeypatch.setenv("SCRIPTED_WRONG", WRONG)


async def run(srv: ScriptedServer, **kw: Any) -> CheckResult:
    settings = CheckSettings(**({"host": srv.host, "port": srv.port, "timeout": 5} | kw))
    result = await check_pop3(settings)
    await asyncio.to_thread(srv.wait_idle)
    assert "DELE" not in srv.commands()
    if not settings.allow_plaintext_auth:
        assert_no_secret_in_clear(srv, settings.host, settings.effective_port)
    dump = result.model_dump_json()
    for secret in SECRETS:
        assert secret not in dump
    return result


def code(result: CheckResult) -> tuple[str | None, str | None]:
    return (result.error.code, result.error.phase) if result.error else (None, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def login(srv: ScriptedServer, certs: CertBundle, **kw: Any) -> CheckResult:
    """A check that logs in over STLS as alice (USER/PASS unless ``kw`` says otherwise)."""
    base: dict[str, Any] = {
        "tls": "starttls",
        "ca_file": certs.ca_file,
        "auth": "user",
        "user": "alice",
        "password_env": "SCRIPTED_PW",
    }
    return await run(srv, **(base | kw))


async def plain_login(srv: ScriptedServer, **kw: Any) -> CheckResult:
    """A check that logs in as alice without TLS, as its owner allowed (USER/PASS unless
    ``kw`` says otherwise)."""
    base: dict[str, Any] = {
        "auth": "user",
        "user": "alice",
        "password_env": "SCRIPTED_PW",
        "allow_plaintext_auth": True,
    }
    return await run(srv, **(base | kw))


def tls_script(certs: CertBundle, **kw: Any) -> Pop3Script:
    return Pop3Script(tls_context=certs.good, **kw)


# --- config, DNS, connect ------------------------------------------------------------


async def test_config_missing_connects_nowhere(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script())
    result = await run(srv, auth="user", user="alice", password_env="POP3WATCH_NOT_SET")
    assert code(result) == ("config_missing", "config")
    assert srv.connections == 0


#: A secret with a line break would smuggle a command of its own after PASS.
UNSAFE_SECRET = "hunter2\r\nDELE 1"
#: Every auth mode, with the secret it reads ("password" or "token").
AUTH_MODES = [
    pytest.param({"auth": "user"}, "password", id="user"),
    pytest.param({"auth": "apop"}, "password", id="apop"),
    pytest.param({"auth": "sasl", "sasl_mechanism": "PLAIN"}, "password", id="plain"),
    pytest.param({"auth": "sasl", "sasl_mechanism": "LOGIN"}, "password", id="login"),
    pytest.param({"auth": "sasl", "sasl_mechanism": "CRAM-MD5"}, "password", id="cram-md5"),
    pytest.param(
        {"auth": "sasl", "sasl_mechanism": "SCRAM-SHA-256"}, "password", id="scram-sha-256"
    ),
    pytest.param({"auth": "sasl", "sasl_mechanism": "XOAUTH2"}, "token", id="xoauth2"),
    pytest.param({"auth": "sasl", "sasl_mechanism": "OAUTHBEARER"}, "token", id="oauthbearer"),
]


def secret_source(
    kind: str, how: str, value: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Settings that make the check read ``value`` as its ``kind`` ("password" or
    "token") from the environment, a file or a command (both written with a final
    newline, as tools write them)."""
    if how == "env":
        monkeypatch.setenv("SCRIPTED_SECRET", value.decode())
        return {f"{kind}_env": "SCRIPTED_SECRET"}
    path = tmp_path / "secret"
    path.write_bytes(value + b"\n")
    if how == "file":
        return {f"{kind}_file": path}
    script = tmp_path / "print_secret.py"
    script.write_text(f"import sys\nsys.stdout.buffer.write(open({str(path)!r}, 'rb').read())\n")
    return {f"{kind}_command": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"}


@pytest.mark.parametrize(
    ("how", "value"),
    [
        ("env", UNSAFE_SECRET),
        ("env", "hunter2\nDELE 1"),
        ("file", "hunter2\rDELE 1"),  # a lone CR: not a line end, and not sent either
        ("file", "hunter2\0DELE 1"),
        ("command", "hunter2\r\x00DELE 1"),
    ],
)
@pytest.mark.parametrize(("mode", "kind"), AUTH_MODES)
async def test_cr_lf_nul_in_a_secret_is_refused_before_connecting(
    scripted: ScriptedFactory,
    certs: CertBundle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mode: dict[str, str],
    kind: str,
    how: str,
    value: str,
) -> None:
    """Refused while the secret is read (phase config): no connection is even made, so
    neither CAPA nor ``USER alice`` nor a base64 answer carrying the CR/LF is sent."""
    srv = scripted(tls_script(certs))
    source = secret_source(kind, how, value.encode(), tmp_path, monkeypatch)
    result = await login(srv, certs, **({"password_env": None} | mode | source))
    assert code(result) == ("config_invalid", "config")
    assert result.error is not None
    assert "CR, LF or NUL" in result.error.message
    assert srv.connections == 0
    assert srv.received == []
    assert result.address is None
    assert [line.dir for line in result.transcript] == ["*"]  # only the verdict note
    assert "hunter2" not in result.model_dump_json()


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize("how", ["env", "command"])
async def test_a_token_holding_the_sasl_field_separator_is_refused_before_connecting(
    scripted: ScriptedFactory,
    certs: CertBundle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mechanism: str,
    how: str,
) -> None:
    """^A ends a field in XOAUTH2/OAUTHBEARER: a token holding one would smuggle in a
    field of its own, so it is refused like CR/LF, before anything is sent."""
    srv = scripted(tls_script(certs))
    source = secret_source("token", how, b"ya29.abc\x01auth=Bearer x", tmp_path, monkeypatch)
    mode = {"auth": "sasl", "sasl_mechanism": mechanism, "password_env": None}
    result = await login(srv, certs, **(mode | source))
    assert code(result) == ("config_invalid", "config")
    assert srv.connections == 0
    assert "ya29" not in result.model_dump_json()


async def test_dns_failed() -> None:
    result = await check_pop3(CheckSettings(host="no-such-host.invalid", port=110))
    assert code(result) == ("dns_failed", "dns")


async def test_connect_failed() -> None:
    result = await check_pop3(CheckSettings(host="127.0.0.1", port=free_port()))
    assert code(result) == ("connect_failed", "connect")
    assert "Connection refused" in (result.error.message if result.error else "")


# --- timeouts and disconnects -----------------------------------------------------------


async def test_silent_server_times_out_in_greeting(scripted: ScriptedFactory) -> None:
    srv = scripted(silent())
    start = time.monotonic()
    result = await run(srv, timeout=0.5)
    assert code(result) == ("timeout", "greeting")
    assert "phase: greeting" in (result.error.message if result.error else "")
    assert time.monotonic() - start < 3


async def test_drip_server_cannot_hold_the_check_past_its_deadline(
    scripted: ScriptedFactory,
) -> None:
    srv = scripted(drip(interval=0.1))
    start = time.monotonic()
    result = await run(srv, timeout=1.0)
    assert code(result) == ("timeout", "greeting")
    assert time.monotonic() - start < 3


async def test_drip_within_deadline_passes(scripted: ScriptedFactory) -> None:
    srv = scripted(drip(interval=0.001))
    result = await run(srv, timeout=10)
    assert result.status is Status.UP, result.error


async def test_close_mid_line_is_disconnected(scripted: ScriptedFactory) -> None:
    result = await run(scripted(close_mid_line()))
    assert code(result) == ("disconnected", "greeting")


async def test_rst_on_connect_is_disconnected(scripted: ScriptedFactory) -> None:
    """Deterministic, not a race (7,000 runs on both loops, some under load, agreed).
    The kernel completes the TCP handshake before the server process even accept()s, so
    the RST always follows an established connection. A blocking connect() can still
    report it (the fixture's own test sees that); the check's connect is non-blocking and
    returns EINPROGRESS at once, and when the RST lands before the client looks at the
    socket, the stream finds ECONNRESET in SO_ERROR and counts the connection as made,
    the failure belonging to the next phase. Otherwise the greeting's read gets the reset.
    Either way: disconnected, in the greeting phase."""
    result = await run(scripted(reset_on_connect()))
    assert code(result) == ("disconnected", "greeting")
    assert result.address == "127.0.0.1"


async def test_rst_mid_greeting_is_disconnected(scripted: ScriptedFactory) -> None:
    result = await run(scripted(reset_mid_greeting()))
    assert code(result) == ("disconnected", "greeting")
    assert "reset" in (result.error.message if result.error else "")


#: A command, the phase its answer belongs to, and the login that gets there.
PHASE_OF_COMMAND = [
    pytest.param("CAPA", "capa", {}, id="capa"),
    pytest.param("STLS", "starttls", {}, id="stls"),
    pytest.param("USER", "auth", {}, id="user"),
    pytest.param("PASS", "auth", {}, id="pass"),
    pytest.param("AUTH", "auth", {"auth": "sasl", "sasl_mechanism": "PLAIN"}, id="auth"),
    pytest.param("STAT", "stat", {}, id="stat"),
    pytest.param("QUIT", "quit", {}, id="quit"),
]


@pytest.mark.parametrize(("verb", "phase", "extra"), PHASE_OF_COMMAND)
async def test_silence_after_a_command_times_out_in_its_phase(
    scripted: ScriptedFactory, certs: CertBundle, verb: str, phase: str, extra: dict[str, str]
) -> None:
    srv = scripted(tls_script(certs, stall=frozenset({verb})))
    start = time.monotonic()
    result = await login(srv, certs, stat=True, timeout=1.0, **extra)
    assert code(result) == ("timeout", phase)
    assert f"phase: {phase}" in (result.error.message if result.error else "")
    assert srv.commands()[-1] == verb  # nothing after it: the session was dropped
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize(("verb", "phase", "extra"), PHASE_OF_COMMAND)
async def test_hang_up_after_a_command_is_disconnected_in_its_phase(
    scripted: ScriptedFactory,
    certs: CertBundle,
    verb: str,
    phase: str,
    extra: dict[str, str],
    how: Literal["close", "reset"],
) -> None:
    srv = scripted(tls_script(certs, hang_up={verb: how}))
    result = await login(srv, certs, stat=True, **extra)
    assert code(result) == ("disconnected", phase)
    assert srv.commands()[-1] == verb


# --- protocol violations -----------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario", [smtp_banner(), http_banner(), garbage(seed=1), garbage(seed=2)]
)
async def test_foreign_or_garbage_banner(scripted: ScriptedFactory, scenario: Any) -> None:
    result = await run(scripted(scenario))
    assert code(result) == ("protocol_violation", "greeting")


async def test_ten_megabytes_without_crlf_stops_at_the_line_limit(
    scripted: ScriptedFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core never holds more than one line's limit plus the read that crossed it, and
    the check hangs up after reading a small part of the 10 MB. The real core and server
    run; ``receive_data`` is only wrapped to record what the core holds after each read."""
    feeds: list[tuple[int, int]] = []  # (octets fed, octets the core then holds)
    receive_data = Pop3Connection.receive_data

    def recording(self: Pop3Connection, data: bytes) -> None:
        receive_data(self, data)
        feeds.append((len(data), self.pending_octets))

    monkeypatch.setattr(Pop3Connection, "receive_data", recording)
    result = await run(scripted(huge_line()))
    assert code(result) == ("protocol_violation", "greeting")
    assert "longer than" in (result.error.message if result.error else "")
    max_line = Limits().max_line
    assert feeds
    for size, held in feeds:
        assert held <= max_line + size
    assert sum(size for size, _ in feeds) < 2**20  # of 10 MiB sent


async def test_malformed_stat_answer(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(tls_script(certs, overrides={"STAT": b"+OK lots\r\n"}))
    result = await login(srv, certs, stat=True)
    assert code(result) == ("protocol_violation", "stat")
    assert srv.commands()[-1] == "QUIT"


async def test_control_characters_are_escaped(scripted: ScriptedFactory) -> None:
    result = await run(scripted(Pop3Script(greeting=b"+OK hi \x1b[31mred\x07 <a@b>\r\n")))
    assert result.status is Status.UP
    assert result.greeting is not None
    assert "\x1b" not in result.greeting
    assert "\\x1b" in result.greeting
    assert all("\x1b" not in line.text for line in result.transcript)


async def test_capabilities_are_escaped(scripted: ScriptedFactory) -> None:
    caps = [b"USER", b"IMPLEMENTATION \x1b[31mred\x07", "X-FLIP \u202eevil".encode()]
    result = await run(scripted(Pop3Script(capabilities=caps)))
    assert result.status is Status.UP, result.error
    assert result.capabilities == ["USER", "IMPLEMENTATION \\x1b[31mred\\x07", "X-FLIP \\u202eevil"]


# --- -ERR answers ---------------------------------------------------------------------------


async def test_err_greeting_is_service_unavailable(scripted: ScriptedFactory) -> None:
    result = await run(scripted(Pop3Script(greeting=b"-ERR [SYS/TEMP] down for maintenance\r\n")))
    assert code(result) == ("service_unavailable", "greeting")
    assert "[SYS/TEMP] down for maintenance" in (result.error.message if result.error else "")


async def test_err_quit_is_service_unavailable(scripted: ScriptedFactory) -> None:
    result = await run(scripted(Pop3Script(quit_response=b"-ERR [SYS/PERM] cannot update\r\n")))
    assert code(result) == ("service_unavailable", "quit")


# --- TLS ------------------------------------------------------------------------------------


async def test_stls_not_offered(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(tls_script(certs, capabilities=[b"USER", b"SASL PLAIN"]))
    result = await login(srv, certs)
    assert code(result) == ("tls_unavailable", "starttls")
    assert srv.commands() == ["CAPA", "QUIT"]


async def test_stls_refused(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(tls_script(certs, stls="refuse"))
    result = await login(srv, certs)
    assert code(result) == ("tls_unavailable", "starttls")
    assert srv.commands() == ["CAPA", "STLS", "QUIT"]


async def test_starttls_if_available_goes_on_in_plain_text_without_credentials(
    scripted: ScriptedFactory,
) -> None:
    srv = scripted(Pop3Script(capabilities=[b"USER"]))
    result = await run(srv, tls="starttls-if-available")
    assert result.status is Status.UP
    assert result.tls is None
    refused = await run(
        srv, tls="starttls-if-available", auth="user", user="alice", password_env="SCRIPTED_PW"
    )
    assert code(refused) == ("insecure_auth_refused", "auth")


@pytest.mark.parametrize(
    ("script", "commands"),
    [
        pytest.param({"stls": "refuse"}, ["CAPA", "STLS", "QUIT"], id="refused"),
        pytest.param({"capabilities": [b"USER"]}, ["CAPA", "QUIT"], id="not-advertised"),
        # No CAPA to go by: the check asks STLS, which an old server without TLS refuses.
        pytest.param(
            {"capa_supported": False, "tls_context": None}, ["CAPA", "STLS", "QUIT"], id="no-capa"
        ),
    ],
)
async def test_starttls_if_available_without_stls_continues_in_plain_text(
    scripted: ScriptedFactory, certs: CertBundle, script: dict[str, Any], commands: list[str]
) -> None:
    srv = scripted(Pop3Script(**({"tls_context": certs.good} | script)))
    result = await run(srv, tls="starttls-if-available", ca_file=certs.ca_file)
    assert result.status is Status.UP, result.error
    assert result.tls is None
    assert srv.commands() == commands
    assert any("continuing in plain text" in line.text for line in result.transcript)


async def test_stls_injection_is_detected(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(tls_script(certs, stls="inject"))
    result = await login(srv, certs)
    assert code(result) == ("starttls_injection", "starttls")
    assert srv.commands() == ["CAPA", "STLS"]


async def test_stls_injection_in_a_later_packet_is_detected_too(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """The injected line arrives after the client has started its handshake, so it is
    read as a TLS record, not found in the buffer: still an injection, not "no TLS"."""
    srv = scripted(tls_script(certs, stls="inject-late"))
    result = await login(srv, certs)
    assert code(result) == ("starttls_injection", "starttls")
    assert srv.commands() == ["CAPA", "STLS"]


async def test_post_tls_capabilities_replace_pre_tls_ones(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    script = tls_script(
        certs,
        capabilities=[b"STLS", b"SASL PLAIN", b"IMPLEMENTATION plaintext-side"],
        capabilities_after_tls=[b"USER", b"SASL XOAUTH2", b"IMPLEMENTATION tls-side"],
    )
    srv = scripted(script)
    result = await login(srv, certs, auth="sasl", password_env=None, token_env="SCRIPTED_TOKEN")
    assert result.status is Status.UP, result.error
    assert result.capabilities == ["USER", "SASL XOAUTH2", "IMPLEMENTATION tls-side"]
    assert result.auth_mechanism == "SASL XOAUTH2"
    assert srv.commands()[:3] == ["CAPA", "STLS", "CAPA"]


async def test_implicit_tls_against_a_tls10_server_is_refused(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.tls10_only)
    result = await run(srv, tls="tls", ca_file=certs.ca_file)
    assert code(result) == ("tls_failed", "tls")
    assert "below 1.2" in (result.error.message if result.error else "")


async def test_implicit_tls_against_plain_server_fails(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script())
    result = await run(srv, tls="tls")
    assert code(result) == ("tls_failed", "tls")


async def test_tls_if_available_falls_back_only_when_the_server_speaks_no_tls(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    plain = scripted(Pop3Script())
    result = await run(plain, tls="tls-if-available")
    assert result.status is Status.UP, result.error
    assert result.tls is None
    assert plain.connections == 2
    assert any("falling back" in line.text for line in result.transcript)
    # A TLS server with a bad certificate is not "no TLS": no fallback there.
    expired = scripted(Pop3Script(), tls_context=certs.expired)
    bad = await run(expired, tls="tls-if-available", ca_file=certs.ca_file)
    assert code(bad) == ("cert_invalid", "tls")
    assert expired.connections == 1


@pytest.mark.parametrize(
    ("context_name", "reason"),
    [
        ("expired", "expired"),
        ("not_yet_valid", "not yet valid"),
        ("wrong_host", "mismatch"),
        ("self_signed", "self-signed"),
    ],
)
async def test_bad_certificates_are_cert_invalid(
    scripted: ScriptedFactory, certs: CertBundle, context_name: str, reason: str
) -> None:
    srv = scripted(Pop3Script(tls_context=getattr(certs, context_name)))
    result = await login(srv, certs)
    assert code(result) == ("cert_invalid", "tls")
    assert reason in (result.error.message if result.error else "")
    assert "USER" not in srv.commands()


async def test_self_signed_with_matching_pin_is_up(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.self_signed)
    result = await run(srv, tls="tls", fingerprint=certs.self_signed_sha256)
    assert result.status is Status.UP, result.error
    assert result.tls is not None
    assert result.tls.cert is not None
    assert result.tls.cert.fingerprint_sha256 == certs.self_signed_sha256


async def test_pin_mismatch_is_cert_invalid(scripted: ScriptedFactory, certs: CertBundle) -> None:
    """A certificate the CA vouches for is still refused when it is not the pinned one."""
    srv = scripted(Pop3Script(), tls_context=certs.good)
    result = await run(srv, tls="tls", ca_file=certs.ca_file, fingerprint=certs.self_signed_sha256)
    assert code(result) == ("cert_invalid", "tls")
    assert f"pin mismatch: the server presented {certs.good_sha256}" in (
        result.error.message if result.error else ""
    )
    assert srv.commands() == []
    stls = scripted(tls_script(certs))
    result = await login(stls, certs, fingerprint=certs.self_signed_sha256)
    assert code(result) == ("cert_invalid", "tls")
    assert "USER" not in stls.commands()


async def test_expiring_certificate_warns(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.expiring_soon)
    result = await run(srv, tls="tls", ca_file=certs.ca_file, cert_warn_days=14)
    assert result.status is Status.WARN
    assert code(result) == ("cert_expiring", "tls")
    assert result.tls is not None
    assert result.tls.cert is not None
    assert result.tls.cert.days_left == 5
    quiet = await run(srv, tls="tls", ca_file=certs.ca_file, cert_warn_days=3)
    assert quiet.status is Status.UP


async def test_no_verify_accepts_an_expired_cert_but_says_so(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.expired)
    result = await run(srv, tls="tls", verify=False)
    assert result.status is Status.WARN
    assert code(result) == ("cert_expiring", "tls")
    assert result.tls is not None
    assert result.tls.cert is not None
    assert result.tls.cert.verified is False
    assert result.tls.cert.days_left < 0


async def test_a_server_ignoring_close_notify_cannot_stretch_the_deadline(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """After QUIT the check says close_notify and waits for the server's side of the
    close, but only for what is left of its timeout (it used to wait a full second)."""
    srv = scripted(Pop3Script(linger_after_quit=5.0), tls_context=certs.good)
    timeout = 0.6
    settings = CheckSettings(
        host=srv.host, port=srv.port, tls="tls", ca_file=certs.ca_file, timeout=timeout
    )
    start = time.perf_counter()
    result = await check_pop3(settings)
    elapsed = time.perf_counter() - start
    assert result.status is Status.UP, result.error
    assert srv.commands() == ["CAPA", "QUIT"]
    assert elapsed > timeout - 0.1  # it did wait for the server that never closed
    assert elapsed < timeout + 0.1
    assert result.timings_ms.total < (timeout + 0.1) * 1000


# --- authentication -----------------------------------------------------------------------


async def test_apop_without_timestamp_is_unsupported(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script(greeting=b"+OK no timestamp here\r\n"))
    result = await plain_login(srv, auth="apop")
    assert code(result) == ("auth_unsupported", "auth")
    assert "APOP" not in srv.commands()


async def test_sasl_mechanism_not_offered(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(tls_script(certs, capabilities=[b"STLS", b"SASL PLAIN"]))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="CRAM-MD5")
    assert code(result) == ("auth_unsupported", "auth")
    assert "AUTH" not in srv.commands()


async def test_plaintext_credentials_are_never_sent(scripted: ScriptedFactory) -> None:
    for auth in ("user", "apop", "sasl"):
        srv = scripted(Pop3Script())
        result = await run(srv, auth=auth, user="alice", password_env="SCRIPTED_PW")
        assert code(result) == ("insecure_auth_refused", "auth")
        assert srv.commands() == ["CAPA", "QUIT"] if auth == "sasl" else ["QUIT"]


@pytest.mark.parametrize(
    ("auth", "extra"),
    [
        ("user", {"password_env": "SCRIPTED_PW"}),
        ("apop", {"password_env": "SCRIPTED_PW"}),
        ("sasl", {"password_env": "SCRIPTED_PW", "sasl_mechanism": "PLAIN"}),
        ("sasl", {"password_env": "SCRIPTED_PW", "sasl_mechanism": "LOGIN"}),
        ("sasl", {"password_env": "SCRIPTED_PW", "sasl_mechanism": "CRAM-MD5"}),
        ("sasl", {"token_env": "SCRIPTED_TOKEN", "sasl_mechanism": "XOAUTH2"}),
        ("sasl", {"token_env": "SCRIPTED_TOKEN", "sasl_mechanism": "OAUTHBEARER"}),
    ],
)
async def test_every_auth_mode_over_stls(
    scripted: ScriptedFactory, certs: CertBundle, auth: str, extra: dict[str, str]
) -> None:
    srv = scripted(tls_script(certs))
    result = await run(
        srv, tls="starttls", ca_file=certs.ca_file, auth=auth, user="alice", stat=True, **extra
    )
    assert result.status is Status.UP, result.error
    assert result.mailbox is not None
    assert (result.mailbox.messages, result.mailbox.octets) == (2, 320)
    # The forms the clear-text assertion looks for are the ones really sent (over TLS),
    # so that assertion cannot pass for want of knowing what to look for.
    over_tls = b"\r\n".join(r.line for r in srv.received if r.tls)
    assert any(form in over_tls for form in secret_forms(srv.host, srv.port))


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize("how", ["file", "command"])
async def test_bearer_token_from_a_file_or_a_command(
    scripted: ScriptedFactory,
    certs: CertBundle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mechanism: str,
    how: str,
) -> None:
    """The token is read as written by a tool (with its final newline) and logs in."""
    srv = scripted(tls_script(certs))
    source = secret_source("token", how, TOKEN.encode(), tmp_path, monkeypatch)
    settings = {"auth": "sasl", "sasl_mechanism": mechanism, "password_env": None} | source
    result = await login(srv, certs, **settings)
    assert result.status is Status.UP, result.error
    assert result.auth_mechanism == f"SASL {mechanism}"
    assert "AUTH" in srv.commands()


@pytest.mark.parametrize(
    ("auth", "extra"),
    [
        ("user", {"password_env": "SCRIPTED_WRONG"}),
        ("sasl", {"password_env": "SCRIPTED_WRONG", "sasl_mechanism": "CRAM-MD5"}),
        ("sasl", {"password_env": "SCRIPTED_WRONG", "sasl_mechanism": "SCRAM-SHA-256"}),
        ("sasl", {"token_env": "SCRIPTED_WRONG", "sasl_mechanism": "XOAUTH2"}),
        ("sasl", {"token_env": "SCRIPTED_WRONG", "sasl_mechanism": "OAUTHBEARER"}),
    ],
)
async def test_rejected_credentials_are_auth_failed(
    scripted: ScriptedFactory, certs: CertBundle, auth: str, extra: dict[str, str]
) -> None:
    srv = scripted(tls_script(certs))
    result = await login(srv, certs, auth=auth, **extra)
    assert code(result) == ("auth_failed", "auth")
    assert srv.commands()[-1] == "QUIT"


async def test_scram_logs_in_and_proves_the_server_knows_the_password(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(tls_script(certs))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="SCRAM-SHA-256", stat=True)
    assert result.status is Status.UP, result.error
    assert result.auth_mechanism == "SASL SCRAM-SHA-256"
    # Over TLS too, no wire form of the password is sent: only a proof derived from it.
    over_tls = b"\r\n".join(r.line for r in srv.received if r.tls)
    assert b"AUTH SCRAM-SHA-256 " in over_tls
    assert not any(form in over_tls for form in secret_forms(srv.host, srv.port))
    for word in over_tls.split():
        with contextlib.suppress(binascii.Error, ValueError):
            assert PASSWORD.encode() not in base64.b64decode(word, validate=True)


async def test_scram_refuses_a_server_that_cannot_sign(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """A server (or a man in the middle with a trusted certificate) that takes any proof
    but cannot prove it knows the password is not logged in to: the check cancels the
    exchange with ``*`` instead of answering the bogus signature. The credentials were
    not refused, so it is no auth_failed: the server broke the mechanism."""
    srv = scripted(tls_script(certs, scram="impostor"))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="SCRAM-SHA-256", stat=True)
    assert code(result) == ("protocol_violation", "auth")
    assert result.error is not None and "signature is wrong" in result.error.message
    assert srv.commands()[-2:] == ["*", "QUIT"]
    assert "STAT" not in srv.commands()
    # The bogus signature is scrubbed from the transcript like a good one.
    texts = [line.text for line in result.transcript]
    assert "+ ***" in texts


@pytest.mark.parametrize(
    ("mode", "match"),
    [("bad-nonce", "does not extend"), ("malformed-final", "a=value")],
)
async def test_scram_a_server_breaking_the_mechanism_is_a_protocol_violation(
    scripted: ScriptedFactory, certs: CertBundle, mode: str, match: str
) -> None:
    srv = scripted(tls_script(certs, scram=mode))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="SCRAM-SHA-256", stat=True)
    assert code(result) == ("protocol_violation", "auth")
    assert result.error is not None and match in result.error.message
    assert srv.commands()[-2:] == ["*", "QUIT"]
    if mode == "malformed-final":
        # A signature in a malformed message is a signature still: scrubbed.
        server_lines = [line.text for line in result.transcript if line.dir == "S"]
        assert "+ ***" in server_lines
        assert not any(text.startswith("+ v=") for text in server_lines)


async def test_scram_without_the_server_signature_is_a_protocol_violation(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(tls_script(certs, scram="skip-final"))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="SCRAM-SHA-256", stat=True)
    assert code(result) == ("protocol_violation", "auth")
    assert result.error is not None and "without proving" in result.error.message
    assert "STAT" not in srv.commands()
    assert srv.commands()[-1] == "QUIT"


async def test_scram_iteration_count_beyond_the_bound_is_not_computed(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """A hostile server cannot make the check burn CPU on PBKDF2 rounds: a count above
    MAX_SCRAM_ITERATIONS is refused (auth_unsupported) and nothing is derived."""
    srv = scripted(tls_script(certs, scram_iterations=MAX_SCRAM_ITERATIONS + 1))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="SCRAM-SHA-256")
    assert code(result) == ("auth_unsupported", "auth")
    assert result.error is not None and "iterations" in result.error.message
    # Cancelled in answer to the server-first message: no proof was computed or sent.
    assert srv.commands()[-3:] == ["AUTH", "*", "QUIT"]


async def test_locked_mailbox(scripted: ScriptedFactory, certs: CertBundle) -> None:
    srv = scripted(tls_script(certs, locked_users={"alice"}))
    result = await login(srv, certs)
    assert code(result) == ("mailbox_locked", "auth")


async def test_sys_temp_at_login_is_service_unavailable(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(tls_script(certs, overrides={"PASS": b"-ERR [SYS/TEMP] try later\r\n"}))
    result = await login(srv, certs)
    assert code(result) == ("service_unavailable", "auth")


@pytest.mark.parametrize(
    ("verb", "extra"),
    [("PASS", {}), ("AUTH", {"auth": "sasl", "sasl_mechanism": "PLAIN"})],
)
async def test_login_delay_is_auth_failed(
    scripted: ScriptedFactory, certs: CertBundle, verb: str, extra: dict[str, str]
) -> None:
    """RFC 2449 [LOGIN-DELAY]: the credentials may be right, but this login is refused;
    the message says so, with the delay the server's CAPA advertises."""
    answer = b"-ERR [LOGIN-DELAY] wait 5 minutes\r\n"
    capabilities = [*DEFAULT_CAPABILITIES, b"LOGIN-DELAY 300"]
    srv = scripted(tls_script(certs, overrides={verb: answer}, capabilities=capabilities))
    result = await login(srv, certs, **extra)
    assert code(result) == ("auth_failed", "auth")
    message = result.error.message if result.error else ""
    assert message.endswith("[LOGIN-DELAY] wait 5 minutes")
    assert "refuses a login this soon after the last one (it allows one every 300 s)" in message
    assert "the password may be right" in message
    assert srv.commands()[-1] == "QUIT"


async def test_unexpected_sasl_challenge_is_cancelled(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(tls_script(certs, overrides={"AUTH": b"+ c3VycHJpc2U=\r\n"}))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="PLAIN")
    assert code(result) == ("auth_failed", "auth")
    assert "*" in srv.commands()


async def test_server_echoing_the_password_is_redacted(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(tls_script(certs, overrides={"PASS": b"-ERR wrong password wonderland\r\n"}))
    result = await login(srv, certs)
    assert code(result) == ("auth_failed", "auth")
    assert "***" in (result.error.message if result.error else "")


async def test_a_two_character_password_echoed_by_the_server_is_redacted(
    scripted: ScriptedFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIPTED_SHORT", "Qz")
    srv = scripted(Pop3Script(overrides={"PASS": b"-ERR wrong password Qz for alice\r\n"}))
    result = await plain_login(srv, password_env="SCRIPTED_SHORT")
    assert code(result) == ("auth_failed", "auth")
    assert (result.error.message if result.error else "").endswith("wrong password *** for alice")
    assert "S: -ERR wrong password *** for alice" in [
        f"{line.dir}: {line.text}" for line in result.transcript
    ]
    assert "Qz" not in result.model_dump_json()


@pytest.mark.parametrize(
    "password",
    [
        "back\\slash-pw",  # repr() would double the backslash
        "it's-my-\"pw",  # repr() would escape a quote
        "supersecretpassword123",  # lies across the 60-character cut of the message
    ],
)
async def test_a_password_echoed_in_a_malformed_answer_is_redacted_whole(
    scripted: ScriptedFactory, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    """A line that is neither +OK nor -ERR is quoted in the message and kept in the
    transcript, but only after the password in it was replaced, so neither escaping nor
    shortening can leave a piece of it behind."""
    monkeypatch.setenv("SCRIPTED_ECHO", password)
    answer = b"WHAT " + b"X" * 50 + password.encode() + b"\r\n"
    srv = scripted(Pop3Script(overrides={"PASS": answer}))
    result = await plain_login(srv, password_env="SCRIPTED_ECHO")
    assert code(result) == ("protocol_violation", "auth")
    assert result.error is not None
    assert result.error.message.startswith(
        "The response from the remote device does not adhere to protocol specification "
        '(phase: auth): expected +OK or -ERR, got "WHAT XXX'
    )
    assert f"S: WHAT {'X' * 50}***" in [f"{line.dir}: {line.text}" for line in result.transcript]
    dumped = result.model_dump_json()
    for piece in (password, password[:8], password[-8:], "slash-pw", "my-"):
        assert piece not in dumped
        assert piece not in result.error.message


async def test_a_malformed_stat_answer_is_quoted_redacted(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script(overrides={"STAT": f"+OK none for {PASSWORD}\r\n".encode()}))
    result = await plain_login(srv, stat=True)
    assert code(result) == ("protocol_violation", "stat")
    assert result.error is not None
    assert result.error.message.endswith(
        "STAT answer is not '+OK count octets', got \"none for ***\""
    )
    assert PASSWORD not in result.model_dump_json()
    # The STAT answer appears once, where it came, before the QUIT that followed it.
    said = [f"{line.dir}: {line.text}" for line in result.transcript if line.dir in "CS"]
    stat_at = said.index("C: STAT")
    assert said[stat_at + 1] == "S: +OK none for ***"
    assert said.count("S: +OK none for ***") == 1
    assert said[stat_at + 2] == "C: QUIT"


def test_an_error_shows_only_its_current_fields() -> None:
    """str() and repr() follow the fields: once redacted, no raw copy is left in args."""
    from pop3watch.errors import ProtocolViolation

    exc = ProtocolViolation("expected +OK or -ERR", server_text="leak " * 20)
    assert exc.args == ()
    assert str(exc).endswith('got "' + ("leak " * 12) + '..."')
    exc.server_text = "***"
    assert "leak" not in str(exc)
    assert "leak" not in repr(exc)


@pytest.mark.parametrize("answer", ["+OK \u00b2 100", "+OK 1 \u2460", "+OK \u0661\u0662 5"])
async def test_stat_takes_ascii_digits_only(scripted: ScriptedFactory, answer: str) -> None:
    """ "²" would crash int(), Arabic-Indic digits would be read as a count: both are a
    protocol violation, and the session still ends with QUIT."""
    srv = scripted(Pop3Script(overrides={"STAT": answer.encode() + b"\r\n"}))
    result = await plain_login(srv, stat=True)
    assert code(result) == ("protocol_violation", "stat")
    assert result.mailbox is None
    assert srv.commands()[-1] == "QUIT"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"-ERR [SYS/TEMP/DB-DOWN] try later", "service_unavailable"),
        (b"-ERR [SYS/PERM/QUOTA] gone", "service_unavailable"),
        (b"-ERR [IN-USE/POP3] locked", "mailbox_locked"),
        (b"-ERR [in-use] locked", "mailbox_locked"),
        (b"-ERR [SYSTEMP] not a code we know", "auth_failed"),
        (b"-ERR [AUTH/BAD] wrong", "auth_failed"),
    ],
)
async def test_response_codes_are_hierarchical(
    scripted: ScriptedFactory, certs: CertBundle, answer: bytes, expected: str
) -> None:
    """RFC 2449 section 8: a refinement of a code the client knows means that code."""
    srv = scripted(tls_script(certs, overrides={"PASS": answer + b"\r\n"}))
    result = await login(srv, certs)
    assert code(result) == (expected, "auth")


async def test_a_response_code_keeps_its_argument(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(tls_script(certs, overrides={"PASS": b"-ERR [LOGIN-DELAY 900] wait\r\n"}))
    result = await login(srv, certs)
    assert code(result) == ("auth_failed", "auth")
    assert result.error is not None
    assert result.error.message.endswith("[LOGIN-DELAY 900] wait")
    assert "(it allows one every 900 s)" in result.error.message  # the code's own argument
    assert "S: -ERR [LOGIN-DELAY 900] wait" in [f"{x.dir}: {x.text}" for x in result.transcript]


async def test_a_long_oauth_token_waits_for_the_servers_challenge(
    scripted: ScriptedFactory, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 5034: an AUTH line stays within 255 octets; a Microsoft 365 token alone is
    longer, so it goes in answer to the server's empty challenge."""
    token = "eyJ0eXAiOiJKV1Qi." + "x" * 1500
    monkeypatch.setenv("SCRIPTED_LONG_TOKEN", token)
    srv = scripted(tls_script(certs, tokens={"alice": token}))
    result = await login(
        srv,
        certs,
        auth="sasl",
        sasl_mechanism="XOAUTH2",
        password_env=None,
        token_env="SCRIPTED_LONG_TOKEN",
    )
    assert result.status is Status.UP, result.error
    auth_lines = [r.line for r in srv.received if r.verb == "AUTH"]
    assert auth_lines == [b"AUTH XOAUTH2"]
    assert all(len(r.line) + 2 <= 255 for r in srv.received if r.verb == "AUTH")
    assert token not in result.model_dump_json()


async def test_plain_credentials_are_sent_once_however_often_the_server_asks(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(tls_script(certs, overrides={"AUTH": b"+ \r\n"}))
    result = await login(srv, certs, auth="sasl", sasl_mechanism="PLAIN")
    assert code(result) == ("auth_failed", "auth")
    plain_blob = base64.b64encode(f"\0alice\0{PASSWORD}".encode())
    assert sum(plain_blob in r.line for r in srv.received) == 1
    assert "*" in srv.commands()


@pytest.mark.parametrize(
    ("auth", "extra"), [("user", {}), ("apop", {}), ("sasl", {"sasl_mechanism": "PLAIN"})]
)
async def test_a_secret_that_is_not_utf8_is_refused_before_connecting(
    scripted: ScriptedFactory, monkeypatch: pytest.MonkeyPatch, auth: str, extra: dict[str, str]
) -> None:
    # The byte 0xff in the environment: os.environ shows it as a lone surrogate.
    monkeypatch.setenv("SCRIPTED_BAD_BYTES", "pa\udcffss")
    assert os.environb[b"SCRIPTED_BAD_BYTES"] == b"pa\xffss"
    srv = scripted(Pop3Script())
    result = await plain_login(srv, auth=auth, password_env="SCRIPTED_BAD_BYTES", **extra)
    assert code(result) == ("config_invalid", "config")
    assert result.error is not None
    assert "not valid UTF-8" in result.error.message
    assert srv.connections == 0


async def test_user_refused_by_a_server_that_does_not_advertise_it_is_unsupported(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    script = tls_script(
        certs,
        capabilities_after_tls=[b"SASL PLAIN", b"IMPLEMENTATION no-user"],
        overrides={"USER": b"-ERR no such command\r\n"},
    )
    srv = scripted(script)
    result = await login(srv, certs)
    assert code(result) == ("auth_unsupported", "auth")
    assert result.error is not None
    assert "USER is not among the server's capabilities" in result.error.message
    assert srv.commands()[-1] == "QUIT"


async def test_a_certificate_with_an_exotic_name_type_is_still_reported(
    scripted: ScriptedFactory, tmp_path: Path
) -> None:
    """A SAN holding an x400Address: OpenSSL serves and accepts it, cryptography cannot
    list it. The check reports the certificate without that name instead of raising."""
    context = _x400_san_context(tmp_path)
    srv = scripted(Pop3Script(), tls_context=context)
    result = await run(srv, tls="tls", verify=False)
    assert result.status is Status.UP, result.error
    assert result.tls is not None and result.tls.cert is not None
    assert result.tls.cert.sans == ["<unsupported name type>"]
    assert result.tls.cert.subject == "CN=odd.test"


def _x400_san_context(directory: Path) -> ssl.SSLContext:
    """A self-signed server context whose SAN is a dNSName and an (empty) x400Address,
    written as raw DER since cryptography cannot build that name type."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtensionOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd.test")])
    names = b"\x82\x08odd.test" + b"\xa3\x02\x30\x00"  # dNSName, x400Address
    san = x509.UnrecognizedExtension(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME, bytes([0x30, len(names)]) + names
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1234)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=300))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    return server_context(directory, key, cert, stem="x400")


# --- transcripts as the service asks for them ----------------------------------------------


async def test_the_service_keeps_transcripts_of_failures_only(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """``run_probe`` (the service's way in) brings the transcript with a result that did
    not pass, redacted, and none with a passing one; ``check_pop3`` keeps it always."""
    srv = scripted(tls_script(certs, overrides={"PASS": b"-ERR wrong password wonderland\r\n"}))
    settings = CheckSettings(
        host=srv.host,
        port=srv.port,
        tls="starttls",
        ca_file=certs.ca_file,
        auth="user",
        user="alice",
        password_env="SCRIPTED_PW",
        timeout=5,
    )
    failed = await run_probe("pop3", settings)
    assert code(failed) == ("auth_failed", "auth")
    said = [f"{line.dir}: {line.text}" for line in failed.transcript]
    assert "C: PASS ***" in said and "S: -ERR wrong password ***" in said
    assert PASSWORD not in failed.model_dump_json()

    plain = CheckSettings(host=srv.host, port=srv.port, capa=False, timeout=5)
    passed = await run_probe("pop3", plain)
    assert passed.status is Status.UP and passed.transcript == []
    asked = await check_pop3(plain, transcript=KeepTranscript.FAILURES)
    assert asked.status is Status.UP and asked.transcript == []
    always = await check_pop3(plain)
    assert [line.dir for line in always.transcript] == ["S", "C", "S"]


# --- thresholds --------------------------------------------------------------------------------


async def test_slow_greeting_warns_then_downs(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script(greeting_delay=0.3))
    warn = await run(srv, warn_rtt_ms=100)
    assert warn.status is Status.WARN
    assert code(warn) == ("slow_response", "greeting")
    assert warn.rtt_ms is not None
    assert warn.rtt_ms >= 300
    down = await run(srv, warn_rtt_ms=50, down_rtt_ms=100)
    assert down.status is Status.DOWN
    assert code(down) == ("slow_response", "greeting")


async def test_every_phase_that_ran_is_timed_and_the_phases_fit_in_the_total(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """Each phase gets the time from its start to the next one's; the phases never
    overlap, so together they stay within the total."""
    srv = scripted(tls_script(certs, greeting_delay=0.15, stat=(1, 10)))
    result = await login(srv, certs, stat=True)
    assert result.status is Status.UP, result.error
    t = result.timings_ms
    assert t.greeting is not None and t.greeting >= 140
    phases = [t.dns, t.connect, t.greeting, t.capa, t.tls, t.auth, t.stat, t.quit]
    assert all(v is not None and v >= 0 for v in phases), t
    assert sum(v for v in phases if v is not None) <= t.total + 0.01


async def test_a_failed_phase_keeps_its_time_and_the_polite_quit_is_no_phase(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """A rejected password ends the AUTH phase; the QUIT sent afterwards out of
    politeness (here never answered, so it waits out its grace) is timed as no phase:
    neither as QUIT nor added to AUTH."""
    srv = scripted(tls_script(certs, stall=frozenset({"QUIT"})))
    result = await login(srv, certs, password_env="SCRIPTED_WRONG")
    assert code(result) == ("auth_failed", "auth")
    assert "QUIT" in srv.commands()
    t = result.timings_ms
    assert t.total >= 1900  # the unanswered QUIT's grace
    assert t.auth is not None and 0 < t.auth < 1000
    assert t.quit is None and t.stat is None


async def test_rtt_is_the_servers_delay_not_the_busy_event_loops(
    scripted: ScriptedFactory,
) -> None:
    """The greeting arrives while the client's event loop is stuck: the response time
    still comes from when the packet arrived (kernel timestamp), not from when the loop
    got round to reading it. A busy monitor must not report its own queueing."""
    srv = scripted(Pop3Script(greeting_delay=0.1))
    asyncio.get_running_loop().call_later(0.02, time.sleep, 0.4)  # stuck from 20 to 420 ms
    result = await run(srv, warn_rtt_ms=300)
    assert result.status is Status.UP, result.error
    assert result.rtt_ms is not None
    assert 95 <= result.rtt_ms < 250, result.rtt_ms
    assert result.timings_ms.total >= 400  # the loop really was stuck


@pytest.mark.parametrize(
    ("thresholds", "status"),
    [
        ({"warn_messages": 1}, Status.WARN),
        ({"warn_messages": 2}, Status.UP),
        ({"down_octets": 100}, Status.DOWN),
        ({"warn_messages": 1, "down_messages": 5, "warn_octets": 1000}, Status.WARN),
    ],
)
async def test_mailbox_thresholds(
    scripted: ScriptedFactory, certs: CertBundle, thresholds: dict[str, int], status: Status
) -> None:
    srv = scripted(tls_script(certs))
    result = await login(srv, certs, stat=True, **thresholds)
    assert result.status is status
    if status is not Status.UP:
        assert code(result) == ("mailbox_threshold", "stat")


async def test_allowed_plaintext_auth_does_log_in(scripted: ScriptedFactory) -> None:
    srv = scripted(Pop3Script())
    result = await plain_login(srv)
    assert result.status is Status.UP, result.error
    assert "PASS ***" in [line.text for line in result.transcript]


async def test_stls_against_a_tls10_server_is_refused_with_its_version(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(tls_context=certs.tls10_only))
    result = await login(srv, certs)
    assert code(result) == ("tls_failed", "tls")
    assert "only TLSv1" in (result.error.message if result.error else "")
    # The diagnostic second connection sent no credential either.
    assert "USER" not in srv.commands()
