"""A tiny POP3 server that sends its greeting exactly DELAY after accepting a connection.

Run as its own process: ``python bench/_delayed_server.py [delay_ms]``. It prints the
port it listens on (127.0.0.1) and its scheduling priority as one line on stdout and
serves until stdin closes or it receives SIGTERM. Where permitted it runs its threads
SCHED_FIFO (else at nice -10, else unchanged), so that on a busy machine the server's
own wake-up jitter stays small next to the client error being measured.

Timing: the accept loop stamps ``time.perf_counter()`` as soon as ``accept()`` returns
and hands the socket to a thread that sleeps until the deadline (``time.sleep`` is an
hrtimer nanosleep on Linux, without timer slack for SCHED_FIFO threads), then sends
``+OK pop3watch-bench delayed delay_us=<actual> ready`` where ``<actual>`` is the
measured accept-to-send interval in microseconds, so a client can separate the server's
own scheduling jitter from its measurement error. QUIT is answered ``+OK``; nothing
else is implemented.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


def _serve_one(conn: socket.socket, accepted: float, delay_s: float) -> None:
    with conn:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            remaining = accepted + delay_s - time.perf_counter()
            if remaining > 0:
                time.sleep(remaining)
            actual_us = round((time.perf_counter() - accepted) * 1e6)
            conn.sendall(f"+OK pop3watch-bench delayed delay_us={actual_us} ready\r\n".encode())
            conn.settimeout(10.0)
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = conn.recv(512)
                if not chunk:
                    return
                data += chunk
            if data.strip().upper() == b"QUIT":
                conn.sendall(b"+OK bye\r\n")
            else:
                conn.sendall(b"-ERR only QUIT here\r\n")
        except OSError:
            return


def _watch_stdin() -> None:
    """Exit when the parent closes our stdin (or dies)."""
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(1):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def _raise_priority() -> str:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        pass
    else:
        return "SCHED_FIFO-10"
    try:
        os.nice(-10)
    except OSError:
        return "default"
    return "nice-10"


def main() -> None:
    delay_s = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0.2
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(512)
    sys.setswitchinterval(0.0002)  # a thread due to send never waits long for the GIL
    priority = _raise_priority()  # before any thread starts: threads inherit it
    print(listener.getsockname()[1], priority, flush=True)
    threading.Thread(target=_watch_stdin, daemon=True).start()
    while True:
        conn, _ = listener.accept()
        accepted = time.perf_counter()
        threading.Thread(target=_serve_one, args=(conn, accepted, delay_s), daemon=True).start()


if __name__ == "__main__":
    main()
