"""Rewrite the tables of a database Trackflow made before its schema became MLflow's.

Used by the Alembic revision HEAD (versions/dc11669786a5_mlflow_schema.py), on the migration's
connection and in its transaction: the old tables are moved aside (PostgreSQL: into a scratch
schema, with their indexes and sequences; SQLite: renamed, their indexes dropped), MLflow's
tables are created, every row is copied over, and the old tables are dropped. Nothing is lost:
rows are only deduplicated where MLflow's keys demand it (identical metric points). Values that
MLflow's PostgreSQL columns cannot hold stop the upgrade first, naming them; the transaction
then leaves the database as it was.
"""

from __future__ import annotations

from sqlalchemy import Connection, column, func, insert, inspect, select, table, text

from tracking.errors import StorageError
from tracking.validation import shown

_SCRATCH_SCHEMA = "trackflow_before_mlflow_schema"
_OLD_PREFIX = "trackflow_old_"
#: What MLflow writes into the runs columns Trackflow's old schema did not have.
_NEW_RUN_COLUMNS = {
    "source_type": "UNKNOWN",
    "source_name": "",
    "entry_point_name": "",
    "source_version": "",
}
_INT32_MAX = 2**31 - 1


def upgrade(conn: Connection) -> None:
    """Turn Trackflow's tables into MLflow 3.17.2's, keeping every row (see the module)."""
    from tracking.stores.sql.migrations import full_metadata
    from tracking.stores.sql.mlflow_tables import DEFAULT_WORKSPACE_ROW, workspaces

    metadata = full_metadata()
    old = {name: _columns(conn, name) for name in inspect(conn).get_table_names()}
    old.pop("alembic_version", None)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        _check_values(conn, old)
    moved = _move_aside(conn, list(old), postgres)
    metadata.create_all(conn)
    for new in metadata.sorted_tables:  # parents first: every row finds the row it refers to
        if new.name in old:
            _copy(conn, new.name, moved[new.name], [c.name for c in new.columns], old[new.name])
    conn.execute(insert(workspaces).values(DEFAULT_WORKSPACE_ROW))
    if postgres:
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                "GREATEST(MAX(experiment_id), 1), MAX(experiment_id) >= 1) FROM experiments"
            )
        )
        conn.execute(text(f"DROP SCHEMA {_SCRATCH_SCHEMA} CASCADE"))
    else:
        for new in reversed(metadata.sorted_tables):  # children first
            if new.name in old:
                conn.execute(text(f'DROP TABLE "{_OLD_PREFIX}{new.name}"'))


def _columns(conn: Connection, name: str) -> list[str]:
    return [c["name"] for c in inspect(conn).get_columns(name)]


def _check_values(conn: Connection, old: dict[str, list[str]]) -> None:
    """Refuse values MLflow's PostgreSQL columns cannot hold, before anything changes."""
    from tracking.stores.sql.migrations import full_metadata

    problems = []
    for new in full_metadata().sorted_tables:
        for name in old.get(new.name, []):
            if name not in new.c:
                continue
            limit = getattr(new.c[name].type, "length", None)
            source = table(new.name, column(name))
            if limit is not None:
                longest = select(source.c[name]).where(func.length(source.c[name]) > limit)
                found = conn.execute(longest.limit(1)).scalar()
                if found is not None:
                    problems.append(f"{new.name}.{name} holds {shown(found, 60)} (MLflow: {limit})")
            elif name == "experiment_id" and new.name == "experiments":
                biggest = conn.execute(select(func.max(source.c[name]))).scalar() or 0
                if biggest > _INT32_MAX:
                    problems.append(f"experiment id {biggest} exceeds MLflow's 32-bit ids")
    if problems:
        raise StorageError(
            "Cannot upgrade this Trackflow database to MLflow's schema: MLflow's columns are "
            "too narrow for " + "; ".join(problems) + ". Nothing was changed. Shorten or delete "
            "those values with an older Trackflow, or copy the runs to a file store with it "
            "(`trackflow migrate --from URI --to ./mlruns`)"
        )


def _move_aside(conn: Connection, names: list[str], postgres: bool) -> dict[str, str]:
    """Move the old tables out of the way of MLflow's; their new qualified names."""
    if postgres:
        conn.execute(text(f"CREATE SCHEMA {_SCRATCH_SCHEMA}"))
        for name in names:
            conn.execute(text(f'ALTER TABLE "{name}" SET SCHEMA {_SCRATCH_SCHEMA}'))
        return {name: f'{_SCRATCH_SCHEMA}."{name}"' for name in names}
    conn.execute(text("PRAGMA defer_foreign_keys = ON"))  # checked again at commit
    indexes = conn.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    ).scalars()
    for index in list(indexes):
        conn.execute(text(f'DROP INDEX "{index}"'))
    for name in names:
        conn.execute(text(f'ALTER TABLE "{name}" RENAME TO "{_OLD_PREFIX}{name}"'))
    return {name: f'"{_OLD_PREFIX}{name}"' for name in names}


def _copy(
    conn: Connection, name: str, source: str, new_columns: list[str], old_columns: list[str]
) -> None:
    """INSERT INTO name SELECT ... FROM source: the columns both have, MLflow's values for
    the runs columns Trackflow had none of, and each metric point once."""
    shared = [c for c in new_columns if c in old_columns]
    values = [f'"{c}"' for c in shared]
    targets = list(shared)
    if name == "runs":
        for column_name, value in _NEW_RUN_COLUMNS.items():
            if column_name not in old_columns:
                targets.append(column_name)
                values.append(f"'{value}'")
    distinct = "DISTINCT " if name == "metrics" else ""
    quoted = ", ".join(f'"{c}"' for c in targets)
    conn.execute(
        text(f'INSERT INTO "{name}" ({quoted}) SELECT {distinct}{", ".join(values)} FROM {source}')
    )
