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

import json
import sys
import tempfile
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from tracking.errors import TrackingError
from tracking.models.scoring_input import (
    JSON,
    RESOURCE_LIMIT_EXCEEDED,
    InvalidInput,
    parse_content_type,
    parse_request,
    predict,
)

__all__ = ["ScoringError", "create_scoring_app", "load_scoring_model", "serve"]

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class ScoringError(TrackingError):
    """The model cannot be served (not loadable, unsupported flavor, ...)."""


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
