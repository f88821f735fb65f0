"""Input examples stored with a model, in MLflow's files.

    input_example.json           the example (DataFrames in pandas' "split" orient, no index)
    serving_input_example.json   a request body for the scoring server's /invocations

``input_example`` may be ``(data, params)``: both files then hold the params too, and the
MLmodel's ``saved_input_example_info`` says so (``params: 'true'``), as MLflow writes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracking.errors import InvalidParameterError

__all__ = ["Example", "read_example", "save_example"]

EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"
_TYPES = ("dataframe", "ndarray", "json_object", "sparse_matrix_csr", "sparse_matrix_csc")


@dataclass
class Example:
    """A saved example: what a model is called with, and the MLmodel's description of it."""

    data: Any
    params: dict[str, Any] | None
    info: dict[str, Any]


def save_example(folder: str, input_example: Any) -> Example:
    """Write the example files into the model folder; return the example and its MLmodel info."""
    import pandas as pd

    from tracking.models.signature import infer_param_schema

    data, params = input_example, None
    is_pair = isinstance(input_example, tuple) and len(input_example) == 2
    if is_pair and isinstance(input_example[1], dict):
        data, params = input_example
        infer_param_schema(params)  # a clear error for params a signature cannot hold
    info: dict[str, Any] = {"artifact_path": EXAMPLE_FILE}
    if params:
        info["params"] = "true"
    if isinstance(data, pd.DataFrame):
        stored: Any = _split(data)
        info.update(type="dataframe", pandas_orient="split" if "columns" in stored else "values")
        serving: dict[str, Any] = {"dataframe_split": stored}
    elif isinstance(data, np.ndarray) or (
        isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values())
    ):
        stored = {k: _plain(v) for k, v in data.items()} if isinstance(data, dict) else _plain(data)
        info["type"] = "ndarray"
        serving = {"inputs": stored}
    elif hasattr(data, "tocsr") and hasattr(data, "indptr"):  # scipy sparse
        stored = {
            "data": _plain(data.data),
            "indices": data.indices.tolist(),
            "indptr": data.indptr.tolist(),
            "shape": list(data.shape),
        }
        info["type"] = "sparse_matrix_csc" if data.format == "csc" else "sparse_matrix_csr"
        serving = {"inputs": _plain(data.toarray())}
    elif isinstance(data, dict | list | str | int | float | bool):
        stored = data
        info["type"] = "json_object"
        serving = {"inputs": data}
    else:
        raise InvalidParameterError(
            f"Unsupported input_example of type {type(data).__name__}: use a pandas DataFrame, "
            "a numpy array, a dict of numpy arrays, a scipy sparse matrix, a dict, a list or a "
            "scalar, optionally as (example, params)"
        )
    if params:
        stored = {"inputs": stored, "params": params}
        serving["params"] = params
    _write(folder, EXAMPLE_FILE, json.dumps(stored, default=_json_default))
    _write(folder, SERVING_EXAMPLE_FILE, json.dumps(serving, default=_json_default, indent=2))
    info["serving_input_path"] = SERVING_EXAMPLE_FILE
    return Example(data, params, info)


def read_example(folder: str, info: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """(data, params) of the example a model folder holds, per its MLmodel `info`."""
    import pandas as pd

    kind = info.get("type")
    if kind not in _TYPES:
        raise InvalidParameterError(
            f"Unknown input example type {kind!r}; expected one of {', '.join(_TYPES)}"
        )
    with open(os.path.join(folder, info.get("artifact_path", EXAMPLE_FILE)), encoding="utf-8") as f:
        stored = json.load(f)
    params = None
    if info.get("params"):
        stored, params = stored["inputs"], stored.get("params")
    if kind == "dataframe":
        return pd.DataFrame(stored["data"], columns=stored.get("columns")), params
    if kind == "ndarray":
        if isinstance(stored, dict):
            return {k: _array(v) for k, v in stored.items()}, params
        return _array(stored), params
    if kind.startswith("sparse_matrix"):
        from scipy import sparse

        build = sparse.csc_matrix if kind.endswith("csc") else sparse.csr_matrix
        parts = (stored["data"], stored["indices"], stored["indptr"])
        return build(parts, shape=tuple(stored["shape"])), params
    return stored, params


def _array(values: Any) -> np.ndarray:
    """A stored array; numbers with missing values (null) come back as NaN."""
    array = np.asarray(values)
    if array.dtype == object:
        try:
            return np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            return array
    return array


def _split(frame: Any) -> dict[str, Any]:
    stored = frame.astype(object).where(frame.notna(), None).to_dict(orient="split")
    del stored["index"]
    if list(frame.columns) == list(range(len(frame.columns))):
        del stored["columns"]
    return stored


def _plain(array: np.ndarray) -> Any:
    if np.issubdtype(array.dtype, np.number):
        array = np.where(np.isnan(array), None, array) if array.dtype.kind == "f" else array
    return array.tolist()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write(folder: str, name: str, text: str) -> None:
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        f.write(text)
