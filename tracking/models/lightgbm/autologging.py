"""LightGBM autologging, scoped to the run active in the current context.

    import tracking as mlflow

    mlflow.lightgbm.autolog()
    with mlflow.start_run():
        lightgbm.train(params, train_set, valid_sets=[valid])   # or LGBMClassifier().fit(...)

What one ``lightgbm.train`` (or scikit-learn API ``fit``) logs, with MLflow's names:

* params: the ``params`` dict and train's other arguments (``num_boost_round``, ...);
* per-iteration metrics of every evaluation set, ``<set name>-<metric>`` (``valid_0-l2``,
  ``training-multi_logloss``; ``@`` becomes ``_at_``), with the iteration as step; with early
  stopping also ``best_iteration``, ``stopped_iteration`` and the best iteration's metrics at
  the step after the last;
* feature importance as the artifacts ``feature_importance_split.json`` and
  ``feature_importance_gain.json`` ({feature: importance});
* the model (``model``, then ``model_<n>``; see tracking.models.autologging): the Booster for
  ``lightgbm.train``, the estimator for ``fit`` (tags ``estimator_name``/``estimator_class``),
  with a signature inferred from the first training rows unless ``log_model_signatures=False``.

It never creates a run, logs only the outermost autologged fit, and ``autolog(disable=True)``
restores LightGBM's functions when no ``scoped`` block is open.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from tracking.models import autologging as common
from tracking.models.autologging import AutologConfig
from tracking.models.boosting import BoostingAutolog, MetricRecorder

__all__ = ["autolog", "scoped"]

FLAVOR = "lightgbm"
IGNORED_MLFLOW_OPTIONS = frozenset(
    {"log_datasets", "exclusive", "disable_for_unsupported_versions"}
)
IMPORTANCE_TYPES = ("split", "gain")


def autolog(
    disable: bool = False,
    log_models: bool = True,
    *,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: Mapping[str, Any] | None = None,
    **mlflow_options: Any,
) -> None:
    """Autolog every LightGBM training that runs while a run is active in its context.

    Never starts a run. MLflow's ``log_datasets``, ``exclusive`` and
    ``disable_for_unsupported_versions`` are accepted and ignored."""
    unknown = set(mlflow_options) - IGNORED_MLFLOW_OPTIONS
    if unknown:
        raise TypeError(f"autolog() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    AUTOLOG.integration.enable(
        None
        if disable
        else _config(
            log_models,
            log_input_examples,
            log_model_signatures,
            silent,
            registered_model_name,
            extra_tags,
        )
    )


@contextlib.contextmanager
def scoped(
    run_id: str,
    log_models: bool = True,
    *,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Autolog LightGBM training into `run_id` inside the block, in this context only."""
    config = _config(
        log_models,
        log_input_examples,
        log_model_signatures,
        silent,
        registered_model_name,
        extra_tags,
    )
    with AUTOLOG.integration.scoped(run_id, config):
        yield


def _config(
    log_models: bool,
    log_input_examples: bool,
    log_model_signatures: bool,
    silent: bool,
    registered_model_name: str | None,
    extra_tags: Mapping[str, Any] | None,
) -> AutologConfig:
    return AutologConfig(
        log_models=bool(log_models),
        log_input_examples=bool(log_input_examples),
        log_model_signatures=bool(log_model_signatures),
        registered_model_name=registered_model_name,
        extra_tags={str(k): str(v) for k, v in (extra_tags or {}).items()},
        silent=bool(silent),
    )


class LightGBMAutolog(BoostingAutolog):
    """lightgbm.train, lightgbm.sklearn.train and the LGBMModel fit methods."""

    library = FLAVOR
    unlogged_args = frozenset(
        {
            "params",
            "train_set",
            "valid_sets",
            "valid_names",
            "feval",
            "init_model",
            "callbacks",
            "keep_training_booster",
        }
    )

    def train_owners(self) -> list[ModuleType]:
        from tracking.models.flavors import require

        return [require("lightgbm", FLAVOR), require("lightgbm.sklearn", FLAVOR)]

    def estimator_base(self) -> type:
        import lightgbm.sklearn

        return lightgbm.sklearn.LGBMModel

    def training_data(self, arguments: dict[str, Any]) -> Any:
        return getattr(arguments.get("train_set"), "data", None)  # raw data until constructed

    def add_recorder(self, arguments: dict[str, Any], recorder: MetricRecorder) -> None:
        arguments["callbacks"] = [*(arguments.get("callbacks") or []), _Callback(recorder)]

    def after_training(self, booster: Any, recorder: MetricRecorder, config: Any) -> None:
        best = int(getattr(booster, "best_iteration", 0) or 0)
        if best > 0:  # LightGBM counts iterations from 1
            recorder.log_early_stopping(best - 1)
        names = booster.feature_name()
        for kind in IMPORTANCE_TYPES:
            values = booster.feature_importance(importance_type=kind).tolist()
            common.log_json(
                recorder.client,
                recorder.run_id,
                f"feature_importance_{kind}.json",
                dict(zip(names, values, strict=True)),
            )

    def log_model(self, model: Any, run_id: str, config: Any, index: int, **kwargs: Any) -> None:
        from tracking.models import lightgbm as flavor

        flavor.log_model(
            model,
            common.model_path(index),
            registered_model_name=config.registered_model_name,
            run_id=run_id,
            **kwargs,
        )


class _Callback:
    """A LightGBM callback handing each iteration's evaluation results to the recorder."""

    order = 100  # after LightGBM's own callbacks

    def __init__(self, recorder: MetricRecorder) -> None:
        self.recorder = recorder

    def __call__(self, env: Any) -> None:
        results = env.evaluation_result_list or ()
        self.recorder.record(env.iteration, {f"{r[0]}-{r[1]}": r[2] for r in results})


AUTOLOG = LightGBMAutolog()
