"""SASL mechanisms and APOP against known answers (RFC examples)."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pop3watch.errors import LocalProtocolError
from pop3watch.pop3 import (
    SaslAbort,
    SaslMechanism,
    SaslUnusable,
    SaslViolation,
    apop_digest,
    build_mechanism,
    preferred_mechanisms,
)
from pop3watch.pop3.commands import Apop, Auth, Pass, SaslResponse
from pop3watch.pop3.sasl import MAX_SCRAM_ITERATIONS, Scram, ScramSha1, ScramSha256
from pop3watch.pop3.saslprep import SaslprepError, changes_under_saslprep, saslprep


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
    assert preferred_mechanisms(token=False, tls_active=False)[:3] == (
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "CRAM-MD5",
    )
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


# --- SCRAM (RFC 5802, RFC 7677) --------------------------------------------------------

# (mechanism, client nonce, server-first, client-final, server-final): the RFCs' examples,
# user "user", password "pencil".
SCRAM_EXAMPLES = [
    pytest.param(
        ScramSha1,
        "fyko+d2lbbFgONRv9qkxdawL",
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        id="rfc5802-sha1",
    ),
    pytest.param(
        ScramSha256,
        "rOprNGfwEbeRWgbNEkqO",
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        id="rfc7677-sha256",
    ),
]


@pytest.mark.parametrize(
    ("kind", "nonce", "server_first", "client_final", "server_final"), SCRAM_EXAMPLES
)
def test_scram_rfc_examples(
    kind: type[Scram], nonce: str, server_first: bytes, client_final: bytes, server_final: bytes
) -> None:
    mech = kind("user", "pencil", nonce=nonce)
    assert mech.initial_response() == f"n,,n=user,r={nonce}".encode()
    mech.initial_sent = True
    assert mech.unfinished() is not None  # nothing proven yet
    assert mech.respond(server_first) == client_final
    assert mech.respond(server_final) == b""
    assert mech.unfinished() is None
    # The server's signature would let a transcript's reader test passwords offline.
    assert server_final.decode() in mech.secrets()
    with pytest.raises(SaslViolation):
        mech.respond(b"")


@pytest.mark.parametrize(("kind", "nonce", "server_first", "_cf", "server_final"), SCRAM_EXAMPLES)
def test_scram_refuses_a_server_that_does_not_know_the_password(
    kind: type[Scram], nonce: str, server_first: bytes, _cf: bytes, server_final: bytes
) -> None:
    mech = kind("user", "not-pencil", nonce=nonce)
    mech.initial_sent = True
    mech.respond(server_first)
    # The server took the proof it could not check: not a refusal of the credentials.
    with pytest.raises(SaslViolation, match="signature is wrong"):
        mech.respond(server_final)
    assert mech.unfinished() is not None


def test_scram_started_by_an_empty_challenge_and_named_case_insensitively() -> None:
    mech = build_mechanism("scram-sha-256", user="a,b=c", secret="pw")
    assert mech.name == "SCRAM-SHA-256"
    first = mech.respond(b"")  # the server asked for the initial response
    assert first.startswith(b"n,,n=a=2Cb=3Dc,r=")
    nonce = first.rpartition(b"r=")[2]
    assert len(nonce) >= 24 and b"," not in nonce
    again = build_mechanism("SCRAM-SHA-256", user="a,b=c", secret="pw").initial_response()
    assert again is not None and again.startswith(b"n,,n=a=2Cb=3Dc,r=")
    assert again != first  # a fresh nonce for every exchange


def _started(nonce: str = "abc") -> Scram:
    mech = ScramSha256("user", "pencil", nonce=nonce)
    mech.initial_sent = True
    return mech


@pytest.mark.parametrize(
    ("server_first", "error", "match"),
    [
        (b"r=abcdef,s=QSXCR+Q6sek8bf92", SaslViolation, "lacks i"),
        (b"s=QSXCR+Q6sek8bf92,i=4096", SaslViolation, "lacks r"),
        (b"r=xyzdef,s=QSXCR+Q6sek8bf92,i=4096", SaslViolation, "does not extend"),
        (b"r=abc,s=QSXCR+Q6sek8bf92,i=4096", SaslViolation, "does not extend"),
        (b"r=abc\x7fz,s=QSXCR+Q6sek8bf92,i=4096", SaslViolation, "printable"),
        (b"r=abcd,s=not base64!,i=4096", SaslViolation, "not base64"),
        (b"r=abcd,s=,i=4096", SaslViolation, "salt is empty"),
        (b"r=abcd,s=QSXCR+Q6sek8bf92,i=0", SaslViolation, "not a positive number"),
        (b"r=abcd,s=QSXCR+Q6sek8bf92,i=04096", SaslViolation, "not a positive number"),
        (b"r=abcd,s=QSXCR+Q6sek8bf92,i=\xd9\xa4", SaslViolation, "not a positive number"),
        (b"r=abcd,s=QSXCR+Q6sek8bf92,i=-1", SaslViolation, "not a positive number"),
        (b"r=abcd,r=abce,s=QSXCR+Q6sek8bf92,i=1", SaslViolation, "repeats"),
        (b"\xff\xfe", SaslViolation, "not UTF-8"),
        (b"hello world", SaslViolation, "a=value"),
        (b"", SaslViolation, "a=value"),
        (b"m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=4096", SaslUnusable, "extension"),
        (
            f"r=abcd,s=QSXCR+Q6sek8bf92,i={MAX_SCRAM_ITERATIONS + 1}".encode(),
            SaslUnusable,
            "iterations",
        ),
        (b"r=abcd,s=QSXCR+Q6sek8bf92,i=" + b"9" * 5000, SaslUnusable, "iterations"),
    ],
)
def test_scram_rejects_a_bad_server_first_message(
    server_first: bytes, error: type[SaslAbort], match: str
) -> None:
    with pytest.raises(error, match=match):
        _started().respond(server_first)


@pytest.mark.parametrize(
    ("server_final", "error", "match"),
    [
        (b"e=invalid-proof", SaslAbort, "refused the proof: invalid-proof"),
        (b"e=unknown-user", SaslAbort, "refused the proof: unknown-user"),
        (b"e=channel-binding-not-supported", SaslUnusable, "cannot take"),
        (b"e=extensions-not-supported", SaslUnusable, "cannot take"),
        (b"x=1", SaslViolation, "no signature"),
        (b"v=***", SaslViolation, "not base64"),
        (b"v=AAAA", SaslViolation, "signature is wrong"),
        (b"v=AAAA,junk", SaslViolation, "a=value"),
    ],
)
def test_scram_rejects_a_bad_server_final_message(
    server_final: bytes, error: type[SaslAbort], match: str
) -> None:
    mech = _started()
    mech.respond(b"r=abcd,s=QSXCR+Q6sek8bf92,i=1")
    with pytest.raises(error, match=match):
        mech.respond(server_final)
    assert mech.unfinished() is not None
    # Anything that holds a signature is scrubbed, however malformed around it; a
    # server error is not (it explains the failure).
    assert (server_final.decode() in mech.secrets()) == (b"v=" in server_final)


def _client_final_for(count: int, *, tls_active: bool) -> bytes:
    """The client-final that a SCRAM mechanism built as the driver builds it answers to a
    server-first message asking for ``count`` rounds."""
    mech = build_mechanism("SCRAM-SHA-256", user="u", secret="pw", tls_active=tls_active)
    initial = mech.initial_response()
    assert initial is not None
    mech.initial_sent = True
    nonce = initial.rpartition(b"r=")[2]
    return mech.respond(b"r=" + nonce + b"x,s=QSXCR+Q6sek8bf92,i=" + str(count).encode())


def test_scram_without_tls_refuses_a_count_below_rfc7677s_floor() -> None:
    with pytest.raises(SaslUnusable, match="fewer than RFC 7677's 4,096"):
        _client_final_for(4095, tls_active=False)
    assert _client_final_for(4096, tls_active=False).startswith(b"c=biws")
    assert _client_final_for(1, tls_active=True).startswith(b"c=biws")


def test_scram_never_sends_the_password() -> None:
    mech = _started(nonce="n0nce")
    final = mech.respond(b"r=n0nce-server,s=QSXCR+Q6sek8bf92,i=16")
    wire = mech.initial_response() + final
    assert b"pencil" not in wire and base64.b64encode(b"pencil") not in wire


def test_saslprep_rfc4013_examples() -> None:
    assert saslprep("I\u00adX") == "IX"  # soft hyphen mapped to nothing
    assert saslprep("user") == "user"
    assert saslprep("USER") == "USER"
    assert saslprep("\u00aa") == "a"  # NFKC
    assert saslprep("\u2168") == "IX"
    assert saslprep("a\u00a0b") == "a b"  # non-ASCII space to SPACE
    with pytest.raises(SaslprepError, match="prohibited"):
        saslprep("\u0007")
    with pytest.raises(SaslprepError, match="right-to-left"):
        saslprep("\u0627\u0031")
    with pytest.raises(SaslprepError, match="unassigned"):
        saslprep("\u0221")  # unassigned in Unicode 3.2
    assert saslprep("\u0221", stored=False) == "\u0221"


def test_scram_uses_the_password_unprepared_and_knows_when_that_matters() -> None:
    """Dovecot derives its keys from the password as it is, so the client does too;
    ``changes_under_saslprep`` tells a password whose key would differ on a server that
    prepares it (the driver then does not pick SCRAM by itself)."""

    def client_final(password: str) -> bytes:
        mech = ScramSha256("user", password, nonce="n")
        mech.initial_sent = True
        return mech.respond(b"r=n-s,s=QSXCR+Q6sek8bf92,i=2")

    assert client_final("pen\u00adcil") != client_final("pencil")
    assert client_final("pen\u00a0cil") != client_final("pen cil")
    assert not changes_under_saslprep("pencil")
    assert not changes_under_saslprep("p\u00e9ncil")  # NFC already
    assert changes_under_saslprep("pen\u00a0cil")
    assert changes_under_saslprep("pen\u00aacil")
    assert changes_under_saslprep("pen\u0007cil")  # refused by it


_ANY_BYTES = st.binary(max_size=40)
#: Server-first messages that mostly parse (so the server-final is reached), with some
#: bytes anywhere: a salt, a small count, stray attributes.
_SERVER_FIRST = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda r, salt, i, extra: b",".join(
            [b"r=abc" + r, b"s=" + base64.b64encode(salt), b"i=" + i, *extra]
        ),
        st.one_of(st.just(b"d"), _ANY_BYTES),
        st.binary(min_size=1, max_size=16),
        st.one_of(st.integers(1, 64).map(lambda n: str(n).encode()), st.binary(max_size=6)),
        st.lists(st.one_of(st.just(b"x=1"), _ANY_BYTES), max_size=2),
    ),
)
_SERVER_FINAL = st.one_of(
    st.binary(max_size=80),
    st.binary(min_size=1, max_size=40).map(lambda sig: b"v=" + base64.b64encode(sig)),
    st.tuples(st.binary(max_size=40), _ANY_BYTES).map(
        lambda t: b"v=" + base64.b64encode(t[0]) + b"," + t[1]
    ),
    st.sampled_from([b"e=invalid-proof", b"e=other-error", b"e=invalid-encoding"]),
)


@settings(max_examples=300, deadline=None)
@given(server_first=_SERVER_FIRST, server_final=_SERVER_FINAL)
def test_scram_meets_any_server_bytes_with_sasl_abort_only(
    server_first: bytes, server_final: bytes
) -> None:
    """Whatever a hostile server sends, SCRAM answers or raises SaslAbort (a subclass
    says which verdict): never another exception, never an accepted signature, and a
    server-final holding a signature is always scrubbed."""
    mech = _started()
    try:
        mech.respond(server_first)
    except SaslAbort:
        return
    with contextlib.suppress(SaslAbort):
        mech.respond(server_final)
    assert mech.unfinished() is not None
    if b"v=" in server_final:
        assert server_final.decode("utf-8", "replace") in mech.secrets()
