"""Autologging shared by the gradient-boosting flavors (LightGBM, XGBoost).

Both libraries train through one function (``lightgbm.train``, ``xgboost.train``) that their
scikit-learn API's ``fit`` calls too. :class:`BoostingAutolog` patches that function and the
``fit`` methods; a library supplies how to read train()'s arguments, attach a per-iteration
callback and read feature importances. What is logged:

* params: the ``params`` dict and train()'s other plain arguments;
* per-iteration metrics ``<evaluation set>-<metric>`` with the iteration as step; with early
  stopping also ``best_iteration``, ``stopped_iteration`` and the best iteration's metrics at
  the step after the last;
* feature importances as ``feature_importance_<type>.json`` artifacts ({feature: value});
* the model: the Booster for train(), the estimator for fit() (tags ``estimator_name`` /
  ``estimator_class``), with a signature from the first training rows.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tracking import fluent
from tracking.entities import Metric
from tracking.models import autologging as common
from tracking.models.autologging import AutologConfig

__all__ = ["BoostingAutolog", "MetricRecorder"]

METRIC_BATCH = 1000


@dataclass
class _EstimatorFit:
    """An autologged scikit-learn API fit in progress; its train() call fills in the index."""

    run_id: str
    config: AutologConfig
    tags: dict[str, str]
    index: int | None = None


class MetricRecorder:
    """Collects per-iteration evaluation results and logs them in batches."""

    def __init__(self, client: Any, run_id: str, config: AutologConfig) -> None:
        self.client = client
        self.run_id = run_id
        self.config = config
        self.pending: list[Metric] = []
        self.history: list[dict[str, float]] = []

    def record(self, iteration: int, values: dict[str, float]) -> None:
        values = {k.replace("@", "_at_"): float(v) for k, v in values.items()}
        self.history.append(values)
        now = int(time.time() * 1000)
        self.pending += [Metric(k, v, now, iteration) for k, v in values.items()]
        if len(self.pending) >= METRIC_BATCH:
            self.flush()

    def flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:METRIC_BATCH], self.pending[METRIC_BATCH:]
                self.client.log_batch(self.run_id, metrics=batch)
        except Exception as e:
            self.pending = []
            common.warn(self.config, f"autolog: iteration metrics not logged: {e!r}")

    def log_early_stopping(self, best_iteration: int) -> None:
        """best_iteration (0-based), stopped_iteration and the best iteration's metrics."""
        if best_iteration < 0 or best_iteration >= len(self.history):
            return
        step = len(self.history)
        now = int(time.time() * 1000)
        metrics = [
            Metric("stopped_iteration", step, now, 0),
            Metric("best_iteration", best_iteration, now, 0),
        ]
        metrics += [Metric(k, v, now, step) for k, v in self.history[best_iteration].items()]
        self.client.log_batch(self.run_id, metrics=metrics)


class BoostingAutolog:
    """Autologging of one gradient-boosting library; subclasses fill in the library's API."""

    library = ""
    #: train() arguments not logged as params (data, functions, callbacks)
    unlogged_args: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.integration = common.Integration(self.library, self.install, self.uninstall)
        self._patched: dict[tuple[Any, str], Any] = {}
        self._estimator_fit: contextvars.ContextVar[_EstimatorFit | None] = contextvars.ContextVar(
            f"trackflow_{self.library}_estimator_fit", default=None
        )

    # --- what a library supplies -------------------------------------------------------------
    def train_owners(self) -> list[ModuleType]:
        """The modules whose ``train`` attribute is the training function."""
        raise NotImplementedError

    def estimator_base(self) -> type:
        """The scikit-learn API base class (its subclasses' fit methods are patched)."""
        raise NotImplementedError

    def training_data(self, arguments: dict[str, Any]) -> Any:
        """The raw training data train() got, if it is still to be had (for the signature)."""
        return None

    def add_recorder(self, arguments: dict[str, Any], recorder: MetricRecorder) -> None:
        """Make train() report each iteration's evaluation results to `recorder`."""
        raise NotImplementedError

    def after_training(self, booster: Any, recorder: MetricRecorder, config: Any) -> None:
        """Log what the trained booster tells (early stopping, feature importances)."""
        raise NotImplementedError

    def log_model(self, model: Any, run_id: str, config: Any, index: int, **kwargs: Any) -> None:
        raise NotImplementedError

    # --- patching ----------------------------------------------------------------------------
    def install(self) -> None:
        for owner in self.train_owners():
            self._patch(owner, "train", self._patch_train)
        for cls in _subclasses(self.estimator_base()):
            if "fit" in cls.__dict__:
                self._patch(cls, "fit", self._patch_fit)

    def uninstall(self) -> None:
        for (owner, name), original in list(self._patched.items()):
            if getattr(owner.__dict__.get(name), "_trackflow_autolog_patch", False):
                setattr(owner, name, original)
        self._patched.clear()

    @property
    def patched(self) -> bool:
        return bool(self._patched)

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__.get(name)
        if original is None or getattr(original, "_trackflow_autolog_patch", False):
            return
        patch = make(original)
        patch._trackflow_autolog_patch = True
        self._patched[(owner, name)] = original
        setattr(owner, name, patch)

    def _patch_train(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def train(*args: Any, **kwargs: Any) -> Any:
            session = self._estimator_fit.get()
            if session is not None and session.index is None:  # the train() of a logged fit
                return self._train_logged(
                    original, args, kwargs, session.run_id, session.config, session
                )
            active = None if common.in_fit() else self.integration.active()
            if active is None:
                return original(*args, **kwargs)
            with common.logging_fit():
                return self._train_logged(original, args, kwargs, *active, None)

        return train

    def _patch_fit(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def fit(estimator: Any, *args: Any, **kwargs: Any) -> Any:
            active = None if common.in_fit() else self.integration.active()
            if active is None:
                return original(estimator, *args, **kwargs)
            run_id, config = active
            head = _head(args[0] if args else kwargs.get("X"), config)
            cls = type(estimator)
            tags = {
                "estimator_name": cls.__name__,
                "estimator_class": f"{cls.__module__}.{cls.__name__}",
            }
            session = _EstimatorFit(run_id, config, tags)
            token = self._estimator_fit.set(session)
            try:
                with common.logging_fit():
                    result = original(estimator, *args, **kwargs)
            finally:
                self._estimator_fit.reset(token)
            if session.index is not None and config.log_models:
                try:
                    self._log_model(estimator, head, run_id, config, session.index)
                except Exception as e:
                    common.warn(config, f"autologging {cls.__name__}.fit: no model logged: {e!r}")
            return result

        return fit

    # --- one training ------------------------------------------------------------------------
    def _train_logged(
        self,
        original: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str,
        config: Any,
        session: _EstimatorFit | None,
    ) -> Any:
        """train() with its params, metrics, importances (and, outside an estimator fit, the
        Booster) logged into `run_id`. Logging never fails the training."""
        client = fluent.current_client()
        what = f"{self.library}.train"
        try:
            bound = inspect.signature(original).bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            head = _head(self.training_data(arguments), config) if session is None else None
            params = {**(arguments.get("params") or {})}
            params.update({k: v for k, v in arguments.items() if k not in self.unlogged_args})
            tags = {**(session.tags if session else {}), **config.extra_tags}
            index, conflicts = common.claim_fit(
                client, run_id, common.loggable_params(params), tags
            )
            recorder = MetricRecorder(client, run_id, config)
            self.add_recorder(arguments, recorder)
        except Exception as e:
            common.warn(config, f"autologging {what} failed: {e!r}")
            return original(*args, **kwargs)
        if session is not None:
            session.index = index
        common.warn_conflicts(config, what, index, run_id, conflicts)
        booster = original(*bound.args, **bound.kwargs)
        try:
            recorder.flush()
            self.after_training(booster, recorder, config)
            if session is None and config.log_models:
                self._log_model(booster, head, run_id, config, index)
        except Exception as e:
            common.warn(config, f"autologging {what} failed after training: {e!r}")
        return booster

    def _log_model(self, model: Any, head: Any, run_id: str, config: Any, index: int) -> None:
        example, signature = common.example_and_signature(config, head, self.predictor(model))
        self.log_model(
            model,
            run_id,
            config,
            index,
            signature=signature if signature is not None else False,
            input_example=example,
        )

    def predictor(self, model: Any) -> Callable[[Any], Any]:
        """predict() of a trained model on raw rows (for the signature)."""
        return model.predict  # type: ignore[no-any-return]


def _subclasses(base: type) -> list[type]:
    seen, pending = [base], [base]
    while pending:
        for sub in type.__subclasses__(pending.pop()):
            if sub not in seen:
                seen.append(sub)
                pending.append(sub)
    return seen


def _head(data: Any, config: AutologConfig) -> Any:
    """The first training rows (copied), when an example or a signature is to be logged."""
    if data is None or isinstance(data, str | bytes) or not config.log_models:
        return None
    if not (config.log_input_examples or config.log_model_signatures):
        return None
    try:
        rows = (
            data.iloc[: common.EXAMPLE_ROWS]
            if hasattr(data, "iloc")
            else data[: common.EXAMPLE_ROWS]
        )
        return copy.deepcopy(rows)
    except Exception:
        return None
