"""Trackflow's tables become MLflow 3.17.2's: same rows, MLflow's tables, columns and revision.

From here on the revision ids are MLflow's own: this one is MLflow 3.17.2's schema head, so
MLflow takes the upgraded database as its own (tracking/stores/sql/migrations/__init__.py).

Revision ID: dc11669786a5
Revises: 0002
"""

from alembic import op

from tracking.stores.sql.migrations import to_mlflow_schema

revision = "dc11669786a5"
down_revision = "0002"


def upgrade() -> None:
    to_mlflow_schema.upgrade(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError(
        "MLflow's schema has no way back to Trackflow's old one: restore the backup instead"
    )
