"""Secret references resolve at check time; failures are config_missing and leak nothing."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from pop3watch.errors import ConfigError, ConfigMissing
from pop3watch.probe import secrets
from pop3watch.probe.secrets import MAX_SECRET_FILE, resolve_secret
from pop3watch.probe.settings import SecretSource


async def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P3W_SECRET", "from-env")
    assert await resolve_secret(SecretSource(env="P3W_SECRET")) == "from-env"
    monkeypatch.delenv("P3W_SECRET")
    with pytest.raises(ConfigMissing, match="P3W_SECRET"):
        await resolve_secret(SecretSource(env="P3W_SECRET"))


async def test_file_takes_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("first line\nsecond\n")
    assert await resolve_secret(SecretSource(file=path)) == "first line"
    with pytest.raises(ConfigMissing, match="cannot read"):
        await resolve_secret(SecretSource(file=tmp_path / "missing"))


async def test_command(tmp_path: Path) -> None:
    ok = f"{sys.executable} -c \"print('tok-123')\""
    assert await resolve_secret(SecretSource(command=ok)) == "tok-123"
    failing = f"{sys.executable} -c \"print('leaked-value'); raise SystemExit(3)\""
    with pytest.raises(ConfigMissing, match="status 3") as info:
        await resolve_secret(SecretSource(command=failing))
    assert "leaked-value" not in str(info.value)
    with pytest.raises(ConfigMissing, match="cannot start"):
        await resolve_secret(SecretSource(command="/nonexistent/helper"))


def printer(tmp_path: Path, data: bytes) -> str:
    """A command that prints ``data`` exactly (a helper script, so no quoting games)."""
    script = tmp_path / "print.py"
    script.write_text(f"import sys\nsys.stdout.buffer.write({data!r})\n")
    return f"{sys.executable} {script}"


async def test_a_final_line_end_is_not_part_of_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    for data in (b"s3cret\n", b"s3cret\r\n", b"s3cret"):
        path.write_bytes(data)
        assert await resolve_secret(SecretSource(file=path)) == "s3cret"
        assert await resolve_secret(SecretSource(command=printer(tmp_path, data))) == "s3cret"


@pytest.mark.parametrize("value", ["s3cret\rPASS x", "s3cret\nDELE 1", "s3c\r\nret", "s3\0cret"])
async def test_cr_lf_nul_is_config_invalid_and_never_quoted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    """The secret would end up in a command line; a line break there is an injection."""
    path = tmp_path / "pw"
    path.write_bytes(value.encode())
    sources = [SecretSource(file=path), SecretSource(command=printer(tmp_path, value.encode()))]
    if "\0" not in value:  # the environment cannot hold NUL at all
        monkeypatch.setenv("P3W_SECRET", value)
        sources.append(SecretSource(env="P3W_SECRET"))
    for source in sources:
        if "\n" in value and source.env is None:
            continue  # files and commands: only the first line counts (tested above)
        with pytest.raises(ConfigError) as info:
            await resolve_secret(source)
        assert info.value.code == "config_invalid"
        assert not isinstance(info.value, ConfigMissing)
        assert "CR, LF or NUL" in info.value.message
        assert "s3" not in info.value.message


async def test_only_the_first_line_of_a_file_counts(tmp_path: Path) -> None:
    """A second line is never sent (and so cannot inject a command)."""
    path = tmp_path / "pw"
    path.write_bytes(b"s3cret\nDELE 1\n")
    assert await resolve_secret(SecretSource(file=path)) == "s3cret"


def test_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SecretSource(env="A", file=Path("/x"))


async def test_a_token_may_not_hold_the_sasl_field_separator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """^A is only refused where it would break framing: in a token, not a password."""
    monkeypatch.setenv("P3W_SECRET", "ya29\x01auth=x")
    source = SecretSource(env="P3W_SECRET")
    assert await resolve_secret(source) == "ya29\x01auth=x"
    with pytest.raises(ConfigError, match="0x01") as info:
        await resolve_secret(source, token=True)
    assert "ya29" not in info.value.message


# --- files that are not plain files, and secrets that take their time -----------------


async def test_a_fifo_nobody_writes_to_reads_as_empty_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(ConfigMissing, match="is empty"):
        await resolve_secret(SecretSource(file=fifo))
    assert time.monotonic() - started < 1.0


async def test_a_pipe_is_read_as_it_becomes_readable(tmp_path: Path) -> None:
    """``--password-file <(pass show mail)``: the writer may answer late."""
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # holds the write end open
    try:
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, os.write, writer, b"late-secret\nrest")
        assert await resolve_secret(SecretSource(file=fifo)) == "late-secret"
    finally:
        os.close(writer)


async def test_a_silent_pipe_gives_way_to_the_deadline(tmp_path: Path) -> None:
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await resolve_secret(SecretSource(file=fifo))
        assert time.monotonic() - started < 1.0
    finally:
        os.close(writer)


async def test_devices_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file or a pipe"):
        await resolve_secret(SecretSource(file=Path("/dev/zero")))


async def test_a_first_line_too_long_for_a_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"x" * (MAX_SECRET_FILE + 10))
    with pytest.raises(ConfigError, match="over"):
        await resolve_secret(SecretSource(file=path))


async def test_a_command_does_not_outlive_a_cancelled_check(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = tmp_path / "slow.py"
    script.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)\n"
    )
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.0):
            await resolve_secret(SecretSource(command=f"{sys.executable} {script}"))
    pid = int(pid_file.read_text())
    for _ in range(100):  # killed at once, and reaped in the background
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            if not secrets._REAPERS:  # its exit reached the loop: nothing left unclosed
                break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the secret command is still running, or was never reaped")
