"""The layering rules of STYLE.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pop3watch"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules("pop3"), ids=lambda p: p.name)
def test_protocol_core_is_sans_io(path: Path) -> None:
    for name in imports_of(path):
        assert name.split(".")[0] not in {"asyncio", "socket", "ssl", "selectors", "uvloop"}, name
        if name.startswith("pop3watch"):
            assert name == "pop3watch.errors" or name.startswith("pop3watch.pop3"), name


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: p.name)
def test_engine_knows_no_protocol_and_writes_no_sql(path: Path) -> None:
    for name in imports_of(path):
        assert not name.startswith("pop3watch.pop3"), name
        assert name.split(".")[0] not in {
            "sqlalchemy",
            "alembic",
            "asyncpg",
            "psycopg",
            "aiosqlite",
        }, name


@pytest.mark.parametrize(
    "path",
    [p for p in PACKAGE.rglob("*.py") if "storage" not in p.parts],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_storage_speaks_sql(path: Path) -> None:
    for name in imports_of(path):
        assert name.split(".")[0] not in {
            "sqlalchemy",
            "alembic",
            "asyncpg",
            "psycopg",
            "aiosqlite",
        }, name


@pytest.mark.parametrize("path", modules("storage"), ids=lambda p: p.name)
def test_storage_does_not_reach_into_probe_or_engine(path: Path) -> None:
    for name in imports_of(path):
        assert not name.startswith(("pop3watch.probe", "pop3watch.engine", "pop3watch.pop3")), name


def test_errors_is_a_leaf() -> None:
    assert {n for n in imports_of(PACKAGE / "errors.py") if n.startswith("pop3watch")} == set()
