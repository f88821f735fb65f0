"""`task`: prefect.task that tracks every task execution as a (nested) run.

    from tasks import task

    @task(retries=2, log_params=["lr"], run_tags={"stage": "train"})
    def train(lr: float, data) -> dict: ...

Returns a real `prefect.Task`; every Prefect argument passes through unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from tasks import wrap as _wrap
from tasks.runs import CaptureOptions, TrackedRun, on_error_mode, open_run, report, run_exists
from tracking import fluent
from tracking.entities import RunStatus

__all__ = ["task"]

CACHED_TAG = "trackflow.cached"
CACHED_FROM_TAG = "trackflow.cached_from"
CACHE_KEY_TAG = "prefect.cache_key"
CACHE_HIT_HOOK = "trackflow_record_cache_hit"


def task(
    __fn: Callable[..., Any] | None = None,
    *,
    log_params: bool | list[str] = True,
    exclude_params: list[str] | tuple[str, ...] = (),
    log_metrics: bool = True,
    log_result: bool = False,
    run_tags: dict[str, Any] | None = None,
    nested: bool = True,
    on_tracking_error: str | None = None,
    autolog: bool = False,
    log_inputs: bool = False,
    **prefect_options: Any,
) -> Any:
    """Drop-in for `prefect.task`: bare (`@task`), with arguments, or `task(fn, name=...)`.

    Tracking options: log_params (True, False or argument names to keep), exclude_params,
    log_metrics (from the return value), log_result (store it as an artifact), run_tags,
    nested (False: log into the enclosing run instead of a child run), on_tracking_error
    ("raise" or "warn"; default $TRACKFLOW_ON_ERROR or "raise"), autolog (scikit-learn
    autologging into this task's run, only while its body runs and only in its context),
    log_inputs (DataFrame, Series and ndarray arguments as dataset inputs of the run: name,
    digest, schema and profile, no data).
    """
    options = CaptureOptions.build(
        log_params,
        exclude_params,
        log_metrics,
        log_result,
        run_tags,
        on_tracking_error,
        autolog=autolog,
        log_inputs=log_inputs,
    )

    def decorate(fn: Callable[..., Any]) -> Any:
        import prefect

        hooks = list(prefect_options.pop("on_completion", None) or [])
        hooks.append(_record_cache_hit(options))
        _quiet_hook_logs()
        wrapper = _wrap.wrap(fn, lambda: _start(options, nested))
        return prefect.task(wrapper, on_completion=hooks, **prefect_options)

    return decorate(__fn) if __fn is not None else decorate


def _start(options: CaptureOptions, nested: bool) -> TrackedRun | None:
    """Open the run of the task execution the engine is running now (None outside Prefect)."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    if ctx is None:
        return None
    name = ctx.task.name
    label = f"task {ctx.task_run.name!r}"
    enclosing = fluent.peek_active_run()  # its writes may still be queued: no need to wait
    if not nested and enclosing is not None:
        tracked = TrackedRun(
            fluent.current_client(), enclosing, options, label, name, owns_run=False, deferred=True
        )
    else:
        tracked = _open_task_run(ctx, options, label, enclosing, defer=enclosing is not None)
    if tracked is not None:
        tracked.start(ctx.parameters)
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
        "prefect.task_name": ctx.task.name,
        "prefect.task_run_id": str(task_run.id),
        "prefect.flow_run_id": str(task_run.flow_run_id or ""),
        **(extra or {}),
    }
    if task_run.tags:
        tags["prefect.tags"] = json.dumps(sorted(task_run.tags))
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
    from prefect.transactions import get_transaction

    transaction = get_transaction()
    key = getattr(transaction, "key", None)
    return str(key) if key else None


class _HookLogFilter(logging.Filter):
    """Drop Prefect's two INFO lines per task run about our (internal) cache-hit hook."""

    def filter(self, record: logging.LogRecord) -> bool:
        return CACHE_HIT_HOOK not in str(record.msg)


def _quiet_hook_logs() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _HookLogFilter) for f in logger.filters):
        logger.addFilter(_HookLogFilter())


def _record_cache_hit(options: CaptureOptions) -> Callable[..., None]:
    """An on_completion hook: a cache hit never runs the body, so record its run here."""

    def hook(task: Any, task_run: Any, state: Any) -> None:
        if state.name != "Cached":
            return
        from prefect.context import TaskRunContext

        ctx = TaskRunContext.get()
        if ctx is None:
            return
        storage_key = getattr(getattr(state.data, "metadata", None), "storage_key", None)
        key = str(storage_key).rstrip("/").rsplit("/", 1)[-1] if storage_key else None
        extra = {CACHED_TAG: "true"}
        client = fluent.current_client()
        tracked = _open_task_run(
            ctx, options, f"task {task_run.name!r}", fluent.active_run(), extra
        )
        if tracked is None:
            return
        source = _original_run(client, tracked.run.info.experiment_id, key) if key else None
        if source:
            tracked.guard(
                "tagging the cache hit",
                lambda: client.set_tag(tracked.run_id, CACHED_FROM_TAG, source),
            )
        tracked.log_params(ctx.parameters)
        tracked.end(RunStatus.FINISHED)

    hook.__name__ = hook.__qualname__ = CACHE_HIT_HOOK
    return hook


def _original_run(client: Any, experiment_id: str, cache_key: str) -> str | None:
    """The earliest executed (not cached) run that wrote this cache key."""
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{CACHE_KEY_TAG}` = '{cache_key}'",
        order_by=["attributes.start_time ASC"],
        max_results=50,
    )
    for run in runs:
        if run.data.tags.get(CACHED_TAG) != "true":
            return str(run.info.run_id)
    return None
