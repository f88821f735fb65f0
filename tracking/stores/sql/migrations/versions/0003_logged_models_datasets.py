"""MLflow 3's datasets, inputs, input_tags and LoggedModel tables, as MLflow 3.17.2 has them.

Table, column, constraint and index names and types are MLflow's (its revisions 7f2a7d5fae7d,
0584bdc529eb, 400f98739977 and 6953534de441 taken together), so a later switch to MLflow's own
revision chain finds them as it expects.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def _experiment_fk(table: str, cascade: bool = False) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["experiment_id"],
        ["experiments.experiment_id"],
        name=f"fk_{table}_experiment_id",
        ondelete="CASCADE" if cascade else None,
    )


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"], ["logged_models.model_id"], name=f"fk_{table}_model_id", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", sa.String(36), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("dataset_source_type", sa.String(36), nullable=False),
        sa.Column("dataset_source", sa.Text(), nullable=False),
        sa.Column("dataset_schema", sa.Text(), nullable=True),
        sa.Column("dataset_profile", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("experiment_id", "name", "digest", name="dataset_pk"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE"
        ),
    )
    op.create_index("index_datasets_dataset_uuid", "datasets", ["dataset_uuid"])
    op.create_index(
        "index_datasets_experiment_id_dataset_source_type",
        "datasets",
        ["experiment_id", "dataset_source_type"],
    )
    op.create_table(
        "inputs",
        sa.Column("input_uuid", sa.String(36), nullable=False),
        sa.Column("source_type", sa.String(36), nullable=False),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("destination_type", sa.String(36), nullable=False),
        sa.Column("destination_id", sa.String(36), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint(
            "source_type", "source_id", "destination_type", "destination_id", name="inputs_pk"
        ),
    )
    op.create_index("index_inputs_input_uuid", "inputs", ["input_uuid"])
    op.create_index(
        "index_inputs_destination_type_destination_id_source_type",
        "inputs",
        ["destination_type", "destination_id", "source_type"],
    )
    op.create_table(
        "input_tags",
        sa.Column("input_uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("input_uuid", "name", name="input_tags_pk"),
    )
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(36), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(1000), nullable=False),
        sa.Column("creation_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=True),
        sa.Column("model_type", sa.String(500), nullable=True),
        sa.Column("source_run_id", sa.String(32), nullable=True),
        sa.Column("status_message", sa.String(1000), nullable=True),
        sa.CheckConstraint(
            "lifecycle_stage IN ('active', 'deleted')", name="logged_models_lifecycle_stage_check"
        ),
        _experiment_fk("logged_models", cascade=True),
        sa.PrimaryKeyConstraint("model_id", name="logged_models_pk"),
    )
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(36), nullable=False),
        sa.Column("metric_name", sa.String(500), nullable=False),
        sa.Column("metric_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("metric_step", sa.BigInteger(), nullable=False),
        sa.Column("metric_value", sa.Float(precision=53), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("dataset_uuid", sa.String(36), nullable=True),
        sa.Column("dataset_name", sa.String(500), nullable=True),
        sa.Column("dataset_digest", sa.String(36), nullable=True),
        _experiment_fk("logged_model_metrics"),
        _model_fk("logged_model_metrics"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_uuid"], name="fk_logged_model_metrics_run_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "model_id",
            "metric_name",
            "metric_timestamp_ms",
            "metric_step",
            "run_id",
            name="logged_model_metrics_pk",
        ),
    )
    op.create_index("index_logged_model_metrics_model_id", "logged_model_metrics", ["model_id"])
    for table, key, value in (
        ("logged_model_params", "param_key", "param_value"),
        ("logged_model_tags", "tag_key", "tag_value"),
    ):
        op.create_table(
            table,
            sa.Column("model_id", sa.String(36), nullable=False),
            sa.Column("experiment_id", sa.Integer(), nullable=False),
            sa.Column(key, sa.String(255), nullable=False),
            sa.Column(value, sa.Text(), nullable=False),
            _experiment_fk(table),
            _model_fk(table),
            sa.PrimaryKeyConstraint("model_id", key, name=f"{table}_pk"),
        )


def downgrade() -> None:
    for table in (
        "logged_model_tags",
        "logged_model_params",
        "logged_model_metrics",
        "logged_models",
        "input_tags",
        "inputs",
        "datasets",
    ):
        op.drop_table(table)
