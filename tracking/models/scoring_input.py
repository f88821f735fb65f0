"""MLflow's scoring protocol: /invocations request bodies to model input, predictions to JSON.

The scoring server (tracking.servers.scoring) and batch scoring (tracking.models.batch) read
input the same way: JSON in one of MLflow's formats (dataframe_split, dataframe_records,
instances, inputs, plus optional params) or CSV with a header row, numbers read at the
signature's widths, columns ordered as the estimator was fitted.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from tracking.errors import BAD_REQUEST, TrackingError

JSON = "application/json"
CSV = "text/csv"
CONTENT_TYPES = (JSON, CSV)
DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
INPUT_FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
PARAMS = "params"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
RESOURCE_LIMIT_EXCEEDED = "RESOURCE_LIMIT_EXCEEDED"

_FORMATS_HELP = (
    "a JSON object with exactly one of the fields dataframe_split "
    '({"columns": [...], "data": [[...], ...]}), dataframe_records ([{"col": value, ...}, ...]), '
    "instances or inputs (a list of rows, e.g. [[1, 2], [3, 4]]; inputs also takes columns, "
    '{"col": [values...]}), and optionally "params"'
)


class InvalidInput(Exception):
    """A request the server cannot turn into model input; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400, code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


# --- request parsing -------------------------------------------------------------------------
def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise InvalidInput(
            "This input format needs pandas on the server (pip install pandas); "
            'send {"inputs": [[...], ...]} (a list of rows) instead',
            status=415,
            code=UNSUPPORTED_MEDIA_TYPE,
        ) from None
    return pandas


def parse_content_type(header: str | None) -> str:
    """The media type of a Content-Type header; 415 for anything but UTF-8 JSON or CSV."""
    if not header:
        raise InvalidInput(
            f"Missing Content-Type header; use one of: {', '.join(CONTENT_TYPES)}",
            status=415,
            code=UNSUPPORTED_MEDIA_TYPE,
        )
    media, *options = (part.strip() for part in header.split(";"))
    media = media.lower()
    if media not in CONTENT_TYPES:
        raise InvalidInput(
            f"Unsupported Content-Type {header!r}; use one of: {', '.join(CONTENT_TYPES)}",
            status=415,
            code=UNSUPPORTED_MEDIA_TYPE,
        )
    for option in options:
        key, _, value = option.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"').lower()
        if key == "charset" and value not in ("utf-8", "utf8"):
            raise InvalidInput(
                f"Unsupported charset {value!r}: the scoring server reads UTF-8 only",
                status=415,
                code=UNSUPPORTED_MEDIA_TYPE,
            )
    return media


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"The request body is not valid UTF-8: {e}") from None


def parse_request(body: bytes, media_type: str) -> tuple[Any, dict[str, Any] | None]:
    """(model input, params) of an /invocations request body."""
    if not body.strip():
        raise InvalidInput(f"The request body is empty; send {_FORMATS_HELP}")
    if media_type == CSV:
        return _parse_csv(_text(body)), None
    try:
        payload = json.loads(_text(body))
    except json.JSONDecodeError as e:
        raise InvalidInput(
            f"The request body is not valid JSON ({e}); send {_FORMATS_HELP}"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"The request body must be {_FORMATS_HELP}; got a JSON {_json_type(payload)}"
        )
    unknown = sorted(set(payload) - {*INPUT_FORMATS, PARAMS})
    if unknown:
        raise InvalidInput(
            f"Unknown field(s) {', '.join(map(repr, unknown))} in the request; send {_FORMATS_HELP}"
        )
    given = [key for key in INPUT_FORMATS if key in payload]
    if len(given) != 1:
        found = ", ".join(given) if given else "none of them"
        raise InvalidInput(
            f"The request must have exactly one input field (found {found}); send {_FORMATS_HELP}"
        )
    params = payload.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f'"params" must be a JSON object, got a {_json_type(params)}')
    key = given[0]
    value = payload[key]
    if key == DF_SPLIT:
        return _parse_split(value), params
    if key == DF_RECORDS:
        return _parse_records(value, DF_RECORDS), params
    return _parse_tensor(value, key), params


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _parse_split(value: Any) -> Any:
    example = '{"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}'
    if not isinstance(value, dict):
        raise InvalidInput(
            f"dataframe_split must be an object like {example}, got a {_json_type(value)}"
        )
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown or "data" not in value:
        what = f"unknown key(s) {', '.join(map(repr, unknown))}" if unknown else "no 'data'"
        raise InvalidInput(
            f"dataframe_split has {what}; it takes 'data' (a list of rows) and optionally "
            f"'columns' and 'index', e.g. {example}"
        )
    data, columns, index = value["data"], value.get("columns"), value.get("index")
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise InvalidInput(f"dataframe_split 'data' must be a list of rows (lists), e.g. {example}")
    if columns is not None and not isinstance(columns, list):
        raise InvalidInput("dataframe_split 'columns' must be a list of column names")
    if index is not None and not isinstance(index, list):
        raise InvalidInput("dataframe_split 'index' must be a list (one label per row)")
    if columns is not None:
        for number, row in enumerate(data):
            if len(row) != len(columns):
                raise InvalidInput(
                    f"dataframe_split row {number} has {len(row)} values but there are "
                    f"{len(columns)} columns"
                )
    pd = _pandas()
    try:
        return pd.DataFrame(data, columns=columns, index=index)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"dataframe_split does not make a DataFrame: {e}") from None


def _parse_records(value: Any, field: str) -> Any:
    example = '[{"a": 1, "b": 2}, {"a": 3, "b": 4}]'
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise InvalidInput(f"{field} must be a list of objects (one per row), e.g. {example}")
    pd = _pandas()
    try:
        return pd.DataFrame.from_records(value)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"{field} does not make a DataFrame: {e}") from None


def _parse_tensor(value: Any, field: str) -> Any:
    import numpy as np

    if isinstance(value, dict):  # named columns
        if field == INSTANCES:
            raise InvalidInput(
                'instances must be a list of rows, e.g. [[1, 2], [3, 4]] or [{"a": 1}, ...]; '
                'use inputs for columns ({"a": [1, 3], "b": [2, 4]})'
            )
        lengths = {len(v) if isinstance(v, list) else None for v in value.values()}
        if not value or None in lengths or len(lengths) != 1:
            raise InvalidInput(
                "inputs given as an object must map each column to a list of values of one "
                'length, e.g. {"a": [1, 3], "b": [2, 4]}'
            )
        pd = _pandas()
        return pd.DataFrame(value)
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be a list of rows, e.g. [[1, 2], [3, 4]]")
    if value and all(isinstance(row, dict) for row in value):
        return _parse_records(value, field)
    if any(isinstance(row, dict) for row in value):
        raise InvalidInput(f"{field} mixes objects and other values; use one kind of row")
    try:
        array = np.asarray(value)
    except ValueError:
        raise InvalidInput(
            f"{field} rows must all have the same length, e.g. [[1, 2], [3, 4]]"
        ) from None
    if array.dtype == object:
        raise InvalidInput(f"{field} rows must all have the same length and hold plain values")
    return array


def _parse_csv(text: str) -> Any:
    pd = _pandas()
    try:
        frame = pd.read_csv(io.StringIO(text))
    except Exception as e:
        raise InvalidInput(
            f"The CSV body could not be read ({type(e).__name__}: {e}); send a header row "
            "of column names, then one line per row (as pandas.DataFrame.to_csv(index=False))"
        ) from None
    if frame.empty:
        raise InvalidInput("The CSV body has a header but no rows")
    return frame


# --- prediction and output -------------------------------------------------------------------
def align_columns(model: Any, data: Any) -> Any:
    """Match the feature names the estimator was fitted with: DataFrame columns in its order
    (sklearn checks it), plain rows named after them; a DataFrame as plain rows for an
    estimator fitted without names (instead of sklearn warning)."""
    raw = getattr(model, "raw_model", None)
    names = getattr(raw, "feature_names_in_", None)
    if names is None:
        unnamed = hasattr(raw, "n_features_in_") and getattr(model, "signature", None) is None
        return data.to_numpy() if unnamed and hasattr(data, "columns") else data
    wanted = [str(n) for n in names]
    columns = getattr(data, "columns", None)
    if columns is None:
        shape: tuple[int, ...] = getattr(data, "shape", ())
        if len(shape) == 2 and shape[1] == len(wanted):
            try:
                import pandas as pd
            except ImportError:
                return data
            return pd.DataFrame(data, columns=wanted)
        return data
    if list(map(str, columns)) != wanted and set(map(str, columns)) == set(wanted):
        return data[wanted]
    return data


def read_text_numbers(data: Any, schema: Any) -> Any:
    """Parsed JSON or CSV input with its numbers at the signature's widths: text numbers have
    none, so floats become float32 where the signature says float (columns or tensors)."""
    import numpy as np

    from tracking.models.schema import DataType, TensorSpec

    if schema is None:
        return data
    specs = list(schema.inputs)
    if isinstance(specs[0], TensorSpec):
        if isinstance(data, np.ndarray) and len(specs) == 1 and specs[0].name is None:
            wanted = specs[0].type
            if wanted.kind == "f" and data.dtype.kind in "iuf" and data.dtype != wanted:
                return data.astype(wanted)
        return data
    columns = getattr(data, "columns", None)
    if columns is None:
        return data
    narrow = [
        spec.name
        for spec in specs
        if spec.type is DataType.float
        and spec.name in columns
        and data[spec.name].dtype.kind in "iuf"
    ]
    return data.astype(dict.fromkeys(narrow, "float32")) if narrow else data


def predict(model: Any, data: Any, params: dict[str, Any] | None) -> Any:
    """The model's predictions for parsed input, as JSON-ready values."""
    signature = getattr(model, "signature", None)
    data = read_text_numbers(data, signature.inputs if signature is not None else None)
    data = align_columns(model, data)
    try:
        raw = model.predict(data, params=params) if params else model.predict(data)
    except TrackingError as e:
        raise InvalidInput(e.message) from None
    except Exception as e:
        shape = getattr(data, "shape", None)
        raise InvalidInput(
            f"The model could not score this input (shape {shape}): {type(e).__name__}: {e}. "
            "Check that it has the columns/features the model was trained on"
        ) from None
    return jsonable(raw)


def jsonable(value: Any) -> Any:
    """numpy / pandas results as plain JSON values; NaN and infinities become null."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # DataFrame: one object a row
        return jsonable(value.to_dict(orient="records"))
    if hasattr(value, "tolist"):  # ndarray, Series, numpy scalar
        return jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)
