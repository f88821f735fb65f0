"""The module-level API (mlflow.* names); the active run lives in a ContextVar.

A run started in one thread or asyncio task is the active run of that context only: code that
copies the context (Prefect's task runners, `contextvars.copy_context().run`, asyncio tasks
created inside it) sees it; unrelated threads and tasks do not.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from tracking import config, state, system_tags, write_behind
from tracking.client import TrackingClient
from tracking.entities import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    LoggedModel,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
    now_ms,
)
from tracking.errors import InvalidParameterError, InvalidStateError, TrackingError
from tracking.logged_models import DATASET_CONTEXT_TAG
from tracking.state import STATE
from tracking.stores.base import SEARCH_MAX_RESULTS_THRESHOLD, PagedList

EXPERIMENT_NAME_ENV = "MLFLOW_EXPERIMENT_NAME"
EXPERIMENT_ID_ENV = "MLFLOW_EXPERIMENT_ID"
RUN_ID_ENV = "MLFLOW_RUN_ID"
DEFAULT_EXPERIMENT_ID = "0"


class ActiveRun(Run):
    """A run started by start_run; as a context manager it ends the run on exit."""

    def __init__(self, run: Run) -> None:
        super().__init__(run.info, run.data)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        stack = state.active_runs.get()
        if any(r.info.run_id == self.info.run_id for r in stack):
            while state.active_runs.get():
                top = state.active_runs.get()[-1]
                end_run(status.name)
                if top.info.run_id == self.info.run_id:
                    break


def current_client() -> TrackingClient:
    """The client of the current tracking URI (cached per URI)."""
    uri = config.get_tracking_uri()
    client = STATE.clients.get(uri)
    if client is None:
        client = STATE.clients[uri] = TrackingClient(uri)
    return client


@contextlib.contextmanager
def use_run(run: Run) -> Iterator[ActiveRun]:
    """Make an existing run the active run of this context inside the block; never ends it."""
    active = ActiveRun(run)
    token = state.active_runs.set((*state.active_runs.get(), active))
    try:
        yield active
    finally:
        try:
            state.active_runs.reset(token)
        except ValueError:  # resumed in another context (generators): drop it by identity
            state.active_runs.set(tuple(r for r in state.active_runs.get() if r is not active))


# --- experiments -----------------------------------------------------------------------------
def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    """Create an experiment and return its id."""
    return current_client().create_experiment(name, artifact_location, tags)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active for new runs, creating it by name if needed."""
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterError("set_experiment needs exactly one of experiment_name or id")
    client = current_client()
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        experiment = client.synced_store().get_or_create_experiment(str(experiment_name))
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidStateError(
            f"Cannot set deleted experiment {experiment.name!r} (id {experiment.experiment_id}) "
            "as the active experiment; restore it with restore_experiment first"
        )
    STATE.active_experiment = (client.tracking_uri, experiment.experiment_id)
    return experiment


def get_experiment(experiment_id: str) -> Experiment:
    return current_client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return current_client().get_experiment_by_name(name)


def search_experiments(
    view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """All experiments matching the filter (MLflow's grammar on name, ids, times, tags)."""
    return _collect(
        lambda limit, token: current_client().search_experiments(
            view_type, limit, filter_string, order_by, token
        ),
        max_results,
    )


def delete_experiment(experiment_id: str) -> None:
    current_client().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    current_client().restore_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    current_client().set_experiment_tag(resolve_experiment_id(), key, value)


def resolve_experiment_id() -> str:
    """set_experiment's choice, else $MLFLOW_EXPERIMENT_ID / $MLFLOW_EXPERIMENT_NAME, else "0"."""
    client = current_client()
    if STATE.active_experiment is not None and STATE.active_experiment[0] == client.tracking_uri:
        return STATE.active_experiment[1]
    if os.environ.get(EXPERIMENT_ID_ENV):
        return client.get_experiment(os.environ[EXPERIMENT_ID_ENV]).experiment_id
    if os.environ.get(EXPERIMENT_NAME_ENV):
        return (
            client.synced_store()
            .get_or_create_experiment(os.environ[EXPERIMENT_NAME_ENV])
            .experiment_id
        )
    return DEFAULT_EXPERIMENT_ID


# --- runs ------------------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_environment: bool = False,
) -> ActiveRun:
    """Start (or resume, with run_id) a run and make it active in the current context.

    nested=True parents the new run to the run active in this context; parent_run_id parents
    it to any run, from any thread or process. log_environment=True records a new run's
    environment (tracking.run_environment: packages, Python, platform, git state).
    """
    stack = state.active_runs.get()
    if stack and not nested and parent_run_id is None:
        raise InvalidStateError(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a nested run, "
            "call start_run with nested=True"
        )
    client = current_client()
    run_id = run_id or os.environ.pop(RUN_ID_ENV, None)
    if run_id:
        run = _resume(client, run_id, experiment_id, tags, description)
    else:
        parent_id = parent_run_id or (stack[-1].info.run_id if nested and stack else None)
        parent = client.get_run(parent_id) if parent_id else None
        if experiment_id is None:
            experiment_id = parent.info.experiment_id if parent else resolve_experiment_id()
        all_tags = system_tags.default_tags()
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        if parent is not None:
            all_tags[system_tags.PARENT_RUN_ID] = parent.info.run_id
        if description is not None:
            all_tags[system_tags.NOTE] = description
        name = run_name or all_tags.get(system_tags.RUN_NAME) or system_tags.random_run_name()
        all_tags[system_tags.RUN_NAME] = name
        run = client.create_run(str(experiment_id), tags=all_tags, run_name=name)
        if log_environment:
            from tracking import run_environment

            run_environment.record(client, run, all_tags[system_tags.SOURCE_NAME])
    active = ActiveRun(run)
    state.active_runs.set((*stack, active))
    return active


def _resume(
    client: TrackingClient,
    run_id: str,
    experiment_id: str | None,
    tags: dict[str, Any] | None,
    description: str | None,
) -> Run:
    run = client.get_run(run_id)
    if experiment_id is not None and str(experiment_id) != run.info.experiment_id:
        raise InvalidParameterError(
            f"Run {run_id!r} belongs to experiment {run.info.experiment_id}, "
            f"not to the requested experiment {experiment_id}"
        )
    if run.info.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidStateError(f"Cannot resume deleted run {run_id!r}; restore it first")
    extra = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    if description is not None:
        extra.append(RunTag(system_tags.NOTE, description))
    if extra:
        client.log_batch(run_id, tags=extra)
    client.update_run(run_id, RunStatus.RUNNING.name)
    return client.get_run(run_id)


def end_run(status: str = "FINISHED") -> None:
    """End the active run of this context (if any) with FINISHED, FAILED or KILLED."""
    stack = state.active_runs.get()
    if not stack:
        return
    run = stack[-1]
    state.active_runs.set(stack[:-1])
    state.last_run_id.set(run.info.run_id)
    current_client().set_terminated(run.info.run_id, RunStatus.parse(status).name)


def active_run() -> ActiveRun | None:
    """The run active in the current thread / asyncio task, or None. Its folders and files
    exist by the time this returns (queued writes are performed first: tracking.write_behind)."""
    write_behind.flush()
    return peek_active_run()


def peek_active_run() -> ActiveRun | None:
    """active_run() without waiting for queued writes (for the decorators' own bookkeeping)."""
    stack = state.active_runs.get()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the run most recently ended in this context (fresh from the store)."""
    current = active_run()
    run_id = current.info.run_id if current else state.last_run_id.get()
    return current_client().get_run(run_id) if run_id else None


def current_run_id() -> str:
    """The active run's id; in the main thread a run is started when none is active (MLflow)."""
    stack = state.active_runs.get()
    if stack:
        return stack[-1].info.run_id
    if threading.current_thread() is not threading.main_thread():
        raise InvalidStateError(
            "No active run in this thread or task. Start one here with "
            "start_run(parent_run_id=...), pass run_id= explicitly, or run this code in a "
            "copy of the context that started the run (contextvars.copy_context().run)"
        )
    return start_run().info.run_id


def get_run(run_id: str) -> Run:
    return current_client().get_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    return current_client().get_parent_run(run_id)


def delete_run(run_id: str) -> None:
    current_client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    current_client().restore_run(run_id)


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
    max_results: int = 100000,
    order_by: list[str] | None = None,
    output_format: str = "list",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching the filter: a list of Runs, or a DataFrame with output_format="pandas"."""
    client = current_client()
    if experiment_names:
        found = [client.get_experiment_by_name(name) for name in experiment_names]
        experiment_ids = [e.experiment_id for e in found if e is not None]
    elif experiment_ids is None:
        if search_all_experiments:
            experiment_ids = [e.experiment_id for e in search_experiments(ViewType.ALL)]
        else:
            experiment_ids = [resolve_experiment_id()]
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
    runs = _collect(
        lambda limit, token: client.search_runs(
            ids, filter_string, run_view_type, limit, order_by, token
        ),
        max_results,
    )
    if output_format == "list":
        return runs
    if output_format == "pandas":
        return _runs_to_frame(runs)
    raise InvalidParameterError(
        f"Unsupported output_format {output_format!r}; use 'list' or 'pandas'"
    )


def _collect(
    fetch: Any, max_results: int | None, page_size: int = SEARCH_MAX_RESULTS_THRESHOLD
) -> list[Any]:
    """Follow page tokens (`fetch(limit, token)`) until max_results items (or all) are in."""
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int)
    ):
        raise InvalidParameterError(
            f"max_results must be an integer, got {max_results!r} (the filter is the "
            "filter_string= argument, as in MLflow)"
        )
    items: list[Any] = []
    token = None
    while True:
        limit = page_size if max_results is None else min(page_size, max_results - len(items))
        if limit <= 0:
            return items
        page: PagedList[Any] = fetch(limit, token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def _runs_to_frame(runs: list[Run]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("output_format='pandas' needs pandas: pip install pandas") from None

    def timestamp(ms: int | None) -> object:
        return pd.NaT if ms is None else pd.to_datetime(ms, unit="ms", utc=True)

    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "start_time": timestamp(run.info.start_time),
            "end_time": timestamp(run.info.end_time),
        }
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)


# --- logging ---------------------------------------------------------------------------------
def log_param(key: str, value: Any) -> Any:
    """Log an immutable param on the active run; returns the value."""
    return current_client().log_param(current_run_id(), key, value)


def log_params(params: dict[str, Any], run_id: str | None = None) -> None:
    current_client().log_batch(
        run_id or current_run_id(), params=[Param(k, str(v)) for k, v in params.items()]
    )


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> None:
    """Append a value to a metric's history (timestamp in ms, step defaults to 0); with
    `model_id` it is also a metric of that LoggedModel, computed on `dataset` if given."""
    ts = now_ms() if timestamp is None else timestamp
    name = digest = None
    if dataset is not None:
        from tracking.data import record_of

        record = record_of(dataset)
        name, digest = record.name, record.digest
    metric = Metric(key, value, ts, step or 0, model_id, name, digest)
    current_client().synced_store().log_metric(run_id or current_run_id(), metric)


def log_input(
    dataset: Any,
    context: str | None = None,
    tags: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Record that the active run used `dataset` (`tracking.data.from_pandas`/`from_numpy`, or
    an `mlflow.data` dataset): its name, digest, source, schema and profile, never its data.
    `context` ("training", "evaluation", ...) is kept as the input tag mlflow.data.context."""
    log_inputs([dataset], [context], [tags], run_id=run_id)


def log_inputs(
    datasets: Sequence[Any],
    contexts: Sequence[str | None] | None = None,
    tags_list: Sequence[dict[str, Any] | None] | None = None,
    run_id: str | None = None,
) -> None:
    """`log_input` for several datasets in one call (contexts and tags per dataset)."""
    contexts = list(contexts or [None] * len(datasets))
    tags_list = list(tags_list or [None] * len(datasets))
    if not len(datasets) == len(contexts) == len(tags_list):
        raise InvalidParameterError(
            f"log_inputs needs one context and one tags entry per dataset: got {len(datasets)} "
            f"datasets, {len(contexts)} contexts and {len(tags_list)} tags"
        )
    from tracking.data import record_of

    inputs = []
    for dataset, context, tags in zip(datasets, contexts, tags_list, strict=True):
        input_tags = {k: str(v) for k, v in (tags or {}).items()}
        if context is not None:
            input_tags[DATASET_CONTEXT_TAG] = context
        inputs.append(DatasetInput(record_of(dataset), input_tags))
    current_client().log_inputs(run_id or current_run_id(), inputs)


def get_logged_model(model_id: str) -> LoggedModel:
    """A LoggedModel (MLflow 3: what `mlflow.<flavor>.log_model` creates, models:/<model_id>)."""
    return current_client().get_logged_model(model_id)


def search_logged_models(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = None,
    datasets: list[dict[str, str]] | None = None,
    max_results: int | None = None,
    order_by: list[dict[str, Any]] | None = None,
    output_format: str = "list",
) -> Any:
    """LoggedModels of the experiments (default: the active one), newest first: a list, or a
    DataFrame with output_format="pandas". Filters use MLflow's grammar (name, model_id,
    status, source_run_id, creation_timestamp, metrics.*, params.*, tags.*)."""
    client = current_client()
    ids = [str(e) for e in experiment_ids] if experiment_ids else [resolve_experiment_id()]
    models = _collect(
        lambda limit, token: client.search_logged_models(
            ids, filter_string, datasets, limit, order_by, token
        ),
        max_results,
    )
    if output_format == "list":
        return models
    if output_format == "pandas":
        import pandas as pd

        return pd.DataFrame([{**vars(m), "status": m.status.name} for m in models])
    raise InvalidParameterError(
        f"Unsupported output_format {output_format!r}; use 'list' or 'pandas'"
    )


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    ts = now_ms() if timestamp is None else timestamp
    batch = [Metric(k, v, ts, step or 0) for k, v in metrics.items()]
    current_client().log_batch(run_id or current_run_id(), metrics=batch)


def set_tag(key: str, value: Any) -> None:
    current_client().set_tag(current_run_id(), key, value)


def set_tags(tags: dict[str, Any]) -> None:
    current_client().log_batch(current_run_id(), tags=[RunTag(k, str(v)) for k, v in tags.items()])


def delete_tag(key: str) -> None:
    current_client().delete_tag(current_run_id(), key)


# --- artifacts -------------------------------------------------------------------------------
def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Copy a local file into the run's artifacts (under artifact_path if given)."""
    current_client().log_artifact(run_id or current_run_id(), os.fspath(local_path), artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Copy a local folder's files into the run's artifacts, uploading concurrently."""
    current_client().log_artifacts(run_id or current_run_id(), os.fspath(local_dir), artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    current_client().log_text(run_id or current_run_id(), text, artifact_file)


def log_dict(dictionary: dict[str, Any], artifact_file: str, run_id: str | None = None) -> None:
    current_client().log_dict(run_id or current_run_id(), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str, run_id: str | None = None) -> None:
    current_client().log_figure(run_id or current_run_id(), figure, artifact_file)


def log_image(image: Any, artifact_file: str, run_id: str | None = None) -> None:
    current_client().log_image(run_id or current_run_id(), image, artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """URI of the active run's artifact root, or of a path inside it."""
    uri = current_client().get_artifact_uri(current_run_id())
    return f"{uri}/{artifact_path.lstrip('/')}" if artifact_path else uri


# --- model registry --------------------------------------------------------------------------
def register_model(
    model_uri: str, name: str, tags: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """Register the model at `model_uri` (runs:/<run_id>/<path>, models:/..., a path) as a new
    version of registered model `name`, created if missing; returns the ModelVersion."""
    return current_client().register_model(model_uri, name, tags, **kwargs)


def search_registered_models(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Any]:
    """All registered models matching the filter (e.g. "name LIKE 'iris%'")."""
    return _collect(
        lambda limit, token: current_client().search_registered_models(
            filter_string, limit, order_by, token
        ),
        max_results,
        1000,
    )


def search_model_versions(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Any]:
    """All model versions matching the filter (e.g. "name = 'iris'")."""
    return _collect(
        lambda limit, token: current_client().search_model_versions(
            filter_string, limit, order_by, token
        ),
        max_results,
        200_000,
    )


def set_registry_uri(uri: str | os.PathLike[str] | None) -> None:
    """Keep the model registry at `uri` (default: the tracking URI)."""
    from tracking import registry

    registry.set_registry_uri(uri)


def get_registry_uri() -> str:
    from tracking import registry

    return registry.get_registry_uri(config.get_tracking_uri())


def create_registered_model(
    name: str, tags: dict[str, Any] | None = None, description: str | None = None
) -> Any:
    return current_client().create_registered_model(name, tags, description)


def get_registered_model(name: str) -> Any:
    return current_client().get_registered_model(name)


def update_registered_model(name: str, description: str | None = None) -> Any:
    return current_client().update_registered_model(name, description)


def rename_registered_model(name: str, new_name: str) -> Any:
    return current_client().rename_registered_model(name, new_name)


def delete_registered_model(name: str) -> None:
    current_client().delete_registered_model(name)


def set_registered_model_tag(name: str, key: str, value: Any) -> None:
    current_client().set_registered_model_tag(name, key, value)


def delete_registered_model_tag(name: str, key: str) -> None:
    current_client().delete_registered_model_tag(name, key)


def get_model_version(name: str, version: int | str) -> Any:
    return current_client().get_model_version(name, version)


def update_model_version(name: str, version: int | str, description: str | None = None) -> Any:
    return current_client().update_model_version(name, version, description)


def delete_model_version(name: str, version: int | str) -> None:
    current_client().delete_model_version(name, version)


def set_model_version_tag(name: str, version: int | str, key: str, value: Any) -> None:
    current_client().set_model_version_tag(name, version, key, value)


def delete_model_version_tag(name: str, version: int | str, key: str) -> None:
    current_client().delete_model_version_tag(name, version, key)


def transition_model_version_stage(
    name: str, version: int | str, stage: str, archive_existing_versions: bool = False
) -> Any:
    """Move a version to None, Staging, Production or Archived."""
    return current_client().transition_model_version_stage(
        name, version, stage, archive_existing_versions
    )


def get_latest_versions(name: str, stages: list[str] | None = None) -> list[Any]:
    return current_client().get_latest_versions(name, stages)


def set_registered_model_alias(name: str, alias: str, version: int | str) -> None:
    current_client().set_registered_model_alias(name, alias, version)


def delete_registered_model_alias(name: str, alias: str) -> None:
    current_client().delete_registered_model_alias(name, alias)


def get_model_version_by_alias(name: str, alias: str) -> Any:
    return current_client().get_model_version_by_alias(name, alias)


def _end_runs_at_exit() -> None:
    """End the main context's runs at exit (MLflow does too); a failing store is not fatal."""
    try:
        while state.active_runs.get():
            end_run()
    except TrackingError as e:
        warnings.warn(f"Could not end the active run at exit: {e}", stacklevel=1)


atexit.register(_end_runs_at_exit)
