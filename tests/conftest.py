"""Fixtures shared by every test folder: the real Dovecot, certificates, scripted servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pop3watch.probe import tls
from pop3watch.probe.verified_chains import VERIFIED_CHAINS
from tests.fixtures.certs import certs
from tests.fixtures.dovecot import dovecot
from tests.fixtures.scripted import scripted

__all__ = ["certs", "dovecot", "scripted"]


def _forget_tls_state() -> None:
    VERIFIED_CHAINS.clear()
    tls._ca_seen.clear()
    tls._system_seen = None
    tls._cached_context.cache_clear()


@pytest.fixture(autouse=True)
def _no_remembered_chains() -> Iterator[None]:
    """Every test starts with no chain remembered from another test's checks (the
    process-wide ``VERIFIED_CHAINS``), so a test's first TLS check verifies in full, and
    with no trust store looked at yet (a test may point SSL_CERT_FILE elsewhere)."""
    _forget_tls_state()
    yield
    _forget_tls_state()
