"""Turn every database failure into ``StorageError`` at the repository boundary.

Job: callers (the engine buffers and retries, the web shows "database unavailable") handle
one exception type, whatever the driver. Rule: the message names the operation, the URL with
its password hidden and the driver's first line of complaint; never SQL parameters (the
driver text is scrubbed of the password too, should a driver ever echo it).

Programming errors stay what they are: a ``ValueError`` raised while binding a parameter
(a naive datetime, say) is re-raised as itself, because retrying it would never succeed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import psycopg
from alembic.util import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError, StatementError

from pop3watch.errors import StorageError

#: Exceptions that mean "the database could not do it", from any layer. SQLAlchemy's own
#: usage errors (``InvalidRequestError``, ``CompileError``) are bugs and pass through.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    DBAPIError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    sa_exc.DisconnectionError,
    CommandError,  # Alembic: e.g. the database is at a revision this code does not know
    OSError,  # includes ConnectionRefusedError, and TimeoutError since Python 3.11
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    psycopg.Error,
)

_MAX_DETAIL = 300


def describe(exc: BaseException, password: str | None) -> str:
    """A short, secret-free description of a driver exception."""
    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause = exc.orig
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if password:
        text = text.replace(password, "***")
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    return f"{type(cause).__name__}: {text}"


@asynccontextmanager
async def storage_errors(
    operation: str, safe_url: str, password: str | None
) -> AsyncIterator[None]:
    """Re-raise database exceptions from the block as ``StorageError``."""
    try:
        yield
    except DATABASE_ERRORS as exc:
        raise StorageError(
            _message(operation, safe_url, exc, password), permanent=is_permanent(exc)
        ) from exc
    except StatementError as exc:
        if isinstance(exc.orig, ValueError | TypeError):  # raised while binding a parameter
            raise exc.orig from None
        if isinstance(exc.orig, DATABASE_ERRORS):
            raise StorageError(
                _message(operation, safe_url, exc.orig, password),
                permanent=is_permanent(exc.orig),
            ) from exc
        raise


def is_permanent(exc: BaseException) -> bool:
    """Whether no amount of waiting fixes ``exc``: Alembic cannot find the database's
    revision (a newer pop3watch wrote it), or SQLite finds no database in the file."""
    if isinstance(exc, CommandError):
        return True
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return isinstance(cause, sqlite3.DatabaseError) and "file is not a database" in str(cause)


def _message(operation: str, safe_url: str, exc: BaseException, password: str | None) -> str:
    return f"{operation} on {safe_url}: {describe(exc, password)}"
