"""TLS for the check: client contexts, handshake error mapping, certificate facts.

Job: build (and cache) the client ``SSLContext`` for a check, turn handshake failures
into ``tls_failed``/``cert_invalid`` with a reason, and read certificate facts from the
DER with ``cryptography`` so they are reported even when verification is off.
Rule: TLS below 1.2 is never negotiated.
"""

from __future__ import annotations

import hashlib
import ssl
import time
import warnings
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID

from pop3watch.errors import CertInvalid, ConfigError, TlsFailed
from pop3watch.probe.result import CertInfo, ChainCertInfo
from pop3watch.probe.tls_policy import apply_check_policy
from pop3watch.probe.transcript import escape
from pop3watch.probe.verified_chains import TrustKey

# OpenSSL reasons meaning "the peer is not speaking TLS at all".
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
    }
)
# OpenSSL reasons meaning "the peer only offers protocol versions we refuse".
_OLD_PROTOCOL_REASONS = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_PROTOCOLS_AVAILABLE",
        "VERSION_TOO_LOW",
    }
)


# What a trust store's files looked like: (mtime_ns, ctime_ns, inode, size) per file. The
# ctime and inode catch a replacement that kept the mtime (``cp -p``, rsync).
Stamp = tuple[int, ...]


@lru_cache(maxsize=64)
def _cached_context(verify: bool, ca_file: str | None, stamp: Stamp | None) -> ssl.SSLContext:
    if verify:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # TLS 1.2+, no renegotiation, and the same verification flags on every Python (the
    # context that trusts remembered chains gets the same rules).
    return apply_check_policy(context)


# A trust store is looked at (stat) at most this often: a replaced file is picked up
# within this time, and checks in between cost no system call for it.
CA_RESTAT_S = 1.0
# ca_file -> (when it was last looked at, on the monotonic clock; its stamp then)
_ca_seen: dict[Path, tuple[float, Stamp]] = {}
# (when the system store was last looked at, on the monotonic clock; its stamp then)
_system_seen: tuple[float, Stamp] | None = None
_MISSING: Stamp = (-1, -1, -1, -1)


def _file_stamp(path: Path) -> Stamp:
    st = path.stat()
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size)


def _ca_stamp(ca_file: Path) -> Stamp:
    now = time.monotonic()
    seen = _ca_seen.get(ca_file)
    if seen is not None and now - seen[0] < CA_RESTAT_S:
        return seen[1]
    try:
        stamp = _file_stamp(ca_file)
    except OSError as exc:
        raise ConfigError(f"ca_file {ca_file}: {exc.strerror}") from None
    except ValueError as exc:  # a NUL byte in the path
        raise ConfigError(f"ca_file {ca_file!r}: {exc}") from None
    if len(_ca_seen) >= 4096:  # bounded, like the context cache
        _ca_seen.clear()
    _ca_seen[ca_file] = (now, stamp)
    return stamp


def _system_store_stamp() -> Stamp:
    """The stamps of the system trust store's file and directory (OpenSSL's default
    verify paths, after SSL_CERT_FILE/SSL_CERT_DIR), looked at most once per
    ``CA_RESTAT_S``: ``update-ca-certificates`` rewrites the one and relinks the other."""
    global _system_seen
    now = time.monotonic()
    if _system_seen is not None and now - _system_seen[0] < CA_RESTAT_S:
        return _system_seen[1]
    paths = ssl.get_default_verify_paths()
    stamp: Stamp = ()
    for path in (paths.cafile, paths.capath):
        try:
            stamp += _file_stamp(Path(path)) if path else _MISSING
        except OSError:
            stamp += _MISSING
    _system_seen = (now, stamp)
    return stamp


def trust_key(ca_file: Path | None, server_name: str) -> TrustKey:
    """What a full verification of a chain for ``server_name`` depends on, besides the
    chain and the clock (see ``verified_chains``). Hand it to ``client_context`` too, so
    the context and the remembered chains come from the same look at the store."""
    if ca_file is None:
        return TrustKey("system", _system_store_stamp(), server_name)
    return TrustKey(str(ca_file), _ca_stamp(ca_file), server_name)


def client_context(
    *, verify: bool, ca_file: Path | None, pinned: bool, key: TrustKey | None = None
) -> ssl.SSLContext:
    """The context for one check; cached, since loading a CA store costs milliseconds.

    With a pinned fingerprint the pin replaces chain and name verification (that is the
    point of pinning a self-signed certificate), so OpenSSL does not verify then. A
    ``ca_file`` or system store that changes on disk is loaded again (within
    ``CA_RESTAT_S``); with ``key`` (``trust_key``), the store as that key saw it.
    """
    if not verify or pinned:
        return _cached_context(False, None, None)
    if key is not None:
        stamp = key.store_stamp
    else:
        stamp = _system_store_stamp() if ca_file is None else _ca_stamp(ca_file)
    if ca_file is None:
        return _cached_context(True, None, stamp)
    try:
        return _cached_context(True, str(ca_file), stamp)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"ca_file {ca_file} is not a PEM CA bundle: {exc}") from None


@lru_cache(maxsize=1)
def legacy_probe_context() -> ssl.SSLContext:
    """A context that accepts anything down to TLS 1.0, used only to *diagnose* why a
    handshake failed (which version the server offers). Never used for a session."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def worth_diagnosing(exc: BaseException) -> bool:
    """A handshake that died without a reason (reset, EOF, protocol alert) may be a
    server offering only old TLS versions; a second, diagnostic handshake can tell."""
    if isinstance(exc, ssl.SSLError):
        return getattr(exc, "reason", None) in _OLD_PROTOCOL_REASONS
    return isinstance(exc, ConnectionError | EOFError)


def old_version_error(version: str) -> TlsFailed:
    return TlsFailed(f"the server offers only {version}; TLS versions below 1.2 are refused")


def is_not_tls(exc: BaseException) -> bool:
    """True when the handshake failed because the server does not speak TLS."""
    return isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) in _NOT_TLS_REASONS


def handshake_error(exc: BaseException) -> TlsFailed:
    """Map a handshake exception to ``cert_invalid`` or ``tls_failed`` with a reason."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertInvalid(exc.verify_message or str(exc))
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)
        if reason in _OLD_PROTOCOL_REASONS:
            return TlsFailed("the server offers only TLS versions below 1.2, which are refused")
        if reason in _NOT_TLS_REASONS:
            return TlsFailed("the server does not speak TLS on this port")
        return TlsFailed(reason.lower().replace("_", " ") if reason else str(exc))
    if isinstance(exc, ConnectionError | EOFError):
        return TlsFailed("the server closed the connection during the handshake")
    return TlsFailed(f"{type(exc).__name__}: {exc}")


def _subject(cert: x509.Certificate) -> str:
    return _name(cert, issuer=False)


def _issuer(cert: x509.Certificate) -> str:
    return _name(cert, issuer=True)


def _name(cert: x509.Certificate, *, issuer: bool) -> str:
    """A certificate's subject or issuer as RFC 4514 text, escaped like server text (a CA
    chose it). cryptography decodes the name only when it is read, and refuses some that
    OpenSSL accepts (a T61String holding Latin-1, an unknown string type)."""
    try:
        return escape((cert.issuer if issuer else cert.subject).rfc4514_string())
    except ValueError:
        return "<undecodable>"


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    except x509.UnsupportedGeneralNameType:
        # x400Address or ediPartyName among the names: OpenSSL verifies such a
        # certificate, so the check must still report it, only without its names.
        return ["<unsupported name type>"]
    except (ValueError, x509.DuplicateExtension):
        return ["<malformed>"]
    san = ext.value
    assert isinstance(san, x509.SubjectAlternativeName)
    names: list[str] = [f"DNS:{escape(n)}" for n in san.get_values_for_type(x509.DNSName)]
    names += [f"IP:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def _key_facts(cert: x509.Certificate) -> dict[str, Any]:
    """key_type, key_bits and key_curve of the leaf's public key; whatever cannot be
    read (an unknown algorithm, a malformed key OpenSSL still took) stays None."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return {}
    if isinstance(key, rsa.RSAPublicKey):
        return {"key_type": "RSA", "key_bits": key.key_size}
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"key_type": "EC", "key_bits": key.key_size, "key_curve": key.curve.name}
    if isinstance(key, ed25519.Ed25519PublicKey):
        return {"key_type": "Ed25519", "key_bits": 256}
    if isinstance(key, ed448.Ed448PublicKey):
        return {"key_type": "Ed448", "key_bits": 456}
    if isinstance(key, dsa.DSAPublicKey):
        return {"key_type": "DSA", "key_bits": key.key_size}
    return {}


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return algorithm.name if algorithm is not None else None


@lru_cache(maxsize=1024)
def _parsed(der: bytes) -> CertInfo:
    """The facts that depend on the certificate alone. Cached by its DER: parsing costs
    a noticeable share of a TLS check, and a server presents the same certificate for
    months. ``days_left`` and ``verified`` are filled in per check."""
    try:
        # cryptography reads the fields lazily: the dates are read inside the guard too.
        cert = x509.load_der_x509_certificate(der)
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except ValueError as exc:
        raise TlsFailed(f"the server certificate cannot be parsed: {exc}") from None
    return CertInfo(
        subject=_subject(cert),
        issuer=_issuer(cert),
        sans=_sans(cert),
        serial=format(cert.serial_number, "x"),
        not_before=not_before,
        not_after=not_after,
        days_left=0,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        verified=False,
        signature_hash=_signature_hash(cert),
        **_key_facts(cert),
    )


@lru_cache(maxsize=1024)
def _dated(der: bytes, days_left: int, verified: bool) -> CertInfo:
    """The facts with the per-check fields set; cached too (the model is frozen, so one
    object serves every check of the same certificate on the same day)."""
    return _parsed(der).model_copy(update={"days_left": days_left, "verified": verified})


def cert_info(der: bytes, *, verified: bool, now: datetime | None = None) -> CertInfo:
    """Facts about the leaf certificate, read straight from its DER."""
    now = now or datetime.now(UTC)
    days_left = int((_parsed(der).not_after - now).total_seconds() // 86400)
    return _dated(der, days_left, verified)


@lru_cache(maxsize=1024)
def _chain_cert(der: bytes) -> tuple[str, datetime] | None:
    """(subject, notAfter) of a certificate in a verified chain; None if its date cannot
    be read. OpenSSL accepted it, so nothing about it may raise out of the check."""
    try:
        cert = x509.load_der_x509_certificate(der)
        not_after = cert.not_valid_after_utc
    except Exception:
        return None
    return _subject(cert), not_after


@lru_cache(maxsize=1024)
def _chain_dated(subject: str, not_after: datetime, days_left: int) -> ChainCertInfo:
    return ChainCertInfo(subject=subject, not_after=not_after, days_left=days_left)


def chain_expiry(first_expiring: bytes | None, now: datetime) -> ChainCertInfo | None:
    """Facts about the certificate above the leaf that expires first in a verified chain
    (``verified_chains.first_expiring``): the chain breaks then, whatever the leaf's own
    date. None when there is none (the leaf itself is trusted, or nothing was verified)."""
    facts = None if first_expiring is None else _chain_cert(first_expiring)
    if facts is None:
        return None
    subject, not_after = facts
    days_left = int((not_after - now).total_seconds() // 86400)
    return _chain_dated(subject, not_after, days_left)


def check_pin(info: CertInfo, pin: str, now: datetime) -> None:
    """A pinned certificate must match the pin and be within its validity period."""
    if info.fingerprint_sha256 != pin:
        raise CertInvalid(f"pin mismatch: the server presented {info.fingerprint_sha256}")
    if now > info.not_after:
        raise CertInvalid(f"certificate has expired (not after {info.not_after.isoformat()})")
    if now < info.not_before:
        raise CertInvalid(
            f"certificate is not yet valid (not before {info.not_before.isoformat()})"
        )
