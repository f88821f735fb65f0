"""Registry tables of the SQL store (migration 0002), on the tracking tables' MetaData.

Names follow MLflow's SQL registry. Renaming a model updates `registered_models.name`; the
foreign keys cascade the new name to versions, tags and aliases (ON UPDATE CASCADE).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from tracking.stores.sql.schema import metadata


def _model_fk() -> ForeignKey:
    return ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE")


registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("creation_time", BigInteger),
    Column("last_updated_time", BigInteger),
    Column("description", Text),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(256), _model_fk(), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("creation_time", BigInteger),
    Column("last_updated_time", BigInteger),
    Column("description", Text),
    Column("user_id", String(256)),
    Column("current_stage", String(20), nullable=False),
    Column("source", Text),
    Column("storage_location", Text),
    Column("run_id", String(256)),
    Column("run_link", Text),
    Column("status", String(20), nullable=False),
    Column("status_message", Text),
    Index("model_versions_run_id", "run_id"),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("name", String(256), _model_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("name", String(256), _model_fk(), primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
)
