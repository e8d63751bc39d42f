"""Secret references resolve at check time; failures are config_missing and leak nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pop3watch.errors import ConfigMissing
from pop3watch.probe.secrets import resolve_secret
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


def test_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SecretSource(env="A", file=Path("/x"))
