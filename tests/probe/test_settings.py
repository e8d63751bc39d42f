"""Check settings: strict, safe defaults, derived ports, clear refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pop3watch.probe.settings import CheckSettings, TlsMode


def test_defaults_are_safe() -> None:
    s = CheckSettings(host="mail.example.com")
    assert s.effective_port == 110
    assert s.verify is True
    assert s.allow_plaintext_auth is False
    assert s.timeout == 10
    assert CheckSettings(host="x", tls="tls").effective_port == 995
    assert CheckSettings(host="[2001:db8::1]").target == "[2001:db8::1]:110"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bogus": 1}, "Extra inputs"),
        ({"port": 0}, "greater than or equal to 1"),
        ({"timeout": 901}, "less than or equal to 900"),
        ({"tls": "ssl3"}, "Input should be"),
        ({"fingerprint": "abc", "tls": "tls"}, "SHA-256"),
        ({"ca_file": "/x.pem"}, "need a TLS mode"),
        ({"user": "a\r\nDELE 1"}, "CR, LF"),
        ({"warn_rtt_ms": 500, "down_rtt_ms": 100}, "must not exceed"),
        ({"warn_messages": 5}, "need stat"),
        ({"stat": True}, "needs an auth mode"),
        ({"sasl_mechanism": "PLAIN"}, "needs auth: sasl"),
        ({"auth": "sasl", "sasl_mechanism": "GSSAPI"}, "must be one of"),
        ({"password_env": "A", "password_file": "/b"}, "at most one"),
        ({"host": "a b"}, "not a host name"),
        ({"host": "127.0.0.1:995"}, "give the port on its own"),
        ({"host": "[::1]:995"}, "give the port on its own"),
        ({"host": "mail.example.com:110"}, "give the port on its own"),
        ({"host": "mail..example.com"}, "not a host name"),
        ({"host": "-mail.example.com"}, "not a host name"),
        ({"host": "a" * 64 + ".example.com"}, "not a host name"),
        ({"host": "[[::1]]"}, "not a host name"),
        ({"tls": "tls", "server_name": ".example.com"}, "not a host name"),
        ({"tls": "tls", "server_name": "x" * 300}, "not a host name"),
        ({"auth": "user", "user": "al\udcffice"}, "unable to parse raw data"),  # pydantic
        ({"auth": "apop", "user": "alice smith"}, "must not contain a space"),
        ({"warn_rtt_ms": "inf"}, "finite number"),
        ({"timeout": "nan"}, "finite number"),
        (
            {"auth": "sasl", "sasl_mechanism": "XOAUTH2", "user": "a\x01auth=x", "token_env": "T"},
            "0x01",
        ),
    ],
)
def test_invalid_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CheckSettings(**({"host": "mail.example.com"} | fields))


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("mail.example.com", "mail.example.com"),
        ("  mail.example.com.  ", "mail.example.com."),
        ("pop_3.example.com", "pop_3.example.com"),
        ("192.0.2.7", "192.0.2.7"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("mail.b\u00fccher.de", "mail.xn--bcher-kva.de"),
    ],
)
def test_hosts_are_names_or_addresses(given: str, kept: str) -> None:
    assert CheckSettings(host=given).host == kept
    assert CheckSettings(host="x", tls="tls", server_name=given).server_name == kept


def test_fingerprint_is_normalized() -> None:
    pin = ":".join(["AB"] * 32)
    assert CheckSettings(host="x", tls="tls", fingerprint=pin).fingerprint == "ab" * 32


def test_missing_credentials_are_named() -> None:
    assert CheckSettings(host="x", auth="user").missing_fields() == [
        "user",
        "password_env/password_file",
    ]
    token = CheckSettings(host="x", auth="sasl", sasl_mechanism="XOAUTH2", user="u")
    assert token.missing_fields() == ["token_env/token_file/token_command"]
    assert CheckSettings(host="x", auth="sasl", user="u", token_env="T").uses_token


def test_derived_values_follow_a_copy_with_updates() -> None:
    """Port, target and thresholds are cached per instance; a copy with other fields
    must not inherit the original's."""
    plain = CheckSettings(host="mail.example.com", warn_rtt_ms=100)
    assert (plain.effective_port, plain.target) == (110, "mail.example.com:110")
    assert plain.thresholds.warn_rtt_ms == 100
    implicit = plain.model_copy(update={"tls": TlsMode.TLS, "warn_rtt_ms": 250})
    assert (implicit.effective_port, implicit.target) == (995, "mail.example.com:995")
    assert implicit.thresholds.warn_rtt_ms == 250
    assert plain == CheckSettings(host="mail.example.com", warn_rtt_ms=100)  # cache unseen
    assert "target" not in plain.model_dump() and "995" not in repr(implicit)
