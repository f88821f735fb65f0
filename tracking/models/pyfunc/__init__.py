"""Generic models: ``tracking.pyfunc.load_model(uri).predict(data)`` for any logged model.

Reads the model's MLmodel file, asks the flavor registry (``tracking.models.flavors``) for the
flavor that loads its ``python_function`` loader module, and wraps what it loads in a
PyFuncModel. ``predict`` first checks the input and params against the model's signature
(``tracking.models.enforcement``), then calls the flavor. Accepts every model URI: runs:/,
models:/<name>/<version|stage|latest>, models:/<name>@<alias>, paths and artifact URIs.

Custom models are subclasses of :class:`PythonModel` saved with :func:`save_model` /
:func:`log_model` (``tracking.models.pyfunc.model``). Loading a pickled model runs code from
the file: only load models you trust.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from typing import Any

from tracking.models.model import PYFUNC, Model, add_code_to_path
from tracking.models.pyfunc.model import (
    PythonModel,
    PythonModelContext,
    log_model,
    save_model,
)

__all__ = [
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = PYFUNC


class PyFuncModel:
    """A loaded model with MLflow's pyfunc interface: ``predict(data, params=None)``."""

    def __init__(self, model_uri: str, impl: Any, metadata: Model) -> None:
        self.model_uri = model_uri
        self.metadata = metadata
        self._impl = impl

    @property
    def loader_module(self) -> str:
        return str(self.metadata.flavors.get(PYFUNC, {}).get("loader_module"))

    @property
    def signature(self) -> Any:
        """The model's ModelSignature, or None."""
        return self.metadata.signature

    @property
    def raw_model(self) -> Any:
        return self._impl.get_raw_model()

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The model's predictions for `data`, after checking `data` and `params` against its
        signature (a SchemaEnforcementError names what does not match)."""
        from tracking.models.enforcement import enforce_params, enforce_schema

        signature = self.signature
        if signature is not None and signature.inputs is not None:
            data = enforce_schema(data, signature.inputs)
        checked = enforce_params(
            params,
            signature.params if signature is not None else None,
            f"The model at {self.model_uri}",
        )
        return self._impl.predict(data, checked)

    def get_raw_model(self) -> Any:
        """The underlying model object (the estimator, the booster, the PythonModel)."""
        return self._impl.get_raw_model()

    unwrap_python_model = get_raw_model

    def __repr__(self) -> str:
        return (
            f"PyFuncModel(model_uri={self.model_uri!r}, loader_module={self.loader_module!r}, "
            f"model={type(self.raw_model).__name__})"
        )


def load_model(
    model_uri: str | os.PathLike[str], dst_path: str | os.PathLike[str] | None = None
) -> PyFuncModel:
    """Load the model at `model_uri` through its python_function flavor. A remote model is
    downloaded to `dst_path`, else to a temporary folder removed with the returned model."""
    from tracking.models import flavors
    from tracking.registry.uris import download_model

    uri = os.fspath(model_uri)
    target = os.fspath(dst_path) if dst_path is not None else None
    tmp = None
    if target is None:
        tmp = target = tempfile.mkdtemp(prefix="trackflow-pyfunc-")
    try:
        local = download_model(uri, target)
        meta = Model.load(local, uri)
        conf = meta.flavors.get(PYFUNC)
        if not isinstance(conf, dict):
            raise _no_pyfunc(uri, meta)
        flavor = flavors.for_loader_module(conf.get("loader_module"), uri)
        add_code_to_path(local, conf)
        impl = flavor.load_pyfunc(local, meta)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    model = PyFuncModel(uri, impl, meta)
    if tmp is not None:
        if os.listdir(tmp):
            weakref.finalize(model, shutil.rmtree, tmp, True)
        else:  # a local model, used in place
            os.rmdir(tmp)
    return model


def _no_pyfunc(uri: str, meta: Model) -> Exception:
    from tracking.errors import InvalidParameterError

    return InvalidParameterError(
        f"The model at {uri} has no {PYFUNC} flavor (its flavors: "
        f"{', '.join(meta.flavors) or 'none'}), so it cannot be loaded generically; load it "
        "with its own flavor's load_model"
    )
