"""The XGBoost flavor: Boosters and the scikit-learn API models, in MLflow's layout.

    <artifact_path>/MLmodel      flavors: python_function (loader mlflow.xgboost) + xgboost
    <artifact_path>/model.ubj    the model in XGBoost's own format (model_format: ubj or json)

The MLmodel's ``model_class`` (``xgboost.core.Booster``, ``xgboost.sklearn.XGBClassifier``,
...) says what to rebuild, so ``mlflow.xgboost.load_model`` / ``mlflow.pyfunc.load_model`` read
what this module writes and ``load_model`` here reads MLflow's. No pickle is involved: only
classes of the xgboost package are instantiated. Needs ``pip install 'trackflow[xgboost]'``
(the CPU-only ``xgboost-cpu`` wheel is enough); importing this module does not import XGBoost.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Any

from tracking.errors import InvalidParameterError, NotFoundError
from tracking.models import model as model_dir
from tracking.models.environment import Requirements
from tracking.models.flavors import require
from tracking.models.model import Model, ModelInfo
from tracking.models.xgboost.autologging import autolog, scoped

__all__ = ["ModelInfo", "autolog", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "xgboost"
EXTRA = "xgboost"
PYFUNC_LOADER_MODULES = ("mlflow.xgboost", "tracking.models.xgboost")
AUTOLOG_LIBRARY = "xgboost"
BOOSTER_CLASS = "xgboost.core.Booster"
MODEL_FORMATS = ("ubj", "json")
scoped_autolog = scoped


def save_model(
    xgb_model: Any,
    path: str | os.PathLike[str],
    model_format: str = "ubj",
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
    *,
    signature: Any = None,
    input_example: Any = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write an XGBoost Booster or scikit-learn API model to local `path` (absent or empty),
    in XGBoost's `model_format` (ubj or json). Without a `signature` one is inferred from
    `input_example`; False stores none."""
    _save(
        xgb_model,
        os.fspath(path),
        {},
        model_format,
        signature=signature,
        input_example=input_example,
        code_paths=code_paths,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def log_model(
    xgb_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    model_format: str = "ubj",
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
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
            xgb_model,
            local,
            extra,
            model_format,
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
    xgb_model: Any, path: str, extra: dict[str, Any], model_format: str, **options: Any
) -> Model:
    xgb = require("xgboost", EXTRA)
    if model_format not in MODEL_FORMATS:
        raise InvalidParameterError(
            f"Unsupported model_format {model_format!r}; use one of {', '.join(MODEL_FORMATS)}"
        )
    is_booster = isinstance(xgb_model, xgb.Booster)
    if not is_booster and not isinstance(xgb_model, _sklearn_base()):
        raise TypeError(
            "xgb_model must be an xgboost.Booster or an XGBoost scikit-learn model "
            f"(XGBClassifier, XGBRegressor, ...), got {type(xgb_model).__name__}"
        )

    def write(folder: str) -> model_dir.FlavorFiles:
        file = f"model.{model_format}"
        xgb_model.save_model(os.path.join(folder, file))
        cls = type(xgb_model)
        flavor = {
            "data": file,
            "model_class": f"{cls.__module__}.{cls.__qualname__}",
            "model_format": model_format,
            "xgb_version": xgb.__version__,
        }
        packages = ["xgboost", "numpy", "scipy"] + ([] if is_booster else ["scikit-learn"])
        return model_dir.FlavorFiles(
            {"data": file, "loader_module": PYFUNC_LOADER_MODULES[0]},
            flavor,
            packages,
            predictor=lambda: _Predictor(xgb_model),
        )

    return model_dir.save(path, FLAVOR_NAME, write, extra=extra, **options)


def _sklearn_base() -> type:
    return require("xgboost.sklearn", EXTRA).XGBModel  # type: ignore[no-any-return]


def load_model(model_uri: str | os.PathLike[str]) -> Any:
    """The Booster or scikit-learn API model at `model_uri` (runs:/, models:/, a path or an
    artifact URI), as it was saved (by Trackflow or MLflow)."""
    return model_dir.load_local(model_uri, _load)


def load_pyfunc(path: str, model: Model) -> _Predictor:
    """The pyfunc of the XGBoost model in the local folder `path` (for tracking.pyfunc)."""
    return _Predictor(_load(path, model, path))


def _load(path: str, meta: Model, uri: str) -> Any:
    conf = meta.flavor_conf(FLAVOR_NAME, uri)
    model_dir.add_code_to_path(path, conf)
    xgb = require("xgboost", EXTRA)
    class_name = str(conf.get("model_class") or BOOSTER_CLASS)
    module_name, _, attr = class_name.rpartition(".")
    cls = None
    if module_name.split(".")[0] == "xgboost":
        cls = getattr(importlib.import_module(module_name), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, xgb.Booster | _sklearn_base())):
        raise InvalidParameterError(
            f"The model at {uri} names model_class {class_name!r}; it must be xgboost.Booster "
            "or one of XGBoost's scikit-learn model classes"
        )
    file = os.path.join(path, str(conf.get("data") or "model.ubj"))
    if not os.path.isfile(file):
        raise NotFoundError(f"The model at {uri} lacks its model file {conf.get('data')}")
    model = cls()
    model.load_model(file)
    return model


class _Predictor:
    """The pyfunc of an XGBoost model: a Booster predicts on a DMatrix of the input."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import xgboost as xgb

        if isinstance(self.model, xgb.Booster):
            return self.model.predict(xgb.DMatrix(data), validate_features=True)
        return self.model.predict(data)

    def get_raw_model(self) -> Any:
        return self.model
