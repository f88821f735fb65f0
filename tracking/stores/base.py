"""The interface every tracking store (file, sql, rest) implements."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from tracking.entities import (
    DatasetInput,
    DatasetSummary,
    Experiment,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from tracking.errors import InvalidParameterError
from tracking.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    shown,
)

T = TypeVar("T")

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
#: The largest offset a page token may carry (SQL's OFFSET is a 64-bit integer).
MAX_OFFSET = 2**63 - 1 - SEARCH_MAX_RESULTS_THRESHOLD


class PagedList(list, Generic[T]):  # type: ignore[type-arg]
    """A page of results; `token` fetches the next page (None on the last one)."""

    def __init__(self, items: Iterable[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token


def encode_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """Offset carried by a page token; raise a clear error on a malformed one."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token.encode(), validate=True))["offset"]
    except Exception:
        raise InvalidParameterError(f"Invalid page token {shown(token)}") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidParameterError(
            f"Invalid page token {shown(token)}: its offset must be an integer in 0..{MAX_OFFSET}"
        )
    return offset


def metric_order(metric: Metric) -> tuple[int, int, float]:
    """MLflow's notion of "latest": highest step, then timestamp, then value (NaN lowest)."""
    return (metric.step, metric.timestamp, -math.inf if math.isnan(metric.value) else metric.value)


def check_max_results(max_results: int) -> int:
    if not isinstance(max_results, int) or not 0 < max_results <= SEARCH_MAX_RESULTS_THRESHOLD:
        raise InvalidParameterError(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied: it must be "
            f"an integer in 1..{SEARCH_MAX_RESULTS_THRESHOLD}"
        )
    return max_results


def page_of(items: Sequence[T], limit: int, page_token: str | None) -> PagedList[T]:
    """Cut one page of `limit` items out of an already filtered and ordered sequence."""
    start = decode_page_token(page_token)
    end = start + limit
    return PagedList(items[start:end], encode_page_token(end) if end < len(items) else None)


def new_run_info(
    run_id: str,
    experiment_id: str,
    run_name: str,
    user_id: str,
    start_time: int,
    artifact_location: str,
) -> RunInfo:
    """A just-created run: RUNNING, artifacts at `<experiment artifact location>/<id>/artifacts`
    (MLflow's layout; every store follows it, so a run can be planned before it is written)."""
    return RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        run_name=run_name,
        user_id=user_id,
        status=RunStatus.RUNNING.name,
        start_time=start_time,
        end_time=None,
        artifact_uri=f"{artifact_location}/{run_id}/artifacts",
    )


def batches(
    metrics: Iterable[Metric], params: list[Param], tags: list[RunTag]
) -> Iterator[tuple[list[Metric], list[Param], list[RunTag]]]:
    """Split values into log_batch calls within MLflow's limits; params and tags go first."""
    points = iter(metrics)
    while True:
        chunk_p, params = params[:MAX_PARAMS_TAGS_PER_BATCH], params[MAX_PARAMS_TAGS_PER_BATCH:]
        chunk_t, tags = tags[:MAX_PARAMS_TAGS_PER_BATCH], tags[MAX_PARAMS_TAGS_PER_BATCH:]
        room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(chunk_p) - len(chunk_t))
        chunk_m = list(itertools.islice(points, room))
        if not (chunk_m or chunk_p or chunk_t):
            return
        yield chunk_m, chunk_p, chunk_t


def all_pages(fetch: Callable[[str | None], PagedList[T]]) -> Iterator[T]:
    """Every item of a paged search: `fetch(page_token)` returns one page."""
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


def paginate(items: Sequence[T], max_results: int, page_token: str | None) -> PagedList[T]:
    """page_of, after checking max_results against the search limits."""
    return page_of(items, check_max_results(max_results), page_token)


class TrackingStore(ABC):
    """Experiments, runs, params, metrics and tags; artifacts live elsewhere (artifacts.py)."""

    #: Base URI under which new experiments get their artifact location.
    artifact_root: str

    @property
    def keeps_requested_run_ids(self) -> bool:
        """Whether create_run(run_id=...) is known to create the run under that very id, so a
        run's id and artifact URI can be planned before it is written (tracking.write_behind)."""
        return True

    # --- experiments -------------------------------------------------------------------------
    @abstractmethod
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id; raise AlreadyExistsError if the name exists."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]: ...

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, tag: RunTag) -> None: ...

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called `name`, created if missing; safe when many callers race."""
        from tracking.errors import AlreadyExistsError

        experiment = self.get_experiment_by_name(name)
        if experiment is None:
            with contextlib.suppress(AlreadyExistsError):
                self.create_experiment(name)
            experiment = self.get_experiment_by_name(name)
            assert experiment is not None
        return experiment

    # --- runs --------------------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: list[RunTag],
        run_name: str,
        run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run; `run_id` lets callers (Prefect) choose the id."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run_info(
        self,
        run_id: str,
        run_status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    @abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    @abstractmethod
    def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag]
    ) -> None:
        """Write many values at once; validated as a whole before anything is written."""

    def log_all(
        self, run_id: str, metrics: Iterable[Metric], params: list[Param], tags: list[RunTag]
    ) -> None:
        """log_batch in as many calls as MLflow's per-request limits need."""
        for chunk in batches(metrics, params, tags):
            self.log_batch(run_id, *chunk)

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, [metric], [], [])

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, [], [param], [])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self.log_batch(run_id, [], [], [tag])

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    def get_latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, Metric]]:
        """Each run's latest point (value, timestamp, step) per metric key."""
        found: dict[str, dict[str, Metric]] = {}
        for run_id in run_ids:
            keys = self.get_run(run_id).data.metrics
            histories = {key: self.get_metric_history(run_id, key) for key in keys}
            found[run_id] = {k: max(h, key=metric_order) for k, h in histories.items() if h}
        return found

    def last_write_time(self, run_id: str) -> int:
        """When the run was last written, as far as the store knows (ms): its latest metric
        point or its start."""
        run = self.get_run(run_id)
        latest = self.get_latest_metrics([run_id]).get(run_id, {})
        return max([run.info.start_time or 0, *(m.timestamp for m in latest.values())])

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]: ...

    # --- metric histories of many runs (charts) ----------------------------------------------
    def get_metric_history_bulk(
        self, run_ids: list[str], key: str, max_results: int
    ) -> list[Metric]:
        """Every point of metric `key` in each run (`run_id` set on each), runs in id order,
        at most `max_results` points in all."""
        from tracking import metric_history

        return metric_history.bulk(
            run_ids, lambda run_id: self.get_metric_history(run_id, key), max_results
        )

    def get_metric_history_bulk_interval(
        self,
        run_ids: list[str],
        key: str,
        max_results: int,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> list[Metric]:
        """Metric `key` of each run sampled at about `max_results` steps of [start, end] (both
        or neither given), as MLflow's charts ask for it; `run_id` is set on each point."""
        from tracking import metric_history

        return metric_history.bulk_interval(
            run_ids,
            lambda run_id: self.get_metric_history(run_id, key),
            max_results,
            start_step,
            end_step,
        )

    # --- dataset inputs and model outputs (MLflow 3) -----------------------------------------
    @abstractmethod
    def log_inputs(
        self, run_id: str, datasets: list[DatasetInput], models: list[str] | None = None
    ) -> None:
        """Record datasets (and LoggedModels, by id) a run used; a dataset already recorded
        for the run (same name and digest) is kept as it is."""

    @abstractmethod
    def log_outputs(self, run_id: str, models: list[LoggedModelOutput]) -> None:
        """Record LoggedModels a run produced."""

    @abstractmethod
    def search_datasets(self, experiment_ids: list[str]) -> list[DatasetSummary]:
        """The (dataset, context) pairs the runs of these experiments used."""

    # --- logged models (MLflow 3) ------------------------------------------------------------
    @abstractmethod
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """A new PENDING model in an active experiment; a random name when none is given."""

    @abstractmethod
    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel: ...

    @abstractmethod
    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel: ...

    @abstractmethod
    def delete_logged_model(self, model_id: str) -> None:
        """Mark the model deleted (its files stay until `trackflow gc`)."""

    @abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None: ...

    @abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    @abstractmethod
    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None: ...

    @abstractmethod
    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, str]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, object]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Active models of the experiments: MLflow's filter grammar on attributes (name,
        model_id, status, source_run_id, creation_timestamp, ...), metrics.*, params.* and
        tags.*; `datasets` ({"dataset_name", "dataset_digest"}) narrows metric comparisons;
        `order_by` entries are {"field_name", "ascending", "dataset_name", "dataset_digest"}.
        Newest first by default."""
