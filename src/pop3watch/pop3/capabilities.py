"""CAPA (RFC 2449) as a value: what the server says it can do.

Rule: built only from a CAPA answer received on the current layer; after STLS the old
value is thrown away and CAPA is asked again (RFC 2595 section 4).
"""

from __future__ import annotations

from dataclasses import dataclass


def decimal_seconds(text: str) -> int | None:
    """A count of seconds as RFC 2449 writes one (ASCII digits), or None: a hostile
    server's "\u0669" or 5,000 digits is not one (int() would take the first and raise
    on the second)."""
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The CAPA lines as the server sent them, with typed lookups."""

    lines: tuple[str, ...] = ()

    @classmethod
    def from_lines(cls, lines: tuple[str, ...] | list[str]) -> Capabilities:
        return cls(tuple(line.strip() for line in lines if line.strip()))

    def _tags(self) -> dict[str, list[str]]:
        return {line.split()[0].upper(): line.split()[1:] for line in self.lines}

    def has(self, name: str) -> bool:
        return name.upper() in self._tags()

    @property
    def stls(self) -> bool:
        return self.has("STLS")

    @property
    def user(self) -> bool:
        return self.has("USER")

    @property
    def sasl_mechanisms(self) -> tuple[str, ...]:
        return tuple(m.upper() for m in self._tags().get("SASL", []))

    @property
    def implementation(self) -> str | None:
        args = self._tags().get("IMPLEMENTATION")
        return " ".join(args) if args else None

    @property
    def login_delay(self) -> int | None:
        """RFC 2449 LOGIN-DELAY: the fewest seconds the server wants between two logins
        of one user (the first argument; ``USER`` after it says it varies by user)."""
        args = self._tags().get("LOGIN-DELAY")
        return decimal_seconds(args[0]) if args else None
