"""The POP3 check against a real Dovecot: plain, STLS, implicit TLS, every auth mode."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trustme
from cryptography import x509

from pop3watch.probe import CheckSettings, Status, check_pop3, pop3_check
from pop3watch.probe.verified_chains import VERIFIED_CHAINS
from tests.fixtures.dovecot import UNPREPARED_PASSWORD, UNPREPARED_USER, DovecotServer

pytestmark = pytest.mark.dovecot


@pytest.fixture
def alice_env(monkeypatch: pytest.MonkeyPatch, dovecot: DovecotServer) -> str:
    monkeypatch.setenv("POP3WATCH_TEST_PW", dovecot.password)
    return "POP3WATCH_TEST_PW"


def settings(dovecot: DovecotServer, **kw: Any) -> CheckSettings:
    base: dict[str, Any] = {"host": dovecot.host, "port": dovecot.pop3_port, "timeout": 10}
    return CheckSettings(**(base | kw))


async def test_plain_greeting_and_capabilities(dovecot: DovecotServer) -> None:
    result = await check_pop3(settings(dovecot))
    assert result.status is Status.UP, result.error
    assert result.address == "127.0.0.1"
    assert "STLS" in result.capabilities
    assert result.greeting is not None and result.greeting.startswith("Dovecot ready")
    assert result.rtt_ms is not None and result.rtt_ms > 0
    assert result.timings_ms.connect is not None
    assert result.timings_ms.quit is not None
    assert [line.text for line in result.transcript if line.dir == "C"] == ["CAPA", "QUIT"]


async def test_starttls_verifies_and_refreshes_capabilities(dovecot: DovecotServer) -> None:
    result = await check_pop3(
        settings(
            dovecot, tls="starttls", ca_file=dovecot.ca_file, server_name=dovecot.cert_hostname
        )
    )
    assert result.status is Status.UP, result.error
    assert result.tls is not None and result.tls.mode == "starttls"
    assert result.tls.version in ("TLSv1.2", "TLSv1.3")
    cert = result.tls.cert
    assert cert is not None and cert.verified
    assert cert.fingerprint_sha256 == dovecot.cert_sha256
    assert "DNS:localhost" in cert.sans
    assert cert.days_left > 300
    # trustme's leaf: a P-256 key, signed by its CA with SHA-256.
    assert (cert.key_type, cert.key_bits, cert.key_curve) == ("EC", 256, "secp256r1")
    assert cert.signature_hash == "sha256"
    # The chain above the leaf is the test CA (the trusted root), read from what
    # OpenSSL verified.
    chain = result.tls.chain_expiry
    ca = x509.load_pem_x509_certificate(dovecot.ca_file.read_bytes())
    assert chain is not None and chain.subject == ca.subject.rfc4514_string()
    assert chain.not_after == ca.not_valid_after_utc
    # Capabilities are the post-TLS ones: STLS is no longer advertised after TLS.
    assert "STLS" not in result.capabilities
    commands = [line.text for line in result.transcript if line.dir == "C"]
    assert commands == ["CAPA", "STLS", "CAPA", "QUIT"]


async def test_implicit_tls_on_pop3s(dovecot: DovecotServer) -> None:
    result = await check_pop3(
        settings(
            dovecot,
            port=dovecot.pop3s_port,
            tls="tls",
            ca_file=dovecot.ca_file,
            server_name="localhost",
        )
    )
    assert result.status is Status.UP, result.error
    assert result.tls is not None and result.tls.mode == "implicit"
    assert result.timings_ms.tls is not None and result.timings_ms.tls > 0


@pytest.mark.parametrize("mode", ["tls", "starttls"])
async def test_the_next_check_reuses_the_chain_verified_by_the_last(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    port = dovecot.pop3s_port if mode == "tls" else dovecot.pop3_port
    check = settings(dovecot, port=port, tls=mode, ca_file=dovecot.ca_file, server_name="localhost")
    first = await check_pop3(check)
    assert first.status is Status.UP, first.error
    assert len(VERIFIED_CHAINS) == 1
    # A full verification would now fail: only the remembered chain can pass the next.
    stranger = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
    monkeypatch.setattr(pop3_check, "client_context", lambda **_: stranger)
    second = await check_pop3(check)
    assert second.status is Status.UP, second.error
    assert second.tls is not None and second.tls.cert is not None and second.tls.cert.verified
    assert first.tls is not None and first.tls.chain_expiry is not None
    assert second.tls.chain_expiry == first.tls.chain_expiry  # remembered with the chain
    assert "verifying it in full" not in " ".join(row.text for row in second.transcript)


async def test_ip_literal_is_verified_against_ip_san(dovecot: DovecotServer) -> None:
    result = await check_pop3(settings(dovecot, tls="starttls", ca_file=dovecot.ca_file))
    assert result.status is Status.UP, result.error


async def test_untrusted_without_ca_file_is_cert_invalid(dovecot: DovecotServer) -> None:
    result = await check_pop3(settings(dovecot, tls="starttls", server_name="localhost"))
    assert result.status is Status.DOWN
    assert result.error is not None and result.error.code == "cert_invalid"


async def test_pinned_fingerprint_replaces_the_ca(dovecot: DovecotServer) -> None:
    good = await check_pop3(settings(dovecot, tls="starttls", fingerprint=dovecot.cert_sha256))
    assert good.status is Status.UP, good.error
    assert good.tls is not None and good.tls.cert is not None and good.tls.cert.verified
    assert good.tls.chain_expiry is None  # the pin replaces the chain: none was verified
    bad = await check_pop3(settings(dovecot, tls="starttls", fingerprint="00" * 32))
    assert bad.error is not None and bad.error.code == "cert_invalid"
    assert "pin mismatch" in bad.error.message


async def test_no_verify_succeeds_unverified(dovecot: DovecotServer) -> None:
    result = await check_pop3(settings(dovecot, tls="starttls", verify=False))
    assert result.status is Status.UP
    assert result.tls is not None and result.tls.cert is not None
    assert result.tls.cert.verified is False
    assert result.tls.chain_expiry is None


@pytest.mark.parametrize(
    ("auth", "extra", "mechanism"),
    [
        ("user", {}, "USER"),
        ("apop", {}, "APOP"),
        ("sasl", {"sasl_mechanism": "PLAIN"}, "SASL PLAIN"),
        ("sasl", {"sasl_mechanism": "LOGIN"}, "SASL LOGIN"),
        ("sasl", {"sasl_mechanism": "CRAM-MD5"}, "SASL CRAM-MD5"),
        ("sasl", {"sasl_mechanism": "SCRAM-SHA-1"}, "SASL SCRAM-SHA-1"),
        ("sasl", {"sasl_mechanism": "SCRAM-SHA-256"}, "SASL SCRAM-SHA-256"),
        ("sasl", {}, "SASL PLAIN"),
    ],
)
async def test_login_over_starttls(
    dovecot: DovecotServer, alice_env: str, auth: str, extra: dict[str, Any], mechanism: str
) -> None:
    result = await check_pop3(
        settings(
            dovecot,
            tls="starttls",
            ca_file=dovecot.ca_file,
            auth=auth,
            user=dovecot.user,
            password_env=alice_env,
            stat=True,
            **extra,
        )
    )
    assert result.status is Status.UP, result.error
    assert result.auth_mechanism == mechanism
    assert result.mailbox is not None
    assert (result.mailbox.messages, result.mailbox.octets) == (dovecot.messages, dovecot.octets)
    assert result.timings_ms.auth is not None and result.timings_ms.stat is not None
    dump = result.model_dump_json()
    assert dovecot.password not in dump


async def test_login_over_implicit_tls_with_password_file(
    dovecot: DovecotServer, tmp_path: Any
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(dovecot.empty_password + "\n")
    result = await check_pop3(
        settings(
            dovecot,
            port=dovecot.pop3s_port,
            tls="tls",
            ca_file=dovecot.ca_file,
            auth="user",
            user=dovecot.empty_user,
            password_file=secret,
            stat=True,
        )
    )
    assert result.status is Status.UP, result.error
    assert result.mailbox is not None and result.mailbox.messages == 0


@pytest.mark.parametrize(
    ("auth", "extra"),
    [
        ("user", {}),
        ("apop", {}),
        ("sasl", {}),
        ("sasl", {"sasl_mechanism": "SCRAM-SHA-256"}),
    ],
)
async def test_wrong_password_is_auth_failed(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch, auth: str, extra: dict[str, Any]
) -> None:
    monkeypatch.setenv("POP3WATCH_WRONG", "not-the-password")
    result = await check_pop3(
        settings(
            dovecot,
            tls="starttls",
            ca_file=dovecot.ca_file,
            auth=auth,
            user=dovecot.user,
            password_env="POP3WATCH_WRONG",
            **extra,
        )
    )
    assert result.status is Status.DOWN
    assert result.error is not None and result.error.code == "auth_failed"
    assert result.error.phase == "auth"
    assert "not-the-password" not in result.model_dump_json()
    # The session was still usable, so it was closed politely.
    assert [line.text for line in result.transcript if line.dir == "C"][-1] == "QUIT"


async def test_plaintext_sasl_picks_scram_and_keeps_its_proofs_out_of_the_transcript(
    dovecot: DovecotServer, alice_env: str
) -> None:
    """Without TLS (allowed by the owner), the best mechanism offered is one that never
    sends the password: SCRAM-SHA-256 on this Dovecot. Neither the client's proof nor the
    server's signature, each enough to test passwords offline, is in the transcript."""
    result = await check_pop3(
        settings(
            dovecot,
            auth="sasl",
            user=dovecot.user,
            password_env=alice_env,
            allow_plaintext_auth=True,
            stat=True,
        )
    )
    assert result.status is Status.UP, result.error
    assert result.auth_mechanism == "SASL SCRAM-SHA-256"
    lines = [(line.dir, line.text) for line in result.transcript]
    auth = lines.index(("C", "AUTH SCRAM-SHA-256 ***"))
    # server-first (nonce, salt, count: no secret), proof, server-final, empty answer, +OK
    assert [d for d, _ in lines[auth + 1 : auth + 6]] == ["S", "C", "S", "C", "S"]
    server_first = lines[auth + 1][1]
    assert server_first.startswith("+ ") and "***" not in server_first
    assert lines[auth + 2][1] == "***" and lines[auth + 3][1] == "+ ***"
    assert dovecot.password not in result.model_dump_json()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN", None])
async def test_a_password_saslprep_would_change_logs_in_as_dovecot_keeps_it(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch, mechanism: str | None
) -> None:
    """Dovecot derives SCRAM keys from the password unprepared: named, SCRAM logs in
    with it as it is; left to choose without TLS, the check passes SCRAM over (a server
    that prepares it would derive another key) for CRAM-MD5, which does not depend on it."""
    monkeypatch.setenv("POP3WATCH_UNPREPARED", UNPREPARED_PASSWORD)
    result = await check_pop3(
        settings(
            dovecot,
            auth="sasl",
            sasl_mechanism=mechanism,
            user=UNPREPARED_USER,
            password_env="POP3WATCH_UNPREPARED",
            allow_plaintext_auth=True,
        )
    )
    assert result.status is Status.UP, result.error
    assert result.auth_mechanism == f"SASL {mechanism or 'CRAM-MD5'}"


async def test_plaintext_login_refused_unless_allowed(
    dovecot: DovecotServer, alice_env: str
) -> None:
    refused = await check_pop3(
        settings(dovecot, auth="user", user=dovecot.user, password_env=alice_env)
    )
    assert refused.error is not None and refused.error.code == "insecure_auth_refused"
    assert [line.text for line in refused.transcript if line.dir == "C"] == ["CAPA", "QUIT"]
    allowed = await check_pop3(
        settings(
            dovecot,
            auth="apop",
            user=dovecot.user,
            password_env=alice_env,
            allow_plaintext_auth=True,
        )
    )
    assert allowed.status is Status.UP, allowed.error


async def test_ipv6_loopback(dovecot: DovecotServer) -> None:
    if not dovecot.ipv6:
        pytest.skip("no IPv6 loopback on this machine")
    result = await check_pop3(CheckSettings(host="::1", port=dovecot.pop3_port))
    assert result.status is Status.UP, result.error
    assert result.address == "::1"
    assert result.target == f"[::1]:{dovecot.pop3_port}"


async def test_dns_name_with_ip_family(dovecot: DovecotServer) -> None:
    result = await check_pop3(
        CheckSettings(host="localhost", port=dovecot.pop3_port, ip_family="4")
    )
    assert result.status is Status.UP, result.error
    assert result.address == "127.0.0.1"
    assert result.timings_ms.dns is not None
