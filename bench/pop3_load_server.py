"""A lightweight POP3 "greeting + QUIT" server for the engine benchmark (asyncio + uvloop).

    .venv/bin/python bench/pop3_load_server.py --ports 8 [--closed 1] [--max-seconds 900]

Listens on ``--ports`` ephemeral TCP ports on 127.0.0.1 and also binds ``--closed``
ports *without listening* (a connection to them is refused at once, and the port stays
reserved so nothing else can take it). Prints one JSON line on stdout, then serves::

    {"pid": 1234, "ports": [40001, ...], "closed": [40009]}

Each connection gets ``+OK pop3watch-bench ready``; ``QUIT`` is answered ``+OK bye``
and the connection is closed; any other command gets ``-ERR`` (and the connection stays
open). The server stops when stdin closes (its parent died or is done), on SIGTERM or
SIGINT, or after ``--max-seconds``, whichever comes first. On exit it prints one more
JSON line with the number of connections and QUITs it served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import cast

HOST = "127.0.0.1"
GREETING = b"+OK pop3watch-bench ready\r\n"
BYE = b"+OK bye\r\n"
ERR = b"-ERR only QUIT here\r\n"
MAX_LINE = 512


@dataclass
class Counters:
    connections: int = 0
    quits: int = 0
    errors: int = 0


class Pop3Greeter(asyncio.Protocol):
    """One connection: greet, wait for a line, answer QUIT and close."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._counters.connections += 1
        self._transport.write(GREETING)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            if line.strip().upper() == b"QUIT":
                self._counters.quits += 1
                self._transport.write(BYE)
                self._transport.close()
                return
            self._transport.write(ERR)
        if len(self._buffer) > MAX_LINE:
            self._counters.errors += 1
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _closed_port() -> socket.socket:
    """Bound but not listening: connections are refused, and the port stays ours."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    return sock


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with contextlib.suppress(OSError):
        while await reader.read(4096):
            pass


async def serve(ports: int, closed: int, max_seconds: float) -> Counters:
    loop = asyncio.get_running_loop()
    counters = Counters()
    servers: list[asyncio.Server] = []
    reserved = [_closed_port() for _ in range(closed)]
    try:
        for _ in range(ports):
            sock = _listener()
            servers.append(
                await loop.create_server(lambda: Pop3Greeter(counters), sock=sock, backlog=4096)
            )
        bound = [s.sockets[0].getsockname()[1] for s in servers]
        closed_ports = [s.getsockname()[1] for s in reserved]
        print(
            json.dumps({"pid": os.getpid(), "ports": bound, "closed": closed_ports}),
            flush=True,
        )
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        watchers = [
            asyncio.create_task(_stdin_closed()),
            asyncio.create_task(stop.wait()),
        ]
        await asyncio.wait(watchers, timeout=max_seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    finally:
        for server in servers:
            server.close()
        for sock in reserved:
            sock.close()
    return counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=8, help="listening ports")
    parser.add_argument("--closed", type=int, default=1, help="bound, non-listening ports")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="hard lifetime")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        counters = asyncio.run(serve(args.ports, args.closed, args.max_seconds))
    else:
        counters = uvloop.run(serve(args.ports, args.closed, args.max_seconds))
    print(json.dumps({"served": counters.__dict__}), flush=True)


if __name__ == "__main__":
    main()
