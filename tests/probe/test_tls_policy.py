"""The check verifies certificates by the same rules on every Python (``tls_policy``):
not OpenSSL's strict mode, which Python 3.13 turned on by default, and certificates in
``ca_file`` are trust anchors even when they are not self-signed roots."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pop3watch.probe import CheckResult, CheckSettings, check_pop3, tls
from pop3watch.probe.verified_chains import VERIFIED_CHAINS
from tests.fixtures.certs import LOCAL_SAN, build_cert, server_context
from tests.fixtures.scripted import Pop3Script, ScriptedFactory, ScriptedServer


async def _check(srv: ScriptedServer, ca_file: Path, **kw: Any) -> CheckResult:
    settings = CheckSettings(
        host=srv.host, port=srv.port, tls="tls", ca_file=ca_file, server_name="localhost", **kw
    )
    result = await check_pop3(settings)
    await asyncio.to_thread(srv.wait_idle)
    return result


def _pem(path: Path, *certs: Any) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def _strict_verdict(port: int, ca_file: Path) -> str | None:
    """What a stdlib client in OpenSSL's strict mode says of the server's chain: None
    when it accepts it, else OpenSSL's reason."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            with context.wrap_socket(sock, server_hostname="localhost"):
                return None
        except ssl.SSLCertVerificationError as exc:
            return str(exc.verify_message)


async def test_a_chain_strict_mode_refuses_for_its_encoding_is_up(
    scripted: ScriptedFactory, tmp_path: Path
) -> None:
    """A private CA without key identifiers or key usage, as old ``openssl x509 -req``
    recipes make them: mail clients accept the chain, OpenSSL's strict mode does not. The
    check is up, on the full verification and on the remembered chain alike."""
    ca_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "12")
    ca = build_cert("Old Private CA", ca_key, "Old Private CA", ca_key, ca=True)
    leaf = build_cert("localhost", leaf_key, "Old Private CA", ca_key, ca=False, san=LOCAL_SAN)
    ca_file = _pem(tmp_path / "ca.pem", ca)
    srv = scripted(Pop3Script(), tls_context=server_context(tmp_path, leaf_key, leaf))

    refused = await asyncio.to_thread(_strict_verdict, srv.port, ca_file)
    assert refused is not None and "Key Identifier" in refused  # it is non-conformant
    VERIFIED_CHAINS.clear()
    for _ in range(2):  # full verification, then against the remembered chain
        result = await _check(srv, ca_file)
        assert result.status == "up", result.error
        assert result.tls and result.tls.cert and result.tls.cert.verified is True
    assert srv.connections == 3  # the strict probe and two checks: no second connection
    assert not (
        tls.client_context(verify=True, ca_file=ca_file, pinned=False).verify_flags
        & ssl.VERIFY_X509_STRICT
    )


async def test_an_intermediate_in_ca_file_is_a_trust_anchor(
    scripted: ScriptedFactory, tmp_path: Path
) -> None:
    """An admin who trusts the issuing CA of an internal hierarchy, without its root:
    the chain verifies up to that certificate, whether the server sends it or not."""
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "123")
    inter = build_cert("Issuing CA", inter_key, "Offline Root", root_key, ca=True)
    leaf = build_cert("localhost", leaf_key, "Issuing CA", inter_key, ca=False, san=LOCAL_SAN)
    ca_file = _pem(tmp_path / "issuing.pem", inter)
    VERIFIED_CHAINS.clear()
    for stem, chain in (("with-issuer", (leaf, inter)), ("leaf-only", (leaf,))):
        context = server_context(tmp_path, leaf_key, *chain, stem=stem)
        srv = scripted(Pop3Script(), tls_context=context)
        result = await _check(srv, ca_file)
        assert result.status == "up", result.error
        assert result.tls and result.tls.cert and result.tls.cert.verified is True

    # Trusting neither the issuer nor a root is still refused.
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = build_cert("Stranger CA", stranger_key, "Stranger CA", stranger_key, ca=True)
    srv = scripted(Pop3Script(), tls_context=server_context(tmp_path, leaf_key, leaf, inter))
    result = await _check(srv, _pem(tmp_path / "stranger.pem", stranger))
    assert result.error is not None and result.error.code == "cert_invalid"
