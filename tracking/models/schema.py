"""Model schemas in MLflow's format: column and tensor specs, param specs, their JSON.

``Schema.to_json()`` / ``ParamSchema.to_json()`` give the very strings MLflow stores in the
``signature`` section of an MLmodel file, and ``from_json`` reads MLflow's::

    [{"type": "double", "name": "x", "required": true}, ...]                columns
    [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]   tensors
    [{"name": "k", "type": "long", "default": 2, "shape": null}, ...]          params

Column types are MLflow's scalar types (:class:`DataType`); MLflow's nested column types
(``array``, ``object``, ``map``, ``any``) are read and written back unchanged as
:class:`NestedType`, and checked only for presence when a model is called.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from typing import Any

import numpy as np

from tracking.errors import InvalidParameterError

__all__ = [
    "ColSpec",
    "DataType",
    "NestedType",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
]


class DataType(Enum):
    """MLflow's column types, with the numpy dtype each stands for."""

    boolean = 1
    integer = 2
    long = 3
    float = 4
    double = 5
    string = 6
    binary = 7
    datetime = 8

    def __repr__(self) -> str:
        return self.name

    def to_numpy(self) -> np.dtype:
        """The numpy dtype of this type (``str``/``bytes`` for string/binary)."""
        return np.dtype(_NUMPY[self])

    def to_python(self) -> type:
        """The Python type a param of this type becomes."""
        return _PYTHON[self]

    @classmethod
    def from_name(cls, name: str) -> DataType:
        """The type called `name`; InvalidParameterError naming the allowed names."""
        try:
            return cls[name]
        except KeyError:
            raise InvalidParameterError(
                f"Unsupported type {name!r}; use one of {', '.join(t.name for t in cls)}"
            ) from None


_NUMPY = {
    DataType.boolean: "bool",
    DataType.integer: "int32",
    DataType.long: "int64",
    DataType.float: "float32",
    DataType.double: "float64",
    DataType.string: "str",
    DataType.binary: "bytes",
    DataType.datetime: "datetime64[ns]",
}
_PYTHON: dict[DataType, type] = {
    DataType.boolean: bool,
    DataType.integer: int,
    DataType.long: int,
    DataType.float: float,
    DataType.double: float,
    DataType.string: str,
    DataType.binary: bytes,
    DataType.datetime: dt.datetime,
}
NESTED_TYPES = ("array", "object", "map", "any", "sparkml_vector")


class NestedType:
    """One of MLflow's nested column types (array, object, map, any), kept as MLflow wrote it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = {k: v for k, v in spec.items() if k not in ("name", "required")}

    @property
    def name(self) -> str:
        return str(self.spec.get("type"))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NestedType) and self.spec == other.spec

    def __repr__(self) -> str:
        return f"NestedType({self.spec!r})"


class ColSpec:
    """One column: its type, name (None for unnamed columns) and whether it is required."""

    def __init__(
        self,
        type: DataType | NestedType | str,
        name: str | None = None,
        required: bool = True,
    ) -> None:
        self.type = DataType.from_name(type) if isinstance(type, str) else type
        if not isinstance(self.type, DataType | NestedType):
            raise InvalidParameterError(
                f"ColSpec type must be a DataType or one of its names, got {type!r}"
            )
        self.name = name
        self.required = bool(required)

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type.name} if isinstance(self.type, DataType) else self.type.to_dict()
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @classmethod
    def from_json_dict(cls, **spec: Any) -> ColSpec:
        if "type" not in spec:
            raise InvalidParameterError(f"A column spec needs a 'type', got {spec!r}")
        required = spec.get("required")
        required = True if required is None else bool(required)
        kind = spec["type"]
        column_type = NestedType(spec) if kind in NESTED_TYPES else DataType.from_name(kind)
        return cls(column_type, spec.get("name"), required)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ColSpec) and (self.name, self.type, self.required) == (
            other.name,
            other.type,
            other.required,
        )

    def __repr__(self) -> str:
        required = "required" if self.required else "optional"
        prefix = "" if self.name is None else f"{self.name!r}: "
        return f"{prefix}{self.type!r} ({required})"


class TensorSpec:
    """A tensor input: numpy dtype and shape (-1 for a variable dimension), optionally named."""

    def __init__(
        self,
        type: np.dtype | str,
        shape: tuple[int, ...] | list[int],
        name: str | None = None,
    ) -> None:
        dtype = np.dtype(type)
        if dtype.char in ("U", "S") and not dtype.name.isalpha():
            raise InvalidParameterError(
                f"TensorSpec dtype {dtype.name!r} has a size; use "
                f"np.dtype({dtype.name.rstrip('0123456789')!r})"
            )
        if not isinstance(shape, tuple | list) or not all(
            isinstance(d, int | np.integer) for d in shape
        ):
            raise InvalidParameterError(f"TensorSpec shape must be a list of ints, got {shape!r}")
        self.type = dtype
        self.shape = tuple(int(d) for d in shape)
        self.name = name

    @property
    def required(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.name is None else {"name": self.name}
        out.update(
            {"type": "tensor", "tensor-spec": {"dtype": self.type.name, "shape": list(self.shape)}}
        )
        return out

    @classmethod
    def from_json_dict(cls, **spec: Any) -> TensorSpec:
        info = spec.get("tensor-spec")
        if not isinstance(info, dict) or not {"dtype", "shape"} <= set(info):
            raise InvalidParameterError(
                f"A tensor spec needs 'tensor-spec' with 'dtype' and 'shape', got {spec!r}"
            )
        return cls(np.dtype(info["dtype"]), list(info["shape"]), spec.get("name"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorSpec) and (self.name, self.type, self.shape) == (
            other.name,
            other.type,
            other.shape,
        )

    def __repr__(self) -> str:
        prefix = "" if self.name is None else f"{self.name!r}: "
        return f"{prefix}Tensor({self.type.name!r}, {self.shape!r})"


class Schema:
    """A dataset's columns (ColSpec) or tensors (TensorSpec): all named or all unnamed."""

    def __init__(self, inputs: list[ColSpec | TensorSpec]) -> None:
        if not isinstance(inputs, list) or not inputs:
            raise InvalidParameterError("A Schema needs a non-empty list of ColSpec or TensorSpec")
        if not (
            all(isinstance(x, ColSpec) for x in inputs)
            or all(isinstance(x, TensorSpec) for x in inputs)
        ):
            raise InvalidParameterError("A Schema holds either ColSpecs or TensorSpecs, not both")
        named = [x.name is not None for x in inputs]
        if any(named) and not all(named):
            raise InvalidParameterError(
                f"A Schema's inputs are all named or all unnamed, got {[x.name for x in inputs]}"
            )
        if not any(named) and len(inputs) > 1 and isinstance(inputs[0], TensorSpec):
            raise InvalidParameterError("A Schema with several TensorSpecs must name each one")
        if not any(named) and not all(x.required for x in inputs):
            raise InvalidParameterError("Unnamed columns cannot be optional")
        names = [x.name for x in inputs if x.name is not None]
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"A Schema's input names must be unique, got {names}")
        self.inputs = list(inputs)

    def __len__(self) -> int:
        return len(self.inputs)

    def __iter__(self) -> Any:
        return iter(self.inputs)

    def is_tensor_spec(self) -> bool:
        return isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return self.inputs[0].name is not None

    def input_names(self) -> list[str | int]:
        return [x.name if x.name is not None else i for i, x in enumerate(self.inputs)]

    def required_input_names(self) -> list[str | int]:
        return [n for n, x in zip(self.input_names(), self.inputs, strict=True) if x.required]

    def optional_input_names(self) -> list[str | int]:
        return [n for n, x in zip(self.input_names(), self.inputs, strict=True) if not x.required]

    def input_types(self) -> list[DataType | NestedType | np.dtype]:
        return [x.type for x in self.inputs]

    def to_dict(self) -> list[dict[str, Any]]:
        return [x.to_dict() for x in self.inputs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str) -> Schema:
        specs = json.loads(json_str)
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise InvalidParameterError(f"A schema is a JSON list of specs, got {json_str!r}")
        return cls(
            [
                TensorSpec.from_json_dict(**s)
                if s.get("type") == "tensor"
                else ColSpec.from_json_dict(**s)
                for s in specs
            ]
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.inputs == other.inputs

    def __repr__(self) -> str:
        return repr(self.inputs)


class ParamSpec:
    """An inference param: name, type, default, and shape None (scalar) or (-1,) (a list)."""

    def __init__(
        self,
        name: str,
        dtype: DataType | str,
        default: Any,
        shape: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        self.name = str(name)
        self.dtype = DataType.from_name(dtype) if isinstance(dtype, str) else dtype
        if not isinstance(self.dtype, DataType) or self.dtype is DataType.binary:
            raise InvalidParameterError(
                f"Param {self.name!r}: dtype must be a DataType other than binary, got {dtype!r}"
            )
        self.shape = tuple(shape) if shape is not None else None
        if self.shape not in (None, (-1,)):
            raise InvalidParameterError(
                f"Param {self.name!r}: shape must be None (a scalar) or (-1,) (a list), "
                f"got {shape!r}"
            )
        from tracking.models.enforcement import enforce_param

        self.default = enforce_param(self, default)

    def to_dict(self) -> dict[str, Any]:
        default = self.default
        if self.dtype is DataType.datetime and default is not None:
            default = [v.isoformat() for v in default] if self.shape else default.isoformat()
        return {
            "name": self.name,
            "default": default,
            "shape": list(self.shape) if self.shape else None,
            "type": self.dtype.name,
        }

    @classmethod
    def from_json_dict(cls, **spec: Any) -> ParamSpec:
        kind = spec.get("type") or spec.get("dtype")
        if "name" not in spec or kind is None or "default" not in spec:
            raise InvalidParameterError(
                f"A param spec needs 'name', 'type' and 'default', got {sorted(spec)}"
            )
        if kind == "object":
            raise InvalidParameterError(
                f"Param {spec['name']!r} has MLflow's object type, which Trackflow does not "
                "support; use scalar or list params"
            )
        return cls(spec["name"], kind, spec["default"], spec.get("shape"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSpec) and (
            self.name,
            self.dtype,
            self.default,
            self.shape,
        ) == (other.name, other.dtype, other.default, other.shape)

    def __repr__(self) -> str:
        shape = f" (shape: {self.shape})" if self.shape is not None else ""
        return f"{self.name!r}: {self.dtype!r} (default: {self.default}){shape}"


class ParamSchema:
    """The params a model takes at inference (``predict(data, params={...})``)."""

    def __init__(self, params: list[ParamSpec]) -> None:
        if not all(isinstance(p, ParamSpec) for p in params):
            raise InvalidParameterError("A ParamSchema holds ParamSpec objects only")
        names = [p.name for p in params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidParameterError(f"Duplicated params in the schema: {duplicates}")
        self.params = list(params)

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Any:
        return iter(self.params)

    def to_dict(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str) -> ParamSchema:
        specs = json.loads(json_str)
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise InvalidParameterError(f"A param schema is a JSON list, got {json_str!r}")
        return cls([ParamSpec.from_json_dict(**s) for s in specs])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSchema) and self.params == other.params

    def __repr__(self) -> str:
        return repr(self.params)
