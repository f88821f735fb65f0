"""What the UI pages show, read from a store: no web framework in here.

Everything goes through the public store API (`search_runs` with the search grammar), except a
few read-only fast paths for the file and SQL stores where the API has no call for the job
(counting runs, sorting by duration); any other store takes the slow, generic path.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracking import search, system_tags
from tracking.client import TrackingClient
from tracking.entities import Experiment, Metric, Run, RunStatus, ViewType
from tracking.errors import InvalidParameterError, NotFoundError
from tracking.stores.base import (
    SEARCH_MAX_RESULTS_THRESHOLD,
    TrackingStore,
    encode_page_token,
)

PARENT_TAG = system_tags.PARENT_RUN_ID
NOTE_TAG = system_tags.NOTE
UI_URL_TAG = "prefect.ui_url"
TASK_RUN_ID_TAG = "prefect.task_run_id"
FLOW_RUN_ID_TAG = "prefect.flow_run_id"
SCHEDULED_TAG = "prefect.scheduled_start_time"
DEPLOYMENT_TAG = "prefect.deployment_name"
TOP_LEVEL_FILTER = f"tags.`{PARENT_TAG}` IS NULL"

#: Tag namespaces written by the tracker itself: hidden from the runs table's default columns.
SYSTEM_TAG_PREFIXES = ("mlflow.", "prefect.", "trackflow.")
#: Children fetched per tree level and page (a flow with more tasks shows the first ones).
MAX_CHILDREN_PER_LEVEL = 5000
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


def quote_key(key: str) -> str:
    """A key as the search grammar reads it: back-quoted, inner back-quotes doubled."""
    return "`" + key.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    """A string literal for the search grammar."""
    return "'" + value.replace("'", "''") + "'"


def format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat()


def duration_ms(run: Run) -> int | None:
    start, end = run.info.start_time, run.info.end_time
    if start is None or end is None:
        return None
    return max(0, end - start)


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
    stats = run_stats(client.store, [e.experiment_id for e in experiments])
    return [ExperimentSummary(e, *stats.get(e.experiment_id, (None, None))) for e in experiments]


def run_stats(store: TrackingStore, experiment_ids: list[str]) -> dict[str, tuple[int, int | None]]:
    """{experiment id: (active runs, latest start time)}."""
    if not experiment_ids:
        return {}
    fast = _sql_run_stats(store, experiment_ids)
    if fast is None:
        fast = _file_run_stats(store, experiment_ids)
    if fast is not None:
        return fast
    stats = {}
    for experiment_id in experiment_ids:  # generic: one pass over the runs through the API
        count, latest = 0, None
        for run in _all_runs(store, [experiment_id], ""):
            count += 1
            start = run.info.start_time
            latest = start if latest is None or (start or 0) > latest else latest
        stats[experiment_id] = (count, latest)
    return stats


def _sql_run_stats(
    store: TrackingStore, experiment_ids: list[str]
) -> dict[str, tuple[int, int | None]] | None:
    try:
        from tracking.stores.sql.store import SqlStore
    except ImportError:  # pragma: no cover - SQLAlchemy comes with Prefect
        return None
    if not isinstance(store, SqlStore):
        return None
    from sqlalchemy import func, select

    from tracking.stores.sql import schema as schema

    keys = [int(i) for i in experiment_ids if i.isdigit()]
    r = schema.runs
    query = (
        select(r.c.experiment_id, func.count(), func.max(r.c.start_time))
        .where(r.c.experiment_id.in_(keys), r.c.lifecycle_stage == "active")
        .group_by(r.c.experiment_id)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    stats: dict[str, tuple[int, int | None]] = {i: (0, None) for i in experiment_ids}
    for experiment_id, count, latest in rows:
        stats[str(experiment_id)] = (int(count), latest)
    return stats


def _file_run_stats(
    store: TrackingStore, experiment_ids: list[str]
) -> dict[str, tuple[int, int | None]] | None:
    from tracking.stores.file.store import FileStore

    if not isinstance(store, FileStore):
        return None
    stats: dict[str, tuple[int, int | None]] = {}
    for experiment_id in experiment_ids:
        count, latest = 0, None
        try:
            path = store._experiment_dir(experiment_id)
        except (NotFoundError, InvalidParameterError):
            continue
        for run_dir in store._run_dirs(path):
            try:
                meta = store._run_meta(run_dir)
            except NotFoundError:
                continue
            if meta.get("lifecycle_stage", "active") != "active":
                continue
            count += 1
            start = meta.get("start_time")
            if isinstance(start, int) and (latest is None or start > latest):
                latest = start
        stats[experiment_id] = (count, latest)
    return stats


def _all_runs(store: TrackingStore, experiment_ids: list[str], filter_string: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = store.search_runs(
            experiment_ids,
            filter_string,
            ViewType.ACTIVE_ONLY,
            SEARCH_MAX_RESULTS_THRESHOLD,
            None,
            token,
        )
        runs += page
        token = page.token
        if not token:
            return runs


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

    def order_by(self) -> list[str]:
        """The search_runs order_by entry (duration has none: see _duration_page)."""
        direction = "DESC" if self.descending else "ASC"
        if self.kind == "attr":
            return [f"attributes.{self.key} {direction}"]
        prefix = {"param": "params", "metric": "metrics", "tag": "tags"}[self.kind]
        return [f"{prefix}.{quote_key(self.key)} {direction}"]

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
    store: TrackingStore,
    experiment_id: str,
    filter_string: str,
    sort: Sort,
    offset: int,
    size: int,
    tree: bool,
    index: FileIndex | None = None,
) -> RunsPage:
    """One page of runs: top-level runs in tree mode (with every descendant), else any run.

    `index` (file store only, see `file_index`) saves scanning the experiment again.
    """
    user_filter = check_filter(filter_string)
    page_filter = and_filters(user_filter, TOP_LEVEL_FILTER) if tree else user_filter
    if index is not None:
        comparisons = search.parse_run_filter(user_filter)
        runs, has_next = index.page(store, comparisons, sort, offset, size, tree)
    elif sort.kind == DURATION:
        runs, has_next = _duration_page(store, experiment_id, page_filter, sort, offset, size)
    else:
        try:
            found = store.search_runs(
                [experiment_id],
                page_filter,
                ViewType.ACTIVE_ONLY,
                size,
                sort.order_by(),
                encode_page_token(offset) if offset else None,
            )
        except search.SearchSyntaxError as e:  # only the sort can fail here
            raise FilterError(str(e)) from None
        runs, has_next = list(found), found.token is not None
    rows = [RunRow(run, 0, None) for run in runs]
    truncated = False
    if tree and rows:
        truncated = _attach_descendants(store, experiment_id, rows, sort, index)
    return RunsPage(_flatten(rows), len(rows), offset, size, has_next, truncated)


def _children_order(sort: Sort) -> Sort:
    """Nested runs follow the chosen sort; by default they read in execution order."""
    if sort == Sort.parse(None, None):
        return Sort("attr", "start_time", False)
    return sort


def _attach_descendants(
    store: TrackingStore,
    experiment_id: str,
    top: list[RunRow],
    sort: Sort,
    index: FileIndex | None,
) -> bool:
    """Attach the nested runs of `top`, at any depth; True if some were left out.

    File and SQL stores read the experiment's parent links in one pass (`FileIndex`,
    `_sql_parent_links`); any other store asks search_runs level by level with
    `tags.mlflow.parentRunId IN (...)`.
    """
    links = index.children if index is not None else _sql_parent_links(store, experiment_id)
    if links is None:
        return _attach_by_search(store, experiment_id, top, sort)
    wanted: list[str] = []
    parent_of: dict[str, str] = {}
    seen = {row.run.info.run_id for row in top}
    level = list(seen)
    truncated = False
    for _depth in range(MAX_TREE_DEPTH):
        next_level = []
        for parent in level:
            for child in links.get(parent, ()):
                if child in seen:  # a parent cycle: show each run once
                    continue
                if len(wanted) >= MAX_CHILDREN_PER_LEVEL:
                    truncated = True
                    break
                seen.add(child)
                parent_of[child] = parent
                wanted.append(child)
                next_level.append(child)
        level = next_level
        if not level:
            break
    runs = _load_runs(store, wanted)
    rows = {row.run.info.run_id: row for row in top}
    order = _children_order(sort)
    pending = _python_sort(runs, order)
    while pending:  # parents before children: place what has a placed parent, repeat
        later = []
        for run in pending:
            parent = rows.get(parent_of[run.info.run_id])
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


def _load_runs(store: TrackingStore, run_ids: list[str]) -> list[Run]:
    if not run_ids:
        return []
    loader = getattr(store, "_load_runs", None)  # the SQL store's bulk read
    if loader is not None:
        return list(loader(run_ids))
    runs = []
    for run_id in run_ids:
        try:
            runs.append(store.get_run(run_id))
        except NotFoundError:  # deleted since the listing
            continue
    return runs


def _attach_by_search(
    store: TrackingStore, experiment_id: str, top: list[RunRow], sort: Sort
) -> bool:
    order = _children_order(sort)
    level, truncated, seen = top, False, {row.run.info.run_id for row in top}
    for depth in range(1, MAX_TREE_DEPTH + 1):
        if not level:
            break
        by_id = {row.run.info.run_id: row for row in level}
        ids = ", ".join(quote_string(i) for i in by_id)
        found = store.search_runs(
            [experiment_id],
            f"tags.{quote_key(PARENT_TAG)} IN ({ids})",
            ViewType.ACTIVE_ONLY,
            MAX_CHILDREN_PER_LEVEL,
            ["attributes.start_time ASC"],
        )
        truncated = truncated or found.token is not None
        next_level = []
        for run in _python_sort(list(found), order):
            if run.info.run_id in seen:
                continue
            seen.add(run.info.run_id)
            parent = by_id[run.data.tags[PARENT_TAG]]
            row = RunRow(run, depth, parent.run.info.run_id)
            parent.children.append(row)
            parent.child_count += 1
            next_level.append(row)
        level = next_level
    return truncated


def _sql_parent_links(store: TrackingStore, experiment_id: str) -> dict[str, list[str]] | None:
    """SQL stores: {parent id: [child ids]} of the experiment's active runs, one query."""
    try:
        from tracking.stores.sql.store import SqlStore
    except ImportError:  # pragma: no cover - SQLAlchemy comes with Prefect
        return None
    if not isinstance(store, SqlStore):
        return None
    if not experiment_id.isdigit():
        return {}
    from sqlalchemy import and_, select

    from tracking.stores.sql import schema as schema

    r, t = schema.runs, schema.tags
    query = (
        select(t.c.run_uuid, t.c.value)
        .select_from(r.join(t, and_(t.c.run_uuid == r.c.run_uuid, t.c.key == PARENT_TAG)))
        .where(r.c.experiment_id == int(experiment_id), r.c.lifecycle_stage == "active")
        .order_by(r.c.start_time, r.c.run_uuid)
    )
    links: dict[str, list[str]] = {}
    with store.engine.connect() as conn:
        for child, parent in conn.execute(query):
            links.setdefault(parent, []).append(child)
    return links


class FileIndex:
    """One pass over a file-store experiment: each active run's id, parent and meta.yaml.

    The store's own stat-validated cache makes the pass cheap (two stats per run) after the
    first; it gives the run count, the children of any run, and unfiltered pages (tree or
    flat, any sort) without another scan.
    """

    def __init__(self, entries: list[tuple[str, str | None, dict[str, Any], str]]) -> None:
        self.entries = entries
        self.children: dict[str, list[str]] = {}
        for run_id, parent, _meta, _dir in entries:
            if parent:
                self.children.setdefault(parent, []).append(run_id)

    @property
    def stats(self) -> tuple[int, int | None]:
        starts = [_int(m.get("start_time")) for _, _, m, _ in self.entries]
        return len(self.entries), max((s for s in starts if s is not None), default=None)

    def page(
        self,
        store: TrackingStore,
        comparisons: tuple[search.Comparison, ...],
        sort: Sort,
        offset: int,
        size: int,
        tree: bool,
    ) -> tuple[list[Run], bool]:
        """A page of the runs (top-level runs only when `tree`) matching `comparisons`,
        ordered as search_runs orders them; the filter is the store's own matcher."""
        from tracking.stores.file.store import _RunView

        items = []
        for entry in self.entries:
            if tree and entry[1]:
                continue
            view = _RunView(store, entry[3])  # type: ignore[arg-type]
            if comparisons:
                try:
                    if not search.run_matches(comparisons, view):
                        continue
                except (NotFoundError, KeyError, ValueError):
                    continue
            if sort.kind in ("attr", DURATION):
                value = _meta_value(entry[2], sort)
            else:
                value = getattr(view, sort.kind)(sort.key)
                if isinstance(value, float) and math.isnan(value):
                    value = None
            start = _int(entry[2].get("start_time"))
            # search_runs' tie-break after the chosen column: start_time DESC, run_id ASC
            items.append((value, -(start if start is not None else -(2**63)), entry[0]))
        present = [i for i in items if i[0] is not None]
        missing = [i for i in items if i[0] is None]
        present.sort(key=lambda i: (i[1], i[2]))
        present.sort(key=lambda i: _comparable(i[0]), reverse=sort.descending)
        missing.sort(key=lambda i: (i[1], i[2]))
        ordered = present + missing
        chosen = [i[2] for i in ordered[offset : offset + size]]
        return _load_runs(store, chosen), len(ordered) > offset + size


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _meta_value(meta: dict[str, Any], sort: Sort) -> Any:
    """A run's value for an attribute (or duration) column, read from its meta.yaml."""
    if sort.kind == DURATION:
        start, end = _int(meta.get("start_time")), _int(meta.get("end_time"))
        return None if start is None or end is None else max(0, end - start)
    if sort.key == "status":
        try:
            return RunStatus(int(meta["status"])).name
        except (KeyError, ValueError):
            return None
    value = meta.get(sort.key)
    if value is None or isinstance(value, int):
        return value
    return str(value)


def file_index(store: TrackingStore, experiment_id: str) -> FileIndex | None:
    """The FileIndex of an experiment in a file store; None for any other store."""
    from tracking.stores.file.disk import DamagedFileError
    from tracking.stores.file.store import RESERVED_EXPERIMENT_FOLDERS, FileStore, _parse_text

    if not isinstance(store, FileStore):
        return None
    try:
        path = store._experiment_dir(experiment_id)
    except (NotFoundError, InvalidParameterError):
        return FileIndex([])
    entries = []
    with os.scandir(path) as scan:
        names = [e.name for e in scan if not e.name.startswith(".")]
    for name in names:
        if name in RESERVED_EXPERIMENT_FOLDERS:
            continue
        run_dir = f"{path}/{name}"
        try:
            meta = store._read_meta(run_dir)
        except (FileNotFoundError, NotADirectoryError, DamagedFileError):
            continue
        if meta.get("lifecycle_stage", "active") != "active":
            continue
        try:
            parent = store._cache.get(f"{run_dir}/tags/{PARENT_TAG}", _parse_text)
        except (FileNotFoundError, NotADirectoryError):
            parent = None
        entries.append((str(meta.get("run_id", name)), parent or None, meta, run_dir))
    return FileIndex(entries)


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


def _duration_page(
    store: TrackingStore,
    experiment_id: str,
    filter_string: str,
    sort: Sort,
    offset: int,
    size: int,
) -> tuple[list[Run], bool]:
    """Sort by end_time - start_time, which the search grammar cannot order by."""
    page = _sql_duration_page(store, experiment_id, filter_string, sort, offset, size)
    if page is not None:
        return page
    runs = _python_sort(_all_runs(store, [experiment_id], filter_string), sort)
    return runs[offset : offset + size], len(runs) > offset + size


def _sql_duration_page(
    store: TrackingStore,
    experiment_id: str,
    filter_string: str,
    sort: Sort,
    offset: int,
    size: int,
) -> tuple[list[Run], bool] | None:
    try:
        from tracking.stores.sql.store import SqlStore
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(store, SqlStore):
        return None
    from sqlalchemy import and_, select

    from tracking.stores.sql import schema as schema
    from tracking.stores.sql.search import condition

    if not experiment_id.isdigit():
        return [], False
    r = schema.runs
    duration = r.c.end_time - r.c.start_time
    where = [r.c.experiment_id == int(experiment_id), r.c.lifecycle_stage == "active"]
    where += [condition(c) for c in search.parse_run_filter(filter_string)]
    query = (
        select(r.c.run_uuid)
        .where(and_(*where))
        .order_by(
            duration.is_(None),
            duration.desc() if sort.descending else duration.asc(),
            r.c.start_time.desc(),
            r.c.run_uuid.asc(),
        )
        .offset(offset)
        .limit(size + 1)
    )
    with store.engine.connect() as conn:
        ids = list(conn.execute(query).scalars())
    return store._load_runs(ids[:size]), len(ids) > size


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
    index = file_index(client.store, run.info.experiment_id)
    if index is not None:  # the file store: one cheap pass instead of a search
        ids = index.children.get(run.info.run_id, [])
        found = _load_runs(client.store, ids[:MAX_LINKED_CHILDREN])
        children = _python_sort(found, Sort("attr", "start_time", False))
        more = len(ids) > MAX_LINKED_CHILDREN
    else:
        page = client.search_runs(
            [run.info.experiment_id],
            f"tags.{quote_key(PARENT_TAG)} = {quote_string(run.info.run_id)}",
            max_results=MAX_LINKED_CHILDREN,
            order_by=["attributes.start_time ASC"],
        )
        children, more = list(page), page.token is not None
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
        for run in _all_runs(store, [experiment_id], f"tags.{quote_key(marker)} IS NOT NULL"):
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
