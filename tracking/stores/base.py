"""The interface every tracking store (file, sql, rest) implements."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from tracking import search, system_tags
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
    RunTag,
    ViewType,
)
from tracking.errors import (
    BAD_REQUEST,
    InvalidParameterError,
    NotFoundError,
    RegistryUnavailableError,
    TrackingError,
)
from tracking.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    shown,
)

if TYPE_CHECKING:
    from tracking.registry.base import RegistryStore

T = TypeVar("T")

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
#: The largest offset a page token may carry (SQL's OFFSET is a 64-bit integer).
MAX_OFFSET = 2**63 - 1 - SEARCH_MAX_RESULTS_THRESHOLD


class PagedList(list, Generic[T]):
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


def latest_order(step: int, timestamp: int, value: float) -> tuple[int, int, float]:
    """A metric point's rank in MLflow's notion of "latest": highest step, then timestamp,
    then value (NaN lowest)."""
    return (step, timestamp, -math.inf if math.isnan(value) else value)


def metric_order(metric: Metric) -> tuple[int, int, float]:
    """`latest_order` of a Metric."""
    return latest_order(metric.step, metric.timestamp, metric.value)


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


#: The filter of runs without a parent run (top-level runs).
TOP_LEVEL_FILTER = search.format_filter(
    [search.Comparison(search.TAG, system_tags.PARENT_RUN_ID, "IS NULL", None)]
)
#: ExperimentRuns.page's order by run duration (end time - start time), which search_runs lacks.
DURATION_ORDER = "duration"


def duration_order(order_by: str) -> bool | None:
    """For an order_by entry "duration [ASC|DESC]" whether it is descending; None for any other."""
    words = order_by.split()
    if not words or words[0].lower() != DURATION_ORDER or len(words) > 2:
        return None
    if len(words) == 2 and words[1].upper() not in ("ASC", "DESC"):
        raise InvalidParameterError(
            f"Invalid order {order_by!r}: use 'duration ASC' or 'duration DESC'"
        )
    return len(words) == 2 and words[1].upper() == "DESC"


def run_duration(start_time: int | None, end_time: int | None) -> int | None:
    """A run's duration (ms): end time - start time, when it has both."""
    if start_time is None or end_time is None:
        return None
    return max(0, end_time - start_time)


class RunStats(NamedTuple):
    """How many runs an experiment holds and when the latest of them started (None: no runs)."""

    runs: int
    last_start_time: int | None

    @classmethod
    def of(cls, start_times: Iterable[object]) -> RunStats:
        """The stats of runs started at `start_times` (None, or damaged: not an int)."""
        starts = list(start_times)
        known = [s for s in starts if isinstance(s, int) and not isinstance(s, bool)]
        return cls(len(starts), max(known, default=None))


class TrackingStore(ABC):
    """Experiments, runs, params, metrics and tags; artifacts live elsewhere (artifacts.py).

    The abstract methods are MLflow's store API. Below them come optional capabilities with
    a generic default built on that API, which stores override with a fast path (docs/
    architecture.md lists them): code outside tracking/stores/ uses these, never a store's
    internals or its class.
    """

    #: Base URI under which new experiments get their artifact location.
    artifact_root: str
    #: What MLflow's server-info endpoint calls this kind of store ("FileStore", "SqlStore");
    #: None when MLflow has no such store.
    mlflow_store_type: str | None = None

    @classmethod
    def open_for_reading(cls, uri: str) -> TrackingStore:
        """The store at `uri` opened only to be read (a migration's source): a store that can
        read more than it can write (a SQL database at a newer MLflow schema) says so here."""
        return cls(uri)  # type: ignore[call-arg]  # every store takes its URI first

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

    def create_ended_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: list[RunTag],
        run_name: str,
        run_id: str,
        params: list[Param],
        metrics: list[Metric],
        status: str,
        end_time: int | None,
    ) -> None:
        """Create a run that is already over: its tags, params and metrics, ended `status`
        (a task run written once its body has returned). Generic: create_run, log_all,
        update_run_info; the file store builds the whole folder before it appears."""
        self.create_run(experiment_id, user_id, start_time, tags, run_name, run_id)
        self.log_all(run_id, metrics, params, [])
        self.update_run_info(run_id, status, end_time)

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

    # --- optional capabilities: generic defaults, overridden by stores with a fast path -------
    @classmethod
    def check_holds_store(cls, uri: str) -> None:
        """Raise NotFoundError unless `uri` holds a store of this kind already, creating
        nothing (tracking.stores.check_holds_store). By default `uri` is taken at its word."""
        return None

    @property
    def local_root(self) -> str | None:
        """The local folder holding the store's files (a file store's mlruns/); None for a
        database or a server."""
        return None

    @property
    def quick_writes(self) -> bool:
        """Whether a one-row write takes well under a millisecond and only ever waits for
        other such writes (SQLite), so a server may run it on its event loop."""
        return False

    def close(self) -> None:
        """Release connections and pools (the store reconnects if used again)."""
        return None

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """The runs of `run_ids` that exist, in that order; missing ones are left out."""
        runs = []
        for run_id in run_ids:
            try:
                runs.append(self.get_run(run_id))
            except NotFoundError:
                continue
        return runs

    def run_stats(
        self, experiment_ids: Sequence[str], view_type: ViewType = ViewType.ACTIVE_ONLY
    ) -> dict[str, RunStats]:
        """{experiment id: RunStats} of the runs in `view_type` (a missing experiment: 0)."""
        return {
            experiment_id: RunStats.of(
                run.info.start_time for run in all_runs(self, [experiment_id], None, view_type)
            )
            for experiment_id in experiment_ids
        }

    def experiment_runs(self, experiment_id: str) -> ExperimentRuns:
        """The active runs of one experiment, for several questions in a row (ExperimentRuns)."""
        return ExperimentRuns(self, experiment_id)

    def deleted_time(self, run_id: str) -> int | None:
        """When a deleted run was deleted (ms), if the store records it (MLflow's REST API does
        not carry it)."""
        return None

    @property
    def can_hard_delete(self) -> bool:
        """Whether hard_delete_run and hard_delete_experiment work on this store."""
        return False

    def hard_delete_run(self, run_id: str) -> bool:
        """Remove a deleted run's data for good (not its artifacts); False if the run is gone
        or not deleted (restored meanwhile)."""
        raise TrackingError(f"{type(self).__name__} cannot remove runs for good", BAD_REQUEST)

    def hard_delete_experiment(self, experiment_id: str) -> bool:
        """Remove a deleted experiment without runs for good; False if it is gone, not
        deleted, or still holds runs."""
        raise TrackingError(
            f"{type(self).__name__} cannot remove experiments for good", BAD_REQUEST
        )

    def open_registry(self) -> RegistryStore:
        """A model registry store over the registry kept with this store's data."""
        raise RegistryUnavailableError(f"{type(self).__name__} keeps no model registry")


class ExperimentRuns:
    """The active runs of one experiment, for a caller asking several questions about them in
    a row (one UI page: how many, one page of them, the runs nested below those).

    This class answers through the store's search API. Stores return a subclass answering
    from one pass over their data (TrackingStore.experiment_runs).
    """

    def __init__(self, store: TrackingStore, experiment_id: str) -> None:
        self.store = store
        self.experiment_id = experiment_id

    def stats(self) -> RunStats:
        return self.store.run_stats([self.experiment_id])[self.experiment_id]

    def page(
        self, filter_string: str, order_by: str, offset: int, size: int, top_level_only: bool
    ) -> tuple[list[Run], bool]:
        """Runs `offset`.. `offset + size` of those matching `filter_string` (only runs
        without a parent if `top_level_only`), ordered by `order_by` (one search_runs order_by
        entry, or "duration ASC|DESC"), then newest first, then by run id; and whether more
        runs follow."""
        if top_level_only:
            filter_string = " AND ".join(f for f in (filter_string, TOP_LEVEL_FILTER) if f)
        descending = duration_order(order_by)
        if descending is not None:
            found = all_runs(self.store, [self.experiment_id], filter_string)
            runs = sorted_by_duration(list(found), descending)
            return runs[offset : offset + size], len(runs) > offset + size
        page = self.store.search_runs(
            [self.experiment_id],
            filter_string,
            ViewType.ACTIVE_ONLY,
            size,
            [order_by],
            encode_page_token(offset) if offset else None,
        )
        return list(page), page.token is not None

    def descendants(
        self, run_ids: Sequence[str], max_depth: int, limit: int
    ) -> tuple[list[Run], bool]:
        """The active runs nested below `run_ids` (by mlflow.parentRunId), down to
        `max_depth` levels: each level by start time then run id, each run once, at most
        `limit` runs (at most MAX_IN_VALUES); and whether some were left out."""
        found: list[Run] = []
        seen = set(run_ids)
        level = list(dict.fromkeys(run_ids))
        for _depth in range(max_depth):
            if not level:
                break
            room = limit - len(found)
            page = self.store.search_runs(
                [self.experiment_id],
                search.format_filter(
                    [search.Comparison(search.TAG, system_tags.PARENT_RUN_ID, "IN", tuple(level))]
                ),
                ViewType.ACTIVE_ONLY,
                max(room, 1),
                ["attributes.start_time ASC"],
            )
            new = [run for run in page if run.info.run_id not in seen]  # not a parent cycle
            if room <= 0:
                return found, bool(new)
            found += new
            if page.token:
                return found, True
            level = [run.info.run_id for run in new]
            seen.update(level)
        return found, False


def walk_descendants(
    run_ids: Sequence[str],
    children: Mapping[str, Sequence[tuple[Any, ...]]],
    max_depth: int,
    limit: int,
) -> tuple[list[str], bool]:
    """ExperimentRuns.descendants over a map {parent id: [(sort key..., child id)]} of the
    experiment's active runs: the ids, each level by its tuples' order, each run once, at
    most `limit`; and whether some were left out."""
    found: list[str] = []
    seen = set(run_ids)
    level = list(dict.fromkeys(run_ids))
    for _depth in range(max_depth):
        new = sorted(link for parent in level for link in children.get(parent, ()))
        new = [link for link in new if link[-1] not in seen]  # not a parent cycle
        if not new:
            break
        room = limit - len(found)
        found += [link[-1] for link in new[:room]]
        if len(new) > room:
            return found, True
        level = [link[-1] for link in new]
        seen.update(level)
    return found, False


def all_runs(
    store: TrackingStore,
    experiment_ids: list[str],
    filter_string: str | None = None,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
) -> Iterator[Run]:
    """Every run matching a search, fetched in the largest pages search_runs allows."""
    return all_pages(
        lambda token: store.search_runs(
            experiment_ids, filter_string, view_type, SEARCH_MAX_RESULTS_THRESHOLD, None, token
        )
    )


def sorted_by_duration(runs: list[Run], descending: bool) -> list[Run]:
    """`runs` by duration (stable: equal ones keep their order), runs without one last."""
    durations = {r.info.run_id: run_duration(r.info.start_time, r.info.end_time) for r in runs}
    present = [r for r in runs if durations[r.info.run_id] is not None]
    present.sort(key=lambda r: durations[r.info.run_id] or 0, reverse=descending)
    return present + [r for r in runs if durations[r.info.run_id] is None]
