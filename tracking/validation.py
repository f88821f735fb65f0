"""Key and value rules shared by every store (MLflow's limits)."""

from __future__ import annotations

import numbers
import os
import posixpath
import re
import sys
import warnings
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from tracking.errors import InvalidParameterError

if TYPE_CHECKING:
    from tracking.entities import RunTag

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_RUN_NAME_LENGTH = 250
MAX_USER_ID_LENGTH = 256
#: Bytes of UTF-8 in one '/'-separated part of a key: the file store makes it a file name.
MAX_KEY_PART_BYTES = 255
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

TRUNCATE_ENV = "MLFLOW_TRUNCATE_LONG_VALUES"

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,254}$", re.ASCII)
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
    if not key.isascii():
        for part in key.split("/"):
            size = len(part.encode("utf-8"))
            if size > MAX_KEY_PART_BYTES:
                raise InvalidParameterError(
                    f"Invalid {kind} {key[:40]!r}...: its part {part[:20]!r}... is {size} bytes "
                    f"long in UTF-8; each '/'-separated part may have at most "
                    f"{MAX_KEY_PART_BYTES} (it is a file name in the file store)"
                )
    return key


def shown(value: object, limit: int = 100) -> str:
    """`value` for an error message: its repr, cut to `limit` characters."""
    if isinstance(value, int) and abs(value) > 10**100:
        return f"<an integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def text(what: str, value: str) -> str:
    """Return `value` unless it contains a NUL character or an unpaired surrogate, which
    PostgreSQL and UTF-8 files cannot hold (so no store accepts them)."""
    if "\x00" in value:
        raise InvalidParameterError(
            f"{what} {shown(value)} contains a NUL character (\\x00), which no store accepts"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidParameterError(
                f"{what} {shown(value)} is not valid Unicode text: unpaired surrogate "
                f"{value[e.start]!r} at position {e.start}"
            ) from None
    return value


def is_text(value: str) -> bool:
    """Whether `text` accepts `value` (a name holding NUL can name nothing stored)."""
    try:
        text("Text", value)
    except InvalidParameterError:
        return False
    return True


def no_key_clash(kind: str, keys: Iterable[str]) -> None:
    """Raise if one of `keys` is a '/'-folder of another, as 'a' and 'a/b'."""
    unique = set(keys)
    for key in unique:
        parts = key.split("/")
        for end in range(1, len(parts)):
            folder = "/".join(parts[:end])
            if folder in unique:
                raise clash_error(kind, key, folder, key)


def clash_error(kind: str, key: str, folder: str, below: str) -> InvalidParameterError:
    """The error for logging `key` where `folder` and `below` (one of them `key`) clash."""
    other = below if key == folder else folder
    return InvalidParameterError(
        f"{kind} key {key!r} clashes with {other!r} in the same run: a key cannot also be a "
        f"folder of other keys ({folder!r} and {below!r}); pick another name"
    )


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
    return text(
        f"Param {key!r} value", _check_length(key, str(value), MAX_PARAM_VAL_LENGTH, "Param")
    )


def tag_value(key: str, value: object) -> str:
    """Validate a run tag and return its stored text."""
    validate_key(key, "Tag key")
    return text(f"Tag {key!r} value", _check_length(key, str(value), MAX_TAG_VAL_LENGTH, "Tag"))


def experiment_tag_value(key: str, value: object) -> str:
    """Validate an experiment tag and return its stored text."""
    validate_key(key, "Experiment tag key")
    checked = _check_length(key, str(value), MAX_EXPERIMENT_TAG_VAL_LENGTH, "Experiment tag")
    return text(f"Experiment tag {key!r} value", checked)


def metric_value(key: str, value: object) -> float:
    """Validate a metric key/value; NaN and +-inf are allowed, bools, non-numbers and numbers
    beyond a 64-bit float (an int like 10**400) are not."""
    validate_key(key, "Metric key")
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        if hasattr(value, "item") and not isinstance(value, bool):  # numpy scalar / 0-d array
            try:
                return metric_value(key, value.item())
            except (TypeError, ValueError):
                pass
        raise InvalidParameterError(
            f"Metric {key!r} got {type(value).__name__} value {shown(value)}; "
            "metric values must be numbers (int or float; NaN and inf allowed)"
        )
    try:
        return float(value)  # type: ignore[arg-type]  # TypeError for non-numbers is caught
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(
            f"Metric {key!r} value {shown(value)} cannot be converted to a 64-bit float "
            f"(at most about {sys.float_info.max:.4g} in magnitude)"
        ) from None


def int64(what: str, value: object, minimum: int = INT64_MIN) -> int:
    """`value` as an int if it is an integer in minimum..2**63-1 (a SQL BIGINT), else raise."""
    if type(value) is int and minimum <= value <= INT64_MAX:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{what} must be an integer, got {shown(value)}")
    number = int(value)
    if not minimum <= number <= INT64_MAX:
        raise InvalidParameterError(
            f"{what} {shown(number)} is out of range: it must be a 64-bit integer in "
            f"{minimum}..{INT64_MAX}"
        )
    return number


def metric_step(key: str, step: object) -> int:
    if type(step) is int and INT64_MIN <= step <= INT64_MAX:
        return step
    return int64(f"Metric {key!r} step", step)


def metric_timestamp(key: str, timestamp: object) -> int:
    if type(timestamp) is int and 0 <= timestamp <= INT64_MAX:
        return timestamp
    return int64(f"Metric {key!r} timestamp (milliseconds)", timestamp, minimum=0)


def time_ms(what: str, value: object) -> int:
    """A start or end time: a 64-bit integer of milliseconds since the epoch."""
    return int64(f"{what} (milliseconds)", value)


def _bounded_text(what: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidParameterError(f"{what} must be a string, got {shown(value)}")
    if len(value) > limit:
        raise InvalidParameterError(
            f"{what} {shown(value)} is {len(value)} characters long; at most {limit} are allowed"
        )
    return text(what, value)


def run_name(name: object) -> str:
    """A run name: text of at most MAX_RUN_NAME_LENGTH characters ("" for none)."""
    return _bounded_text("Run name", name, MAX_RUN_NAME_LENGTH)


def new_run_tags(
    user: object, start_time: object, name: object, tags: list[RunTag]
) -> dict[str, str]:
    """Validate a new run's user, start time, name and tags; return its tags (with
    mlflow.runName set from `name`) as {key: value}."""
    _bounded_text("User id", user, MAX_USER_ID_LENGTH)
    time_ms("Run start_time", start_time)
    checked = {t.key: tag_value(t.key, t.value) for t in tags}
    if valid_name := run_name(name):
        checked.setdefault("mlflow.runName", valid_name)
    no_key_clash("Tag", checked)
    return checked


def run_id(value: object) -> str:
    if not isinstance(value, str) or not _RUN_ID_RE.match(value):
        raise InvalidParameterError(
            f"Invalid run id {shown(value)}: expected 1 to 255 ASCII letters, digits, '_' or '-' "
            "(32 hex characters usually)"
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
    return text("Experiment name", name)


def artifact_location(location: object) -> str:
    """An experiment's artifact location given by a caller: text without NUL characters."""
    if not isinstance(location, str):
        raise InvalidParameterError(f"Artifact location must be a string, got {shown(location)}")
    return text("Artifact location", location)


def absolute_location(location: str) -> str:
    """`location` with a relative local path made absolute (from the current directory), as
    MLflow stores it; URIs and absolute paths unchanged."""
    scheme = location.partition(":")[0] if ":" in location else ""
    if len(scheme) > 1 and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return location
    return location if os.path.isabs(location) else os.path.abspath(location)


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
