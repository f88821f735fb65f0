"""The embedded default store: MLflow's FileStore `mlruns/` layout, without its rescans."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from tracking import search, system_tags, validation
from tracking.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
    new_run_info,
    now_ms,
)
from tracking.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    StorageError,
)
from tracking.stores.base import (
    DURATION_ORDER,
    SEARCH_MAX_RESULTS_DEFAULT,
    ExperimentRuns,
    PagedList,
    RunStats,
    TrackingStore,
    duration_order,
    latest_order,
    paginate,
    run_duration,
    walk_descendants,
)
from tracking.stores.file.disk import (
    DamagedFileError,
    FileLock,
    StatCache,
    append_line,
    atomic_write,
    create_exclusive,
    parse_yaml,
    read_text,
    temp_path,
    translating_os_errors,
    walk_files,
    warn_damaged,
    write_new,
    write_yaml,
)
from tracking.stores.file.logged_models import LoggedModelFiles
from tracking.uris import local_path

if TYPE_CHECKING:
    from tracking.registry.base import RegistryStore

TRASH = ".trash"
DEFAULT_EXPERIMENT_ID = "0"
RESERVED_EXPERIMENT_FOLDERS = frozenset({"tags", "datasets", "traces", "models"})
RESERVED_ROOT_FOLDERS = frozenset({TRASH, "models"})
LOCK_FILE = ".trackflow.lock"


def _new_experiment_id() -> str:
    """A random 18-digit id, as MLflow's FileStore makes them."""
    return str(random.randrange(10**17, 10**18))


MetricPoint = tuple[int, float, int]  # (timestamp, value, step)


def _parse_metric_lines(path: str, text: bytes) -> list[MetricPoint]:
    """The points of a metric file; a last line without its newline is a write still under
    way (every line is appended whole, newline included) and is left for the next read."""
    points = []
    complete = text[: text.rfind(b"\n") + 1]
    for number, line in enumerate(complete.decode("utf-8", "replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) < 2:
                raise ValueError("too few fields")
            step = int(parts[2]) if len(parts) > 2 else 0
            points.append((int(parts[0]), float(parts[1]), step))
        except ValueError:
            warn_damaged(f"{path} line {number}: expected '<timestamp> <value> <step>'")
    return points


def _latest_point(points: list[MetricPoint]) -> MetricPoint | None:
    """The latest point (stores.base.latest_order) of (timestamp, value, step) points."""
    if not points:
        return None
    return max(points, key=lambda p: latest_order(p[2], p[0], p[1]))


def _metric_line(metric: Metric, timestamp: int, value: float, step: int) -> str:
    """A metric file line; MLflow 3 appends the dataset's name and digest when given."""
    if metric.dataset_name is not None and metric.dataset_digest is not None:
        return f"{timestamp} {value} {step} {metric.dataset_name} {metric.dataset_digest}\n"
    return f"{timestamp} {value} {step}\n"


def _checked_values(
    run_id: str, metrics: list[Metric], params: list[Param]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Validated params ({key: value}; a key given twice must keep its value) and metric file
    lines by key, as log_batch and create_ended_run write them."""
    values: dict[str, str] = {}
    for p in params:
        value = validation.param_value(p.key, p.value)
        if values.setdefault(p.key, value) != value:
            raise validation.param_conflict(run_id, p.key, values[p.key], value)
    lines: dict[str, list[str]] = {}
    for m in metrics:
        number = validation.metric_value(m.key, m.value)
        step = validation.metric_step(m.key, m.step)
        timestamp = validation.metric_timestamp(m.key, m.timestamp)
        lines.setdefault(m.key, []).append(_metric_line(m, timestamp, number, step))
    return values, lines


def _parse_text(path: str, text: bytes) -> str:
    return text.decode("utf-8")


@translating_os_errors
class FileStore(LoggedModelFiles, TrackingStore):
    """Experiments and runs as folders of YAML and text files (MLflow-readable)."""

    mlflow_store_type = "FileStore"

    def __init__(self, root: str, artifact_root: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.artifact_root = (artifact_root or "file://" + self.root).rstrip("/")
        self._trash = os.path.join(self.root, TRASH)
        self._cache = StatCache()
        self._run_experiment: dict[str, str] = {}
        self._model_experiment: dict[str, str] = {}
        self._names: dict[str, str] = {}
        os.makedirs(self._trash, exist_ok=True)
        self._lock = FileLock(os.path.join(self.root, LOCK_FILE))
        if not os.path.exists(self._meta_path(self.root, DEFAULT_EXPERIMENT_ID)):
            with self._lock():
                if not os.path.exists(self._meta_path(self.root, DEFAULT_EXPERIMENT_ID)):
                    self._write_new_experiment(DEFAULT_EXPERIMENT_ID, "Default", None, {})

    # --- paths and cached reads ---------------------------------------------------------------
    @staticmethod
    def _meta_path(*parts: str) -> str:
        return "/".join(parts) + "/meta.yaml"

    def _experiment_dir(self, experiment_id: str) -> str:
        validation.experiment_id(experiment_id)
        for base in (self.root, self._trash):
            path = os.path.join(base, experiment_id)
            if os.path.isfile(self._meta_path(path)):
                return path
        raise NotFoundError(f"Experiment with id {experiment_id!r} does not exist")

    def _experiment_ids(self, base: str) -> list[str]:
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        return [n for n in names if n not in RESERVED_ROOT_FOLDERS and not n.startswith(".")]

    def _read_meta(self, path: str) -> dict:
        return self._cache.get(self._meta_path(path), parse_yaml)

    def _write_meta(self, path: str, meta: dict) -> None:
        meta_path = self._meta_path(path)
        write_yaml(meta_path, meta)
        self._cache.put(meta_path, meta)

    def _experiment_from_dir(self, path: str) -> Experiment:
        meta = self._read_meta(path)
        tags = {key: read_text(p) for key, p in walk_files(os.path.join(path, "tags"))}
        return Experiment(
            experiment_id=str(meta["experiment_id"]),
            name=str(meta["name"]),
            artifact_location=str(meta.get("artifact_location", "")),
            lifecycle_stage=meta.get("lifecycle_stage", LifecycleStage.ACTIVE),
            tags=tags,
            creation_time=meta.get("creation_time"),
            last_update_time=meta.get("last_update_time"),
        )

    def _all_experiments(self) -> Iterator[tuple[str, Experiment]]:
        """(dir, experiment) for every readable experiment, active and trashed."""
        for base in (self.root, self._trash):
            for experiment_id in self._experiment_ids(base):
                path = os.path.join(base, experiment_id)
                try:
                    yield path, self._experiment_from_dir(path)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                except (DamagedFileError, KeyError) as e:
                    warn_damaged(f"experiment {path}: {e}")

    # --- experiments --------------------------------------------------------------------------
    def _write_new_experiment(
        self,
        experiment_id: str,
        name: str,
        artifact_location: str | None,
        tags: dict[str, str],
    ) -> None:
        path = os.path.join(self.root, experiment_id)
        os.makedirs(os.path.join(path, "tags"), exist_ok=True)
        for key, value in tags.items():
            self._write_tag_file(os.path.join(path, "tags"), key, value)
        now = now_ms()
        write_yaml(
            self._meta_path(path),
            {
                "artifact_location": artifact_location or f"{self.artifact_root}/{experiment_id}",
                "creation_time": now,
                "experiment_id": experiment_id,
                "last_update_time": now,
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "name": name,
            },
        )
        self._names[name] = experiment_id

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        validation.experiment_name(name)
        if artifact_location is not None:
            artifact_location = validation.absolute_location(
                validation.artifact_location(artifact_location)
            )
        checked = {k: validation.experiment_tag_value(k, v) for k, v in (tags or {}).items()}
        validation.no_key_clash("Experiment tag", checked)
        with self._lock():
            for _, experiment in self._all_experiments():
                if experiment.name == name:
                    state = experiment.lifecycle_stage
                    hint = (
                        " (in deleted state: restore it, or remove it from the .trash folder)"
                        if state == LifecycleStage.DELETED
                        else ""
                    )
                    raise AlreadyExistsError(f"Experiment {name!r} already exists{hint}")
            experiment_id = _new_experiment_id()
            while os.path.exists(os.path.join(self.root, experiment_id)):
                experiment_id = _new_experiment_id()
            self._write_new_experiment(experiment_id, name, artifact_location, checked)
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        path = self._experiment_dir(str(experiment_id))
        try:
            return self._experiment_from_dir(path)
        except (DamagedFileError, KeyError) as e:
            raise NotFoundError(f"Experiment {experiment_id!r} is unreadable: {e}") from None

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        cached = self._names.get(name)
        if cached is not None:
            try:
                experiment = self.get_experiment(cached)
                if experiment.name == name:
                    return experiment
            except NotFoundError:
                pass
        self._names = {e.name: e.experiment_id for _, e in self._all_experiments()}
        found = self._names.get(name)
        return self.get_experiment(found) if found is not None else None

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        view_type = ViewType.parse(view_type)
        comparisons = search.parse_experiment_filter(filter_string)
        ordering = search.parse_experiment_order_by(order_by)
        found = [
            e
            for _, e in self._all_experiments()
            if view_type.matches(e.lifecycle_stage) and search.experiment_matches(comparisons, e)
        ]
        return paginate(search.sort_experiments(found, ordering), max_results, page_token)

    def _update_experiment_meta(self, path: str, now: int | None = None, **changes: object) -> None:
        meta = dict(self._read_meta(path))
        meta.update(changes, last_update_time=now or now_ms())
        self._write_meta(path, meta)

    def delete_experiment(self, experiment_id: str) -> None:
        experiment_id = str(experiment_id)
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            raise InvalidParameterError("The Default experiment (id 0) cannot be deleted")
        path = self._experiment_dir(experiment_id)
        if os.path.dirname(path) == self._trash:
            raise InvalidStateError(f"Experiment {experiment_id!r} is already deleted")
        now = now_ms()
        for run_dir in self._run_dirs(path):
            self._set_run_lifecycle(run_dir, LifecycleStage.DELETED, now, only_active=True)
        self._update_experiment_meta(path, now, lifecycle_stage=LifecycleStage.DELETED)
        os.replace(path, os.path.join(self._trash, experiment_id))
        self._run_experiment.clear()
        self._model_experiment.clear()

    def restore_experiment(self, experiment_id: str) -> None:
        experiment_id = str(experiment_id)
        path = self._experiment_dir(experiment_id)
        if os.path.dirname(path) != self._trash:
            raise InvalidStateError(f"Experiment {experiment_id!r} is not deleted")
        target = os.path.join(self.root, experiment_id)
        if os.path.exists(target):
            raise AlreadyExistsError(f"Cannot restore {experiment_id!r}: {target} exists")
        deleted_at = self._read_meta(path).get("last_update_time")
        for run_dir in self._run_dirs(path):
            meta = self._run_meta(run_dir)
            if meta.get("deleted_time") == deleted_at:
                self._set_run_lifecycle(run_dir, LifecycleStage.ACTIVE, None)
        self._update_experiment_meta(path, lifecycle_stage=LifecycleStage.ACTIVE)
        os.replace(path, target)
        self._run_experiment.clear()
        self._model_experiment.clear()

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validation.experiment_name(new_name)
        with self._lock():
            path = self._experiment_dir(str(experiment_id))
            if any(e.name == new_name for _, e in self._all_experiments()):
                raise AlreadyExistsError(f"Experiment {new_name!r} already exists")
            if self._read_meta(path).get("lifecycle_stage") != LifecycleStage.ACTIVE:
                raise InvalidStateError(f"Cannot rename deleted experiment {experiment_id!r}")
            self._update_experiment_meta(path, name=new_name)
        self._names = {}

    def set_experiment_tag(self, experiment_id: str, tag: RunTag) -> None:
        value = validation.experiment_tag_value(tag.key, tag.value)
        folder = os.path.join(self._experiment_dir(str(experiment_id)), "tags")
        try:
            self._write_tag_file(folder, tag.key, value)
        except (NotADirectoryError, IsADirectoryError):
            self._settle_clash(folder, tag.key, "Experiment tag")
            self._write_tag_file(folder, tag.key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        validation.validate_key(key, "Experiment tag key")
        path = os.path.join(self._experiment_dir(str(experiment_id)), "tags", key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise NotFoundError(f"No tag {key!r} on experiment {experiment_id!r}") from None

    # --- run lookup ---------------------------------------------------------------------------
    def _run_dir(self, run_id: str) -> str:
        """Folder of a run: O(1) from the cache, one scan of experiment folders on a miss."""
        return self._locate_run(run_id)[0]

    def _locate_run(self, run_id: str) -> tuple[str, dict]:
        """(folder, meta) of a run; the hot path costs one stat of its meta.yaml."""
        experiment_path = self._run_experiment.get(run_id)
        if experiment_path is not None:
            run_dir = f"{experiment_path}/{run_id}"
            try:
                return run_dir, self._read_meta(run_dir)
            except FileNotFoundError:
                pass
            except DamagedFileError as e:
                raise NotFoundError(f"Run {run_id!r} is unreadable: {e}") from None
        validation.run_id(run_id)
        for base in (self.root, self._trash):
            for experiment_id in self._experiment_ids(base):
                experiment_path = os.path.join(base, experiment_id)
                if os.path.isfile(self._meta_path(experiment_path, run_id)):
                    self._run_experiment[run_id] = experiment_path
                    run_dir = os.path.join(experiment_path, run_id)
                    return run_dir, self._run_meta(run_dir)
        raise NotFoundError(f"Run {run_id!r} not found")

    def _run_dirs(self, experiment_path: str) -> list[str]:
        try:
            entries = os.scandir(experiment_path)
        except FileNotFoundError:
            return []
        return [
            e.path
            for e in entries
            if e.is_dir()
            and e.name not in RESERVED_EXPERIMENT_FOLDERS
            and not e.name.startswith(".")
            and os.path.isfile(self._meta_path(e.path))
        ]

    def _run_meta(self, run_dir: str) -> dict:
        try:
            return self._read_meta(run_dir)
        except FileNotFoundError:
            raise NotFoundError(f"Run folder {run_dir} has no meta.yaml") from None
        except DamagedFileError as e:
            raise NotFoundError(f"Run is unreadable: {e}") from None

    def _run_info(self, run_dir: str) -> RunInfo:
        meta = self._run_meta(run_dir)
        return RunInfo(
            run_id=str(meta["run_id"]),
            experiment_id=str(meta["experiment_id"]),
            run_name=meta.get("run_name") or "",
            user_id=meta.get("user_id") or "",
            status=RunStatus(int(meta["status"])).name,
            start_time=meta.get("start_time"),
            end_time=meta.get("end_time"),
            artifact_uri=meta.get("artifact_uri", ""),
            lifecycle_stage=meta.get("lifecycle_stage", LifecycleStage.ACTIVE),
        )

    def _active_run_dir(self, run_id: str) -> str:
        run_dir, meta = self._locate_run(run_id)
        if meta.get("lifecycle_stage") != LifecycleStage.ACTIVE:
            raise InvalidStateError(
                f"The run {run_id} must be in the 'active' state. Current state is deleted: "
                "restore it before logging to it"
            )
        return run_dir

    # --- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: list[RunTag],
        run_name: str,
        run_id: str | None = None,
    ) -> Run:
        checked = validation.new_run_tags(user_id, start_time, run_name, tags)
        run_id = validation.run_id(run_id) if run_id else uuid.uuid4().hex
        info = self._build_run(experiment_id, user_id, start_time, checked, run_name, run_id)
        return Run(info, RunData(tags=checked))

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
        """The whole run folder (params, metrics, tags, ended meta.yaml) built under a hidden
        name, then renamed into place: the run appears complete or not at all."""
        checked = validation.new_run_tags(user_id, start_time, run_name, tags)
        run_id = validation.run_id(run_id)
        status = RunStatus.parse(status).name
        if end_time is not None:
            validation.time_ms("Run end_time", end_time)
        values, lines = _checked_values(run_id, metrics, params)
        validation.no_key_clash("Param", values)
        validation.no_key_clash("Metric", lines)

        def fill(building: str) -> None:
            for key, value in values.items():
                write_new(f"{building}/params/{key}", value)
            for key, key_lines in lines.items():
                write_new(f"{building}/metrics/{key}", "".join(key_lines))

        self._build_run(
            experiment_id, user_id, start_time, checked, run_name, run_id, fill, status, end_time
        )

    def _build_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: dict[str, str],
        run_name: str,
        run_id: str,
        fill: Callable[[str], None] | None = None,
        status: str | None = None,
        end_time: int | None = None,
    ) -> RunInfo:
        """Make the run's folder under a hidden name (readers skip it), with `fill(folder)`
        adding more, then rename it into place in one step: a creation that is killed or fails
        halfway leaves no half-made run behind."""
        experiment_path = self._experiment_dir(str(experiment_id))
        experiment = self._read_meta(experiment_path)
        if experiment.get("lifecycle_stage") != LifecycleStage.ACTIVE:
            raise InvalidStateError(
                f"Cannot create a run in deleted experiment {experiment_id!r}; restore it first"
            )
        if run_id in self._run_experiment:  # known elsewhere (the mkdir below checks this folder)
            raise AlreadyExistsError(f"Run {run_id!r} already exists")
        run_dir = f"{experiment_path}/{run_id}"
        if os.path.exists(run_dir):
            raise AlreadyExistsError(f"Run {run_id!r} already exists")
        info = new_run_info(
            run_id,
            str(experiment["experiment_id"]),
            run_name,
            user_id,
            start_time,
            experiment["artifact_location"],
        )
        if status is not None:
            info.status, info.end_time = status, end_time
        building = temp_path(experiment_path)  # a short name, whatever the run id's length
        os.mkdir(building)
        try:
            for sub in ("metrics", "params", "tags", "artifacts"):
                os.mkdir(f"{building}/{sub}")
            for key, value in tags.items():
                write_new(f"{building}/tags/{key}", value)
            if fill is not None:
                fill(building)
            meta = self._meta_dict(info)
            write_yaml(self._meta_path(building), meta)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        try:
            os.rename(building, run_dir)  # fails when another creator got there first
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
            raise AlreadyExistsError(f"Run {run_id!r} already exists") from None
        self._cache.put(self._meta_path(run_dir), meta)
        self._run_experiment[run_id] = experiment_path
        return info

    @staticmethod
    def _meta_dict(info: RunInfo, deleted_time: int | None = None) -> dict:
        meta: dict[str, object] = {
            "artifact_uri": info.artifact_uri,
            "end_time": info.end_time,
            "entry_point_name": "",
            "experiment_id": info.experiment_id,
            "lifecycle_stage": info.lifecycle_stage,
            "run_id": info.run_id,
            "run_name": info.run_name,
            "source_name": "",
            "source_type": 4,
            "source_version": "",
            "start_time": info.start_time,
            "status": int(RunStatus[info.status]),
            "tags": [],
            "user_id": info.user_id,
        }
        if deleted_time is not None:
            meta["deleted_time"] = deleted_time
        return meta

    def get_run(self, run_id: str) -> Run:
        run_dir = self._run_dir(run_id)
        return Run(
            self._run_info(run_dir),
            self._run_data(run_dir),
            self._run_inputs(run_dir),
            self._run_outputs(run_dir),
        )

    def _run_data(self, run_dir: str) -> RunData:
        metrics = {}
        for key, path in walk_files(os.path.join(run_dir, "metrics")):
            latest = self._latest_metric(path)
            if latest is not None:
                metrics[key] = latest
        params = {k: self._cache.get(p, _parse_text) for k, p in walk_files(f"{run_dir}/params")}
        tags = {k: self._cache.get(p, _parse_text) for k, p in walk_files(f"{run_dir}/tags")}
        return RunData(metrics=metrics, params=params, tags=tags)

    def _latest_metric(self, path: str) -> float | None:
        try:
            point = _latest_point(self._cache.get(path, _parse_metric_lines))
        except FileNotFoundError:
            return None
        return None if point is None else point[1]

    def get_latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, Metric]]:
        found: dict[str, dict[str, Metric]] = {}
        for run_id in run_ids:
            latest = found[run_id] = {}
            for key, path in walk_files(f"{self._run_dir(run_id)}/metrics"):
                point = _latest_point(self._cache.get(path, _parse_metric_lines))
                if point is not None:
                    latest[key] = Metric(key, point[1], point[0], point[2])
        return found

    def update_run_info(
        self,
        run_id: str,
        run_status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        if end_time is not None:
            validation.time_ms("Run end_time", end_time)
        if run_name:
            validation.run_name(run_name)
        run_dir = self._active_run_dir(run_id)
        info = self._run_info(run_dir)
        if run_status is not None:
            info.status = RunStatus.parse(run_status).name
        if end_time is not None:
            info.end_time = end_time
        if run_name:
            info.run_name = run_name
            self._write_tag_file(os.path.join(run_dir, "tags"), "mlflow.runName", run_name)
        self._write_meta(run_dir, self._meta_dict(info))
        return info

    def _set_run_lifecycle(
        self, run_dir: str, stage: str, deleted_time: int | None, only_active: bool = False
    ) -> None:
        info = self._run_info(run_dir)
        if only_active and info.lifecycle_stage != LifecycleStage.ACTIVE:
            return
        info.lifecycle_stage = stage
        self._write_meta(run_dir, self._meta_dict(info, deleted_time))

    def delete_run(self, run_id: str) -> None:
        self._set_run_lifecycle(self._run_dir(run_id), LifecycleStage.DELETED, now_ms())

    def restore_run(self, run_id: str) -> None:
        self._set_run_lifecycle(self._run_dir(run_id), LifecycleStage.ACTIVE, None)

    # --- logging ------------------------------------------------------------------------------
    @staticmethod
    def _write_tag_file(folder: str, key: str, value: str) -> None:
        path = os.path.join(folder, key)
        try:
            atomic_write(path, value)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, value)

    @staticmethod
    def _clash(folder: str, key: str, kind: str) -> InvalidParameterError | None:
        """The error if `key` cannot be a file in `folder` because a '/'-folder of it is a
        file, or because it is a folder (of other keys) itself."""
        parts = key.split("/")
        for end in range(1, len(parts)):
            folder_key = "/".join(parts[:end])
            if os.path.isfile(os.path.join(folder, folder_key)):
                return validation.clash_error(kind, key, folder_key, key)
        path = os.path.join(folder, key)
        if os.path.isdir(path):
            with contextlib.suppress(OSError):
                os.rmdir(path)  # an empty folder left by deleted keys is no clash
                return None
            below = next((k for k, _ in walk_files(path, key + "/")), key + "/")
            return validation.clash_error(kind, key, key, below)
        return None

    def _settle_clash(self, folder: str, key: str, kind: str) -> None:
        """Raise if `key` clashes with a key stored in `folder` ('a' and 'a/b'); an empty
        folder left in its way by deleted keys is removed instead."""
        clash = self._clash(folder, key, kind)
        if clash is not None:
            raise clash

    def _check_keys(self, folder: str, keys: Collection[str], kind: str) -> None:
        """Raise if any of `keys` clashes with another one or with a key in `folder`."""
        validation.no_key_clash(kind, keys)
        for key in keys:
            self._settle_clash(folder, key, kind)

    def log_metric(self, run_id: str, metric: Metric) -> None:
        value = validation.metric_value(metric.key, metric.value)
        step = validation.metric_step(metric.key, metric.step)
        timestamp = validation.metric_timestamp(metric.key, metric.timestamp)
        folder = f"{self._active_run_dir(run_id)}/metrics"
        model_lines = self._model_metric_lines(run_id, [metric])
        line = _metric_line(metric, timestamp, value, step)
        try:
            append_line(f"{folder}/{metric.key}", line)
        except (NotADirectoryError, IsADirectoryError):
            self._settle_clash(folder, metric.key, "Metric")
            append_line(f"{folder}/{metric.key}", line)
        for path, model_line in model_lines:
            append_line(path, model_line)

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, [], [param], [])

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        value = validation.tag_value(tag.key, tag.value)
        if tag.key == "mlflow.runName":
            validation.run_name(value)
        folder = os.path.join(self._active_run_dir(run_id), "tags")
        try:
            self._write_tag_file(folder, tag.key, value)
        except (NotADirectoryError, IsADirectoryError):
            self._settle_clash(folder, tag.key, "Tag")
            self._write_tag_file(folder, tag.key, value)
        if tag.key == "mlflow.runName":
            self.update_run_info(run_id, run_name=value)

    def _existing_param(self, run_dir: str, key: str) -> str | None:
        try:
            return read_text(os.path.join(run_dir, "params", key))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag]
    ) -> None:
        validation.batch_sizes(len(metrics), len(params), len(tags))
        new_params, lines = _checked_values(run_id, metrics, params)
        checked_tags = {t.key: validation.tag_value(t.key, t.value) for t in tags}
        if "mlflow.runName" in checked_tags:
            validation.run_name(checked_tags["mlflow.runName"])
        run_dir = self._active_run_dir(run_id)
        model_lines = self._model_metric_lines(run_id, metrics)
        self._check_keys(f"{run_dir}/params", new_params, "Param")
        self._check_keys(f"{run_dir}/tags", checked_tags, "Tag")
        self._check_keys(f"{run_dir}/metrics", lines, "Metric")
        for key, value in new_params.items():
            old = self._existing_param(run_dir, key)
            if old is not None and old != value:
                raise validation.param_conflict(run_id, key, old, value)
        for key, value in new_params.items():
            old = create_exclusive(f"{run_dir}/params/{key}", value)
            if old is not None and old != value:
                raise validation.param_conflict(run_id, key, old, value)
        for key, value in checked_tags.items():
            self._write_tag_file(os.path.join(run_dir, "tags"), key, value)
        for key, key_lines in lines.items():
            append_line(os.path.join(run_dir, "metrics", key), "".join(key_lines))
        for path, model_line in model_lines:
            append_line(path, model_line)
        if checked_tags.get(system_tags.RUN_NAME):  # the run is renamed, as by set_tag
            self.update_run_info(run_id, run_name=checked_tags[system_tags.RUN_NAME])

    def delete_tag(self, run_id: str, key: str) -> None:
        validation.validate_key(key, "Tag key")
        path = os.path.join(self._active_run_dir(run_id), "tags", key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise NotFoundError(f"No tag with name: {key} in run with id {run_id}") from None

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        validation.validate_key(key, "Metric key")
        path = os.path.join(self._run_dir(run_id), "metrics", key)
        try:
            points = self._cache.get(path, _parse_metric_lines)
        except FileNotFoundError:
            return []
        return [Metric(key, value, timestamp, step) for timestamp, value, step in points]

    # --- search -------------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        view_type = ViewType.parse(run_view_type)
        comparisons = search.parse_run_filter(filter_string)
        ordering = search.parse_run_order_by(order_by)
        views = []
        for experiment_id in experiment_ids:
            try:
                experiment_path = self._experiment_dir(str(experiment_id))
            except NotFoundError:
                continue
            for run_dir in self._run_dirs(experiment_path):
                view = _RunView(self, run_dir)
                try:  # the filter first: it may rule a run out without reading its meta.yaml
                    if search.run_matches(comparisons, view) and view_type.matches(
                        str(view.attribute("lifecycle_stage"))
                    ):
                        views.append(view)
                except (NotFoundError, KeyError, ValueError) as e:
                    warn_damaged(f"run {run_dir}: {e}")
        page = paginate(search.sort_runs(views, ordering), max_results, page_token)
        return PagedList((self.get_run(os.path.basename(v.run_dir)) for v in page), page.token)

    # --- capabilities (tracking.stores.base) ----------------------------------------------------
    @classmethod
    def check_holds_store(cls, uri: str) -> None:
        """A folder with at least one experiment folder (active or in .trash)."""
        path = local_path(uri) or uri
        if not os.path.isdir(path):
            raise NotFoundError(f"{uri!r} does not exist ({path} is not a folder)")
        folders = [path, os.path.join(path, TRASH)]
        if not any(
            os.path.isfile(cls._meta_path(base, name))
            for base in folders
            if os.path.isdir(base)
            for name in os.listdir(base)
        ):
            raise NotFoundError(
                f"{uri!r} is not a tracking store (no experiment folders in {path})"
            )

    @property
    def local_root(self) -> str:
        return self.root

    def run_stats(
        self, experiment_ids: Sequence[str], view_type: ViewType = ViewType.ACTIVE_ONLY
    ) -> dict[str, RunStats]:
        """Counted from the runs' meta.yaml files (cached while unchanged)."""
        stats = {}
        for experiment_id in experiment_ids:
            try:
                runs = self._run_dirs(self._experiment_dir(experiment_id))
            except (NotFoundError, InvalidParameterError):
                runs = []
            starts = []
            for run_dir in runs:
                try:
                    meta = self._run_meta(run_dir)
                except NotFoundError:
                    continue
                if view_type.matches(meta.get("lifecycle_stage", LifecycleStage.ACTIVE)):
                    starts.append(meta.get("start_time"))
            stats[experiment_id] = RunStats.of(starts)
        return stats

    def experiment_runs(self, experiment_id: str) -> ExperimentRuns:
        return _ExperimentFolder(self, experiment_id)

    def deleted_time(self, run_id: str) -> int | None:
        try:
            value = self._locate_run(run_id)[1].get("deleted_time")
        except NotFoundError:
            return None
        return int(value) if value is not None else None

    @property
    def can_hard_delete(self) -> bool:
        return True

    def _remove(self, path: str) -> None:
        """Remove a run or experiment folder: first renamed to a hidden name (atomic; readers
        skip names starting with a dot), so no reader ever sees half of it."""
        root = os.path.realpath(self.root)
        if not os.path.realpath(path).startswith(root + os.sep):  # never outside the store
            raise StorageError(f"Refusing to remove {path}: it is outside {self.root}")
        hidden = os.path.join(os.path.dirname(path), f".gc-{uuid.uuid4().hex}")
        os.replace(path, hidden)
        shutil.rmtree(hidden)

    def hard_delete_run(self, run_id: str) -> bool:
        try:
            run_dir, meta = self._locate_run(run_id)
        except NotFoundError:
            return False
        if meta.get("lifecycle_stage") != LifecycleStage.DELETED:
            return False
        self._remove(run_dir)
        self._run_experiment.pop(run_id, None)
        return True

    def hard_delete_experiment(self, experiment_id: str) -> bool:
        try:
            path = self._experiment_dir(experiment_id)
        except NotFoundError:
            return False
        if os.path.dirname(path) != self._trash or self._run_dirs(path):
            return False
        self._remove(path)
        self._names = {}
        self._run_experiment.clear()
        return True

    def open_registry(self) -> RegistryStore:
        """The registry in MLflow's layout under `<root>/models/`."""
        from tracking.stores.file.registry import FileRegistryStore

        return FileRegistryStore(self.root)


class _RunView:
    """Lazy access to one run's values, so a search reads only the files its filter needs."""

    def __init__(self, store: FileStore, run_dir: str) -> None:
        self.store = store
        self.run_dir = run_dir

    def attribute(self, key: str) -> str | int | None:
        return _meta_attribute(self.store._run_meta(self.run_dir), key)

    def metric(self, key: str) -> float | None:
        return self.store._latest_metric(os.path.join(self.run_dir, "metrics", key))

    def _text(self, folder: str, key: str) -> str | None:
        try:
            return self.store._cache.get(os.path.join(self.run_dir, folder, key), _parse_text)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def param(self, key: str) -> str | None:
        return self._text("params", key)

    def tag(self, key: str) -> str | None:
        return self._text("tags", key)


class _Entry(NamedTuple):
    """One active run of an experiment folder, as _ExperimentFolder lists it."""

    run_id: str
    parent: str | None
    meta: dict
    run_dir: str


class _SnapshotView(_RunView):
    """A _RunView whose meta.yaml was read already."""

    def __init__(self, store: FileStore, entry: _Entry) -> None:
        super().__init__(store, entry.run_dir)
        self.meta = entry.meta

    def attribute(self, key: str) -> str | int | None:
        return _meta_attribute(self.meta, key)


@translating_os_errors
class _ExperimentFolder(ExperimentRuns):
    """One pass over an experiment folder (each active run's meta.yaml and parent, through the
    store's stat-validated cache: two stats per run after the first pass) answers every
    question; a page reads other run files only for the filter and order it needs."""

    def __init__(self, store: FileStore, experiment_id: str) -> None:
        super().__init__(store, experiment_id)
        self.files = store
        self.root = store.root
        self._entries: list[_Entry] | None = None
        self._children: dict[str, list[tuple[bool, int, str]]] | None = None

    def _active_runs(self) -> list[_Entry]:
        """The active runs (read on first use)."""
        if self._entries is None:
            self._entries = self._scan()
        return self._entries

    def _scan(self) -> list[_Entry]:
        try:
            path = self.files._experiment_dir(self.experiment_id)
        except (NotFoundError, InvalidParameterError):
            return []
        with os.scandir(path) as scan:
            names = [e.name for e in scan if not e.name.startswith(".")]
        found = []
        for name in names:
            if name in RESERVED_EXPERIMENT_FOLDERS:
                continue
            run_dir = f"{path}/{name}"
            try:
                meta = self.files._read_meta(run_dir)
            except (FileNotFoundError, NotADirectoryError, DamagedFileError):
                continue
            if meta.get("lifecycle_stage", LifecycleStage.ACTIVE) != LifecycleStage.ACTIVE:
                continue
            try:
                parent = self.files._cache.get(f"{run_dir}/tags/{_PARENT_TAG}", _parse_text)
            except (FileNotFoundError, NotADirectoryError):
                parent = None
            found.append(_Entry(str(meta.get("run_id", name)), parent or None, meta, run_dir))
        return found

    def stats(self) -> RunStats:
        return RunStats.of(entry.meta.get("start_time") for entry in self._active_runs())

    def page(
        self, filter_string: str, order_by: str, offset: int, size: int, top_level_only: bool
    ) -> tuple[list[Run], bool]:
        comparisons = search.parse_run_filter(filter_string)
        descending = duration_order(order_by)
        (order,) = (
            search.parse_run_order_by([order_by])
            if descending is None
            else (search.OrderBy(search.ATTRIBUTE, DURATION_ORDER, not descending),)
        )
        reads_files = bool(comparisons) or order.entity != search.ATTRIBUTE
        chosen: list[tuple[_Entry, object]] = []
        for entry in self._active_runs():
            if top_level_only and entry.parent:
                continue
            try:
                view = _SnapshotView(self.files, entry) if reads_files else None
                if view is not None and not search.run_matches(comparisons, view):
                    continue
                if view is None or order.entity == search.ATTRIBUTE:
                    value = _meta_value(entry.meta, order.key)  # the meta.yaml read already
                else:
                    value = search.run_value(view, order.entity, order.key)
            except (NotFoundError, KeyError, ValueError):
                continue
            chosen.append((entry, value))
        chosen.sort(key=lambda c: search.run_tie_break(c[0].meta.get("start_time"), c[0].run_id))
        ordered = search.sort_by_values(chosen, [value for _, value in chosen], order)
        page = [entry.run_id for entry, _ in ordered[offset : offset + size]]
        return self.files.get_runs(page), len(ordered) > offset + size

    def descendants(
        self, run_ids: Sequence[str], max_depth: int, limit: int
    ) -> tuple[list[Run], bool]:
        if self._children is None:
            self._children = {}
            for entry in self._active_runs():
                if entry.parent:
                    start = _int(entry.meta.get("start_time"))
                    link = (start is None, start or 0, entry.run_id)
                    self._children.setdefault(entry.parent, []).append(link)
        found, truncated = walk_descendants(run_ids, self._children, max_depth, limit)
        return self.files.get_runs(found), truncated


_PARENT_TAG = system_tags.PARENT_RUN_ID


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _meta_attribute(meta: dict, key: str) -> str | int | None:
    """A run attribute as search reads it, from the run's meta.yaml."""
    if key == "status":
        return RunStatus(int(meta["status"])).name
    if key == "run_id":
        return str(meta["run_id"])
    value = meta.get(key)
    return value if value is None or isinstance(value, int) else str(value)


def _meta_value(meta: dict, key: str) -> str | int | None:
    """A run attribute, or its duration (DURATION_ORDER), from its meta.yaml."""
    if key != DURATION_ORDER:
        return _meta_attribute(meta, key)
    return run_duration(_int(meta.get("start_time")), _int(meta.get("end_time")))
