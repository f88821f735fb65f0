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
* the fitted estimator via ``tracking.models.sklearn.log_model`` (``log_models=True``), and a
  parameter search's ``best_estimator_`` as ``best_estimator``.

Only the outermost fit is logged: the fits a Pipeline, GridSearchCV or any meta-estimator runs
inside its own fit are not. Fits of data-preprocessing estimators (``sklearn.preprocessing``,
``impute``, ``feature_extraction``, ``feature_selection``, ``ColumnTransformer``) are not logged,
as in MLflow; neither are the fits they run inside.

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
import contextvars
import copy
import functools
import inspect
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tracking import fluent
from tracking.entities import Metric, Param, RunTag
from tracking.errors import InvalidParameterError
from tracking.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH

__all__ = ["AutologConfig", "AutologWarning", "autolog", "is_enabled", "scoped"]

_logger = logging.getLogger(__name__)

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
TRAINING_PREFIX = "training_"
FIT_COUNT_TAG = "trackflow.autolog.fits"
MODEL_PATH = "model"
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
        "log_input_examples",
        "log_model_signatures",
        "log_datasets",
        "exclusive",
        "disable_for_unsupported_versions",
        "max_tuning_runs",
        "log_post_training_metrics",
    }
)


class AutologWarning(UserWarning):
    """Something autologging could not log; the fit itself was not affected."""


@dataclass(frozen=True)
class AutologConfig:
    """What an autologged fit records."""

    log_models: bool = True
    serialization_format: str = "cloudpickle"
    registered_model_name: str | None = None
    pos_label: Any = None
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    silent: bool = False


# --- state -----------------------------------------------------------------------------------
_lock = threading.RLock()  # the patches and the enable state
_claim_lock = threading.Lock()  # a fit's index in its run and its params, one fit at a time
_global_config: AutologConfig | None = None  # autolog(): every run of the process
_scope_count = 0  # open scoped() blocks, in any context
_patched: dict[tuple[type, str], Any] = {}  # (class, method name) -> original attribute
_MISSING = object()
_saved_init_subclass: Any = _MISSING  # BaseEstimator's own __init_subclass__ before the hook
_hook: Any = None

# (run_id, config) pairs enabled by scoped() in this context; innermost last.
_scopes: contextvars.ContextVar[tuple[tuple[str, AutologConfig], ...]] = contextvars.ContextVar(
    "trackflow_autolog_scopes", default=()
)
# True while a patched fit runs in this context: nested fits are not logged.
_in_fit: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "trackflow_autolog_in_fit", default=False
)


# --- public API ------------------------------------------------------------------------------
def autolog(
    disable: bool = False,
    log_models: bool = True,
    *,
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
    ``silent`` hides autologging's own warnings. MLflow's ``log_input_examples``,
    ``log_model_signatures``, ``log_datasets``, ``exclusive``, ``max_tuning_runs``,
    ``log_post_training_metrics`` and ``disable_for_unsupported_versions`` are accepted and
    ignored; any other keyword is an error.
    """
    global _global_config
    unknown = set(mlflow_options) - IGNORED_MLFLOW_OPTIONS
    if unknown:
        raise TypeError(f"autolog() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    with _lock:
        if disable:
            _global_config = None
        else:
            _global_config = _config(
                log_models,
                silent,
                serialization_format,
                registered_model_name,
                pos_label,
                extra_tags,
            )
        _sync_patches()


def is_enabled(run_id: str | None = None) -> bool:
    """Whether a fit in this context would be logged into `run_id` (default: the active run)."""
    if run_id is None:
        active = fluent.active_run()
        if active is None:
            return False
        run_id = active.info.run_id
    return _config_for(run_id) is not None


@contextlib.contextmanager
def scoped(
    run_id: str,
    log_models: bool = True,
    *,
    silent: bool = False,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Autolog fits into `run_id` inside the block, in this context only.

    Fits log only while `run_id` is the active run (not in nested child runs, other threads or
    after the block); the patches stay installed while any scoped block is open."""
    global _scope_count
    config = _config(
        log_models, silent, serialization_format, registered_model_name, pos_label, extra_tags
    )
    with _lock:
        _scope_count += 1
        try:
            _sync_patches()
        except ImportError as e:
            _scope_count -= 1
            missing: ImportError | None = e
        else:
            missing = None
    if missing is not None:  # no scikit-learn: nothing to autolog
        warnings.warn(f"autolog is off: {missing}", AutologWarning, stacklevel=3)
        yield
        return
    entry = (run_id, config)
    token = _scopes.set((*_scopes.get(), entry))
    try:
        yield
    finally:
        try:
            _scopes.reset(token)
        except ValueError:  # left in another context (generator wrappers): drop it by identity
            _scopes.set(tuple(e for e in _scopes.get() if e is not entry))
        with _lock:
            _scope_count -= 1
            _sync_patches()


def _config(
    log_models: bool,
    silent: bool,
    serialization_format: str,
    registered_model_name: str | None,
    pos_label: Any,
    extra_tags: Mapping[str, Any] | None,
) -> AutologConfig:
    from tracking.models.sklearn import _check_format

    return AutologConfig(
        log_models=bool(log_models),
        serialization_format=_check_format(serialization_format),
        registered_model_name=registered_model_name,
        pos_label=pos_label,
        extra_tags={str(k): str(v) for k, v in (extra_tags or {}).items()},
        silent=bool(silent),
    )


def _config_for(run_id: str) -> AutologConfig | None:
    for scoped_run_id, config in reversed(_scopes.get()):
        if scoped_run_id == run_id:
            return config
    return _global_config


# --- patching --------------------------------------------------------------------------------
def _sync_patches() -> None:
    """Install the patches while autolog is on anywhere; restore the originals otherwise."""
    if _global_config is not None or _scope_count > 0:
        _install()
    elif _patched or _hook is not None:
        _uninstall()


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
    with _lock:
        if _hook is not None:
            _patch_class(cls)


def _uninstall() -> None:
    global _hook, _saved_init_subclass
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
    if _in_fit.get():
        return call(*args, **kwargs)
    token = _in_fit.set(True)
    try:
        active = fluent.active_run()
        config = _config_for(active.info.run_id) if active is not None else None
        if config is None or _excluded(type(estimator)):
            return call(*args, **kwargs)
        run_id = active.info.run_id  # type: ignore[union-attr]
        data = _training_data(call, args, kwargs, config)
        result = call(*args, **kwargs)
        try:
            _log_fit(run_id, estimator, data, config)
        except Exception as e:
            _warn(config, f"autologging {type(estimator).__name__}.fit failed: {e!r}")
        return result
    finally:
        _in_fit.reset(token)


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
        _warn(config, f"autolog could not copy the training data ({e!r}); using it as passed")
    return _TrainingData(X, y, weight)


def _log_fit(
    run_id: str, estimator: Any, data: _TrainingData | None, config: AutologConfig
) -> None:
    client = fluent.current_client()
    index, conflicts = _log_params_and_tags(client, run_id, estimator, config)
    if conflicts:
        shown = ", ".join(conflicts[:10]) + (", ..." if len(conflicts) > 10 else "")
        _warn(
            config,
            f"autolog: {type(estimator).__name__}.fit (fit #{index} in run {run_id}) did not "
            f"log params already logged with other values: {shown}. Params are immutable; "
            "its metrics and model are logged.",
        )
    metrics = _training_metrics(estimator, data, config) if data is not None else {}
    metrics.update(_search_metrics(estimator))
    if metrics:
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, index) for k, v in metrics.items()]
        client.log_batch(run_id, metrics=batch)
    if config.log_models:
        _log_models(run_id, estimator, index, config)


def _log_params_and_tags(
    client: Any, run_id: str, estimator: Any, config: AutologConfig
) -> tuple[int, list[str]]:
    """Log new params and the tags; return this fit's index in the run and the conflicts."""
    params = _estimator_params(estimator)
    cls = type(estimator)
    with _claim_lock:  # claim a fit index; params checked against the run in one step
        run = client.get_run(run_id)
        try:
            index = int(run.data.tags.get(FIT_COUNT_TAG, "0"))
        except ValueError:
            index = 0
        existing = run.data.params
        conflicts = sorted(k for k, v in params.items() if k in existing and existing[k] != v)
        new = [Param(k, v) for k, v in params.items() if k not in existing]
        tags = {
            "estimator_name": cls.__name__,
            "estimator_class": f"{cls.__module__}.{cls.__name__}",
            **config.extra_tags,
            FIT_COUNT_TAG: str(index + 1),
        }
        try:
            client.log_batch(run_id, params=new)
        except InvalidParameterError:  # logged concurrently by other code: one by one
            for param in new:
                try:
                    client.log_batch(run_id, params=[param])
                except InvalidParameterError:
                    conflicts.append(param.key)
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return index, conflicts


def _estimator_params(estimator: Any) -> dict[str, str]:
    search = _is_parameter_search(estimator)
    try:
        raw = estimator.get_params(deep=not search)
    except Exception:
        raw = estimator.get_params(deep=False)
    params = {str(k): _param_text(v) for k, v in raw.items()}
    if search and hasattr(estimator, "best_params_"):
        params.update({f"best_{k}": _param_text(v) for k, v in estimator.best_params_.items()})
    return {
        k: v[:MAX_PARAM_VAL_LENGTH]
        for k, v in params.items()
        if len(k) <= MAX_ENTITY_KEY_LENGTH and _valid_key(k)
    }


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


def _valid_key(key: str) -> bool:
    from tracking.validation import validate_key

    try:
        validate_key(key, "Param key")
    except InvalidParameterError:
        return False
    return True


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
            _warn(config, f"autolog: metric {TRAINING_PREFIX}{name} not logged: {e!r}")
            return
        if value is not None:
            metrics[TRAINING_PREFIX + name] = value

    try:
        if is_classifier(estimator):
            _classifier_metrics(estimator, data, config, record)
        elif is_regressor(estimator):
            _regressor_metrics(estimator, data, record)
    except Exception as e:  # predict() itself failed
        _warn(config, f"autolog: training metrics not logged: {e!r}")
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
        _warn(config, f"autolog: log_loss and roc_auc not logged: predict_proba failed: {e!r}")
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


def _log_models(run_id: str, estimator: Any, index: int, config: AutologConfig) -> None:
    from tracking.models import sklearn as flavor

    suffix = "" if index == 0 else f"_{index}"
    flavor.log_model(
        estimator,
        MODEL_PATH + suffix,
        serialization_format=config.serialization_format,
        registered_model_name=config.registered_model_name,
        run_id=run_id,
    )
    if _is_parameter_search(estimator) and hasattr(estimator, "best_estimator_"):
        flavor.log_model(
            estimator.best_estimator_,
            "best_estimator" + suffix,
            serialization_format=config.serialization_format,
            run_id=run_id,
        )


def _warn(config: AutologConfig, message: str) -> None:
    if config.silent:
        _logger.debug(message)
    else:
        warnings.warn(message, AutologWarning, stacklevel=2)
