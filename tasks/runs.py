"""One tracking run per Prefect execution: open, make active, close; shared by @task and @flow."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from tasks.capture import metrics_from_result, params_from_arguments
from tracking import config, data, fluent, journal, processes, system_tags, write_behind
from tracking.client import TrackingClient
from tracking.entities import Metric, Param, Run, RunData, RunStatus, RunTag, new_run_info, now_ms
from tracking.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    NotFoundError,
    TrackingError,
)
from tracking.journal import RunCreation, RunRecord

ON_ERROR_ENV = "TRACKFLOW_ON_ERROR"
DURATION_METRIC = "trackflow.duration_seconds"
ERROR_TYPE_TAG = "trackflow.error.type"
ERROR_MESSAGE_TAG = "trackflow.error.message"
ATTEMPTS_TAG = "prefect.attempts"

OnError = Literal["raise", "warn"]
T = TypeVar("T")


class TrackingFailedError(TrackingError):
    """The tracking store failed while a task or flow was being tracked."""


def on_error_mode(option: str | None) -> OnError:
    """The decorator option, else $TRACKFLOW_ON_ERROR, else "raise"."""
    mode = (option or os.environ.get(ON_ERROR_ENV) or "raise").strip().lower()
    if mode not in ("raise", "warn"):
        raise ValueError(
            f"on_tracking_error / {ON_ERROR_ENV} must be 'raise' or 'warn', got {mode!r}"
        )
    return mode  # type: ignore[return-value]  # checked just above: "raise" or "warn"


@dataclass
class CaptureOptions:
    """What a decorator records besides the run itself."""

    log_params: bool | list[str] = True
    exclude_params: tuple[str, ...] = ()
    log_metrics: bool = True
    log_result: bool = False
    run_tags: dict[str, str] = field(default_factory=dict)
    on_error: str | None = None
    autolog: bool = False  # sklearn autologging into this run while the body runs
    log_inputs: bool = False  # DataFrame/ndarray arguments recorded as dataset inputs

    @classmethod
    def build(
        cls,
        log_params: bool | list[str] | tuple[str, ...] = True,
        exclude_params: list[str] | tuple[str, ...] = (),
        log_metrics: bool = True,
        log_result: bool = False,
        run_tags: Mapping[str, Any] | None = None,
        on_tracking_error: str | None = None,
        autolog: bool = False,
        log_inputs: bool = False,
    ) -> CaptureOptions:
        if on_tracking_error is not None:
            on_error_mode(on_tracking_error)
        keep = list(log_params) if isinstance(log_params, (list, tuple)) else bool(log_params)
        return cls(
            log_params=keep,
            exclude_params=tuple(exclude_params),
            log_metrics=log_metrics,
            log_result=log_result,
            run_tags={str(k): str(v) for k, v in (run_tags or {}).items()},
            on_error=on_tracking_error,
            autolog=bool(autolog),
            log_inputs=bool(log_inputs),
        )


def _always(action: Callable[[], Any]) -> Callable[[], Any]:
    """`action` as it is (the counterpart of TrackedRun._unless_over)."""
    return action


class TrackedRun:
    """A run opened for one execution; every store call goes through `guard`.

    A deferred run (a task run inside a tracked run of this process) queues its store calls
    on tracking.write_behind, and everything it writes once the body has returned goes into
    one `RunRecord` appended to the process's journal first (tracking.journal), so it survives
    the process. A run that is not deferred waits for the queue before it ends and fails with
    the first tracking error a deferred run recorded there.
    """

    def __init__(
        self,
        client: TrackingClient,
        run: Run,
        options: CaptureOptions,
        label: str,
        name: str,
        owns_run: bool = True,
        deferred: bool = False,
        creation: RunCreation | None = None,
    ) -> None:
        self.client = client
        self.run = run
        self.options = options
        self.label = label
        self.name = name
        self.owns_run = owns_run
        self.deferred = deferred
        self.mode = on_error_mode(options.on_error)
        self.disabled = False
        self.started = time.time()
        # A deferred run's writes from the end of its body: replayable from the journal.
        self.record = RunRecord(run.info.run_id, creation) if deferred else None
        self.written = False  # the queued start (creation, params) is in the store
        # Decided by the first queued start step: True when the run was over by then (the
        # record creates it whole), False when the start is written; None before.
        self.coalesced: bool | None = None

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    def guard(self, what: str, action: Callable[[], Any]) -> None:
        """Run a store call now, or queue it when deferred; on failure raise a clear error or
        warn, as configured (a queued call's error is raised where the queue is waited for)."""
        if self.disabled:
            return
        if self.deferred:
            write_behind.submit(lambda: self._guarded(what, action))
        else:
            self._guarded(what, action)

    def _guarded(self, what: str, action: Callable[[], T]) -> T | None:
        if self.disabled:
            return None
        try:
            return action()
        except Exception as e:
            self._failed(what, e)
            return None

    def _deferred_error(self) -> BaseException | None:
        """Wait for queued writes (unless this run is deferred itself); the first error."""
        if self.deferred:
            return None
        write_behind.flush()
        errors = write_behind.take_errors()
        return errors[0] if errors else None

    def _failed(self, what: str, error: Exception) -> None:
        self.disabled = True
        if self.owns_run:
            _close_quietly(self.client, self.run_id)
        report(self.mode, self.label, what, error)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make this run the fluent API's active run inside the block (and, with the autolog
        option, autolog scikit-learn fits into it, in this context only)."""
        with fluent.use_run(self.run), self._autolog():
            yield

    def _autolog(self) -> contextlib.AbstractContextManager[None]:
        """Every installed flavor's autologging (tracking.models.flavors), into this run."""
        if not self.options.autolog or self.disabled:
            return contextlib.nullcontext()
        from tracking.models.flavors import scoped_autolog

        return scoped_autolog(self.run_id)

    def log_params(
        self,
        arguments: Mapping[str, Any],
        wrap: Callable[[Callable[[], Any]], Callable[[], Any]] = _always,
    ) -> None:
        params = params_from_arguments(
            arguments, self.options.log_params, self.options.exclude_params
        )
        if not params:
            return
        if not self.owns_run:  # logging into the enclosing run: keep tasks apart by name
            params = {f"{self.name}.{k}": v for k, v in params.items()}
        if self.record is not None:
            self.record.params.update(params)
        batch = [Param(k, v) for k, v in params.items()]

        def log() -> None:
            try:
                self.client.log_batch(self.run_id, params=batch)
            except InvalidParameterError as e:
                if self.owns_run:
                    raise
                # A second call into a shared run with other values must not fail the task.
                warnings.warn(f"{self.label}: params not logged: {e}", stacklevel=2)

        self.guard("logging params", wrap(log))

    def start(self, arguments: Mapping[str, Any]) -> None:
        """Write the run's beginning: create it (a planned run), log its params and, with
        log_inputs, its dataset inputs. A planned run's start is queued; when the writer reaches
        it after the body has returned (the record holds the end), it is left to the record,
        which writes the run in one step (not with dataset inputs: they are not in the record)."""
        inputs = data.inputs_of(arguments) if self.options.log_inputs else []
        planned = self.record is not None and self.record.create is not None
        when = self._unless_over if planned and not inputs else _always
        if planned:
            self.guard("creating its run", when(self._create_planned))
        self.log_params(arguments, when)
        if inputs:
            self.guard(
                "logging dataset inputs", lambda: self.client.log_inputs(self.run_id, inputs)
            )
        if self.record is not None:
            self.guard("creating its run", when(self._mark_written))

    def _unless_over(self, action: Callable[[], Any]) -> Callable[[], Any]:
        """`action`, skipped when the run's record held its end as the first start step ran
        (the writer thread runs them all, in order)."""

        def unless_over() -> Any:
            if self.coalesced is None:  # the first start step decides for all of them
                self.coalesced = self.record is not None and self.record.status is not None
            return None if self.coalesced else action()

        return unless_over

    def _create_planned(self) -> None:
        assert self.record is not None and self.record.create is not None
        creation = self.record.create
        self.client.create_run(
            creation.experiment_id, creation.start_time, creation.tags, creation.run_name,
            self.run_id,
        )  # fmt: skip

    def set_tag(self, key: str, value: str) -> None:
        """Tag the run: a deferred run's tag joins its record (a queued action runs before the
        record is written), any other run's is written now."""
        if self.record is not None:
            self.record.tags[key] = value
        else:
            self.client.set_tag(self.run_id, key, value)

    def _mark_written(self) -> None:
        self.written = True  # not reached when a queued start step failed (guard)

    def finish(self, result: Any) -> None:
        """Record metrics from the return value (and the result artifact); end FINISHED."""
        error = self._deferred_error()
        if error is not None:
            self.fail(error)
            raise error
        now = now_ms()
        metrics = []
        if self.owns_run:
            metrics.append(Metric(DURATION_METRIC, time.time() - self.started, now, 0))
        if self.options.log_metrics:
            captured = metrics_from_result(self.name, result)
            metrics += [Metric(k, v, now, 0) for k, v in captured.items()]
        if self.options.log_result:
            self._guarded("storing the result", lambda: self._log_result(result))
        if self.record is not None:
            self.record.metrics += metrics
            self._end_record(RunStatus.FINISHED if self.owns_run else None)
            return
        if metrics:
            self.guard("logging metrics", lambda: self.client.log_batch(self.run_id, metrics))
        self.end(RunStatus.FINISHED)

    def _log_result(self, result: Any) -> None:
        """Store the return value as it is now, once the run exists (its queued creation is
        written first: the file store refuses to create a run whose folder exists)."""
        name, content = _result_artifact(result)
        write_behind.flush()
        self.client.artifact_repo_at(self.run.info.artifact_uri).write_bytes(name, content)

    def fail(self, error: BaseException) -> None:
        """Record the error in tags and end FAILED (KILLED for interrupts)."""
        if not self.owns_run:
            return
        pending = self._deferred_error()
        if pending is not None and pending is not error:
            warnings.warn(str(pending), stacklevel=2)
        status = RunStatus.KILLED if _is_interrupt(error) else RunStatus.FAILED
        message = str(error) or repr(error)
        tags = [
            RunTag(ERROR_TYPE_TAG, type(error).__name__),
            RunTag(ERROR_MESSAGE_TAG, message[:8000]),
        ]
        now = now_ms()
        metric = Metric(DURATION_METRIC, time.time() - self.started, now, 0)
        if self.record is not None:
            self.record.metrics.append(metric)
            self.record.tags.update({t.key: t.value for t in tags})
            self._end_record(status)
            return
        self.guard(
            "recording the failure",
            lambda: self.client.log_batch(self.run_id, [metric], tags=tags),
        )
        self.end(status)

    def end(self, status: RunStatus) -> None:
        if not self.owns_run:
            return
        if self.record is not None:
            self._end_record(status)
            return
        end_time = now_ms()
        self.guard(
            "ending the run",
            lambda: self.client.set_terminated(self.run_id, status.name, end_time),
        )

    def _end_record(self, status: RunStatus | None) -> None:
        """Make the record durable (journal), then queue it; written synchronously when no
        journal can be kept (e.g. a full disk)."""
        record = self.record
        assert record is not None
        if status is not None:
            record.status, record.end_time = status.name, now_ms()
        log = journal.journal_for(self.client.tracking_uri)
        if log is not None:
            try:
                write_behind.submit_durable(log, record.to_line(), self._write_record)
                return
            except OSError as e:
                warnings.warn(f"{self.label}: journal not written ({e}); writing now", stacklevel=3)
        write_behind.flush()
        self._write_record()

    def _write_record(self) -> bool:
        """Apply the record; True once it is in the store."""
        assert self.record is not None
        try:
            if self.coalesced:
                self.record.create_ended(self.client.store)
            else:
                self.record.apply(self.client.store, created=self.written)
        except Exception as e:
            self._failed("writing its run", e)
            return False
        return True


def _is_interrupt(error: BaseException) -> bool:
    """Ctrl-C, SystemExit, or SIGTERM (Prefect raises TerminationSignal): the run is KILLED."""
    from prefect.exceptions import TerminationSignal

    return isinstance(error, (KeyboardInterrupt, SystemExit, TerminationSignal))


def report(mode: OnError, label: str, what: str, error: Exception) -> None:
    message = (
        f"Tracking {label} failed while {what}: {type(error).__name__}: {error}. "
        f"Tracking URI: {config.get_tracking_uri()}. Set {ON_ERROR_ENV}=warn (or "
        "on_tracking_error='warn') to let the pipeline run on without tracking."
    )
    if mode == "warn":
        warnings.warn(message, stacklevel=4)
        return
    raise TrackingFailedError(message) from error


def _close_quietly(client: TrackingClient, run_id: str) -> None:
    """Leave no run RUNNING after a failure, when the store still answers."""
    try:
        if client.get_run(run_id).info.status == RunStatus.RUNNING.name:
            client.set_terminated(run_id, RunStatus.FAILED.name)
    except Exception:
        pass


def _result_artifact(result: Any) -> tuple[str, bytes]:
    """(file name, content): result.json when the value serialises to JSON, else result.pkl.
    Serialised when the body returns, so later changes to the object are not stored."""
    try:
        return "result.json", json.dumps(result, indent=2).encode("utf-8")
    except (TypeError, ValueError):
        return "result.pkl", pickle.dumps(result)


def open_run(
    *,
    label: str,
    options: CaptureOptions,
    run_id: str,
    run_name: str,
    experiment_id: Callable[[], str],
    parent_run_id: str | None,
    tags: dict[str, str],
    attempt: int,
    name: str,
    defer_under: Run | None = None,
) -> TrackedRun | None:
    """Create the run with Prefect's id, or resume it on a retry; None if tracking is off.

    With `defer_under` (the enclosing run of this process), a first attempt's run is built in
    memory and created, like all its later writes, by tracking.write_behind, when the store is
    known to create runs under the ids asked for (MLflow's server picks its own)."""
    mode = on_error_mode(options.on_error)
    try:
        client = fluent.current_client()
    except Exception as e:
        report(mode, label, "opening the tracking store", e)
        return None
    all_tags = {**tags, **options.run_tags, processes.PROCESS_TAG: processes.current().tag_value()}
    if attempt > 1:
        all_tags[ATTEMPTS_TAG] = str(attempt)
    if parent_run_id:
        all_tags[system_tags.PARENT_RUN_ID] = parent_run_id
    planned = None
    if attempt == 1 and client.store.keeps_requested_run_ids:
        planned = _planned_run(defer_under, run_id, run_name, all_tags)
    if planned is not None:
        info = planned.info
        assert info.start_time is not None  # _planned_run sets it
        creation = RunCreation(
            info.experiment_id, run_name, info.user_id, info.start_time, all_tags
        )
        return TrackedRun(client, planned, options, label, name, deferred=True, creation=creation)
    try:
        run = _create_or_resume(client, run_id, run_name, experiment_id, all_tags, attempt)
    except Exception as e:
        _close_quietly(client, run_id)
        report(mode, label, "creating its run", e)
        return None
    return TrackedRun(client, run, options, label, name)


def _planned_run(
    parent: Run | None, run_id: str, run_name: str, tags: dict[str, str]
) -> Run | None:
    """The run the store will create in `parent`'s experiment; None without a parent or when
    the artifact URI cannot be derived from the parent's (`<location>/<run id>/artifacts`)."""
    if parent is None:
        return None
    uri = parent.info.artifact_uri
    location = uri.removesuffix(f"/{parent.info.run_id}/artifacts")
    if location == uri:
        return None
    tags = {**tags, system_tags.RUN_NAME: run_name}
    user = tags.get(system_tags.USER) or system_tags.current_user()
    start_time = now_ms()
    info = new_run_info(run_id, parent.info.experiment_id, run_name, user, start_time, location)
    return Run(info, RunData(tags=tags))


def _create_or_resume(
    client: TrackingClient,
    run_id: str,
    run_name: str,
    experiment_id: Callable[[], str],
    tags: dict[str, str],
    attempt: int,
) -> Run:
    tags[system_tags.RUN_NAME] = run_name
    try:
        return client.create_run(experiment_id(), tags=tags, run_name=run_name, run_id=run_id)
    except AlreadyExistsError:  # a retry of the same Prefect run: resume its tracking run
        process = tags[processes.PROCESS_TAG]
        resumed = [RunTag(ATTEMPTS_TAG, str(attempt)), RunTag(processes.PROCESS_TAG, process)]
        client.log_batch(run_id, tags=resumed)
        client.update_run(run_id, RunStatus.RUNNING.name)
        return client.get_run(run_id)


def run_exists(client: TrackingClient, run_id: str) -> Run | None:
    try:
        return client.get_run(run_id)
    except (NotFoundError, TrackingError):
        return None
