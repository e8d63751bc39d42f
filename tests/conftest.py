"""Fixtures shared by every test folder: the real Dovecot, certificates, scripted servers."""

from __future__ import annotations

from tests.fixtures.certs import certs
from tests.fixtures.dovecot import dovecot
from tests.fixtures.scripted import scripted

__all__ = ["certs", "dovecot", "scripted"]
