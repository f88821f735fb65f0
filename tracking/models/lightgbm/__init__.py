"""The LightGBM flavor (``tracking.lightgbm``, like ``mlflow.lightgbm``): ``flavor.py`` saves,
logs and loads Boosters and scikit-learn API models; ``autologging.py`` records training.
"""

from __future__ import annotations

from tracking.models.lightgbm.autologging import autolog
from tracking.models.lightgbm.autologging import scoped as scoped_autolog
from tracking.models.lightgbm.flavor import (
    AUTOLOG_LIBRARY,
    BOOSTER_CLASS,
    BOOSTER_FILE,
    EXTRA,
    FLAVOR_NAME,
    PYFUNC_LOADER_MODULES,
    SKOPS_TRUSTED_TYPES,
    ModelInfo,
    load_model,
    load_pyfunc,
    log_model,
    save_model,
)

__all__ = [
    "AUTOLOG_LIBRARY",
    "BOOSTER_CLASS",
    "BOOSTER_FILE",
    "EXTRA",
    "FLAVOR_NAME",
    "PYFUNC_LOADER_MODULES",
    "SKOPS_TRUSTED_TYPES",
    "ModelInfo",
    "autolog",
    "load_model",
    "load_pyfunc",
    "log_model",
    "save_model",
    "scoped_autolog",
]
