"""The transition table, row by row."""

from __future__ import annotations

import pytest

from pop3watch.pop3.commands import Apop, Auth, Capa, Noop, Pass, Quit, Stat, Stls, User
from pop3watch.pop3.states import ALLOWED, State, after_response

ROWS = [
    (State.AUTHORIZATION, User, True, State.AWAIT_PASS),
    (State.AUTHORIZATION, User, False, State.AUTHORIZATION),
    (State.AWAIT_PASS, Pass, True, State.TRANSACTION),
    (State.AWAIT_PASS, Pass, False, State.AUTHORIZATION),
    (State.AUTHORIZATION, Apop, True, State.TRANSACTION),
    (State.AUTHORIZATION, Apop, False, State.AUTHORIZATION),
    (State.AUTHORIZATION, Auth, True, State.TRANSACTION),
    (State.AUTHORIZATION, Auth, False, State.AUTHORIZATION),
    (State.AUTHORIZATION, Stls, True, State.TLS_PENDING),
    (State.AUTHORIZATION, Stls, False, State.AUTHORIZATION),
    (State.AUTHORIZATION, Capa, True, State.AUTHORIZATION),
    (State.TRANSACTION, Capa, True, State.TRANSACTION),
    (State.TRANSACTION, Stat, True, State.TRANSACTION),
    (State.TRANSACTION, Noop, False, State.TRANSACTION),
    (State.AUTHORIZATION, Quit, True, State.CLOSED),
    (State.AWAIT_PASS, Quit, True, State.CLOSED),
    (State.TRANSACTION, Quit, True, State.CLOSED),
    (State.TRANSACTION, Quit, False, State.CLOSED),
]


@pytest.mark.parametrize(("state", "command", "ok", "expected"), ROWS)
def test_transition(state: State, command: type, ok: bool, expected: State) -> None:
    assert command in ALLOWED[state]
    assert after_response(state, command, ok) is expected


def test_terminal_states_allow_nothing() -> None:
    for state in (State.AWAIT_GREETING, State.TLS_PENDING, State.CLOSED, State.ERROR):
        assert state not in ALLOWED
