"""Copy experiments and runs between tracking stores (`trackflow migrate --from SRC --to DST`).

Any store to any store: file <-> SQLite <-> PostgreSQL. What is copied:

* experiments (ALL lifecycle stages), matched by name in the target: an existing one of the same
  name is reused, the source's Default ("0") maps to the target's Default. New ones are created
  with the SOURCE's artifact_location, so every copied run reports the same artifact_uri as in the
  source (stores derive it as ``<artifact_location>/<run_id>/artifacts``). Artifacts themselves
  are not copied: they stay where they are, which is why the URIs are kept.
* runs (ALL lifecycle stages) with their id, name, user, start time, status, end time and
  lifecycle; params, tags and the FULL history of every metric (log_batch, within MLflow's
  per-request limits).

Deleted things keep their restore semantics. Stores refuse to log to deleted runs or to create runs
in deleted experiments, so a run is created, filled, ended, then deleted; a deleted experiment is
created, filled, then deleted. Restoring an experiment brings back only the runs its deletion
deleted (their deleted_time equals the experiment's last_update_time), so the runs the source
deleted one by one are deleted one by one in the target, and the runs the source deleted with
their experiment are left to the target's experiment deletion.

Rerunning is safe: experiments are matched by name, a run whose id exists in the target is
compared with the source and skipped, or topped up when the target holds only part of it (an
interrupted migration): missing params and tags, the metric points the target lacks, the
status and end time, and a pending deletion are filled in.

Any store Trackflow reads is a source, MLflow's own too (its file stores and SQL databases). A
SQL database at a schema revision Trackflow does not write (a newer MLflow's) is read without
being written to, when its tracking tables have the columns Trackflow reads.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracking import stores
from tracking.config import redact_uri
from tracking.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from tracking.errors import (
    AlreadyExistsError,
    NotFoundError,
    TrackingError,
    UnsupportedSchemaError,
)
from tracking.stores.base import SEARCH_MAX_RESULTS_THRESHOLD, TrackingStore, batches

DEFAULT_EXPERIMENT_ID = "0"
RUN_NAME_TAG = "mlflow.runName"


class MigrationError(TrackingError):
    """The migration cannot start (bad or unreachable URI, same store) or stopped midway."""


@dataclass
class MigrationReport:
    """What one `migrate` call did; rerunning a finished migration copies nothing."""

    source_uri: str
    target_uri: str
    #: experiments created in the target / matched to one already there (by name, Default by id)
    experiments_copied: int = 0
    experiments_skipped: int = 0
    #: runs created in the target / already there and identical / already there but incomplete
    runs_copied: int = 0
    runs_skipped: int = 0
    runs_topped_up: int = 0
    metric_points_copied: int = 0
    params_copied: int = 0
    tags_copied: int = 0
    #: source experiment id -> target experiment id
    experiment_ids: dict[str, str] = field(default_factory=dict)
    #: things copied differently or left alone (e.g. artifact URIs that could not be kept)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def experiments_total(self) -> int:
        return self.experiments_copied + self.experiments_skipped

    @property
    def runs_total(self) -> int:
        return self.runs_copied + self.runs_skipped + self.runs_topped_up

    def summary_rows(self) -> list[tuple[str, str]]:
        """(what, count) rows for the CLI's summary table."""
        return [
            ("experiments copied", str(self.experiments_copied)),
            ("experiments already in target (skipped)", str(self.experiments_skipped)),
            ("runs copied", str(self.runs_copied)),
            ("runs already in target (skipped)", str(self.runs_skipped)),
            ("runs topped up", str(self.runs_topped_up)),
            ("metric points copied", str(self.metric_points_copied)),
            ("params copied", str(self.params_copied)),
            ("tags copied", str(self.tags_copied)),
            ("warnings", str(len(self.warnings))),
            ("seconds", f"{self.seconds:.1f}"),
        ]


# --- URIs and opening stores --------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text.removeprefix("(psycopg.OperationalError) ")


def _open_error(role: str, uri: str, error: BaseException) -> MigrationError:
    return MigrationError(f"Cannot open {role} store {redact_uri(uri)!r}: {_one_line(error)}")


def _check_source_exists(uri: str) -> None:
    """Refuse a source that is not there: opening a store would create an empty one."""
    try:
        stores.check_holds_store(uri)
    except NotFoundError as e:
        raise MigrationError(f"Source store {e}") from None
    except Exception as e:
        raise _open_error("source", uri, e) from e


def _open(uri: str, role: str, artifact_root: str | None = None) -> TrackingStore:
    """A private store instance (closed at the end), every failure as one line naming the URI."""
    scheme = stores.uri_scheme(uri)
    if scheme == "sqlite" and stores.sqlite_path(uri) is None:
        raise MigrationError(f"{role.capitalize()} store {uri!r}: in-memory databases do not last")
    try:
        try:
            return stores.open_store(uri, artifact_root)
        except UnsupportedSchemaError:
            if role != "source":
                raise
            # e.g. a newer MLflow's database: copied out if it can be read, never written to
            return stores.open_store(uri, for_reading=True)
    except Exception as e:
        raise _open_error(role, uri, e) from e


def _target_artifact_root(source: TrackingStore) -> str | None:
    """Artifact root that gives a NEW target's Default experiment the source's location.

    A store creates its Default experiment when first opened, under its artifact root; opening the
    target with the root of the source's Default keeps the artifact URIs of the Default's runs.
    An existing target keeps its Default (a warning says so if the locations differ).
    """
    with contextlib.suppress(TrackingError):
        location = source.get_experiment(DEFAULT_EXPERIMENT_ID).artifact_location.rstrip("/")
        if location.endswith("/" + DEFAULT_EXPERIMENT_ID):
            return location[: -len(DEFAULT_EXPERIMENT_ID) - 1]
    return os.environ.get(stores.ARTIFACT_ROOT_ENV) or None


# --- the migration ------------------------------------------------------------------------------
def migrate(source_uri: str, target_uri: str, progress: bool = True) -> MigrationReport:
    """Copy every experiment and run of `source_uri` into `target_uri`; safe to rerun.

    Raises MigrationError (a TrackingError) naming the URI when a store cannot be opened, when
    both URIs are the same store, or when a run cannot be copied (rerun to resume).
    """
    started = time.monotonic()
    if stores.store_identity(source_uri) == stores.store_identity(target_uri):
        raise MigrationError(
            f"Source and target are the same store ({redact_uri(source_uri)!r}"
            + (f" and {redact_uri(target_uri)!r})" if source_uri != target_uri else ")")
        )
    _check_source_exists(source_uri)
    report = MigrationReport(redact_uri(source_uri), redact_uri(target_uri))
    source = _open(source_uri, "source")
    try:
        target = _open(target_uri, "target", _target_artifact_root(source))
        try:
            _Migration(source, target, report).run(progress)
        finally:
            target.close()
    finally:
        source.close()
    report.seconds = time.monotonic() - started
    return report


def _point(metric: Metric) -> tuple[int, int, float | str]:
    """A metric point as a comparable value (NaN equals NaN)."""
    value = metric.value
    return (metric.step, metric.timestamp, "nan" if math.isnan(value) else value)


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Migration:
    def __init__(self, source: TrackingStore, target: TrackingStore, report: MigrationReport):
        self.source = source
        self.target = target
        self.report = report

    def warn(self, message: str) -> None:
        self.report.warnings.append(message)

    # --- reading the source -------------------------------------------------------------------
    def _experiments(self) -> list[Experiment]:
        found: list[Experiment] = []
        token = None
        while True:
            page = self.source.search_experiments(
                ViewType.ALL, SEARCH_MAX_RESULTS_THRESHOLD, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        # Default first, then in creation order (SQL targets number them in that order).
        return sorted(
            found,
            key=lambda e: (e.experiment_id != DEFAULT_EXPERIMENT_ID, e.creation_time or 0, e.name),
        )

    def _runs(self, experiment_id: str) -> list[Run]:
        found: list[Run] = []
        token = None
        while True:
            page = self.source.search_runs(
                [experiment_id],
                None,
                ViewType.ALL,
                SEARCH_MAX_RESULTS_THRESHOLD,
                page_token=token,
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        return sorted(found, key=lambda r: (r.info.start_time or 0, r.info.run_id))

    # --- top level ----------------------------------------------------------------------------
    def run(self, progress: bool) -> None:
        plan = [(e, self._runs(e.experiment_id)) for e in self._experiments()]
        total = sum(len(runs) for _, runs in plan)
        with _Progress(total, progress, self.report) as bar:
            for experiment, runs in plan:
                bar.describe(experiment.name)
                self._experiment(experiment, runs, bar)

    # --- experiments --------------------------------------------------------------------------
    def _target_experiment(self, src: Experiment) -> tuple[Experiment, bool]:
        """The target experiment for `src` and whether it was created now."""
        found = None
        if src.experiment_id == DEFAULT_EXPERIMENT_ID:
            with contextlib.suppress(NotFoundError):
                found = self.target.get_experiment(DEFAULT_EXPERIMENT_ID)
        if found is None:
            found = self.target.get_experiment_by_name(src.name)
        if found is None:
            with contextlib.suppress(AlreadyExistsError):  # created meanwhile: reuse it
                new_id = self.target.create_experiment(
                    src.name, src.artifact_location or None, dict(src.tags)
                )
                self.report.experiments_copied += 1
                return self.target.get_experiment(new_id), True
            found = self.target.get_experiment_by_name(src.name)
            assert found is not None
        self.report.experiments_skipped += 1
        for key, value in sorted(src.tags.items()):
            if key not in found.tags:
                self.target.set_experiment_tag(found.experiment_id, RunTag(key, value))
            elif found.tags[key] != value:
                self.warn(
                    f"experiment {src.name!r}: tag {key!r} differs in the target; kept the "
                    "target's value"
                )
        return self.target.get_experiment(found.experiment_id), False

    def _experiment(self, src: Experiment, runs: list[Run], bar: _Progress) -> None:
        dst, created = self._target_experiment(src)
        self.report.experiment_ids[src.experiment_id] = dst.experiment_id
        is_default = dst.experiment_id == DEFAULT_EXPERIMENT_ID
        if runs and dst.artifact_location.rstrip("/") != src.artifact_location.rstrip("/"):
            self.warn(
                f"experiment {src.name!r}: the target's artifact location "
                f"{dst.artifact_location!r} differs from the source's {src.artifact_location!r}; "
                "new runs there report artifact URIs under the target's location"
            )
        # Mirror the source's lifecycle on experiments this migration made (now or in an earlier,
        # interrupted run: same artifact location); leave a pre-existing experiment as it was.
        mirror = created or (
            not is_default
            and dst.artifact_location.rstrip("/") == src.artifact_location.rstrip("/")
        )
        source_deleted = src.lifecycle_stage == LifecycleStage.DELETED
        target_deleted = dst.lifecycle_stage == LifecycleStage.DELETED
        want_deleted = not is_default and (source_deleted if mirror else target_deleted)

        existing = {r.info.run_id: self._target_run(r.info.run_id) for r in runs}
        missing = any(run is None for run in existing.values())
        if target_deleted and (missing or not want_deleted):
            self.target.restore_experiment(dst.experiment_id)  # runs cannot be made in the trash
            target_deleted = False
            existing = {i: self._target_run(i) if r else None for i, r in existing.items()}

        cascaded = self._cascaded_runs(src, runs) if want_deleted and source_deleted else set()
        last_delete: int | None = None
        for run in runs:
            run_id = run.info.run_id
            try:
                deleted = self._run(run, existing[run_id], dst, run_id in cascaded)
            except TrackingError as e:
                raise MigrationError(
                    f"Copying run {run_id} of experiment {src.name!r} failed: {e}. "
                    "Rerun the migration to resume (runs already copied are skipped)"
                ) from e
            if deleted:
                last_delete = _now_ms()
            bar.advance()

        if want_deleted and not target_deleted:
            if last_delete is not None:  # keep one-by-one deletions apart from the cascade's
                while _now_ms() <= last_delete:
                    time.sleep(0.001)
            self.target.delete_experiment(dst.experiment_id)

    def _cascaded_runs(self, src: Experiment, runs: list[Run]) -> set[str]:
        """Source runs deleted by their experiment's deletion (those its restore brings back)."""
        found = set()
        for run in runs:
            if run.info.lifecycle_stage != LifecycleStage.DELETED:
                continue
            deleted_time = self.source.deleted_time(run.info.run_id)
            if deleted_time is None or deleted_time == src.last_update_time:
                found.add(run.info.run_id)
        return found

    def _target_run(self, run_id: str) -> Run | None:
        try:
            return self.target.get_run(run_id)
        except NotFoundError:
            return None

    # --- runs ---------------------------------------------------------------------------------
    def _run(self, src: Run, dst: Run | None, experiment: Experiment, cascaded: bool) -> bool:
        """Copy or top up one run; True if it was deleted one by one in the target."""
        if dst is None:
            return self._copy(src, experiment.experiment_id, cascaded)
        if dst.info.experiment_id != experiment.experiment_id:
            self.warn(
                f"run {src.info.run_id}: exists in another target experiment "
                f"({dst.info.experiment_id}); left alone"
            )
            self.report.runs_skipped += 1
            return False
        return self._top_up(src, dst, cascaded)

    def _copy(self, src: Run, experiment_id: str, cascaded: bool) -> bool:
        info, data = src.info, src.data
        name_tag = data.tags.get(RUN_NAME_TAG)
        self.target.create_run(
            experiment_id,
            info.user_id,
            info.start_time,  # type: ignore[arg-type]  # None is kept as None
            [RunTag(RUN_NAME_TAG, name_tag)] if name_tag is not None else [],
            info.run_name,
            run_id=info.run_id,
        )
        if name_tag is None and info.run_name:  # create_run adds it; the source has none
            self.target.delete_tag(info.run_id, RUN_NAME_TAG)
        params = [Param(k, v) for k, v in sorted(data.params.items())]
        tags = [RunTag(k, v) for k, v in sorted(data.tags.items()) if k != RUN_NAME_TAG]
        histories = (
            self.source.get_metric_history(info.run_id, key) for key in sorted(data.metrics)
        )
        self._log(info.run_id, itertools.chain.from_iterable(histories), params, tags)
        if info.status != RunStatus.RUNNING.name or info.end_time is not None:
            self.target.update_run_info(info.run_id, info.status, info.end_time)
        self.report.runs_copied += 1
        if info.lifecycle_stage == LifecycleStage.DELETED and not cascaded:
            self.target.delete_run(info.run_id)
            return True
        return False

    def _top_up(self, src: Run, dst: Run, cascaded: bool) -> bool:
        """Fill in what an existing target run lacks; count it skipped if it lacks nothing."""
        run_id = src.info.run_id
        for name in ("user_id", "start_time", "artifact_uri"):
            if getattr(src.info, name) != getattr(dst.info, name):
                self.warn(f"run {run_id}: {name} differs in the target; it cannot be changed")
        params = []
        for key, value in sorted(src.data.params.items()):
            if key not in dst.data.params:
                params.append(Param(key, value))
            elif dst.data.params[key] != value:
                self.warn(f"run {run_id}: param {key!r} differs in the target; params are final")
        tags = [RunTag(k, v) for k, v in sorted(src.data.tags.items()) if dst.data.tags.get(k) != v]
        metrics: list[Metric] = []
        for key in sorted(src.data.metrics):
            history = self.source.get_metric_history(run_id, key)
            have = self.target.get_metric_history(run_id, key) if key in dst.data.metrics else []
            # Points compared as a set: stores order histories differently (SQL by time and
            # step, files as logged) and MLflow's SQL schema keeps a point logged twice once.
            present = {_point(m) for m in have}
            metrics.extend(m for m in history if _point(m) not in present)
            if present - {_point(m) for m in history}:
                self.warn(f"run {run_id}: metric {key!r} has points in the target the source lacks")
        active = dst.info.lifecycle_stage == LifecycleStage.ACTIVE
        changed = False
        if params or tags or metrics:
            if active:
                self._log(run_id, metrics, params, tags)
                changed = True
            else:
                self.warn(f"run {run_id}: deleted in the target and incomplete; left alone")
        if src.info.end_time is None and dst.info.end_time is not None:
            self.warn(f"run {run_id}: has an end time in the target only; it cannot be removed")
        end_time = src.info.end_time if src.info.end_time != dst.info.end_time else None
        if src.info.status != dst.info.status or end_time is not None:
            if active:
                self.target.update_run_info(run_id, src.info.status, end_time)
                changed = True
            else:
                self.warn(f"run {run_id}: deleted in the target with another status; left alone")
        deleted = False
        if src.info.lifecycle_stage != dst.info.lifecycle_stage:
            if src.info.lifecycle_stage == LifecycleStage.DELETED:
                if not cascaded:  # a cascaded one is deleted with its experiment, at the end
                    self.target.delete_run(run_id)
                    deleted = changed = True
            else:
                self.warn(f"run {run_id}: deleted in the target but not in the source; left alone")
        if changed:
            self.report.runs_topped_up += 1
        else:
            self.report.runs_skipped += 1
        return deleted

    def _log(
        self, run_id: str, metrics: Iterable[Metric], params: list[Param], tags: list[RunTag]
    ) -> None:
        """log_batch in chunks within MLflow's limits; params and tags go first."""
        for chunk_m, chunk_p, chunk_t in batches(metrics, params, tags):
            self.target.log_batch(run_id, chunk_m, chunk_p, chunk_t)
            self.report.metric_points_copied += len(chunk_m)
            self.report.params_copied += len(chunk_p)
            self.report.tags_copied += len(chunk_t)


class _Progress:
    """A rich progress bar over runs (or nothing, with progress=False)."""

    def __init__(self, total: int, enabled: bool, report: MigrationReport) -> None:
        self.total = total
        self.report = report
        self.progress: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("runs"),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task("migrating", total=total, counts="")

    def __enter__(self) -> _Progress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self._update()
            self.progress.stop()

    def describe(self, experiment_name: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=experiment_name)

    def _update(self, advance: int = 0) -> None:
        r = self.report
        counts = (
            f"copied {r.runs_copied} · skipped {r.runs_skipped} · topped up {r.runs_topped_up}"
            f" · {r.metric_points_copied} points"
        )
        self.progress.update(self.task, advance=advance, counts=counts)

    def advance(self) -> None:
        if self.progress is not None:
            self._update(1)
