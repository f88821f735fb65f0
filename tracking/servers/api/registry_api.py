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
the run named by ``run_id`` (or of the LoggedModel named by ``model_id``), an
``mlflow-artifacts:`` URI under that artifact URI, ``runs:/<run_id>/...`` with that run_id,
``models:/<model_id>`` with that model_id, a ``models:/<name>/<version|stage|latest>`` or
``models:/<name>@<alias>`` URI (stored as ``models:/<name>/<version>``), or a URI of another
storage (s3://, gs://, dbfs:/, ...); never one with ``..`` components, nor an http(s), ftp, ...
URI naming a host other than this server's proxy. The server reads a version's files
(``/model-versions/get-artifact``) only under its artifact roots.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from tracking.errors import (
    BAD_REQUEST,
    InvalidParameterError,
    NotFoundError,
    RegistryUnavailableError,
    TrackingError,
)
from tracking.logged_models import MODEL_VERSIONS_TAG
from tracking.registry.base import RegistryStore
from tracking.registry.entities import STATUS_READY, ModelVersion, RegisteredModel
from tracking.registry.uris import ModelUri, parse_model_uri
from tracking.servers.api.messages import Fields, key_value, key_values
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
    return dict(key_value("tags", i, t) for i, t in enumerate(f.objects("tags")))


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


def model_version_json(mv: ModelVersion, model_id: str | None = None) -> dict[str, Any]:
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
    model_id = model_id or _source_model_id(mv.source or "")
    if model_id:
        out["model_id"] = model_id
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


_ABSOLUTE_PATH_ONLY = (
    "If supplying a source as an http, https, local file path, ftp, objectstore, or "
    "mlflow-artifacts uri, an absolute path must be provided without relative path references "
    "present. Please provide an absolute path."
)
#: Schemes whose storage connects to the host the URI names (MLflow's host policy): accepted
#: only as this server's artifact proxy URLs.
_HOST_ADDRESSED = frozenset({"ftp", "sftp", "hdfs", "viewfs", "http", "https", "r2", "b2", "abfss"})


def _invalid_source(source: str, detail: str) -> InvalidParameterError:
    return InvalidParameterError(f"Invalid model version source: '{source}'. {detail}")


def _not_identifying(source: str, field: str) -> InvalidParameterError:
    return _invalid_source(
        source,
        f"The {field} request parameter must identify the resource that contains the source.",
    )


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


def _is_proxy_source(uri: str) -> bool:
    scheme, _, path = _uri_parts(uri)
    if scheme == "mlflow-artifacts":
        return True
    width = len(PROXY_ROUTE)
    return scheme in ("http", "https") and any(
        path[i : i + width] == PROXY_ROUTE for i in range(len(path) - width + 1)
    )


def _check_local_host(source: str) -> None:
    """A file:// URI naming a remote host is no local path (MLflow's wording)."""
    host = (urlsplit(source).hostname or "").lower() if uri_scheme(source) == "file" else ""
    if host and host != "." and not host.startswith(("localhost", "127.0.0.1")):
        raise InvalidParameterError(
            f"{source} is not a valid remote uri. For remote access on windows, please consider "
            "using a different scheme such as SMB (e.g. smb://<hostname>/<path>)."
        )


def _local_within(source: str, root: str) -> bool:
    """A local `source` lies in the local artifact folder `root` (symlinks resolved)."""
    if uri_scheme(root) not in ("", "file"):
        return False
    root_path, path = _real_path(root), _real_path(source)
    return os.path.commonpath([root_path, path]) == root_path


def _no_traversal(source: str) -> None:
    """MLflow's check for a non-local source: no '..', NUL or path that resolves elsewhere."""
    try:
        uri_without_traversal(source, "model version source")
    except InvalidParameterError:
        raise _invalid_source(source, _ABSOLUTE_PATH_ONLY) from None
    path = re.sub(r"/+", "/", unquote(urlsplit(source).path).rstrip("/"))
    if "\x00" in path or posixpath.normpath(path or "/") != (path or "/"):
        raise _invalid_source(source, _ABSOLUTE_PATH_ONLY)


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


def _parsed_models_uri(source: str) -> ModelUri:
    try:
        return parse_model_uri(source)
    except InvalidParameterError:
        raise _not_identifying(source, "model_id") from None


def _source_model_id(source: str) -> str | None:
    """The LoggedModel id of a models:/<model_id> source, else None."""
    if uri_scheme(source) != "models" or urlsplit(source).netloc:
        return None
    try:
        return parse_model_uri(source).model_id
    except InvalidParameterError:
        return None


def _check_run_source(ctx: ServerContext, source: str, run_id: str | None) -> None:
    """MLflow's rules for a version whose source lies in a run (no model_id given)."""
    scheme = uri_scheme(source)
    if scheme in ("", "file"):
        _check_local_host(source)
        if run_id:
            root = _source_root(ctx, source, "run_id", lambda: ctx.store.get_run(run_id))
            if _local_within(source, root.info.artifact_uri):
                return
        raise _invalid_source(
            _real_path(source),
            "To use a local path as a model version source, the run_id request parameter has "
            "to be specified and the local path has to be contained within the artifact "
            "directory of the run specified by the run_id.",
        )
    _no_traversal(source)
    if scheme == "runs":
        if urlsplit(source).netloc or not run_id or parse_model_uri(source).run_id != run_id:
            raise _not_identifying(source, "run_id")
        return
    if scheme == "models":
        if urlsplit(source).netloc or _parsed_models_uri(source).model_id is not None:
            raise _not_identifying(source, "model_id")
        return
    if _is_proxy_source(source):
        if run_id:
            run = _source_root(ctx, source, "run_id", lambda: ctx.store.get_run(run_id))
            if _within(source, run.info.artifact_uri):
                return
        raise _not_identifying(source, "run_id")
    _check_host(source)


def _check_model_source(ctx: ServerContext, source: str, model_id: str) -> None:
    """MLflow's rules for a version made from a LoggedModel (model_id given)."""
    model = _source_root(ctx, source, "model_id", lambda: ctx.store.get_logged_model(model_id))
    scheme = uri_scheme(source)
    if scheme in ("", "file"):
        _check_local_host(source)
        if _local_within(source, model.artifact_location):
            return
        raise _invalid_source(
            _real_path(source),
            "To use a local path as a model version source, the model_id request parameter has "
            "to be specified and the local path has to be contained within the artifact "
            "directory of the run specified by the model_id.",
        )
    _no_traversal(source)
    if scheme == "models":
        named = _parsed_models_uri(source).model_id
        if urlsplit(source).netloc or (named is not None and named != model_id):
            raise _not_identifying(source, "model_id")
        return
    if scheme == "runs":
        raise _not_identifying(source, "model_id")
    if _is_proxy_source(source):
        if _within(source, model.artifact_location):
            return
        raise _not_identifying(source, "model_id")
    _check_host(source)


def _check_host(source: str) -> None:
    scheme = uri_scheme(source)
    if scheme in _HOST_ADDRESSED and urlsplit(source).netloc:
        raise InvalidParameterError(
            f"Invalid source {source!r}: the '{scheme}' scheme addresses a host other than the "
            "tracking server's artifact storage; register the model from its run "
            "(runs:/<run_id>/<path>), its LoggedModel (models:/<model_id>) or a proxied "
            "mlflow-artifacts:/ URI"
        )


T = TypeVar("T")


def _source_root(ctx: ServerContext, source: str, field: str, get: Callable[[], T]) -> T:
    """The run or model that must hold `source`; its absence is a bad source."""
    try:
        return get()
    except NotFoundError:
        raise _not_identifying(source, field) from None


def checked_source(
    ctx: ServerContext,
    store: RegistryStore,
    source: str,
    run_id: str | None,
    model_id: str | None,
) -> tuple[str, str | None, str | None]:
    """(source, run_id, model_id) to record for a new version, by MLflow's rules: a models:/
    version URI is pinned to that version (its run and model carried over), and the source must
    lie in the run (`run_id`) or LoggedModel (`model_id`) that is given. Sources are read later
    only under the server's artifact roots."""
    if any(ord(ch) < 32 for ch in source):
        raise _invalid_source(source, "Control characters are not allowed.")
    if uri_scheme(source) == "models":
        if urlsplit(source).netloc:
            raise _invalid_source(
                source, "Registered model sources must use the active model registry."
            )
        parsed = _parsed_models_uri(source)
        if parsed.model_id is None:
            version = resolve_version(store, parsed)
            version_model = _source_model_id(version.source or "")
            if (run_id is not None and run_id != (version.run_id or "")) or (
                model_id is not None and model_id != (version_model or "")
            ):
                raise _invalid_source(
                    source,
                    "The run_id and model_id request parameters must match the referenced "
                    "model version.",
                )
            source = f"models:/{version.name}/{version.version}"
            run_id = version.run_id if run_id is None else run_id
            model_id = version_model if model_id is None else model_id
    if model_id:
        _check_model_source(ctx, source, model_id)
        run_id = run_id or ctx.store.get_logged_model(model_id).source_run_id
    else:
        _check_run_source(ctx, source, run_id)
    return source, run_id or None, model_id or None


@route("/model-versions/create", "POST")
def create_model_version(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    store = registry_for(ctx)
    name = _name(f)
    store.get_registered_model(name)  # a missing model fails before the source checks
    source, run_id, model_id = checked_source(
        ctx,
        store,
        f.string("source", required=True),
        f.string("run_id") if f.has("run_id") else None,
        f.string("model_id") if f.has("model_id") else None,
    )
    version = store.create_model_version(
        name,
        source,
        run_id=run_id,
        tags=_tags(f),
        run_link=f.string("run_link") or None,
        description=f.string("description"),
    )
    if model_id:
        _link_model_version(ctx, model_id, version)
    return {"model_version": model_version_json(version, model_id)}


def _link_model_version(ctx: ServerContext, model_id: str, version: ModelVersion) -> None:
    """Add the version to the LoggedModel's mlflow.modelVersions tag (as MLflow's server does)."""
    model = ctx.store.get_logged_model(model_id)
    entry = {"name": version.name, "version": version.version}
    listed = json.loads(model.tags.get(MODEL_VERSIONS_TAG) or "[]")
    if entry not in listed:
        listed.append(entry)
    ctx.store.set_logged_model_tags(model_id, {MODEL_VERSIONS_TAG: json.dumps(listed)})


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


def download_uri(ctx: ServerContext, name: str, version: str) -> str:
    """Where a version's files are: its source, with models:/ sources followed to the version
    or LoggedModel they name (MLflow's storage_location)."""
    store = registry_for(ctx)
    uri = store.get_model_version_download_uri(name, version)
    for _ in range(MAX_SOURCE_HOPS):
        if uri_scheme(uri) != "models":
            return uri
        parsed = parse_model_uri(uri)
        if parsed.model_id is not None:
            return ctx.store.get_logged_model(parsed.model_id).artifact_location
        found = resolve_version(store, parsed)
        uri = store.get_model_version_download_uri(found.name, found.version)
    raise InvalidParameterError(
        f"The source of version {version} of {name!r} leads through more than "
        f"{MAX_SOURCE_HOPS} models:/ URIs"
    )


@route("/model-versions/get-download-uri", "GET")
def get_model_version_download_uri(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    return {"artifact_uri": download_uri(ctx, _name(f), _version(f))}


@route("/model-versions/transition-stage", "POST")
def transition_model_version_stage(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    version = registry_for(ctx).transition_model_version_stage(
        _name(f),
        _version(f),
        f.string("stage", required=True),
        _flag(f, "archive_existing_versions"),
    )
    return {"model_version": model_version_json(version)}
