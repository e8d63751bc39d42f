"""Names that travel: monitor names and tags appear in URLs, CLI arguments and logs.

Job: one definition of what a name may contain. Rule: ASCII letters, digits and
``. _ - : @`` only, starting with a letter or digit: safe in a URL path segment and a
shell argument without quoting, never mistaken for a CLI option (``-x``) or a relative
path (``.``, ``..``), no look-alike Unicode, no spaces, no slashes, no control characters.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

NAME_MAX = 64
TAG_MAX = 32
NAME_CHARS = "letters, digits and . _ - : @"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*")


def _checked(value: str, limit: int) -> str:
    if not 1 <= len(value) <= limit:
        raise ValueError(f"must be 1 to {limit} characters long")
    if not _NAME.fullmatch(value):
        raise ValueError(f"may contain only {NAME_CHARS}, and must start with a letter or digit")
    return value


def check_name(value: str) -> str:
    """Validate a monitor (or node) name; raises ``ValueError`` saying what is allowed."""
    return _checked(value, NAME_MAX)


def check_tag(value: str) -> str:
    """Validate a tag: the same characters as a name, shorter."""
    return _checked(value, TAG_MAX)


def is_valid_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= NAME_MAX and bool(_NAME.fullmatch(value))


MonitorName = Annotated[str, AfterValidator(check_name)]
Tag = Annotated[str, AfterValidator(check_tag)]


def unique(values: tuple[str, ...]) -> tuple[str, ...]:
    """Drop repeats, keep the first occurrence's order (tags and dependencies are sets
    written as lists)."""
    return tuple(dict.fromkeys(values))
