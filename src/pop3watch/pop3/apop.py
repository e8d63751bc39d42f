"""APOP (RFC 1939 section 7): find a valid timestamp in the greeting, compute the digest.

Rule: a timestamp must look like an RFC 822 msg-id, ``<local@domain>`` in printable
ASCII, or APOP is treated as not offered.
"""

from __future__ import annotations

import hashlib
import re

_TIMESTAMP = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>")


def find_timestamp(greeting_text: str) -> str | None:
    """Return the ``<...@...>`` timestamp of a greeting, or None when there is no valid one."""
    match = _TIMESTAMP.search(greeting_text)
    return match.group(0) if match else None


def apop_digest(timestamp: str, password: str) -> str:
    """MD5(timestamp + password) in lowercase hex, as APOP requires."""
    digest = hashlib.md5((timestamp + password).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()
