"""Tracking stores chosen by the tracking URI's scheme; implementations import lazily."""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any
from urllib.parse import urlparse

from tracking import journal
from tracking.errors import InvalidParameterError, NotFoundError
from tracking.stores.base import TrackingStore

ARTIFACT_ROOT_ENV = "MLFLOW_ARTIFACT_ROOT"

#: scheme -> (module, class, what to install when the import fails)
STORE_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "": ("tracking.stores.file.store", "FileStore", None),
    "file": ("tracking.stores.file.store", "FileStore", None),
    "sqlite": ("tracking.stores.sql.store", "SqlStore", None),
    "postgresql": (
        "tracking.stores.sql.store",
        "SqlStore",
        "psycopg[binary] (pip install trackflow)",
    ),
    "postgresql+psycopg": ("tracking.stores.sql.store", "SqlStore", "psycopg[binary]"),
    "postgres": ("tracking.stores.sql.store", "SqlStore", "psycopg[binary]"),
    "http": ("tracking.stores.rest.store", "RestStore", "httpx"),
    "https": ("tracking.stores.rest.store", "RestStore", "httpx"),
}

_stores: dict[tuple[str, str | None], TrackingStore] = {}
_lock = threading.Lock()


def local_path(uri: str) -> str:
    """Absolute folder of a path or file:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return os.path.abspath(parsed.path)
    return os.path.abspath(uri)


def uri_scheme(uri: str) -> str:
    """The URI's scheme in lower case; "" for local paths ("C:\\x" and relative paths too)."""
    scheme = urlparse(uri).scheme.lower()
    return "" if len(scheme) <= 1 else scheme


def sqlite_path(uri: str) -> str | None:
    """The database file of a sqlite:/// URI; None for an in-memory database."""
    if ":///" not in uri:
        return None
    path = uri.split(":///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else os.path.abspath(path)


def check_exists(uri: str) -> None:
    """Raise NotFoundError if `uri` names a local store (a folder or a SQLite file) that does
    not exist: commands that only read call it rather than create an empty store."""
    scheme = uri_scheme(uri)
    if scheme in ("", "file"):
        path = local_path(uri)
        if not os.path.isdir(path):
            raise NotFoundError(f"No tracking store at {path}: the folder does not exist")
    elif scheme == "sqlite":
        file = sqlite_path(uri)
        if file is not None and not os.path.isfile(file):
            raise NotFoundError(f"SQLite database {file} does not exist")


def store_identity(uri: str) -> tuple[Any, ...]:
    """What tells two URIs apart as stores (spelling, relative paths and aliases ignored)."""
    scheme = uri_scheme(uri)
    if scheme in ("", "file"):
        return ("file", local_path(uri))
    if scheme == "sqlite":
        return ("sqlite", sqlite_path(uri) or uri)
    if scheme.startswith("postgres"):
        parsed = urlparse(uri)
        host = parsed.hostname or "localhost"
        return ("postgresql", host, parsed.port or 5432, parsed.path.lstrip("/") or parsed.username)
    return (scheme, uri)


def _store_class(uri: str) -> Any:
    """The store class of `uri`'s scheme, imported; a clear error for unknown schemes."""
    scheme = uri_scheme(uri)
    try:
        module_name, class_name, extra = STORE_REGISTRY[scheme]
    except KeyError:
        known = ", ".join(sorted(s + "://" for s in STORE_REGISTRY if s))
        raise InvalidParameterError(
            f"Unsupported tracking URI {uri!r}: scheme {scheme!r} is not known. "
            f"Use a local path or one of: {known}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        hint = f"; install {extra}" if extra else ""
        raise ImportError(f"Tracking URI {uri!r} needs {e.name}{hint}") from e
    return getattr(module, class_name)


def check_holds_store(uri: str) -> None:
    """Raise NotFoundError unless `uri` already holds a tracking store (experiment folders,
    a database with the tracking tables): for commands that must not create an empty store by
    opening it. Nothing is created."""
    _store_class(uri).check_holds_store(uri)


def open_store(
    uri: str, artifact_root: str | None = None, *, for_reading: bool = False
) -> TrackingStore:
    """A new store for `uri` (not cached); new experiments' artifacts go under artifact_root.
    Task runs that a stopped process left in its journal for this store are written first.
    `for_reading`: only to be read (TrackingStore.open_for_reading), no journal replayed."""
    scheme = uri_scheme(uri)
    cls = _store_class(uri)
    if artifact_root and len(urlparse(artifact_root).scheme) <= 1:  # a local folder
        artifact_root = "file://" + os.path.abspath(artifact_root)
    target = local_path(uri) if not scheme or scheme == "file" else uri
    if for_reading:
        return cls.open_for_reading(target)  # type: ignore[no-any-return]
    store: TrackingStore = cls(target, artifact_root)
    journal.replay_orphans(uri, store)
    return store


def get_store(uri: str) -> TrackingStore:
    """The (cached) store for a tracking URI; MLFLOW_ARTIFACT_ROOT sets new artifact roots."""
    key = (uri, os.environ.get(ARTIFACT_ROOT_ENV) or None)
    store = _stores.get(key)
    if store is None:
        with _lock:
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = open_store(uri, key[1])
    return store
