"""Custom Python models: any code as a model, in MLflow's layout for them.

    class AddN(tracking.pyfunc.PythonModel):
        def load_context(self, context):          # once, when the model is loaded
            self.n = float(open(context.artifacts["n"]).read())
        def predict(self, context, model_input, params=None):
            return model_input + self.n

    tracking.pyfunc.log_model("model", python_model=AddN(), artifacts={"n": "n.txt"})

The folder holds ``python_model.pkl`` (cloudpickle), ``artifacts/`` (each artifact copied in
from its URI: a path, s3://..., runs:/..., models:/...), ``code/`` (code_paths) and an MLmodel
whose only flavor is python_function with loader module ``mlflow.pyfunc.model``, so MLflow's
``mlflow.pyfunc.load_model`` loads it too (with Trackflow installed, as the pickle refers to
this module's PythonModel). Loading unpickles ``python_model.pkl``: only load trusted models.
"""

from __future__ import annotations

import inspect
import logging
import os
import pickle
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from tracking.errors import InvalidParameterError, NotFoundError
from tracking.models import model as model_dir
from tracking.models.environment import Requirements, installed

__all__ = ["PythonModel", "PythonModelContext", "load_pyfunc", "log_model", "save_model"]

_logger = logging.getLogger(__name__)

FLAVOR_NAME = model_dir.PYFUNC
#: MLflow's loader module first: the one save_model writes (MLflow loads it too)
PYFUNC_LOADER_MODULES = ("mlflow.pyfunc.model", "tracking.models.pyfunc.model")
PYTHON_MODEL_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"


class PythonModelContext:
    """What a PythonModel gets when it is loaded: its artifacts as local paths."""

    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any] | None = None):
        self._artifacts = dict(artifacts)
        self._model_config = model_config

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name -> absolute local path of its copy in the model folder."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        return self._model_config


class _NoTypeHints:
    """What MLflow's pyfunc wrapper reads from ``predict_type_hints``: no hints to apply."""

    input = None
    output = None


class PythonModel(ABC):
    """A custom model: subclass it, implement ``predict``, optionally ``load_context``."""

    def load_context(self, context: PythonModelContext) -> None:  # noqa: B027 (optional hook)
        """Load what `context.artifacts` holds; called once when the model is loaded."""

    @abstractmethod
    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """Predictions for `model_input` (checked against the signature); `params` are the
        inference params (defaults filled in from the signature's params)."""

    @property
    def predict_type_hints(self) -> _NoTypeHints:
        """Read by MLflow's loader (no type-hint based conversion for Trackflow models)."""
        return _NoTypeHints()


class _FunctionModel(PythonModel):
    """A plain function ``predict(model_input)`` as a PythonModel."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self.func(model_input)


class _Predictor:
    """The pyfunc of a loaded PythonModel: calls its predict with the context and params its
    signature accepts (``predict(self, model_input, params=None)`` works too, as in MLflow)."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context
        parameters = inspect.signature(python_model.predict).parameters
        self.takes_params = "params" in parameters
        plain = [p for p in parameters if p not in ("self", "params")]
        self.takes_context = "context" in parameters or len(plain) == 2

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        args = (self.context, data) if self.takes_context else (data,)
        if self.takes_params:
            return self.python_model.predict(*args, params=params)
        return self.python_model.predict(*args)

    def get_raw_model(self) -> Any:
        return self.python_model


def save_model(
    path: str | os.PathLike[str],
    python_model: PythonModel | Callable[[Any], Any] | None = None,
    artifacts: dict[str, str] | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
) -> None:
    """Write a custom model folder to local `path` (absent or empty).

    `python_model` is a PythonModel instance (or a function of the input); `artifacts` maps
    names to URIs whose files or folders are copied into the model; `code_paths` are copied
    into ``code/`` and put on sys.path when the model loads."""
    _save(
        os.fspath(path),
        {},
        python_model,
        artifacts,
        code_paths,
        signature,
        input_example,
        pip_requirements,
        extra_pip_requirements,
        metadata,
        model_config,
    )


def log_model(
    artifact_path: str | None = None,
    python_model: PythonModel | Callable[[Any], Any] | None = None,
    artifacts: dict[str, str] | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
    registered_model_name: str | None = None,
    *,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> model_dir.ModelInfo:
    """Save the custom model under `<artifact_path>/` of a run's artifacts (`run_id`'s, else
    the active run's, else a new run's); `registered_model_name` also registers it."""
    return model_dir.log(
        lambda local, extra: _save(
            local,
            extra,
            python_model,
            artifacts,
            code_paths,
            signature,
            input_example,
            pip_requirements,
            extra_pip_requirements,
            metadata,
            model_config,
        ),
        artifact_path,
        name,
        registered_model_name,
        run_id,
    )


def _save(
    path: str,
    extra: dict[str, Any],
    python_model: Any,
    artifacts: dict[str, str] | None,
    code_paths: Iterable[str | os.PathLike[str]] | None,
    signature: Any,
    input_example: Any,
    pip_requirements: Requirements,
    extra_pip_requirements: Requirements,
    metadata: dict[str, Any] | None,
    model_config: dict[str, Any] | None,
) -> model_dir.Model:
    if isinstance(python_model, PythonModel):
        model = python_model
    elif callable(python_model) and not hasattr(python_model, "predict"):
        model = _FunctionModel(python_model)
    elif python_model is not None and callable(getattr(python_model, "predict", None)):
        model = python_model  # a PythonModel of MLflow's, or a duck-typed one
    else:
        raise InvalidParameterError(
            "python_model must be a tracking.pyfunc.PythonModel instance or a function of the "
            f"model input, got {type(python_model).__name__}"
        )
    _check_artifacts(artifacts)

    def write(folder: str) -> model_dir.FlavorFiles:
        import cloudpickle

        file = os.path.join(folder, PYTHON_MODEL_FILE)
        try:
            with open(file, "wb") as out:
                cloudpickle.dump(model, out)
        except Exception as e:
            raise InvalidParameterError(
                f"The python_model could not be pickled with cloudpickle: {e!r}"
            ) from e
        saved = _copy_artifacts(folder, artifacts or {})
        conf: dict[str, Any] = {}
        if saved:
            conf["artifacts"] = saved
        conf.update(
            cloudpickle_version=cloudpickle.__version__,
            loader_module=PYFUNC_LOADER_MODULES[0],
            python_model=PYTHON_MODEL_FILE,
            streamable=False,
        )
        if model_config:
            conf["model_config"] = model_config
        packages = ["cloudpickle", "numpy", "pandas"]
        if installed("trackflow"):
            packages.append("trackflow")
        return model_dir.FlavorFiles(
            pyfunc_conf=conf,
            flavor_conf=None,
            packages=packages,
            predictor=lambda: _load(folder, conf),
        )

    return model_dir.save(
        path,
        FLAVOR_NAME,
        write,
        signature=signature,
        input_example=input_example,
        code_paths=code_paths,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        extra=extra,
    )


def _check_artifacts(artifacts: Any) -> None:
    if artifacts is None:
        return
    if not isinstance(artifacts, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str | os.PathLike) for k, v in artifacts.items()
    ):
        raise InvalidParameterError(
            "artifacts must map non-empty names to URIs (a path, s3://..., runs:/..., "
            f"models:/...), got {artifacts!r}"
        )
    bad = [k for k in artifacts if "/" in k or "\\" in k or k in (".", "..")]
    if bad:
        raise InvalidParameterError(f"Artifact names must not contain path separators: {bad}")


def _copy_artifacts(folder: str, artifacts: dict[str, str]) -> dict[str, dict[str, str]]:
    """Copy each artifact into ``artifacts/``; its MLmodel entry {path, uri} (MLflow's)."""
    saved: dict[str, dict[str, str]] = {}
    taken: set[str] = set()
    for name, uri in artifacts.items():
        uri = os.fspath(uri)
        with tempfile.TemporaryDirectory(prefix="trackflow-artifact-") as tmp:
            local = _fetch(uri, tmp)
            base = os.path.basename(os.path.normpath(local)) or name
            rel = f"{ARTIFACTS_DIR}/{base}"
            if rel in taken:
                rel = f"{ARTIFACTS_DIR}/{name}/{base}"
            target = os.path.join(folder, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(local):
                shutil.copytree(local, target)
            else:
                shutil.copy2(local, target)
        taken.add(rel)
        saved[name] = {"path": rel, "uri": uri}
    return saved


def _fetch(uri: str, tmp: str) -> str:
    """A local copy (or the local path itself) of the file or folder at `uri`."""
    from tracking.artifacts import ArtifactRepository
    from tracking.client import TrackingClient
    from tracking.registry import uris

    parsed = uris.parse_model_uri(uri)
    if parsed.scheme == "models":
        return uris.download_model(uri, tmp)
    if parsed.scheme == "runs":
        assert parsed.run_id is not None
        try:
            return TrackingClient().download_artifacts(parsed.run_id, parsed.path, tmp)
        except NotFoundError as e:
            raise NotFoundError(f"Artifact {uri} does not exist: {e.message}") from None
    local = uris.local_path(uri)
    if local is not None:
        if not os.path.exists(local):
            raise NotFoundError(f"Artifact {uri} does not exist")
        return local
    parent, _, base = uri.rstrip("/").rpartition("/")
    try:
        return ArtifactRepository(parent).download_artifacts(base, tmp)
    except NotFoundError as e:
        raise NotFoundError(f"Artifact {uri} does not exist: {e.message}") from None


# --- loading ---------------------------------------------------------------------------------
def load_pyfunc(path: str, model: model_dir.Model) -> _Predictor:
    """The custom model in the local folder `path`, its load_context called."""
    conf = model.flavors[FLAVOR_NAME]
    return _load(path, conf)


def _load(path: str, conf: dict[str, Any]) -> _Predictor:
    if conf.get("model_code_path"):
        raise InvalidParameterError(
            "This model was logged from code (MLflow's models-from-code), which Trackflow does "
            "not load; load it with mlflow.pyfunc.load_model"
        )
    file = os.path.join(path, str(conf.get("python_model") or PYTHON_MODEL_FILE))
    if not os.path.isfile(file):
        raise NotFoundError(f"The model at {path} lacks its {PYTHON_MODEL_FILE}")
    saved_with = conf.get("cloudpickle_version")
    if saved_with and installed("cloudpickle"):
        import cloudpickle

        if saved_with != cloudpickle.__version__:
            _logger.warning(
                "The model was saved with cloudpickle %s and this is %s: it may not load",
                saved_with,
                cloudpickle.__version__,
            )
    with open(file, "rb") as f:
        python_model = pickle.load(f)  # cloudpickle files are plain pickles
    artifacts = {
        name: os.path.join(path, *str(entry["path"]).split("/"))
        for name, entry in (conf.get("artifacts") or {}).items()
    }
    context = PythonModelContext(artifacts, conf.get("model_config"))
    python_model.load_context(context)
    return _Predictor(python_model, context)
