"""Generic model loading: ``tracking.pyfunc.load_model(uri).predict(X)`` for any logged model.

Reads the model's MLmodel file, picks the loader named by its ``python_function`` flavor and
wraps the loaded model in a PyFuncModel whose ``predict`` calls the flavor's predict function
(``predict`` unless the flavor names another, e.g. ``predict_proba``). Accepts every model URI
``tracking.models.sklearn.load_model`` does: runs:/, models:/<name>/<version|stage|latest>,
models:/<name>@<alias>, paths and artifact URIs. Loading a pickled model runs code from the
file: only load models you trust.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import yaml

from tracking.errors import InvalidParameterError, NotFoundError
from tracking.registry.uris import download_model

__all__ = ["PyFuncModel", "load_model"]

MLMODEL_FILE = "MLmodel"
PYFUNC_FLAVOR = "python_function"
#: loader_module values of the python_function flavor that Trackflow can load, and the flavor
#: whose files they read. MLflow's own sklearn loader reads the same files ours writes.
LOADERS = {
    "mlflow.sklearn": "sklearn",
    "tracking.models.sklearn": "sklearn",
}


@dataclass
class PyFuncModel:
    """A loaded model with MLflow's pyfunc interface: ``predict(data)``."""

    model_uri: str
    raw_model: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    predict_fn: str = "predict"

    @property
    def loader_module(self) -> str:
        return str(self.metadata.get("flavors", {}).get(PYFUNC_FLAVOR, {}).get("loader_module"))

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The flavor's predict function applied to `data` (numpy array, DataFrame, lists)."""
        if params:
            raise InvalidParameterError(
                f"The model at {self.model_uri} takes no inference params, got {sorted(params)}"
            )
        return getattr(self.raw_model, self.predict_fn)(data)

    def get_raw_model(self) -> Any:
        """The underlying model object (for sklearn: the estimator)."""
        return self.raw_model

    unwrap_python_model = get_raw_model

    def __repr__(self) -> str:
        return (
            f"PyFuncModel(model_uri={self.model_uri!r}, loader_module={self.loader_module!r}, "
            f"model={type(self.raw_model).__name__})"
        )


def _read_mlmodel(path: str, uri: str) -> dict[str, Any]:
    file = os.path.join(path, MLMODEL_FILE)
    if not os.path.isfile(file):
        raise NotFoundError(f"no MLmodel file at {uri}: was a model logged there?")
    with open(file, encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    if not isinstance(meta, dict) or not isinstance(meta.get("flavors"), dict):
        raise InvalidParameterError(f"The MLmodel file at {uri} has no flavors section")
    return meta


def load_model(model_uri: str | os.PathLike[str]) -> PyFuncModel:
    """Load the model at `model_uri` through its python_function flavor."""
    uri = os.fspath(model_uri)
    with tempfile.TemporaryDirectory(prefix="trackflow-pyfunc-") as tmp:
        local = download_model(uri, tmp)
        meta = _read_mlmodel(local, uri)
        flavors = meta["flavors"]
        conf = flavors.get(PYFUNC_FLAVOR)
        if not isinstance(conf, dict):
            raise InvalidParameterError(
                f"The model at {uri} has no {PYFUNC_FLAVOR} flavor (its flavors: "
                f"{', '.join(flavors) or 'none'}), so it cannot be loaded generically; load it "
                "with its own flavor's load_model"
            )
        loader = conf.get("loader_module")
        flavor = LOADERS.get(str(loader))
        if flavor is None:
            raise InvalidParameterError(
                f"The model at {uri} needs loader module {loader!r}; Trackflow can load: "
                f"{', '.join(sorted(LOADERS))}"
            )
        if flavor == "sklearn":
            from tracking.models import sklearn

            raw = sklearn._load_local(local, uri)
    predict_fn = str(conf.get("predict_fn") or "predict")
    if not callable(getattr(raw, predict_fn, None)):
        raise InvalidParameterError(
            f"The model at {uri} ({type(raw).__name__}) has no {predict_fn}() method"
        )
    return PyFuncModel(model_uri=uri, raw_model=raw, metadata=meta, predict_fn=predict_fn)
