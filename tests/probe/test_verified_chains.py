"""Chains verified in full are remembered, and reused only while nothing they depend on
has changed: another leaf, another chain, another trust store or a passed ``notAfter``
sends the check back to a full verification, whose verdict is the one reported."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtensionOID, NameOID

from pop3watch.probe import CheckResult, CheckSettings, check_pop3, pop3_check, tls, verified_chains
from pop3watch.probe.verified_chains import (
    MAX_CHAINS_PER_NAME,
    TTL_S,
    VERIFIED_CHAINS,
    TrustKey,
    VerifiedChains,
)
from tests.fixtures.certs import CertBundle, build_cert, server_context
from tests.fixtures.scripted import Pop3Script, ScriptedFactory, ScriptedServer

PASSWORD = "wonderland"
DAY = dt.timedelta(days=1)


async def check(srv: ScriptedServer, ca_file: Path, **kw: Any) -> CheckResult:
    base: dict[str, Any] = {
        "host": srv.host,
        "port": srv.port,
        "tls": "tls",
        "ca_file": ca_file,
        "server_name": "localhost",
        "timeout": 5,
    }
    result = await check_pop3(CheckSettings(**(base | kw)))
    await asyncio.to_thread(srv.wait_idle)
    return result


def distrust_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, a full verification fails: its context trusts an unrelated CA only.
    A check that still passes was verified against a remembered chain."""
    stranger = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
    monkeypatch.setattr(pop3_check, "client_context", lambda **_: stranger)


def notes(result: CheckResult) -> str:
    return "\n".join(row.text for row in result.transcript)


async def test_a_second_check_reuses_the_chain_verified_by_the_first(
    scripted: ScriptedFactory, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.good)
    first = await check(srv, certs.ca_file)
    assert first.status == "up" and first.tls and first.tls.cert
    assert first.tls.cert.verified is True
    assert len(VERIFIED_CHAINS) == 1

    distrust_everything(monkeypatch)
    second = await check(srv, certs.ca_file)
    assert second.status == "up", second.error
    assert second.tls and second.tls.cert and second.tls.cert.verified is True
    assert srv.connections == 2  # no second connection for a full verification
    assert "(the chain verified in full before)" in notes(second)
    assert "(the chain verified in full before)" not in notes(first)

    VERIFIED_CHAINS.clear()  # the control: without the remembered chain it fails
    third = await check(srv, certs.ca_file)
    assert third.error is not None and third.error.code == "cert_invalid"


async def test_a_renewed_certificate_is_verified_in_full_on_a_new_connection(
    scripted: ScriptedFactory, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(before, certs.ca_file)).status == "up"
    renewed = scripted(Pop3Script(), tls_context=certs.renewed)

    result = await check(renewed, certs.ca_file)
    assert result.status == "up", result.error
    assert renewed.connections == 2
    assert "not one verified before" in notes(result)
    assert "verifying it in full on a new connection" in notes(result)
    assert result.timings_ms.connect is not None and result.timings_ms.tls is not None

    # After a miss the name is verified in full for an hour: one connection per check,
    # and no shortcut (a full verification that fails now is what is reported).
    again = await check(renewed, certs.ca_file)
    assert again.status == "up" and renewed.connections == 3
    assert "verifying it in full" not in notes(again)
    distrust_everything(monkeypatch)
    assert (await check(renewed, certs.ca_file)).error is not None


@pytest.mark.parametrize("bad", ["wrong_host", "expired", "not_yet_valid", "self_signed"])
async def test_a_bad_certificate_after_a_good_one_gets_the_full_verdict(
    scripted: ScriptedFactory, certs: CertBundle, bad: str
) -> None:
    bad_srv = scripted(Pop3Script(), tls_context=getattr(certs, bad))
    fresh = await check(bad_srv, certs.ca_file)  # nothing remembered yet
    assert fresh.error is not None and fresh.error.code == "cert_invalid"

    good = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(good, certs.ca_file)).status == "up"
    after = await check(bad_srv, certs.ca_file)
    assert after.error is not None
    assert (after.error.code, after.error.message) == (fresh.error.code, fresh.error.message)
    assert len(VERIFIED_CHAINS) == 1  # a failed verification adds nothing


def _presented_leaf(srv: ScriptedServer) -> bytes:
    """The leaf the server presents, read without verifying it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(srv.address, timeout=5) as raw,
        context.wrap_socket(raw) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return der


@pytest.mark.parametrize("bad", ["wrong_host", "expired"])
async def test_a_remembered_leaf_still_has_its_name_and_dates_checked(
    scripted: ScriptedFactory, certs: CertBundle, bad: str
) -> None:
    """Planted by hand (no full verification would remember it): even a remembered leaf
    must match the name and be within its dates, or the check verifies in full."""
    srv = scripted(Pop3Script(), tls_context=getattr(certs, bad))
    leaf = await asyncio.to_thread(_presented_leaf, srv)
    key = tls.trust_key(certs.ca_file, "localhost")
    VERIFIED_CHAINS.remember(key, (leaf,), verified_until=time.time() + 600)
    result = await check(srv, certs.ca_file)
    assert result.error is not None and result.error.code == "cert_invalid"
    assert "verifying it in full on a new connection" in notes(result)


async def test_the_same_leaf_in_another_chain_is_verified_in_full(
    scripted: ScriptedFactory, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_chain = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(plain_chain, certs.ca_file)).status == "up"
    longer_chain = scripted(Pop3Script(), tls_context=certs.good_with_ca)

    result = await check(longer_chain, certs.ca_file)
    assert result.status == "up", result.error
    assert longer_chain.connections == 2
    assert "a chain other than the one verified before" in notes(result)
    distrust_everything(monkeypatch)  # a miss: no shortcut for this name now
    assert (await check(plain_chain, certs.ca_file)).error is not None


async def test_a_chain_whose_time_ran_out_mid_handshake_is_no_miss(
    scripted: ScriptedFactory, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(srv, certs.ca_file)).status == "up"
    with monkeypatch.context() as patch:  # its hour ends between context and comparison
        patch.setattr(VERIFIED_CHAINS, "verified_for", lambda *_, **__: None)
        result = await check(srv, certs.ca_file)
    assert result.status == "up" and srv.connections == 3
    assert "due to be verified again" in notes(result)
    distrust_everything(monkeypatch)  # not counted as a miss: the shortcut still serves
    assert (await check(srv, certs.ca_file)).status == "up"


@pytest.mark.parametrize("mode", ["tls", "starttls"])
async def test_a_leaf_cryptography_cannot_fully_read_still_verifies(
    scripted: ScriptedFactory, tmp_path: Path, mode: str
) -> None:
    """A CA-signed leaf whose SAN also holds an x400Address: OpenSSL verifies it, and
    the check passes (such a leaf is just not remembered)."""
    root_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "12")
    root = build_cert("Root", root_key, "Root", root_key, ca=True)
    names = b"\x82\x09localhost" + b"\xa3\x02\x30\x00"  # dNSName, x400Address
    san = x509.UnrecognizedExtension(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME, bytes([0x30, len(names)]) + names
    )
    leaf = build_cert("localhost", leaf_key, "Root", root_key, ca=False, san=san)
    context = server_context(tmp_path, leaf_key, leaf)
    (tmp_path / "root.pem").write_bytes(_pem(root))
    if mode == "starttls":
        srv = scripted(Pop3Script(tls_context=context))
    else:
        srv = scripted(Pop3Script(), tls_context=context)
    result = await check(srv, tmp_path / "root.pem", tls=mode)
    assert result.status == "up", result.error
    assert len(VERIFIED_CHAINS) == 0


async def test_starttls_starts_over_before_any_credential_is_sent(
    scripted: ScriptedFactory, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEMBERED_PW", PASSWORD)
    login: dict[str, Any] = {
        "tls": "starttls",
        "auth": "user",
        "user": "alice",
        "password_env": "REMEMBERED_PW",
    }
    first = scripted(Pop3Script(tls_context=certs.good))
    assert (await check(first, certs.ca_file, **login)).status == "up"
    renewed = scripted(Pop3Script(tls_context=certs.renewed))

    result = await check(renewed, certs.ca_file, **login)
    assert result.status == "up", result.error
    assert renewed.commands() == ["CAPA", "STLS", "CAPA", "STLS", "CAPA", "USER", "PASS", "QUIT"]
    # The dropped connection carried the clear-text CAPA and STLS, and nothing over TLS.
    assert [(r.verb, r.tls) for r in renewed.received if r.conn == 1] == [
        ("CAPA", False),
        ("STLS", False),
    ]
    assert result.capabilities  # from the verified session, not the dropped one


async def test_a_timeout_after_starting_over_says_why_the_time_ran_short(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """A slow server that renewed its certificate: the first connection costs the greeting
    delay, and so does the new one the full verification needs."""
    first = scripted(Pop3Script(tls_context=certs.good))
    assert (await check(first, certs.ca_file, tls="starttls")).status == "up"
    slow = scripted(Pop3Script(tls_context=certs.renewed, greeting_delay=0.4))

    result = await check(slow, certs.ca_file, tls="starttls", timeout=0.7)
    assert result.error is not None and result.error.code == "timeout"
    assert "having started over on a new connection" in result.error.message
    assert slow.connections == 2

    plain_timeout = await check(scripted(Pop3Script(greeting_delay=1)), certs.ca_file, timeout=0.3)
    assert plain_timeout.error is not None and plain_timeout.error.code == "timeout"
    assert "started over" not in plain_timeout.error.message


async def test_pinned_and_unverified_checks_remember_nothing(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(srv, certs.ca_file, fingerprint=certs.good_sha256)).status == "up"
    unverified = await check(srv, certs.ca_file, verify=False)
    assert unverified.status == "up" and unverified.tls and unverified.tls.cert
    assert unverified.tls.cert.verified is False
    assert len(VERIFIED_CHAINS) == 0


async def test_a_changed_ca_file_is_another_trust_store(
    scripted: ScriptedFactory,
    certs: CertBundle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca_file = tmp_path / "ca.pem"
    shutil.copy(certs.ca_file, ca_file)
    monkeypatch.setattr(tls, "CA_RESTAT_S", 0.0)
    srv = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(srv, ca_file)).status == "up"
    os.utime(ca_file, (1_000_000, 1_000_000))
    distrust_everything(monkeypatch)  # the new store's verdict must be asked for
    result = await check(srv, ca_file)
    assert result.error is not None and result.error.code == "cert_invalid"


async def test_disabled_it_verifies_every_check_in_full(
    scripted: ScriptedFactory, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(srv, certs.ca_file)).status == "up"
    monkeypatch.setattr(VERIFIED_CHAINS, "enabled", False)
    distrust_everything(monkeypatch)  # what was remembered before is not used now
    assert (await check(srv, certs.ca_file)).error is not None


# --- the bookkeeping, on its own -------------------------------------------------------


def _leaf_der(ca: trustme.CA) -> bytes:
    pem = ca.issue_cert("localhost").cert_chain_pems[0].bytes().decode()
    return ssl.PEM_cert_to_DER_cert(pem)


KEY = TrustKey("/etc/ca.pem", (1.0,), "localhost")
NOW = 2_000_000_000.0


def test_an_entry_lasts_until_the_chain_expires_or_the_ttl_passes() -> None:
    chains = VerifiedChains()
    chain = (_leaf_der(trustme.CA()),)
    chains.remember(KEY, chain, verified_until=NOW + 60, now=NOW)
    assert chains.verified_for(KEY, chain, now=NOW + 59) is not None
    assert chains.context_for(KEY, now=NOW + 59) is not None
    assert chains.verified_for(KEY, chain, now=NOW + 60) is None
    assert chains.context_for(KEY, now=NOW + 60) is None
    assert len(chains) == 0  # nothing current left: the name is dropped

    chains.remember(KEY, chain, verified_until=NOW + 10 * TTL_S, now=NOW)
    assert chains.verified_for(KEY, chain, now=NOW + TTL_S - 1) is not None
    assert chains.verified_for(KEY, chain, now=NOW + TTL_S) is None


def test_an_already_expired_chain_is_not_remembered() -> None:
    chains = VerifiedChains()
    chains.remember(KEY, (_leaf_der(trustme.CA()),), verified_until=NOW, now=NOW)
    assert len(chains) == 0


def test_the_context_trusts_exactly_the_remembered_leaves() -> None:
    chains = VerifiedChains()
    ca = trustme.CA()
    first, second = (_leaf_der(ca),), (_leaf_der(ca),)
    chains.remember(KEY, first, verified_until=NOW + 60, now=NOW)
    one = chains.context_for(KEY, now=NOW)
    assert one is not None and one.cert_store_stats()["x509"] == 1
    assert one.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert one.check_hostname and one.minimum_version is ssl.TLSVersion.TLSv1_2
    assert one.options & ssl.OP_NO_RENEGOTIATION
    chains.remember(KEY, second, verified_until=NOW + 60, now=NOW)
    two = chains.context_for(KEY, now=NOW)
    assert two is not None and two is not one and two.cert_store_stats()["x509"] == 2
    assert chains.context_for(KEY, now=NOW) is two  # built once per set of leaves
    assert chains.verified_for(TrustKey("/etc/ca.pem", (2.0,), "localhost"), first, now=NOW) is None
    assert (
        chains.verified_for(TrustKey("/etc/ca.pem", (1.0,), "mail.example"), first, now=NOW) is None
    )


def test_chains_per_name_are_bounded_oldest_out() -> None:
    chains = VerifiedChains()
    ca = trustme.CA()
    leaves = [(_leaf_der(ca),) for _ in range(MAX_CHAINS_PER_NAME + 1)]
    for chain in leaves:
        chains.remember(KEY, chain, verified_until=NOW + 60, now=NOW)
    assert chains.verified_for(KEY, leaves[0], now=NOW) is None
    assert all(chains.verified_for(KEY, chain, now=NOW) is not None for chain in leaves[1:])
    context = chains.context_for(KEY, now=NOW)
    assert context is not None and context.cert_store_stats()["x509"] == MAX_CHAINS_PER_NAME


def test_the_system_store_is_keyed_by_its_files_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "system.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes())
    os.utime(bundle, (1_000_000, 1_000_000))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setattr(tls, "CA_RESTAT_S", 0.0)
    before = tls.trust_key(None, "localhost")
    assert before.store == "system" and 1_000_000 * 10**9 in before.store_stamp
    assert tls.trust_key(None, "localhost") == before
    os.utime(bundle, (2_000_000, 2_000_000))  # update-ca-certificates rewrote it
    after = tls.trust_key(None, "localhost")
    assert after != before and 2_000_000 * 10**9 in after.store_stamp


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


async def test_a_chain_the_shortcut_cannot_vouch_for_costs_one_restart_an_hour(
    scripted: ScriptedFactory, tmp_path: Path
) -> None:
    """A server still sending an expired cross-signed root (the DST Root CA X3 pattern):
    a full verification stops at the trusted root and passes; with only the leaf
    trusted, OpenSSL walks the presented certificates up to the expired one and fails."""
    root_key, old_key, inter_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in "1234"
    )
    root = build_cert("Root", root_key, "Root", root_key, ca=True)
    cross = build_cert("Root", root_key, "Old Root", old_key, ca=True, days=(-900, -30))
    inter = build_cert("Inter", inter_key, "Root", root_key, ca=True)
    leaf = build_cert("localhost", leaf_key, "Inter", inter_key, ca=False)
    (tmp_path / "root.pem").write_bytes(_pem(root))
    srv = scripted(Pop3Script(), tls_context=server_context(tmp_path, leaf_key, leaf, inter, cross))

    results = [await check(srv, tmp_path / "root.pem") for _ in range(4)]
    assert [r.status for r in results] == ["up"] * 4, [r.error for r in results]
    assert srv.connections == 5  # 1 + (1 dropped + 1) + 1 + 1: the miss is not repeated
    assert "verifying it in full on a new connection" in notes(results[1])


async def test_an_intermediate_that_expires_first_warns_on_every_check(
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    """The leaf has 90 days, its intermediate 5: the chain stops verifying in 5, so that
    is what the check warns about, whether it verified in full or used the remembered
    chain (whose expiry was remembered with it)."""
    srv = scripted(Pop3Script(), tls_context=certs.expiring_intermediate)
    results = [await check(srv, certs.ca_file) for _ in range(2)]
    for result in results:
        assert result.status == "warn" and result.error is not None
        assert result.error.code == "cert_expiring"
        assert "the chain's CN=Short Intermediate: 5 days left" in result.error.message
        assert result.tls is not None and result.tls.cert is not None
        assert result.tls.cert.days_left == 89
        assert result.tls.chain_expiry is not None
        assert result.tls.chain_expiry.subject == "CN=Short Intermediate"
    assert results[0].tls == results[1].tls
    assert "(the chain verified in full before)" in notes(results[1])
    assert srv.connections == 2

    relaxed = await check(srv, certs.ca_file, cert_warn_days=3)
    assert relaxed.status == "up", relaxed.error
    assert relaxed.tls is not None and relaxed.tls.chain_expiry is not None
    assert relaxed.tls.chain_expiry.days_left == 5


# An organization written as UTF8String "QQQQ", and as a T61String holding a Latin-1
# byte: OpenSSL reads the latter (and verifies chains through it), cryptography refuses it.
_UTF8_ORG, _T61_ORG = b"\x0c\x04QQQQ", b"\x14\x04Q\xe9QQ"


def _odd_name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "QQQQ", _type=_ASN1Type.UTF8String),
        ]
    )


def _tlv_value(der: bytes, start: int) -> tuple[int, int]:
    """Where the value of the DER TLV at ``start`` begins and ends."""
    length, at = der[start + 1], start + 2
    if length & 0x80:
        size = length & 0x7F
        length, at = int.from_bytes(der[at : at + size], "big"), at + size
    return at, at + length


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    size = (n.bit_length() + 7) // 8
    length = bytes([n]) if n < 0x80 else bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + value


def _with_t61_names(cert: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey) -> bytes:
    """``cert`` with every ``_UTF8_ORG`` in its names made ``_T61_ORG``, signed again."""
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs_at, _ = _tlv_value(der, 0)
    _, tbs_end = _tlv_value(der, tbs_at)
    _, algorithm_end = _tlv_value(der, tbs_end)
    tbs = der[tbs_at:tbs_end].replace(_UTF8_ORG, _T61_ORG)
    signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, tbs + der[tbs_end:algorithm_end] + _tlv(0x03, b"\x00" + signature))


async def test_names_cryptography_cannot_decode_do_not_break_the_check(
    scripted: ScriptedFactory, tmp_path: Path
) -> None:
    """OpenSSL verifies a chain whose root and intermediate are named with a Latin-1
    T61String; the check reports it (the names as undecodable), it does not crash."""
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "123")
    root_name, inter_name = _odd_name("Root"), _odd_name("Inter")
    root = build_cert(root_name, root_key, root_name, root_key, ca=True, days=(-1, 20))
    inter = build_cert(inter_name, inter_key, root_name, root_key, ca=True, days=(-1, 30))
    leaf = build_cert("localhost", leaf_key, inter_name, inter_key, ca=False)
    ders = [
        _with_t61_names(c, k) for c, k in ((root, root_key), (inter, root_key), (leaf, inter_key))
    ]
    with pytest.raises(ValueError, match="subject"):
        x509.load_der_x509_certificate(ders[0]).subject  # noqa: B018 - the point
    (tmp_path / "root.pem").write_text(ssl.DER_cert_to_PEM_cert(ders[0]))
    context = server_context(tmp_path, leaf_key, ders[2], ders[1])
    srv = scripted(Pop3Script(), tls_context=context)

    results = [await check(srv, tmp_path / "root.pem") for _ in range(2)]
    for result in results:
        assert result.status == "up", result.error
        assert result.tls is not None and result.tls.cert is not None
        assert (result.tls.cert.subject, result.tls.cert.issuer) == (
            "CN=localhost",
            "<undecodable>",
        )
        assert result.tls.chain_expiry is not None  # the root: it expires first
        assert (result.tls.chain_expiry.subject, result.tls.chain_expiry.days_left) == (
            "<undecodable>",
            19,
        )
    assert "(the chain verified in full before)" in notes(results[1])


def test_each_remembered_chain_keeps_its_own_first_expiry() -> None:
    ca = trustme.CA()
    first, second = (_leaf_der(ca),), (_leaf_der(ca),)
    chains = VerifiedChains()
    chains.remember(KEY, first, verified_until=NOW + 60, first_expiring=b"one", now=NOW)
    chains.remember(KEY, second, verified_until=NOW + 60, first_expiring=None, now=NOW)
    found = chains.verified_for(KEY, first, now=NOW)
    assert found is not None and found.first_expiring == b"one"
    found = chains.verified_for(KEY, second, now=NOW)
    assert found is not None and found.first_expiring is None
    assert chains.verified_for(KEY, first, now=NOW + 60) is None


def test_the_first_expiring_certificate_above_the_leaf_is_picked() -> None:
    ca = trustme.CA()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def issued(days: int) -> bytes:
        pem = ca.issue_cert("x.example", not_after=now + days * DAY).cert_chain_pems[0]
        return ssl.PEM_cert_to_DER_cert(pem.bytes().decode())

    leaf, late, early = issued(1), issued(50), issued(5)
    pick = verified_chains.first_expiring
    assert pick((leaf, late, early)) == early  # the leaf itself does not count
    assert pick((leaf, b"unreadable", late)) == late
    assert pick((leaf,)) is None and pick(()) is None
    assert verified_chains.verified_until((leaf, b"unreadable", late)) == 0.0


def test_certificate_names_are_escaped_like_server_text() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_cert("Evil\x1b[31mCA", key, "Evil\x1b[31mCA", key, ca=True)
    der = cert.public_bytes(serialization.Encoding.DER)
    facts = tls.chain_expiry(der, dt.datetime.now(dt.UTC))
    assert facts is not None and facts.subject == "CN=Evil\\x1b[31mCA"
    assert tls.chain_expiry(None, dt.datetime.now(dt.UTC)) is None
    assert tls.chain_expiry(b"unreadable", dt.datetime.now(dt.UTC)) is None
    san = x509.SubjectAlternativeName([x509.DNSName("mail\x1b[2J.example")])
    leaf = build_cert("Mail\rServer", key, "Evil\x1b[31mCA", key, ca=False, san=san)
    info = tls.cert_info(leaf.public_bytes(serialization.Encoding.DER), verified=False)
    assert (info.subject, info.issuer) == ("CN=Mail\\x0dServer", "CN=Evil\\x1b[31mCA")
    assert info.sans == ["DNS:mail\\x1b[2J.example"]


async def test_the_store_is_looked_at_once_per_handshake(
    scripted: ScriptedFactory,
    certs: CertBundle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CA file replaced between building the context and keying the chain: the chain
    is remembered under the store that verified it, so the new store is asked next."""
    ca_file = tmp_path / "ca.pem"
    shutil.copy(certs.ca_file, ca_file)
    srv = scripted(Pop3Script(), tls_context=certs.good)
    real = pop3_check.client_context

    def racing(**kw: Any) -> ssl.SSLContext:
        context = real(**kw)  # the store as it was: trusts the test CA
        ca_file.write_bytes(trustme.CA().cert_pem.bytes())  # replaced right now
        tls._ca_seen.clear()  # and the restat interval ends right here
        return context

    monkeypatch.setattr(pop3_check, "client_context", racing)
    assert (await check(srv, ca_file)).status == "up"
    monkeypatch.setattr(pop3_check, "client_context", real)
    monkeypatch.setattr(tls, "CA_RESTAT_S", 0.0)
    second = await check(srv, ca_file)
    assert second.error is not None and second.error.code == "cert_invalid"


def test_a_changed_system_store_is_loaded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = trustme.CA(), trustme.CA()
    bundle = tmp_path / "system.pem"
    bundle.write_bytes(first.cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    monkeypatch.setattr(tls, "CA_RESTAT_S", 0.0)

    def subjects(context: ssl.SSLContext) -> list[Any]:
        return [c["subject"] for c in context.get_ca_certs()]

    before = tls.client_context(verify=True, ca_file=None, pinned=False)
    bundle.write_bytes(second.cert_pem.bytes())
    after = tls.client_context(verify=True, ca_file=None, pinned=False)
    assert after is not before
    assert subjects(before) != subjects(after) and len(subjects(after)) == 1


class _Python313SSLObject:
    """What ``SSLObject`` offers from Python 3.13: the chains as lists of DER bytes."""

    def __init__(self, presented: list[bytes], verified: list[bytes]) -> None:
        self._presented, self._verified = presented, verified

    def get_unverified_chain(self) -> list[bytes]:
        return self._presented

    def get_verified_chain(self) -> list[bytes]:
        return self._verified


def test_the_chains_are_read_as_python_3_13_returns_them() -> None:
    ca = trustme.CA()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    soon, later = now + 5 * DAY, now + 50 * DAY
    leaf = ssl.PEM_cert_to_DER_cert(
        ca.issue_cert("localhost", not_after=later).cert_chain_pems[0].bytes().decode()
    )
    short = ssl.PEM_cert_to_DER_cert(
        ca.issue_cert("short.example", not_after=soon).cert_chain_pems[0].bytes().decode()
    )
    fake = _Python313SSLObject([leaf], [leaf, short])
    assert verified_chains.presented_chain(fake) == (leaf,)  # type: ignore[arg-type]
    verified = verified_chains.verified_chain(fake)  # type: ignore[arg-type]
    assert verified == (leaf, short)
    assert verified_chains.verified_until(verified) == soon.timestamp()
    assert verified_chains.first_expiring(verified) == short


def test_without_the_chain_accessors_nothing_is_remembered() -> None:
    class Bare:
        pass

    assert verified_chains.presented_chain(Bare()) is None  # type: ignore[arg-type]
    assert verified_chains.verified_chain(Bare()) == ()  # type: ignore[arg-type]
    assert verified_chains.verified_until(()) == 0.0
    assert verified_chains.verified_until((b"not a certificate",)) == 0.0


def test_a_leaf_that_can_sign_certificates_is_never_an_anchor() -> None:
    ca = trustme.CA()
    ca_der = ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    key_cert_sign_only = build_cert(
        "localhost", key, "localhost", key, ca=False, extra=(usage,)
    ).public_bytes(serialization.Encoding.DER)
    chains = VerifiedChains()
    for leaf in (ca_der, key_cert_sign_only):
        chains.remember(KEY, (leaf,), verified_until=NOW + 60, now=NOW)
    assert len(chains) == 0
    chains.remember(KEY, (_leaf_der(ca),), verified_until=NOW + 60, now=NOW)
    assert len(chains) == 1  # the control: an ordinary leaf is remembered


def test_disabled_nothing_is_offered_or_remembered() -> None:
    chains = VerifiedChains()
    chain = (_leaf_der(trustme.CA()),)
    chains.remember(KEY, chain, verified_until=NOW + 60, now=NOW)
    chains.enabled = False
    assert chains.context_for(KEY, now=NOW) is None
    chains.remember(TrustKey("system", (), "other"), chain, verified_until=NOW + 60, now=NOW)
    assert len(chains) == 1


def test_a_miss_for_an_unknown_name_still_holds_off_the_shortcut() -> None:
    chains = VerifiedChains()
    chains.missed(KEY, now=NOW)
    chain = (_leaf_der(trustme.CA()),)
    chains.remember(KEY, chain, verified_until=NOW + 10 * TTL_S, now=NOW + 1)
    assert chains.context_for(KEY, now=NOW + 2) is None
    assert chains.context_for(KEY, now=NOW + TTL_S) is not None


def test_an_expired_chain_leaves_the_context() -> None:
    chains = VerifiedChains()
    ca = trustme.CA()
    short, long = (_leaf_der(ca),), (_leaf_der(ca),)
    chains.remember(KEY, short, verified_until=NOW + 10, now=NOW)
    chains.remember(KEY, long, verified_until=NOW + 60, now=NOW)
    both = chains.context_for(KEY, now=NOW)
    assert both is not None and both.cert_store_stats()["x509"] == 2
    one = chains.context_for(KEY, now=NOW + 10)
    assert one is not None and one is not both and one.cert_store_stats()["x509"] == 1
    assert chains.knows(KEY, long) and not chains.knows(KEY, short)


def test_after_a_miss_the_name_gets_no_shortcut_for_the_ttl() -> None:
    chains = VerifiedChains()
    chain = (_leaf_der(trustme.CA()),)
    chains.remember(KEY, chain, verified_until=NOW + 10 * TTL_S, now=NOW)
    chains.missed(KEY, now=NOW)
    assert chains.context_for(KEY, now=NOW + 1) is None
    assert (
        chains.verified_for(KEY, chain, now=NOW + 1) is not None
    )  # what was verified still stands
    chains.remember(KEY, chain, verified_until=NOW + 10 * TTL_S, now=NOW + 60)  # refreshed
    assert chains.context_for(KEY, now=NOW + TTL_S - 1) is None
    assert chains.context_for(KEY, now=NOW + TTL_S) is not None


def test_names_are_bounded_least_recently_used_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verified_chains, "MAX_NAMES", 2)
    chains = VerifiedChains()
    ca = trustme.CA()
    a, b, c = (TrustKey("system", (), name) for name in ("a", "b", "c"))
    for key in (a, b):
        chains.remember(key, (_leaf_der(ca),), verified_until=NOW + 60, now=NOW)
    assert chains.context_for(a, now=NOW) is not None  # a is used: b is now the oldest
    chains.remember(c, (_leaf_der(ca),), verified_until=NOW + 60, now=NOW)
    assert chains.context_for(a, now=NOW) is not None
    assert chains.context_for(b, now=NOW) is None
