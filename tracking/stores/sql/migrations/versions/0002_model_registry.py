"""Model registry: registered models, versions, their tags, and aliases.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def _model_fk() -> sa.ForeignKey:
    return sa.ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE")


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("creation_time", sa.BigInteger),
        sa.Column("last_updated_time", sa.BigInteger),
        sa.Column("description", sa.Text),
    )
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(256), _model_fk(), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("creation_time", sa.BigInteger),
        sa.Column("last_updated_time", sa.BigInteger),
        sa.Column("description", sa.Text),
        sa.Column("user_id", sa.String(256)),
        sa.Column("current_stage", sa.String(20), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("storage_location", sa.Text),
        sa.Column("run_id", sa.String(256)),
        sa.Column("run_link", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_message", sa.Text),
    )
    op.create_index("model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "registered_model_tags",
        sa.Column("name", sa.String(256), _model_fk(), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("name", sa.String(256), _model_fk(), primary_key=True),
        sa.Column("alias", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "registered_model_aliases",
        "model_version_tags",
        "registered_model_tags",
        "model_versions",
        "registered_models",
    ):
        op.drop_table(table)
