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
