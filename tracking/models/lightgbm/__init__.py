"""The LightGBM flavor: Boosters and the scikit-learn API models, in MLflow's layout.

    <artifact_path>/MLmodel      flavors: python_function (loader mlflow.lightgbm) + lightgbm
    <artifact_path>/model.lgb    a Booster, in LightGBM's own text format
    <artifact_path>/model.pkl    an LGBMClassifier / LGBMRegressor / ... (cloudpickle or pickle;
                                 model.skops with serialization_format="skops")

``mlflow.lightgbm.load_model`` and ``mlflow.pyfunc.load_model`` read what this module writes,
and ``load_model`` here reads MLflow's (MLflow 3 saves the scikit-learn API models with skops
by default: loading those needs the skops package). Needs ``pip install 'trackflow[lightgbm]'``;
importing this module does not import LightGBM. Unpickling a model runs code from its file:
load trusted models only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tracking.models import model as model_dir
from tracking.models.environment import Requirements
from tracking.models.flavors import MethodPredictor, require
from tracking.models.lightgbm.autologging import autolog, scoped
from tracking.models.model import Model, ModelInfo
from tracking.models.sklearn import (
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_SKOPS,
    check_serialization_format,
    dump_estimator,
    load_estimator,
)

__all__ = ["ModelInfo", "autolog", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "lightgbm"
EXTRA = "lightgbm"
PYFUNC_LOADER_MODULES = ("mlflow.lightgbm", "tracking.models.lightgbm")
AUTOLOG_LIBRARY = "lightgbm"
BOOSTER_CLASS = "lightgbm.basic.Booster"
BOOSTER_FILE = "model.lgb"
#: what a skops file of a LightGBM scikit-learn model holds besides scikit-learn's own types
SKOPS_TRUSTED_TYPES = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRanker",
    "lightgbm.sklearn.LGBMRegressor",
)
scoped_autolog = scoped


def save_model(
    lgb_model: Any,
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
    """Write a LightGBM Booster or scikit-learn API model to local `path` (absent or empty).

    `serialization_format` (cloudpickle, pickle or skops) applies to scikit-learn API models;
    Boosters are saved in LightGBM's text format. Without a `signature` one is inferred from
    `input_example`; False stores none."""
    _save(
        lgb_model,
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
    lgb_model: Any,
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
    """Save the model under `<artifact_path>/` (MLflow 3: `name`) of a run's artifacts
    (`run_id`'s, else the active run's, else a new run's); `registered_model_name` also
    registers it as a new version."""
    return model_dir.log(
        lambda local, extra: _save(
            lgb_model,
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
    lgb_model: Any,
    path: str,
    extra: dict[str, Any],
    serialization_format: str,
    skops_trusted_types: list[str] | None,
    **options: Any,
) -> Model:
    lgb = require("lightgbm", EXTRA)
    require("lightgbm.sklearn", EXTRA)
    is_booster = isinstance(lgb_model, lgb.Booster)
    if not is_booster and not isinstance(lgb_model, lgb.LGBMModel):
        raise TypeError(
            "lgb_model must be a lightgbm.Booster or a LightGBM scikit-learn model "
            f"(LGBMClassifier, LGBMRegressor, ...), got {type(lgb_model).__name__}"
        )
    fmt = check_serialization_format(serialization_format)
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        skops_trusted_types = sorted({*SKOPS_TRUSTED_TYPES, *(skops_trusted_types or ())})

    def write(folder: str) -> model_dir.FlavorFiles:
        if is_booster:
            file = BOOSTER_FILE
            lgb_model.save_model(os.path.join(folder, file))
            trusted = None
        else:
            file = "model.skops" if fmt == SERIALIZATION_FORMAT_SKOPS else "model.pkl"
            trusted = dump_estimator(
                lgb_model, os.path.join(folder, file), fmt, skops_trusted_types
            )
        cls = type(lgb_model)
        flavor: dict[str, Any] = {
            "data": file,
            "lgb_version": lgb.__version__,
            "model_class": f"{cls.__module__}.{cls.__qualname__}",
            "serialization_format": fmt,
        }
        if trusted:
            flavor["skops_trusted_types"] = trusted
        packages = ["lightgbm", "numpy", "scipy", "scikit-learn"]
        if not is_booster and fmt != "pickle":
            packages.append(fmt)
        return model_dir.FlavorFiles(
            {"data": file, "loader_module": PYFUNC_LOADER_MODULES[0]},
            flavor,
            packages,
            predictor=lambda: MethodPredictor(lgb_model),
        )

    return model_dir.save(path, FLAVOR_NAME, write, extra=extra, **options)


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """The Booster or scikit-learn API model at `model_uri` (runs:/, models:/, a path or an
    artifact URI), as it was saved (by Trackflow or MLflow)."""
    return model_dir.load_local(model_uri, _load)


def load_pyfunc(path: str, model: Model) -> MethodPredictor:
    """The pyfunc of the LightGBM model in the local folder `path` (for tracking.pyfunc)."""
    return MethodPredictor(_load(path, model, path))


def _load(path: str, meta: Model, uri: str) -> Any:
    conf = meta.flavor_conf(FLAVOR_NAME, uri)
    model_dir.add_code_to_path(path, conf)
    lgb = require("lightgbm", EXTRA)
    if conf.get("model_class", BOOSTER_CLASS) == BOOSTER_CLASS:
        file = os.path.join(path, str(conf.get("data") or BOOSTER_FILE))
        if not os.path.isfile(file):
            from tracking.errors import NotFoundError

            raise NotFoundError(f"The model at {uri} lacks its model file {conf.get('data')}")
        return lgb.Booster(model_file=file)
    return load_estimator(path, {"serialization_format": "cloudpickle", **conf}, uri)
