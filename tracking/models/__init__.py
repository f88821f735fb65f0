"""Models: MLmodel packaging, signatures, the pyfunc interface and the flavors (MLflow's
``mlflow.models``).

    from tracking.models import infer_signature, ModelSignature, Schema, ColSpec, ...

The names below load on first use (PEP 562), so ``import tracking`` stays light: numpy and
pandas are imported only when a signature is built or checked.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module holding it
_EXPORTS = {
    "ColSpec": "tracking.models.schema",
    "DataType": "tracking.models.schema",
    "ParamSchema": "tracking.models.schema",
    "ParamSpec": "tracking.models.schema",
    "Schema": "tracking.models.schema",
    "TensorSpec": "tracking.models.schema",
    "ModelSignature": "tracking.models.signature",
    "infer_signature": "tracking.models.signature",
    "SchemaEnforcementError": "tracking.models.enforcement",
    "validate_schema": "tracking.models.enforcement",
    "Model": "tracking.models.model",
    "ModelInfo": "tracking.models.model",
    "get_model_info": "tracking.models.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tracking.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
