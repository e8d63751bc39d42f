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
leaf's validity period and the server's proof that it holds the leaf's key (TLS
CertificateVerify) on every handshake. What it skips, the chain's signatures, is
covered by the rule that the chain presented must be, byte for byte, one that was
verified in full. Anything else (another leaf, other intermediates, an entry past its
time) is no hit: the check verifies in full on a new connection (``pop3_check``).

Rules: nothing here decides that a certificate is good; only a full verification by
OpenSSL adds an entry. Pinned and unverified checks never use it.
"""

from __future__ import annotations

import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

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
    store_stamp: tuple[float, ...]
    server_name: str


@dataclass(slots=True)
class _Entry:
    # presented chain -> wall-clock time (epoch seconds) until which it stands verified
    chains: OrderedDict[Chain, float] = field(default_factory=OrderedDict)
    context: ssl.SSLContext | None = None  # built from the chains' leaves, on demand


def _chain_accessor(ssl_object: ssl.SSLObject, name: str) -> Any:
    # Public from Python 3.13; the same C method is private (``_sslobj``) from 3.10.
    method = getattr(ssl_object, name, None)
    if method is None:
        method = getattr(getattr(ssl_object, "_sslobj", None), name, None)
    return method


def available(ssl_object: ssl.SSLObject) -> bool:
    """Whether this Python lets us read the chains; without them nothing is remembered."""
    return (
        _chain_accessor(ssl_object, "get_unverified_chain") is not None
        and _chain_accessor(ssl_object, "get_verified_chain") is not None
    )


def presented_chain(ssl_object: ssl.SSLObject) -> Chain:
    """The certificates the server sent, leaf first, as DER."""
    certs = _chain_accessor(ssl_object, "get_unverified_chain")() or []
    return tuple(bytes(cert.public_bytes(_DER)) for cert in certs)


def verified_until(ssl_object: ssl.SSLObject) -> float:
    """The earliest ``notAfter`` of the chain OpenSSL verified (leaf to trusted root), in
    epoch seconds: past it, the same chain would no longer verify."""
    certs = _chain_accessor(ssl_object, "get_verified_chain")() or []
    if not certs:
        return 0.0
    return min(ssl.cert_time_to_seconds(cert.get_info()["notAfter"]) for cert in certs)


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
        stale = [chain for chain, until in entry.chains.items() if until <= now]
        for chain in stale:
            del entry.chains[chain]
        if not entry.chains:
            del self._entries[key]
            return None
        if stale:
            entry.context = None
        if entry.context is None:
            entry.context = _anchor_context(entry.chains)
        return entry.context

    def holds(self, key: TrustKey, chain: Chain, *, now: float | None = None) -> bool:
        """Whether ``chain`` was verified in full for ``key`` and still stands."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        until = entry.chains.get(chain)
        return until is not None and until > (time.time() if now is None else now)

    def remember(
        self, key: TrustKey, chain: Chain, verified_until: float, *, now: float | None = None
    ) -> None:
        """Record a chain OpenSSL has just verified in full for ``key``."""
        if not self.enabled or not chain:
            return
        now = time.time() if now is None else now
        until = min(verified_until, now + TTL_S)
        if until <= now:
            return
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= MAX_NAMES:
                self._entries.popitem(last=False)
            entry = self._entries[key] = _Entry()
        else:
            self._entries.move_to_end(key)
        leaves_before = {c[0] for c in entry.chains}
        entry.chains[chain] = until
        entry.chains.move_to_end(chain)
        while len(entry.chains) > MAX_CHAINS_PER_NAME:
            entry.chains.popitem(last=False)
        if {c[0] for c in entry.chains} != leaves_before:
            entry.context = None

    def forget(self, key: TrustKey) -> None:
        """Drop what is remembered for ``key`` (its chain no longer verifies as it did)."""
        self._entries.pop(key, None)


def _anchor_context(chains: OrderedDict[Chain, float]) -> ssl.SSLContext:
    """A client context like the full one (``tls.client_context``), whose trust anchors
    are the remembered leaves themselves."""
    leaves = b"".join(dict.fromkeys(chain[0] for chain in chains))
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=leaves)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


VERIFIED_CHAINS = VerifiedChains()
