"""XGBoost autologging, scoped to the run active in the current context.

    import tracking as mlflow

    mlflow.xgboost.autolog()
    with mlflow.start_run():
        xgboost.train(params, dtrain, evals=[(dvalid, "valid")])   # or XGBClassifier().fit(...)

What one ``xgboost.train`` (or scikit-learn API ``fit``) logs, with MLflow's names: params (the
``params`` dict and train's other arguments), per-iteration metrics ``<eval name>-<metric>``
(``train-rmse``, ``validation_0-mlogloss``) with the iteration as step, ``best_iteration`` /
``stopped_iteration`` with early stopping, feature importance per ``importance_types`` as
``feature_importance_<type>.json``, and the model (see tracking.models.boosting). The signature
of a Booster trained with ``xgboost.train`` comes from its DMatrix's feature names and types;
a fit's from its first training rows. It never creates a run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tracking.models import autologging as common
from tracking.models.autologging import AutologConfig
from tracking.models.boosting import BoostingAutolog, MetricRecorder

__all__ = ["XGBoostAutologConfig", "autolog", "scoped"]

FLAVOR = "xgboost"
IGNORED_MLFLOW_OPTIONS = frozenset(
    {"log_datasets", "exclusive", "disable_for_unsupported_versions"}
)
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
#: XGBoost feature types -> signature column types
_FEATURE_TYPES = {"int": "long", "i": "long", "float": "double", "q": "double"}


@dataclass(frozen=True)
class XGBoostAutologConfig(AutologConfig):
    """What an autologged XGBoost training records."""

    importance_types: tuple[str, ...] = ("weight",)
    model_format: str = "ubj"


def autolog(
    disable: bool = False,
    log_models: bool = True,
    *,
    importance_types: Iterable[str] = ("weight",),
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: Mapping[str, Any] | None = None,
    **mlflow_options: Any,
) -> None:
    """Autolog every XGBoost training that runs while a run is active in its context.

    Never starts a run. MLflow's ``log_datasets``, ``exclusive`` and
    ``disable_for_unsupported_versions`` are accepted and ignored."""
    unknown = set(mlflow_options) - IGNORED_MLFLOW_OPTIONS
    if unknown:
        raise TypeError(f"autolog() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    config = None
    if not disable:
        config = _config(
            log_models,
            importance_types,
            log_input_examples,
            log_model_signatures,
            silent,
            registered_model_name,
            model_format,
            extra_tags,
        )
    AUTOLOG.integration.enable(config)


@contextlib.contextmanager
def scoped(
    run_id: str,
    log_models: bool = True,
    *,
    importance_types: Iterable[str] = ("weight",),
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Autolog XGBoost training into `run_id` inside the block, in this context only."""
    config = _config(
        log_models,
        importance_types,
        log_input_examples,
        log_model_signatures,
        silent,
        registered_model_name,
        model_format,
        extra_tags,
    )
    with AUTOLOG.integration.scoped(run_id, config):
        yield


def _config(
    log_models: bool,
    importance_types: Iterable[str],
    log_input_examples: bool,
    log_model_signatures: bool,
    silent: bool,
    registered_model_name: str | None,
    model_format: str,
    extra_tags: Mapping[str, Any] | None,
) -> XGBoostAutologConfig:
    from tracking.errors import InvalidParameterError
    from tracking.models.xgboost import MODEL_FORMATS

    types = (importance_types,) if isinstance(importance_types, str) else tuple(importance_types)
    unknown = [t for t in types if t not in IMPORTANCE_TYPES]
    if unknown:
        raise InvalidParameterError(
            f"Unknown importance_types {unknown}; use some of {', '.join(IMPORTANCE_TYPES)}"
        )
    if model_format not in MODEL_FORMATS:
        raise InvalidParameterError(
            f"Unsupported model_format {model_format!r}; use one of {', '.join(MODEL_FORMATS)}"
        )
    return XGBoostAutologConfig(
        log_models=bool(log_models),
        log_input_examples=bool(log_input_examples),
        log_model_signatures=bool(log_model_signatures),
        registered_model_name=registered_model_name,
        extra_tags={str(k): str(v) for k, v in (extra_tags or {}).items()},
        silent=bool(silent),
        importance_types=types,
        model_format=model_format,
    )


class XGBoostAutolog(BoostingAutolog):
    """xgboost.train, xgboost.sklearn.train and the XGBModel fit methods."""

    library = FLAVOR
    unlogged_args = frozenset(
        {
            "params",
            "dtrain",
            "evals",
            "obj",
            "evals_result",
            "xgb_model",
            "callbacks",
            "custom_metric",
            "feval",
        }
    )

    def train_owners(self) -> list[ModuleType]:
        from tracking.models.flavors import require

        return [require("xgboost", FLAVOR), require("xgboost.sklearn", FLAVOR)]

    def estimator_base(self) -> type:
        import xgboost.sklearn

        return xgboost.sklearn.XGBModel

    def add_recorder(self, arguments: dict[str, Any], recorder: MetricRecorder) -> None:
        arguments["callbacks"] = [*(arguments.get("callbacks") or []), _callback(recorder)]

    def after_training(self, booster: Any, recorder: MetricRecorder, config: Any) -> None:
        best = booster.attr("best_iteration")
        if best is not None:
            recorder.log_early_stopping(int(best))
        for kind in config.importance_types:
            common.log_json(
                recorder.client,
                recorder.run_id,
                f"feature_importance_{kind}.json",
                booster.get_score(importance_type=kind),
            )

    def log_model(self, model: Any, run_id: str, config: Any, index: int, **kwargs: Any) -> None:
        from tracking.models import xgboost as flavor

        if kwargs.get("signature") is False and not hasattr(model, "get_params"):
            kwargs["signature"] = _booster_signature(model, config)
        flavor.log_model(
            model,
            common.model_path(index),
            model_format=config.model_format,
            registered_model_name=config.registered_model_name,
            run_id=run_id,
            **kwargs,
        )


def _callback(recorder: MetricRecorder) -> Any:
    """An xgboost TrainingCallback handing each iteration's results to the recorder."""
    import xgboost

    class Recorder(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            values = {
                f"{data}-{metric}": _last(history)
                for data, metrics in evals_log.items()
                for metric, history in metrics.items()
            }
            recorder.record(epoch, values)
            return False

    return Recorder()


def _last(history: list[Any]) -> float:
    value = history[-1]
    return float(value[0] if isinstance(value, tuple) else value)  # (mean, std) from cv


def _booster_signature(booster: Any, config: Any) -> Any:
    """A Booster's input signature from its feature names and types (False when unnamed)."""
    if not config.log_model_signatures:
        return False
    names, types = booster.feature_names, booster.feature_types or []
    if not names:
        return False
    from tracking.models.schema import ColSpec, Schema
    from tracking.models.signature import ModelSignature

    kinds = [_FEATURE_TYPES.get(t, "double") for t in types] or ["double"] * len(names)
    return ModelSignature(Schema([ColSpec(k, n) for k, n in zip(kinds, names, strict=True)]))


AUTOLOG = XGBoostAutolog()
