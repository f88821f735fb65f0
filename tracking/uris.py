"""Local paths versus URIs: the one place that reads a URI's scheme.

MLflow accepts plain paths wherever it takes a URI; a path (relative, absolute, or a Windows
drive such as ``C:\\x``) has no scheme, ``file://`` URIs are percent-encoded local paths, and
everything else (s3://, http://, runs:/, models:/, ...) is remote.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

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
