"""The tracking tables of the SQL store: MLflow's own, as MLflow 3.17.2's schema head has them.

Table, column, constraint and index names, types and column order are MLflow's, so that MLflow
uses a database Trackflow made and Trackflow one MLflow made (docs/architecture.md, "One SQL
schema with MLflow"). Older MLflow schemas Trackflow opens lack a few of these columns (see
`tracking.stores.sql.shape`): queries name their columns rather than select whole tables.
Trackflow's own indexes are named `trackflow_*`. Changes here need an Alembic migration.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: MLflow's workspace column (3.x): every row Trackflow writes is in the default workspace.
DEFAULT_WORKSPACE = "default"
LIFECYCLE_STAGES = "lifecycle_stage IN ('active', 'deleted')"


def workspace_column() -> Column[str]:
    """MLflow's `workspace` column, filled by the database when an insert leaves it out."""
    return Column("workspace", String(63), nullable=False, server_default=DEFAULT_WORKSPACE)


def run_fk() -> ForeignKey:
    """The foreign key of params, tags and metrics to their run (no cascade, as MLflow's)."""
    return ForeignKey("runs.run_uuid")


experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("artifact_location", String(256)),
    Column("lifecycle_stage", String(32)),
    Column("creation_time", BigInteger),
    Column("last_update_time", BigInteger),
    workspace_column(),
    PrimaryKeyConstraint("experiment_id", name="experiment_pk"),
    CheckConstraint(LIFECYCLE_STAGES, name="experiments_lifecycle_stage"),
    UniqueConstraint("workspace", "name", name="uq_experiments_workspace_name"),
    Index("idx_experiments_workspace", "workspace"),
    Index("idx_experiments_workspace_creation_time", "workspace", "creation_time"),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", Text),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    PrimaryKeyConstraint("key", "experiment_id", name="experiment_tag_pk"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), nullable=False),
    Column("name", String(250)),
    Column("source_type", String(20)),
    Column("source_name", String(500)),
    Column("entry_point_name", String(50)),
    Column("user_id", String(256)),
    Column("status", String(9)),
    Column("start_time", BigInteger),
    Column("end_time", BigInteger),
    Column("source_version", String(50)),
    Column("lifecycle_stage", String(20)),
    Column("artifact_uri", String(200)),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id")),
    Column("deleted_time", BigInteger),
    PrimaryKeyConstraint("run_uuid", name="run_pk"),
    CheckConstraint(
        "source_type IN ('NOTEBOOK', 'JOB', 'LOCAL', 'UNKNOWN', 'PROJECT')", name="source_type"
    ),
    CheckConstraint(LIFECYCLE_STAGES, name="runs_lifecycle_stage"),
    CheckConstraint("status IN ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING', 'KILLED')"),
    # Trackflow's: a search's runs of an experiment, newest first, without a sort.
    Index("trackflow_runs_experiment_start", "experiment_id", "lifecycle_stage", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", String(8000), nullable=False),
    Column("run_uuid", String(32), run_fk(), nullable=False),
    PrimaryKeyConstraint("key", "run_uuid", name="param_pk"),
    Index("index_params_run_uuid", "run_uuid"),
)

tags = Table(
    "tags",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", String(8000)),
    Column("run_uuid", String(32), run_fk(), nullable=False),
    PrimaryKeyConstraint("key", "run_uuid", name="tag_pk"),
    Index("index_tags_run_uuid", "run_uuid"),
)

# Full history, one row per distinct point: NaN is stored as value 0 with is_nan set.
metrics = Table(
    "metrics",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("run_uuid", String(32), run_fk(), nullable=False),
    Column("step", BigInteger, nullable=False, server_default="0"),
    Column("is_nan", Boolean(create_constraint=True), nullable=False, server_default="0"),
    PrimaryKeyConstraint(
        "key", "timestamp", "step", "run_uuid", "value", "is_nan", name="metric_pk"
    ),
    Index("index_metrics_run_uuid", "run_uuid"),
    Index("index_metrics_run_uuid_key_step", "run_uuid", "key", "step"),
)

# The latest value per (run, key): what run.data.metrics and search filter on.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("timestamp", BigInteger),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean(create_constraint=True), nullable=False),
    Column("run_uuid", String(32), run_fk(), nullable=False),
    PrimaryKeyConstraint("key", "run_uuid", name="latest_metric_pk"),
    Index("index_latest_metrics_run_uuid", "run_uuid"),
    # Trackflow's: filters and orderings on a metric's value.
    Index("trackflow_latest_metrics_key_value", "key", "value"),
)

#: The tables of experiments and runs, which every store reads (`trackflow migrate` too).
TRACKING_TABLES = (experiments, experiment_tags, runs, params, tags, metrics, latest_metrics)

# MLflow's dataset inputs: a dataset (per experiment) and the edges DATASET -> RUN, plus the
# edges RUN_INPUT -> MODEL_INPUT and RUN_OUTPUT -> MODEL_OUTPUT of LoggedModels.
datasets = Table(
    "datasets",
    metadata,
    Column("dataset_uuid", String(36), nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(500), nullable=False),
    Column("digest", String(36), nullable=False),
    Column("dataset_source_type", String(36), nullable=False),
    Column("dataset_source", Text, nullable=False),
    Column("dataset_schema", Text),
    Column("dataset_profile", Text),
    PrimaryKeyConstraint("experiment_id", "name", "digest", name="dataset_pk"),
    ForeignKeyConstraint(
        ["experiment_id"],
        ["experiments.experiment_id"],
        name="fk_datasets_experiment_id_experiments",
        ondelete="CASCADE",
    ),
    Index("index_datasets_dataset_uuid", "dataset_uuid"),
    Index(
        "index_datasets_experiment_id_dataset_source_type", "experiment_id", "dataset_source_type"
    ),
)

inputs = Table(
    "inputs",
    metadata,
    Column("input_uuid", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source_id", String(36), nullable=False),
    Column("destination_type", String(36), nullable=False),
    Column("destination_id", String(36), nullable=False),
    Column("step", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint(
        "source_type", "source_id", "destination_type", "destination_id", name="inputs_pk"
    ),
    Index("index_inputs_input_uuid", "input_uuid"),
    Index(
        "index_inputs_destination_type_destination_id_source_type",
        "destination_type",
        "destination_id",
        "source_type",
    ),
)

input_tags = Table(
    "input_tags",
    metadata,
    Column("input_uuid", String(36), nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", String(500), nullable=False),
    PrimaryKeyConstraint("input_uuid", "name", name="input_tags_pk"),
)


def _experiment_fk(table: str, ondelete: str | None = None) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["experiment_id"],
        ["experiments.experiment_id"],
        name=f"fk_{table}_experiment_id",
        ondelete=ondelete,
    )


def _logged_model_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["model_id"], ["logged_models.model_id"], name=f"fk_{table}_model_id", ondelete="CASCADE"
    )


logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(36), nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(500), nullable=False),
    Column("artifact_location", String(1000), nullable=False),
    Column("creation_timestamp_ms", BigInteger, nullable=False),
    Column("last_updated_timestamp_ms", BigInteger, nullable=False),
    Column("status", Integer, nullable=False),
    Column("lifecycle_stage", String(32)),
    Column("model_type", String(500)),
    Column("source_run_id", String(32)),
    Column("status_message", String(1000)),
    PrimaryKeyConstraint("model_id", name="logged_models_pk"),
    CheckConstraint(LIFECYCLE_STAGES, name="logged_models_lifecycle_stage_check"),
    _experiment_fk("logged_models", ondelete="CASCADE"),
)

logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    Column("model_id", String(36), nullable=False),
    Column("metric_name", String(500), nullable=False),
    Column("metric_timestamp_ms", BigInteger, nullable=False),
    Column("metric_step", BigInteger, nullable=False),
    Column("metric_value", Float(precision=53)),
    Column("experiment_id", Integer, nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("dataset_uuid", String(36)),
    Column("dataset_name", String(500)),
    Column("dataset_digest", String(36)),
    PrimaryKeyConstraint(
        "model_id",
        "metric_name",
        "metric_timestamp_ms",
        "metric_step",
        "run_id",
        name="logged_model_metrics_pk",
    ),
    _experiment_fk("logged_model_metrics"),
    _logged_model_fk("logged_model_metrics"),
    ForeignKeyConstraint(
        ["run_id"], ["runs.run_uuid"], name="fk_logged_model_metrics_run_id", ondelete="CASCADE"
    ),
    Index("index_logged_model_metrics_model_id", "model_id"),
)


def _logged_model_values(name: str, kind: str) -> Table:
    """logged_model_params and logged_model_tags: (<kind>_key, <kind>_value) rows of a model."""
    return Table(
        name,
        metadata,
        Column("model_id", String(36), nullable=False),
        Column("experiment_id", Integer, nullable=False),
        Column(f"{kind}_key", String(255), nullable=False),
        Column(f"{kind}_value", Text, nullable=False),
        PrimaryKeyConstraint("model_id", f"{kind}_key", name=f"{name}_pk"),
        _experiment_fk(name),
        _logged_model_fk(name),
    )


logged_model_params = _logged_model_values("logged_model_params", "param")
logged_model_tags = _logged_model_values("logged_model_tags", "tag")
