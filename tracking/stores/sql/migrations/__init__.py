"""Alembic migrations of the SQL store; `upgrade(engine)` brings any database to the head.

The check is one query when the database is current; otherwise migrations run under a lock
(a file lock for SQLite, an advisory lock for PostgreSQL), so concurrent first users are safe.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, inspect, text

HEAD = "0003"
_LOCK_ID = 7_412_503


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        import fcntl

        database = engine.url.database or ""
        path = (os.path.abspath(database) if database else "memory") + ".migrate.lock"
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
            conn.commit()


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema in place; a no-op (one query) when already at HEAD."""
    if current_revision(engine) == HEAD:
        return
    with _migration_lock(engine):
        if current_revision(engine) == HEAD:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", os.path.dirname(__file__))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
