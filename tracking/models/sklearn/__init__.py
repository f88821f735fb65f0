"""The scikit-learn flavor: save, log and load estimators in MLflow's model format.

A logged model is a folder in the run's artifacts (MLflow 2's layout), so
``mlflow.sklearn.load_model`` can read what this module writes and vice versa::

    <artifact_path>/MLmodel            flavors: python_function + sklearn
    <artifact_path>/model.pkl          cloudpickle or pickle (model.skops for skops)
    <artifact_path>/requirements.txt   pinned pip requirements
    <artifact_path>/python_env.yaml    virtualenv spec (-r requirements.txt)
    <artifact_path>/conda.yaml         conda spec with the same pip requirements

``registered_model_name=`` also registers the logged model in the model registry, and
``load_model`` accepts registry URIs (``models:/<name>/<version|stage|latest>``,
``models:/<name>@<alias>``) besides ``runs:/`` URIs, paths and artifact URIs.

Loading a pickled model runs code from the file: only load models you trust. This module does
not import scikit-learn itself; unpickling a model does.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import tempfile
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import yaml

from tracking import __version__, fluent
from tracking.artifacts import artifact_subpath
from tracking.client import TrackingClient
from tracking.errors import InvalidParameterError, NotFoundError, RegistryUnavailableError
from tracking.models.sklearn.autologging import autolog
from tracking.registry.uris import download_model
from tracking.validation import MAX_TAG_VAL_LENGTH

__all__ = [
    "SUPPORTED_SERIALIZATION_FORMATS",
    "ModelInfo",
    "RegistryUnavailableError",
    "autolog",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sklearn"
MLMODEL_FILE = "MLmodel"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
SUPPORTED_SERIALIZATION_FORMATS = (
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_SKOPS,
)
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"  # MLflow 2's list of a run's models
# MLflow's pyfunc loads models through this module; it reads the same sklearn flavor we write.
PYFUNC_LOADER_MODULE = "mlflow.sklearn"


@dataclass(frozen=True)
class ModelInfo:
    """What log_model logged: load it again with ``load_model(info.model_uri)``."""

    artifact_path: str
    model_uri: str
    run_id: str
    flavors: dict[str, Any] = field(default_factory=dict)
    model_uuid: str = ""
    utc_time_created: str = ""
    registered_model_version: int | None = None


# --- saving ----------------------------------------------------------------------------------
def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    pip_requirements: Iterable[str] | str | None = None,
    extra_pip_requirements: Iterable[str] | str | None = None,
    skops_trusted_types: list[str] | None = None,
) -> None:
    """Write the model folder (MLmodel, model file, environment files) to local `path`.

    `path` must not exist or be an empty directory. `pip_requirements` replaces the inferred
    requirements; `extra_pip_requirements` adds to them (either: a list or a requirements file).
    """
    _write_model(
        sk_model,
        os.fspath(path),
        serialization_format,
        pip_requirements,
        extra_pip_requirements,
        skops_trusted_types,
        {},
    )


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    pip_requirements: Iterable[str] | str | None = None,
    extra_pip_requirements: Iterable[str] | str | None = None,
    skops_trusted_types: list[str] | None = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save the model under `<artifact_path>/` in a run's artifacts: `run_id`'s, else the active
    run's, else a new run's (as MLflow does). `name` is MLflow 3's spelling of artifact_path.

    With `registered_model_name`, the logged model also becomes a new version of that
    registered model (created if missing); ModelInfo.registered_model_version is its number."""
    if registered_model_name is not None:
        from tracking.registry import validation as registry_validation

        registry_validation.model_name(registered_model_name)  # fail before logging anything
    if (artifact_path is None) == (name is None):
        raise InvalidParameterError(
            "log_model needs exactly one of artifact_path or name (name is MLflow 3's spelling)"
        )
    given = artifact_path if artifact_path is not None else name
    rel = artifact_subpath(given, "model artifact path")
    if not rel:
        raise InvalidParameterError(f"Invalid model artifact path {given!r}: it must not be empty")
    client = fluent.current_client()
    run_id = run_id or fluent._run_id()
    extra = {"artifact_path": rel, "run_id": run_id}
    with tempfile.TemporaryDirectory(prefix="trackflow-model-") as tmp:
        local = os.path.join(tmp, "model")
        meta = _write_model(
            sk_model,
            local,
            serialization_format,
            pip_requirements,
            extra_pip_requirements,
            skops_trusted_types,
            extra,
        )
        client.log_artifacts(run_id, local, rel)
    _record_history(client, run_id, meta)
    model_uri = f"runs:/{run_id}/{rel}"
    version = None
    if registered_model_name is not None:
        version = client.register_model(model_uri, registered_model_name).version
    return ModelInfo(
        artifact_path=rel,
        model_uri=model_uri,
        run_id=run_id,
        flavors=meta["flavors"],
        model_uuid=meta["model_uuid"],
        utc_time_created=meta["utc_time_created"],
        registered_model_version=version,
    )


def _write_model(
    sk_model: Any,
    path: str,
    serialization_format: str,
    pip_requirements: Iterable[str] | str | None,
    extra_pip_requirements: Iterable[str] | str | None,
    skops_trusted_types: list[str] | None,
    extra_meta: dict[str, Any],
) -> dict[str, Any]:
    """Write the model folder; return the MLmodel content."""
    fmt = _check_format(serialization_format)
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidParameterError(
            "Pass only one of pip_requirements (replaces the inferred list) or "
            "extra_pip_requirements (adds to it)"
        )
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise InvalidParameterError(f"Cannot save the model to {path!r}: the path already exists")
    os.makedirs(path, exist_ok=True)

    model_file = "model.skops" if fmt == SERIALIZATION_FORMAT_SKOPS else "model.pkl"
    trusted = _dump(sk_model, os.path.join(path, model_file), fmt, skops_trusted_types)

    if pip_requirements is not None:
        requirements = _read_requirements(pip_requirements)
    else:
        requirements = _inferred_requirements(fmt)
        requirements += _read_requirements(extra_pip_requirements)
    python_version = platform.python_version()
    _write_text(path, "requirements.txt", "".join(f"{r}\n" for r in requirements))
    python_env = {
        "python": python_version,
        "build_dependencies": [_pin("pip"), _pin("setuptools"), _pin("wheel")],
        "dependencies": ["-r requirements.txt"],
    }
    _write_text(path, "python_env.yaml", _yaml(python_env))
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python_version}", _pin("pip", "<="), {"pip": requirements}],
        "name": "mlflow-env",
    }
    _write_text(path, "conda.yaml", _yaml(conda))

    sklearn_flavor: dict[str, Any] = {
        "code": None,
        "pickled_model": model_file,
        "serialization_format": fmt,
        "sklearn_version": _version("scikit-learn"),
    }
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        sklearn_flavor["skops_trusted_types"] = trusted
    meta: dict[str, Any] = {
        **extra_meta,
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": PYFUNC_LOADER_MODULE,
                "model_path": model_file,
                "predict_fn": "predict",
                "python_version": python_version,
            },
            FLAVOR_NAME: sklearn_flavor,
        },
        "model_size_bytes": os.path.getsize(os.path.join(path, model_file)),
        "model_uuid": uuid.uuid4().hex,
        "trackflow_version": __version__,
        # MLflow's format: naive UTC datetime, str()-ed ("2024-05-01 12:00:00.123456").
        "utc_time_created": str(datetime.now(UTC).replace(tzinfo=None)),
    }
    _write_text(path, MLMODEL_FILE, _yaml(meta))
    return meta


def _check_format(serialization_format: str) -> str:
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterError(
            f"Unsupported serialization_format {serialization_format!r}; use one of "
            f"{', '.join(SUPPORTED_SERIALIZATION_FORMATS)}"
        )
    if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE and not _installed("cloudpickle"):
        warnings.warn(
            "cloudpickle is not installed: saving the model with pickle instead",
            stacklevel=4,
        )
        return SERIALIZATION_FORMAT_PICKLE
    if serialization_format == SERIALIZATION_FORMAT_SKOPS and not _installed("skops"):
        raise InvalidParameterError(
            "serialization_format='skops' needs the skops package: pip install skops "
            "(or use 'cloudpickle' / 'pickle')"
        )
    return serialization_format


def _skops() -> Any:
    """skops.io, or an ImportError naming the extra that installs it."""
    try:
        import skops.io
    except ImportError:
        raise ImportError(
            "The skops serialization format needs skops: pip install 'trackflow[skops]'"
        ) from None
    return skops.io


def _dump(sk_model: Any, file: str, fmt: str, trusted: list[str] | None) -> list[str] | None:
    """Serialize the model; for skops, return the trusted types a load will need."""
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        skops_io = _skops()

        skops_io.dump(sk_model, file)
        untrusted = sorted(set(skops_io.get_untrusted_types(file=file)) - set(trusted or ()))
        if untrusted:
            raise InvalidParameterError(
                f"The model uses types skops does not trust by default: {untrusted}. If loading "
                "them is safe, pass them as skops_trusted_types=[...]"
            )
        return sorted(trusted) if trusted else None
    with open(file, "wb") as out:
        if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE:
            import cloudpickle

            cloudpickle.dump(sk_model, out)
        else:
            pickle.dump(sk_model, out, protocol=pickle.DEFAULT_PROTOCOL)
    return None


def _inferred_requirements(fmt: str) -> list[str]:
    """Pins for what unpickling an estimator needs (MLflow infers the same packages)."""
    packages = ["scikit-learn", "numpy", "scipy"]
    if fmt in (SERIALIZATION_FORMAT_CLOUDPICKLE, SERIALIZATION_FORMAT_SKOPS):
        packages.append(fmt)
    return [_pin(p) for p in packages if _installed(p)]


def _read_requirements(requirements: Iterable[str] | str | None) -> list[str]:
    """A list of requirement strings, or the lines of a requirements file."""
    if requirements is None:
        return []
    if isinstance(requirements, str | os.PathLike):
        with open(requirements, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        lines = [str(r) for r in requirements]
    stripped = (line.strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def _installed(package: str) -> bool:
    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def _version(package: str) -> str | None:
    return metadata.version(package) if _installed(package) else None


def _pin(package: str, op: str = "==") -> str:
    version = _version(package)
    return f"{package}{op}{version}" if version else package


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def _write_text(folder: str, name: str, text: str) -> None:
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        f.write(text)


def _record_history(client: TrackingClient, run_id: str, meta: dict[str, Any]) -> None:
    """Append the model to the run's `mlflow.log-model.history` tag (oldest dropped to fit)."""
    tags = client.get_run(run_id).data.tags
    try:
        history = json.loads(tags.get(LOG_MODEL_HISTORY_TAG, "[]"))
        history = history if isinstance(history, list) else []
    except json.JSONDecodeError:
        history = []
    history.append(meta)
    value = json.dumps(history)
    while len(value) > MAX_TAG_VAL_LENGTH and len(history) > 1:
        history.pop(0)
        value = json.dumps(history)
    if len(value) <= MAX_TAG_VAL_LENGTH:
        client.set_tag(run_id, LOG_MODEL_HISTORY_TAG, value)


# --- loading ---------------------------------------------------------------------------------
def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load an estimator from ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
    ``models:/<name>/<stage>``, ``models:/<name>@<alias>``, a local path, ``file://`` or any
    fsspec artifact URI (``s3://...``). Unpickling runs code from the file: load trusted models
    only."""
    uri = os.fspath(model_uri)
    with tempfile.TemporaryDirectory(prefix="trackflow-model-") as tmp:
        return _load_local(download_model(uri, tmp), uri)


def _no_mlmodel(uri: str) -> NotFoundError:
    return NotFoundError(f"no MLmodel file at {uri}: was a model logged there?")


def _load_local(path: str, uri: str) -> Any:
    mlmodel = os.path.join(path, MLMODEL_FILE)
    if not os.path.isfile(mlmodel):
        raise _no_mlmodel(uri)
    with open(mlmodel, encoding="utf-8") as f:
        meta = yaml.safe_load(f) or {}
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    conf = flavors.get(FLAVOR_NAME) if isinstance(flavors, dict) else None
    if not isinstance(conf, dict):
        found = ", ".join(flavors) if isinstance(flavors, dict) and flavors else "none"
        raise InvalidParameterError(
            f"The model at {uri} has no {FLAVOR_NAME} flavor (its flavors: {found}); "
            "load it with the library that logged it"
        )
    fmt = conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE)
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterError(f"The model at {uri} uses unknown serialization {fmt!r}")
    file = os.path.join(path, conf.get("pickled_model", "model.pkl"))
    if not os.path.isfile(file):
        raise NotFoundError(f"The model at {uri} lacks its model file {conf.get('pickled_model')}")
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        return _skops().load(file, trusted=conf.get("skops_trusted_types"))
    with open(file, "rb") as f:
        return pickle.load(f)  # cloudpickle files are plain pickles (cloudpickle.load is this)
