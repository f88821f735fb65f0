"""``trackflow models serve``: a model scoring server speaking MLflow's protocol.

    GET  /ping          200 once the model is loaded (load balancers' health check)
    GET  /health        the same, with what is served
    GET  /version       Trackflow's version
    POST /invocations   predictions for a batch of input

``/invocations`` takes ``Content-Type: application/json`` with exactly one of

    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}
    {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}
    {"instances": [[1, 2], [3, 4]]}          (TF-serving style: rows, or a list of objects)
    {"inputs": [[1, 2], [3, 4]]}             (rows, or {"a": [1, 3], "b": [2, 4]} columns)

(plus an optional ``"params"`` object), or ``Content-Type: text/csv`` with a header row. It
answers ``{"predictions": [...]}``. Any flavor with a python_function flavor is served (the
flavor registry, tracking.models.flavors, finds its loader). Input and params are checked
against the model's signature as ``tracking.pyfunc`` does (JSON and CSV numbers are first read
at the signature's widths: float32 columns, float32 tensors); malformed input and signature
violations get a 400 JSON error ``{"error_code": "BAD_REQUEST", "message": ...}`` naming what
is wrong and what is allowed, never a 500. Loading a pickled model runs code from its file:
serve only models you trust.
"""

from __future__ import annotations

import io
import json
import math
import sys
import tempfile
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tracking.errors import BAD_REQUEST, TrackingError

__all__ = ["ScoringError", "create_scoring_app", "load_scoring_model", "serve"]

JSON = "application/json"
CSV = "text/csv"
CONTENT_TYPES = (JSON, CSV)
DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
INPUT_FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
PARAMS = "params"
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
RESOURCE_LIMIT_EXCEEDED = "RESOURCE_LIMIT_EXCEEDED"

_FORMATS_HELP = (
    "a JSON object with exactly one of the fields dataframe_split "
    '({"columns": [...], "data": [[...], ...]}), dataframe_records ([{"col": value, ...}, ...]), '
    "instances or inputs (a list of rows, e.g. [[1, 2], [3, 4]]; inputs also takes columns, "
    '{"col": [values...]}), and optionally "params"'
)


class ScoringError(TrackingError):
    """The model cannot be served (not loadable, unsupported flavor, ...)."""


class InvalidInput(Exception):
    """A request the server cannot turn into model input; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400, code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


# --- loading ---------------------------------------------------------------------------------
def load_scoring_model(model_uri: str, tracking_uri: str | None = None) -> Any:
    """The pyfunc model at `model_uri`; models:/ and runs:/ resolve against `tracking_uri`
    (default: the active tracking URI and its registry)."""
    from tracking.client import TrackingClient
    from tracking.models import pyfunc
    from tracking.registry.uris import download_model

    try:
        client = TrackingClient(tracking_uri)
        with tempfile.TemporaryDirectory(prefix="trackflow-serve-") as tmp:
            local = download_model(model_uri, tmp, client)
            model = pyfunc.load_model(local)
    except TrackingError:
        raise
    except Exception as e:  # unpickling errors, a missing library, ...
        raise ScoringError(f"Cannot load model {model_uri}: {type(e).__name__}: {e}") from e
    model.model_uri = model_uri
    return model


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
        shape = getattr(data, "shape", ())
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


# --- the app ---------------------------------------------------------------------------------
def create_scoring_app(
    model_uri: str,
    tracking_uri: str | None = None,
    model: Any = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> FastAPI:
    """A FastAPI app scoring the model at `model_uri` (loaded now, so errors show at once;
    pass `model` to serve an already loaded pyfunc model)."""
    import tracking

    if model is None:
        model = load_scoring_model(model_uri, tracking_uri)
    app = FastAPI(
        title="Trackflow model server",
        description=f"Scores {model_uri}",
        version=tracking.__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.model = model
    app.state.model_uri = model_uri

    def json_response(content: Any, status: int = 200) -> Response:
        return Response(json.dumps(content, allow_nan=False), status, media_type=JSON)

    def error(status: int, code: str, message: str) -> Response:
        return json_response({"error_code": code, "message": message}, status)

    @app.get("/ping")
    async def ping() -> Response:
        if app.state.model is None:
            return error(503, "MODEL_NOT_LOADED", "The model is not loaded")
        return json_response({"status": "ok"})

    @app.get("/health")
    async def health() -> Response:
        if app.state.model is None:
            return error(503, "MODEL_NOT_LOADED", "The model is not loaded")
        model = app.state.model
        raw = getattr(model, "raw_model", None)
        signature = getattr(model, "signature", None)
        return json_response(
            {
                "status": "ok",
                "model_uri": app.state.model_uri,
                "loader_module": getattr(model, "loader_module", None),
                "flavors": sorted(getattr(model, "metadata", {}).get("flavors") or {}),
                "model_type": type(raw).__name__ if raw is not None else None,
                "signature": _signature_json(signature),
            }
        )

    @app.get("/version")
    async def version() -> Response:
        return json_response({"trackflow": tracking.__version__})

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        try:
            media_type = parse_content_type(request.headers.get("content-type"))
            body = await _read_body(request, max_request_bytes)
            data, params = parse_request(body, media_type)
            predictions = await run_in_threadpool(predict, app.state.model, data, params)
        except InvalidInput as e:
            return error(e.status, e.code, e.message)
        return json_response({"predictions": predictions})

    return app


def _signature_json(signature: Any) -> dict[str, Any] | None:
    """The signature's parts as JSON values (MLflow's spec lists), or None."""
    if signature is None:
        return None
    parts = (("inputs", signature.inputs), ("outputs", signature.outputs))
    out = {k: v.to_dict() if v is not None else None for k, v in parts}
    out["params"] = signature.params.to_dict() if signature.params is not None else None
    return out


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise InvalidInput(
            f"The request body is larger than {limit} bytes", 413, RESOURCE_LIMIT_EXCEEDED
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(
                f"The request body is larger than {limit} bytes", 413, RESOURCE_LIMIT_EXCEEDED
            )
        chunks.append(chunk)
    return b"".join(chunks)


# --- running it ------------------------------------------------------------------------------
def serve(
    model_uri: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    tracking_uri: str | None = None,
    log_level: str = "info",
) -> None:
    """Load the model, then serve it with uvicorn until Ctrl+C (port 0: any free port).

    Loading a pickled model runs code from its file: serve only models you trust.
    """
    from tracking.servers import listen

    listen.check_port(port)
    app = create_scoring_app(model_uri, tracking_uri)
    sock = listen.bind(host, port)
    url = listen.socket_url(sock)
    model = app.state.model
    print(f"Serving model {model_uri} ({type(model.raw_model).__name__}) on {url}", flush=True)
    print(
        f"  POST {url}/invocations  Content-Type: application/json "
        "(dataframe_split, dataframe_records, instances or inputs) or text/csv",
        flush=True,
    )
    print(f"  GET  {url}/ping, {url}/health, {url}/version", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    if not listen.is_loopback(host):
        print(
            f"WARNING: listening on {host}: anyone who can reach this port can query the model "
            "(there is no authentication).",
            file=sys.stderr,
            flush=True,
        )
    listen.serve(app, sock, server_header=False, log_level=log_level)
