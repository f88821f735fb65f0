"""What the UI pages show, read from a store: no web framework in here.

Everything goes through the public store API: `search_runs` with the search grammar, and the
capabilities a runs table needs (`run_stats`, `experiment_runs`: counts, pages in any order,
nested runs), which each store answers from its fastest source.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracking import search, system_tags
from tracking.client import TrackingClient
from tracking.entities import Experiment, Metric, Run, ViewType
from tracking.errors import InvalidParameterError, NotFoundError
from tracking.search import quote_key, quote_string
from tracking.stores.base import (
    DURATION_ORDER,
    ExperimentRuns,
    TrackingStore,
    all_runs,
    run_duration,
)

PARENT_TAG = system_tags.PARENT_RUN_ID
NOTE_TAG = system_tags.NOTE
UI_URL_TAG = "prefect.ui_url"
TASK_RUN_ID_TAG = "prefect.task_run_id"
FLOW_RUN_ID_TAG = "prefect.flow_run_id"
SCHEDULED_TAG = "prefect.scheduled_start_time"
DEPLOYMENT_TAG = "prefect.deployment_name"

#: Tag namespaces written by the tracker itself: hidden from the runs table's default columns.
SYSTEM_TAG_PREFIXES = ("mlflow.", "prefect.", "trackflow.")
#: Nested runs shown below one page of top-level runs (a flow with more tasks shows the first).
MAX_NESTED_RUNS = 5000
MAX_TREE_DEPTH = 32
#: Nested runs linked from a run's page.
MAX_LINKED_CHILDREN = 1000
#: Metric points sent to a chart; longer histories are thinned evenly (first and last kept).
MAX_CHART_POINTS = 5000
REQUIREMENTS_ARTIFACT = "environment/requirements.txt"  # tracking.run_environment's
REQUIREMENTS_LIMIT = 2_000_000  # bytes of it read for the run page's package list

# Sortable columns: (kind, key) where kind is attr, param, metric, tag or duration.
ATTRIBUTE_COLUMNS = {
    "run_name": "Name",
    "status": "Status",
    "start_time": "Start time",
    "user_id": "User",
    "end_time": "End time",
}
DURATION = "duration"


class FilterError(InvalidParameterError):
    """A filter or sort the user typed is not valid; `position` points into `text`."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.position = position


# --------------------------------------------------------------------------- formatting


def format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat()


def duration_ms(run: Run) -> int | None:
    return run_duration(run.info.start_time, run.info.end_time)


def format_duration(ms: int | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_value(value: Any) -> str:
    """Metrics to 6 significant digits; everything else as is."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def is_system_tag(key: str) -> bool:
    return key.startswith(SYSTEM_TAG_PREFIXES)


def safe_http_url(url: str | None) -> str | None:
    """`url` if it is an http(s) URL (a tag value must never become a javascript: link)."""
    if not url:
        return None
    url = url.strip()
    if url.lower().startswith(("http://", "https://")) and not any(c in url for c in "\r\n\t "):
        return url
    return None


def check_filter(filter_string: str) -> str:
    """Parse the user's run filter; raise FilterError with the position of a syntax error."""
    filter_string = (filter_string or "").strip()
    try:
        search.parse_run_filter(filter_string)
    except search.SearchSyntaxError as e:
        raise FilterError(str(e), filter_string, e.position) from None
    except InvalidParameterError as e:
        raise FilterError(str(e), filter_string) from None
    return filter_string


def and_filters(*filters: str) -> str:
    """Join filters with AND (the grammar is a plain conjunction, so this is exact)."""
    return " AND ".join(f for f in filters if f)


# --------------------------------------------------------------------------- experiments


@dataclass
class ExperimentSummary:
    experiment: Experiment
    run_count: int | None
    last_run_time: int | None


def search_experiments(client: TrackingClient, query: str) -> list[Experiment]:
    """Experiments whose name contains `query` (any case), or that match it as a filter.

    Text with a comparison operator (`name LIKE 'x%'`, `tags.team = 'a'`) is read as the
    search_experiments filter grammar; plain text is a case-insensitive name search.
    """
    query = (query or "").strip()
    filter_string = None
    if query:
        looks_like_filter = any(op in query for op in ("=", "<", ">", "`")) or any(
            f" {word} " in f" {query.upper()} " for word in ("LIKE", "ILIKE", "IN", "IS")
        )
        if looks_like_filter:
            try:
                search.parse_experiment_filter(query)
            except search.SearchSyntaxError as e:
                raise FilterError(str(e), query, e.position) from None
            filter_string = query
        else:
            # LIKE has no escape character: a % or _ typed here matches a little more, never less
            filter_string = f"name ILIKE {quote_string('%' + query + '%')}"
    experiments: list[Experiment] = []
    token = None
    while True:
        page = client.search_experiments(
            ViewType.ACTIVE_ONLY, 1000, filter_string, ["name ASC"], token
        )
        experiments += page
        token = page.token
        if not token:
            return experiments


def experiment_summaries(
    client: TrackingClient, experiments: Sequence[Experiment]
) -> list[ExperimentSummary]:
    stats = client.store.run_stats([e.experiment_id for e in experiments])
    return [ExperimentSummary(e, *stats.get(e.experiment_id, (None, None))) for e in experiments]


# --------------------------------------------------------------------------- runs table


@dataclass(frozen=True)
class Sort:
    """A sortable column of the runs table and its direction."""

    kind: str  # attr, param, metric, tag, duration
    key: str
    descending: bool

    @classmethod
    def parse(cls, value: str | None, direction: str | None) -> Sort:
        """`?sort=metric:accuracy&dir=desc`; the default is newest first."""
        if not value:
            return cls("attr", "start_time", True)
        kind, _, key = value.partition(":")
        descending = (direction or "").lower() != "asc"
        if kind == DURATION:
            return cls(DURATION, "", descending)
        if kind == "attr" and key in ATTRIBUTE_COLUMNS:
            return cls(kind, key, descending)
        if kind in ("param", "metric", "tag") and key:
            return cls(kind, key, descending)
        raise FilterError(f"Cannot sort by {value!r}: unknown column")

    @property
    def param(self) -> str:
        return DURATION if self.kind == DURATION else f"{self.kind}:{self.key}"

    def order_by(self) -> str:
        """The order_by entry of ExperimentRuns.page (search_runs' grammar, or duration)."""
        direction = "DESC" if self.descending else "ASC"
        if self.kind == DURATION:
            return f"{DURATION_ORDER} {direction}"
        if self.kind == "attr":
            return f"attributes.{self.key} {direction}"
        prefix = {"param": "params", "metric": "metrics", "tag": "tags"}[self.kind]
        return f"{prefix}.{quote_key(self.key)} {direction}"

    def value(self, run: Run) -> Any:
        if self.kind == DURATION:
            return duration_ms(run)
        if self.kind == "attr":
            return getattr(run.info, self.key)
        if self.kind == "param":
            return run.data.params.get(self.key)
        if self.kind == "metric":
            value = run.data.metrics.get(self.key)
            return None if value is None or math.isnan(value) else value
        return run.data.tags.get(self.key)


@dataclass
class RunRow:
    run: Run
    depth: int
    parent_id: str | None
    child_count: int = 0
    children: list[RunRow] = field(default_factory=list)

    @property
    def duration(self) -> int | None:
        return duration_ms(self.run)


@dataclass
class RunsPage:
    rows: list[RunRow]  # depth-first: each top-level run followed by its descendants
    top_level: int  # runs at depth 0 on this page
    offset: int
    size: int
    has_next: bool
    truncated_children: bool = False


def runs_page(
    runs: ExperimentRuns,
    filter_string: str,
    sort: Sort,
    offset: int,
    size: int,
    tree: bool,
) -> RunsPage:
    """One page of an experiment's runs: top-level runs in tree mode (with every descendant),
    else any run."""
    user_filter = check_filter(filter_string)
    try:
        found, has_next = runs.page(user_filter, sort.order_by(), offset, size, tree)
    except search.SearchSyntaxError as e:  # only the sort can fail here
        raise FilterError(str(e)) from None
    rows = [RunRow(run, 0, None) for run in found]
    truncated = _attach_descendants(runs, rows, sort) if tree and rows else False
    return RunsPage(_flatten(rows), len(rows), offset, size, has_next, truncated)


def _children_order(sort: Sort) -> Sort:
    """Nested runs follow the chosen sort; by default they read in execution order."""
    if sort == Sort.parse(None, None):
        return Sort("attr", "start_time", False)
    return sort


def _attach_descendants(runs: ExperimentRuns, top: list[RunRow], sort: Sort) -> bool:
    """Attach the nested runs of `top`, at any depth; True if some were left out."""
    found, truncated = runs.descendants(
        [row.run.info.run_id for row in top], MAX_TREE_DEPTH, MAX_NESTED_RUNS
    )
    rows = {row.run.info.run_id: row for row in top}
    pending = _python_sort(found, _children_order(sort))
    while pending:  # parents before children: place what has a placed parent, repeat
        later = []
        for run in pending:
            parent = rows.get(run.data.tags.get(PARENT_TAG, ""))
            if parent is None:
                later.append(run)
                continue
            row = RunRow(run, parent.depth + 1, parent.run.info.run_id)
            parent.children.append(row)
            parent.child_count += 1
            rows[run.info.run_id] = row
        if len(later) == len(pending):
            break  # a parent that could not be loaded: drop its subtree
        pending = later
    return truncated


def _flatten(rows: Iterable[RunRow]) -> list[RunRow]:
    out: list[RunRow] = []
    stack = list(reversed(list(rows)))
    while stack:
        row = stack.pop()
        out.append(row)
        stack.extend(reversed(row.children))
    return out


def _python_sort(runs: list[Run], sort: Sort) -> list[Run]:
    present = [r for r in runs if sort.value(r) is not None]
    missing = [r for r in runs if sort.value(r) is None]
    present.sort(key=lambda r: _comparable(sort.value(r)), reverse=sort.descending)
    return present + missing


def _comparable(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)):
        return 0, value
    return 1, str(value)


def nested_runs_match(store: TrackingStore, experiment_id: str, filter_string: str) -> bool:
    """True if some nested run matches (to hint at the flat view when the tree shows none)."""
    nested = and_filters(filter_string, f"tags.{quote_key(PARENT_TAG)} IS NOT NULL")
    return bool(store.search_runs([experiment_id], nested, ViewType.ACTIVE_ONLY, 1))


@dataclass
class Columns:
    params: list[str]
    metrics: list[str]
    tags: list[str]  # user tags, then the system tags asked for
    system_tags: list[str]  # every system tag key on the page (offered in the column menu)


def table_columns(runs: Iterable[Run], system_tags: Sequence[str] = ()) -> Columns:
    params: set[str] = set()
    metrics: set[str] = set()
    tags: set[str] = set()
    for run in runs:
        params.update(run.data.params)
        metrics.update(run.data.metrics)
        tags.update(run.data.tags)
    user_tags = sorted(k for k in tags if not is_system_tag(k))
    system = sorted(k for k in tags if is_system_tag(k))
    shown = [k for k in system if k in set(system_tags)]
    return Columns(sorted(params), sorted(metrics), user_tags + shown, system)


# --------------------------------------------------------------------------- one run


@dataclass
class MetricSummary:
    key: str
    last: float | None
    min: float | None
    max: float | None
    points: int
    last_step: int | None


@dataclass
class RunLinks:
    parent: Run | None
    parent_id: str | None
    children: list[Run]
    more_children: bool
    prefect_url: str | None
    prefect_kind: str | None  # "flow run" or "task run"


def metric_histories(client: TrackingClient, run: Run) -> dict[str, list[Metric]]:
    return {
        key: client.get_metric_history(run.info.run_id, key) for key in sorted(run.data.metrics)
    }


def summarize_metrics(run: Run, histories: dict[str, list[Metric]]) -> list[MetricSummary]:
    out = []
    for key in sorted(run.data.metrics):
        values = [m.value for m in histories.get(key, []) if not math.isnan(m.value)]
        points = histories.get(key, [])
        out.append(
            MetricSummary(
                key=key,
                last=run.data.metrics[key],
                min=min(values) if values else None,
                max=max(values) if values else None,
                points=len(points),
                last_step=max((m.step for m in points), default=None),
            )
        )
    return out


def chart_series(history: list[Metric]) -> dict[str, list[Any]]:
    """{step, time, value} columns for one metric, thinned to MAX_CHART_POINTS."""
    points = sorted(history, key=lambda m: (m.step, m.timestamp))
    if len(points) > MAX_CHART_POINTS:
        stride = len(points) / (MAX_CHART_POINTS - 1)
        picked = [points[int(i * stride)] for i in range(MAX_CHART_POINTS - 1)]
        points = [*picked, points[-1]]
    return {
        "step": [m.step for m in points],
        "time": [iso_time(m.timestamp) for m in points],
        "value": [None if math.isnan(m.value) or math.isinf(m.value) else m.value for m in points],
    }


def run_links(client: TrackingClient, run: Run) -> RunLinks:
    tags = run.data.tags
    parent_id = tags.get(PARENT_TAG)
    parent = None
    if parent_id:
        try:
            parent = client.get_run(parent_id)
        except (NotFoundError, InvalidParameterError):
            parent = None
    runs = client.store.experiment_runs(run.info.experiment_id)
    children, more = runs.descendants([run.info.run_id], 1, MAX_LINKED_CHILDREN)
    url, kind = prefect_link(client, run)
    return RunLinks(parent, parent_id, children, more, url, kind)


def prefect_link(client: TrackingClient, run: Run) -> tuple[str | None, str | None]:
    """The Prefect UI page of the flow or task run this run tracks, when there is one."""
    tags = run.data.tags
    task_run_id = tags.get(TASK_RUN_ID_TAG)
    if not task_run_id:
        url = safe_http_url(tags.get(UI_URL_TAG))
        return (url, "flow run") if url else (None, None)
    base = _prefect_ui_base(client, run)
    if base is None:
        return None, None
    return f"{base}/runs/task-run/{task_run_id}", "task run"


def _prefect_ui_base(client: TrackingClient, run: Run) -> str | None:
    """The Prefect UI root, from the ui_url of the flow run (or of an ancestor run)."""
    seen: set[str] = set()
    current: Run | None = run
    flow_run_id = run.data.tags.get(FLOW_RUN_ID_TAG, "").replace("-", "")
    candidates: list[str] = [flow_run_id] if flow_run_id else []
    while True:
        for candidate in candidates:
            if candidate in seen:
                continue
            seen.add(candidate)
            try:
                found = client.get_run(candidate)
            except (NotFoundError, InvalidParameterError):
                continue
            url = safe_http_url(found.data.tags.get(UI_URL_TAG))
            if url and "/runs/flow-run/" in url:
                return url.split("/runs/flow-run/", 1)[0]
        parent = current.data.tags.get(PARENT_TAG) if current is not None else None
        if not parent or parent in seen or len(seen) > MAX_TREE_DEPTH:
            return None
        candidates = [parent]
        try:
            current = client.get_run(parent)
        except (NotFoundError, InvalidParameterError):
            current = None


# --------------------------------------------------------------------------- compare


@dataclass
class CompareData:
    runs: list[Run]
    param_keys: list[str]
    param_differs: dict[str, bool]
    metric_keys: list[str]
    metric_differs: dict[str, bool]


def compare_data(runs: list[Run]) -> CompareData:
    param_keys = sorted({k for r in runs for k in r.data.params})
    metric_keys = sorted({k for r in runs for k in r.data.metrics})
    param_differs = {k: len({r.data.params.get(k) for r in runs}) > 1 for k in param_keys}
    metric_differs = {
        k: len({format_value(r.data.metrics.get(k)) for r in runs}) > 1 for k in metric_keys
    }
    return CompareData(runs, param_keys, param_differs, metric_keys, metric_differs)


def parallel_coordinates(data: CompareData) -> dict[str, Any]:
    """Per-run params (numbers when every run has a numeric value) and latest metrics."""
    params = {}
    for key in data.param_keys:
        values = [r.data.params.get(key) for r in data.runs]
        numeric = all(v is not None and _is_number(v) for v in values)
        params[key] = {
            "numeric": numeric,
            "values": [float(v) if numeric else v for v in values],  # type: ignore[arg-type]
        }
    metrics = {
        key: [_json_number(r.data.metrics.get(key)) for r in data.runs] for key in data.metric_keys
    }
    return {
        "runs": [r.info.run_name or r.info.run_id[:8] for r in data.runs],
        "params": params,
        "metrics": metrics,
    }


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _json_number(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value


def metric_history_series(
    client: TrackingClient, run_ids: Sequence[str], key: str
) -> dict[str, dict[str, list[Any]]]:
    out = {}
    for run_id in run_ids:
        out[run_id] = chart_series(client.get_metric_history(run_id, key))
    return out


# --------------------------------------------------------------------------- scheduled series


@dataclass
class SeriesData:
    runs: list[Run]
    metric_keys: list[str]
    deployments: list[str]
    points: list[dict[str, Any]]


def scheduled_series(
    store: TrackingStore, experiment_id: str, metric: str | None, deployment: str | None
) -> SeriesData:
    """The experiment's scheduled (or deployment) flow runs, oldest first, with `metric`."""
    found: dict[str, Run] = {}
    for marker in (SCHEDULED_TAG, DEPLOYMENT_TAG):
        for run in all_runs(store, [experiment_id], f"tags.{quote_key(marker)} IS NOT NULL"):
            found.setdefault(run.info.run_id, run)
    runs = list(found.values())
    deployments = sorted({r.data.tags.get(DEPLOYMENT_TAG, "") for r in runs} - {""})
    if deployment:
        runs = [r for r in runs if r.data.tags.get(DEPLOYMENT_TAG) == deployment]
    runs.sort(key=lambda r: (_scheduled_ms(r) or 0, r.info.run_id))
    metric_keys = sorted({k for r in runs for k in r.data.metrics})
    points = []
    if metric:
        for run in runs:
            value = _json_number(run.data.metrics.get(metric))
            if value is None:
                continue
            points.append(
                {
                    "time": iso_time(_scheduled_ms(run)),
                    "value": value,
                    "run_id": run.info.run_id,
                    "name": run.info.run_name,
                    "deployment": run.data.tags.get(DEPLOYMENT_TAG, ""),
                    "status": run.info.status,
                }
            )
    return SeriesData(runs, metric_keys, deployments, points)


def _scheduled_ms(run: Run) -> int | None:
    text = run.data.tags.get(SCHEDULED_TAG)
    if text:
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return int(moment.timestamp() * 1000)
        except ValueError:
            pass
    return run.info.start_time


@dataclass(frozen=True)
class EnvironmentView:
    """What the run page shows of a run's recorded environment (tracking.run_environment)."""

    python: str | None
    platform: str | None
    packages: list[str]  # `name==version` lines of environment/requirements.txt
    commit: str | None
    branch: str | None
    repo_url: str | None
    dirty: str | None  # "true" / "false", None when unknown
    entrypoint: str | None
    reproduce: str | None  # the command that runs it again


def environment_view(run: Run, requirements: bytes | None) -> EnvironmentView | None:
    """The run's environment, from its tags and requirements.txt; None when none is recorded."""
    from tracking import run_environment as env

    tags = run.data.tags
    packages = [
        line.strip()
        for line in (requirements or b"").decode("utf-8", "replace").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    python = tags.get(env.PYTHON_VERSION_TAG)
    commit = tags.get(system_tags.GIT_COMMIT)
    if python is None and commit is None and not packages:
        return None
    is_project = tags.get(system_tags.SOURCE_TYPE) == "PROJECT"
    entrypoint = tags.get("mlflow.project.entryPoint") if is_project else None
    entrypoint = entrypoint or tags.get(env.ENTRYPOINT_TAG)
    reproducible = commit is not None and entrypoint is not None
    return EnvironmentView(
        python=python,
        platform=tags.get(env.PLATFORM_TAG),
        packages=packages,
        commit=commit,
        branch=tags.get(env.GIT_BRANCH_TAG),
        repo_url=tags.get(env.GIT_REPO_URL_TAG),
        dirty=tags.get(env.GIT_DIRTY_TAG),
        entrypoint=entrypoint,
        reproduce=f"trackflow runs reproduce {run.info.run_id}" if reproducible else None,
    )
