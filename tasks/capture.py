"""Capture rules (DESIGN.md core decision 4): call arguments -> params, return values -> metrics.

Params: scalars as text; dicts, dataclasses and pydantic models flattened to dotted keys;
arrays, frames, estimators and other large objects summarised (type, shape, dtype); over-long
values truncated with a warning. Metrics: a returned number, or the numeric entries of a
returned mapping, dataclass, NamedTuple or pydantic model. Nothing here ever raises on odd
input: an object that cannot be described is recorded by its type name.
"""

from __future__ import annotations

import dataclasses
import enum
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from tracking.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH

MAX_DEPTH = 4
MAX_FLAT_ITEMS = 100
MAX_SEQUENCE_TEXT = 250
_SCALARS = (str, int, float, bool, type(None), enum.Enum)
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def clean_key(key: str) -> str:
    """A valid tracking key from any text (invalid characters become '_')."""
    key = _BAD_KEY_CHARS.sub("_", str(key)).strip("/") or "_"
    key = "/".join(part if part not in ("", ".", "..") else "_" for part in key.split("/"))
    return key[:MAX_ENTITY_KEY_LENGTH]


def _type_name(value: object) -> str:
    return type(value).__name__


def summarize(value: object) -> str:
    """Short description of a large or opaque object: type, and shape/dtype when it has them."""
    parts = []
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        parts.append(f"shape={shape}")
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not callable(dtype):
        parts.append(f"dtype={dtype}")
    elif hasattr(value, "dtypes") and hasattr(value, "columns"):
        parts.append(f"columns={len(value.columns)}")
    if not parts and isinstance(value, (list, tuple, set, frozenset, Mapping)):
        parts.append(f"len={len(value)}")
    return f"{_type_name(value)}({', '.join(parts)})"


def _scalar_text(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _as_scalar(value: object) -> object:
    """The Python scalar of a numpy scalar (np.int64(3) -> 3); anything else unchanged."""
    if isinstance(value, _SCALARS) or getattr(value, "shape", None) != ():
        return value
    try:
        item = value.item()  # type: ignore[attr-defined]  # a numpy scalar (shape ()), or raises
    except Exception:
        return value
    return item if isinstance(item, _SCALARS) else value


def _is_pydantic(value: object) -> bool:
    return hasattr(value, "model_dump") and hasattr(type(value), "model_fields")


def _fields(value: object) -> Mapping[str, Any] | None:
    """Named fields of a dataclass, NamedTuple or pydantic model; None for anything else."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return dict(zip(value._fields, value, strict=False))
    if _is_pydantic(value):
        return {name: getattr(value, name) for name in type(value).model_fields}  # type: ignore[attr-defined]  # _is_pydantic
    return None


def _flatten(prefix: str, value: object, out: dict[str, str], depth: int) -> None:
    if len(out) >= MAX_FLAT_ITEMS:
        return
    value = _as_scalar(value)
    if isinstance(value, _SCALARS):
        out[prefix] = _scalar_text(value)
        return
    fields = _fields(value) if not isinstance(value, Mapping) else value
    if fields is not None and depth < MAX_DEPTH:
        if not fields:
            out[prefix] = "{}"
        for key, item in fields.items():
            _flatten(f"{prefix}.{clean_key(str(key))}", item, out, depth + 1)
        return
    items = [_as_scalar(v) for v in value] if isinstance(value, (list, tuple)) else None
    if items is not None and all(isinstance(v, _SCALARS) for v in items):
        text = str([_scalar_text(v) if isinstance(v, enum.Enum) else v for v in items])
        out[prefix] = text if len(text) <= MAX_SEQUENCE_TEXT else summarize(value)
        return
    if hasattr(value, "get_params") and callable(value.get_params):  # an estimator
        out[prefix] = _type_name(value)
        return
    out[prefix] = summarize(value)


def params_from_arguments(
    arguments: Mapping[str, Any],
    keep: bool | Iterable[str] = True,
    exclude: Iterable[str] = (),
) -> dict[str, str]:
    """Params for a call's bound arguments, following the capture rules above."""
    if keep is False:
        return {}
    wanted = None if keep is True else set(keep)
    skipped = set(exclude)
    params: dict[str, str] = {}
    for name, value in arguments.items():
        if name in skipped or (wanted is not None and name not in wanted):
            continue
        flat: dict[str, str] = {}
        try:
            _flatten(clean_key(name), value, flat, 0)
        except Exception:
            flat = {clean_key(name): _type_name(value)}
        for key, text in flat.items():
            if len(key) > MAX_ENTITY_KEY_LENGTH:
                warnings.warn(
                    f"Param key {key[:40]!r}... is {len(key)} characters long; "
                    f"truncated to {MAX_ENTITY_KEY_LENGTH}",
                    stacklevel=2,
                )
                key = key[:MAX_ENTITY_KEY_LENGTH].rstrip("/.") or "_"
            if len(text) > MAX_PARAM_VAL_LENGTH:
                warnings.warn(
                    f"Param {key!r} is {len(text)} characters long; "
                    f"truncated to {MAX_PARAM_VAL_LENGTH}",
                    stacklevel=2,
                )
                text = text[:MAX_PARAM_VAL_LENGTH]
            params[key] = text
    return params


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy scalar
        try:
            item = value.item()
        except Exception:
            return None
        return _number(item)
    return None


def metrics_from_result(name: str, result: object) -> dict[str, float]:
    """Metrics for a return value: a number -> {name: value}; numeric entries of a record."""
    try:
        single = _number(result)
        if single is not None:
            return {clean_key(name): single}
        entries = result if isinstance(result, Mapping) else _fields(result)
        if entries is None:
            return {}
        metrics = {}
        for key, value in entries.items():
            number = _number(value)
            if number is not None:
                metrics[clean_key(str(key))] = number
        return metrics
    except Exception:
        return {}
