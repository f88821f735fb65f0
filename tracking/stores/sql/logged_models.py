"""The SQL store's MLflow 3 parts: LoggedModels, dataset inputs and model outputs, in MLflow's
tables (datasets, inputs, input_tags, logged_models, logged_model_metrics/params/tags)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tracking import logged_models, validation
from tracking.config import redact_uri
from tracking.entities import (
    DatasetInput,
    DatasetSummary,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Run,
    RunInputs,
    RunOutputs,
    now_ms,
)
from tracking.errors import InvalidParameterError, InvalidStateError, NotFoundError
from tracking.stores.base import PagedList
from tracking.stores.sql import schema

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from tracking.stores.sql.shape import SchemaShape

    T = TypeVar("T")

#: MLflow's vertex types in the `inputs` table.
DATASET, RUN = "DATASET", "RUN"
RUN_INPUT, MODEL_INPUT = "RUN_INPUT", "MODEL_INPUT"
RUN_OUTPUT, MODEL_OUTPUT = "RUN_OUTPUT", "MODEL_OUTPUT"


def _not_found(model_id: str) -> NotFoundError:
    return NotFoundError(f"Logged model with ID {validation.shown(model_id)} not found.")


class LoggedModelTables:
    """LoggedModels, dataset inputs and model outputs for `SqlStore` (a mixin).

    A database MLflow 2 made has no LoggedModel tables (and `inputs` no `step`): its runs are
    read without model inputs and outputs, searches find no models, and writing one is refused
    with what to do."""

    if TYPE_CHECKING:  # what SqlStore provides
        uri: str
        is_sqlite: bool
        shape: SchemaShape

        def connection(self) -> AbstractContextManager[Connection]: ...
        def transaction(self, work: Callable[[Connection], T]) -> T: ...
        def get_experiment(self, experiment_id: str) -> Experiment: ...
        def _check_active(self, conn: Connection, run_id: str) -> None: ...
        @staticmethod
        def _experiment_key(experiment_id: str) -> int: ...

    def _has_logged_models(self) -> bool:
        return self.shape.has("logged_models")

    def _require_logged_models(self) -> None:
        if not self._has_logged_models():
            raise InvalidStateError(
                f"The database of {redact_uri(self.uri)} is at an MLflow 2 schema, which has no "
                "logged_models table: upgrade it with `mlflow db upgrade <uri>` to keep MLflow 3 "
                "LoggedModels in it"
            )

    def _upsert(self, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> Any:
        """INSERT ... ON CONFLICT (keys) DO UPDATE of the other columns (DO NOTHING if none)."""
        dialect_insert = sqlite_insert if self.is_sqlite else postgres_insert
        statement = dialect_insert(table).values(rows)
        others = {c.name: statement.excluded[c.name] for c in table.c if c.name not in keys}
        if not others:
            return statement.on_conflict_do_nothing(index_elements=keys)
        return statement.on_conflict_do_update(index_elements=keys, set_=others)

    # --- logged models ------------------------------------------------------------------------
    def _model_row(self, conn: Connection, model_id: str, allow_deleted: bool) -> Any:
        if (
            not isinstance(model_id, str)
            or not validation.is_text(model_id)
            or not self._has_logged_models()
        ):
            raise _not_found(model_id)
        m = schema.logged_models
        row = conn.execute(select(m).where(m.c.model_id == model_id)).first()
        if row is None or (not allow_deleted and row.lifecycle_stage == LifecycleStage.DELETED):
            raise _not_found(model_id)
        return row

    def _models_from_rows(self, conn: Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        ids = [row.model_id for row in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        points: dict[str, list[Metric]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            t, p, mm = (
                schema.logged_model_tags,
                schema.logged_model_params,
                schema.logged_model_metrics,
            )
            for row in conn.execute(select(t).where(t.c.model_id.in_(chunk))):
                tags[row.model_id][row.tag_key] = row.tag_value
            for row in conn.execute(select(p).where(p.c.model_id.in_(chunk))):
                params[row.model_id][row.param_key] = row.param_value
            for row in conn.execute(select(mm).where(mm.c.model_id.in_(chunk))):
                value = math.nan if row.metric_value is None else row.metric_value
                points[row.model_id].append(
                    Metric(
                        row.metric_name,
                        value,
                        row.metric_timestamp_ms,
                        row.metric_step,
                        model_id=row.model_id,
                        dataset_name=row.dataset_name,
                        dataset_digest=row.dataset_digest,
                        run_id=row.run_id,
                    )
                )
        return [
            LoggedModel(
                experiment_id=str(row.experiment_id),
                model_id=row.model_id,
                name=row.name,
                artifact_location=row.artifact_location,
                creation_timestamp=row.creation_timestamp_ms,
                last_updated_timestamp=row.last_updated_timestamp_ms,
                model_type=row.model_type,
                source_run_id=row.source_run_id,
                status=LoggedModelStatus.parse(row.status),
                status_message=row.status_message,
                tags=tags[row.model_id],
                params=params[row.model_id],
                metrics=logged_models.latest_points(points[row.model_id]),
                lifecycle_stage=row.lifecycle_stage or LifecycleStage.ACTIVE,
            )
            for row in rows
        ]

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        from tracking.system_tags import random_run_name

        self._require_logged_models()
        name = logged_models.model_name(name) or random_run_name()
        checked_tags = logged_models.checked_tags(tags)
        checked_params = logged_models.checked_params(params)
        experiment = self.get_experiment(str(experiment_id))
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidStateError(
                f"Could not create model under non-active experiment with ID {experiment_id}."
            )
        key = int(experiment.experiment_id)
        model_id = logged_models.new_model_id()
        now = now_ms()

        def work(conn: Connection) -> None:
            conn.execute(
                insert(schema.logged_models).values(
                    model_id=model_id,
                    experiment_id=key,
                    name=name,
                    artifact_location=logged_models.artifact_location(
                        experiment.artifact_location, model_id
                    ),
                    creation_timestamp_ms=now,
                    last_updated_timestamp_ms=now,
                    status=int(LoggedModelStatus.PENDING),
                    lifecycle_stage=LifecycleStage.ACTIVE,
                    model_type=model_type or None,
                    source_run_id=source_run_id or None,
                )
            )
            self._write_model_values(conn, model_id, key, checked_params, checked_tags)

        self.transaction(work)
        return self.get_logged_model(model_id)

    def _write_model_values(
        self,
        conn: Connection,
        model_id: str,
        experiment_id: int,
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        for table, key, value, values in (
            (schema.logged_model_params, "param_key", "param_value", params),
            (schema.logged_model_tags, "tag_key", "tag_value", tags),
        ):
            if values:
                rows = [
                    {"model_id": model_id, "experiment_id": experiment_id, key: k, value: v}
                    for k, v in values.items()
                ]
                conn.execute(self._upsert(table, rows, ["model_id", key]))

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        with self.connection() as conn:
            row = self._model_row(conn, model_id, allow_deleted)
            return self._models_from_rows(conn, [row])[0]

    def _change_model(self, model_id: str, **values: Any) -> None:
        m = schema.logged_models

        def work(conn: Connection) -> None:
            self._model_row(conn, model_id, allow_deleted=False)
            conn.execute(
                update(m)
                .where(m.c.model_id == model_id)
                .values(**values, last_updated_timestamp_ms=now_ms())
            )

        self.transaction(work)

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        try:
            checked = LoggedModelStatus.parse(status)
        except ValueError as e:
            raise InvalidParameterError(str(e)) from None
        self._change_model(model_id, status=int(checked))
        return self.get_logged_model(model_id)

    def delete_logged_model(self, model_id: str) -> None:
        self._change_model(model_id, lifecycle_stage=LifecycleStage.DELETED)

    def _set_model_values(
        self, model_id: str, params: dict[str, str], tags: dict[str, str]
    ) -> None:
        def work(conn: Connection) -> None:
            row = self._model_row(conn, model_id, allow_deleted=False)
            self._write_model_values(conn, model_id, row.experiment_id, params, tags)

        self.transaction(work)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self._set_model_values(model_id, {}, logged_models.checked_tags(tags))

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        self._set_model_values(model_id, logged_models.checked_params(params), {})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        validation.validate_key(key, "Tag key")
        t = schema.logged_model_tags

        def work(conn: Connection) -> int:
            self._model_row(conn, model_id, allow_deleted=False)
            return conn.execute(
                delete(t).where(t.c.model_id == model_id, t.c.tag_key == key)
            ).rowcount

        if not self.transaction(work):
            raise NotFoundError(f"No tag with key {key!r} found for model with ID {model_id!r}.")

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, str]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, object]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        keys = []
        for experiment_id in experiment_ids:
            try:
                keys.append(self._experiment_key(str(experiment_id)))
            except (NotFoundError, InvalidParameterError):
                continue
        m = schema.logged_models
        if not self._has_logged_models():
            keys = []
        with self.connection() as conn:
            rows = (
                []
                if not keys
                else conn.execute(
                    select(m).where(
                        m.c.experiment_id.in_(keys),
                        m.c.lifecycle_stage != LifecycleStage.DELETED,
                    )
                ).all()
            )
            models = self._models_from_rows(conn, rows)
        return logged_models.search_models(
            models, filter_string, datasets, order_by, max_results, page_token
        )

    def _write_model_metrics(
        self, conn: Connection, run_id: str, metrics: Iterable[Metric]
    ) -> None:
        """Store the points that name a LoggedModel in `logged_model_metrics` too."""
        rows = []
        for metric in metrics:
            if metric.model_id is None:
                continue
            model = self._model_row(conn, metric.model_id, allow_deleted=False)
            value = validation.metric_value(metric.key, metric.value)
            rows.append(
                {
                    "model_id": model.model_id,
                    "metric_name": metric.key,
                    "metric_timestamp_ms": validation.metric_timestamp(
                        metric.key, metric.timestamp
                    ),
                    "metric_step": validation.metric_step(metric.key, metric.step),
                    "metric_value": None if math.isnan(value) else value,
                    "experiment_id": self._run_experiment_key(conn, run_id),
                    "run_id": run_id,
                    "dataset_uuid": None,
                    "dataset_name": metric.dataset_name,
                    "dataset_digest": metric.dataset_digest,
                }
            )
        if rows:
            keys = ["model_id", "metric_name", "metric_timestamp_ms", "metric_step", "run_id"]
            conn.execute(self._upsert(schema.logged_model_metrics, rows, keys))

    def _run_experiment_key(self, conn: Connection, run_id: str) -> int:
        r = schema.runs
        return int(
            conn.execute(select(r.c.experiment_id).where(r.c.run_uuid == run_id)).scalar_one()
        )

    # --- dataset inputs and model outputs -----------------------------------------------------
    def log_inputs(
        self, run_id: str, datasets: list[DatasetInput], models: list[str] | None = None
    ) -> None:
        checked = logged_models.checked_dataset_inputs(datasets)
        validation.run_id(run_id)
        if models:
            self._require_logged_models()
        d, t = schema.datasets, schema.input_tags

        def work(conn: Connection) -> None:
            self._check_active(conn, run_id)
            experiment = self._run_experiment_key(conn, run_id)
            for item in checked:
                dataset = item.dataset
                where = and_(
                    d.c.experiment_id == experiment,
                    d.c.name == dataset.name,
                    d.c.digest == dataset.digest,
                )
                dataset_uuid = conn.execute(select(d.c.dataset_uuid).where(where)).scalar()
                if dataset_uuid is None:
                    dataset_uuid = uuid.uuid4().hex
                    conn.execute(
                        insert(d).values(
                            dataset_uuid=dataset_uuid,
                            experiment_id=experiment,
                            name=dataset.name,
                            digest=dataset.digest,
                            dataset_source_type=dataset.source_type,
                            dataset_source=dataset.source,
                            dataset_schema=dataset.schema,
                            dataset_profile=dataset.profile,
                        )
                    )
                input_uuid = self._add_edge(conn, DATASET, dataset_uuid, RUN, run_id)
                if input_uuid is not None and item.tags:
                    conn.execute(
                        insert(t),
                        [
                            {"input_uuid": input_uuid, "name": k, "value": v}
                            for k, v in item.tags.items()
                        ],
                    )
            for model_id in models or []:
                self._add_edge(conn, RUN_INPUT, run_id, MODEL_INPUT, model_id)

        self.transaction(work)

    def _add_edge(
        self,
        conn: Connection,
        source_type: str,
        source_id: str,
        destination_type: str,
        destination_id: str,
        step: int = 0,
    ) -> str | None:
        """Insert an `inputs` row unless it exists; its input_uuid, or None if it existed."""
        i = schema.inputs
        exists = conn.execute(
            select(i.c.input_uuid).where(
                i.c.source_type == source_type,
                i.c.source_id == source_id,
                i.c.destination_type == destination_type,
                i.c.destination_id == destination_id,
            )
        ).first()
        if exists is not None:
            return None
        input_uuid = uuid.uuid4().hex
        values: dict[str, Any] = {
            "input_uuid": input_uuid,
            "source_type": source_type,
            "source_id": source_id,
            "destination_type": destination_type,
            "destination_id": destination_id,
        }
        if self.shape.has("inputs", "step"):  # MLflow 3's column (edges to models)
            values["step"] = step
        conn.execute(insert(i).values(**values))
        return input_uuid

    def log_outputs(self, run_id: str, models: list[LoggedModelOutput]) -> None:
        validation.run_id(run_id)
        steps = [(o.model_id, validation.metric_step("step", o.step)) for o in models]
        if steps:
            self._require_logged_models()

        def work(conn: Connection) -> None:
            self._check_active(conn, run_id)
            for model_id, step in steps:
                self._model_row(conn, model_id, allow_deleted=True)
                self._add_edge(conn, RUN_OUTPUT, run_id, MODEL_OUTPUT, model_id, step)

        self.transaction(work)

    def _attach_inputs_outputs(self, conn: Connection, runs: list[Run]) -> None:
        """Fill each run's `inputs` and `outputs` (three queries for all of them)."""
        if not runs:
            return
        by_id = {run.info.run_id: run for run in runs}
        for run in runs:
            run.inputs, run.outputs = RunInputs(), RunOutputs()
        ids = list(by_id)
        d, i, t = schema.datasets, schema.inputs, schema.input_tags
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                select(i.c.input_uuid, i.c.destination_id, d)
                .join(d, d.c.dataset_uuid == i.c.source_id)
                .where(
                    i.c.source_type == DATASET,
                    i.c.destination_type == RUN,
                    i.c.destination_id.in_(chunk),
                )
            ).all()
            tags: dict[str, dict[str, str]] = {}
            uuids = [row.input_uuid for row in rows]
            if uuids:
                for tag in conn.execute(select(t).where(t.c.input_uuid.in_(uuids))):
                    tags.setdefault(tag.input_uuid, {})[tag.name] = tag.value
            for row in rows:
                dataset = logged_models.dataset_from_dict(
                    {
                        "name": row.name,
                        "digest": row.digest,
                        "source_type": row.dataset_source_type,
                        "source": row.dataset_source,
                        "schema": row.dataset_schema,
                        "profile": row.dataset_profile,
                    }
                )
                item = DatasetInput(dataset, tags.get(row.input_uuid, {}))
                by_id[row.destination_id].inputs.dataset_inputs.append(item)
            if not self._has_logged_models():
                continue
            edges = conn.execute(
                select(i).where(
                    i.c.source_type.in_((RUN_INPUT, RUN_OUTPUT)), i.c.source_id.in_(chunk)
                )
            ).all()
            for edge in edges:
                run = by_id[edge.source_id]
                if edge.source_type == RUN_INPUT:
                    run.inputs.model_inputs.append(edge.destination_id)
                else:
                    run.outputs.model_outputs.append(
                        LoggedModelOutput(edge.destination_id, edge.step)
                    )

    def search_datasets(self, experiment_ids: list[str]) -> list[DatasetSummary]:
        keys = [self._experiment_key(str(e)) for e in experiment_ids]
        d, i, t = schema.datasets, schema.inputs, schema.input_tags
        context = (
            select(t.c.value)
            .where(t.c.input_uuid == i.c.input_uuid, t.c.name == logged_models.DATASET_CONTEXT_TAG)
            .scalar_subquery()
        )
        query = (
            select(d.c.experiment_id, d.c.name, d.c.digest, context.label("context"))
            .join(i, and_(i.c.source_id == d.c.dataset_uuid, i.c.source_type == DATASET))
            .where(d.c.experiment_id.in_(keys))
            .distinct()
            .limit(1000)
        )
        with self.connection() as conn:
            rows = conn.execute(query).all()
        return [DatasetSummary(str(r.experiment_id), r.name, r.digest, r.context) for r in rows]
