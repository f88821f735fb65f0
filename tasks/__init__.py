"""`task`: prefect.task that tracks every task execution as a (nested) run.

    from tasks import task

    @task(retries=2, log_params=["lr"], run_tags={"stage": "train"})
    def train(lr: float, data) -> dict: ...

Returns a real `prefect.Task`; every Prefect argument passes through unchanged.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

import prefect
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.context import TaskRunContext
from prefect.settings import get_current_settings
from prefect.transactions import get_transaction
from prefect.utilities.annotations import NotSet

from tasks import wrap as _wrap
from tasks.decorator import CAPTURE_OPTIONS, logged_arguments, split_options
from tasks.runs import CaptureOptions, TrackedRun, on_error_mode, open_run, report, run_exists
from tracking import fluent, search, system_tags
from tracking.entities import RunStatus

if TYPE_CHECKING:
    import datetime

    from prefect.assets import Asset
    from prefect.results import ResultSerializer, ResultStorage
    from prefect.tasks import (
        RetryConditionCallable,
        StateHookCallable,
        Task,
        TaskRunNameValueOrCallable,
    )

__all__ = ["TaskDecorator", "task"]

P = ParamSpec("P")
R = TypeVar("R")

CACHED_TAG = "trackflow.cached"
CACHED_FROM_TAG = "trackflow.cached_from"
CACHE_KEY_TAG = "prefect.cache_key"
CACHE_HIT_HOOK = "trackflow_record_cache_hit"
TRACKING_OPTIONS = (*CAPTURE_OPTIONS, "nested", "log_inputs")

# Prefect's own decorator, taken before anything (such as tests/peers/swap_plugin.py) can put
# ours in its place.
_PREFECT_TASK = prefect.tasks.task


class TaskDecorator:
    """Drop-in for `prefect.task`: bare (`@task`), with arguments, or `task(fn, name=...)`.

    Takes every argument of `prefect.task` (same names, same defaults) and returns a real
    `prefect.Task`. Tracking options: log_params (True, False or argument names to keep),
    exclude_params, log_metrics (from the return value), log_result (store it as an artifact),
    run_tags, nested (False: log into the enclosing run instead of a child run),
    on_tracking_error ("raise" or "warn"; default $TRACKFLOW_ON_ERROR or "raise"), autolog
    (scikit-learn autologging into this task's run, only while its body runs and only in its
    context), log_inputs (DataFrame, Series and ndarray arguments as dataset inputs of the run:
    name, digest, schema and profile, no data). `inspect.signature(task)` is Prefect's; the
    typed overloads add ours.
    """

    def __init__(self) -> None:
        self.__signature__ = inspect.signature(_PREFECT_TASK)

    @overload
    def __call__(self, __fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def __call__(
        self,
        __fn: Literal[None] = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_policy: CachePolicy | type[NotSet] = NotSet,
        cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None] | None = None,
        cache_expiration: datetime.timedelta | None = None,
        task_run_name: TaskRunNameValueOrCallable | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | int | list[float] | Callable[[int], list[float]] | None = None,
        retry_jitter_factor: float | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStorage | None = None,
        result_storage_key: str | None = None,
        result_serializer: ResultSerializer | None = None,
        cache_result_in_memory: bool = True,
        timeout_seconds: int | float | None = None,
        log_prints: bool | None = None,
        refresh_cache: bool | None = None,
        on_completion: list[StateHookCallable] | None = None,
        on_failure: list[StateHookCallable] | None = None,
        on_running: list[StateHookCallable] | None = None,
        retry_condition_fn: RetryConditionCallable | None = None,
        viz_return_value: Any = None,
        asset_deps: list[str | Asset] | None = None,
        log_params: bool | list[str] = True,
        exclude_params: list[str] | tuple[str, ...] = (),
        log_metrics: bool = True,
        log_result: bool = False,
        run_tags: dict[str, Any] | None = None,
        nested: bool = True,
        on_tracking_error: str | None = None,
        autolog: bool = False,
        log_inputs: bool = False,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def __call__(self, __fn: Any = None, /, **options: Any) -> Any:
        tracking, prefect_options = split_options(
            "task", self.__signature__, options, TRACKING_OPTIONS
        )
        nested = bool(tracking.pop("nested", True))
        capture = CaptureOptions.build(**tracking)
        if __fn is None:
            return functools.partial(self, **options)
        fn = _wrap.wrap_method(__fn, lambda: _start(capture, nested))
        task_obj = prefect.Task(fn=fn, **prefect_options)
        if _may_read_cache(task_obj):
            hook = _record_cache_hit(capture)
            task_obj.on_completion_hooks = [*task_obj.on_completion_hooks, hook]
        return task_obj


task = TaskDecorator()


def _may_read_cache(task_obj: Any) -> bool:
    """Whether a run of this task can be a cache hit: it has a cache key (a cache policy or a
    result storage key) and persists its results. Only those tasks get the cache-hit hook
    (Prefect logs two lines per run for every hook)."""
    keyed = task_obj.result_storage_key is not None or (
        isinstance(task_obj.cache_policy, CachePolicy) and task_obj.cache_policy != NO_CACHE
    )
    persist = task_obj.persist_result
    if persist is None:
        persist = get_current_settings().results.persist_by_default
    return keyed and bool(persist)


def _start(options: CaptureOptions, nested: bool) -> TrackedRun | None:
    """Open the run of the task execution the engine is running now (None outside Prefect)."""
    ctx = TaskRunContext.get()
    if ctx is None:
        return None
    name = ctx.task.name
    label = f"task {ctx.task_run.name!r}"
    enclosing = fluent.peek_active_run()  # its writes may still be queued: no need to wait
    tracked: TrackedRun | None
    if not nested and enclosing is not None:
        tracked = TrackedRun(
            fluent.current_client(), enclosing, options, label, name, owns_run=False, deferred=True
        )
    else:
        tracked = _open_task_run(ctx, options, label, enclosing, defer=enclosing is not None)
    if tracked is not None:
        tracked.start(logged_arguments(ctx.task, ctx.parameters))
    return tracked


def _open_task_run(
    ctx: Any,
    options: CaptureOptions,
    label: str,
    enclosing: Any,
    extra: dict[str, str] | None = None,
    defer: bool = False,
) -> TrackedRun | None:
    task_run = ctx.task_run
    try:
        client = fluent.current_client()
        parent = enclosing if enclosing is not None else _parent_from_prefect(client, task_run)
    except Exception as e:
        report(on_error_mode(options.on_error), label, "opening the tracking store", e)
        return None
    tags = {
        system_tags.PREFECT_TASK_NAME: ctx.task.name,
        system_tags.PREFECT_TASK_RUN_ID: str(task_run.id),
        system_tags.PREFECT_FLOW_RUN_ID: str(task_run.flow_run_id or ""),
        **(extra or {}),
    }
    if task_run.tags:
        tags[system_tags.PREFECT_TAGS] = json.dumps(sorted(task_run.tags))
    cache_key = _cache_key() if ctx.persist_result else None  # no stored result: no cache hit
    if cache_key:
        tags[CACHE_KEY_TAG] = cache_key
    return open_run(
        label=label,
        options=options,
        run_id=task_run.id.hex,
        run_name=task_run.name,
        experiment_id=lambda: (
            parent.info.experiment_id if parent is not None else fluent.resolve_experiment_id()
        ),
        parent_run_id=parent.info.run_id if parent is not None else None,
        tags=tags,
        attempt=task_run.run_count or 1,
        name=ctx.task.name,
        defer_under=parent if defer else None,
    )


def _parent_from_prefect(client: Any, task_run: Any) -> Any:
    """Where context did not travel (process pools, Dask): the enclosing task, else the flow."""
    for parent in (task_run.task_inputs or {}).get("__parents__", []):
        run = run_exists(client, parent.id.hex)
        if run is not None:
            return run
    if task_run.flow_run_id is not None:
        return run_exists(client, task_run.flow_run_id.hex)
    return None


def _cache_key() -> str | None:
    transaction = get_transaction()
    key = getattr(transaction, "key", None)
    return str(key) if key else None


def _record_cache_hit(options: CaptureOptions) -> Callable[..., None]:
    """An on_completion hook: a cache hit never runs the body, so its run is recorded here, as
    a run of its own that ends FINISHED (or is closed FAILED when the store fails)."""

    def hook(task: Any, task_run: Any, state: Any) -> None:
        if state.name != "Cached":
            return
        ctx = TaskRunContext.get()
        if ctx is None:
            return
        enclosing = fluent.peek_active_run()  # its writes may still be queued: no need to wait
        label = f"task {task_run.name!r}"
        extra = {CACHED_TAG: "true"}
        tracked = _open_task_run(ctx, options, label, enclosing, extra, defer=enclosing is not None)
        if tracked is None:
            return
        tracked.start(logged_arguments(ctx.task, ctx.parameters))
        metadata = getattr(state.data, "metadata", None)
        storage_key = getattr(metadata, "storage_key", None)
        if storage_key:
            tracked.guard(
                "finding the run whose cached result was reused",
                lambda: _tag_source(tracked, str(storage_key)),
            )
        tracked.end(RunStatus.FINISHED)

    hook.__name__ = hook.__qualname__ = CACHE_HIT_HOOK
    return hook


def _tag_source(tracked: TrackedRun, storage_key: str) -> None:
    source = _original_run(tracked.client, tracked.run.info.experiment_id, storage_key)
    if source is not None:
        tracked.set_tag(CACHED_FROM_TAG, source)


def _original_run(client: Any, experiment_id: str, storage_key: str) -> str | None:
    """The earliest executed (not cached) run that wrote the cache key of this result.

    Prefect stores a result under `<storage path>/<cache key>` (keys may hold '/'), so the
    key is the longest path suffix of `storage_key` that some run was tagged with."""
    parts = storage_key.split("/")
    keys = tuple(dict.fromkeys("/".join(parts[i:]) for i in range(len(parts)) if parts[i]))
    where = search.format_filter(
        [
            search.Comparison(search.TAG, CACHE_KEY_TAG, "IN", keys),
            search.Comparison(search.TAG, CACHED_TAG, "IS NULL", None),
        ]
    )
    runs = client.search_runs(
        [experiment_id], where, order_by=["attributes.start_time ASC"], max_results=50
    )
    best = max(runs, key=lambda run: len(run.data.tags[CACHE_KEY_TAG]), default=None)
    return None if best is None else str(best.info.run_id)
