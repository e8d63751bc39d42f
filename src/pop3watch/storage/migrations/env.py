"""Alembic environment for pop3watch, configured from code rather than an ini file.

Job: run the migrations on the connection ``pop3watch.storage.migrate`` hands over in
``config.attributes["connection"]`` (already inside a transaction). Rule: no logging setup
and no URL of its own; offline (``--sql``) mode renders SQL for ``config``'s ``sqlalchemy.url``.
``render_as_batch`` lets future ALTERs work on SQLite, which rebuilds tables to alter them.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from pop3watch.storage.schema import metadata


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("pop3watch migrations run through pop3watch.storage.migrate")
    _run_online(connection)
