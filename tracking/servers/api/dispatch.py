"""The JSON API's request path: MLflow's REST endpoints found by exact path in one dict.

FastAPI would try its routes' regular expressions one by one (the UI's, the proxy's, both API
prefixes') and build a Request per call. The tracking and registry endpoints have fixed paths,
so `ApiDispatcher`, the innermost middleware, looks ``(path, method)`` up in a dict, reads the
body, runs the handler and writes the JSON answer itself. Every other path (UI, artifact proxy,
health) goes on to FastAPI.

Handlers block (the stores do I/O), so they run in a worker thread, except the `inline` ones:
the server passes the quick one-run endpoints there when its store is SQLite, which answers
them in about 0.1 ms, less than the hop to a thread and back costs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect

from tracking.errors import BAD_REQUEST, InvalidParameterError, TrackingError
from tracking.servers.api.messages import Fields, dumps, parse_json_body
from tracking.servers.api.security import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    send_json_error,
    tracking_error_answer,
)

if TYPE_CHECKING:
    from tracking.servers.api.app import ServerContext

MAX_BATCH_LOG_REQUEST_SIZE = 1_000_000  # bytes of JSON in one runs/log-batch (MLflow's limit)
_JSON_HEADERS = [(b"content-type", b"application/json")]

Handler = Callable[["ServerContext", Fields], dict[str, Any]]
RouteTable = Iterable[tuple[str, tuple[str, ...], Handler]]
#: full path -> HTTP method -> handler. A path may name parts: "/logged-models/{model_id}" (one
#: path segment) or "{tag_key:path}" (the rest of the path); they reach the handler as fields.
Routes = dict[str, dict[str, Handler]]
_PATH_PARAMETER = re.compile(r"\{(\w+)(:path)?\}")


def _path_pattern(path: str) -> re.Pattern[str]:
    """The regular expression of a route path with {name} / {name:path} parts."""
    pattern, end = "", 0
    for match in _PATH_PARAMETER.finditer(path):
        pattern += re.escape(path[end : match.start()])
        pattern += f"(?P<{match.group(1)}>{'.+' if match.group(2) else '[^/]+'})"
        end = match.end()
    return re.compile(pattern + re.escape(path[end:]) + "$")


def api_routes(prefixes: Iterable[str], tables: Iterable[RouteTable]) -> Routes:
    """The endpoints of `tables` under each of `prefixes`; a GET endpoint also answers HEAD."""
    routes: Routes = {}
    for table in tables:
        for path, methods, handler in table:
            for prefix in prefixes:
                by_method = routes.setdefault(prefix + path, {})
                for method in methods:
                    by_method[method] = handler
                    if method == "GET":
                        by_method.setdefault("HEAD", handler)
    return routes


async def read_body(receive: Receive) -> bytes:
    """The whole request body (ClientDisconnect if the client goes away first)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def request_fields(scope: Scope, receive: Receive) -> Fields:
    """GET: the query string (else a JSON body); DELETE/PATCH: the query string when the body
    is empty; otherwise the JSON body."""
    method = scope["method"]
    query = scope.get("query_string", b"")
    if method in ("GET", "HEAD") and query:
        return Fields.from_query(QueryParams(query).multi_items())
    body = await read_body(receive)
    if method in ("DELETE", "PATCH") and query and not body.strip():
        return Fields.from_query(QueryParams(query).multi_items())
    if len(body) > MAX_BATCH_LOG_REQUEST_SIZE and scope["path"].endswith("/runs/log-batch"):
        raise InvalidParameterError(
            f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, "
            f"got a request of size {len(body)}"
        )
    return Fields(parse_json_body(body))


class ApiDispatcher:
    """Answer the endpoints of `routes` (see `api_routes`); pass anything else on to `app`.

    A known path with another method gets a JSON 405. Handler errors (TrackingError) become
    MLflow's ``{"error_code", "message"}`` answers; anything else propagates to the catch-all
    middleware.
    """

    def __init__(
        self,
        app: ASGIApp,
        context: ServerContext,
        routes: Routes,
        inline: Collection[Handler] = frozenset(),
    ) -> None:
        self.app = app
        self.context = context
        self.routes = routes
        self.inline = inline
        self.patterns = [
            (_path_pattern(path), by_method)
            for path, by_method in routes.items()
            if _PATH_PARAMETER.search(path)
        ]

    def _find(self, path: str) -> tuple[dict[str, Handler] | None, dict[str, str]]:
        """The handlers of `path` and the values of its named parts."""
        by_method = self.routes.get(path)
        if by_method is not None:
            return by_method, {}
        for pattern, handlers in self.patterns:
            match = pattern.match(path)
            if match:
                return handlers, match.groupdict()
        return None, {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        by_method, path_values = (
            self._find(scope["path"]) if scope["type"] == "http" else (None, {})
        )
        if by_method is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        handler = by_method.get(method)
        if handler is None:
            await send_json_error(send, 405, BAD_REQUEST, f"Method {method} is not allowed here")
            return
        try:
            fields = await request_fields(scope, receive)
            if path_values:
                fields = fields.with_values(path_values)
            if handler in self.inline:
                result = handler(self.context, fields)
            else:
                result = await to_thread.run_sync(handler, self.context, fields)
        except TrackingError as exc:
            await send_json_error(send, *tracking_error_answer(exc, method, scope["path"]))
            return
        body = dumps(result)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
