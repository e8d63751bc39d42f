"""Certificate chains verified in full, remembered so the next checks verify them cheaply.

Job: after OpenSSL verified a server's chain in full (signatures up to a trusted root,
name, validity), remember that chain, so that the next checks of the same name against
the same trust store can skip the signature checks, and only those.

Why: with OpenSSL 3.0, checking the signatures of the chain costs about 15 % of a
verified TLS check's CPU, and a monitor checks the same server every minute while the
answer cannot change: verification is a function of the presented chain, the trust
store, the name and the clock, and all four are part of what is remembered (the chain
by value, the store by its file times, the name as the key, the clock as the earliest
``notAfter`` of the verified chain). Browsers do the same (Chromium's
``CachingCertVerifier`` keeps results for 30 minutes); here an entry lives at most
``TTL_S``.

How: a remembered name gets a context whose only trust anchors are the remembered leaf
certificates (``X509_V_FLAG_PARTIAL_CHAIN``). OpenSSL still checks the host name, the
dates of every certificate it puts in the chain and the server's proof that it holds the
leaf's key (TLS CertificateVerify) on every handshake. What it skips is the signature on
the topmost certificate of the chain it builds from what the server sent: with a leaf
issued straight by a trusted root, the one signature there is; with intermediates, the
one a trusted root made (OpenSSL 3.0 still walks the intermediates the server presents,
and checks their signatures, before it settles for the trusted leaf). That skipped
signature is covered by the rule that the chain presented must be, byte for byte, one
that was verified in full. Anything else (another leaf, other intermediates, an entry
past its time) is a miss: the check verifies in full on a new connection
(``pop3_check``), and the name gets no shortcut for ``TTL_S`` afterwards, so a name
costs at most one second connection an hour whatever its servers do.

Rules: nothing here decides that a certificate is good; only a full verification by
OpenSSL adds an entry. Pinned and unverified checks never use it. A leaf that could
sign certificates itself (CA:TRUE or keyCertSign) is never made a trust anchor.
"""

from __future__ import annotations

import ssl
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from cryptography import x509

from pop3watch.probe.tls_policy import apply_check_policy

# An entry is verified in full again after this long, whatever else happens, so that
# nothing this module does not know about (a CA distrusted in place, say) outlives it.
TTL_S = 3600.0
# Bounds: names remembered, and chains per name (a name served by several machines may
# present several certificates; more than this and the oldest is verified again).
MAX_NAMES = 4096
MAX_CHAINS_PER_NAME = 8

_DER = 2  # _ssl.ENCODING_DER, for the certificates the chain accessors return

Chain = tuple[bytes, ...]  # DER certificates, leaf first, as the server presented them


@dataclass(frozen=True, slots=True)
class TrustKey:
    """What a verification depends on besides the chain and the clock: the trust store
    (a CA file, or the system store, with the times its files last changed) and the name
    the certificate must match."""

    store: str
    store_stamp: tuple[int, ...]
    server_name: str


class Verified(NamedTuple):
    """What a full verification of a presented chain found, as remembered."""

    until: float  # wall-clock time (epoch seconds) until which the chain stands verified
    # DER of the certificate above the leaf, in the chain OpenSSL verified, that expires
    # first (``first_expiring``); None when there is none.
    first_expiring: bytes | None


@dataclass(slots=True)
class _Entry:
    # presented chain -> what its full verification found
    chains: OrderedDict[Chain, Verified] = field(default_factory=OrderedDict)
    context: ssl.SSLContext | None = None  # built from the chains' leaves, on demand
    # After a miss, no shortcut before this wall-clock time: full verifications only.
    no_shortcut_until: float = 0.0


def _read_chain(ssl_object: ssl.SSLObject, name: str) -> Chain | None:
    """``get_unverified_chain`` or ``get_verified_chain`` as DER, leaf first; None when
    this Python does not tell. Public from Python 3.13 (a list of DER bytes); from 3.10
    the same C method is private (``_sslobj``) and returns ``_ssl.Certificate`` objects."""
    try:
        method = getattr(ssl_object, name, None)
        if method is None:
            method = getattr(getattr(ssl_object, "_sslobj", None), name)
        certs: Sequence[Any] = method() or ()
        return tuple(c if isinstance(c, bytes) else bytes(c.public_bytes(_DER)) for c in certs)
    except Exception:  # an interpreter without the accessors: no shortcut, no harm
        return None


def presented_chain(ssl_object: ssl.SSLObject) -> Chain | None:
    """The certificates the server sent, leaf first, as DER; None when this Python does
    not tell (nothing is remembered then)."""
    return _read_chain(ssl_object, "get_unverified_chain")


def verified_chain(ssl_object: ssl.SSLObject) -> Chain:
    """The chain OpenSSL built and verified, leaf to trusted root, as DER; () when this
    Python does not tell."""
    return _read_chain(ssl_object, "get_verified_chain") or ()


@lru_cache(maxsize=1024)
def _not_after(der: bytes) -> float:
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


def _end(der: bytes) -> float | None:
    """A certificate's ``notAfter`` in epoch seconds; None where cryptography cannot read
    what OpenSSL accepted."""
    try:
        return _not_after(der)
    except Exception:
        return None


def first_expiring(verified: Chain) -> bytes | None:
    """The certificate above the leaf of a verified chain (leaf to trusted root) whose
    ``notAfter`` comes first: the chain stops verifying then. Certificates whose date
    cannot be read are left out (such a chain is remembered for no time at all)."""
    dated = [(end, der) for der in verified[1:] if (end := _end(der)) is not None]
    return min(dated, key=lambda pair: pair[0])[1] if dated else None


def verified_until(verified: Chain) -> float:
    """The earliest ``notAfter`` of a verified chain, in epoch seconds: past it, the same
    chain would no longer verify. 0 when unknown (a date cannot be read, or no chain)."""
    ends = [_end(der) for der in verified]
    if not ends or None in ends:
        return 0.0
    return min(end for end in ends if end is not None)


@lru_cache(maxsize=256)
def _can_sign_certificates(der: bytes) -> bool:
    """CA:TRUE, keyCertSign or a v1 certificate (which OpenSSL takes for a CA when it is
    self-signed): as a trust anchor such a leaf would vouch for chains a full
    verification refuses, and only the byte-for-byte rule would stop them."""
    try:
        cert = x509.load_der_x509_certificate(der)
        if cert.version is x509.Version.v1:
            return True
        for extension in cert.extensions:
            value = extension.value
            if isinstance(value, x509.BasicConstraints) and value.ca:
                return True
            if isinstance(value, x509.KeyUsage) and value.key_cert_sign:
                return True
    except Exception:  # any extension cryptography cannot read: not worth a shortcut
        return True
    return False


class VerifiedChains:
    """The remembered chains of one process; see the module docstring."""

    def __init__(self) -> None:
        self.enabled = True
        self._entries: OrderedDict[TrustKey, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def context_for(self, key: TrustKey, *, now: float | None = None) -> ssl.SSLContext | None:
        """A context trusting exactly the leaves remembered for ``key``, or None when
        nothing current is remembered (the check then verifies in full)."""
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = time.time() if now is None else now
        stale = [chain for chain, found in entry.chains.items() if found.until <= now]
        for chain in stale:
            del entry.chains[chain]
        if not entry.chains and entry.no_shortcut_until <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)  # least recently used names go first
        if stale:
            entry.context = None
        if not entry.chains or entry.no_shortcut_until > now:
            return None
        if entry.context is None:
            try:
                entry.context = _anchor_context(entry.chains)
            except (ssl.SSLError, ValueError):  # pragma: no cover - OpenSSL refused a DER
                self._entries.pop(key, None)  # it once verified: a full verification
                return None
        return entry.context

    def missed(self, key: TrustKey, *, now: float | None = None) -> None:
        """A handshake with the shortcut met a chain it could not vouch for: verify this
        name in full for ``TTL_S`` (what it then verifies is still remembered)."""
        now = time.time() if now is None else now
        entry = self._entries.get(key) or self._add(key)
        entry.no_shortcut_until = now + TTL_S

    def verified_for(
        self, key: TrustKey, chain: Chain, *, now: float | None = None
    ) -> Verified | None:
        """What the full verification of ``chain`` for ``key`` found, if there was one and
        it still stands; None otherwise."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        found = entry.chains.get(chain)
        if found is None or found.until <= (time.time() if now is None else now):
            return None
        return found

    def knows(self, key: TrustKey, chain: Chain) -> bool:
        """Whether ``chain`` was verified in full for ``key``, current or not: a chain
        whose time ran out during a handshake is no miss."""
        entry = self._entries.get(key)
        return entry is not None and chain in entry.chains

    def record(self, key: TrustKey, ssl_object: ssl.SSLObject) -> bytes | None:
        """Remember the chain of a handshake OpenSSL has just verified in full, and return
        its ``first_expiring`` certificate above the leaf (the check reports when it
        expires). The presented chain is read only when it will be kept (not while
        disabled)."""
        verified = verified_chain(ssl_object)
        first = first_expiring(verified)
        if self.enabled:
            chain = presented_chain(ssl_object)
            if chain is not None:
                # Keep the presented chain's copy when it is one of its certificates.
                first = next((der for der in chain if der == first), first)
                self.remember(key, chain, verified_until(verified), first_expiring=first)
        return first

    def remember(
        self,
        key: TrustKey,
        chain: Chain,
        verified_until: float,
        *,
        first_expiring: bytes | None = None,
        now: float | None = None,
    ) -> None:
        """Record a chain OpenSSL has just verified in full for ``key`` (with the
        ``first_expiring`` certificate above its leaf in the chain OpenSSL built)."""
        if not self.enabled or not chain or _can_sign_certificates(chain[0]):
            return
        now = time.time() if now is None else now
        until = min(verified_until, now + TTL_S)
        if until <= now:
            return
        entry = self._entries.get(key)
        if entry is None:
            entry = self._add(key)
        else:
            self._entries.move_to_end(key)
        leaves_before = {c[0] for c in entry.chains}
        entry.chains[chain] = Verified(until, first_expiring)
        entry.chains.move_to_end(chain)
        while len(entry.chains) > MAX_CHAINS_PER_NAME:
            entry.chains.popitem(last=False)
        if {c[0] for c in entry.chains} != leaves_before:
            entry.context = None

    def _add(self, key: TrustKey) -> _Entry:
        if len(self._entries) >= MAX_NAMES:
            self._entries.popitem(last=False)
        entry = self._entries[key] = _Entry()
        return entry


def _anchor_context(chains: OrderedDict[Chain, Verified]) -> ssl.SSLContext:
    """A client context like the full one (``tls.client_context``), whose trust anchors
    are the remembered leaves themselves."""
    leaves = b"".join(dict.fromkeys(chain[0] for chain in chains))
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=leaves)
    # The full context's rules (partial chains included: a leaf is no self-signed root).
    return apply_check_policy(context)


VERIFIED_CHAINS = VerifiedChains()
