"""The POP3 session states (RFC 1939 section 3) and the transition table, as data.

Job: say which commands each state allows and where a ``+OK`` or ``-ERR`` leads, so the
table can be tested row by row and drawn. Rule: no logic here beyond lookups.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from pop3watch.pop3.commands import Apop, Auth, Capa, Command, Noop, Pass, Quit, Stat, Stls, User


class State(Enum):
    AWAIT_GREETING = "await_greeting"
    AUTHORIZATION = "authorization"
    AWAIT_PASS = "await_pass"  # noqa: S105 -- a state name: USER accepted, PASS expected
    TLS_PENDING = "tls_pending"  # STLS accepted; the driver must hand over to TLS now
    TRANSACTION = "transaction"
    CLOSED = "closed"
    ERROR = "error"  # the server broke the protocol; the session is dead

    # Members are singletons, so identity is their hash: the tables below are looked up
    # for every command and response, and Enum's own __hash__ is Python code.
    __hash__ = object.__hash__


#: Commands a client may send in each state. DELE is absent everywhere, on purpose.
ALLOWED: Final[dict[State, frozenset[type[Command]]]] = {
    State.AUTHORIZATION: frozenset({Capa, Stls, User, Apop, Auth, Quit}),
    State.AWAIT_PASS: frozenset({Pass, Quit}),
    State.TRANSACTION: frozenset({Capa, Stat, Noop, Quit}),
}

#: Where a +OK to a command leads; unlisted pairs stay in the same state.
ON_OK: Final[dict[tuple[State, type[Command]], State]] = {
    (State.AUTHORIZATION, User): State.AWAIT_PASS,
    (State.AWAIT_PASS, Pass): State.TRANSACTION,
    (State.AUTHORIZATION, Apop): State.TRANSACTION,
    (State.AUTHORIZATION, Auth): State.TRANSACTION,
    (State.AUTHORIZATION, Stls): State.TLS_PENDING,
    (State.AUTHORIZATION, Quit): State.CLOSED,
    (State.AWAIT_PASS, Quit): State.CLOSED,
    (State.TRANSACTION, Quit): State.CLOSED,
}

#: Where a -ERR to a command leads; unlisted pairs stay in the same state.
ON_ERR: Final[dict[tuple[State, type[Command]], State]] = {
    (State.AWAIT_PASS, Pass): State.AUTHORIZATION,
    (State.AUTHORIZATION, Quit): State.CLOSED,
    (State.AWAIT_PASS, Quit): State.CLOSED,
    (State.TRANSACTION, Quit): State.CLOSED,
}


def after_response(state: State, command: type[Command], ok: bool) -> State:
    """The state a response to ``command`` in ``state`` leads to."""
    table = ON_OK if ok else ON_ERR
    return table.get((state, command), state)
