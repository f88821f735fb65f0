"""Tables of the SQL store (SQLAlchemy Core). Changes here need an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# 64-bit ids (file-store experiment ids have 18 digits); SQLite needs INTEGER for autoincrement.
ExperimentId = BigInteger().with_variant(Integer, "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", ExperimentId, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", BigInteger),
    Column("last_update_time", BigInteger),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        ExperimentId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(256), primary_key=True),
    Column("name", String(250), nullable=False),
    Column(
        "experiment_id",
        ExperimentId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(256), nullable=False),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger),
    Column("end_time", BigInteger),
    Column("deleted_time", BigInteger),
    Column("artifact_uri", Text, nullable=False),
    Column("lifecycle_stage", String(20), nullable=False),
    Index("runs_experiment_start", "experiment_id", "lifecycle_stage", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column(
        "run_uuid", String(256), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", String(6000), nullable=False),
    Index("params_key", "key", "run_uuid"),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "run_uuid", String(256), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("tags_key", "key", "run_uuid"),
)

# Full history; NaN is stored as value 0 with is_nan set (SQLite turns NaN into NULL).
metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "run_uuid", String(256), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
    ),
    Column("key", String(250), nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Index("metrics_run_key", "run_uuid", "key"),
)

# The latest value per (run, key): what run.data.metrics and search filter on.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column(
        "run_uuid", String(256), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Index("latest_metrics_key_value", "key", "value"),
)

# MLflow 3's dataset, input and LoggedModel tables, exactly as MLflow 3.17.2 creates them
# (mlflow/store/tracking/dbmodels/models.py and its migrations), so a database of either tool
# can adopt the other's schema. MLflow keeps experiment ids in 32-bit columns here.
datasets = Table(
    "datasets",
    metadata,
    Column("dataset_uuid", String(36), nullable=False),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(500), primary_key=True),
    Column("digest", String(36), primary_key=True),
    Column("dataset_source_type", String(36), nullable=False),
    Column("dataset_source", Text, nullable=False),
    Column("dataset_schema", Text),
    Column("dataset_profile", Text),
    Index("index_datasets_dataset_uuid", "dataset_uuid"),
    Index(
        "index_datasets_experiment_id_dataset_source_type", "experiment_id", "dataset_source_type"
    ),
)

# Edges between datasets, runs and models: DATASET -> RUN (a run's dataset inputs),
# RUN_INPUT -> MODEL_INPUT (models a run used), RUN_OUTPUT -> MODEL_OUTPUT (models it produced).
inputs = Table(
    "inputs",
    metadata,
    Column("input_uuid", String(36), nullable=False),
    Column("source_type", String(36), primary_key=True),
    Column("source_id", String(36), primary_key=True),
    Column("destination_type", String(36), primary_key=True),
    Column("destination_id", String(36), primary_key=True),
    Column("step", BigInteger, nullable=False, server_default="0"),
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
    Column("input_uuid", String(36), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", String(500), nullable=False),
)

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(36), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey(
            "experiments.experiment_id", ondelete="CASCADE", name="fk_logged_models_experiment_id"
        ),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("artifact_location", String(1000), nullable=False),
    Column("creation_timestamp_ms", BigInteger, nullable=False),
    Column("last_updated_timestamp_ms", BigInteger, nullable=False),
    Column("status", Integer, nullable=False),
    Column("lifecycle_stage", String(32)),
    Column("model_type", String(500)),
    Column("source_run_id", String(32)),
    Column("status_message", String(1000)),
)


def _model_fk(name: str) -> ForeignKey:
    return ForeignKey("logged_models.model_id", ondelete="CASCADE", name=name)


def _experiment_fk(name: str) -> ForeignKey:
    return ForeignKey("experiments.experiment_id", name=name)


logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    Column("model_id", String(36), _model_fk("fk_logged_model_metrics_model_id"), primary_key=True),
    Column("metric_name", String(500), primary_key=True),
    Column("metric_timestamp_ms", BigInteger, primary_key=True),
    Column("metric_step", BigInteger, primary_key=True),
    Column("metric_value", Float(precision=53)),
    Column(
        "experiment_id",
        Integer,
        _experiment_fk("fk_logged_model_metrics_experiment_id"),
        nullable=False,
    ),
    Column(
        "run_id",
        String(32),
        ForeignKey("runs.run_uuid", ondelete="CASCADE", name="fk_logged_model_metrics_run_id"),
        primary_key=True,
    ),
    Column("dataset_uuid", String(36)),
    Column("dataset_name", String(500)),
    Column("dataset_digest", String(36)),
    Index("index_logged_model_metrics_model_id", "model_id"),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(36), _model_fk("fk_logged_model_params_model_id"), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        _experiment_fk("fk_logged_model_params_experiment_id"),
        nullable=False,
    ),
    Column("param_key", String(255), primary_key=True),
    Column("param_value", Text, nullable=False),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(36), _model_fk("fk_logged_model_tags_model_id"), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        _experiment_fk("fk_logged_model_tags_experiment_id"),
        nullable=False,
    ),
    Column("tag_key", String(255), primary_key=True),
    Column("tag_value", Text, nullable=False),
)
