"""The scikit-learn flavor (``tracking.sklearn``, like ``mlflow.sklearn``): ``flavor.py`` saves,
logs and loads estimators in MLflow's model format; ``autologging.py`` records fits.
"""

from __future__ import annotations

from tracking.errors import RegistryUnavailableError
from tracking.models.sklearn.autologging import autolog
from tracking.models.sklearn.autologging import scoped as scoped_autolog
from tracking.models.sklearn.flavor import (
    AUTOLOG_LIBRARY,
    FLAVOR_NAME,
    PYFUNC_LOADER_MODULES,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_SKOPS,
    SUPPORTED_SERIALIZATION_FORMATS,
    ModelInfo,
    check_serialization_format,
    dump_estimator,
    load_estimator,
    load_model,
    load_pyfunc,
    log_model,
    save_model,
)

__all__ = [
    "AUTOLOG_LIBRARY",
    "FLAVOR_NAME",
    "PYFUNC_LOADER_MODULES",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "SUPPORTED_SERIALIZATION_FORMATS",
    "ModelInfo",
    "RegistryUnavailableError",
    "autolog",
    "check_serialization_format",
    "dump_estimator",
    "load_estimator",
    "load_model",
    "load_pyfunc",
    "log_model",
    "save_model",
    "scoped_autolog",
]
