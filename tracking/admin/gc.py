"""``trackflow gc``: permanently remove deleted runs and experiments, as ``mlflow gc`` does.

Deleting a run or an experiment only marks it deleted (it can be restored). ``gc`` removes
runs in the deleted lifecycle stage for good: first their artifacts, then their metadata (the
run folder of a file store, the rows of a SQL store). A deleted experiment is removed too (its
``.trash/<id>`` folder or its row) once none of its runs are left.

    gc(uri)                                  every deleted run and experiment
    gc(uri, older_than="30d")                only those deleted more than 30 days ago
    gc(uri, run_ids=[...])                   just these runs (they must be deleted)
    gc(uri, experiment_ids=[...])            these deleted experiments and their deleted runs

Explicit ids are all checked before anything is removed. The stores remove the metadata
(``TrackingStore.hard_delete_run`` / ``hard_delete_experiment``: the file and SQL stores);
remote (REST) stores cannot be collected from a client: run gc against the server's backend
store.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from tracking.entities import Experiment, LifecycleStage, Run, ViewType, now_ms
from tracking.errors import (
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    TrackingError,
)
from tracking.progress import progress_bar
from tracking.stores import get_store
from tracking.stores.base import SEARCH_MAX_RESULTS_THRESHOLD, TrackingStore, all_pages, all_runs

__all__ = ["GcError", "GcReport", "gc", "parse_older_than"]

_DURATION = re.compile(
    r"^((?P<days>[.\d]+)d)?((?P<hours>[.\d]+)h)?((?P<minutes>[.\d]+)m)?((?P<seconds>[.\d]+)s)?$"
)
_DURATION_HELP = "#d#h#m#s, e.g. 30d, 12h, 1d12h, 90m, 1.5d"


class GcError(TrackingError):
    """gc cannot run against this store (e.g. a REST tracking server)."""


def parse_older_than(text: str) -> int:
    """'30d', '1d12h', '90m', '1.5d' ... as milliseconds."""
    match = _DURATION.match(text.strip()) if text else None
    if match is None or not any(match.groupdict().values()):
        raise InvalidParameterError(f"Invalid --older-than {text!r}: use {_DURATION_HELP}")
    try:
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
    except ValueError:
        raise InvalidParameterError(
            f"Invalid --older-than {text!r}: use {_DURATION_HELP}"
        ) from None
    return int(timedelta(**parts).total_seconds() * 1000)


# --- report ----------------------------------------------------------------------------------
@dataclass
class RemovedRun:
    run_id: str
    experiment_id: str
    run_name: str
    deleted_time: int | None
    artifact_uri: str


@dataclass
class GcReport:
    """What gc removed (or, with dry_run, would remove)."""

    tracking_uri: str
    dry_run: bool = False
    runs: list[RemovedRun] = field(default_factory=list)
    artifact_folders: int = 0
    experiments: list[Experiment] = field(default_factory=list)
    kept_experiments: list[tuple[Experiment, int]] = field(default_factory=list)
    skipped_runs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary_rows(self) -> list[tuple[str, str]]:
        verb = "to remove" if self.dry_run else "removed"
        rows = [
            (f"runs {verb}", str(len(self.runs))),
            (f"artifact locations {verb}", str(self.artifact_folders)),
            (f"experiments {verb}", str(len(self.experiments))),
        ]
        if self.kept_experiments:
            rows.append(("deleted experiments kept (runs left)", str(len(self.kept_experiments))))
        if self.skipped_runs:
            rows.append(("runs skipped", str(len(self.skipped_runs))))
        if self.warnings:
            rows.append(("warnings", str(len(self.warnings))))
        return rows


def _check_can_hard_delete(store: TrackingStore, uri: str) -> None:
    if not store.can_hard_delete:
        raise GcError(
            f"gc cannot hard-delete runs in {type(store).__name__} ({uri}): it needs direct "
            "access to the backend store. Run it where the store lives, e.g. "
            "trackflow gc --tracking-uri /path/to/mlruns (or sqlite:///..., postgresql://...)"
        )


# --- planning --------------------------------------------------------------------------------
def _experiments(store: TrackingStore, view: ViewType) -> list[Experiment]:
    return list(
        all_pages(
            lambda token: store.search_experiments(
                view, SEARCH_MAX_RESULTS_THRESHOLD, None, None, token
            )
        )
    )


def _deleted_runs(store: TrackingStore, experiment_ids: list[str]) -> list[Run]:
    if not experiment_ids:
        return []
    return list(all_runs(store, experiment_ids, "", ViewType.DELETED_ONLY))


def _split_ids(ids: Iterable[str] | None) -> list[str] | None:
    """Ids given as a list, comma-separated (mlflow gc style) or both; None when not given."""
    if ids is None:
        return None
    found = [part.strip() for item in ids for part in str(item).split(",") if part.strip()]
    return list(dict.fromkeys(found))


@dataclass
class _Plan:
    runs: list[tuple[Run, int | None]]
    experiments: list[Experiment]


def _plan(
    store: TrackingStore,
    threshold: int | None,
    older_than: str | None,
    run_ids: list[str] | None,
    experiment_ids: list[str] | None,
) -> _Plan:
    def old_enough(deleted_time: int | None) -> bool:
        # A run without deleted_time was deleted before the store recorded it: old (as MLflow).
        return threshold is None or deleted_time is None or deleted_time < threshold

    runs: dict[str, tuple[Run, int | None]] = {}
    problems: list[str] = []
    for run_id in run_ids or []:
        try:
            run = store.get_run(run_id)
        except NotFoundError:
            problems.append(f"run {run_id} does not exist")
            continue
        if run.info.lifecycle_stage != LifecycleStage.DELETED:
            problems.append(f"run {run_id} is not deleted (delete it first: trackflow runs delete)")
            continue
        deleted_time = store.deleted_time(run_id)
        if not old_enough(deleted_time):
            problems.append(f"run {run_id} was deleted less than {older_than} ago")
            continue
        runs[run_id] = (run, deleted_time)

    experiments: list[Experiment] = []
    for experiment_id in experiment_ids or []:
        try:
            experiment = store.get_experiment(experiment_id)
        except NotFoundError:
            problems.append(f"experiment {experiment_id} does not exist")
            continue
        if experiment.lifecycle_stage != LifecycleStage.DELETED:
            problems.append(
                f"experiment {experiment_id} ({experiment.name!r}) is not deleted "
                "(delete it first: trackflow experiments delete)"
            )
            continue
        if threshold is not None and not (
            experiment.last_update_time is not None and experiment.last_update_time < threshold
        ):
            problems.append(f"experiment {experiment_id} was deleted less than {older_than} ago")
            continue
        experiments.append(experiment)
    if problems:
        raise InvalidStateError("Nothing was removed: " + "; ".join(problems))

    if run_ids is None and experiment_ids is None:  # everything deleted (and old enough)
        experiments = [
            e
            for e in _experiments(store, ViewType.DELETED_ONLY)
            if threshold is None
            or (e.last_update_time is not None and e.last_update_time < threshold)
        ]
        scope = [e.experiment_id for e in _experiments(store, ViewType.ALL)]
    else:
        scope = [e.experiment_id for e in experiments]
    for run in _deleted_runs(store, scope):
        if run.info.run_id not in runs:
            deleted_time = store.deleted_time(run.info.run_id)
            if old_enough(deleted_time):
                runs[run.info.run_id] = (run, deleted_time)
    return _Plan(list(runs.values()), experiments)


# --- artifacts -------------------------------------------------------------------------------
def _artifact_repository(uri: str, artifacts_destination: str | None) -> Any:
    """The repository of a run's artifact URI; mlflow-artifacts:/ URIs map into
    `artifacts_destination` when given, else go through the current tracking server."""
    from tracking.artifacts import ArtifactRepository, resolve_uri

    if uri.startswith("mlflow-artifacts:") and artifacts_destination:
        from tracking.servers.api.security import safe_relative_path

        rel = safe_relative_path(urlsplit(uri).path.lstrip("/"), "artifact URI path")
        return ArtifactRepository(f"{resolve_uri(artifacts_destination).rstrip('/')}/{rel}")
    return ArtifactRepository(uri)


def _delete_artifacts(run: Run, artifacts_destination: str | None) -> tuple[bool, str | None]:
    """Delete a run's artifacts: (go on with its metadata?, warning)."""
    from tracking.uris import local_path

    uri = run.info.artifact_uri
    if not uri:
        return True, None
    proxied = uri.startswith("mlflow-artifacts:")
    try:
        repo = _artifact_repository(uri, artifacts_destination)
    except Exception as e:
        if proxied:  # resolvable with the right option: keep the run rather than orphan files
            return False, (
                f"run {run.info.run_id} kept: its artifacts at {uri} are kept by a tracking "
                "server; pass --artifacts-destination (the server's) or set "
                f"MLFLOW_TRACKING_URI to the server ({e})"
            )
        if isinstance(e, InvalidParameterError | ValueError | ImportError):
            # As mlflow gc: an unresolvable artifact URI does not keep the run forever.
            return True, f"artifacts of run {run.info.run_id} at {uri} were not removed: {e}"
        return False, f"run {run.info.run_id} kept: cannot reach its artifacts at {uri}: {e}"
    try:
        repo.delete_artifacts()
    except TrackingError as e:
        return False, f"run {run.info.run_id} kept: removing its artifacts at {uri} failed: {e}"
    root = repo.artifact_uri
    local = local_path(root)
    if local is not None:  # <location>/<run_id>/artifacts: drop the then empty <run_id> folder
        parent = os.path.dirname(local.rstrip("/"))
        if os.path.basename(parent) == run.info.run_id:
            with contextlib.suppress(OSError):
                os.rmdir(parent)
    return True, None


def _model_versions_by_run(tracking_uri: str) -> dict[str, list[str]]:
    """'name/version' of the registered versions made from each run (for a warning)."""
    try:
        from tracking.client import TrackingClient

        client = TrackingClient(tracking_uri)
        found: dict[str, list[str]] = {}
        for mv in all_pages(lambda token: client.search_model_versions(None, 10_000, None, token)):
            if mv.run_id:
                found.setdefault(mv.run_id, []).append(f"{mv.name}/{mv.version}")
        return found
    except Exception:  # no registry here (REST, another location): nothing to warn about
        return {}


# --- gc --------------------------------------------------------------------------------------
def gc(
    tracking_uri: str | None = None,
    older_than: str | None = None,
    run_ids: Sequence[str] | None = None,
    experiment_ids: Sequence[str] | None = None,
    progress: bool = False,
    dry_run: bool = False,
    artifacts_destination: str | None = None,
    store: TrackingStore | None = None,
) -> GcReport:
    """Permanently remove deleted runs (artifacts, then metadata) and emptied deleted
    experiments of the store at `tracking_uri` (default: the active tracking URI).

    `artifacts_destination` is the tracking server's --artifacts-destination: where runs with
    mlflow-artifacts:/ URIs keep their files (otherwise those go through the server that
    $MLFLOW_TRACKING_URI names, as with mlflow gc)."""
    from tracking import config

    uri = tracking_uri or config.get_tracking_uri()
    store = store or get_store(uri)
    _check_can_hard_delete(store, uri)
    threshold = now_ms() - parse_older_than(older_than) if older_than else None
    plan = _plan(store, threshold, older_than, _split_ids(run_ids), _split_ids(experiment_ids))
    report = GcReport(tracking_uri=uri, dry_run=dry_run)
    registered = _model_versions_by_run(uri) if plan.runs else {}
    for run, _ in plan.runs:
        for version in registered.get(run.info.run_id, []):
            report.warnings.append(
                f"registered model version {version} was made from run {run.info.run_id}; "
                f"its files {'would be' if dry_run else 'are'} removed with the run's artifacts"
            )
    if dry_run:
        report.runs = [_removed(run, deleted_time) for run, deleted_time in plan.runs]
        report.artifact_folders = sum(1 for run, _ in plan.runs if run.info.artifact_uri)
        report.experiments = list(plan.experiments)
        return report

    total = len(plan.runs) + len(plan.experiments)
    with progress_bar("gc", total, enabled=progress, unit="items") as bar:
        for run, deleted_time in plan.runs:
            bar.update(1, description=f"run {run.info.run_id[:8]}")
            try:
                current = store.get_run(run.info.run_id)
            except NotFoundError:
                continue  # removed by someone else meanwhile
            if current.info.lifecycle_stage != LifecycleStage.DELETED:
                report.skipped_runs.append(run.info.run_id)
                report.warnings.append(f"run {run.info.run_id} was restored meanwhile: kept")
                continue
            go_on, warning = _delete_artifacts(current, artifacts_destination)
            if warning:
                report.warnings.append(warning)
            if not go_on:
                report.skipped_runs.append(run.info.run_id)
                continue
            if current.info.artifact_uri and warning is None:
                report.artifact_folders += 1
            if store.hard_delete_run(run.info.run_id):
                report.runs.append(_removed(current, deleted_time))
            else:
                report.skipped_runs.append(run.info.run_id)
                report.warnings.append(f"run {run.info.run_id} was restored meanwhile: kept")
        for experiment in plan.experiments:
            bar.update(1, description=f"experiment {experiment.experiment_id}")
            experiment_id = experiment.experiment_id
            left = store.run_stats([experiment_id], ViewType.ALL)[experiment_id].runs
            if left:
                report.kept_experiments.append((experiment, left))
                continue
            if store.hard_delete_experiment(experiment_id):
                report.experiments.append(experiment)
                _remove_empty_location(experiment)
    return report


def _removed(run: Run, deleted_time: int | None) -> RemovedRun:
    return RemovedRun(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        run_name=run.info.run_name,
        deleted_time=deleted_time,
        artifact_uri=run.info.artifact_uri,
    )


def _remove_empty_location(experiment: Experiment) -> None:
    """Drop a deleted experiment's default local artifact folder (<root>/<experiment id>) if
    nothing is left in it; custom locations may be shared, so they stay."""
    from tracking.uris import local_path

    location = experiment.artifact_location
    folder = local_path(location) if location else None
    if folder is not None and os.path.basename(folder.rstrip("/")) == experiment.experiment_id:
        with contextlib.suppress(OSError):
            os.rmdir(folder)
