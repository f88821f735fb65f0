"""scikit-learn autologging, scoped to the run active in the current context.

    import tracking as mlflow

    mlflow.sklearn.autolog()
    with mlflow.start_run():
        LogisticRegression().fit(X, y)      # params, tags, training metrics and the model

Unlike MLflow, autologging here never creates a run: a ``fit`` logs only when a run is active
in the calling context (``tracking.active_run()``, a ContextVar), and logs into that run. A fit
in a thread or asyncio task that does not share the context logs nothing, so concurrent work can
never leak into, or create, runs (MLflow #7814, #10036: stray runs, autologging that goes on
after it was turned off).

What one ``fit`` logs (MLflow's names):

* params: ``get_params()`` as strings (deep for pipelines, shallow for parameter searches,
  whose ``best_<param>`` values are logged too). A nested estimator is logged as its class name,
  a function as ``module.qualname``; the nested estimator's own params appear flattened
  (``clf__C``) as sklearn reports them;
* tags: ``estimator_name``, ``estimator_class`` (and ``extra_tags``);
* training metrics on the data passed to fit, weighted by its ``sample_weight``:
  classifiers ``training_{accuracy_score, precision_score, recall_score, f1_score, log_loss,
  roc_auc, score}`` (weighted averages; log_loss / roc_auc need ``predict_proba``), regressors
  ``training_{mean_squared_error, root_mean_squared_error, mean_absolute_error, r2_score,
  score}``; parameter searches also ``best_cv_score``. A metric that cannot be computed is
  skipped with a warning;
* the fitted estimator via ``tracking.models.sklearn.log_model`` (``log_models=True``) with a
  signature inferred from the first training rows and its predictions on them
  (``log_model_signatures``; ``log_input_examples=True`` stores the rows too), and a parameter
  search's ``best_estimator_`` as ``best_estimator``.

Only the outermost fit is logged, across every autologging library
(tracking.models.autologging): the fits a Pipeline, GridSearchCV or any meta-estimator runs
inside its own fit are not. Estimators of libraries another flavor autologs (LightGBM, XGBoost;
see tracking.models.flavors) are left to that flavor and not patched here. Fits of
data-preprocessing estimators (``sklearn.preprocessing``, ``impute``, ``feature_extraction``,
``feature_selection``, ``ColumnTransformer``) are not logged, as in MLflow; neither are the fits
they run inside.

Several fits in one run: fit ``n`` (0, 1, 2, ...) logs its metrics at ``step=n`` and its model
at ``model`` (n = 0) or ``model_<n>``; the estimator tags describe the latest fit. Params are
immutable, so a param already logged with another value (by an earlier fit or by the user) is
not logged again: a warning names it, and the fit's other params, metrics and model are logged.
MLflow instead logs each fit into a new run; this module never creates runs.

Scope: ``autolog()`` enables it for every run in the process; ``scoped(run_id)`` (used by the
``autolog=True`` option of ``tasks.task`` and ``flows.flow``) enables it only for that run and
only in the current context. The patches are installed while either is on; ``autolog(disable=
True)`` with no scoped block open restores every original method (identity). Estimator classes
defined later are patched when they are created (a hook on ``BaseEstimator.__init_subclass__``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tracking import fluent
from tracking.entities import Metric
from tracking.models import autologging as common
from tracking.models.autologging import FIT_COUNT_TAG, AutologConfig, AutologWarning

__all__ = [
    "FIT_COUNT_TAG",
    "AutologConfig",
    "AutologWarning",
    "SklearnAutologConfig",
    "autolog",
    "is_enabled",
    "scoped",
]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
TRAINING_PREFIX = "training_"
MODEL_PATH = common.MODEL_PATH
# Data manipulation rather than ML algorithms: MLflow does not autolog these either.
EXCLUDED_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
)
EXCLUDED_CLASSES = ("sklearn.compose._column_transformer.ColumnTransformer",)
# MLflow's autolog options this module accepts for compatibility and ignores.
IGNORED_MLFLOW_OPTIONS = frozenset(
    {
        "log_datasets",
        "exclusive",
        "disable_for_unsupported_versions",
        "max_tuning_runs",
        "log_post_training_metrics",
    }
)


@dataclass(frozen=True)
class SklearnAutologConfig(AutologConfig):
    """What an autologged scikit-learn fit records."""

    serialization_format: str = "cloudpickle"
    pos_label: Any = None


# --- state -----------------------------------------------------------------------------------
_patched: dict[tuple[type, str], Any] = {}  # (class, method name) -> original attribute
_MISSING = object()
_saved_init_subclass: Any = _MISSING  # BaseEstimator's own __init_subclass__ before the hook
_hook: Any = None


# --- public API ------------------------------------------------------------------------------
def autolog(
    disable: bool = False,
    log_models: bool = True,
    *,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    silent: bool = False,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: Mapping[str, Any] | None = None,
    **mlflow_options: Any,
) -> None:
    """Autolog every scikit-learn ``fit`` that runs while a run is active in its context.

    Never starts a run. ``disable=True`` turns it off and, unless a ``scoped`` block (a task or
    flow with ``autolog=True``) is still running, restores the original fit methods.
    ``silent`` hides autologging's own warnings. MLflow's ``log_datasets``, ``exclusive``,
    ``max_tuning_runs``, ``log_post_training_metrics`` and ``disable_for_unsupported_versions``
    are accepted and ignored; any other keyword is an error.
    """
    unknown = set(mlflow_options) - IGNORED_MLFLOW_OPTIONS
    if unknown:
        raise TypeError(f"autolog() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    INTEGRATION.enable(
        None
        if disable
        else _config(
            log_models,
            silent,
            serialization_format,
            registered_model_name,
            pos_label,
            extra_tags,
            log_input_examples,
            log_model_signatures,
        )
    )


def is_enabled(run_id: str | None = None) -> bool:
    """Whether a fit in this context would be logged into `run_id` (default: the active run)."""
    if run_id is None:
        active = fluent.active_run()
        if active is None:
            return False
        run_id = active.info.run_id
    return INTEGRATION.config_for(run_id) is not None


@contextlib.contextmanager
def scoped(
    run_id: str,
    log_models: bool = True,
    *,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    silent: bool = False,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Autolog fits into `run_id` inside the block, in this context only.

    Fits log only while `run_id` is the active run (not in nested child runs, other threads or
    after the block); the patches stay installed while any scoped block is open."""
    config = _config(
        log_models,
        silent,
        serialization_format,
        registered_model_name,
        pos_label,
        extra_tags,
        log_input_examples,
        log_model_signatures,
    )
    with INTEGRATION.scoped(run_id, config):
        yield


def _config(
    log_models: bool,
    silent: bool,
    serialization_format: str,
    registered_model_name: str | None,
    pos_label: Any,
    extra_tags: Mapping[str, Any] | None,
    log_input_examples: bool,
    log_model_signatures: bool,
) -> SklearnAutologConfig:
    from tracking.models.sklearn import check_serialization_format

    return SklearnAutologConfig(
        log_models=bool(log_models),
        log_input_examples=bool(log_input_examples),
        log_model_signatures=bool(log_model_signatures),
        serialization_format=check_serialization_format(serialization_format),
        registered_model_name=registered_model_name,
        pos_label=pos_label,
        extra_tags={str(k): str(v) for k, v in (extra_tags or {}).items()},
        silent=bool(silent),
    )


# --- patching --------------------------------------------------------------------------------
def _install() -> None:
    global _saved_init_subclass, _hook
    from sklearn.base import BaseEstimator

    if _hook is None:
        _saved_init_subclass = BaseEstimator.__dict__.get("__init_subclass__", _MISSING)
        _hook = classmethod(_on_new_estimator_class)
        BaseEstimator.__init_subclass__ = _hook  # type: ignore[assignment,method-assign]
    for cls in _estimator_classes(BaseEstimator):
        _patch_class(cls)


def _on_new_estimator_class(cls: type, **kwargs: Any) -> None:
    """BaseEstimator.__init_subclass__ while patched: patch classes created from now on."""
    from sklearn.base import BaseEstimator

    if _saved_init_subclass is _MISSING:
        super(BaseEstimator, cls).__init_subclass__(**kwargs)
    else:
        _saved_init_subclass.__get__(None, cls)(**kwargs)
    with INTEGRATION.lock:
        if _hook is not None:
            _patch_class(cls)


def _uninstall() -> None:
    global _hook, _saved_init_subclass
    if not _patched and _hook is None:
        return
    from sklearn.base import BaseEstimator

    for (cls, name), original in list(_patched.items()):
        if _is_patch(cls.__dict__.get(name)):
            setattr(cls, name, original)
    _patched.clear()
    if _hook is not None and BaseEstimator.__dict__.get("__init_subclass__") is _hook:
        if _saved_init_subclass is _MISSING:
            del BaseEstimator.__init_subclass__
        else:
            BaseEstimator.__init_subclass__ = _saved_init_subclass  # type: ignore[method-assign]
    _hook = None
    _saved_init_subclass = _MISSING


def _estimator_classes(base: type) -> list[type]:
    """`base` and every subclass defined so far."""
    seen: dict[type, None] = {base: None}
    pending = [base]
    while pending:
        for sub in type.__subclasses__(pending.pop()):
            if sub not in seen:
                seen[sub] = None
                pending.append(sub)
    return list(seen)


def _patch_class(cls: type) -> None:
    if _owned_elsewhere(cls):
        return  # a library with its own autologging (LightGBM, XGBoost): not patched here
    for name in FIT_METHODS:
        attr = cls.__dict__.get(name)
        if attr is None or _is_patch(attr):
            continue
        if inspect.isfunction(attr):
            patch: Any = _patch_function(attr)
        elif hasattr(attr, "__get__") and not isinstance(attr, staticmethod | classmethod):
            patch = _PatchedDescriptor(attr)  # available_if / property: keep hasattr() working
        else:
            continue
        _patched[(cls, name)] = attr
        setattr(cls, name, patch)


def _is_patch(attr: Any) -> bool:
    return getattr(attr, "_trackflow_autolog_patch", False) is True


def _patch_function(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _patched_fit(self, functools.partial(original, self), args, kwargs)

    fit._trackflow_autolog_patch = True  # type: ignore[attr-defined]
    return fit


class _PatchedDescriptor:
    """Wraps a descriptor-defined fit method (sklearn's available_if, properties)."""

    _trackflow_autolog_patch = True

    def __init__(self, original: Any) -> None:
        self.original = original
        self.__doc__ = getattr(original, "__doc__", None)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        method = self.original.__get__(obj, owner)  # raises AttributeError when unavailable
        if obj is None or not callable(method):
            return method

        @functools.wraps(method)
        def fit(*args: Any, **kwargs: Any) -> Any:
            return _patched_fit(obj, method, args, kwargs)

        return fit


# --- one fit ---------------------------------------------------------------------------------
def _patched_fit(
    estimator: Any, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run the original fit; when it is the outermost one and autolog is on for the active run
    of this context, log it into that run. Logging never fails the fit."""
    if common.in_fit():
        return call(*args, **kwargs)
    with common.logging_fit():
        active = INTEGRATION.active()
        if active is None or _excluded(type(estimator)):
            return call(*args, **kwargs)
        run_id, config = active
        data = _training_data(call, args, kwargs, config)
        result = call(*args, **kwargs)
        try:
            _log_fit(run_id, estimator, data, config)
        except Exception as e:
            common.warn(config, f"autologging {type(estimator).__name__}.fit failed: {e!r}")
        return result


def _owned_elsewhere(cls: type) -> bool:
    """Whether another flavor autologs this class's library (tracking.models.flavors)."""
    from tracking.models.flavors import autolog_libraries

    library = cls.__module__.partition(".")[0]
    return autolog_libraries().get(library, FLAVOR) != FLAVOR


def _excluded(cls: type) -> bool:
    qualified = f"{cls.__module__}.{cls.__qualname__}"
    return qualified in EXCLUDED_CLASSES or cls.__module__.startswith(EXCLUDED_MODULES)


@dataclass
class _TrainingData:
    X: Any = None
    y: Any = None
    sample_weight: Any = None


def _training_data(
    call: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    config: AutologConfig,
) -> _TrainingData | None:
    """X, y and sample_weight as passed to fit, copied before the fit can change them."""
    try:
        signature = inspect.signature(call)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None  # the fit itself will raise
    names = [
        name
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    extra: dict[str, Any] = {}
    for name, p in signature.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            extra = dict(bound.arguments.get(name, {}))
    arguments = bound.arguments
    X = arguments.get(names[0]) if names else None
    y = arguments.get(names[1]) if len(names) > 1 else None
    weight = arguments.get("sample_weight", extra.get("sample_weight"))
    if weight is None:  # Pipeline.fit(X, y, <last step>__sample_weight=w)
        weight = next((v for k, v in extra.items() if k.endswith("__sample_weight")), None)
    try:
        X, y = copy.deepcopy(X), copy.deepcopy(y)
    except Exception as e:
        common.warn(config, f"autolog could not copy the training data ({e!r}); using it as passed")
    return _TrainingData(X, y, weight)


def _log_fit(
    run_id: str, estimator: Any, data: _TrainingData | None, config: SklearnAutologConfig
) -> None:
    client = fluent.current_client()
    cls = type(estimator)
    tags = {
        "estimator_name": cls.__name__,
        "estimator_class": f"{cls.__module__}.{cls.__name__}",
        **config.extra_tags,
    }
    index, conflicts = common.claim_fit(client, run_id, _estimator_params(estimator), tags)
    common.warn_conflicts(config, f"{cls.__name__}.fit", index, run_id, conflicts)
    metrics = _training_metrics(estimator, data, config) if data is not None else {}
    metrics.update(_search_metrics(estimator))
    if metrics:
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, index) for k, v in metrics.items()]
        client.log_batch(run_id, metrics=batch)
    if config.log_models:
        _log_models(run_id, estimator, index, config, data)


def _estimator_params(estimator: Any) -> dict[str, str]:
    search = _is_parameter_search(estimator)
    try:
        raw = estimator.get_params(deep=not search)
    except Exception:
        raw = estimator.get_params(deep=False)
    params = {str(k): _param_text(v) for k, v in raw.items()}
    if search and hasattr(estimator, "best_params_"):
        params.update({f"best_{k}": _param_text(v) for k, v in estimator.best_params_.items()})
    return common.loggable_params(params)


def _param_text(value: Any) -> str:
    """str(value), with estimators as their class name and functions as module.qualname."""
    from sklearn.base import BaseEstimator

    def short(v: Any) -> Any:
        if isinstance(v, BaseEstimator):
            return _Repr(type(v).__name__)
        if inspect.isfunction(v) or inspect.isbuiltin(v) or inspect.isclass(v):
            return _Repr(f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', v)}")
        if isinstance(v, list | tuple):
            items = [short(i) for i in v]
            return items if isinstance(v, list) else tuple(items)
        return v

    return str(short(value))


class _Repr:
    """Shows as its text inside a container's str() (no quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _is_parameter_search(estimator: Any) -> bool:
    try:
        from sklearn.model_selection._search import BaseSearchCV
    except ImportError:
        return False
    return isinstance(estimator, BaseSearchCV)


def _search_metrics(estimator: Any) -> dict[str, float]:
    if _is_parameter_search(estimator) and hasattr(estimator, "best_score_"):
        value = _as_float(estimator.best_score_)
        return {} if value is None else {"best_cv_score": value}
    return {}


def _training_metrics(
    estimator: Any, data: _TrainingData, config: AutologConfig
) -> dict[str, float]:
    """MLflow's training metrics on the data passed to fit; failing metrics are skipped."""
    from sklearn.base import is_classifier, is_regressor

    if data.X is None or data.y is None:
        return {}
    metrics: dict[str, float] = {}

    def record(name: str, compute: Callable[[], Any]) -> None:
        try:
            value = _as_float(compute())
        except Exception as e:
            common.warn(config, f"autolog: metric {TRAINING_PREFIX}{name} not logged: {e!r}")
            return
        if value is not None:
            metrics[TRAINING_PREFIX + name] = value

    try:
        if is_classifier(estimator):
            _classifier_metrics(estimator, data, config, record)
        elif is_regressor(estimator):
            _regressor_metrics(estimator, data, record)
    except Exception as e:  # predict() itself failed
        common.warn(config, f"autolog: training metrics not logged: {e!r}")
    if hasattr(estimator, "score"):
        record("score", lambda: _score(estimator, data))
    return metrics


def _classifier_metrics(
    estimator: Any,
    data: _TrainingData,
    config: AutologConfig,
    record: Callable[[str, Callable[[], Any]], None],
) -> None:
    from sklearn import metrics as m

    y, weight, pos_label = data.y, data.sample_weight, config.pos_label
    y_pred = estimator.predict(data.X)
    average = "weighted" if pos_label is None else "binary"
    extra = {} if pos_label is None else {"pos_label": pos_label}
    record("accuracy_score", lambda: m.accuracy_score(y, y_pred, sample_weight=weight))
    for name, fn in (
        ("precision_score", m.precision_score),
        ("recall_score", m.recall_score),
        ("f1_score", m.f1_score),
    ):
        record(name, lambda fn=fn: fn(y, y_pred, average=average, sample_weight=weight, **extra))
    if not hasattr(estimator, "predict_proba"):
        return
    try:
        proba = estimator.predict_proba(data.X)
    except Exception as e:
        common.warn(
            config, f"autolog: log_loss and roc_auc not logged: predict_proba failed: {e!r}"
        )
        return
    record("log_loss", lambda: m.log_loss(y, proba, sample_weight=weight))

    def roc_auc() -> Any:
        score = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba
        return m.roc_auc_score(
            y, score, average="weighted", sample_weight=weight, multi_class="ovo"
        )

    record("roc_auc", roc_auc)


def _regressor_metrics(
    estimator: Any, data: _TrainingData, record: Callable[[str, Callable[[], Any]], None]
) -> None:
    from sklearn import metrics as m

    y, weight = data.y, data.sample_weight
    y_pred = estimator.predict(data.X)
    mse = m.mean_squared_error(y, y_pred, sample_weight=weight, multioutput="uniform_average")
    record("mean_squared_error", lambda: mse)
    record("root_mean_squared_error", lambda: math.sqrt(mse))
    record(
        "mean_absolute_error",
        lambda: m.mean_absolute_error(
            y, y_pred, sample_weight=weight, multioutput="uniform_average"
        ),
    )
    record(
        "r2_score",
        lambda: m.r2_score(y, y_pred, sample_weight=weight, multioutput="uniform_average"),
    )


def _score(estimator: Any, data: _TrainingData) -> Any:
    try:
        accepts_weight = "sample_weight" in inspect.signature(estimator.score).parameters
    except (TypeError, ValueError):
        accepts_weight = False
    if accepts_weight and data.sample_weight is not None:
        return estimator.score(data.X, data.y, sample_weight=data.sample_weight)
    return estimator.score(data.X, data.y)


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _log_models(
    run_id: str,
    estimator: Any,
    index: int,
    config: SklearnAutologConfig,
    data: _TrainingData | None,
) -> None:
    from tracking.models import sklearn as flavor

    example, signature = (
        common.example_and_signature(
            config, data.X if data is not None else None, estimator.predict
        )
        if hasattr(estimator, "predict")
        else (None, None)
    )
    flavor.log_model(
        estimator,
        common.model_path(index),
        serialization_format=config.serialization_format,
        registered_model_name=config.registered_model_name,
        signature=signature if signature is not None else False,
        input_example=example,
        run_id=run_id,
    )
    if _is_parameter_search(estimator) and hasattr(estimator, "best_estimator_"):
        flavor.log_model(
            estimator.best_estimator_,
            common.model_path(index, "best_estimator"),
            serialization_format=config.serialization_format,
            signature=signature if signature is not None else False,
            run_id=run_id,
        )


FLAVOR = "sklearn"
INTEGRATION = common.Integration(FLAVOR, _install, _uninstall)
