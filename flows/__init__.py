"""`flow`: prefect.flow that tracks every flow run as a run in the flow's experiment.

    from flows import flow

    @flow(log_prints=True)            # experiment = the flow's name
    def training(lr: float = 0.1): ...

    training.serve(name="nightly", cron="0 3 * * *")   # every scheduled run is tracked

Returns a real `prefect.Flow`; serve, deploy, with_options and validation keep working.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import prefect
from prefect.context import FlowRunContext
from prefect.flows import FlowDecorator as _PrefectFlowDecorator
from prefect.utilities.hashing import file_hash

from tasks import wrap as _wrap
from tasks.decorator import CAPTURE_OPTIONS, logged_arguments, split_options
from tasks.runs import CaptureOptions, TrackedRun, on_error_mode, open_run, report, run_exists
from tracking import fluent, run_environment, system_tags
from tracking.entities import RunStatus, RunTag

if TYPE_CHECKING:
    from prefect.filesystems import ReadableDeploymentStorage
    from prefect.flows import Flow, FlowStateHook
    from prefect.futures import PrefectFuture
    from prefect.results import ResultSerializer, ResultStorage
    from prefect.runner.storage import RunnerStorage
    from prefect.task_runners import TaskRunner

__all__ = ["FlowDecorator", "flow"]

P = ParamSpec("P")
R = TypeVar("R")

STATE_TAG = "prefect.state"
TRACKING_OPTIONS = (*CAPTURE_OPTIONS, "experiment", "capture_environment")
KILLED_HOOKS = ("on_crashed_hooks", "on_cancellation_hooks")


class FlowDecorator:
    """Drop-in for `prefect.flow`: bare (`@flow`), with arguments, or `flow(fn, name=...)`.

    Takes every argument of `prefect.flow` (same names, same defaults) and returns a real
    `prefect.Flow`; `flow.from_source` is Prefect's. Tracking options as on `tasks.task`, plus
    `experiment` (default: the flow's name; a subflow logs into the experiment of the run that
    called it); `autolog=True` autologs scikit-learn fits of the flow body into the flow's run
    (not into its tasks' runs); `capture_environment=False` skips recording the flow run's
    environment (packages, Python, platform, git state: tracking.run_environment).
    `inspect.signature(flow)` is Prefect's; the typed overloads add ours.
    """

    def __init__(self) -> None:
        self.__signature__ = inspect.signature(_PrefectFlowDecorator().__call__)

    @overload
    def __call__(self, __fn: Callable[P, R], /) -> Flow[P, R]: ...

    @overload
    def __call__(
        self,
        __fn: None = None,
        /,
        *,
        name: str | None = None,
        version: str | None = None,
        flow_run_name: Callable[[], str] | str | None = None,
        retries: int | None = None,
        retry_delay_seconds: int | float | None = None,
        task_runner: TaskRunner[PrefectFuture[Any]] | None = None,
        description: str | None = None,
        timeout_seconds: int | float | None = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        result_storage: ResultStorage | None = None,
        result_serializer: ResultSerializer | None = None,
        cache_result_in_memory: bool = True,
        log_prints: bool | None = None,
        on_completion: list[FlowStateHook[..., Any]] | None = None,
        on_failure: list[FlowStateHook[..., Any]] | None = None,
        on_cancellation: list[FlowStateHook[..., Any]] | None = None,
        on_crashed: list[FlowStateHook[..., Any]] | None = None,
        on_running: list[FlowStateHook[..., Any]] | None = None,
        experiment: str | None = None,
        log_params: bool | list[str] = True,
        exclude_params: list[str] | tuple[str, ...] = (),
        log_metrics: bool = True,
        log_result: bool = False,
        run_tags: dict[str, Any] | None = None,
        on_tracking_error: str | None = None,
        autolog: bool = False,
        capture_environment: bool = True,
    ) -> Callable[[Callable[P, R]], Flow[P, R]]: ...

    def __call__(self, __fn: Any = None, /, **options: Any) -> Any:
        tracking, prefect_options = split_options(
            "flow", self.__signature__, options, TRACKING_OPTIONS
        )
        experiment = tracking.pop("experiment", None)
        capture_environment = tracking.pop("capture_environment", True)
        capture = CaptureOptions.build(**tracking)
        if __fn is None:
            return functools.partial(self, **options)
        source = _source_file(_wrap.user_function(__fn))
        if not prefect_options["version"]:  # Prefect's default, for the user's function
            prefect_options["version"] = _file_version(source)
        entry = (source, _wrap.user_function(__fn).__name__) if capture_environment else None
        fn = _wrap.wrap_method(__fn, lambda: _start(capture, experiment, source, entry))
        flow_obj = prefect.Flow(fn=fn, **prefect_options)
        for hooks in KILLED_HOOKS:  # the user's hooks went through Prefect's checks untouched
            setattr(flow_obj, hooks, [*getattr(flow_obj, hooks), _mark_killed])
        return flow_obj

    if TYPE_CHECKING:

        @staticmethod
        def from_source(
            source: str | Path | RunnerStorage | ReadableDeploymentStorage,
            entrypoint: str,
        ) -> Flow[..., Any] | Coroutine[Any, Any, Flow[..., Any]]: ...

    else:
        from_source = staticmethod(prefect.Flow.from_source)


flow = FlowDecorator()


def _source_file(fn: Callable[..., Any]) -> str | None:
    try:
        return inspect.getsourcefile(fn)
    except TypeError:
        return None


def _file_version(source: str | None) -> str | None:
    """Prefect's default flow version: a hash of the file defining the flow's function."""
    if source is None:
        return None
    try:
        return file_hash(source)
    except OSError:
        return None


def _start(
    options: CaptureOptions,
    experiment: str | None,
    source: str | None,
    entry: tuple[str | None, str] | None = None,
) -> TrackedRun | None:
    """Open the run of the flow run the engine is running now (None outside Prefect)."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None
    flow_run = ctx.flow_run
    label = f"flow run {flow_run.name!r}"
    try:
        client = fluent.current_client()
        parent = fluent.active_run() or _parent_from_prefect(client, flow_run)
    except Exception as e:
        report(on_error_mode(options.on_error), label, "opening the tracking store", e)
        return None

    def experiment_id() -> str:
        if experiment is None and parent is not None:
            return parent.info.experiment_id
        name = experiment or ctx.flow.name
        return client.store.get_or_create_experiment(name).experiment_id

    tracked = open_run(
        label=label,
        options=options,
        run_id=flow_run.id.hex,
        run_name=flow_run.name,
        experiment_id=experiment_id,
        parent_run_id=parent.info.run_id if parent is not None else None,
        tags={**system_tags.default_tags(source), **_flow_run_tags(ctx.flow, flow_run)},
        attempt=flow_run.run_count or 1,
        name=ctx.flow.name,
    )
    if tracked is not None:
        tracked.start(logged_arguments(ctx.flow, ctx.parameters))
        if entry is not None and not tracked.disabled:
            run_environment.record(tracked.client, tracked.run, *entry)
    return tracked


def _flow_run_tags(flow_obj: Any, flow_run: Any) -> dict[str, str]:
    tags = {
        "prefect.flow_name": flow_obj.name,
        "prefect.flow_run_id": str(flow_run.id),
        "prefect.flow_run_name": flow_run.name,
        "prefect.tags": json.dumps(sorted(flow_run.tags or [])),
    }
    if flow_run.deployment_id is not None:
        tags["prefect.deployment_id"] = str(flow_run.deployment_id)
        name = _deployment_name()
        if name:
            tags["prefect.deployment_name"] = name
    if flow_run.deployment_id is not None or flow_run.auto_scheduled:
        if flow_run.expected_start_time is not None:
            tags["prefect.scheduled_start_time"] = flow_run.expected_start_time.isoformat()
        tags["prefect.auto_scheduled"] = str(bool(flow_run.auto_scheduled)).lower()
    ui_url = _ui_url(flow_run)
    if ui_url:
        tags["prefect.ui_url"] = ui_url
    return tags


def _deployment_name() -> str | None:
    try:
        from prefect.runtime import deployment

        return deployment.name
    except Exception:
        return None


def _ui_url(flow_run: Any) -> str | None:
    """The flow run's page in the Prefect UI, when the API serves one."""
    from prefect.utilities.urls import url_for

    try:
        return url_for(flow_run)
    except Exception:
        return None


def _parent_from_prefect(client: Any, flow_run: Any) -> Any:
    """A subflow whose caller's context did not travel: find the caller through the API."""
    if flow_run.parent_task_run_id is None:
        return None
    direct = run_exists(client, flow_run.parent_task_run_id.hex)
    if direct is not None:
        return direct
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as api:
            parent_task = api.read_task_run(flow_run.parent_task_run_id)
        for caller in (parent_task.task_inputs or {}).get("__parents__", []):
            run = run_exists(client, caller.id.hex)
            if run is not None:
                return run
        if parent_task.flow_run_id is not None:
            return run_exists(client, parent_task.flow_run_id.hex)
    except Exception:
        return None
    return None


def _mark_killed(flow_obj: Any, flow_run: Any, state: Any) -> None:
    """on_crashed / on_cancellation hook: the flow's run, and its unfinished children, KILLED."""
    client = fluent.current_client()
    run_ids = [flow_run.id.hex]
    run = run_exists(client, flow_run.id.hex)
    if run is None:
        return
    children = client.search_runs(
        [run.info.experiment_id],
        f"tags.`prefect.flow_run_id` = '{flow_run.id}' and attributes.status = 'RUNNING'",
    )
    run_ids += [child.info.run_id for child in children]
    for run_id in run_ids:
        current = client.get_run(run_id)
        if current.info.status == RunStatus.RUNNING.name:
            client.log_batch(run_id, tags=[RunTag(STATE_TAG, state.name)])
            client.set_terminated(run_id, RunStatus.KILLED.name)
