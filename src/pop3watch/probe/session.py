"""Drives the sans-IO POP3 core over a ``Stream``, logging every exchange.

Job: the only place where protocol events and network bytes meet (h11's driver loop).
Rule: no check policy here (what to send and what an answer means is ``pop3_check``).
"""

from __future__ import annotations

import ssl

from pop3watch.errors import Pop3WatchError
from pop3watch.pop3 import (
    NEED_DATA,
    Challenge,
    Command,
    ConnectionClosed,
    Err,
    Event,
    Greeting,
    Limits,
    MultiLine,
    NeedData,
    Ok,
    Pop3Connection,
)
from pop3watch.probe.stream import Stream
from pop3watch.probe.transcript import Transcript


def _status_text(ok: bool, code: str | None, text: str) -> str:
    line = "+OK" if ok else "-ERR"
    if code:
        line = f"{line} [{code}]"
    return f"{line} {text}" if text else line


def render_event(event: Event) -> list[str]:
    """The server lines an event stands for, as a transcript shows them."""
    if isinstance(event, Greeting):
        return [_status_text(event.ok, event.code, event.text)]
    if isinstance(event, Ok):
        return [_status_text(True, event.code, event.text)]
    if isinstance(event, Err):
        return [_status_text(False, event.code, event.text)]
    if isinstance(event, MultiLine):
        return [_status_text(True, event.code, event.text), *event.lines, "."]
    if isinstance(event, Challenge):
        return ["+ " + event.data.decode("utf-8", "replace")]
    return ["(connection closed by server)"]


class Pop3Session:
    """One POP3 conversation over one stream."""

    def __init__(
        self, stream: Stream, transcript: Transcript, limits: Limits | None = None
    ) -> None:
        self.stream = stream
        self.transcript = transcript
        self.conn = Pop3Connection(limits)
        self._broken = False

    async def read_event(self) -> Event:
        """The next event from the server, reading as much as needed."""
        conn = self.conn
        while True:
            if not conn.needs_data:
                try:
                    event = conn.next_event()
                except Pop3WatchError as exc:
                    if exc.server_text is not None:
                        # The line the core could not take is what the server said too;
                        # the transcript redacts and escapes it like any other.
                        self.transcript.server(exc.server_text)
                    raise
                if event is not NEED_DATA:
                    assert not isinstance(event, NeedData)
                    self.transcript.server_said(event, render_event)
                    return event
            conn.receive_data(await self.stream.read())

    async def command(self, command: Command) -> Event:
        """Send one command and return the server's answer to it."""
        secrets = command.secrets()
        if secrets:
            self.transcript.redact.add(*secrets)
        data = self.conn.send(command)
        self.transcript.client(command.redacted())
        self.stream.write(data)
        return await self.read_event()

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """After an accepted STLS: refuse injected bytes, then hand over to TLS."""
        self.conn.start_tls()
        try:
            await self.stream.start_tls(context, server_hostname)
        except BaseException:
            self._broken = True  # half a handshake: nothing more can be said on it
            raise

    @property
    def usable(self) -> bool:
        """Whether a polite QUIT can still be sent."""
        return not self._broken and self.conn.can_quit


__all__ = ["ConnectionClosed", "Pop3Session", "render_event"]
