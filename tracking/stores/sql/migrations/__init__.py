"""Which databases the SQL store opens, and how it brings them to a schema it uses.

Trackflow's schema is MLflow's (docs/architecture.md, "One SQL schema with MLflow"):

* an empty database gets MLflow 3.17.2's schema (every table, as `mlflow` creates it), stamped
  with MLflow's head revision (HEAD), so MLflow uses it as its own;
* a database at one of MLflow's revisions from 2.9 to 3.17.2 is used as it is: its revision and
  tables are never changed, only Trackflow's indexes (`trackflow_*`) are added once;
* a database Trackflow made before it adopted MLflow's schema (revisions 0001-0003) is upgraded
  in place by the Alembic revision HEAD in versions/ (a SQLite file is copied aside first);
* anything else (a newer MLflow, an older one, a damaged or foreign database) is refused with an
  UnsupportedSchemaError naming the revision and what to do; opened only to be read (the source
  of `trackflow migrate`), it is read if its tracking tables have the columns Trackflow reads.

Opening a database that needs nothing costs three small queries; changes run under a lock (a
file lock for SQLite, an advisory lock for PostgreSQL), so concurrent first users are safe.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Index, MetaData, insert, inspect, text

from tracking.config import redact_uri
from tracking.errors import StorageError, UnsupportedSchemaError
from tracking.stores.sql.migrations.mlflow_revisions import (
    HEAD,
    SUPPORTED,
    SUPPORTED_RANGE,
    TOO_OLD,
)
from tracking.stores.sql.shape import SchemaShape

#: Trackflow's own revisions from before its schema became MLflow's; HEAD upgrades them.
TRACKFLOW_REVISIONS = ("0001", "0002")
_LOCK_ID = 7_412_503
_OTHER_WORKSPACES = text("SELECT name FROM workspaces WHERE name <> 'default' LIMIT 5")


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision; None without one (an empty or a foreign database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def full_metadata() -> MetaData:
    """The MetaData holding all of MLflow's tables (the registry's and the unused ones too)."""
    import tracking.registry.sql_schema  # registers its tables
    import tracking.stores.sql.mlflow_tables  # noqa: F401
    from tracking.stores.sql.schema import metadata

    return metadata


def trackflow_indexes() -> list[Index]:
    """Trackflow's own indexes, added to any database it opens for writing."""
    return [
        index
        for table in full_metadata().tables.values()
        for index in table.indexes
        if index.name and index.name.startswith("trackflow_")
    ]


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


def _supported() -> str:
    return (
        f"Trackflow reads and writes {SUPPORTED_RANGE} and upgrades its own older databases "
        f"(revisions {', '.join(TRACKFLOW_REVISIONS)})"
    )


def _refusal(uri: str, revision: str | None, tables: list[str]) -> UnsupportedSchemaError:
    """The error for a database Trackflow will not touch, saying what to do instead."""
    where = redact_uri(uri)
    if revision is None:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        return UnsupportedSchemaError(
            f"Database {where} holds tables ({shown}) but no schema revision (no row in "
            f"alembic_version): neither MLflow nor Trackflow made it, or it is damaged. "
            f"{_supported()}. Point the tracking URI at an empty database or a new SQLite file."
        )
    if revision in TOO_OLD:
        return UnsupportedSchemaError(
            f"Database {where} is at MLflow schema revision {revision}, from an MLflow older "
            f"than 2.9. {_supported()}. Back it up, upgrade it with MLflow "
            f"(`mlflow db upgrade {where}`), then open it again."
        )
    return UnsupportedSchemaError(
        f"Database {where} is at schema revision {revision!r}, which this Trackflow does not "
        f"know: a newer MLflow made or upgraded it, or it is damaged. {_supported()}. Use a "
        f"Trackflow release that knows it, or copy its runs into a store this one uses: "
        f"`trackflow migrate --from {where} --to NEW_URI` reads it without writing to it."
    )


def _alembic_config() -> Any:
    """Alembic's configuration for the revisions in versions/ (imported only when needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", os.path.dirname(__file__))
    return config


def _create(engine: Engine) -> None:
    """MLflow 3.17.2's schema in an empty database, stamped with MLflow's head revision."""
    from alembic import command

    from tracking.stores.sql.mlflow_tables import DEFAULT_WORKSPACE_ROW, workspaces

    config = _alembic_config()
    with engine.begin() as conn:
        full_metadata().create_all(conn)
        conn.execute(insert(workspaces).values(DEFAULT_WORKSPACE_ROW))
        config.attributes["connection"] = conn
        command.stamp(config, HEAD)


def _backup(engine: Engine, revision: str) -> str | None:
    """A consistent copy of a SQLite database file before its upgrade; its path."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database.startswith("file:"):
        return None
    path = os.path.abspath(database)
    backup = f"{path}.before-mlflow-schema-{revision}.bak"
    source, target = sqlite3.connect(path), sqlite3.connect(backup)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return backup


def _upgrade(engine: Engine, uri: str, revision: str) -> None:
    """Upgrade a database Trackflow made at `revision` to HEAD, in one transaction."""
    from alembic import command

    backup = _backup(engine, revision)
    note = (
        f"a copy of it from before is at {backup}"
        if backup
        else "in one transaction: if it fails, the database is left as it was (back up "
        "PostgreSQL databases before upgrading Trackflow)"
    )
    warnings.warn(
        f"Upgrading Trackflow database {redact_uri(uri)} from revision {revision} to MLflow's "
        f"schema ({HEAD}, MLflow 3.17.2), keeping every run; {note}",
        stacklevel=4,
    )
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _add_indexes(engine: Engine, uri: str, present: frozenset[str]) -> None:
    missing = [index for index in trackflow_indexes() if index.name not in present]
    if not missing:
        return
    try:
        with _migration_lock(engine), engine.begin() as conn:
            for index in missing:
                index.create(conn, checkfirst=True)
    except Exception as e:  # e.g. no right to create indexes: slower searches, nothing more
        reason = str(getattr(e, "orig", e)).strip().splitlines()[0]
        warnings.warn(
            f"Could not add Trackflow's indexes to {redact_uri(uri)} ({reason}): searches "
            "over many runs will be slower",
            stacklevel=4,
        )


def _check_known(engine: Engine, uri: str, revision: str | None) -> None:
    """Raise the refusal unless the database is empty or one Trackflow upgrades."""
    if revision in TRACKFLOW_REVISIONS:
        return
    tables = sorted(set(inspect(engine).get_table_names()) - {"alembic_version"})
    if revision is not None or tables:
        raise _refusal(uri, revision, tables)


def _readable(engine: Engine, uri: str, revision: str | None) -> SchemaShape:
    """The shape of a database at a revision Trackflow does not know, if it holds every
    tracking column Trackflow reads; the refusal otherwise."""
    from tracking.stores.sql.schema import TRACKING_TABLES

    with engine.connect() as conn:
        shape = SchemaShape.read(conn)
    missing = [
        f"{table.name}.{column.name}"
        for table in TRACKING_TABLES
        for column in table.columns
        if not shape.has(table.name, column.name)
    ]
    if missing:
        tables = sorted({name for name, _ in shape.columns} - {"alembic_version"})
        raise _refusal(uri, revision, tables)
    warnings.warn(
        f"Reading {redact_uri(uri)} (schema revision {revision}, unknown to this Trackflow) "
        "without writing to it",
        stacklevel=4,
    )
    return shape


def prepare(
    engine: Engine, uri: str, read_only: bool = False, any_revision: bool = False
) -> SchemaShape:
    """Bring the database to a schema Trackflow uses (see the module's docstring) and return
    its shape; UnsupportedSchemaError for a database it must not touch. `any_revision` (with
    `read_only`): read a database at any revision whose tracking tables Trackflow can read."""
    revision = current_revision(engine)
    if revision not in SUPPORTED:
        if read_only and any_revision and revision not in TRACKFLOW_REVISIONS:
            return _readable(engine, uri, revision)
        _check_known(engine, uri, revision)
        if read_only:
            raise StorageError(
                f"Database {redact_uri(uri)} is read-only for this process and its schema "
                "needs creating or upgrading: open it once with write access"
            )
        with _migration_lock(engine):
            revision = current_revision(engine)
            if revision not in SUPPORTED:
                _check_known(engine, uri, revision)
                if revision is None:
                    _create(engine)
                else:
                    _upgrade(engine, uri, revision)
    with engine.connect() as conn:
        shape = SchemaShape.read(conn)
        if shape.has("workspaces"):
            others = conn.execute(_OTHER_WORKSPACES).scalars().all()
            if others:
                raise UnsupportedSchemaError(
                    f"Database {redact_uri(uri)} uses MLflow's workspaces (besides 'default': "
                    f"{', '.join(map(repr, others))}): Trackflow reads and writes only databases "
                    "whose experiments and models are all in the default workspace"
                )
    if not read_only:
        _add_indexes(engine, uri, shape.indexes)
    return shape
