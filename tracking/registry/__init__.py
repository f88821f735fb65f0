"""The model registry: registered models, versions, stages, aliases and models:/ URIs.

The registry lives where the tracking data lives (MLflow's default): a file tracking URI keeps
it under `<root>/models/` in MLflow's FileStore layout, a sqlite:// or postgresql:// URI in
the same database, an http(s):// URI on that tracking server (tracking.registry.rest).
`set_registry_uri` or $MLFLOW_REGISTRY_URI choose another location.
"""

from __future__ import annotations

import contextlib
import os
import threading

from tracking import config
from tracking.errors import RegistryUnavailableError
from tracking.registry.base import RegistryStore
from tracking.registry.entities import (
    ALL_STAGES,
    STAGE_ARCHIVED,
    STAGE_NONE,
    STAGE_PRODUCTION,
    STAGE_STAGING,
    ModelVersion,
    RegisteredModel,
)

__all__ = [
    "ALL_STAGES",
    "REGISTRY_URI_ENV",
    "STAGE_ARCHIVED",
    "STAGE_NONE",
    "STAGE_PRODUCTION",
    "STAGE_STAGING",
    "ModelVersion",
    "RegisteredModel",
    "RegistryStore",
    "RegistryUnavailableError",
    "get_registry_store",
    "get_registry_uri",
    "set_registry_uri",
]

REGISTRY_URI_ENV = "MLFLOW_REGISTRY_URI"

_registry_uri: str | None = None
_stores: dict[str, RegistryStore] = {}
_lock = threading.Lock()


def set_registry_uri(uri: str | os.PathLike[str] | None) -> None:
    """Keep the registry at `uri` instead of the tracking URI (None: back to the default)."""
    global _registry_uri
    _registry_uri = config._resolve(os.fspath(uri)) if uri is not None else None


def get_registry_uri(tracking_uri: str | None = None) -> str:
    """set_registry_uri's value, else $MLFLOW_REGISTRY_URI, else the tracking URI."""
    if _registry_uri is not None:
        return _registry_uri
    if os.environ.get(REGISTRY_URI_ENV):
        return config._resolve(os.environ[REGISTRY_URI_ENV])
    return tracking_uri or config.get_tracking_uri()


def _create(uri: str) -> RegistryStore:
    from tracking import stores

    scheme = stores.uri_scheme(uri)
    if scheme in ("http", "https"):  # a tracking server's registry, over its REST API
        from tracking.registry.rest import RestRegistryStore

        return RestRegistryStore(uri)
    if not scheme or scheme == "file":
        from tracking.registry.file import FileRegistryStore

        return FileRegistryStore(stores.local_path(uri))
    if scheme in stores.STORE_REGISTRY:
        with contextlib.suppress(RegistryUnavailableError):
            return stores.get_store(uri).open_registry()
    raise RegistryUnavailableError(
        f"No model registry for {uri!r}: Trackflow keeps registries in file stores (a path or "
        "file://) and SQL stores (sqlite://, postgresql://), or uses a tracking server's "
        "(http://, https://)"
    )


def get_registry_store(uri: str | None = None) -> RegistryStore:
    """The (cached) registry store for a registry URI (default: get_registry_uri())."""
    uri = uri or get_registry_uri()
    store = _stores.get(uri)
    if store is None:
        with _lock:
            store = _stores.get(uri)
            if store is None:
                store = _stores[uri] = _create(uri)
    return store
