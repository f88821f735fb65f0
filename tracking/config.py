"""Where tracking data goes: the tracking URI and its environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from urllib.parse import urlparse, urlsplit, urlunsplit

from tracking.state import STATE
from tracking.uris import uri_scheme

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_TRACKING_URI = "./mlruns"


@lru_cache(maxsize=64)
def _normalize(uri: str, cwd: str) -> str:
    """Local paths become absolute file:// URIs, so a later chdir cannot move the store."""
    scheme = uri_scheme(uri)
    if not scheme:
        return "file://" + os.path.normpath(os.path.join(cwd, uri))
    if scheme == "file":
        return "file://" + os.path.normpath(os.path.join(cwd, urlparse(uri).path))
    return uri


def resolve_uri(uri: str) -> str:
    """`uri` as stored: local paths (relative ones against the working directory) become
    absolute file:// URIs; other URIs are kept."""
    relative = not uri.startswith("/") and "://" not in uri and not uri.startswith("file:")
    return _normalize(uri, os.getcwd() if relative or uri.startswith("file:") else "")


def redact_uri(uri: str) -> str:
    """`uri` with any password masked (postgresql://user:***@host/db), safe for messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}"))


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Use `uri` for this process and, through MLFLOW_TRACKING_URI, for its subprocesses."""
    STATE.tracking_uri = resolve_uri(os.fspath(uri))
    os.environ[TRACKING_URI_ENV] = STATE.tracking_uri


def get_tracking_uri() -> str:
    """set_tracking_uri's value, else $MLFLOW_TRACKING_URI, else ./mlruns (as a file:// URI)."""
    if STATE.tracking_uri is not None:
        return STATE.tracking_uri
    return resolve_uri(os.environ.get(TRACKING_URI_ENV) or DEFAULT_TRACKING_URI)


def is_tracking_uri_set() -> bool:
    return STATE.tracking_uri is not None or bool(os.environ.get(TRACKING_URI_ENV))
