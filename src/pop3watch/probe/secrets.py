"""Resolve a secret reference (environment variable, file, command) at check time.

Rule: the value lives only in memory for the duration of a check; errors say where the
secret was expected, never what it is. A missing secret is ``config_missing``; one holding
CR, LF or NUL is ``config_invalid``, refused here, before the check connects anywhere.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
from pathlib import Path

from pop3watch.errors import ConfigError, ConfigMissing
from pop3watch.probe.settings import SecretSource

COMMAND_TIMEOUT_S = 10.0
# A secret file is read up to here: the secret is its first line, and a file that has no
# line end this early is not a password file.
MAX_SECRET_FILE = 64 * 1024
_UNSAFE = ("\r", "\n", "\0")


def _first_line(value: str) -> str:
    """The text up to the first LF, without a CR before it: a file written with a final
    newline (or CRLF), or a command's printed line, gives the secret without its line end.
    Only LF ends a line here: ``str.splitlines`` would also cut at a lone CR (and at
    U+2028 and others), silently truncating a secret instead of refusing it."""
    line = value.split("\n", 1)[0]
    return line.removesuffix("\r")


def _checked(value: str, where: str, *, token: bool) -> str:
    """Refuse CR, LF and NUL: the secret ends up in a command line (PASS, or inside a
    SASL answer), and a line break in it could smuggle in a command of its own. A token
    may not hold ^A either, the field separator of XOAUTH2 and OAUTHBEARER. Raised while
    resolving, so the check has not connected yet; the value is never quoted."""
    if any(ch in value for ch in _UNSAFE):
        raise ConfigError(f"the secret from {where} contains CR, LF or NUL; nothing was sent")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in an environment variable
        raise ConfigError(f"the secret from {where} is not valid UTF-8; nothing was sent") from None
    if token and "\x01" in value:
        raise ConfigError(f"the token from {where} contains ^A (0x01); nothing was sent")
    return value


async def resolve_secret(source: SecretSource, *, token: bool = False) -> str:
    """Return the secret; raise ConfigMissing when it cannot be had, ConfigError (code
    ``config_invalid``) when it holds CR, LF or NUL (or ^A, for an OAuth ``token``)."""
    where = source.describe()
    if source.env is not None:
        value = os.environ.get(source.env)
        if not value:
            raise ConfigMissing(f"{where} is not set or empty")
        return _checked(value, where, token=token)
    if source.file is not None:
        try:
            # Bytes, not read_text(): universal newlines would turn a lone CR into a line
            # break and hide it from _checked.
            raw = await _read_secret_file(source.file, where)
            value = _first_line(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigMissing(f"cannot read {where}: {type(exc).__name__}") from None
        if not value:
            raise ConfigMissing(f"{where} is empty")
        return _checked(value, where, token=token)
    assert source.command is not None
    return _checked(await _run_command(source.command), where, token=token)


async def _read_secret_file(path: Path, where: str) -> bytes:
    """The first line of a regular file or a pipe (``--password-file <(pass show x)``),
    at most ``MAX_SECRET_FILE`` octets of it.

    Opened non-blocking: a FIFO nobody writes to reads as empty instead of hanging, and a
    pipe is read as the event loop reports it readable, so the check's deadline can
    still cancel the wait (a thread blocked in read() could not be stopped, and would
    hold up the process's exit). Devices (``/dev/zero``) and the like are refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            data = os.read(fd, MAX_SECRET_FILE)
        elif stat.S_ISFIFO(mode):
            data = await _read_pipe(fd)
        else:
            raise ConfigError(f"{where} is not a regular file or a pipe")
    finally:
        os.close(fd)
    if len(data) >= MAX_SECRET_FILE and b"\n" not in data:
        raise ConfigError(f"the first line of {where} is over {MAX_SECRET_FILE} octets")
    return data


async def _read_pipe(fd: int) -> bytes:
    """Read ``fd`` (non-blocking) until EOF, a line end or ``MAX_SECRET_FILE`` octets."""
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < MAX_SECRET_FILE and b"\n" not in data:
        try:
            chunk = os.read(fd, MAX_SECRET_FILE - len(data))
        except BlockingIOError:
            readable = loop.create_future()
            loop.add_reader(fd, readable.set_result, None)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
            continue
        if not chunk:
            break
        data += chunk
    return data


# Killed commands being waited for (a task nobody holds could be collected mid-wait).
_REAPERS: set[asyncio.Task[int]] = set()


async def _run_command(command: str) -> str:
    try:
        argv = shlex.split(command)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except (OSError, ValueError) as exc:
        raise ConfigMissing(f"secret command cannot start: {type(exc).__name__}") from None
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            stdout, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ConfigMissing(f"secret command ran over {COMMAND_TIMEOUT_S:g} s") from None
    except BaseException:
        # The check's own deadline (or a shutdown) cancelled the wait: the command must
        # not outlive the check, and the check must not wait for it to die. It is reaped
        # in the background; a process object dropped unreaped would leave a zombie and
        # an unclosed transport behind.
        if proc.returncode is None:
            proc.kill()
            reaper = asyncio.get_running_loop().create_task(proc.wait())
            _REAPERS.add(reaper)
            reaper.add_done_callback(_REAPERS.discard)
        raise
    if proc.returncode != 0:
        raise ConfigMissing(f"secret command exited with status {proc.returncode}")
    value = _first_line(stdout.decode("utf-8", "replace"))
    if not value:
        raise ConfigMissing("secret command printed nothing")
    return value
