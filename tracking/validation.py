"""Key and value rules shared by every store (MLflow's limits)."""

from __future__ import annotations

import numbers
import os
import posixpath
import re
import warnings
from functools import lru_cache

from tracking.errors import InvalidParameterError

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000

TRUNCATE_ENV = "MLFLOW_TRUNCATE_LONG_VALUES"

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_EXPERIMENT_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")


@lru_cache(maxsize=4096)
def validate_key(key: str, kind: str = "key") -> str:
    """Return `key` if it is a valid metric/param/tag key, else raise naming it and the rules."""
    if not isinstance(key, str):
        raise InvalidParameterError(f"{kind} must be a string, got {type(key).__name__}: {key!r}")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterError(
            f"{kind} {key[:40]!r}... is {len(key)} characters long; "
            f"at most {MAX_ENTITY_KEY_LENGTH} are allowed"
        )
    if not _KEY_RE.match(key):
        raise InvalidParameterError(
            f"Invalid {kind} {key!r}: only letters, digits, underscores (_), dashes (-), "
            "periods (.), spaces ( ), slashes (/) and colons (:) are allowed"
        )
    if posixpath.normpath(key) != key or key == "." or key.startswith(("..", "/")):
        raise InvalidParameterError(
            f"Invalid {kind} {key!r}: it must be a normalized relative path "
            "(not empty, no leading '/', no '..', '.' or empty components)"
        )
    return key


def _should_truncate() -> bool:
    return os.environ.get(TRUNCATE_ENV, "").strip().lower() in ("1", "true", "yes")


def _check_length(key: str, value: str, limit: int, kind: str) -> str:
    if len(value) <= limit:
        return value
    if _should_truncate():
        warnings.warn(
            f"{kind} {key!r} value is {len(value)} characters long; truncated to {limit}",
            stacklevel=4,
        )
        return value[:limit]
    raise InvalidParameterError(
        f"{kind} {key!r} value is {len(value)} characters long; at most {limit} are allowed. "
        f"Set {TRUNCATE_ENV}=true to truncate over-long values with a warning instead"
    )


def param_value(key: str, value: object) -> str:
    """Validate a param and return its stored text."""
    validate_key(key, "Param key")
    return _check_length(key, str(value), MAX_PARAM_VAL_LENGTH, "Param")


def tag_value(key: str, value: object) -> str:
    """Validate a run tag and return its stored text."""
    validate_key(key, "Tag key")
    return _check_length(key, str(value), MAX_TAG_VAL_LENGTH, "Tag")


def experiment_tag_value(key: str, value: object) -> str:
    """Validate an experiment tag and return its stored text."""
    validate_key(key, "Experiment tag key")
    return _check_length(key, str(value), MAX_EXPERIMENT_TAG_VAL_LENGTH, "Experiment tag")


def metric_value(key: str, value: object) -> float:
    """Validate a metric key/value; NaN and +-inf are allowed, bools and non-numbers are not."""
    validate_key(key, "Metric key")
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        if hasattr(value, "item") and not isinstance(value, bool):  # numpy scalar / 0-d array
            try:
                return metric_value(key, value.item())
            except (TypeError, ValueError):
                pass
        raise InvalidParameterError(
            f"Metric {key!r} got {type(value).__name__} value {value!r}; "
            "metric values must be numbers (int or float; NaN and inf allowed)"
        )
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(
            f"Metric {key!r} value {value!r} cannot be converted to a float"
        ) from None


def metric_step(key: str, step: object) -> int:
    if type(step) is int:
        return step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidParameterError(f"Metric {key!r} step must be an integer, got {step!r}")
    return int(step)


def metric_timestamp(key: str, timestamp: object) -> int:
    if type(timestamp) is int and timestamp >= 0:
        return timestamp
    if (
        isinstance(timestamp, bool)
        or not isinstance(timestamp, numbers.Integral)
        or int(timestamp) < 0
    ):
        raise InvalidParameterError(
            f"Metric {key!r} timestamp must be a non-negative integer of milliseconds, "
            f"got {timestamp!r}"
        )
    return int(timestamp)


def run_id(value: object) -> str:
    if not isinstance(value, str) or not _RUN_ID_RE.match(value):
        raise InvalidParameterError(
            f"Invalid run id {value!r}: expected letters, digits, '_' or '-' (32 hex chars usually)"
        )
    return value


def experiment_id(value: object) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _EXPERIMENT_ID_RE.match(text):
        raise InvalidParameterError(
            f"Invalid experiment id {value!r}: expected letters, digits, '_' or '-' (max 64)"
        )
    return text


def experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(
            f"Invalid experiment name {name!r}: it must be a non-empty string"
        )
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterError(
            f"Experiment name is {len(name)} characters long; "
            f"at most {MAX_EXPERIMENT_NAME_LENGTH} are allowed"
        )
    return name


def param_conflict(run_id: str, key: str, old: str, new: str) -> InvalidParameterError:
    """The error for re-logging a param with another value (params are immutable)."""
    return InvalidParameterError(
        f"Changing param values is not allowed. Param with key={key!r} was already logged "
        f"with value={old!r} for run ID={run_id!r}. Attempted logging new value {new!r}"
    )


def batch_sizes(n_metrics: int, n_params: int, n_tags: int) -> None:
    """Raise if a log_batch call exceeds MLflow's per-request limits."""
    if n_metrics > MAX_METRICS_PER_BATCH:
        raise InvalidParameterError(
            f"log_batch got {n_metrics} metrics; at most {MAX_METRICS_PER_BATCH} are allowed"
        )
    if n_params > MAX_PARAMS_TAGS_PER_BATCH or n_tags > MAX_PARAMS_TAGS_PER_BATCH:
        raise InvalidParameterError(
            f"log_batch got {n_params} params and {n_tags} tags; "
            f"at most {MAX_PARAMS_TAGS_PER_BATCH} of each are allowed"
        )
    if n_metrics + n_params + n_tags > MAX_ENTITIES_PER_BATCH:
        raise InvalidParameterError(
            f"log_batch got {n_metrics + n_params + n_tags} entities; "
            f"at most {MAX_ENTITIES_PER_BATCH} are allowed"
        )
