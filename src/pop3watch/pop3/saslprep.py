"""SASLprep (RFC 4013), the string preparation SCRAM applies to a password (RFC 5802).

Job: map, normalise and check a password the way a SCRAM server expects, so that a
password typed with a no-break space or a composed accent derives the same key on both
ends. Built on the standard library's RFC 3454 tables (``stringprep``, Unicode 3.2).
"""

from __future__ import annotations

import stringprep
import unicodedata


class SaslprepError(ValueError):
    """The string holds a character SASLprep prohibits, or breaks its bidi rule."""


# RFC 4013 section 2.3: prohibited output (C.1.2 and C.2.1-C.9 of RFC 3454).
_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def saslprep(text: str, *, stored: bool = True) -> str:
    """``text`` prepared by SASLprep. ``stored`` (RFC 3454 section 7): unassigned code
    points are refused, as RFC 5802 asks for a password. Raises SaslprepError."""
    # 2.1 mapping: non-ASCII spaces to SPACE, "commonly mapped to nothing" removed.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    # 2.2 normalisation: form KC.
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for position, ch in enumerate(prepared):
        if any(prohibited(ch) for prohibited in _PROHIBITED):
            raise SaslprepError(f"character {position + 1} (U+{ord(ch):04X}) is prohibited")
        if stored and stringprep.in_table_a1(ch):
            raise SaslprepError(f"character {position + 1} (U+{ord(ch):04X}) is unassigned")
    # 2.4 bidirectional characters (RFC 3454 section 6).
    if any(stringprep.in_table_d1(ch) for ch in prepared):
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            raise SaslprepError("mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise SaslprepError("right-to-left text must begin and end right-to-left")
    return prepared


def changes_under_saslprep(text: str) -> bool:
    """Whether SASLprep would change (or refuse) ``text``: then a SCRAM server that
    prepares the password (as RFC 5802 asks) and one that does not (Dovecot) derive
    different keys from it."""
    try:
        return saslprep(text) != text
    except SaslprepError:
        return True
