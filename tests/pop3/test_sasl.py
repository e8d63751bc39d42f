"""SASL mechanisms and APOP against known answers (RFC examples)."""

from __future__ import annotations

import base64

import pytest

from pop3watch.errors import LocalProtocolError
from pop3watch.pop3 import (
    SaslAbort,
    SaslMechanism,
    apop_digest,
    build_mechanism,
    preferred_mechanisms,
)
from pop3watch.pop3.commands import Apop, Auth, Pass, SaslResponse


def test_apop_rfc1939_example() -> None:
    assert (
        apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
        == "c4c9334bac560ecc979e58001b3e22fb"
    )


def test_cram_md5_rfc2195_example() -> None:
    mech = build_mechanism("CRAM-MD5", user="tim", secret="tanstaaftanstaaf")
    challenge = base64.b64decode("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
    assert mech.respond(challenge) == b"tim b913a602c7eda7a495b4e6e7334d3890"
    with pytest.raises(SaslAbort):
        mech.respond(challenge)


def test_plain_initial_response() -> None:
    assert build_mechanism("plain", user="alice", secret="pw").initial_response() == b"\0alice\0pw"


def test_login_answers_user_then_password_then_aborts() -> None:
    mech = build_mechanism("LOGIN", user="alice", secret="pw")
    assert mech.initial_response() is None
    assert mech.respond(b"Username:") == b"alice"
    assert mech.respond(b"Password:") == b"pw"
    with pytest.raises(SaslAbort):
        mech.respond(b"More:")


def test_xoauth2_and_oauthbearer_formats() -> None:
    x = build_mechanism("XOAUTH2", user="a@example.com", secret="tok")
    assert x.initial_response() == b"user=a@example.com\x01auth=Bearer tok\x01\x01"
    x.initial_sent = True  # with the AUTH command
    assert x.respond(b'{"status":"401"}') == b""
    o = build_mechanism(
        "OAUTHBEARER", user="a,b=c", secret="tok", host="mail.example.com", port=995
    )
    assert (
        o.initial_response()
        == b"n,a=a=2Cb=3Dc,\x01host=mail.example.com\x01port=995\x01auth=Bearer tok\x01\x01"
    )
    o.initial_sent = True
    assert o.respond(b"{}") == b"\x01"


@pytest.mark.parametrize("name", ["PLAIN", "XOAUTH2", "OAUTHBEARER"])
def test_an_initial_response_is_sent_once_whichever_way_it_goes(name: str) -> None:
    """With AUTH, or (too long for the AUTH line) in answer to the first empty
    challenge; never again, however often the server asks."""
    sent_with_auth = build_mechanism(name, user="alice", secret="pw", host="h", port=995)
    initial = sent_with_auth.initial_response()
    assert initial is not None
    sent_with_auth.initial_sent = True
    later = build_mechanism(name, user="alice", secret="pw", host="h", port=995)
    assert later.respond(b"") == initial
    for mech in (sent_with_auth, later):
        answers = _answers_until_abort(mech, rounds=5)
        assert initial not in answers
        assert len(answers) <= 1  # at most the error acknowledgement of the OAuth ones


def _answers_until_abort(mech: SaslMechanism, rounds: int) -> list[bytes]:
    answers = []
    for _ in range(rounds):
        try:
            answers.append(mech.respond(b""))
        except SaslAbort:
            return answers
    raise AssertionError(f"{mech.name} never cancelled: {answers!r}")


def test_plain_cancels_a_challenge_after_its_credentials() -> None:
    mech = build_mechanism("PLAIN", user="alice", secret="pw")
    mech.initial_sent = True
    with pytest.raises(SaslAbort, match="no challenge after"):
        mech.respond(b"")


def test_an_initial_response_waits_for_an_empty_challenge() -> None:
    mech = build_mechanism("PLAIN", user="alice", secret="pw")
    with pytest.raises(SaslAbort, match="empty challenge first"):
        mech.respond(b"Username:")


def test_auth_carries_its_initial_response_only_within_255_octets() -> None:
    short = Auth.starting("XOAUTH2", b"user=a\x01auth=Bearer tok\x01\x01")
    assert short.initial is not None
    token = "x" * 1500  # a Microsoft 365 access token is about this long
    long = Auth.starting("XOAUTH2", f"user=a\x01auth=Bearer {token}\x01\x01".encode())
    assert long.initial is None
    assert long.encode() == b"AUTH XOAUTH2\r\n"
    # the boundary: 255 octets with CRLF pass, 256 do not
    for size in range(150, 200):
        auth = Auth.starting("PLAIN", b"x" * size)
        assert (auth.initial is not None) == (len(Auth("PLAIN", b"x" * size).encode()) <= 255)


def test_preference_depends_on_tls() -> None:
    assert preferred_mechanisms(token=False, tls_active=True)[0] == "PLAIN"
    assert preferred_mechanisms(token=False, tls_active=False)[0] == "CRAM-MD5"
    assert preferred_mechanisms(token=True, tls_active=True) == ("OAUTHBEARER", "XOAUTH2")


def test_redaction_of_commands_hides_every_secret() -> None:
    assert Pass("hunter2").redacted() == "PASS ***"
    assert "hunter2" not in repr(Pass("hunter2"))
    assert Apop("alice", "c4c9").redacted() == "APOP alice ***"
    assert Auth("PLAIN", b"\0a\0hunter2").redacted() == "AUTH PLAIN ***"
    assert SaslResponse(b"hunter2").redacted() == "***"
    assert "hunter2" not in repr(build_mechanism("PLAIN", user="a", secret="hunter2"))


@pytest.mark.parametrize("name", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize(("user", "token"), [("a\x01auth=x", "tok"), ("alice", "tok\x01x")])
def test_token_mechanisms_refuse_their_field_separator(name: str, user: str, token: str) -> None:
    with pytest.raises(LocalProtocolError, match="0x01"):
        build_mechanism(name, user=user, secret=token, host="h", port=995)
