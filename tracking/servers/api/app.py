"""The tracking server's application: `create_app(...)` and `app_from_env()` for uvicorn.

uvicorn --factory tracking.servers.api.app:app_from_env   # settings from TRACKFLOW_SERVER_*
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

import tracking
from tracking.artifacts import ArtifactRepository, is_proxy_uri, resolve_uri
from tracking.errors import InvalidParameterError, TrackingError
from tracking.servers.api import (
    artifact_downloads,
    artifacts_proxy,
    logged_models_api,
    registry_api,
    rest_api,
)
from tracking.servers.api.artifacts_proxy import (
    PROXY_SCHEME,
    ArtifactDestination,
    proxied_path,
)
from tracking.servers.api.dispatch import ApiDispatcher, Handler, api_routes
from tracking.servers.api.messages import dumps
from tracking.servers.api.security import (
    BAD_REQUEST,
    RESOURCE_LIMIT_EXCEEDED,
    AuthMiddleware,
    BodyLimitMiddleware,
    CatchAllMiddleware,
    Credentials,
    MergeSlashesMiddleware,
    RequestGuardMiddleware,
    SecurityHeadersMiddleware,
    contained,
    location_outside_roots,
    served_repository,
    tracking_error_answer,
    uri_without_traversal,
    within_roots,
)
from tracking.stores import open_store
from tracking.stores.base import TrackingStore

logger = logging.getLogger("tracking.servers.api")

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEFAULT_ARTIFACTS_DESTINATION = "./mlartifacts"
API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
SERVER_INFO_PATHS = ("/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info")
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"

ENV_PREFIX = "TRACKFLOW_SERVER_"
ENV_BACKEND_STORE_URI = ENV_PREFIX + "BACKEND_STORE_URI"
ENV_DEFAULT_ARTIFACT_ROOT = ENV_PREFIX + "DEFAULT_ARTIFACT_ROOT"
ENV_SERVE_ARTIFACTS = ENV_PREFIX + "SERVE_ARTIFACTS"
ENV_ARTIFACTS_DESTINATION = ENV_PREFIX + "ARTIFACTS_DESTINATION"
ENV_TOKEN = ENV_PREFIX + "TOKEN"
ENV_BASIC_AUTH = ENV_PREFIX + "BASIC_AUTH"
ENV_MAX_REQUEST_BYTES = ENV_PREFIX + "MAX_REQUEST_BYTES"
ENV_MAX_ARTIFACT_BYTES = ENV_PREFIX + "MAX_ARTIFACT_BYTES"
ENV_ALLOWED_HOSTS = ENV_PREFIX + "ALLOWED_HOSTS"
ENV_ALLOW_ANY_ARTIFACT_LOCATION = ENV_PREFIX + "ALLOW_ANY_ARTIFACT_LOCATION"


@dataclass
class ServerContext:
    """What the endpoints share: the store, the proxy's destination and the served roots."""

    store: TrackingStore
    destination: ArtifactDestination | None
    #: Non-proxied artifact locations the server may list itself (resolved URIs).
    served_roots: list[str] = field(default_factory=list)
    #: Accept new experiments' artifact locations outside the roots (--allow-any-...).
    allow_any_artifact_location: bool = False

    def check_artifact_location(self, location: str) -> None:
        """Refuse experiment artifact locations that could reach outside their storage, and
        (unless allowed) locations outside this server's artifact roots: the proxy's own
        ``mlflow-artifacts:/`` space and the served roots."""
        uri_without_traversal(location, "artifact_location")
        parts = urlsplit(location)
        if parts.scheme == "runs":
            raise InvalidParameterError("An experiment's artifact_location cannot be a runs:/ URI")
        if parts.scheme == PROXY_SCHEME:
            proxied_path(location)
            served = self.destination is not None and not parts.netloc
        else:
            served = within_roots(location, self.served_roots)
        if not served and not self.allow_any_artifact_location:
            proxy = [f"{PROXY_SCHEME}:/"] if self.destination is not None else []
            raise location_outside_roots(location, [*proxy, *self.served_roots])

    def server_side_repository(self, root: str) -> ArtifactRepository:
        """The repository of a non-proxied run artifact root the server is allowed to read."""
        return served_repository(root, self.served_roots)

    def proxied_location(self, root: str) -> tuple[ArtifactDestination, str]:
        """The proxy's destination and the path under it of a ``mlflow-artifacts:`` run root."""
        if self.destination is None:
            raise InvalidParameterError(
                f"Run artifacts are at {root}, but this server does not serve artifacts "
                "(started with --no-serve-artifacts)"
            )
        return self.destination, proxied_path(root)

    def run_artifacts(self, root: str) -> ArtifactRepository:
        """Where the server reads the artifacts of a run whose artifact URI is `root`, for the
        UI: under the proxy's destination, else under the served roots (as REST reads them)."""
        if not is_proxy_uri(root):
            return self.server_side_repository(root)
        destination, rel = self.proxied_location(root)
        if destination.local_root is not None:
            contained(destination.local_root, rel)
        return ArtifactRepository(f"{destination.uri}/{rel}" if rel else destination.uri)

    @staticmethod
    def real_local_root(repo: ArtifactRepository) -> str:
        return os.path.realpath(repo.root)


def _inline_handlers(store: TrackingStore) -> frozenset[Handler]:
    """The endpoints run on the event loop: the quick ones on SQLite, whose one-row
    transactions take ~0.1 ms and wait for a lock only while another writer's equally short
    transaction runs. Elsewhere (PostgreSQL over the network, files on any file system) every
    handler runs in a worker thread."""
    return frozenset(rest_api.QUICK) if store.quick_writes else frozenset()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = dumps({"error_code": code, "message": message})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _tracking_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TrackingError)
    return _error(*tracking_error_answer(exc, request.method, request.url.path))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"No endpoint {request.method} {request.url.path} on this server"
        return _error(404, ENDPOINT_NOT_FOUND, message)
    if exc.status_code == 413:
        return _error(413, RESOURCE_LIMIT_EXCEEDED, str(exc.detail))
    if exc.status_code == 405:
        return _error(405, BAD_REQUEST, f"Method {request.method} is not allowed here")
    return _error(exc.status_code, BAD_REQUEST, str(exc.detail), getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> Response:
    return _error(400, "INVALID_PARAMETER_VALUE", "Invalid request parameters")


def create_app(
    backend_store_uri: str,
    default_artifact_root: str | None = None,
    serve_artifacts: bool = True,
    artifacts_destination: str | None = None,
    auth_token: str | None = None,
    basic_auth: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_artifact_bytes: int | None = None,
    allowed_hosts: list[str] | tuple[str, ...] | None = None,
    allow_any_artifact_location: bool = False,
) -> FastAPI:
    """The tracking server as an ASGI app.

    With `serve_artifacts` (MLflow's default), new experiments get the artifact location
    ``mlflow-artifacts:/<id>`` and clients move artifacts through the server's proxy, which
    stores them under `artifacts_destination` (default: `default_artifact_root`, else
    ./mlartifacts; any fsspec URI). Without it, new experiments live under
    `default_artifact_root` (default: the store's own) and clients write there directly.

    `auth_token` / `basic_auth` ("user:password") require credentials on every endpoint but
    /health. `max_request_bytes` bounds API request bodies (413), `max_artifact_bytes`
    artifact uploads (None: no limit). `allowed_hosts` lists the Host header values served
    (fnmatch patterns, "*" = any; None = any), against DNS rebinding. New experiments'
    artifact locations must lie under the server's artifact roots unless
    `allow_any_artifact_location`; the server reads artifacts for clients (REST and UI) only
    under those roots either way.
    """
    credentials = Credentials(auth_token or None, basic_auth or None)
    if max_request_bytes <= 0:
        raise ValueError("max_request_bytes must be positive")
    destination = None
    served_roots: list[str] = []
    if serve_artifacts:
        store = open_store(backend_store_uri, f"{PROXY_SCHEME}:/")
        destination = ArtifactDestination(
            artifacts_destination or default_artifact_root or DEFAULT_ARTIFACTS_DESTINATION
        )
        served_roots.append(destination.uri)
    else:
        # Clients write there themselves: never hand them a path relative to the server's cwd.
        root = resolve_uri(default_artifact_root) if default_artifact_root else None
        store = open_store(backend_store_uri, root)
        served_roots.append(resolve_uri(store.artifact_root))
    if default_artifact_root and urlsplit(default_artifact_root).scheme != PROXY_SCHEME:
        served_roots.append(resolve_uri(default_artifact_root).rstrip("/"))
    if store.local_root is not None:
        served_roots.append(resolve_uri(store.local_root))

    hosts = tuple(allowed_hosts) if allowed_hosts else ("*",)
    context = ServerContext(store, destination, served_roots, allow_any_artifact_location)
    routes = api_routes(
        API_PREFIXES, [rest_api.ROUTES, logged_models_api.ROUTES, registry_api.ROUTES]
    )
    app = FastAPI(
        title="Trackflow tracking server",
        version=tracking.__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(CatchAllMiddleware),
            Middleware(AuthMiddleware, credentials=credentials),
            Middleware(RequestGuardMiddleware, allowed_hosts=hosts),
            Middleware(MergeSlashesMiddleware),
            Middleware(
                BodyLimitMiddleware,
                max_request_bytes=max_request_bytes,
                max_artifact_bytes=max_artifact_bytes,
            ),
            Middleware(
                ApiDispatcher, context=context, routes=routes, inline=_inline_handlers(store)
            ),
        ],
        exception_handlers={
            TrackingError: _tracking_error,
            StarletteHTTPException: _http_error,
            RequestValidationError: _validation_error,
        },
    )
    app.state.trackflow = context
    app.state.api_routes = routes  # what ApiDispatcher answers before FastAPI's own routes

    @app.get("/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("OK")

    @app.get("/version")
    def version() -> PlainTextResponse:
        return PlainTextResponse(tracking.__version__)

    def server_info() -> Response:
        info = {
            "store_type": store.mlflow_store_type,
            "workspaces_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "trace_archival_enabled": False,
        }
        return Response(dumps(info), media_type="application/json")

    for path in SERVER_INFO_PATHS:
        app.add_api_route(path, server_info, methods=["GET"])
    app.include_router(artifact_downloads.build_router(API_PREFIXES))
    if destination is not None:
        proxy = artifacts_proxy.build_router()
        for prefix in ARTIFACT_PREFIXES:
            app.include_router(proxy, prefix=prefix)
    from tracking.servers.ui.app import create_ui_router

    # the same UI as `trackflow ui`, reading artifacts only where the REST API would
    app.include_router(create_ui_router(backend_store_uri, context.run_artifacts))
    logger.info(
        "Trackflow server: store %s, artifacts %s",
        type(store).__name__,
        destination.uri if destination else store.artifact_root,
    )
    return app


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer number of bytes, got {value!r}") from None


def settings_from_env() -> dict[str, Any]:
    """create_app's keyword arguments from the TRACKFLOW_SERVER_* environment variables."""
    uri = os.environ.get(ENV_BACKEND_STORE_URI)
    if not uri:
        raise ValueError(f"{ENV_BACKEND_STORE_URI} is not set")
    serve = os.environ.get(ENV_SERVE_ARTIFACTS, "true").strip().lower()
    hosts = [h.strip() for h in os.environ.get(ENV_ALLOWED_HOSTS, "").split(",") if h.strip()]
    allow_any = os.environ.get(ENV_ALLOW_ANY_ARTIFACT_LOCATION, "").strip().lower()
    return {
        "backend_store_uri": uri,
        "default_artifact_root": os.environ.get(ENV_DEFAULT_ARTIFACT_ROOT) or None,
        "serve_artifacts": serve not in ("0", "false", "no", "off"),
        "artifacts_destination": os.environ.get(ENV_ARTIFACTS_DESTINATION) or None,
        "auth_token": os.environ.get(ENV_TOKEN) or None,
        "basic_auth": os.environ.get(ENV_BASIC_AUTH) or None,
        "max_request_bytes": _env_int(ENV_MAX_REQUEST_BYTES) or DEFAULT_MAX_REQUEST_BYTES,
        "max_artifact_bytes": _env_int(ENV_MAX_ARTIFACT_BYTES),
        "allowed_hosts": hosts or None,
        "allow_any_artifact_location": allow_any in ("1", "true", "yes", "on"),
    }


def settings_to_env(settings: dict[str, Any]) -> dict[str, str]:
    """The environment that makes `app_from_env` rebuild `settings` (in uvicorn workers)."""
    names = {
        "backend_store_uri": ENV_BACKEND_STORE_URI,
        "default_artifact_root": ENV_DEFAULT_ARTIFACT_ROOT,
        "artifacts_destination": ENV_ARTIFACTS_DESTINATION,
        "auth_token": ENV_TOKEN,
        "basic_auth": ENV_BASIC_AUTH,
        "max_request_bytes": ENV_MAX_REQUEST_BYTES,
        "max_artifact_bytes": ENV_MAX_ARTIFACT_BYTES,
    }
    env = {var: str(settings[key]) for key, var in names.items() if settings.get(key) is not None}
    env[ENV_SERVE_ARTIFACTS] = "true" if settings.get("serve_artifacts", True) else "false"
    env[ENV_ALLOWED_HOSTS] = ",".join(settings.get("allowed_hosts") or ())
    allow_any = settings.get("allow_any_artifact_location", False)
    env[ENV_ALLOW_ANY_ARTIFACT_LOCATION] = "true" if allow_any else "false"
    return env


def app_from_env() -> FastAPI:
    """uvicorn factory (``--factory``): the app configured by TRACKFLOW_SERVER_* variables."""
    return create_app(**settings_from_env())


def freeze_startup_objects() -> None:
    """Exempt everything alive at startup (modules, the app, the store) from garbage collection
    for good: a full collection then scans only what requests create (~1 ms instead of ~100 ms
    stalls every few thousand requests). For server processes only."""
    gc.collect()
    gc.freeze()


__all__ = ["ServerContext", "app_from_env", "create_app"]
