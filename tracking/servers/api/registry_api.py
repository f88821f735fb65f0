"""MLflow's model registry REST API (``/api/2.0/mlflow/registered-models/...`` and
``/model-versions/...``) over the Trackflow registry of the server's backend store.

Paths, HTTP methods, field names and response shapes follow MLflow's ``model_registry.proto`` as
its server writes them (protobuf JSON): a version number is a string (``"version": "3"``),
timestamps are integers, a model version's ``status`` is ``READY``, a registered model's aliases
are ``[{"alias", "version"}]`` and a version's a list of names; empty lists and unset fields
are left out, as protobuf JSON does. GET endpoints read query parameters, the others a JSON body
(DELETE and PATCH also accept query parameters when the body is empty). Errors are the tracking
API's: ``{"error_code", "message"}`` with MLflow's codes and HTTP statuses.

The registry lives where the server's tracking data lives: ``<root>/models`` for a file store,
the registry tables of a SQL store. New model versions must name a source the registering
client may point at (MLflow's rules): a path or ``file://`` URI inside the artifact folder of
the run named by ``run_id``, an ``mlflow-artifacts:`` URI under that run's artifact URI, a
``runs:/<run_id>/...`` URI, a ``models:/<name>/<version|stage|latest>`` or
``models:/<name>@<alias>`` URI (stored as ``models:/<name>/<version>``), or a URI of another
storage (s3://, gs://, ...); never one with ``..`` components.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from tracking.errors import (
    BAD_REQUEST,
    InvalidParameterError,
    NotFoundError,
    RegistryUnavailableError,
    TrackingError,
)
from tracking.registry.base import RegistryStore
from tracking.registry.entities import STATUS_READY, ModelVersion, RegisteredModel
from tracking.registry.uris import ModelUri, parse_model_uri
from tracking.servers.api import rest_api
from tracking.servers.api.messages import Fields, key_values
from tracking.servers.api.security import uri_without_traversal
from tracking.uris import local_path, uri_scheme

if TYPE_CHECKING:
    from tracking.servers.api.app import ServerContext
    from tracking.stores.base import TrackingStore

#: MLflow's defaults when a search request has no max_results (model_registry.proto).
SEARCH_REGISTERED_MODELS_DEFAULT = 100
SEARCH_MODEL_VERSIONS_DEFAULT = 200_000
#: How many models:/ sources get-download-uri follows (each names an older version, so chains
#: end; the bound only guards against damaged data).
MAX_SOURCE_HOPS = 64
#: MLflow's client adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every registered-model
#: search; models without the tag must match it (they are models, not prompts).
PROXY_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")

Handler = Callable[["ServerContext", Fields], dict[str, Any]]
ROUTES: list[tuple[str, tuple[str, ...], Handler]] = []


def route(path: str, *methods: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((path, methods, handler))
        return handler

    return register


# --- the registry store of the server's backend ---------------------------------------------

_REGISTRY_ATTRIBUTE = "_trackflow_registry"
_registry_lock = threading.Lock()


def open_registry(store: TrackingStore) -> RegistryStore:
    """The registry kept with `store`: its file root's models/ folder or its SQL database."""
    try:
        return store.open_registry()
    except RegistryUnavailableError:
        raise TrackingError(
            f"This server's backend store ({type(store).__name__}) has no model registry: start "
            "the server on a file store or a SQL database (sqlite://, postgresql://)",
            BAD_REQUEST,
        ) from None


def registry_for(ctx: ServerContext) -> RegistryStore:
    """The (per server, created on first use) registry store of the server's backend."""
    found = ctx.__dict__.get(_REGISTRY_ATTRIBUTE)
    if found is None:
        with _registry_lock:
            found = ctx.__dict__.get(_REGISTRY_ATTRIBUTE)
            if found is None:
                found = open_registry(ctx.store)
                ctx.__dict__[_REGISTRY_ATTRIBUTE] = found
    return found


# --- request fields ---------------------------------------------------------------------------


def _name(f: Fields, field: str = "name") -> str:
    return f.string(field, required=True)


def _version(f: Fields) -> str:
    """The version number, sent as a string by MLflow's clients (a JSON number is accepted)."""
    raw = f.raw("version")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return f.string("version", required=True)


def _tags(f: Fields) -> dict[str, str]:
    return dict(rest_api._key_value("tags", i, t) for i, t in enumerate(f.objects("tags")))


def _flag(f: Fields, field: str) -> bool:
    if not f.has(field):
        return False
    value = f.raw(field)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidParameterError(
        f"Invalid value {value!r} for parameter '{field}' supplied: expected true or false"
    )


# --- responses ----------------------------------------------------------------------------------


def model_version_json(mv: ModelVersion) -> dict[str, Any]:
    """A ModelVersion message, fields in proto order; unset fields and empty lists left out."""
    out: dict[str, Any] = {"name": mv.name, "version": str(mv.version)}
    if mv.creation_timestamp is not None:
        out["creation_timestamp"] = mv.creation_timestamp
    if mv.last_updated_timestamp is not None:
        out["last_updated_timestamp"] = mv.last_updated_timestamp
    if mv.user_id is not None:
        out["user_id"] = mv.user_id
    out["current_stage"] = mv.current_stage
    if mv.description is not None:
        out["description"] = mv.description
    if mv.source is not None:
        out["source"] = mv.source
    if mv.run_id:
        out["run_id"] = mv.run_id
    out["status"] = mv.status or STATUS_READY
    if mv.status_message:
        out["status_message"] = mv.status_message
    if mv.tags:
        out["tags"] = key_values(mv.tags)
    if mv.run_link is not None:
        out["run_link"] = mv.run_link
    if mv.aliases:
        out["aliases"] = list(mv.aliases)
    return out


def registered_model_json(rm: RegisteredModel) -> dict[str, Any]:
    """A RegisteredModel message (latest_versions: the newest version of each stage)."""
    out: dict[str, Any] = {"name": rm.name}
    if rm.creation_timestamp is not None:
        out["creation_timestamp"] = rm.creation_timestamp
    if rm.last_updated_timestamp:
        out["last_updated_timestamp"] = rm.last_updated_timestamp
    if rm.description:
        out["description"] = rm.description
    if rm.latest_versions:
        out["latest_versions"] = [model_version_json(mv) for mv in rm.latest_versions]
    if rm.tags:
        out["tags"] = key_values(rm.tags)
    if rm.aliases:
        out["aliases"] = [
            {"alias": alias, "version": str(version)}
            for alias, version in sorted(rm.aliases.items())
        ]
    return out


def _paged(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {key: items}
    if token:
        out["next_page_token"] = token
    return out


# --- registered models --------------------------------------------------------------------------


@route("/registered-models/create", "POST")
def create_registered_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    model = registry_for(ctx).create_registered_model(_name(f), _tags(f), f.string("description"))
    return {"registered_model": registered_model_json(model)}


@route("/registered-models/get", "GET")
def get_registered_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    model = registry_for(ctx).get_registered_model(_name(f))
    return {"registered_model": registered_model_json(model)}


@route("/registered-models/rename", "POST")
def rename_registered_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    model = registry_for(ctx).rename_registered_model(_name(f), _name(f, "new_name"))
    return {"registered_model": registered_model_json(model)}


@route("/registered-models/update", "PATCH")
def update_registered_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    model = registry_for(ctx).update_registered_model(_name(f), f.string("description"))
    return {"registered_model": registered_model_json(model)}


@route("/registered-models/delete", "DELETE")
def delete_registered_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    registry_for(ctx).delete_registered_model(_name(f))
    return {}


@route("/registered-models/search", "GET")
def search_registered_models(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    page = registry_for(ctx).search_registered_models(
        f.string("filter") or None,
        f.integer("max_results", default=SEARCH_REGISTERED_MODELS_DEFAULT),
        f.strings("order_by") or None,
        f.string("page_token") or None,
    )
    return _paged("registered_models", [registered_model_json(m) for m in page], page.token)


@route("/registered-models/set-tag", "POST")
def set_registered_model_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    key = f.string("key", required=True)
    registry_for(ctx).set_registered_model_tag(_name(f), key, f.string("value", default=""))
    return {}


@route("/registered-models/delete-tag", "DELETE")
def delete_registered_model_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    registry_for(ctx).delete_registered_model_tag(_name(f), f.string("key", required=True))
    return {}


@route("/registered-models/get-latest-versions", "POST", "GET")
def get_latest_versions(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    versions = registry_for(ctx).get_latest_versions(_name(f), f.strings("stages") or None)
    return {"model_versions": [model_version_json(mv) for mv in versions]}


@route("/registered-models/alias", "POST")
def set_registered_model_alias(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    alias = f.string("alias", required=True)
    registry_for(ctx).set_registered_model_alias(_name(f), alias, _version(f))
    return {}


@route("/registered-models/alias", "DELETE")
def delete_registered_model_alias(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    registry_for(ctx).delete_registered_model_alias(_name(f), f.string("alias", required=True))
    return {}


@route("/registered-models/alias", "GET")
def get_model_version_by_alias(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    found = registry_for(ctx).get_model_version_by_alias(_name(f), f.string("alias", required=True))
    return {"model_version": model_version_json(found)}


# --- model versions ----------------------------------------------------------------------------


def _invalid_source(source: str, reason: str) -> InvalidParameterError:
    return InvalidParameterError(f"Invalid model version source {source!r}: {reason}")


def _source_run_root(ctx: ServerContext, source: str, run_id: str | None) -> str:
    """The artifact URI of the run that must hold `source`."""
    if not run_id:
        raise _invalid_source(
            source, "a run_id is required, naming the run whose artifacts hold the model"
        )
    try:
        return ctx.store.get_run(run_id).info.artifact_uri
    except NotFoundError:
        raise _invalid_source(source, f"run {run_id!r} does not exist") from None


def _real_path(uri: str) -> str:
    """The real path of a local `uri` (links resolved)."""
    return os.path.realpath(local_path(uri) or uri)


def _uri_parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parts = urlsplit(uri)
    path = tuple(unquote(p) for p in parts.path.split("/") if p)
    return parts.scheme.lower(), parts.netloc.lower(), path


def _within(source: str, root: str) -> bool:
    """`source` names `root` or something below it (same scheme, host and path prefix)."""
    s_scheme, s_host, s_path = _uri_parts(source)
    r_scheme, r_host, r_path = _uri_parts(root)
    return (
        s_scheme == r_scheme
        and s_host == r_host
        and bool(r_path)
        and s_path[: len(r_path)] == r_path
    )


def _is_proxy_url(uri: str) -> bool:
    _, _, path = _uri_parts(uri)
    width = len(PROXY_ROUTE)
    return any(path[i : i + width] == PROXY_ROUTE for i in range(len(path) - width + 1))


def resolve_version(store: RegistryStore, parsed: ModelUri) -> ModelVersion:
    """The registered version a models:/<name>/... or models:/<name>@<alias> URI names."""
    assert parsed.name is not None
    if parsed.version is not None:
        return store.get_model_version(parsed.name, parsed.version)
    if parsed.alias is not None:
        return store.get_model_version_by_alias(parsed.name, parsed.alias)
    if parsed.latest:
        return store.get_model_version_by_alias(parsed.name, "latest")
    found = store.get_latest_versions(parsed.name, [parsed.stage] if parsed.stage else None)
    if not found:
        raise NotFoundError(f"Registered model {parsed.name!r} has no version in {parsed.stage!r}")
    return found[0]


def checked_source(
    ctx: ServerContext, store: RegistryStore, source: str, run_id: str | None
) -> tuple[str, str | None]:
    """(source, run_id) to record for a new version, by MLflow's rules (module docstring)."""
    if any(ord(ch) < 32 for ch in source):
        raise _invalid_source(source, "control characters are not allowed")
    try:
        uri_without_traversal(source, "model version source")
    except InvalidParameterError:
        raise _invalid_source(
            source, "it must be an absolute location without '..' components, queries or fragments"
        ) from None
    scheme = uri_scheme(source)
    if scheme in ("", "file"):
        root = _source_run_root(ctx, source, run_id)
        if uri_scheme(root) in ("", "file"):
            root_path, path = _real_path(root), _real_path(source)
            if os.path.commonpath([root_path, path]) == root_path:
                return source, run_id
        raise _invalid_source(
            source,
            "a local path must lie inside the artifact folder of the run given as run_id",
        )
    if scheme in ("runs", "models") and urlsplit(source).netloc:
        raise _invalid_source(source, f"{scheme}: URIs name no host (use {scheme}:/...)")
    if scheme == "runs":
        source_run = parse_model_uri(source).run_id
        if run_id and run_id != source_run:
            raise _invalid_source(source, f"it is not in run {run_id!r} given as run_id")
        _source_run_root(ctx, source, source_run)
        return source, source_run
    if scheme == "models":
        parsed = parse_model_uri(source)  # models:/m-... (LoggedModels) are refused here
        version = resolve_version(store, parsed)
        if run_id and run_id != (version.run_id or ""):
            raise _invalid_source(
                source, f"run_id {run_id!r} is not the run of the version it names"
            )
        return f"models:/{version.name}/{version.version}", version.run_id
    if scheme == "mlflow-artifacts" or (scheme in ("http", "https") and _is_proxy_url(source)):
        root = _source_run_root(ctx, source, run_id)
        if _within(source, root):
            return source, run_id
        raise _invalid_source(source, f"it is not under the artifact URI {root} of run {run_id!r}")
    if scheme in ("http", "https"):
        raise _invalid_source(
            source, "http(s) sources must be this server's artifact proxy URLs of a run"
        )
    return source, run_id or None


@route("/model-versions/create", "POST")
def create_model_version(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    store = registry_for(ctx)
    name = _name(f)
    if f.string("model_id"):
        raise InvalidParameterError(
            "model_id is not supported: this server keeps no MLflow 3 LoggedModels; register the "
            "model from its run (runs:/<run_id>/<path>) instead"
        )
    store.get_registered_model(name)  # a missing model fails before the source checks
    source, run_id = checked_source(
        ctx, store, f.string("source", required=True), f.string("run_id") or None
    )
    version = store.create_model_version(
        name,
        source,
        run_id=run_id,
        tags=_tags(f),
        run_link=f.string("run_link") or None,
        description=f.string("description"),
    )
    return {"model_version": model_version_json(version)}


@route("/model-versions/get", "GET")
def get_model_version(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    version = registry_for(ctx).get_model_version(_name(f), _version(f))
    return {"model_version": model_version_json(version)}


@route("/model-versions/update", "PATCH")
def update_model_version(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    version = registry_for(ctx).update_model_version(_name(f), _version(f), f.string("description"))
    return {"model_version": model_version_json(version)}


@route("/model-versions/delete", "DELETE")
def delete_model_version(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    registry_for(ctx).delete_model_version(_name(f), _version(f))
    return {}


@route("/model-versions/search", "GET")
def search_model_versions(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    page = registry_for(ctx).search_model_versions(
        f.string("filter") or None,
        f.integer("max_results", default=SEARCH_MODEL_VERSIONS_DEFAULT),
        f.strings("order_by") or None,
        f.string("page_token") or None,
    )
    return _paged("model_versions", [model_version_json(mv) for mv in page], page.token)


@route("/model-versions/set-tag", "POST")
def set_model_version_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    key = f.string("key", required=True)
    registry_for(ctx).set_model_version_tag(
        _name(f), _version(f), key, f.string("value", default="")
    )
    return {}


@route("/model-versions/delete-tag", "DELETE")
def delete_model_version_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    registry_for(ctx).delete_model_version_tag(
        _name(f), _version(f), f.string("key", required=True)
    )
    return {}


@route("/model-versions/get-download-uri", "GET")
def get_model_version_download_uri(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    """The version's artifact location; a models:/ source is followed to the version it names
    (MLflow's storage_location)."""
    store = registry_for(ctx)
    uri = store.get_model_version_download_uri(_name(f), _version(f))
    for _ in range(MAX_SOURCE_HOPS):
        if uri_scheme(uri) != "models":
            return {"artifact_uri": uri}
        version = resolve_version(store, parse_model_uri(uri))
        uri = store.get_model_version_download_uri(version.name, version.version)
    raise InvalidParameterError(
        f"The source of version {_version(f)} of {_name(f)!r} leads through more than "
        f"{MAX_SOURCE_HOPS} models:/ URIs"
    )


@route("/model-versions/transition-stage", "POST")
def transition_model_version_stage(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    version = registry_for(ctx).transition_model_version_stage(
        _name(f),
        _version(f),
        f.string("stage", required=True),
        _flag(f, "archive_existing_versions"),
    )
    return {"model_version": model_version_json(version)}
