"""Removing deleted runs and experiments for good (`trackflow gc`), in one transaction each.

As MLflow does: the rows whose foreign key to the run or experiment has no ON DELETE action
(params, tags, metrics, experiment tags, ...) are deleted first; the database cascades or
nulls the rest by MLflow's rules (LoggedModel metrics, traces, issues, gateway endpoints), and
MLflow's trace rollups, which have no foreign key, go with their experiment. Only tables the
database has are touched (older MLflow schemas lack some).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Table, delete, func, select

from tracking.entities import LifecycleStage
from tracking.stores.sql import schema
from tracking.stores.sql.migrations import full_metadata
from tracking.stores.sql.shape import SchemaShape


def _referring(column: Column[Any], shape: SchemaShape) -> list[tuple[Table, Column[Any]]]:
    """(table, column) of every table of the database whose foreign key to `column` leaves
    its rows to be deleted first (no ON DELETE action), children before parents."""
    found = []
    for table in reversed(full_metadata().sorted_tables):
        for fk in table.foreign_keys:
            if fk.column is column and fk.ondelete is None and shape.has(table.name):
                found.append((table, fk.parent))
    return found


def deleted_time(conn: Connection, run_id: str) -> int | None:
    """When the run was deleted (ms); None if it is not deleted or not there."""
    runs = schema.runs
    value = conn.execute(
        select(runs.c.deleted_time).where(runs.c.run_uuid == run_id)
    ).scalar_one_or_none()
    return int(value) if value is not None else None


def run(conn: Connection, run_id: str, shape: SchemaShape) -> bool:
    """Delete a deleted run's rows and every row referring to it; False if it is not deleted
    (any more) or gone. The row is locked first, so a concurrent restore waits or wins."""
    runs = schema.runs
    stage = conn.execute(
        select(runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id).with_for_update()
    ).scalar_one_or_none()
    if stage != LifecycleStage.DELETED:
        return False
    for table, column in _referring(runs.c.run_uuid, shape):
        conn.execute(delete(table).where(column == run_id))
    conn.execute(delete(runs).where(runs.c.run_uuid == run_id))
    return True


def experiment(conn: Connection, experiment_id: int, shape: SchemaShape) -> bool:
    """Delete a deleted experiment without runs and its rows; False if it is not deleted, gone
    or still holds runs."""
    experiments, runs = schema.experiments, schema.runs
    stage = conn.execute(
        select(experiments.c.lifecycle_stage)
        .where(experiments.c.experiment_id == experiment_id)
        .with_for_update()
    ).scalar_one_or_none()
    if stage != LifecycleStage.DELETED:
        return False
    left = conn.execute(
        select(func.count()).select_from(runs).where(runs.c.experiment_id == experiment_id)
    ).scalar_one()
    if left:
        return False
    from tracking.stores.sql.mlflow_tables import EXPERIMENT_ROLLUPS

    for table, column in _referring(experiments.c.experiment_id, shape):
        if table is not runs:
            conn.execute(delete(table).where(column == experiment_id))
    for table in EXPERIMENT_ROLLUPS:  # no foreign key: an id SQLite reuses must start empty
        if shape.has(table.name):
            conn.execute(delete(table).where(table.c.experiment_id == experiment_id))
    conn.execute(delete(experiments).where(experiments.c.experiment_id == experiment_id))
    return True
