"""Hypothesis: whatever bytes arrive, split however, in whatever state the core is in, it
raises only its typed errors, and the connection is dead (State.ERROR) after one.

Each scenario drives the core with well-formed answers up to one state (after the
greeting, after STLS, during USER/PASS or a SASL exchange, in the transaction state...)
and then lets hypothesis write the server's answer. The client reacts as the check does:
it answers SASL challenges, hands over to TLS after an accepted STLS, and sends QUIT when
it may, so the arbitrary bytes also reach the states that follow.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pop3watch.errors import Disconnected, LocalProtocolError, ProtocolViolation
from pop3watch.pop3 import (
    NEED_DATA,
    Apop,
    Auth,
    Capa,
    Challenge,
    Command,
    ConnectionClosed,
    Greeting,
    Limits,
    MultiLine,
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

LIMITS = Limits(max_line=256, max_multiline=1024, max_multiline_lines=32, max_sasl_rounds=4)
GREETING = b"+OK ready <1896.697170952@dbc.mtview.ca.us>\r\n"


def exchange(conn: Pop3Connection, command: Command, answer: bytes) -> object:
    """One well-formed round trip on the way to the state under test."""
    conn.send(command)
    conn.receive_data(answer)
    event = conn.next_event()
    assert event is not NEED_DATA
    return event


def greeted(limits: Limits = LIMITS) -> Pop3Connection:
    conn = Pop3Connection(limits)
    conn.receive_data(GREETING)
    assert isinstance(conn.next_event(), Greeting)
    return conn


def after_tls() -> Pop3Connection:
    conn = greeted()
    exchange(conn, Stls(), b"+OK begin TLS\r\n")
    conn.start_tls()
    return conn


def logged_in() -> Pop3Connection:
    conn = greeted()
    exchange(conn, User("alice"), b"+OK\r\n")
    exchange(conn, Pass("wonderland"), b"+OK logged in\r\n")
    assert conn.state is State.TRANSACTION
    return conn


def awaiting_pass() -> Pop3Connection:
    conn = greeted()
    exchange(conn, User("alice"), b"+OK\r\n")
    return conn


def sasl_second_round() -> Pop3Connection:
    """AUTH LOGIN after its first challenge was answered: the server's next turn."""
    conn = greeted()
    event = exchange(conn, Auth("LOGIN"), b"+ VXNlcm5hbWU6\r\n")
    assert isinstance(event, Challenge)
    conn.send(SaslResponse(b"alice"))
    return conn


def sending(
    setup: Callable[[], Pop3Connection], command: Command | None
) -> Callable[[], Pop3Connection]:
    """``setup``, then ``command`` sent: the server's answer to it is what hypothesis writes."""

    def prepare() -> Pop3Connection:
        conn = setup()
        if command is not None:
            conn.send(command)
        return conn

    return prepare


#: state name -> a connection waiting for the server's (arbitrary) bytes there.
SCENARIOS: dict[str, Callable[[], Pop3Connection]] = {
    "greeting": lambda: Pop3Connection(LIMITS),
    "capa": sending(greeted, Capa()),
    "stls-answer": sending(greeted, Stls()),
    "after-stls-capa": sending(after_tls, Capa()),
    "after-stls-user": sending(after_tls, User("alice")),
    "user": sending(greeted, User("alice")),
    "pass": sending(awaiting_pass, Pass("wonderland")),
    "apop": sending(greeted, Apop("alice", "c4c9334bac560ecc979e58001b3e22fb")),
    "auth-plain": sending(greeted, Auth("PLAIN", b"\0alice\0wonderland")),
    "auth-login": sending(greeted, Auth("LOGIN")),
    "auth-second-round": sending(sasl_second_round, None),
    "stat": sending(logged_in, Stat()),
    "capa-in-transaction": sending(logged_in, Capa()),
    "quit-authorization": sending(greeted, Quit()),
    "quit-transaction": sending(logged_in, Quit()),
}

#: Lines a server might send, well-formed or nearly, strung together by hypothesis with
#: raw binary so that every parser path is reached (multi-line bodies, the SASL round
#: limit, an accepted cancel), not only the first line's rejection.
LINES = [
    b"+OK",
    b"+OK hi",
    b"+OK 2 320",
    b"+OK [SYS/TEMP] busy",
    b"+OKAY",
    b"-ERR",
    b"-ERR no",
    b"-ERR [IN-USE] locked",
    b"-ERR [LOGIN-DELAY] wait",
    b"-ERRor",
    b"+ ",
    b"+",
    b"+ dGVzdA==",  # "test": answered
    b"+ VXNlcm5hbWU6",  # "Username:": cancelled (odd size)
    b"+ !!notbase64",
    b"+ dGVzdA==\r\n+ \r\n+ dGVzdA==\r\n+ \r\n+ dGVzdA==",  # over the round limit
    b".",
    b"..stuffed",
    b"+OK caps\r\nUSER\r\n..stuffed\r\n.",  # a whole multi-line answer
    b"+OK\r\n" + b"line\r\n" * 40 + b".",  # over the line-count budget
    b"+OK\r\n" + (b"x" * 200 + b"\r\n") * 6 + b".",  # over the octet budget
    b"USER",
    b"SASL PLAIN LOGIN",
    b"A" * 300,
    b"nul\0here",
    b"\xff\xfe\x80",
]
ENDINGS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b""]
server_line = st.tuples(
    st.one_of(st.sampled_from(LINES), st.binary(max_size=40)), st.sampled_from(ENDINGS)
)
server_bytes = st.lists(server_line, max_size=30).map(
    lambda parts: b"".join(text + end for text, end in parts)
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for p in points:
        pieces.append(data[start:p])
        start = p
    pieces.append(data[start:])
    return [p for p in pieces if p]


def react(conn: Pop3Connection, event: object, quit_sent: list[bool]) -> None:
    """What the check would do next: answer a challenge (cancelling odd-sized ones), hand
    over to TLS after an accepted STLS, or say QUIT once."""
    if isinstance(event, Challenge):
        conn.send(SaslCancel() if len(event.data) % 2 else SaslResponse(b"answer"))
    elif conn.state is State.TLS_PENDING:
        conn.start_tls()
    elif conn.can_quit and not quit_sent[0]:
        quit_sent[0] = True
        conn.send(Quit())


def pump(conn: Pop3Connection, quit_sent: list[bool]) -> None:
    """Pull events until the core needs data or the server may close. Checks on the way
    the promise drivers act on instead of asking (Pop3Session): when ``needs_data`` says
    so, ``next_event()`` has nothing else to say."""
    while True:
        promised = conn.needs_data
        event = conn.next_event()
        assert event is NEED_DATA or not promised, event
        if event is NEED_DATA or isinstance(event, ConnectionClosed):
            return
        react(conn, event, quit_sent)


def feed_to_the_end(conn: Pop3Connection, data: bytes, cuts: list[int]) -> None:
    """Feed ``data`` cut at ``cuts``, then the end of stream, reacting to every event as
    the check would (``pump``)."""
    quit_sent = [False]
    for chunk in split(data, cuts):
        conn.receive_data(chunk)
        pump(conn, quit_sent)
    conn.receive_data(b"")
    pump(conn, quit_sent)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@settings(max_examples=150, deadline=None)
@given(data=server_bytes, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_arbitrary_bytes_in_every_state_raise_only_typed_errors(
    scenario: str, data: bytes, cuts: list[int]
) -> None:
    conn = SCENARIOS[scenario]()
    try:
        feed_to_the_end(conn, data, cuts)
    except (ProtocolViolation, Disconnected):
        # Typed, and final: the connection is dead and refuses to go on.
        assert conn.state is State.ERROR
        with pytest.raises(LocalProtocolError):
            conn.next_event()
        with pytest.raises(LocalProtocolError):
            conn.send(Quit())
    else:
        assert conn.state is not State.ERROR


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=4096), st.lists(st.integers(min_value=0), max_size=20))
def test_raw_binary_from_the_first_byte_raises_only_typed_errors(
    data: bytes, cuts: list[int]
) -> None:
    conn = Pop3Connection(LIMITS)
    try:
        feed_to_the_end(conn, data, cuts)
    except (ProtocolViolation, Disconnected):
        assert conn.state is State.ERROR


def test_the_scenarios_reach_their_states() -> None:
    """The property above is only as good as the states it starts from."""
    expected = {
        "greeting": State.AWAIT_GREETING,
        "stls-answer": State.AUTHORIZATION,
        "pass": State.AWAIT_PASS,
        "stat": State.TRANSACTION,
        "quit-transaction": State.TRANSACTION,
    }
    for name, state in expected.items():
        assert SCENARIOS[name]().state is state, name
    assert SCENARIOS["after-stls-capa"]().tls_active
    assert SCENARIOS["auth-second-round"]().awaiting_response


def test_the_reactions_are_exercised() -> None:
    """A well-formed answer in a scenario goes through the reactive client without error:
    a challenge is answered, STLS hands over to TLS, QUIT follows."""
    conn = SCENARIOS["auth-login"]()
    quit_sent = [False]
    for _ in range(2):  # "test" twice, each after our answer to the one before
        conn.receive_data(b"+ dGVzdA==\r\n")
        pump(conn, quit_sent)
    conn.receive_data(b"+OK logged in\r\n")
    pump(conn, quit_sent)
    assert quit_sent == [True]
    conn.receive_data(b"+OK bye\r\n")
    pump(conn, quit_sent)
    assert conn.state is State.CLOSED
    cancelled = SCENARIOS["auth-login"]()
    cancelled.receive_data(b"+ VXNlcm5hbWU6\r\n")  # "Username:", odd-sized: cancelled
    pump(cancelled, [False])
    cancelled.receive_data(b"-ERR cancelled\r\n")
    pump(cancelled, [True])
    assert cancelled.state is State.AUTHORIZATION
    stls = SCENARIOS["stls-answer"]()
    stls.receive_data(b"+OK go\r\n")
    pump(stls, [True])
    assert stls.tls_active
    pipelined = SCENARIOS["auth-login"]()
    pipelined.receive_data(b"+ dGVzdA==\r\n+OK before our answer\r\n")
    with pytest.raises(ProtocolViolation, match="after its SASL challenge"):
        pump(pipelined, [False])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
            max_size=40,
        ),
        max_size=20,
    ),
    st.lists(st.integers(min_value=0), max_size=30),
)
def test_split_points_never_change_the_events(lines: list[str], cuts: list[int]) -> None:
    body = b"".join(
        ("." + line if line.startswith(".") else line).encode() + b"\r\n" for line in lines
    )
    data = b"+OK caps\r\n" + body + b".\r\n"

    def run(chunks: list[bytes]) -> list[object]:
        conn = greeted(Limits())
        conn.send(Capa())
        events: list[object] = []
        for chunk in chunks:
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not NEED_DATA:
                events.append(event)
        return events

    whole = run([data])
    pieces = run(split(data, cuts))
    assert whole == pieces
    assert isinstance(whole[-1], MultiLine)
    assert whole[-1].lines == tuple(line.strip("\r\n") for line in lines)
