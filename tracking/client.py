"""TrackingClient: the explicit-id API (MLflow's MlflowClient) over one store and fsspec."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tracking import config, system_tags, write_behind
from tracking.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
    now_ms,
)
from tracking.errors import InvalidParameterError
from tracking.stores import get_store
from tracking.stores.base import SEARCH_MAX_RESULTS_DEFAULT, PagedList, TrackingStore

if TYPE_CHECKING:
    from tracking.artifacts import ArtifactRepository
    from tracking.registry import ModelVersion, RegisteredModel, RegistryStore


class TrackingClient:
    """Experiments, runs, artifacts and the model registry; `tracking_uri` defaults to the
    active one, `registry_uri` to set_registry_uri's / $MLFLOW_REGISTRY_URI / the tracking URI."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri or config.get_tracking_uri()
        self._store: TrackingStore = get_store(self.tracking_uri)
        self._artifact_uris: dict[str, str] = {}
        self._registry_uri = config.resolve_uri(registry_uri) if registry_uri else None

    @property
    def store(self) -> TrackingStore:
        """The tracking store as it is now: writes this process queued (tracking.write_behind)
        may not have reached it yet. Use `synced_store()` to read or write after them."""
        return self._store

    def synced_store(self) -> TrackingStore:
        """The tracking store once every write this process queued has reached it: what this
        client's methods use, so that callers read their own writes and write in order."""
        write_behind.flush()
        return self._store

    # --- experiments -------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> str:
        """Create an experiment; returns its id."""
        str_tags = {k: str(v) for k, v in (tags or {}).items()}
        return self.synced_store().create_experiment(name, artifact_location, str_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.synced_store().get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.synced_store().get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        return self.synced_store().search_experiments(
            ViewType.parse(view_type), max_results, filter_string, order_by, page_token
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self.synced_store().delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.synced_store().restore_experiment(str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.synced_store().rename_experiment(str(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.synced_store().set_experiment_tag(str(experiment_id), RunTag(key, str(value)))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.synced_store().delete_experiment_tag(str(experiment_id), key)

    # --- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run. Unlike the fluent API, adds no system tags but the run name."""
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        name = run_name or all_tags.get(system_tags.RUN_NAME) or system_tags.random_run_name()
        return self.synced_store().create_run(
            experiment_id=str(experiment_id),
            user_id=all_tags.get(system_tags.USER, system_tags.current_user()),
            start_time=start_time if start_time is not None else now_ms(),
            tags=[RunTag(k, v) for k, v in all_tags.items()],
            run_name=name,
            run_id=run_id,
        )

    def get_run(self, run_id: str) -> Run:
        return self.synced_store().get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        parent = self.get_run(run_id).data.tags.get(system_tags.PARENT_RUN_ID)
        return self.get_run(parent) if parent else None

    def update_run(
        self, run_id: str, status: str | None = None, name: str | None = None
    ) -> RunInfo:
        end_time = now_ms() if status and RunStatus.is_terminated(status) else None
        return self.synced_store().update_run_info(run_id, status, end_time, name)

    def set_terminated(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None
    ) -> RunInfo:
        """End a run with FINISHED (default), FAILED or KILLED."""
        RunStatus.parse(status)
        return self.synced_store().update_run_info(
            run_id, status, end_time if end_time is not None else now_ms()
        )

    def delete_run(self, run_id: str) -> None:
        self.synced_store().delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.synced_store().restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        return self.synced_store().search_runs(
            [str(i) for i in ids],
            filter_string,
            ViewType.parse(run_view_type),
            max_results,
            order_by,
            page_token,
        )

    # --- logging ------------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        *,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> None:
        """Append a point to a metric's history; `model_id` also records it as a metric of
        that LoggedModel, computed on the dataset named by `dataset_name`/`dataset_digest`."""
        ts = timestamp if timestamp is not None else now_ms()
        metric = Metric(key, value, ts, step or 0, model_id, dataset_name, dataset_digest)
        self.synced_store().log_metric(run_id, metric)

    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        self.synced_store().log_param(run_id, Param(key, str(value)))
        return value

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.synced_store().set_tag(run_id, RunTag(key, str(value)))

    def delete_tag(self, run_id: str, key: str) -> None:
        self.synced_store().delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log many values; split into chunks that fit MLflow's per-request limits."""
        self.synced_store().log_all(
            run_id,
            metrics,
            [Param(p.key, str(p.value)) for p in params],
            [RunTag(t.key, str(t.value)) for t in tags],
        )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged value of a metric, in logging order."""
        return self.synced_store().get_metric_history(run_id, key)

    # --- dataset inputs, logged models (MLflow 3) ---------------------------------------------
    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[Any] | None = None,
    ) -> None:
        """Record datasets (and LoggedModels: ids or objects with `model_id`) a run used."""
        model_ids = [m if isinstance(m, str) else m.model_id for m in models or []]
        self.synced_store().log_inputs(run_id, list(datasets or []), model_ids)

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        """Record LoggedModels a run produced."""
        self.synced_store().log_outputs(run_id, list(models))

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        return self.synced_store().create_logged_model(
            experiment_id,
            name,
            source_run_id,
            {k: str(v) for k, v in (tags or {}).items()},
            {k: str(v) for k, v in (params or {}).items()},
            model_type,
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """A LoggedModel, as MLflow 3 clients log them (models:/<model_id>)."""
        return self.synced_store().get_logged_model(model_id)

    def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus | str | int
    ) -> LoggedModel:
        try:
            checked = LoggedModelStatus.parse(status)
        except ValueError as e:
            raise InvalidParameterError(str(e)) from None
        return self.synced_store().finalize_logged_model(model_id, checked)

    def delete_logged_model(self, model_id: str) -> None:
        self.synced_store().delete_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        self.synced_store().set_logged_model_tags(model_id, {k: str(v) for k, v in tags.items()})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.synced_store().delete_logged_model_tag(model_id, key)

    def log_model_params(self, model_id: str, params: dict[str, Any]) -> None:
        self.synced_store().log_logged_model_params(
            model_id, {k: str(v) for k, v in params.items()}
        )

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, str]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """One page of LoggedModels (see TrackingStore.search_logged_models)."""
        return self.synced_store().search_logged_models(
            [str(e) for e in experiment_ids],
            filter_string,
            datasets,
            max_results,
            order_by,
            page_token,
        )

    # --- artifacts ----------------------------------------------------------------------------
    def get_artifact_uri(self, run_id: str) -> str:
        uri = self._artifact_uris.get(run_id)
        if uri is None:
            uri = self._artifact_uris[run_id] = self.get_run(run_id).info.artifact_uri
        return uri

    def _artifact_repo(self, run_id: str) -> ArtifactRepository:
        return self.artifact_repo_at(self.get_artifact_uri(run_id))

    def artifact_repo_at(self, artifact_uri: str) -> ArtifactRepository:
        """The artifacts at `artifact_uri` (a run's artifact URI, or a folder inside it)."""
        from tracking.artifacts import ArtifactRepository

        # mlflow-artifacts:/ URIs go through the artifact proxy of *this* client's server.
        proxied = artifact_uri.startswith("mlflow-artifacts:")
        options = {"tracking_uri": self.tracking_uri} if proxied else None
        return ArtifactRepository(artifact_uri, options)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        self._artifact_repo(run_id).log_artifact(local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        self._artifact_repo(run_id).log_artifacts(local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._artifact_repo(run_id).write_bytes(artifact_file, text.encode("utf-8"))

    def log_dict(self, run_id: str, dictionary: dict[str, Any], artifact_file: str) -> None:
        """JSON, or YAML when `artifact_file` ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dictionary, default_flow_style=False, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2)
        self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure (format from the file extension)."""
        if not hasattr(figure, "savefig"):
            raise InvalidParameterError(
                f"log_figure needs a matplotlib Figure, got {type(figure).__name__}"
            )
        buffer = io.BytesIO()
        fmt = os.path.splitext(artifact_file)[1].lstrip(".") or "png"
        figure.savefig(buffer, format=fmt)
        self._artifact_repo(run_id).write_bytes(artifact_file, buffer.getvalue())

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Save a numpy array (HxW, HxWx3, HxWx4; uint8 or floats in [0, 1]) or a PIL image."""
        try:
            from PIL import Image
        except ImportError:
            raise ImportError("log_image needs Pillow: pip install 'trackflow[images]'") from None
        if not isinstance(image, Image.Image):
            image = Image.fromarray(_image_array(image))
        buffer = io.BytesIO()
        fmt = (os.path.splitext(artifact_file)[1].lstrip(".") or "png").upper()
        image.save(buffer, format="JPEG" if fmt == "JPG" else fmt)
        self._artifact_repo(run_id).write_bytes(artifact_file, buffer.getvalue())

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self._artifact_repo(run_id).list_artifacts(path)

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str:
        """Copy an artifact file or folder to `dst_path` (a temp dir by default); returns it."""
        return self._artifact_repo(run_id).download_artifacts(path, dst_path)

    # --- model registry -----------------------------------------------------------------------
    @property
    def registry_uri(self) -> str:
        from tracking.registry import get_registry_uri

        return self._registry_uri or get_registry_uri(self.tracking_uri)

    @property
    def registry(self) -> RegistryStore:
        """The registry store of `registry_uri` (file or SQL, chosen like the tracking store)."""
        from tracking.registry import get_registry_store

        return get_registry_store(self.registry_uri)

    def register_model(
        self, model_uri: str, name: str, tags: dict[str, Any] | None = None, **_: Any
    ) -> ModelVersion:
        """Register the model at `model_uri` (runs:/, models:/, a path or artifact URI) as a new
        version of `name`, creating the registered model if needed. For runs:/ URIs the
        version's source is the resolved artifact location and its run_id the run's."""
        from tracking.errors import AlreadyExistsError, NotFoundError
        from tracking.registry import uris
        from tracking.registry import validation as check
        from tracking.uris import local_path

        check.model_name(name)
        check.tags(tags, "Model version")
        source, run_id = uris.registration_source(model_uri, self)
        local = local_path(source)
        if local is not None and not os.path.isfile(os.path.join(local, "MLmodel")):
            raise NotFoundError(
                f"Cannot register {model_uri!r}: no MLmodel file at {source} "
                "(log the model first, e.g. with tracking.models.sklearn.log_model)"
            )
        with contextlib.suppress(AlreadyExistsError):  # registered by a racing caller
            self.registry.create_registered_model(name)
        return self.create_model_version(name, source, run_id=run_id, tags=tags)

    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        from tracking.registry import validation as check

        return self.registry.create_registered_model(
            name, check.tags(tags, "Registered model"), description
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.registry.get_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Registered models matching e.g. "name LIKE 'iris%'" or "tags.team = 'a'"."""
        return self.registry.search_registered_models(
            filter_string, max_results, order_by, page_token
        )

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        return self.registry.update_registered_model(name, description)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.registry.rename_registered_model(name, new_name)

    def delete_registered_model(self, name: str) -> None:
        """Delete the model with all its versions, tags and aliases (for good)."""
        self.registry.delete_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.registry.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.registry.delete_registered_model_tag(name, key)

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        **_: Any,
    ) -> ModelVersion:
        from tracking.registry import validation as check

        return self.registry.create_model_version(
            name, source, run_id, check.tags(tags, "Model version"), run_link, description
        )

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.registry.get_model_version(name, version)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        return self.registry.get_model_version_download_uri(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Versions matching e.g. "name = 'iris'" or "run_id = '...'"; newest change first."""
        return self.registry.search_model_versions(filter_string, max_results, order_by, page_token)

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        return self.registry.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: int | str) -> None:
        self.registry.delete_model_version(name, version)

    def set_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Tag a version, given by number or (as MLflow allows) by stage: its newest there."""
        version = self._version_or_stage(name, version, stage)
        self.registry.set_model_version_tag(name, version, key, str(value))  # type: ignore[arg-type]  # None: the store names it

    def delete_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        stage: str | None = None,
    ) -> None:
        version = self._version_or_stage(name, version, stage)
        self.registry.delete_model_version_tag(name, version, key)  # type: ignore[arg-type]  # None: as above

    def _version_or_stage(
        self, name: str, version: int | str | None, stage: str | None
    ) -> int | str:
        if (version is None) == (stage is None):
            raise InvalidParameterError("Pass exactly one of version or stage")
        if version is not None:
            return version
        found = self.get_latest_versions(name, [stage])  # type: ignore[list-item]  # set when version is None
        if not found:
            from tracking.errors import NotFoundError

            raise NotFoundError(f"Registered model {name!r} has no version in stage {stage!r}")
        return found[0].version

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Move a version to None, Staging, Production or Archived (any to any, as MLflow);
        archive_existing_versions=True archives the versions already in Staging/Production."""
        return self.registry.transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The newest version in each of `stages` (default: each stage that has one)."""
        return self.registry.get_latest_versions(name, stages)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        self.registry.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.registry.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.registry.get_model_version_by_alias(name, alias)


def _image_array(image: Any) -> Any:
    import numpy as np

    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InvalidParameterError(
            f"log_image expects an array of shape HxW, HxWx1, HxWx3 or HxWx4, got {array.shape}"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype.kind == "f":
        if np.nanmin(array) < 0 or np.nanmax(array) > 1:
            raise InvalidParameterError("log_image float arrays must have values in [0, 1]")
        array = (array * 255).round().astype(np.uint8)
    elif array.dtype.kind in "iub":
        if array.min() < 0 or array.max() > 255:
            raise InvalidParameterError("log_image integer arrays must have values in 0..255")
        array = array.astype(np.uint8)
    else:
        raise InvalidParameterError(f"log_image cannot store arrays of dtype {array.dtype}")
    return array


MlflowClient = TrackingClient
