"""CAPA as a value (RFC 2449): typed lookups of what the server advertised."""

from __future__ import annotations

import pytest

from pop3watch.pop3 import Capabilities


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["USER", "LOGIN-DELAY 900"], 900),
        (["login-delay 0 USER"], 0),  # varies by user: the first argument is the floor
        (["LOGIN-DELAY"], None),
        (["LOGIN-DELAY soon"], None),
        (["LOGIN-DELAY \u0669"], None),  # an Arabic-Indic digit is no RFC 2449 number
        (["LOGIN-DELAY " + "9" * 5000], None),  # no int() of a hostile server's digits
        (["USER", "SASL PLAIN"], None),
    ],
)
def test_login_delay(lines: list[str], expected: int | None) -> None:
    assert Capabilities.from_lines(lines).login_delay == expected


def test_typed_lookups() -> None:
    caps = Capabilities.from_lines(
        ["STLS", "sasl plain scram-sha-256", "IMPLEMENTATION Dove cot", ""]
    )
    assert caps.stls and not caps.user
    assert caps.sasl_mechanisms == ("PLAIN", "SCRAM-SHA-256")
    assert caps.implementation == "Dove cot"
