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

import os
import pickle
import warnings
from collections.abc import Iterable
from typing import Any

from tracking.errors import InvalidParameterError, NotFoundError, RegistryUnavailableError
from tracking.models import model as model_dir
from tracking.models.environment import Requirements
from tracking.models.environment import installed as _installed
from tracking.models.flavors import MethodPredictor
from tracking.models.model import Model, ModelInfo
from tracking.models.sklearn.autologging import autolog, scoped

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
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
SUPPORTED_SERIALIZATION_FORMATS = (
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_SKOPS,
)
#: MLflow's loader module first (MLflow's pyfunc reads the same sklearn flavor we write)
PYFUNC_LOADER_MODULES = ("mlflow.sklearn", "tracking.models.sklearn")
#: estimators of this library are autologged by this flavor (see tracking.models.flavors)
AUTOLOG_LIBRARY = "sklearn"
scoped_autolog = scoped


# --- saving ----------------------------------------------------------------------------------
def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
    skops_trusted_types: list[str] | None = None,
    *,
    signature: Any = None,
    input_example: Any = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write the model folder (MLmodel, model file, environment files) to local `path`.

    `path` must not exist or be an empty directory. `pip_requirements` replaces the inferred
    requirements; `extra_pip_requirements` adds to them (either: a list or a requirements file).
    `signature` (a ModelSignature) is stored as given; without one it is inferred from
    `input_example` (stored as input_example.json), as MLflow does; False stores none."""
    _save(
        sk_model,
        os.fspath(path),
        {},
        serialization_format,
        skops_trusted_types,
        signature=signature,
        input_example=input_example,
        code_paths=code_paths,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
    skops_trusted_types: list[str] | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save the model under `<artifact_path>/` in a run's artifacts: `run_id`'s, else the active
    run's, else a new run's (as MLflow does). `name` is MLflow 3's spelling of artifact_path.

    With `registered_model_name`, the logged model also becomes a new version of that
    registered model (created if missing); ModelInfo.registered_model_version is its number."""
    return model_dir.log(
        lambda local, extra: _save(
            sk_model,
            local,
            extra,
            serialization_format,
            skops_trusted_types,
            signature=signature,
            input_example=input_example,
            code_paths=code_paths,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            metadata=metadata,
        ),
        artifact_path,
        name,
        registered_model_name,
        run_id,
    )


def _save(
    sk_model: Any,
    path: str,
    extra: dict[str, Any],
    serialization_format: str,
    skops_trusted_types: list[str] | None,
    **options: Any,
) -> Model:
    fmt = check_serialization_format(serialization_format)

    def write(folder: str) -> model_dir.FlavorFiles:
        model_file = "model.skops" if fmt == SERIALIZATION_FORMAT_SKOPS else "model.pkl"
        trusted = dump_estimator(
            sk_model, os.path.join(folder, model_file), fmt, skops_trusted_types
        )
        flavor: dict[str, Any] = {
            "pickled_model": model_file,
            "serialization_format": fmt,
            "sklearn_version": _version("scikit-learn"),
        }
        if fmt == SERIALIZATION_FORMAT_SKOPS:
            flavor["skops_trusted_types"] = trusted
        pyfunc = {
            "loader_module": PYFUNC_LOADER_MODULES[0],
            "model_path": model_file,
            "predict_fn": "predict",
        }
        packages = ["scikit-learn", "numpy", "scipy"]
        if fmt in (SERIALIZATION_FORMAT_CLOUDPICKLE, SERIALIZATION_FORMAT_SKOPS):
            packages.append(fmt)
        return model_dir.FlavorFiles(
            pyfunc, flavor, packages, predictor=lambda: MethodPredictor(sk_model)
        )

    return model_dir.save(path, FLAVOR_NAME, write, extra=extra, **options)


def check_serialization_format(serialization_format: str) -> str:
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


def dump_estimator(
    sk_model: Any, file: str, fmt: str, trusted: list[str] | None
) -> list[str] | None:
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


def _version(package: str) -> str | None:
    from importlib import metadata

    return metadata.version(package) if _installed(package) else None


# --- loading ---------------------------------------------------------------------------------
def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """Load an estimator from ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
    ``models:/<name>/<stage>``, ``models:/<name>@<alias>``, a local path, ``file://`` or any
    fsspec artifact URI (``s3://...``). Unpickling runs code from the file: load trusted models
    only."""
    return model_dir.load_local(model_uri, _load_local)


def load_pyfunc(path: str, model: Model) -> MethodPredictor:
    """The pyfunc of the sklearn model in the local folder `path` (for tracking.pyfunc)."""
    conf = model.flavors.get("python_function", {})
    raw = _load_local(path, model, path)
    predict_fn = str(conf.get("predict_fn") or "predict")
    if not callable(getattr(raw, predict_fn, None)):
        raise InvalidParameterError(
            f"The model at {path} ({type(raw).__name__}) has no {predict_fn}() method"
        )
    return MethodPredictor(raw, predict_fn)


def _load_local(path: str, meta: Model, uri: str) -> Any:
    conf = meta.flavor_conf(FLAVOR_NAME, uri)
    model_dir.add_code_to_path(path, conf)
    return load_estimator(path, conf, uri)


def load_estimator(path: str, conf: dict[str, Any], uri: str) -> Any:
    """The estimator a flavor configuration describes (``pickled_model`` or ``data``,
    ``serialization_format``, ``skops_trusted_types``); shared with the LightGBM flavor."""
    fmt = conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE)
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterError(f"The model at {uri} uses unknown serialization {fmt!r}")
    name = conf.get("pickled_model") or conf.get("data") or "model.pkl"
    file = os.path.join(path, name)
    if not os.path.isfile(file):
        raise NotFoundError(f"The model at {uri} lacks its model file {name}")
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        return _skops().load(file, trusted=conf.get("skops_trusted_types"))
    with open(file, "rb") as f:
        return pickle.load(f)  # cloudpickle files are plain pickles (cloudpickle.load is this)
