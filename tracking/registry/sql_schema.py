"""Registry tables of the SQL store: MLflow's, as MLflow 3.17.2's schema head has them.

Renaming a model updates `registered_models.name`; the foreign keys carry the new name to
versions, tags and aliases (ON UPDATE CASCADE). Only aliases are deleted with their model
(ON DELETE CASCADE): versions and tags are deleted explicitly, as MLflow does. MLflow 3 keys
every table by workspace too; Trackflow reads and writes the default workspace only.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from tracking.stores.sql.schema import metadata, workspace_column

# The workspace in every primary key comes from its server default: inserts must not ask for
# it back (RETURNING workspace), as older MLflow schemas have no such column.
_NO_RETURNING = {"implicit_returning": False}


def _model_fk(table: str, delete_cascade: bool = False) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["workspace", "name"],
        ["registered_models.workspace", "registered_models.name"],
        name=f"fk_{table}_registered_models",
        onupdate="CASCADE",
        ondelete="CASCADE" if delete_cascade else None,
    )


registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), nullable=False),
    Column("creation_time", BigInteger),
    Column("last_updated_time", BigInteger),
    Column("description", String(5000)),
    workspace_column(),
    PrimaryKeyConstraint("workspace", "name", name="registered_model_pk"),
    Index("idx_registered_models_workspace", "workspace"),
    **_NO_RETURNING,
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False, autoincrement=False),
    Column("creation_time", BigInteger),
    Column("last_updated_time", BigInteger),
    Column("description", String(5000)),
    Column("user_id", String(256)),
    Column("current_stage", String(20)),
    Column("source", String(500)),
    Column("run_id", String(32)),
    Column("status", String(20)),
    Column("status_message", String(500)),
    Column("run_link", String(500)),
    Column("storage_location", String(500)),
    workspace_column(),
    PrimaryKeyConstraint("workspace", "name", "version", name="model_version_pk"),
    _model_fk("model_versions"),
    # Trackflow's: the versions registered from a run (the UI's run page).
    Index("trackflow_model_versions_run_id", "run_id"),
    **_NO_RETURNING,
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", String(5000)),
    Column("name", String(256), nullable=False),
    workspace_column(),
    PrimaryKeyConstraint("workspace", "key", "name", name="registered_model_tag_pk"),
    _model_fk("registered_model_tags"),
    Index("idx_registered_model_tags_workspace_name", "workspace", "name"),
    **_NO_RETURNING,
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", Text),
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False, autoincrement=False),
    workspace_column(),
    PrimaryKeyConstraint("workspace", "key", "name", "version", name="model_version_tag_pk"),
    ForeignKeyConstraint(
        ["workspace", "name", "version"],
        ["model_versions.workspace", "model_versions.name", "model_versions.version"],
        name="fk_model_version_tags_model_versions",
        onupdate="CASCADE",
    ),
    Index("idx_model_version_tags_workspace_name_version", "workspace", "name", "version"),
    **_NO_RETURNING,
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("alias", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(256), nullable=False),
    workspace_column(),
    PrimaryKeyConstraint("workspace", "name", "alias", name="registered_model_alias_pk"),
    _model_fk("registered_model_aliases", delete_cascade=True),
    **_NO_RETURNING,
)
