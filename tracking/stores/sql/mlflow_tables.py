"""MLflow 3.17.2's tables that Trackflow does not use: traces, assessments, GenAI evaluation,
scorers, jobs, webhooks, the AI gateway, MCP servers, budgets and workspaces.

A database Trackflow creates holds them (empty), exactly as MLflow's schema head has them, so
that MLflow's features work on it and MLflow's own later migrations (`mlflow db upgrade`) find
what they expect. Trackflow never reads or writes them.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    Float,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
)

from tracking.stores.sql.schema import metadata, workspace_column

Double = Float(precision=53)
#: MLflow's daily rollups number their rows with a 64-bit identity (SQLite: its rowid).
RollupId = BigInteger().with_variant(Integer, "sqlite")


def _fk(
    table: str,
    columns: list[str],
    target: str,
    target_columns: list[str],
    name: str | None = None,
    ondelete: str | None = None,
    onupdate: str | None = None,
) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        columns,
        [f"{target}.{c}" for c in target_columns],
        name=name or f"fk_{table}_{columns[0]}",
        ondelete=ondelete,
        onupdate=onupdate,
    )


def _experiment_fk(table: str, ondelete: str | None = None) -> ForeignKeyConstraint:
    return _fk(table, ["experiment_id"], "experiments", ["experiment_id"], ondelete=ondelete)


def _audit_columns() -> list[Column[object]]:
    """created_by, created_at, last_updated_by, last_updated_at: the gateway tables' order."""
    return [
        Column("created_by", String(255)),
        Column("created_at", BigInteger, nullable=False),
        Column("last_updated_by", String(255)),
        Column("last_updated_at", BigInteger, nullable=False),
    ]


# --- workspaces --------------------------------------------------------------------------------
workspaces = Table(
    "workspaces",
    metadata,
    Column("name", String(63), nullable=False),
    Column("description", Text),
    Column("default_artifact_root", Text),
    Column("trace_archival_location", Text),
    Column("trace_archival_retention", String(32)),
    PrimaryKeyConstraint("name", name="workspaces_pk"),
)
#: The row MLflow's migration puts in `workspaces`; a database Trackflow creates gets it too.
DEFAULT_WORKSPACE_ROW = {"name": "default", "description": "Default workspace for legacy resources"}

# --- traces ------------------------------------------------------------------------------------
trace_info = Table(
    "trace_info",
    metadata,
    Column("request_id", String(50), nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("execution_time_ms", BigInteger),
    Column("status", String(50), nullable=False),
    Column("client_request_id", String(50)),
    Column("request_preview", String(1000)),
    Column("response_preview", String(1000)),
    Column("db_payload_generation", Integer, nullable=False, server_default="0"),
    Column("trace_name", String(4096)),
    Column("session_id", String(250)),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("total_tokens", BigInteger),
    Column("cache_read_input_tokens", BigInteger),
    Column("cache_creation_input_tokens", BigInteger),
    Column("cache_creation_input_tokens_above_1hr", BigInteger),
    Column("input_cost", Double),
    Column("output_cost", Double),
    Column("total_cost", Double),
    PrimaryKeyConstraint("request_id", name="trace_info_pk"),
    _experiment_fk("trace_info", ondelete="CASCADE"),
    Index("index_trace_info_experiment_id_timestamp_ms", "experiment_id", "timestamp_ms"),
    Index("index_trace_info_timestamp_ms_request_id", "timestamp_ms", "request_id"),
    Index("index_trace_info_experiment_id_session_id", "experiment_id", "session_id"),
)


def _trace_key_value(name: str, pk_name: str) -> Table:
    """trace_tags and trace_request_metadata: (key, value) rows of a trace."""
    return Table(
        name,
        metadata,
        Column("key", String(250), nullable=False),
        Column("value", String(8000)),
        Column("request_id", String(50), nullable=False),
        PrimaryKeyConstraint("key", "request_id", name=pk_name),
        _fk(name, ["request_id"], "trace_info", ["request_id"], ondelete="CASCADE"),
        Index(f"index_{name}_request_id", "request_id"),
    )


trace_tags = _trace_key_value("trace_tags", "trace_tag_pk")
trace_request_metadata = _trace_key_value("trace_request_metadata", "trace_request_metadata_pk")

trace_metrics = Table(
    "trace_metrics",
    metadata,
    Column("request_id", String(50), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Double),
    PrimaryKeyConstraint("request_id", "key", name="trace_metrics_pk"),
    _fk("trace_metrics", ["request_id"], "trace_info", ["request_id"], ondelete="CASCADE"),
    Index("index_trace_metrics_request_id", "request_id"),
)

spans = Table(
    "spans",
    metadata,
    Column("trace_id", String(50), nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("span_id", String(50), nullable=False),
    Column("parent_span_id", String(50)),
    Column("name", Text),
    Column("type", String(500)),
    Column("status", String(50), nullable=False),
    Column("start_time_unix_nano", BigInteger, nullable=False),
    Column("end_time_unix_nano", BigInteger),
    Column(
        "duration_ns",
        BigInteger,
        Computed("end_time_unix_nano - start_time_unix_nano", persisted=True),
    ),
    Column("content", Text, nullable=False),
    Column("input_cost", Double),
    Column("output_cost", Double),
    Column("total_cost", Double),
    Column("model_name", String(500)),
    Column("model_provider", String(500)),
    PrimaryKeyConstraint("trace_id", "span_id", name="spans_pk"),
    _experiment_fk("spans"),
    _fk("spans", ["trace_id"], "trace_info", ["request_id"], ondelete="CASCADE"),
    Index("index_spans_experiment_id_duration", "experiment_id", "duration_ns"),
    Index("index_spans_experiment_id_start_time", "experiment_id", "start_time_unix_nano"),
    Index("index_spans_experiment_id_type_status", "experiment_id", "type", "status"),
    Index("index_spans_experiment_id_status_type", "experiment_id", "status", "type"),
    Index("idx_spans_cost_trace_time_cover", "trace_id", "start_time_unix_nano"),
    Index("idx_spans_cost_exp_time_cover", "experiment_id", "start_time_unix_nano"),
)

span_metrics = Table(
    "span_metrics",
    metadata,
    Column("trace_id", String(50), nullable=False),
    Column("span_id", String(50), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Double),
    PrimaryKeyConstraint("trace_id", "span_id", "key", name="span_metrics_pk"),
    _fk(
        "span_metrics",
        ["trace_id", "span_id"],
        "spans",
        ["trace_id", "span_id"],
        name="fk_span_metrics_span",
        ondelete="CASCADE",
    ),
    Index("index_span_metrics_trace_id_span_id", "trace_id", "span_id"),
)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(50), nullable=False),
    Column("trace_id", String(50), nullable=False),
    Column("name", String(250), nullable=False),
    Column("assessment_type", String(20), nullable=False),
    Column("value", Text, nullable=False),
    Column("error", Text),
    Column("created_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("source_type", String(50), nullable=False),
    Column("source_id", String(250)),
    Column("run_id", String(32)),
    Column("span_id", String(50)),
    Column("rationale", Text),
    Column("overrides", String(50)),
    Column("valid", Boolean, nullable=False),
    Column("assessment_metadata", Text),
    Column("experiment_id", Integer),
    Column("trace_timestamp_ms", BigInteger),
    Column("aggregate_value", Double),
    Column("is_numeric_value", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("assessment_id", name="assessments_pk"),
    _fk("assessments", ["trace_id"], "trace_info", ["request_id"], ondelete="CASCADE"),
    Index("index_assessments_assessment_type", "assessment_type"),
    Index("index_assessments_trace_id_created_timestamp", "trace_id", "created_timestamp"),
    Index("index_assessments_last_updated_timestamp", "last_updated_timestamp"),
    Index("index_assessments_run_id_created_timestamp", "run_id", "created_timestamp"),
    Index("idx_assessments_exp_trace_ts", "experiment_id", "trace_timestamp_ms"),
    Index("idx_assessments_exp_trace_ts_name", "experiment_id", "trace_timestamp_ms", "name"),
    Index("idx_assessments_exp_name_valid", "experiment_id", "name", "valid"),
)

entity_associations = Table(
    "entity_associations",
    metadata,
    Column("association_id", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source_id", String(36), nullable=False),
    Column("destination_type", String(36), nullable=False),
    Column("destination_id", String(36), nullable=False),
    Column("created_time", BigInteger),
    PrimaryKeyConstraint(
        "source_type",
        "source_id",
        "destination_type",
        "destination_id",
        name="entity_associations_pk",
    ),
    Index("index_entity_associations_association_id", "association_id"),
    Index(
        "index_entity_associations_reverse_lookup",
        "destination_type",
        "destination_id",
        "source_type",
        "source_id",
    ),
)


def _rollup(name: str, index: str, grouping: list[str], *columns: Column[object]) -> Table:
    """One of MLflow's daily trace-analytics rollups: aggregates per experiment, day and group."""
    return Table(
        name,
        metadata,
        Column("id", RollupId, Identity(), nullable=False),
        Column("experiment_id", Integer, nullable=False),
        Column("rollup_day", Date, nullable=False),
        Column("metric_name", String(250), nullable=False),
        Column("grouping_set", String(50), nullable=False),
        *columns,
        PrimaryKeyConstraint("id", name=f"{name}_pk"),
        Index(index, "experiment_id", "rollup_day", "metric_name", "grouping_set", *grouping),
    )


def _aggregates(*names: str) -> list[Column[object]]:
    """sample_count, then the named aggregates (nullable doubles)."""
    return [
        Column("sample_count", BigInteger, nullable=False),
        *(Column(name, Double) for name in names),
    ]


sql_assessment_daily_rollups = _rollup(
    "sql_assessment_daily_rollups",
    "idx_assessment_rollups_lookup",
    [],
    *_aggregates("sum_value", "min_value", "max_value"),
)
sql_span_cost_daily_rollups = _rollup(
    "sql_span_cost_daily_rollups",
    "idx_span_cost_rollups_lookup",
    ["model_name", "model_provider"],
    Column("model_name", String(500)),
    Column("model_provider", String(500)),
    *_aggregates("sum_value", "min_value", "max_value"),
)
sql_trace_metric_daily_rollups = _rollup(
    "sql_trace_metric_daily_rollups",
    "idx_trace_rollups_lookup",
    ["trace_status"],
    Column("trace_status", String(50)),
    *_aggregates("sum_value", "min_value", "max_value", "p50_value", "p90_value", "p99_value"),
)
sql_trace_rollup_rebuild_queue = Table(
    "sql_trace_rollup_rebuild_queue",
    metadata,
    Column("experiment_id", Integer, nullable=False),
    Column("rollup_day", Date, nullable=False),
    Column("rollup_family", String(50), nullable=False),
    PrimaryKeyConstraint(
        "experiment_id", "rollup_day", "rollup_family", name="sql_trace_rollup_rebuild_queue_pk"
    ),
)

#: Per-experiment rows without a foreign key: deleted with their experiment, as MLflow does.
EXPERIMENT_ROLLUPS = (
    sql_assessment_daily_rollups,
    sql_span_cost_daily_rollups,
    sql_trace_metric_daily_rollups,
    sql_trace_rollup_rebuild_queue,
)

# --- GenAI evaluation: datasets, scorers, issues, labels, review queues ------------------------
evaluation_datasets = Table(
    "evaluation_datasets",
    metadata,
    Column("dataset_id", String(36), nullable=False),
    Column("name", String(255), nullable=False),
    Column("schema", Text),
    Column("profile", Text),
    Column("digest", String(64)),
    Column("created_time", BigInteger),
    Column("last_update_time", BigInteger),
    Column("created_by", String(255)),
    Column("last_updated_by", String(255)),
    workspace_column(),
    PrimaryKeyConstraint("dataset_id", name="evaluation_datasets_pk"),
    Index("index_evaluation_datasets_name", "name"),
    Index("index_evaluation_datasets_created_time", "created_time"),
    Index("idx_evaluation_datasets_workspace", "workspace"),
)

evaluation_dataset_tags = Table(
    "evaluation_dataset_tags",
    metadata,
    Column("dataset_id", String(36), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", String(5000)),
    PrimaryKeyConstraint("dataset_id", "key", name="evaluation_dataset_tags_pk"),
    _fk(
        "evaluation_dataset_tags",
        ["dataset_id"],
        "evaluation_datasets",
        ["dataset_id"],
        ondelete="CASCADE",
    ),
    Index("index_evaluation_dataset_tags_dataset_id", "dataset_id"),
)

evaluation_dataset_records = Table(
    "evaluation_dataset_records",
    metadata,
    Column("dataset_record_id", String(36), nullable=False),
    Column("dataset_id", String(36), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("expectations", JSON),
    Column("tags", JSON),
    Column("source", JSON),
    Column("source_id", String(36)),
    Column("source_type", String(255)),
    Column("created_time", BigInteger),
    Column("last_update_time", BigInteger),
    Column("created_by", String(255)),
    Column("last_updated_by", String(255)),
    Column("input_hash", String(64), nullable=False),
    Column("outputs", JSON),
    PrimaryKeyConstraint("dataset_record_id", name="evaluation_dataset_records_pk"),
    _fk(
        "evaluation_dataset_records",
        ["dataset_id"],
        "evaluation_datasets",
        ["dataset_id"],
        ondelete="CASCADE",
    ),
    UniqueConstraint("dataset_id", "input_hash", name="unique_dataset_input"),
    Index("index_evaluation_dataset_records_dataset_id", "dataset_id"),
)

scorers = Table(
    "scorers",
    metadata,
    Column("experiment_id", Integer, nullable=False),
    Column("scorer_name", String(256), nullable=False),
    Column("scorer_id", String(36), nullable=False),
    PrimaryKeyConstraint("scorer_id", name="scorer_pk"),
    _experiment_fk("scorers", ondelete="CASCADE"),
    Index("index_scorers_experiment_id_scorer_name", "experiment_id", "scorer_name", unique=True),
)

scorer_versions = Table(
    "scorer_versions",
    metadata,
    Column("scorer_id", String(36), nullable=False),
    Column("scorer_version", Integer, nullable=False, autoincrement=False),
    Column("serialized_scorer", Text, nullable=False),
    Column("creation_time", BigInteger),
    PrimaryKeyConstraint("scorer_id", "scorer_version", name="scorer_version_pk"),
    _fk("scorer_versions", ["scorer_id"], "scorers", ["scorer_id"], ondelete="CASCADE"),
    Index("index_scorer_versions_scorer_id", "scorer_id"),
)

online_scoring_configs = Table(
    "online_scoring_configs",
    metadata,
    Column("online_scoring_config_id", String(36), nullable=False),
    Column("scorer_id", String(36), nullable=False),
    Column("sample_rate", Double, nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("filter_string", Text),
    PrimaryKeyConstraint("online_scoring_config_id", name="online_scoring_config_pk"),
    _fk("online_scoring_configs", ["scorer_id"], "scorers", ["scorer_id"], ondelete="CASCADE"),
    _experiment_fk("online_scoring_configs"),
)

issues = Table(
    "issues",
    metadata,
    Column("issue_id", String(36), nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(250), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(50), nullable=False),
    Column("severity", String(50)),
    Column("root_causes", Text),
    Column("source_run_id", String(32)),
    Column("categories", Text),
    Column("created_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("created_by", String(255)),
    PrimaryKeyConstraint("issue_id", name="issues_pk"),
    _experiment_fk("issues", ondelete="CASCADE"),
    _fk("issues", ["source_run_id"], "runs", ["run_uuid"], ondelete="SET NULL"),
    Index("index_issues_experiment_id", "experiment_id"),
    Index("index_issues_source_run_id", "source_run_id"),
    Index("index_issues_status", "status"),
)

label_schemas = Table(
    "label_schemas",
    metadata,
    Column("schema_id", String(36), nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(250), nullable=False),
    Column("type", String(16), nullable=False),
    Column("instruction", Text),
    Column("enable_comment", Boolean, nullable=False, server_default="0"),
    Column("input_type", String(32), nullable=False),
    Column("input_config", Text, nullable=False),
    Column("created_by", String(255)),
    Column("created_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Column("is_default", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("schema_id", name="label_schemas_pk"),
    _experiment_fk("label_schemas", ondelete="CASCADE"),
    UniqueConstraint("experiment_id", "name", name="uq_label_schemas_exp_name"),
    Index("index_label_schemas_experiment_id", "experiment_id"),
)

review_queues = Table(
    "review_queues",
    metadata,
    Column("queue_id", String(36), nullable=False),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(250), nullable=False),
    Column("queue_type", String(16), nullable=False),
    Column("created_by", String(255)),
    Column("creation_time_ms", BigInteger, nullable=False),
    Column("last_update_time_ms", BigInteger, nullable=False),
    Column("name_key", String(250), nullable=False),
    PrimaryKeyConstraint("queue_id", name="review_queues_pk"),
    _experiment_fk("review_queues", ondelete="CASCADE"),
    UniqueConstraint("experiment_id", "name_key", name="uq_review_queues_experiment_name_key"),
    Index("index_review_queues_experiment_id", "experiment_id"),
)


def _queue_fk(table: str) -> ForeignKeyConstraint:
    return _fk(table, ["queue_id"], "review_queues", ["queue_id"], ondelete="CASCADE")


review_queue_items = Table(
    "review_queue_items",
    metadata,
    Column("queue_id", String(36), nullable=False),
    Column("item_type", String(16), nullable=False),
    Column("item_id", String(50), nullable=False),
    Column("status", String(16), nullable=False),
    Column("completed_by", String(250)),
    Column("completed_time_ms", BigInteger),
    Column("creation_time_ms", BigInteger, nullable=False),
    Column("last_update_time_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("queue_id", "item_id", name="review_queue_items_pk"),
    _queue_fk("review_queue_items"),
    Index("index_review_queue_items_queue_id_status", "queue_id", "status"),
    Index("index_review_queue_items_item_id", "item_id"),
)

review_queue_label_schemas = Table(
    "review_queue_label_schemas",
    metadata,
    Column("queue_id", String(36), nullable=False),
    Column("schema_id", String(36), nullable=False),
    PrimaryKeyConstraint("queue_id", "schema_id", name="review_queue_label_schemas_pk"),
    _queue_fk("review_queue_label_schemas"),
    Index("index_review_queue_label_schemas_schema_id", "schema_id"),
)

review_queue_users = Table(
    "review_queue_users",
    metadata,
    Column("queue_id", String(36), nullable=False),
    Column("user_id", String(250), nullable=False),
    PrimaryKeyConstraint("queue_id", "user_id", name="review_queue_users_pk"),
    _queue_fk("review_queue_users"),
    Index("index_review_queue_users_user_id", "user_id"),
)

# --- jobs and webhooks -------------------------------------------------------------------------
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("job_name", String(500), nullable=False),
    Column("params", Text, nullable=False),
    Column("timeout", Double),
    Column("status", Integer, nullable=False),
    Column("result", Text),
    Column("retry_count", Integer, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    workspace_column(),
    Column("status_details", JSON),
    Column("creator", String(255)),
    Column("executor_backend", String(255)),
    Column("lease_expires_at", BigInteger),
    Column("status_message", Text),
    Column("progress", JSON),
    Column("progress_updated_at", BigInteger),
    Column("token_hash", String(64)),
    Column("scoped_permissions", JSON),
    Column("next_attempt_at", BigInteger),
    PrimaryKeyConstraint("id", name="jobs_pk"),
    Index(
        "index_jobs_name_status_creation_time", "job_name", "workspace", "status", "creation_time"
    ),
    Index("index_jobs_status_lease_expires_at", "status", "lease_expires_at"),
)

job_locks = Table(
    "job_locks",
    metadata,
    Column("lock_key", String(255), nullable=False),
    Column("job_id", String(36), nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("lock_key", name="job_locks_pk"),
    _fk("job_locks", ["job_id"], "jobs", ["id"], ondelete="CASCADE"),
    Index("index_job_locks_job_id", "job_id"),
)

scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("lease_key", String(255), nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("ttl_seconds", Integer, nullable=False),
    PrimaryKeyConstraint("lease_key", name="scheduler_leases_pk"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", String(256), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", String(1000)),
    Column("url", String(500), nullable=False),
    Column("status", String(20), nullable=False, server_default="ACTIVE"),
    Column("secret", String(1000)),
    Column("creation_timestamp", BigInteger),
    Column("last_updated_timestamp", BigInteger),
    Column("deleted_timestamp", BigInteger),
    workspace_column(),
    PrimaryKeyConstraint("webhook_id", name="webhook_pk"),
    Index("idx_webhooks_name", "name"),
    Index("idx_webhooks_status", "status"),
    Index("idx_webhooks_workspace", "workspace"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("webhook_id", String(256), nullable=False),
    Column("entity", String(50), nullable=False),
    Column("action", String(50), nullable=False),
    PrimaryKeyConstraint("webhook_id", "entity", "action", name="webhook_event_pk"),
    ForeignKeyConstraint(["webhook_id"], ["webhooks.webhook_id"], ondelete="cascade"),
    Index("idx_webhook_events_entity", "entity"),
    Index("idx_webhook_events_action", "action"),
    Index("idx_webhook_events_entity_action", "entity", "action"),
)

# --- the AI gateway: secrets, model definitions, endpoints, guardrails, budgets ----------------
secrets = Table(
    "secrets",
    metadata,
    Column("secret_id", String(36), nullable=False),
    Column("secret_name", String(255), nullable=False),
    Column("encrypted_value", LargeBinary, nullable=False),
    Column("wrapped_dek", LargeBinary, nullable=False),
    Column("kek_version", Integer, nullable=False),
    Column("masked_value", String(500), nullable=False),
    Column("provider", String(64)),
    Column("auth_config", Text),
    Column("description", Text),
    *_audit_columns(),
    workspace_column(),
    PrimaryKeyConstraint("secret_id", name="secrets_pk"),
    UniqueConstraint("workspace", "secret_name", name="uq_secrets_workspace_secret_name"),
    Index("idx_secrets_workspace", "workspace"),
)
# MLflow encrypts a secret with its id and name as associated data: they never change.
_IMMUTABLE = "secret_id and secret_name are immutable (used as AAD in encryption)"
_CHANGED = "OLD.secret_id != NEW.secret_id OR OLD.secret_name != NEW.secret_name"
event.listen(
    secrets,
    "after_create",
    DDL(
        "CREATE TRIGGER prevent_secrets_aad_mutation\nBEFORE UPDATE ON secrets\nFOR EACH ROW\n"
        f"WHEN {_CHANGED}\nBEGIN\n    SELECT RAISE(ABORT, '{_IMMUTABLE}');\nEND;"
    ).execute_if(dialect="sqlite"),
)
event.listen(
    secrets,
    "after_create",
    DDL(
        "CREATE FUNCTION prevent_secrets_aad_mutation() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n    IF {_CHANGED} THEN\n        RAISE EXCEPTION '{_IMMUTABLE}';\n    END IF;\n"
        "    RETURN NEW;\nEND;\n$$;\n"
        "CREATE TRIGGER prevent_secrets_aad_mutation BEFORE UPDATE ON secrets FOR EACH ROW "
        "EXECUTE FUNCTION prevent_secrets_aad_mutation();"
    ).execute_if(dialect="postgresql"),
)

model_definitions = Table(
    "model_definitions",
    metadata,
    Column("model_definition_id", String(36), nullable=False),
    Column("name", String(255), nullable=False),
    Column("secret_id", String(36)),
    Column("provider", String(64), nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("created_by", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_updated_by", String(255)),
    Column("last_updated_at", BigInteger, nullable=False),
    workspace_column(),
    PrimaryKeyConstraint("model_definition_id", name="model_definitions_pk"),
    _fk("model_definitions", ["secret_id"], "secrets", ["secret_id"], ondelete="SET NULL"),
    UniqueConstraint("workspace", "name", name="uq_model_definitions_workspace_name"),
    Index("index_model_definitions_secret_id", "secret_id"),
    Index("index_model_definitions_provider", "provider"),
    Index("idx_model_definitions_workspace", "workspace"),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("endpoint_id", String(36), nullable=False),
    Column("name", String(255)),
    Column("created_by", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_updated_by", String(255)),
    Column("last_updated_at", BigInteger, nullable=False),
    Column("routing_strategy", String(64)),
    Column("fallback_config_json", Text),
    Column("experiment_id", Integer),
    Column("usage_tracking", Boolean, nullable=False, server_default="0"),
    workspace_column(),
    PrimaryKeyConstraint("endpoint_id", name="endpoints_pk"),
    _experiment_fk("endpoints", ondelete="SET NULL"),
    UniqueConstraint("workspace", "name", name="uq_endpoints_workspace_name"),
    Index("idx_endpoints_workspace", "workspace"),
)


def _endpoint_fk(table: str) -> ForeignKeyConstraint:
    return _fk(table, ["endpoint_id"], "endpoints", ["endpoint_id"], ondelete="CASCADE")


endpoint_tags = Table(
    "endpoint_tags",
    metadata,
    Column("key", String(250), nullable=False),
    Column("value", String(5000)),
    Column("endpoint_id", String(36), nullable=False),
    PrimaryKeyConstraint("key", "endpoint_id", name="endpoint_tag_pk"),
    _endpoint_fk("endpoint_tags"),
    Index("index_endpoint_tags_endpoint_id", "endpoint_id"),
)

endpoint_bindings = Table(
    "endpoint_bindings",
    metadata,
    Column("endpoint_id", String(36), nullable=False),
    Column("resource_type", String(50), nullable=False),
    Column("resource_id", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(255)),
    Column("last_updated_at", BigInteger, nullable=False),
    Column("last_updated_by", String(255)),
    Column("display_name", String(255)),
    PrimaryKeyConstraint(
        "endpoint_id", "resource_type", "resource_id", name="endpoint_bindings_pk"
    ),
    _endpoint_fk("endpoint_bindings"),
)

endpoint_model_mappings = Table(
    "endpoint_model_mappings",
    metadata,
    Column("mapping_id", String(36), nullable=False),
    Column("endpoint_id", String(36), nullable=False),
    Column("model_definition_id", String(36), nullable=False),
    Column("weight", Double, nullable=False),
    Column("created_by", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("linkage_type", String(64), nullable=False, server_default="PRIMARY"),
    Column("fallback_order", Integer),
    PrimaryKeyConstraint("mapping_id", name="endpoint_model_mappings_pk"),
    _endpoint_fk("endpoint_model_mappings"),
    _fk(
        "endpoint_model_mappings",
        ["model_definition_id"],
        "model_definitions",
        ["model_definition_id"],
    ),
    Index("index_endpoint_model_mappings_endpoint_id", "endpoint_id"),
    Index("index_endpoint_model_mappings_model_definition_id", "model_definition_id"),
    Index(
        "unique_endpoint_model_linkage_mapping",
        "endpoint_id",
        "model_definition_id",
        "linkage_type",
        unique=True,
    ),
)

guardrails = Table(
    "guardrails",
    metadata,
    Column("guardrail_id", String(36), nullable=False),
    Column("name", String(255), nullable=False),
    Column("scorer_id", String(36), nullable=False),
    Column("scorer_version", Integer, nullable=False),
    Column("stage", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("action_endpoint_id", String(36)),
    *_audit_columns(),
    workspace_column(),
    PrimaryKeyConstraint("guardrail_id", name="guardrails_pk"),
    _fk(
        "guardrails",
        ["scorer_id", "scorer_version"],
        "scorer_versions",
        ["scorer_id", "scorer_version"],
        name="fk_guardrails_scorer_version",
    ),
    _fk("guardrails", ["action_endpoint_id"], "endpoints", ["endpoint_id"], ondelete="SET NULL"),
    Index("idx_guardrails_workspace", "workspace"),
    Index("idx_guardrails_scorer", "scorer_id", "scorer_version"),
)

guardrail_configs = Table(
    "guardrail_configs",
    metadata,
    Column("endpoint_id", String(36), nullable=False),
    Column("guardrail_id", String(36), nullable=False),
    Column("execution_order", Integer),
    Column("created_by", String(255)),
    Column("created_at", BigInteger, nullable=False),
    workspace_column(),
    PrimaryKeyConstraint("endpoint_id", "guardrail_id", name="guardrail_configs_pk"),
    _endpoint_fk("guardrail_configs"),
    _fk("guardrail_configs", ["guardrail_id"], "guardrails", ["guardrail_id"], ondelete="CASCADE"),
    Index("idx_guardrail_configs_endpoint_id", "endpoint_id"),
    Index("idx_guardrail_configs_guardrail_id", "guardrail_id"),
)

budget_policies = Table(
    "budget_policies",
    metadata,
    Column("budget_policy_id", String(36), nullable=False),
    Column("budget_unit", String(32), nullable=False),
    Column("budget_amount", Double, nullable=False),
    Column("duration_unit", String(32), nullable=False),
    Column("duration_value", Integer, nullable=False),
    Column("target_scope", String(32), nullable=False),
    Column("budget_action", String(32), nullable=False),
    *_audit_columns(),
    workspace_column(),
    Column("target_value", String(255)),
    PrimaryKeyConstraint("budget_policy_id", name="budget_policies_pk"),
    Index("idx_budget_policies_workspace", "workspace"),
    Index("idx_budget_policies_target_value", "target_value"),
)

# --- MCP servers -------------------------------------------------------------------------------
mcp_servers = Table(
    "mcp_servers",
    metadata,
    workspace_column(),
    Column("name", String(256), nullable=False),
    Column("display_name", String(256)),
    Column("description", Text),
    Column("icons", JSON),
    Column("created_by", String(256)),
    Column("last_updated_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("workspace", "name", name="mcp_servers_pk"),
)


def _server_fk(table: str, columns: list[str], target: str = "mcp_servers") -> ForeignKeyConstraint:
    suffix = "version_fkey" if target == "mcp_server_versions" else "server_fkey"
    return _fk(
        table,
        columns,
        target,
        ["workspace", "name", "version"][: len(columns)],
        name=f"{table}_{suffix}",
        ondelete="CASCADE",
        onupdate="CASCADE",
    )


mcp_server_versions = Table(
    "mcp_server_versions",
    metadata,
    workspace_column(),
    Column("name", String(256), nullable=False),
    Column("version", String(128), nullable=False),
    Column("version_major", Integer, nullable=False),
    Column("version_minor", Integer, nullable=False),
    Column("version_patch", Integer, nullable=False),
    Column("version_prerelease_sort_key", String(512), nullable=False),
    Column("server_json", JSON, nullable=False),
    Column("status", String(20), nullable=False, server_default="draft"),
    Column("tools", JSON),
    Column("source", String(512)),
    Column("connect_options", JSON),
    Column("created_by", String(256)),
    Column("last_updated_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("workspace", "name", "version", name="mcp_server_versions_pk"),
    _server_fk("mcp_server_versions", ["workspace", "name"]),
)
Index(
    "idx_mcp_server_versions_latest",
    mcp_server_versions.c.workspace,
    mcp_server_versions.c.name,
    mcp_server_versions.c.status,
    mcp_server_versions.c.version_major.desc(),
    mcp_server_versions.c.version_minor.desc(),
    mcp_server_versions.c.version_patch.desc(),
)

mcp_server_aliases = Table(
    "mcp_server_aliases",
    metadata,
    workspace_column(),
    Column("name", String(256), nullable=False),
    Column("alias", String(256), nullable=False),
    Column("version", String(128), nullable=False),
    PrimaryKeyConstraint("workspace", "name", "alias", name="mcp_server_aliases_pk"),
    _server_fk("mcp_server_aliases", ["workspace", "name"]),
)

mcp_server_tags = Table(
    "mcp_server_tags",
    metadata,
    workspace_column(),
    Column("name", String(256), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", String(5000)),
    PrimaryKeyConstraint("workspace", "name", "key", name="mcp_server_tags_pk"),
    _server_fk("mcp_server_tags", ["workspace", "name"]),
)

mcp_server_version_tags = Table(
    "mcp_server_version_tags",
    metadata,
    workspace_column(),
    Column("name", String(256), nullable=False),
    Column("version", String(128), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", String(5000)),
    PrimaryKeyConstraint("workspace", "name", "version", "key", name="mcp_server_version_tags_pk"),
    _server_fk("mcp_server_version_tags", ["workspace", "name", "version"], "mcp_server_versions"),
)

mcp_access_endpoints = Table(
    "mcp_access_endpoints",
    metadata,
    Column("id", String(36), nullable=False),
    workspace_column(),
    Column("server_name", String(256), nullable=False),
    Column("server_version", String(128)),
    Column("server_alias", String(256)),
    Column("url", String(2048), nullable=False),
    Column("transport_type", String(32), nullable=False, server_default="streamable-http"),
    Column("created_by", String(256)),
    Column("last_updated_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("id", name="mcp_access_endpoints_pk"),
    ForeignKeyConstraint(
        ["workspace", "server_name"],
        ["mcp_servers.workspace", "mcp_servers.name"],
        name="mcp_access_endpoints_server_fkey",
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
    Index("ix_mcp_access_endpoints_server_name", "workspace", "server_name"),
    Index("ix_mcp_access_endpoints_version", "workspace", "server_name", "server_version"),
    Index("ix_mcp_access_endpoints_alias", "workspace", "server_name", "server_alias"),
)
