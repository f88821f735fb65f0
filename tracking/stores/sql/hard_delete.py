"""Removing deleted runs and experiments for good (`trackflow gc`), in one transaction each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Table, delete, func, select

from tracking.entities import LifecycleStage
from tracking.stores.sql import schema


def _referring(column: Column[Any]) -> list[tuple[Table, Column[Any]]]:
    """(table, column) of every table with a foreign key to `column`, e.g. params.run_uuid."""
    found = []
    for table in schema.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column is column:
                found.append((table, fk.parent))
    return found


def deleted_time(conn: Connection, run_id: str) -> int | None:
    """When the run was deleted (ms); None if it is not deleted or not there."""
    runs = schema.runs
    value = conn.execute(
        select(runs.c.deleted_time).where(runs.c.run_uuid == run_id)
    ).scalar_one_or_none()
    return int(value) if value is not None else None


def run(conn: Connection, run_id: str) -> bool:
    """Delete a deleted run's rows and every row referring to it; False if it is not deleted
    (any more) or gone. The row is locked first, so a concurrent restore waits or wins."""
    runs = schema.runs
    stage = conn.execute(
        select(runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id).with_for_update()
    ).scalar_one_or_none()
    if stage != LifecycleStage.DELETED:
        return False
    for table, column in _referring(runs.c.run_uuid):  # the foreign keys cascade: not relied on
        conn.execute(delete(table).where(column == run_id))
    conn.execute(delete(runs).where(runs.c.run_uuid == run_id))
    return True


def experiment(conn: Connection, experiment_id: int) -> bool:
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
    for table, column in _referring(experiments.c.experiment_id):
        if table is not runs:
            conn.execute(delete(table).where(column == experiment_id))
    conn.execute(delete(experiments).where(experiments.c.experiment_id == experiment_id))
    return True
