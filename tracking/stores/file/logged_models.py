"""The file store's MLflow 3 parts, in MLflow's FileStore layout so that each reads the other's:

    <experiment>/models/<model_id>/{meta.yaml, metrics/, params/, tags/}   LoggedModels
    <experiment>/datasets/<md5(name, digest)>/meta.yaml                    datasets
    <run>/inputs/<md5(dataset or model id, run id)>/meta.yaml              what a run used
    <run>/outputs/<model_id>/meta.yaml                                     models a run produced

A model's metric files hold ``<timestamp> <value> <step> <run id> [<dataset> <digest>]`` lines.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tracking import logged_models, validation
from tracking.entities import (
    DatasetInput,
    DatasetSummary,
    LifecycleStage,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    RunInputs,
    RunOutputs,
)
from tracking.errors import InvalidParameterError, InvalidStateError, NotFoundError
from tracking.stores.base import PagedList
from tracking.stores.file.disk import (
    DamagedFileError,
    read_text,
    temp_path,
    translating_os_errors,
    walk_files,
    warn_damaged,
    write_yaml,
)

if TYPE_CHECKING:
    from collections.abc import Collection

MODELS = logged_models.MODELS_FOLDER
DATASETS = "datasets"
INPUTS = "inputs"
OUTPUTS = "outputs"
#: MLflow's input vertex types (service.proto), as its FileStore writes them.
DATASET_SOURCE, MODEL_SOURCE, RUN_DESTINATION = "DATASET", "MODEL", "RUN"


def _md5(*parts: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _model_metric_line(metric: Metric, run_id: str, value: float, step: int, ts: int) -> str:
    line = f"{ts} {value} {step} {run_id}"
    if metric.dataset_name is not None and metric.dataset_digest is not None:
        line += f" {metric.dataset_name} {metric.dataset_digest}"
    return line + "\n"


def _model_metrics(model_id: str, folder: str) -> list[Metric]:
    points = []
    for key, path in walk_files(folder):
        for number, line in enumerate(read_text(path).splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if len(parts) not in (4, 6):
                    raise ValueError(f"{len(parts)} fields")
                points.append(
                    Metric(
                        key,
                        float(parts[1]),
                        int(parts[0]),
                        int(parts[2]),
                        model_id=model_id,
                        dataset_name=parts[4] if len(parts) == 6 else None,
                        dataset_digest=parts[5] if len(parts) == 6 else None,
                        run_id=parts[3],
                    )
                )
            except ValueError as e:
                warn_damaged(f"{path} line {number}: expected '<ts> <value> <step> <run>' ({e})")
    return logged_models.latest_points(points)


@translating_os_errors
class LoggedModelFiles:
    """LoggedModels, dataset inputs and model outputs for `FileStore` (a mixin)."""

    if TYPE_CHECKING:  # what FileStore provides
        root: str
        _trash: str
        _model_experiment: dict[str, str]

        def _active_run_dir(self, run_id: str) -> str: ...
        def _check_keys(self, folder: str, keys: Collection[str], kind: str) -> None: ...
        def _experiment_dir(self, experiment_id: str) -> str: ...
        def _experiment_ids(self, base: str) -> list[str]: ...
        @staticmethod
        def _meta_path(*parts: str) -> str: ...
        def _read_meta(self, path: str) -> dict[str, Any]: ...
        def _run_dirs(self, experiment_path: str) -> list[str]: ...
        def _write_meta(self, path: str, meta: dict[str, Any]) -> None: ...
        @staticmethod
        def _write_tag_file(folder: str, key: str, value: str) -> None: ...

    # --- logged models ------------------------------------------------------------------------
    def _model_dirs(self, experiment_path: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(os.path.join(experiment_path, MODELS)))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.is_dir() and os.path.isfile(self._meta_path(entry.path)):
                yield entry.path

    def _model_dir(self, model_id: str) -> str:
        """The folder of a model (deleted ones too); NotFoundError if there is none."""
        if not isinstance(model_id, str) or not logged_models.is_model_id(model_id):
            raise NotFoundError(f"Logged model with ID {validation.shown(model_id)} not found.")
        cached = self._model_experiment.get(model_id)
        if cached is not None and os.path.isfile(self._meta_path(cached, MODELS, model_id)):
            return f"{cached}/{MODELS}/{model_id}"
        for base in (self.root, self._trash):
            for experiment_id in self._experiment_ids(base):
                experiment_path = os.path.join(base, experiment_id)
                if os.path.isfile(self._meta_path(experiment_path, MODELS, model_id)):
                    self._model_experiment[model_id] = experiment_path
                    return f"{experiment_path}/{MODELS}/{model_id}"
        raise NotFoundError(f"Logged model with ID '{model_id}' not found.")

    def _model_from_dir(self, model_dir: str) -> LoggedModel:
        meta = self._read_meta(model_dir)
        model_id = str(meta["model_id"])
        tags = {k: read_text(p) for k, p in walk_files(f"{model_dir}/tags")}
        params = {k: read_text(p) for k, p in walk_files(f"{model_dir}/params")}
        return LoggedModel(
            experiment_id=str(meta["experiment_id"]),
            model_id=model_id,
            name=str(meta.get("name") or ""),
            artifact_location=str(meta.get("artifact_location") or ""),
            creation_timestamp=int(meta.get("creation_timestamp") or 0),
            last_updated_timestamp=int(meta.get("last_updated_timestamp") or 0),
            model_type=meta.get("model_type"),
            source_run_id=meta.get("source_run_id"),
            status=LoggedModelStatus.parse(meta.get("status", LoggedModelStatus.READY)),
            status_message=meta.get("status_message"),
            tags=tags,
            params=params,
            metrics=_model_metrics(model_id, f"{model_dir}/metrics"),
            lifecycle_stage=meta.get("lifecycle_stage") or LifecycleStage.ACTIVE,
        )

    def _live_model_dir(self, model_id: str) -> str:
        model_dir = self._model_dir(model_id)
        stage = self._read_meta(model_dir).get("lifecycle_stage") or LifecycleStage.ACTIVE
        if stage != LifecycleStage.ACTIVE:
            raise NotFoundError(f"Logged model with ID '{model_id}' not found.")
        return model_dir

    def _update_model_meta(self, model_dir: str, **changes: Any) -> None:
        meta = dict(self._read_meta(model_dir))
        meta.update(changes, last_updated_timestamp=_now_ms())
        self._write_meta(model_dir, meta)

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        from tracking.system_tags import random_run_name

        name = logged_models.model_name(name) or random_run_name()
        checked_tags = logged_models.checked_tags(tags)
        checked_params = logged_models.checked_params(params)
        for kind, keys in (("Tag", checked_tags), ("Param", checked_params)):
            validation.no_key_clash(kind, keys)
        experiment_path = self._experiment_dir(str(experiment_id))
        experiment = self._read_meta(experiment_path)
        if experiment.get("lifecycle_stage") != LifecycleStage.ACTIVE:
            raise InvalidStateError(
                f"Could not create model under non-active experiment with ID {experiment_id}."
            )
        model_id = logged_models.new_model_id()
        now = _now_ms()
        meta = {
            "artifact_location": logged_models.artifact_location(
                str(experiment["artifact_location"]), model_id
            ),
            "creation_timestamp": now,
            "experiment_id": str(experiment["experiment_id"]),
            "last_updated_timestamp": now,
            "lifecycle_stage": LifecycleStage.ACTIVE,
            "model_id": model_id,
            "model_type": model_type or None,
            "name": name,
            "source_run_id": source_run_id or None,
            "status": int(LoggedModelStatus.PENDING),
            "status_message": None,
        }
        os.makedirs(os.path.join(experiment_path, MODELS), exist_ok=True)
        building = temp_path(os.path.join(experiment_path, MODELS))
        os.mkdir(building)
        try:
            for sub in ("metrics", "params", "tags"):
                os.mkdir(f"{building}/{sub}")
            for folder, values in (("params", checked_params), ("tags", checked_tags)):
                for key, value in values.items():
                    self._write_tag_file(f"{building}/{folder}", key, value)
            write_yaml(self._meta_path(building), meta)
            os.rename(building, f"{experiment_path}/{MODELS}/{model_id}")
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        self._model_experiment[model_id] = experiment_path
        return self.get_logged_model(model_id)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        model_dir = self._model_dir(model_id) if allow_deleted else self._live_model_dir(model_id)
        try:
            return self._model_from_dir(model_dir)
        except (DamagedFileError, KeyError, ValueError) as e:
            raise NotFoundError(f"Logged model {model_id!r} is unreadable: {e}") from None

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        status = _checked_status(status)
        self._update_model_meta(self._live_model_dir(model_id), status=int(status))
        return self.get_logged_model(model_id)

    def delete_logged_model(self, model_id: str) -> None:
        model_dir = self._live_model_dir(model_id)
        self._update_model_meta(model_dir, lifecycle_stage=LifecycleStage.DELETED)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        checked = logged_models.checked_tags(tags)
        folder = f"{self._live_model_dir(model_id)}/tags"
        self._check_keys(folder, checked, "Tag")
        for key, value in checked.items():
            self._write_tag_file(folder, key, value)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        validation.validate_key(key, "Tag key")
        path = f"{self._live_model_dir(model_id)}/tags/{key}"
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(
                f"No tag with key {key!r} found for model with ID {model_id!r}."
            ) from None

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        checked = logged_models.checked_params(params)
        folder = f"{self._live_model_dir(model_id)}/params"
        self._check_keys(folder, checked, "Param")
        for key, value in checked.items():
            self._write_tag_file(folder, key, value)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, str]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, object]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        models = []
        for experiment_id in experiment_ids:
            try:
                experiment_path = self._experiment_dir(str(experiment_id))
            except NotFoundError:
                continue
            for model_dir in self._model_dirs(experiment_path):
                try:
                    model = self._model_from_dir(model_dir)
                except (DamagedFileError, KeyError, ValueError) as e:
                    warn_damaged(f"logged model {model_dir}: {e}")
                    continue
                if model.lifecycle_stage == LifecycleStage.ACTIVE:
                    models.append(model)
        return logged_models.search_models(
            models, filter_string, datasets, order_by, max_results, page_token
        )

    def _model_metric_lines(self, run_id: str, metrics: list[Metric]) -> list[tuple[str, str]]:
        """(file, line) to append for the points that name a model (checked, not written)."""
        found = []
        for metric in metrics:
            if metric.model_id is None:
                continue
            folder = f"{self._live_model_dir(metric.model_id)}/metrics"
            line = _model_metric_line(
                metric,
                run_id,
                validation.metric_value(metric.key, metric.value),
                validation.metric_step(metric.key, metric.step),
                validation.metric_timestamp(metric.key, metric.timestamp),
            )
            found.append((f"{folder}/{metric.key}", line))
        return found

    # --- dataset inputs and model outputs -----------------------------------------------------
    def log_inputs(
        self, run_id: str, datasets: list[DatasetInput], models: list[str] | None = None
    ) -> None:
        checked = logged_models.checked_dataset_inputs(datasets)
        run_dir = self._active_run_dir(run_id)
        experiment_path = os.path.dirname(run_dir)
        for item in checked:
            dataset = item.dataset
            dataset_id = _md5(dataset.name, dataset.digest)
            dataset_dir = os.path.join(experiment_path, DATASETS, dataset_id)
            if not os.path.isfile(self._meta_path(dataset_dir)):
                os.makedirs(dataset_dir, exist_ok=True)
                write_yaml(
                    self._meta_path(dataset_dir),
                    {
                        "digest": dataset.digest,
                        "name": dataset.name,
                        "profile": dataset.profile,
                        "schema": dataset.schema,
                        "source": dataset.source,
                        "source_type": dataset.source_type,
                    },
                )
            self._write_input(run_dir, run_id, DATASET_SOURCE, dataset_id, dict(item.tags))
        for model_id in models or []:
            self._write_input(run_dir, run_id, MODEL_SOURCE, model_id, {})

    def _write_input(
        self,
        run_dir: str,
        run_id: str,
        source_type: str,
        source_id: str,
        tags: dict[str, str],
    ) -> None:
        input_dir = os.path.join(run_dir, INPUTS, _md5(source_id, run_id))
        if os.path.isfile(self._meta_path(input_dir)):
            return
        os.makedirs(input_dir, exist_ok=True)
        write_yaml(
            self._meta_path(input_dir),
            {
                # MLflow's FileStore writes the source id as destination_id too: kept, so each
                # reads the other's files.
                "destination_id": source_id,
                "destination_type": RUN_DESTINATION,
                "source_id": source_id,
                "source_type": source_type,
                "tags": tags,
            },
        )

    def log_outputs(self, run_id: str, models: list[LoggedModelOutput]) -> None:
        run_dir = self._active_run_dir(run_id)
        for output in models:
            step = validation.metric_step("step", output.step)
            self._model_dir(output.model_id)
            output_dir = os.path.join(run_dir, OUTPUTS, output.model_id)
            if os.path.isfile(self._meta_path(output_dir)):
                continue
            os.makedirs(output_dir, exist_ok=True)
            write_yaml(
                self._meta_path(output_dir),
                {
                    "destination_id": output.model_id,
                    "destination_type": "MODEL_OUTPUT",
                    "source_id": output.model_id,
                    "source_type": "RUN_OUTPUT",
                    "step": step,
                    "tags": {},
                },
            )

    def _metas(self, folder: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(name, meta.yaml) of each entry of a run's inputs/ or outputs/ folder."""
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            try:
                yield entry.name, self._read_meta(entry.path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except DamagedFileError as e:
                warn_damaged(str(e))

    def _run_inputs(self, run_dir: str) -> RunInputs:
        inputs = RunInputs()
        datasets_dir = os.path.join(os.path.dirname(run_dir), DATASETS)
        for _, meta in self._metas(os.path.join(run_dir, INPUTS)):
            source_id = str(meta.get("source_id"))
            if meta.get("source_type") == MODEL_SOURCE:
                inputs.model_inputs.append(source_id)
            elif meta.get("source_type") == DATASET_SOURCE:
                try:
                    values = self._read_meta(os.path.join(datasets_dir, source_id))
                    dataset = logged_models.dataset_from_dict(values)
                except (FileNotFoundError, NotADirectoryError, DamagedFileError, KeyError) as e:
                    warn_damaged(f"dataset {source_id} of run folder {run_dir}: {e}")
                    continue
                tags = {str(k): str(v) for k, v in (meta.get("tags") or {}).items()}
                inputs.dataset_inputs.append(DatasetInput(dataset, tags))
        return inputs

    def _run_outputs(self, run_dir: str) -> RunOutputs:
        outputs = RunOutputs()
        for name, meta in self._metas(os.path.join(run_dir, OUTPUTS)):
            if meta.get("destination_type") == "MODEL_OUTPUT":
                model_id = str(meta.get("destination_id") or name)
                outputs.model_outputs.append(LoggedModelOutput(model_id, int(meta.get("step", 0))))
        return outputs

    def search_datasets(self, experiment_ids: list[str]) -> list[DatasetSummary]:
        found: dict[DatasetSummary, None] = {}
        for experiment_id in experiment_ids:
            experiment_path = self._experiment_dir(str(experiment_id))
            for run_dir in self._run_dirs(experiment_path):
                for item in self._run_inputs(run_dir).dataset_inputs:
                    context = item.tags.get(logged_models.DATASET_CONTEXT_TAG)
                    summary = DatasetSummary(
                        str(experiment_id), item.dataset.name, item.dataset.digest, context
                    )
                    found.setdefault(summary)
        return list(found)


def _checked_status(status: object) -> LoggedModelStatus:
    try:
        return LoggedModelStatus.parse(status)  # type: ignore[arg-type]
    except ValueError as e:
        raise InvalidParameterError(str(e)) from None
