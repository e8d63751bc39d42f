"""Commands as values: their wire form."""

from __future__ import annotations

from pop3watch.pop3.commands import Command


def test_every_command_without_arguments_encodes_its_verb() -> None:
    """Commands that do not override encode() send their ``bare`` form; it
    must be the verb, so a new command cannot go out as an empty line."""
    plain = [c for c in Command.__subclasses__() if c.encode is Command.encode]
    assert {c.verb for c in plain} == {"CAPA", "STLS", "STAT", "NOOP", "QUIT", "*"}
    for cls in plain:
        assert cls().encode() == cls.verb.encode() + b"\r\n"
