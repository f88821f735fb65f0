"""The XGBoost flavor (``tracking.xgboost``, like ``mlflow.xgboost``): ``flavor.py`` saves,
logs and loads Boosters and scikit-learn API models; ``autologging.py`` records training.
"""

from __future__ import annotations

from tracking.models.xgboost.autologging import autolog
from tracking.models.xgboost.autologging import scoped as scoped_autolog
from tracking.models.xgboost.flavor import (
    AUTOLOG_LIBRARY,
    BOOSTER_CLASS,
    EXTRA,
    FLAVOR_NAME,
    MODEL_FORMATS,
    PYFUNC_LOADER_MODULES,
    ModelInfo,
    load_model,
    load_pyfunc,
    log_model,
    save_model,
)

__all__ = [
    "AUTOLOG_LIBRARY",
    "BOOSTER_CLASS",
    "EXTRA",
    "FLAVOR_NAME",
    "MODEL_FORMATS",
    "PYFUNC_LOADER_MODULES",
    "ModelInfo",
    "autolog",
    "load_model",
    "load_pyfunc",
    "log_model",
    "save_model",
    "scoped_autolog",
]
