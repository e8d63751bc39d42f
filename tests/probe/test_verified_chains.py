"""Chains verified in full are remembered, and reused only while nothing they depend on
has changed: another leaf, another chain, another trust store or a passed ``notAfter``
sends the check back to a full verification, whose verdict is the one reported."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from pop3watch.probe import CheckResult, CheckSettings, check_pop3, pop3_check, tls
from pop3watch.probe.verified_chains import (
    MAX_CHAINS_PER_NAME,
    TTL_S,
    VERIFIED_CHAINS,
    TrustKey,
    VerifiedChains,
)
from tests.fixtures.certs import CertBundle
from tests.fixtures.scripted import Pop3Script, ScriptedFactory, ScriptedServer

PASSWORD = "wonderland"


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

    VERIFIED_CHAINS.clear()  # the control: without the remembered chain it fails
    third = await check(srv, certs.ca_file)
    assert third.error is not None and third.error.code == "cert_invalid"


async def test_a_renewed_certificate_is_verified_in_full_on_a_new_connection(
    scripted: ScriptedFactory, certs: CertBundle
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

    again = await check(renewed, certs.ca_file)  # now remembered too: no retry
    assert again.status == "up" and renewed.connections == 3
    assert (await check(before, certs.ca_file)).status == "up"
    assert before.connections == 2  # the old leaf is still remembered beside the new one


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
    scripted: ScriptedFactory, certs: CertBundle
) -> None:
    plain_chain = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(plain_chain, certs.ca_file)).status == "up"
    longer_chain = scripted(Pop3Script(), tls_context=certs.good_with_ca)

    result = await check(longer_chain, certs.ca_file)
    assert result.status == "up", result.error
    assert longer_chain.connections == 2
    assert "a chain other than the one verified before" in notes(result)


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
    assert PASSWORD.encode() not in renewed.sent_before_tls()
    assert result.capabilities  # from the verified session, not the dropped one


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
    monkeypatch.setattr(VERIFIED_CHAINS, "enabled", False)
    srv = scripted(Pop3Script(), tls_context=certs.good)
    assert (await check(srv, certs.ca_file)).status == "up"
    assert len(VERIFIED_CHAINS) == 0


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
    assert chains.holds(KEY, chain, now=NOW + 59)
    assert chains.context_for(KEY, now=NOW + 59) is not None
    assert not chains.holds(KEY, chain, now=NOW + 60)
    assert chains.context_for(KEY, now=NOW + 60) is None
    assert len(chains) == 0  # nothing current left: the name is dropped

    chains.remember(KEY, chain, verified_until=NOW + 10 * TTL_S, now=NOW)
    assert chains.holds(KEY, chain, now=NOW + TTL_S - 1)
    assert not chains.holds(KEY, chain, now=NOW + TTL_S)


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
    chains.remember(KEY, second, verified_until=NOW + 60, now=NOW)
    two = chains.context_for(KEY, now=NOW)
    assert two is not None and two is not one and two.cert_store_stats()["x509"] == 2
    assert chains.context_for(KEY, now=NOW) is two  # built once per set of leaves
    assert not chains.holds(TrustKey("/etc/ca.pem", (2.0,), "localhost"), first, now=NOW)
    assert not chains.holds(TrustKey("/etc/ca.pem", (1.0,), "mail.example"), first, now=NOW)


def test_chains_per_name_are_bounded_oldest_out() -> None:
    chains = VerifiedChains()
    ca = trustme.CA()
    leaves = [(_leaf_der(ca),) for _ in range(MAX_CHAINS_PER_NAME + 1)]
    for chain in leaves:
        chains.remember(KEY, chain, verified_until=NOW + 60, now=NOW)
    assert not chains.holds(KEY, leaves[0], now=NOW)
    assert all(chains.holds(KEY, chain, now=NOW) for chain in leaves[1:])
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
    assert before.store == "system" and 1_000_000 in before.store_stamp
    assert tls.trust_key(None, "localhost") == before
    os.utime(bundle, (2_000_000, 2_000_000))  # update-ca-certificates rewrote it
    after = tls.trust_key(None, "localhost")
    assert after != before and 2_000_000 in after.store_stamp
