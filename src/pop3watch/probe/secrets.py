"""Resolve a secret reference (environment variable, file, command) at check time.

Rule: the value lives only in memory for the duration of a check; errors say where the
secret was expected, never what it is. A missing secret is ``config_missing``.
"""

from __future__ import annotations

import asyncio
import os
import shlex

from pop3watch.errors import ConfigMissing
from pop3watch.probe.settings import SecretSource

COMMAND_TIMEOUT_S = 10.0


def _first_line(value: str) -> str:
    return value.splitlines()[0] if value else ""


async def resolve_secret(source: SecretSource) -> str:
    """Return the secret; raise ConfigMissing when it cannot be had."""
    where = source.describe()
    if source.env is not None:
        value = os.environ.get(source.env)
        if not value:
            raise ConfigMissing(f"{where} is not set or empty")
        return value
    if source.file is not None:
        try:
            value = _first_line(await asyncio.to_thread(source.file.read_text, encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigMissing(f"cannot read {where}: {type(exc).__name__}") from None
        if not value:
            raise ConfigMissing(f"{where} is empty")
        return value
    assert source.command is not None
    return await _run_command(source.command)


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
    if proc.returncode != 0:
        raise ConfigMissing(f"secret command exited with status {proc.returncode}")
    value = _first_line(stdout.decode("utf-8", "replace"))
    if not value:
        raise ConfigMissing("secret command printed nothing")
    return value
