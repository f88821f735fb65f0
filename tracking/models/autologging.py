"""What every flavor's autologging shares: when it is on, which fit logs, how a fit is claimed.

An :class:`Integration` is one library's autologging. It is on for every run of the process
(``autolog()``) or for one run in the current context only (``scoped(run_id)``, used by the
``autolog=True`` option of ``tasks.task`` / ``flows.flow``); the library's functions are
patched while it is on anywhere and restored when it is off everywhere. It never creates a run:
a fit logs only into the run active in its own context.

Only the outermost autologged fit logs, across libraries (a LightGBM model inside a
scikit-learn Pipeline is logged once, as the Pipeline). Every logged fit claims the next index
in its run (tag ``trackflow.autolog.fits``): fit ``n`` logs its metrics at step ``n`` (per-
iteration metrics keep their iteration as step) and its model at ``model`` (n = 0) or
``model_<n>``. Params are immutable: a param already logged with another value is skipped with
a warning naming it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tracking import fluent
from tracking.entities import Param, RunTag
from tracking.errors import InvalidParameterError
from tracking.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH

__all__ = [
    "AutologConfig",
    "AutologWarning",
    "Integration",
    "claim_fit",
    "loggable_params",
    "logging_fit",
    "model_path",
    "warn",
]

_logger = logging.getLogger(__name__)

FIT_COUNT_TAG = "trackflow.autolog.fits"
MODEL_PATH = "model"
EXAMPLE_ROWS = 5  # rows of the training data kept as input example / for the signature


class AutologWarning(UserWarning):
    """Something autologging could not log; the fit itself was not affected."""


@dataclass(frozen=True)
class AutologConfig:
    """What an autologged fit records (flavors add their own fields)."""

    log_models: bool = True
    log_input_examples: bool = False
    log_model_signatures: bool = True
    registered_model_name: str | None = None
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    silent: bool = False


_claim_lock = threading.Lock()  # a fit's index in its run and its params, one fit at a time
# True while an autologged fit runs in this context: fits inside it are not logged.
_in_fit: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "trackflow_autolog_in_fit", default=False
)


def in_fit() -> bool:
    """Whether an autologged fit (of any library) is running in this context."""
    return _in_fit.get()


@contextlib.contextmanager
def logging_fit() -> Iterator[None]:
    """Mark this context as inside an autologged fit for the block."""
    token = _in_fit.set(True)
    try:
        yield
    finally:
        _in_fit.reset(token)


class Integration:
    """One library's autologging: its enable state and the patches that go with it."""

    def __init__(
        self, name: str, install: Callable[[], None], uninstall: Callable[[], None]
    ) -> None:
        self.name = name
        self._install = install
        self._uninstall = uninstall
        self.lock = threading.RLock()
        self.global_config: AutologConfig | None = None  # autolog(): every run of the process
        self.scope_count = 0  # open scoped() blocks, in any context
        # (run_id, config) pairs enabled by scoped() in this context; innermost last.
        self._scopes: contextvars.ContextVar[tuple[tuple[str, AutologConfig], ...]] = (
            contextvars.ContextVar(f"trackflow_autolog_{name}_scopes", default=())
        )

    def enable(self, config: AutologConfig | None) -> None:
        """autolog(): on for every run with `config`, or off (None) unless a scope is open."""
        with self.lock:
            self.global_config = config
            self.sync()

    def sync(self) -> None:
        """Install the patches while autolog is on anywhere; restore the originals otherwise."""
        with self.lock:
            if self.global_config is not None or self.scope_count > 0:
                self._install()
            else:
                self._uninstall()

    @contextlib.contextmanager
    def scoped(self, run_id: str, config: AutologConfig) -> Iterator[None]:
        """Autolog fits into `run_id` inside the block, in this context only (a missing library
        turns it into a warning and a no-op)."""
        with self.lock:
            self.scope_count += 1
            try:
                self.sync()
            except ImportError as e:
                self.scope_count -= 1
                missing: ImportError | None = e
            else:
                missing = None
        if missing is not None:
            warnings.warn(f"{self.name} autolog is off: {missing}", AutologWarning, stacklevel=3)
            yield
            return
        entry = (run_id, config)
        token = self._scopes.set((*self._scopes.get(), entry))
        try:
            yield
        finally:
            try:
                self._scopes.reset(token)
            except ValueError:  # left in another context (generator wrappers): drop by identity
                self._scopes.set(tuple(e for e in self._scopes.get() if e is not entry))
            with self.lock:
                self.scope_count -= 1
                self.sync()

    def config_for(self, run_id: str) -> AutologConfig | None:
        """The config autologging into `run_id` uses in this context, or None when off."""
        for scoped_run_id, config in reversed(self._scopes.get()):
            if scoped_run_id == run_id:
                return config
        return self.global_config

    def active(self) -> tuple[str, Any] | None:
        """(run id, config) when autolog is on for the run active in this context."""
        run = fluent.active_run()
        if run is None:
            return None
        config = self.config_for(run.info.run_id)
        return (run.info.run_id, config) if config is not None else None


def claim_fit(
    client: Any, run_id: str, params: Mapping[str, str], tags: Mapping[str, str]
) -> tuple[int, list[str]]:
    """Log a fit's new params and tags; return its index in the run and the params skipped
    because the run has them with other values."""
    with _claim_lock:
        run = client.get_run(run_id)
        try:
            index = int(run.data.tags.get(FIT_COUNT_TAG, "0"))
        except ValueError:
            index = 0
        existing = run.data.params
        conflicts = sorted(k for k, v in params.items() if k in existing and existing[k] != v)
        new = [Param(k, v) for k, v in params.items() if k not in existing]
        try:
            client.log_batch(run_id, params=new)
        except InvalidParameterError:  # logged concurrently by other code: one by one
            for param in new:
                try:
                    client.log_batch(run_id, params=[param])
                except InvalidParameterError:
                    conflicts.append(param.key)
        all_tags = {**tags, FIT_COUNT_TAG: str(index + 1)}
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in all_tags.items()])
    return index, conflicts


def warn_conflicts(
    config: AutologConfig, what: str, index: int, run_id: str, conflicts: list[str]
) -> None:
    if conflicts:
        shown = ", ".join(conflicts[:10]) + (", ..." if len(conflicts) > 10 else "")
        warn(
            config,
            f"autolog: {what} (fit #{index} in run {run_id}) did not log params already logged "
            f"with other values: {shown}. Params are immutable; its metrics and model are "
            "logged.",
        )


def model_path(index: int, base: str = MODEL_PATH) -> str:
    """``model`` for a run's first autologged fit, ``model_<n>`` for fit n."""
    return base if index == 0 else f"{base}_{index}"


def loggable_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as strings, values truncated to the limit, invalid keys left out."""
    from tracking.validation import validate_key

    out = {}
    for key, value in params.items():
        key = str(key)
        if len(key) > MAX_ENTITY_KEY_LENGTH:
            continue
        try:
            validate_key(key, "Param key")
        except InvalidParameterError:
            continue
        out[key] = str(value)[:MAX_PARAM_VAL_LENGTH]
    return out


def log_json(client: Any, run_id: str, file_name: str, data: Any) -> None:
    """`data` as the JSON artifact `file_name` of the run."""
    with tempfile.TemporaryDirectory(prefix="trackflow-autolog-") as tmp:
        path = os.path.join(tmp, file_name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        client.log_artifact(run_id, path)


def example_and_signature(
    config: AutologConfig, X: Any, predict: Callable[[Any], Any]
) -> tuple[Any, Any]:
    """(input example, signature) of a model trained on `X`, as the config asks: the first
    rows of `X` and the signature of the model on them (None for what is not asked for or
    cannot be had, with a warning)."""
    if X is None or not (config.log_input_examples or config.log_model_signatures):
        return None, None
    try:
        head = X[:EXAMPLE_ROWS] if not hasattr(X, "iloc") else X.iloc[:EXAMPLE_ROWS]
    except Exception as e:
        warn(config, f"autolog: no input example or signature: {e!r}")
        return None, None
    signature = None
    if config.log_model_signatures:
        from tracking.models.signature import infer_signature

        try:
            output = predict(head)
            if hasattr(head, "columns") and getattr(output, "ndim", 0) == 1:
                import pandas as pd

                output = pd.Series(output)
            signature = infer_signature(head, output)
        except Exception as e:
            warn(config, f"autolog: model signature not logged: {e!r}")
    return (head if config.log_input_examples else None), signature


def warn(config: AutologConfig, message: str) -> None:
    """An AutologWarning, or a debug log line when the config is silent."""
    if config.silent:
        _logger.debug(message)
    else:
        warnings.warn(message, AutologWarning, stacklevel=2)
