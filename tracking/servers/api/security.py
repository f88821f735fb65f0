"""What keeps the server safe: authentication, path checks, served artifact roots, request
limits, error hygiene.

Every piece is a plain ASGI middleware or function, so the rules hold for every route,
including the artifact proxy and the routes FastAPI answers itself (404, 405).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from starlette.requests import ClientDisconnect

from tracking.artifacts import ArtifactRepository, resolve_uri
from tracking.errors import HTTP_STATUS, InvalidParameterError, TrackingError

logger = logging.getLogger("tracking.servers.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
RESOURCE_LIMIT_EXCEEDED = "RESOURCE_LIMIT_EXCEEDED"
INTERNAL_ERROR = "INTERNAL_ERROR"
BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"

PUBLIC_PATHS = frozenset({"/health"})  # answered without credentials (load-balancer probes)
ARTIFACTS_PREFIXES = ("/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/")
#: MLflow's UI uploads a file as a raw POST body here (not JSON).
UPLOAD_ARTIFACT_PATH = "/ajax-api/2.0/mlflow/upload-artifact"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALLOW_ANY_LOCATION_FLAG = "--allow-any-artifact-location"

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # control characters, DEL included
_MAX_DECODE_ROUNDS = 8


# --- artifact paths ---------------------------------------------------------------------------


def safe_relative_path(path: str | None, what: str = "artifact path") -> str:
    """`path` normalised ("" is the root), or InvalidParameterError if it could leave the root.

    Refused at every level of percent-decoding ("%2e%2e%2f", "%252e%252e", ...): ".."
    components, absolute paths, drive letters, URI schemes, backslashes and control characters.
    Empty and "." components are dropped. The path is used as given (decoded once by the
    HTTP layer); the decoding here only looks for traversal hidden by encoding.
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise InvalidParameterError(f"Invalid {what}: expected a string")
    layer = path
    for _ in range(_MAX_DECODE_ROUNDS):
        _check_layer(path, layer, what)
        decoded = unquote(layer)
        if decoded == layer:
            break
        layer = decoded
    else:
        raise InvalidParameterError(f"Invalid {what} {path!r}: too many levels of URL encoding")
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def request_path(path: str | None) -> str:
    """safe_relative_path for a path a REST request names, refused with MLflow's exact answer
    ("Invalid path"), which MLflow's clients and tests compare."""
    try:
        return safe_relative_path(path)
    except InvalidParameterError:
        raise InvalidParameterError("Invalid path") from None


def _check_layer(original: str, text: str, what: str) -> None:
    if (
        "\\" in text
        or text.startswith("/")
        or _DRIVE_RE.match(text)
        or _SCHEME_RE.match(text)
        or ".." in text.split("/")
        or _CONTROL_RE.search(text)
    ):
        raise InvalidParameterError(
            f"Invalid {what} {original!r}: artifact paths must be relative, use '/' as the "
            "separator and contain no '..' components, backslashes, drive letters, URL-encoded "
            "separators or control characters"
        )


def contained(root_real: str, rel: str) -> str:
    """The real local path of `rel` under `root_real`; refuse it if symlinks lead outside."""
    full = os.path.join(root_real, *rel.split("/")) if rel else root_real
    real = os.path.realpath(full)
    if real != root_real and not real.startswith(root_real.rstrip(os.sep) + os.sep):
        raise InvalidParameterError(
            f"Invalid artifact path {rel!r}: it resolves outside the artifact root"
        )
    return real


def uri_without_traversal(uri: str, what: str) -> str:
    """Refuse a storage URI with '..' components, control characters, queries or fragments."""
    parts = urlsplit(uri)
    if parts.query or parts.fragment:
        raise InvalidParameterError(f"Invalid {what} {uri!r}: no query or fragment allowed")
    layer = parts.path
    for _ in range(_MAX_DECODE_ROUNDS):
        if ".." in layer.replace("\\", "/").split("/") or any(ord(ch) < 32 for ch in layer):
            raise InvalidParameterError(f"Invalid {what} {uri!r}: '..' components are not allowed")
        decoded = unquote(layer)
        if decoded == layer:
            break
        layer = decoded
    return uri


# --- served artifact roots --------------------------------------------------------------------


def _root_form(uri: str) -> str:
    """`uri` as roots are compared: a local path or local file: URI as the file URI of its real
    path (symlinks resolved, as reads would follow them), anything else without a trailing '/'."""
    resolved = resolve_uri(uri)
    parts = urlsplit(resolved)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        return Path(os.path.realpath(unquote(parts.path))).as_uri()
    return resolved.rstrip("/")


def within_roots(uri: str, roots: Iterable[str]) -> bool:
    """Whether `uri` is one of `roots` or lies below one."""
    form = _root_form(uri)
    for root in roots:
        root_form = _root_form(root).rstrip("/")
        if form == root_form or form.startswith(root_form + "/"):
            return True
    return False


def served_repository(uri: str, roots: Iterable[str]) -> ArtifactRepository:
    """The served-roots rule: the repository of a (non-proxied) run artifact URI that a server
    reads for its clients (REST ``artifacts/list``, the UI's listings, previews and downloads),
    or InvalidParameterError when `uri` lies outside the server's artifact `roots`."""
    uri_without_traversal(uri, "artifact URI")
    if not within_roots(uri, roots):
        raise InvalidParameterError(
            f"Artifacts at {uri} are outside the locations this server serves; "
            "read them from the artifact store directly"
        )
    return ArtifactRepository(resolve_uri(uri))


def location_outside_roots(location: str, roots: Iterable[str]) -> InvalidParameterError:
    """The error for a new experiment's artifact_location outside the server's artifact roots."""
    return InvalidParameterError(
        f"Invalid artifact_location {location!r}: this server accepts experiment artifact "
        f"locations under {', '.join(roots)} only. Leave artifact_location unset to get the "
        f"server's default location, or start the server with {ALLOW_ANY_LOCATION_FLAG} "
        "to accept any location"
    )


# --- responses written by middleware ----------------------------------------------------------


async def send_json_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    from tracking.servers.api.messages import dumps

    body = dumps({"error_code": code, "message": message})
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


# --- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Accepted credentials: a bearer token and/or a basic-auth "user:password" pair."""

    token: str | None = None
    basic: str | None = None

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():
            raise ValueError("The auth token must not be empty")
        if self.basic is not None:
            user, sep, password = self.basic.partition(":")
            if not sep or not user or not password:
                raise ValueError("Basic auth must be given as 'user:password' (both non-empty)")

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.basic)

    def accepts(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        scheme = scheme.lower()
        if scheme == "bearer" and self.token:
            return hmac.compare_digest(value.encode(), self.token.encode())
        if scheme == "basic" and self.basic:
            try:
                decoded = base64.b64decode(value.encode(), validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(decoded, self.basic.encode())
        return False

    def challenge(self) -> str:
        schemes = []
        if self.token:
            schemes.append('Bearer realm="trackflow"')
        if self.basic:
            schemes.append('Basic realm="trackflow", charset="UTF-8"')
        return ", ".join(schemes)


class AuthMiddleware:
    """401 for every request without accepted credentials, except the public health check."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.credentials.enabled
            or scope["path"] in PUBLIC_PATHS
            or self.credentials.accepts(_header(scope, b"authorization"))
        ):
            await self.app(scope, receive, send)
            return
        await send_json_error(
            send,
            401,
            UNAUTHENTICATED,
            "Authentication required: send 'Authorization: Bearer <token>' or HTTP basic "
            "credentials (MLflow clients: MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME "
            "and MLFLOW_TRACKING_PASSWORD)",
            {"WWW-Authenticate": self.credentials.challenge()},
        )


# --- Host and Origin checks (DNS rebinding, cross-site requests) -------------------------------


HostPatterns = tuple[re.Pattern[str], ...] | None  # None: any host


def host_patterns(allowed: tuple[str, ...]) -> HostPatterns:
    """Allowed Host header values compiled once; '*' is a wildcard, a lone '*' allows any."""
    if "*" in allowed:
        return None
    return tuple(re.compile(re.escape(p.lower()).replace(r"\*", ".*")) for p in allowed)


def host_allowed(host: str, patterns: HostPatterns) -> bool:
    """Whether a Host header (with or without its port) matches one of the patterns."""
    if patterns is None:
        return True
    if not host:
        return False
    host = host.lower()
    name = host if host.endswith("]") else host.rsplit(":", 1)[0]  # "[::1]:5000" -> "[::1]"
    return any(p.fullmatch(host) or p.fullmatch(name) for p in patterns)


def _headers(scope: Scope) -> dict[bytes, str]:
    """The request's headers by lower-case name (the first of repeated ones, as `_header`)."""
    return {k.lower(): v.decode("latin-1") for k, v in reversed(scope.get("headers", []))}


class RequestGuardMiddleware:
    """Refuse control characters in paths, requests for other host names (DNS rebinding)
    and cross-site writes (CSRF).

    A browser page from another site can send "simple" POSTs (text/plain bodies) without a
    CORS preflight; requiring a JSON content type and a same-origin Origin header on writes
    closes that door even when the server runs without authentication.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.allowed_hosts = host_patterns(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if _CONTROL_RE.search(scope["path"]):
            await send_json_error(
                send, 400, INVALID_PARAMETER_VALUE, "Control characters are not allowed in paths"
            )
            return
        headers = _headers(scope)
        host = headers.get(b"host", "")
        if not host_allowed(host, self.allowed_hosts):
            logger.warning("Refused a request for host %r (not in --allowed-hosts)", host)
            await send_json_error(
                send,
                403,
                PERMISSION_DENIED,
                f"Host {host!r} is not allowed by this server (start it with --allowed-hosts "
                "to serve other host names, e.g. behind a reverse proxy)",
            )
            return
        method = scope["method"]
        if method in STATE_CHANGING:
            origin = headers.get(b"origin")
            if origin and origin != "null" and urlsplit(origin).netloc.lower() != host.lower():
                await send_json_error(
                    send, 403, PERMISSION_DENIED, "Cross-origin requests are not allowed"
                )
                return
            raw_body = scope["path"].startswith(ARTIFACTS_PREFIXES) or (
                scope["path"] == UPLOAD_ARTIFACT_PATH
            )
            if method == "POST" and not raw_body:
                content_type = headers.get(b"content-type", "").split(";")[0].strip()
                length = headers.get(b"content-length")
                has_body = length not in (None, "0") or headers.get(b"transfer-encoding")
                if has_body and content_type.lower() != "application/json":
                    await send_json_error(
                        send,
                        415,
                        BAD_REQUEST,
                        "Request bodies must be JSON with 'Content-Type: application/json'",
                    )
                    return
        await self.app(scope, receive, send)


class MergeSlashesMiddleware:
    """A request for a path with repeated slashes (``//model-versions/get-artifact``) is
    redirected (308) to the path with single slashes, as MLflow's routing answers it. Artifact
    proxy paths are left as they are (an upload's body is not sent twice)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or "//" not in path or path.startswith(ARTIFACTS_PREFIXES):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        location = quote(re.sub("/{2,}", "/", path)).encode() + (b"?" + query if query else b"")
        headers = [(b"location", location), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 308, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


# --- request size -----------------------------------------------------------------------------


class RequestTooLarge(Exception):
    """The body grew past the limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body larger than {limit} bytes")
        self.limit = limit


_CLOSE = {"Connection": "close"}  # stop reading the rest of an oversized body


def too_large_message(limit: int) -> str:
    return f"Request body too large: this server accepts at most {limit} bytes here"


class BodyLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, else while reading.

    Artifact uploads (PUT to the artifact proxy) have their own limit (None = unlimited),
    since models and data sets are much larger than API requests.
    """

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_artifact_bytes: int | None):
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_artifact_bytes = max_artifact_bytes

    def _limit(self, scope: Scope) -> int | None:
        if scope["method"] == "PUT" and scope["path"].startswith(ARTIFACTS_PREFIXES):
            return self.max_artifact_bytes
        return self.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_json_error(send, 400, BAD_REQUEST, "Invalid Content-Length header")
                return
            if declared > limit:
                await send_json_error(
                    send, 413, RESOURCE_LIMIT_EXCEEDED, too_large_message(limit), _CLOSE
                )
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLarge:
            if started:
                raise
            await send_json_error(
                send, 413, RESOURCE_LIMIT_EXCEEDED, too_large_message(limit), _CLOSE
            )


# --- error hygiene and headers ----------------------------------------------------------------


class CatchAllMiddleware:
    """Turn any unexpected exception into a generic JSON 500; the traceback goes to the log.

    Clients get an error id to quote, never a stack trace, a path or an exception text.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            logger.info("Client went away during %s %s", scope.get("method"), scope.get("path"))
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            logger.exception(
                "Internal error %s on %s %s", error_id, scope.get("method"), scope.get("path")
            )
            if started:  # the body is cut short; the client sees a broken response
                return
            await send_json_error(send, 500, INTERNAL_ERROR, internal_error_message(error_id))


def internal_error_message(error_id: str) -> str:
    return f"Internal server error (error id {error_id}; details are in the server log)"


def tracking_error_answer(exc: TrackingError, method: str, path: str) -> tuple[int, str, str]:
    """(HTTP status, error code, message) for a TrackingError; a 5xx's details go to the log
    only, the client gets an error id to quote."""
    status = HTTP_STATUS.get(exc.error_code, 500)
    if status < 500:
        return status, exc.error_code, exc.message
    error_id = uuid.uuid4().hex[:12]
    logger.error("Error %s on %s %s: %s", error_id, method, path, exc.message, exc_info=exc)
    return status, exc.error_code, internal_error_message(error_id)


class SecurityHeadersMiddleware:
    """nosniff and no framing on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {key.lower() for key, _ in headers}
                for key, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ):
                    if key not in names:
                        headers.append((key, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
