"""Local paths versus URIs: the one place that reads a URI's scheme.

MLflow accepts plain paths wherever it takes a URI; a path (relative, absolute, or a Windows
drive such as ``C:\\x``) has no scheme, ``file://`` URIs are percent-encoded local paths, and
everything else (s3://, http://, runs:/, models:/, ...) is remote.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")  # 2+ chars, so "C:/x" is a path


def uri_scheme(uri: str) -> str:
    """The URI's scheme in lower case; "" for local paths."""
    match = _SCHEME_RE.match(uri)
    return match.group(1).lower() if match else ""


def is_local(uri: str) -> bool:
    """Whether `uri` is a path or a file:// URI."""
    return uri_scheme(uri) in ("", "file")


def local_path(uri: str) -> str | None:
    """The absolute local path of a path or file:// URI; None for remote URIs."""
    kind = uri_scheme(uri)
    if kind == "file":
        return os.path.abspath(unquote(urlsplit(uri).path))
    if kind == "":
        return os.path.abspath(os.path.expanduser(uri))
    return None


def sqlite_path(uri: str) -> str | None:
    """The database file of a sqlite:/// URI; None for an in-memory database."""
    if ":///" not in uri:
        return None
    path = uri.split(":///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else os.path.abspath(path)


def store_identity(uri: str) -> tuple[Any, ...]:
    """What tells two URIs apart as stores (spelling, relative paths and aliases ignored)."""
    path = local_path(uri)
    if path is not None:
        return ("file", path)
    scheme = uri_scheme(uri)
    if scheme == "sqlite":
        return ("sqlite", sqlite_path(uri) or uri)
    if scheme.startswith("postgres"):
        parsed = urlparse(uri)
        host = parsed.hostname or "localhost"
        return ("postgresql", host, parsed.port or 5432, parsed.path.lstrip("/") or parsed.username)
    return (scheme, uri)
