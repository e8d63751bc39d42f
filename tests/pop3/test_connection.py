"""The sans-IO core, fed bytes by hand: events, states, limits, STLS injection."""

from __future__ import annotations

import pytest

from pop3watch.errors import (
    Disconnected,
    LocalProtocolError,
    ProtocolViolation,
    StarttlsInjection,
)
from pop3watch.pop3 import (
    NEED_DATA,
    Apop,
    Auth,
    Capa,
    Challenge,
    ConnectionClosed,
    Err,
    Greeting,
    Limits,
    MultiLine,
    Noop,
    Ok,
    Pass,
    Pop3Connection,
    Quit,
    SaslCancel,
    SaslResponse,
    Stat,
    State,
    Stls,
    User,
)


def greeted(
    text: bytes = b"+OK ready <1.2@host>\r\n", limits: Limits | None = None
) -> Pop3Connection:
    conn = Pop3Connection(limits)
    conn.receive_data(text)
    event = conn.next_event()
    assert isinstance(event, Greeting)
    return conn


def answer(conn: Pop3Connection, data: bytes) -> object:
    conn.receive_data(data)
    return conn.next_event()


def test_greeting_with_apop_timestamp() -> None:
    conn = Pop3Connection()
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n")
    event = conn.next_event()
    assert event == Greeting(
        True,
        "POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
        None,
        "<1896.697170952@dbc.mtview.ca.us>",
    )
    assert conn.state is State.AUTHORIZATION


def test_greeting_split_byte_by_byte() -> None:
    conn = Pop3Connection()
    for byte in b"+OK hi\r\n"[:-1]:
        conn.receive_data(bytes([byte]))
        assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\n")
    assert conn.next_event() == Greeting(True, "hi", None, None)


@pytest.mark.parametrize(
    ("line", "timestamp"),
    [
        (b"+OK ready <a@b>", "<a@b>"),
        (b"+OK ready <no-at-sign>", None),
        (b"+OK ready <a b@c>", None),
        (b"+OK ready <>", None),
        (b"+OK ready <a@b@c>", None),
        (b"+OK ready <@b>", None),
        (b"+OK ready <1896.697170952@dbc.mtview.ca.us>", "<1896.697170952@dbc.mtview.ca.us>"),
        (b"+OK ready", None),
    ],
)
def test_apop_timestamp_must_be_a_msg_id(line: bytes, timestamp: str | None) -> None:
    conn = Pop3Connection()
    conn.receive_data(line + b"\r\n")
    event = conn.next_event()
    assert isinstance(event, Greeting)
    assert event.timestamp == timestamp


def test_err_greeting_with_response_code_closes() -> None:
    conn = Pop3Connection()
    conn.receive_data(b"-ERR [SYS/TEMP] maintenance\r\n")
    assert conn.next_event() == Greeting(False, "maintenance", "SYS/TEMP", None)
    assert conn.state is State.CLOSED


@pytest.mark.parametrize(
    "banner",
    [
        b"220 mail.example.org ESMTP Postfix\r\n",
        b"HTTP/1.1 400 Bad Request\r\n",
        b"+OKAY\r\n",
        b"* OK IMAP4rev1\r\n",
    ],
)
def test_foreign_banner_is_a_violation(banner: bytes) -> None:
    conn = Pop3Connection()
    conn.receive_data(banner)
    with pytest.raises(ProtocolViolation):
        conn.next_event()
    assert conn.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        conn.send(Quit())


def test_user_pass_to_transaction_and_quit() -> None:
    conn = greeted()
    assert conn.send(User("alice")) == b"USER alice\r\n"
    assert answer(conn, b"+OK\r\n") == Ok("", None)
    assert conn.state is State.AWAIT_PASS
    assert conn.send(Pass("pw")) == b"PASS pw\r\n"
    assert answer(conn, b"+OK maildrop locked\r\n") == Ok("maildrop locked", None)
    assert conn.state is State.TRANSACTION
    assert conn.send(Stat()) == b"STAT\r\n"
    assert answer(conn, b"+OK 2 320\r\n") == Ok("2 320", None)
    assert conn.send(Noop()) == b"NOOP\r\n"
    assert answer(conn, b"+OK\r\n") == Ok("", None)
    conn.send(Quit())
    assert answer(conn, b"+OK bye\r\n") == Ok("bye", None)
    assert conn.state is State.CLOSED
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


def test_wrong_password_returns_to_authorization_with_code() -> None:
    conn = greeted()
    conn.send(User("alice"))
    answer(conn, b"+OK\r\n")
    conn.send(Pass("bad"))
    assert answer(conn, b"-ERR [AUTH] Authentication failed.\r\n") == Err(
        "Authentication failed.", "AUTH"
    )
    assert conn.state is State.AUTHORIZATION


@pytest.mark.parametrize(
    ("state_setup", "command"),
    [
        ("authorization", Stat()),
        ("authorization", Pass("x")),
        ("authorization", Noop()),
        ("transaction", User("a")),
        ("transaction", Stls()),
        ("transaction", Apop("a", "d" * 32)),
    ],
)
def test_commands_out_of_order_are_refused(state_setup: str, command: object) -> None:
    conn = greeted()
    if state_setup == "transaction":
        conn.send(Apop("a", "0" * 32))
        answer(conn, b"+OK\r\n")
        assert conn.state is State.TRANSACTION
    with pytest.raises(LocalProtocolError):
        conn.send(command)  # type: ignore[arg-type]


def test_no_command_while_a_response_is_pending() -> None:
    conn = greeted()
    conn.send(Capa())
    with pytest.raises(LocalProtocolError):
        conn.send(Quit())


@pytest.mark.parametrize("bad", ["ali\rce", "ali\nce", "al\0ice", ""])
def test_crlf_in_user_is_refused_before_anything_is_sent(bad: str) -> None:
    conn = greeted()
    with pytest.raises(LocalProtocolError):
        conn.send(User(bad))
    # Nothing changed: a clean command still works.
    assert conn.send(User("alice")) == b"USER alice\r\n"


@pytest.mark.parametrize("bad", ["pa\r\nDELE 1", "pw\n", "\0"])
def test_crlf_in_password_is_refused(bad: str) -> None:
    conn = greeted()
    conn.send(User("alice"))
    answer(conn, b"+OK\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send(Pass(bad))


def test_capa_multiline_with_dot_unstuffing() -> None:
    conn = greeted()
    conn.send(Capa())
    event = answer(
        conn, b"+OK Capability list follows\r\nUSER\r\n..odd\r\nSASL PLAIN LOGIN\r\n.\r\n"
    )
    assert event == MultiLine("Capability list follows", None, ("USER", ".odd", "SASL PLAIN LOGIN"))


def test_capa_err_is_single_line() -> None:
    conn = greeted()
    conn.send(Capa())
    assert answer(conn, b"-ERR unknown command\r\n") == Err("unknown command", None)


def test_line_limit_is_enforced_without_a_newline() -> None:
    conn = greeted(limits=Limits(max_line=100))
    conn.send(Capa())
    conn.receive_data(b"+OK " + b"A" * 200)
    with pytest.raises(ProtocolViolation, match="longer than 100"):
        conn.next_event()


def test_line_limit_applies_to_complete_lines_too() -> None:
    conn = greeted(limits=Limits(max_line=100))
    conn.send(Capa())
    conn.receive_data(b"+OK " + b"A" * 200 + b"\r\n")
    with pytest.raises(ProtocolViolation):
        conn.next_event()


def test_multiline_budget_is_enforced() -> None:
    conn = greeted(limits=Limits(max_multiline=1000))
    conn.send(Capa())
    conn.receive_data(b"+OK\r\n")
    for _ in range(19):  # 19 * 52 octets fit in the budget
        conn.receive_data(b"X" * 50 + b"\r\n")
        assert conn.next_event() is NEED_DATA
    conn.receive_data(b"X" * 50 + b"\r\n")
    with pytest.raises(ProtocolViolation, match="multi-line"):
        conn.next_event()


def test_multiline_line_count_is_enforced() -> None:
    conn = greeted(limits=Limits(max_multiline_lines=10))
    conn.send(Capa())
    conn.receive_data(b"+OK\r\n" + b"X\r\n" * 11)
    with pytest.raises(ProtocolViolation, match="lines"):
        conn.next_event()


def test_close_mid_response_is_disconnected() -> None:
    conn = greeted()
    conn.send(Capa())
    conn.receive_data(b"+OK\r\nUSER\r\n")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(Disconnected):
        conn.next_event()


def test_close_before_greeting_is_disconnected() -> None:
    conn = Pop3Connection()
    conn.receive_data(b"+OK hel")
    conn.receive_data(b"")
    with pytest.raises(Disconnected):
        conn.next_event()


def test_nul_in_response_is_a_violation() -> None:
    conn = Pop3Connection()
    conn.receive_data(b"+OK he\0llo\r\n")
    with pytest.raises(ProtocolViolation):
        conn.next_event()


def test_unsolicited_data_is_a_violation() -> None:
    conn = greeted(b"+OK hi\r\n+OK surprise\r\n")
    with pytest.raises(ProtocolViolation, match="nobody asked"):
        conn.send(Capa())


def test_non_utf8_text_is_replaced_not_raised() -> None:
    conn = Pop3Connection()
    conn.receive_data(b"+OK caf\xe9 \xff\xfe\r\n")
    event = conn.next_event()
    assert isinstance(event, Greeting)
    assert event.text.startswith("caf")


# --- STLS ---------------------------------------------------------------------------


def test_stls_then_fresh_reader() -> None:
    conn = greeted()
    conn.send(Stls())
    assert answer(conn, b"+OK Begin TLS negotiation\r\n") == Ok("Begin TLS negotiation", None)
    assert conn.state is State.TLS_PENDING
    conn.start_tls()
    assert conn.tls_active
    assert conn.state is State.AUTHORIZATION
    with pytest.raises(LocalProtocolError):
        conn.send(Stls())


def test_stls_injection_is_detected() -> None:
    conn = greeted()
    conn.send(Stls())
    assert answer(conn, b"+OK Begin TLS\r\n+OK injected\r\n") == Ok("Begin TLS", None)
    with pytest.raises(StarttlsInjection):
        conn.start_tls()
    assert conn.state is State.ERROR


def test_stls_refused_stays_in_authorization() -> None:
    conn = greeted()
    conn.send(Stls())
    assert answer(conn, b"-ERR not now\r\n") == Err("not now", None)
    assert conn.state is State.AUTHORIZATION
    with pytest.raises(LocalProtocolError):
        conn.start_tls()


# --- SASL ---------------------------------------------------------------------------


def test_sasl_exchange_with_challenges() -> None:
    conn = greeted()
    assert conn.send(Auth("LOGIN")) == b"AUTH LOGIN\r\n"
    assert answer(conn, b"+ VXNlcm5hbWU6\r\n") == Challenge(b"Username:")
    with pytest.raises(LocalProtocolError):
        conn.send(Quit())
    assert conn.send(SaslResponse(b"alice")) == b"YWxpY2U=\r\n"
    assert answer(conn, b"+ UGFzc3dvcmQ6\r\n") == Challenge(b"Password:")
    conn.send(SaslResponse(b"pw"))
    assert answer(conn, b"+OK logged in\r\n") == Ok("logged in", None)
    assert conn.state is State.TRANSACTION


def test_sasl_initial_response_and_empty_challenge() -> None:
    conn = greeted()
    assert conn.send(Auth("PLAIN", b"\0a\0b")) == b"AUTH PLAIN AGEAYg==\r\n"
    assert answer(conn, b"+\r\n") == Challenge(b"")


def test_sasl_empty_initial_response_is_equals_sign() -> None:
    conn = greeted()
    assert conn.send(Auth("EXTERNAL", b"")) == b"AUTH EXTERNAL =\r\n"


def test_sasl_cancel_must_be_refused() -> None:
    conn = greeted()
    conn.send(Auth("CRAM-MD5"))
    answer(conn, b"+ PDEyMzQ1QGhvc3Q+\r\n")
    assert conn.send(SaslCancel()) == b"*\r\n"
    assert answer(conn, b"-ERR cancelled\r\n") == Err("cancelled", None)
    assert conn.state is State.AUTHORIZATION


def test_sasl_cancel_accepted_is_a_violation() -> None:
    conn = greeted()
    conn.send(Auth("CRAM-MD5"))
    answer(conn, b"+ PDEyMzQ1QGhvc3Q+\r\n")
    conn.send(SaslCancel())
    with pytest.raises(ProtocolViolation):
        answer(conn, b"+OK fine\r\n")


def test_sasl_rounds_are_bounded() -> None:
    conn = greeted(limits=Limits(max_sasl_rounds=3))
    conn.send(Auth("LOGIN"))
    for _ in range(3):
        assert answer(conn, b"+ VXNlcm5hbWU6\r\n") == Challenge(b"Username:")
        conn.send(SaslResponse(b"x"))
    with pytest.raises(ProtocolViolation, match="SASL challenges"):
        answer(conn, b"+ VXNlcm5hbWU6\r\n")


def test_sasl_bad_base64_is_a_violation() -> None:
    conn = greeted()
    conn.send(Auth("LOGIN"))
    with pytest.raises(ProtocolViolation, match="base64"):
        answer(conn, b"+ !!!notbase64\r\n")


def test_challenge_outside_sasl_is_a_violation() -> None:
    conn = greeted()
    conn.send(User("alice"))
    with pytest.raises(ProtocolViolation):
        answer(conn, b"+ VXNlcm5hbWU6\r\n")


def test_there_is_no_dele() -> None:
    import pop3watch.pop3 as core

    assert not hasattr(core, "Dele")
    assert all(
        "DELE" not in getattr(cls, "verb", "")
        for cls in vars(core).values()
        if isinstance(cls, type)
    )
