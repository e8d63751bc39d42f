"""APOP (RFC 1939 section 7): find a valid timestamp in the greeting, compute the digest.

Rule: a timestamp must look like an RFC 822 msg-id, ``<local@domain>`` in printable
ASCII with exactly one ``@``, or APOP is treated as not offered.
"""

from __future__ import annotations

import hashlib
import re

# Printable ASCII without "<", ">" and "@" on either side of the one "@".
_MSG_ID_PART = r"[\x21-\x3b\x3d\x3f\x41-\x7e]+"
_TIMESTAMP = re.compile(f"<{_MSG_ID_PART}@{_MSG_ID_PART}>")


def find_timestamp(greeting_text: str) -> str | None:
    """Return the ``<...@...>`` timestamp of a greeting, or None when there is no valid one."""
    match = _TIMESTAMP.search(greeting_text)
    return match.group(0) if match else None


def apop_digest(timestamp: str, password: str) -> str:
    """MD5(timestamp + password) in lowercase hex, as APOP requires."""
    digest = hashlib.md5((timestamp + password).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()
