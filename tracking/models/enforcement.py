"""Checking model input and params against a signature, as MLflow's pyfunc does.

Columns (ColSpec schemas): the input becomes a DataFrame; a missing required column is an
error naming it, extra columns are dropped with a warning, columns come out in the schema's
order, and each column is converted to its type when no value changes: integers to a wider
integer type or to floats (when every value is exactly representable there), float32 to
float64, strings or datetime64 of any precision to datetime. Anything else (floats to
integers, float64 to float32, numbers to strings, ...) is refused with the column's name.

Tensors (TensorSpec schemas): the array's shape must match (-1 matches any size) and its dtype
is converted under the same rules. Params: unknown names and values of the wrong type are
refused; missing params take their defaults.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from typing import Any

import numpy as np

from tracking.errors import InvalidParameterError
from tracking.models.schema import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = [
    "SchemaEnforcementError",
    "enforce_param",
    "enforce_params",
    "enforce_schema",
    "validate_schema",
]

_logger = logging.getLogger(__name__)
#: largest integer each float dtype holds exactly
_EXACT_INT = {4: 2**24, 8: 2**53}


class SchemaEnforcementError(InvalidParameterError):
    """The input or params do not match the model's signature."""


def enforce_schema(data: Any, schema: Schema) -> Any:
    """`data` checked and converted to `schema` (a DataFrame for columns, arrays for tensors)."""
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    frame = _as_frame(data, schema)
    if schema.has_input_names():
        return _enforce_named_columns(frame, schema)
    if len(frame.columns) < len(schema.inputs):
        raise SchemaEnforcementError(
            f"The model signature declares {len(schema.inputs)} unnamed input columns but the "
            f"input has {len(frame.columns)}"
        )
    columns = {
        c: _convert_column(str(c), frame[c], spec)
        for c, spec in zip(frame.columns, schema.inputs, strict=False)
    }
    return _frame(columns, frame.index)


def validate_schema(data: Any, expected_schema: Schema) -> None:
    """Raise SchemaEnforcementError when `data` does not match `expected_schema`."""
    enforce_schema(data, expected_schema)


# --- columns ---------------------------------------------------------------------------------
def _as_frame(data: Any, schema: Schema) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame()
    elif isinstance(data, np.ndarray) and data.ndim == 1 and len(schema.inputs) == 1:
        name = schema.inputs[0].name
        frame = pd.DataFrame({name if name is not None else 0: data})
    elif isinstance(data, dict):
        scalars = all(np.ndim(v) == 0 for v in data.values())
        try:
            frame = pd.DataFrame([data]) if scalars else pd.DataFrame(data)
        except ValueError as e:
            raise SchemaEnforcementError(f"The input does not make a DataFrame: {e}") from None
    elif isinstance(data, list | np.ndarray):
        try:
            frame = pd.DataFrame(data)
        except ValueError as e:
            raise SchemaEnforcementError(f"The input does not make a DataFrame: {e}") from None
    elif np.ndim(data) == 0 and data is not None:
        frame = pd.DataFrame([data])
    else:
        raise SchemaEnforcementError(
            f"The model's signature has columns, so its input must be a DataFrame (or a "
            f"Series, dict, list or array), got {type(data).__name__}"
        )
    if any(not isinstance(c, str) for c in frame.columns) and schema.has_input_names():
        frame = frame.rename(columns=str)
    return frame


def _enforce_named_columns(frame: Any, schema: Schema) -> Any:
    present = set(frame.columns)
    missing = [n for n in schema.required_input_names() if n not in present]
    known = set(schema.input_names())
    extra = [str(c) for c in frame.columns if c not in known]
    if missing:
        note = f" (the input has extra columns {extra})" if extra else ""
        raise SchemaEnforcementError(
            f"The input is missing column(s) {missing} required by the model signature{note}; "
            f"the signature's columns are {schema.input_names()}"
        )
    if extra:
        _logger.warning("Input column(s) %s are not in the model signature and are ignored", extra)
    columns = {
        spec.name: _convert_column(str(spec.name), frame[spec.name], spec)
        for spec in schema.inputs
        if spec.name in present
    }
    return _frame(columns, frame.index)


def _frame(columns: dict[Any, Any], index: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(columns, index=index)


def _convert_column(name: str, values: Any, spec: ColSpec) -> Any:
    """The column converted to the spec's type when no value changes; error otherwise."""
    import pandas as pd

    target = spec.type
    if not isinstance(target, DataType):
        return values  # a nested type (array, object, map, any): presence is what is checked
    dtype = values.dtype
    if target in (DataType.string, DataType.binary):
        want = str if target is DataType.string else (bytes, bytearray)
        if (
            target is DataType.string
            and pd.api.types.is_string_dtype(dtype)
            and (
                not isinstance(dtype, np.dtype)
                or all(isinstance(v, str) or _missing(v) for v in values)
            )
        ):
            return values
        if dtype.kind in ("O", "S") and all(isinstance(v, want) or _missing(v) for v in values):
            return values
        if target is DataType.binary and isinstance(dtype, pd.StringDtype):
            return values
        raise _type_error(name, dtype, target)
    if dtype.kind == "O":
        values = values.infer_objects()
        dtype = values.dtype
    if target is DataType.datetime:
        if dtype.kind == "M":
            return _astype(name, values, "datetime64[ns]", target)
        if dtype.kind in ("O", "U") or pd.api.types.is_string_dtype(dtype):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
                    return pd.to_datetime(values).astype("datetime64[ns]")
            except (ValueError, TypeError) as e:
                raise SchemaEnforcementError(
                    f"Column {name!r} cannot be read as datetime: {e}"
                ) from None
        raise _type_error(name, dtype, target)
    wanted = target.to_numpy()
    if dtype == wanted:
        return values
    if _safe_cast(values.to_numpy(dtype=object) if dtype.kind == "O" else values, dtype, wanted):
        return _astype(name, values, wanted, target)
    raise _type_error(name, dtype, target, values)


def _safe_cast(values: Any, source: Any, target: np.dtype) -> bool:
    """Whether casting `values` from `source` to `target` leaves every value unchanged."""
    kind, size = getattr(source, "kind", "O"), getattr(source, "itemsize", 0)
    if kind == "b" or target.kind == "b":
        return False
    if kind == "f" and target.kind == "f":
        return size <= target.itemsize
    if kind in "iu" and target.kind in "iu":
        if kind == target.kind and size <= target.itemsize:
            return True
        if (kind, target.kind) == ("u", "i") and size < target.itemsize:
            return True
        info = np.iinfo(target)
        present = np.asarray(values[~_isna(values)], dtype=object)
        return bool(all(info.min <= int(v) <= info.max for v in present))
    if kind in "iu" and target.kind == "f":
        limit = _EXACT_INT[target.itemsize]
        present = np.asarray(values[~_isna(values)], dtype=object)
        return bool(all(-limit <= int(v) <= limit for v in present))
    return False


def _isna(values: Any) -> Any:
    import pandas as pd

    return np.asarray(pd.isna(values), dtype=bool)


def _astype(name: str, values: Any, dtype: Any, target: DataType) -> Any:
    try:
        return values.astype(dtype)
    except (ValueError, TypeError) as e:
        raise SchemaEnforcementError(
            f"Column {name!r} cannot be converted to {target.name}: {e}"
        ) from None


def _type_error(
    name: str, dtype: Any, target: DataType, values: Any = None
) -> SchemaEnforcementError:
    hint = ""
    if values is not None and getattr(dtype, "kind", "") == "f" and target.to_numpy().kind in "iu":
        present = values[~values.isna()]
        if values.isna().any() and (present == present.round()).all():
            hint = (
                " It holds missing values (NaN), which make an integer column float; declare "
                "the column as double in the signature if it may have missing values."
            )
    return SchemaEnforcementError(
        f"Incompatible input type for column {name!r}: cannot safely convert {dtype} to "
        f"{target.name} (the signature's type) without changing values.{hint}"
    )


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


# --- tensors ---------------------------------------------------------------------------------
def _enforce_tensors(data: Any, schema: Schema) -> Any:
    import pandas as pd

    specs: list[TensorSpec] = schema.inputs  # type: ignore[assignment]
    if not schema.has_input_names():
        spec = specs[0]
        if isinstance(data, pd.DataFrame):
            if data.empty:
                raise SchemaEnforcementError("The input DataFrame is empty")
            if len(data.columns) == 1:
                return _tensor_from_column(str(data.columns[0]), data[data.columns[0]], spec)
            return _check_tensor("input", data.to_numpy(), spec)
        if isinstance(data, list):
            data = np.asarray(data)
        if isinstance(data, np.ndarray):
            return _check_tensor("input", data, spec)
        if hasattr(data, "tocsr") and hasattr(data, "data"):  # scipy sparse
            _check_shape("input", data.shape, spec)
            if not _same_dtype(data.data.dtype, spec.type):
                raise _tensor_type_error("input", data.data.dtype, spec)
            return data
        raise SchemaEnforcementError(
            "The model's signature is one unnamed tensor, so its input must be a numpy array "
            f"(or a DataFrame or list of rows), got {type(data).__name__}"
        )
    if isinstance(data, pd.DataFrame):
        columns = {str(c): data[c] for c in data.columns}
        missing = [s.name for s in specs if s.name not in columns]
        if missing:
            raise SchemaEnforcementError(f"The input is missing tensor(s) {missing}")
        return {s.name: _tensor_from_column(str(s.name), columns[s.name], s) for s in specs}
    if isinstance(data, dict):
        missing = [s.name for s in specs if s.name not in data]
        if missing:
            raise SchemaEnforcementError(
                f"The input is missing tensor(s) {missing}; the signature's tensors are "
                f"{[s.name for s in specs]}"
            )
        return {s.name: _check_tensor(str(s.name), np.asarray(data[s.name]), s) for s in specs}
    raise SchemaEnforcementError(
        "The model's signature has named tensors, so its input must be a dict of arrays (or a "
        f"DataFrame with one column per tensor), got {type(data).__name__}"
    )


def _tensor_from_column(name: str, column: Any, spec: TensorSpec) -> np.ndarray:
    first = column.iloc[0]
    if np.ndim(first) == 0:
        if spec.shape not in ((-1,), (-1, 1)):
            raise SchemaEnforcementError(
                f"Column {name!r} holds scalars, which make a tensor of shape (-1,) or (-1, 1), "
                f"but the signature's shape is {spec.shape}"
            )
        return _check_tensor(name, column.to_numpy().reshape(spec.shape), spec)
    try:
        stacked = np.vstack([np.asarray(v) for v in column]).reshape(spec.shape)
    except ValueError:
        raise SchemaEnforcementError(
            f"Column {name!r} cannot be reshaped to the signature's shape {spec.shape}"
        ) from None
    return _check_tensor(name, stacked, spec)


def _check_tensor(name: str, array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.type == np.dtype("O") and spec.shape == (-1,):
        return array
    _check_shape(name, array.shape, spec)
    if _same_dtype(array.dtype, spec.type):
        return array
    if array.dtype.kind == "O":
        try:
            converted = array.astype(spec.type)
        except (ValueError, TypeError):
            raise _tensor_type_error(name, array.dtype, spec) from None
        if np.array_equal(converted.astype(object), array, equal_nan=False):
            return converted
        raise _tensor_type_error(name, array.dtype, spec)
    if _safe_cast(array.ravel(), array.dtype, spec.type):
        return array.astype(spec.type)
    raise _tensor_type_error(name, array.dtype, spec)


def _check_shape(name: str, shape: tuple[int, ...], spec: TensorSpec) -> None:
    expected = spec.shape
    if len(shape) != len(expected) or any(
        e != -1 and e != a for e, a in zip(expected, shape, strict=True)
    ):
        raise SchemaEnforcementError(
            f"The shape of {name} {tuple(shape)} does not match the signature's shape "
            f"{expected} (-1: any size)"
        )


def _same_dtype(actual: np.dtype, expected: np.dtype) -> bool:
    if actual.kind in "US" and expected.kind == actual.kind:
        return True
    return actual == expected


def _tensor_type_error(name: str, dtype: np.dtype, spec: TensorSpec) -> SchemaEnforcementError:
    return SchemaEnforcementError(
        f"Incompatible dtype for {name}: cannot safely convert {dtype} to {spec.type} (the "
        "signature's dtype) without changing values"
    )


# --- params ----------------------------------------------------------------------------------
def enforce_params(
    params: dict[str, Any] | None, schema: ParamSchema | None, model: str = "The model"
) -> dict[str, Any] | None:
    """`params` checked against `schema`, defaults filled in; None when the model takes none."""
    if params is not None and not isinstance(params, dict):
        raise SchemaEnforcementError(f"params must be a dict, got {type(params).__name__}")
    if schema is None:
        if params:
            raise SchemaEnforcementError(
                f"{model} takes no inference params (its signature has no params), got "
                f"{sorted(map(str, params))}"
            )
        return None
    given = {str(k): v for k, v in (params or {}).items()}
    allowed = [p.name for p in schema.params]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise SchemaEnforcementError(
            f"Unknown inference param(s) {unknown}; the model's signature allows {allowed}"
        )
    return {
        p.name: enforce_param(p, given[p.name]) if p.name in given else p.default
        for p in schema.params
    }


def enforce_param(spec: ParamSpec, value: Any) -> Any:
    """`value` as a plain Python value of the spec's type and shape; error naming the param."""
    if value is None:
        return None
    if spec.shape == (-1,):
        if not isinstance(value, list | tuple | np.ndarray) or np.ndim(value) != 1:
            raise SchemaEnforcementError(
                f"Param {spec.name!r} must be a 1-D list of {spec.dtype.name}, got {value!r}"
            )
        return [_param_value(spec, v) for v in value]
    return _param_value(spec, value)


def _param_value(spec: ParamSpec, value: Any) -> Any:
    target = spec.dtype
    if target is DataType.datetime:
        if isinstance(value, dt.date):
            return value
        try:
            converted = np.datetime64(value).item()
        except (ValueError, TypeError):
            converted = None
        if isinstance(converted, dt.date):
            return converted
    elif np.ndim(value) == 0:
        is_bool = isinstance(value, bool | np.bool_)
        if target is DataType.boolean and is_bool:
            return bool(value)
        integral = isinstance(value, int | np.integer) and not is_bool
        numeric = integral or isinstance(value, float | np.floating)
        if target in (DataType.integer, DataType.long) and integral:
            return int(value)
        if target in (DataType.float, DataType.double) and numeric:
            return float(value)
        if target is DataType.string and isinstance(value, str):
            return value
    shape = "" if spec.shape is None else " values"
    raise SchemaEnforcementError(
        f"Param {spec.name!r} must be of type {target.name}{shape}, got {value!r} "
        f"({type(value).__name__})"
    )
