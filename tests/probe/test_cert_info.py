"""The leaf's facts read from its DER (``tls.cert_info``): key and signature."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pop3watch.probe.tls import cert_info
from tests.fixtures.certs import build_cert


def _self_signed(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    algorithm: hashes.HashAlgorithm | None,
) -> bytes:
    cert = build_cert(
        "mail.example.org", key, "mail.example.org", key, ca=False, algorithm=algorithm
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("key", "algorithm", "expected"),
    [
        (rsa.generate_private_key(65537, 2048), hashes.SHA256(), ("RSA", 2048, None, "sha256")),
        (
            ec.generate_private_key(ec.SECP384R1()),
            hashes.SHA384(),
            ("EC", 384, "secp384r1", "sha384"),
        ),
        (ed25519.Ed25519PrivateKey.generate(), None, ("Ed25519", 256, None, None)),
    ],
    ids=["rsa-2048", "p-384", "ed25519"],
)
def test_key_and_signature(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    algorithm: hashes.HashAlgorithm | None,
    expected: tuple[str, int, str | None, str | None],
) -> None:
    info = cert_info(_self_signed(key, algorithm), verified=False)
    assert (info.key_type, info.key_bits, info.key_curve, info.signature_hash) == expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_sha1_signature_is_named(tmp_path: Path) -> None:
    """What a security review looks for; cryptography no longer signs with SHA-1, so the
    certificate comes from the openssl command, as an old CA made them."""
    der = tmp_path / "sha1.der"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha1",
            "-subj",
            "/CN=old.example.org",
            "-days",
            "30",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-outform",
            "DER",
            "-out",
            str(der),
        ],
        check=True,
        capture_output=True,
    )
    info = cert_info(der.read_bytes(), verified=False)
    assert (info.key_type, info.key_bits, info.signature_hash) == ("RSA", 2048, "sha1")
