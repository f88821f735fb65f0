"""Model signatures: what a model takes and returns, inferred from data as MLflow does.

``infer_signature(model_input, model_output=None, params=None)`` accepts MLflow's inputs:

* a pandas DataFrame or Series, a list of dicts, a dict of scalars (one row) or of equal-length
  lists (columns), a list of scalars or a scalar -> named or unnamed columns (ColSpec);
* a numpy array, a dict of numpy arrays or a scipy sparse matrix -> tensors (TensorSpec), with
  the first dimension variable (-1);
* params: a dict of scalars or 1-D lists -> a ParamSchema whose defaults are the given values.

A signature is stored in the MLmodel file as MLflow stores it: ``{"inputs": <json>,
"outputs": <json>, "params": <json>}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from tracking.errors import InvalidParameterError
from tracking.models.schema import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = ["ModelSignature", "infer_schema", "infer_signature"]

_SUPPORTED = (
    "a pandas DataFrame or Series, a numpy array, a dict of numpy arrays, a scipy sparse "
    "matrix, a list of dicts, a dict of scalars or lists, a list of scalars or a scalar"
)


class ModelSignature:
    """A model's input schema, output schema and inference params (any may be None)."""

    def __init__(
        self,
        inputs: Schema | None = None,
        outputs: Schema | None = None,
        params: ParamSchema | None = None,
    ) -> None:
        for what, value, kind in (
            ("inputs", inputs, Schema),
            ("outputs", outputs, Schema),
            ("params", params, ParamSchema),
        ):
            if value is not None and not isinstance(value, kind):
                raise InvalidParameterError(
                    f"ModelSignature {what} must be a {kind.__name__} or None, "
                    f"got {type(value).__name__}"
                )
        if inputs is None and outputs is None and params is None:
            raise InvalidParameterError("A ModelSignature needs inputs, outputs or params")
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self) -> dict[str, str | None]:
        """The MLmodel file's ``signature`` section: each part as a JSON string (or None)."""
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": self.params.to_json() if self.params else None,
        }

    @classmethod
    def from_dict(cls, signature_dict: dict[str, Any]) -> ModelSignature:
        """Read an MLmodel ``signature`` section (ours or MLflow's)."""
        if not isinstance(signature_dict, dict):
            raise InvalidParameterError(
                f"A signature is a mapping of inputs/outputs/params, got {signature_dict!r}"
            )
        inputs, outputs, params = (signature_dict.get(k) for k in ("inputs", "outputs", "params"))
        return cls(
            Schema.from_json(inputs) if inputs else None,
            Schema.from_json(outputs) if outputs else None,
            ParamSchema.from_json(params) if params else None,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSignature) and (
            self.inputs,
            self.outputs,
            self.params,
        ) == (other.inputs, other.outputs, other.params)

    def __repr__(self) -> str:
        return (
            f"inputs:\n  {self.inputs!r}\noutputs:\n  {self.outputs!r}\n"
            f"params:\n  {self.params!r}\n"
        )


def infer_signature(
    model_input: Any = None, model_output: Any = None, params: dict[str, Any] | None = None
) -> ModelSignature:
    """The signature of a model taking `model_input`, returning `model_output` and accepting
    `params` at inference (their given values become the defaults)."""
    return ModelSignature(
        infer_schema(model_input) if model_input is not None else None,
        infer_schema(model_output) if model_output is not None else None,
        infer_param_schema(params) if params else None,
    )


# --- schemas from data -----------------------------------------------------------------------
def infer_schema(data: Any) -> Schema:
    """The Schema of `data` (see the module docstring for what is accepted)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return Schema(
            [ColSpec(column_type(data[c]), str(c), _no_missing(data[c])) for c in data.columns]
        )
    if isinstance(data, pd.Series):
        name = None if data.name is None else str(data.name)
        return Schema([ColSpec(column_type(data), name, name is None or _no_missing(data))])
    if isinstance(data, np.ndarray):
        return Schema([_tensor(data)])
    if _is_sparse(data):
        return Schema([TensorSpec(_clean(data.data.dtype), (-1, *data.shape[1:]))])
    if isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values()):
        return Schema([_tensor(v, str(k)) for k, v in data.items()])
    if isinstance(data, dict) and data:
        if all(isinstance(v, list) for v in data.values()):
            return infer_schema(pd.DataFrame(data))
        return infer_schema([data])
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        columns: dict[str, list[Any]] = {}
        for row in data:
            for key, value in row.items():
                columns.setdefault(str(key), []).append(value)
        return Schema(
            [
                ColSpec(
                    column_type(pd.Series(values, dtype=object, name=name)),
                    name,
                    len(values) == len(data) and not any(_missing(v) for v in values),
                )
                for name, values in columns.items()
            ]
        )
    if isinstance(data, list):
        return Schema([ColSpec(column_type(pd.Series(data, dtype=object)) if data else "string")])
    if _is_scalar(data):
        return Schema([ColSpec(scalar_type(data))])
    raise InvalidParameterError(
        f"Cannot infer a schema from a {type(data).__name__}; use {_SUPPORTED}"
    )


def infer_param_schema(params: dict[str, Any]) -> ParamSchema:
    """A ParamSchema whose defaults are `params`' values (scalars or 1-D lists)."""
    if not isinstance(params, dict):
        raise InvalidParameterError(f"params must be a dict, got {type(params).__name__}")
    specs = []
    for name, value in params.items():
        if isinstance(value, list | tuple | np.ndarray):
            values = list(np.asarray(value, dtype=object).ravel()) if len(value) else []
            if np.ndim(np.asarray(value, dtype=object)) != 1 or not values:
                raise InvalidParameterError(
                    f"Param {name!r} must be a scalar or a non-empty 1-D list, got {value!r}"
                )
            kinds = {scalar_type(v) for v in values}
            if kinds == {DataType.long, DataType.double}:
                kinds = {DataType.double}
            if len(kinds) != 1:
                raise InvalidParameterError(
                    f"Param {name!r} mixes types {sorted(k.name for k in kinds)}; use one type"
                )
            specs.append(ParamSpec(name, kinds.pop(), list(value), (-1,)))
        else:
            specs.append(ParamSpec(name, scalar_type(value, f"param {name!r}"), value))
    return ParamSchema(specs)


def scalar_type(value: Any, what: str = "value") -> DataType:
    """The DataType of one scalar value."""
    if isinstance(value, bool | np.bool_):
        return DataType.boolean
    if isinstance(value, np.generic):
        return numpy_type(value.dtype)
    if isinstance(value, int):
        return DataType.long
    if isinstance(value, float):
        return DataType.double
    if isinstance(value, str):
        return DataType.string
    if isinstance(value, bytes | bytearray):
        return DataType.binary
    if isinstance(value, dt.date):
        return DataType.datetime
    raise InvalidParameterError(
        f"Cannot infer a type for {what} {value!r} ({type(value).__name__}): use a bool, int, "
        "float, str, bytes or datetime"
    )


def numpy_type(dtype: Any) -> DataType:
    """The DataType of a numpy (or pandas extension) dtype; InvalidParameterError otherwise."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return DataType.boolean
    if kind in "iu":
        signed_int32 = kind == "i" and size == 4
        return DataType.integer if size < 4 or signed_int32 else DataType.long
    if kind == "f":
        return DataType.float if size <= 4 else DataType.double
    if kind == "U":
        return DataType.string
    if kind == "S":
        return DataType.binary
    if kind == "M":
        return DataType.datetime
    raise InvalidParameterError(f"Unsupported data type {dtype} (kind {kind!r})")


def column_type(column: Any) -> DataType:
    """The DataType of a pandas Series: from its dtype, or from its values for object columns."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, np.dtype):
        return DataType.string  # pandas' StringDtype
    if dtype.kind != "O":
        return numpy_type(dtype)
    values = [v for v in column if not _missing(v)]
    kinds = {scalar_type(v, f"column {column.name!r} value") for v in values}
    if not kinds:
        return DataType.string
    if len(kinds) > 1:
        raise InvalidParameterError(
            f"Column {column.name!r} mixes types {sorted(k.name for k in kinds)}; use one type"
        )
    return kinds.pop()


def _tensor(array: np.ndarray, name: str | None = None) -> TensorSpec:
    return TensorSpec(_clean(array.dtype), (-1, *array.shape[1:]), name)


def _clean(dtype: np.dtype) -> np.dtype:
    """numpy string dtypes without their size (MLflow stores ``str`` and ``bytes``)."""
    if dtype.char == "U":
        return np.dtype("str")
    if dtype.char == "S":
        return np.dtype("bytes")
    return dtype


def _is_sparse(data: Any) -> bool:
    return type(data).__module__.startswith("scipy.sparse") and hasattr(data, "tocsr")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bytes | int | float | bool | np.generic | dt.date)


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or (_is_scalar(value) and bool(pd.isna(value)))


def _no_missing(column: Any) -> bool:
    return not bool(column.isna().any())
