"""The web UI: server-rendered pages (Jinja2, autoescaped) with a little JavaScript.

    from tracking.servers.ui import create_ui_app, create_ui_router
    app = create_ui_app("sqlite:///mlflow.db")          # a standalone app
    rest_app.include_router(create_ui_router(uri), prefix="/ui")   # or inside another app

Charts are drawn by plotly.js, served from the installed `plotly` package's own file.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import os
import posixpath
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.responses import StreamingResponse

from tracking import __version__, processes
from tracking.artifacts import ArtifactRepository
from tracking.client import TrackingClient
from tracking.config import redact_uri
from tracking.errors import InvalidParameterError, NotFoundError, TrackingError
from tracking.servers.api.security import RequestGuardMiddleware
from tracking.servers.ui import artifacts_view, data, run_io

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC_DIR = os.path.join(HERE, "static")
OWN_STATIC = ("app.js", "style.css")
PLOTLY_JS = "plotly.min.js"
PAGE_SIZES = (25, 50, 100, 200, 500)
DEFAULT_PAGE_SIZE = 50
MAX_COMPARE = 100

#: No inline script can run: page data travels in <script type="application/json"> blocks.
#: plotly.js needs 'unsafe-eval' for its WebGL traces (parallel coordinates).
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Artifacts are the store's content, not ours: never let one run as a page of this site.
ARTIFACT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def plotly_js_path() -> str:
    """plotly.min.js inside the installed `plotly` package (never a copy in this repository)."""
    try:
        path = importlib.resources.files("plotly") / "package_data" / PLOTLY_JS
    except ModuleNotFoundError:
        raise RuntimeError("The UI's charts need plotly: pip install plotly") from None
    if not path.is_file():
        raise RuntimeError(f"plotly is installed but has no {PLOTLY_JS} at {path}")
    return str(path)


@functools.lru_cache(maxsize=1)
def _plotly_version() -> str:
    try:
        from importlib.metadata import version

        return version("plotly")
    except Exception:
        return "0"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
        autoescape=True,  # every value from the store is HTML-escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = data.format_time
    env.filters["iso"] = data.iso_time
    env.filters["duration"] = data.format_duration
    env.filters["value"] = data.format_value
    env.filters["filesize"] = _filesize
    env.filters["short"] = lambda run_id: (run_id or "")[:8]
    env.tests["is_system"] = data.is_system_tag
    env.globals["children_filter"] = lambda run_id: (
        f"tags.{data.quote_key(data.PARENT_TAG)} = {data.quote_string(run_id)}"
    )
    env.globals["version"] = __version__
    env.globals["run_status"] = lambda run: processes.shown_status(run.info.status, run.data.tags)
    return env


def _filesize(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)  # pragma: no cover


class _Pages:
    """Renders templates with URL helpers bound to the current request."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client
        self.env = _environment()

    def url(
        self, request: Request, route: str, query: dict[str, Any] | None = None, /, **path: Any
    ) -> str:
        target = request.url_for(route, **path).path
        pairs = []
        for key, value in (query or {}).items():
            if value is None or value == "":
                continue
            for item in value if isinstance(value, (list, tuple)) else [value]:
                pairs.append((key, str(item)))
        return target + ("?" + urlencode(pairs, quote_via=quote) if pairs else "")

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        def url(route: str, query: dict[str, Any] | None = None, /, **path: Any) -> str:
            return self.url(request, route, query, **path)

        run_prefix: list[str] = []

        def run_url(run_id: str) -> str:
            """url("ui_run", run_id=...) without a route lookup per table row."""
            if not run_prefix:
                run_prefix.append(url("ui_run", run_id="_")[:-1])
            return run_prefix[0] + quote(str(run_id), safe="")

        def static(name: str) -> str:
            version = _plotly_version() if name == PLOTLY_JS else __version__
            return url("ui_static", {"v": version}, name=name)

        context.setdefault("charts", False)
        started = time.perf_counter()
        html = self.env.get_template(template).render(
            request=request,
            url=url,
            run_url=run_url,
            static=static,
            store_uri=redact_uri(self.client.tracking_uri),
            **context,
        )
        request.state.render_ms = (time.perf_counter() - started) * 1000
        return HTMLResponse(html, status_code=status_code)


# --------------------------------------------------------------------------- routing


def _security_headers(response: Response, csp: str = CSP) -> None:
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")


def _route_class(pages: _Pages) -> type[APIRoute]:
    def _error(request: Request, status: int, title: str, error: Exception) -> Response:
        if request.url.path.startswith(request.url_for("ui_metric_history").path):
            return JSONResponse({"error": str(error)}, status_code=status)
        fragment = request.query_params.get("fragment")
        template = "_error.html" if fragment else "error.html"
        return pages.render(request, template, status, title=title, error=error)

    class UIRoute(APIRoute):
        """Adds Server-Timing, security headers and error pages to every UI route."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def timed(request: Request) -> Response:
                started = time.perf_counter()
                try:
                    response = await handler(request)
                except NotFoundError as e:
                    response = _error(request, 404, "Not found", e)
                except InvalidParameterError as e:
                    response = _error(request, 400, "Bad request", e)
                except TrackingError as e:
                    response = _error(request, 500, "Store error", e)
                elapsed = (time.perf_counter() - started) * 1000
                timing = f"app;dur={elapsed:.1f}"
                render_ms = getattr(request.state, "render_ms", None)
                if render_ms is not None:
                    timing += f", render;dur={render_ms:.1f}"
                response.headers["Server-Timing"] = timing
                _security_headers(response)
                return response

            return timed

    return UIRoute


def create_ui_router(
    tracking_uri: str | None = None,
    artifact_repository: Callable[[str], ArtifactRepository] = ArtifactRepository,
) -> APIRouter:
    """Every UI page and endpoint as an APIRouter over one tracking store.

    Include it at any prefix: ``app.include_router(create_ui_router(uri), prefix="/ui")``.
    Route names start with ``ui_``. `artifact_repository` opens a run's artifact URI for
    reading; a server passes its own rule (`ServerContext.run_artifacts`: only its served
    roots), so the UI never reads what its REST API refuses.
    """
    client = TrackingClient(tracking_uri)

    def run_artifacts(run: Any) -> artifacts_view.RunArtifacts:
        return artifacts_view.RunArtifacts(artifact_repository(run.info.artifact_uri))

    pages = _Pages(client)
    router = APIRouter(route_class=_route_class(pages))
    render = pages.render

    # --- static files -------------------------------------------------------------------
    @router.get("/static/{name}", name="ui_static", include_in_schema=False)
    def static(name: str) -> Response:
        if name == PLOTLY_JS:
            path = plotly_js_path()
        elif name in OWN_STATIC:
            path = os.path.join(STATIC_DIR, name)
        else:
            raise NotFoundError(f"No static file {name!r}")
        response = FileResponse(path)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    # --- experiments ----------------------------------------------------------------------
    @router.get("/", name="ui_experiments", response_class=HTMLResponse)
    def experiments(request: Request, q: str = "") -> Response:
        error = None
        summaries: list[data.ExperimentSummary] = []
        try:
            found = data.search_experiments(client, q)
            summaries = data.experiment_summaries(client, found)
            summaries.sort(key=lambda s: -(s.last_run_time or 0))
        except data.FilterError as e:
            error = e
        return render(request, "experiments.html", summaries=summaries, q=q, error=error)

    @router.get("/experiments/{experiment_id}", name="ui_experiment", response_class=HTMLResponse)
    def experiment(
        request: Request,
        experiment_id: str,
        filter: str = "",
        sort: str = "",
        dir: str = "",
        view: str = "tree",
        page: int = Query(1, ge=1, le=10**6),
        size: int = DEFAULT_PAGE_SIZE,
        systags: list[str] = Query(default=[]),
    ) -> Response:
        exp = client.get_experiment(experiment_id)
        size = size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE
        tree = view != "flat"
        error: data.FilterError | None = None
        runs_page = None
        nested_hint = False
        sort_ok = True
        try:
            order = data.Sort.parse(sort, dir)
        except data.FilterError as e:
            error, order, sort_ok = e, data.Sort.parse(None, None), False
        runs = client.synced_store().experiment_runs(exp.experiment_id)
        try:
            runs_page = data.runs_page(runs, filter, order, (page - 1) * size, size, tree)
            if tree and not runs_page.rows and filter.strip() and page == 1:
                nested_hint = data.nested_runs_match(
                    client.synced_store(), exp.experiment_id, filter
                )
        except data.FilterError as e:
            error = e
        stats = runs.stats()
        rows = runs_page.rows if runs_page else []
        columns = data.table_columns((row.run for row in rows), systags)
        state: dict[str, Any] = {
            "filter": filter or None,
            "view": None if tree else "flat",
            "size": size if size != DEFAULT_PAGE_SIZE else None,
            "systags": [key for key in systags if key in columns.system_tags] or None,
        }
        if sort and sort_ok:
            state.update(sort=order.param, dir="desc" if order.descending else "asc")

        def link(**changes: Any) -> str:
            query = {**state, "page": page if page > 1 else None, **changes}
            return pages.url(request, "ui_experiment", query, experiment_id=exp.experiment_id)

        return render(
            request,
            "experiment.html",
            experiment=exp,
            stats=stats,
            filter=filter,
            error=error,
            sort=order,
            tree=tree,
            page=page,
            size=size,
            page_sizes=PAGE_SIZES,
            runs_page=runs_page,
            rows=rows,
            columns=columns,
            state=state,
            link=link,
            nested_hint=nested_hint,
            attribute_columns=data.ATTRIBUTE_COLUMNS,
        )

    @router.get(
        "/experiments/{experiment_id}/series", name="ui_series", response_class=HTMLResponse
    )
    def series(
        request: Request, experiment_id: str, metric: str = "", deployment: str = ""
    ) -> Response:
        exp = client.get_experiment(experiment_id)
        found = data.scheduled_series(
            client.synced_store(), exp.experiment_id, None, deployment or None
        )
        if not metric and found.metric_keys:
            metric = _default_metric(found.metric_keys)
        if metric:
            found = data.scheduled_series(
                client.synced_store(), exp.experiment_id, metric, deployment or None
            )
        chart = {
            "metric": metric,
            "points": found.points,
            "runUrl": pages.url(request, "ui_run", run_id="RUN_ID"),
        }
        return render(
            request,
            "series.html",
            experiment=exp,
            series=found,
            metric=metric,
            deployment=deployment,
            chart=chart,
            charts=True,
        )

    # --- runs -----------------------------------------------------------------------------
    @router.get("/runs/{run_id}", name="ui_run", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str, artifact: str = "") -> Response:
        run = client.get_run(run_id)
        exp = client.get_experiment(run.info.experiment_id)
        histories = data.metric_histories(client, run)
        summaries = data.summarize_metrics(run, histories)
        links = data.run_links(client, run)
        listing, listing_error, listed_dir = _listing(run, artifact)
        preview = preview_error = None
        if artifact and listed_dir != artifacts_view.clean_path(artifact):
            preview, preview_error = _preview(run, artifact)
        chart_data = {key: data.chart_series(points) for key, points in histories.items()}
        environment = data.environment_view(run, _requirements(run))
        return render(
            request,
            "run.html",
            run=run,
            datasets=run_io.dataset_rows(run),
            logged_models=run_io.logged_models(client, run),
            experiment=exp,
            metrics=summaries,
            links=links,
            note=run.data.tags.get(data.NOTE_TAG),
            listing=listing,
            listing_error=listing_error,
            listed_dir=listed_dir,
            preview=preview,
            preview_error=preview_error,
            chart_data=chart_data,
            charts=bool(chart_data),
            crumbs=artifacts_view.breadcrumbs(listed_dir or ""),
            kind=artifacts_view.artifact_kind,
            environment=environment,
        )

    def _requirements(run: Any) -> bytes | None:
        """environment/requirements.txt of the run, when it recorded one we may read."""
        try:
            artifacts = run_artifacts(run)
            content, _ = artifacts.read_head(data.REQUIREMENTS_ARTIFACT, data.REQUIREMENTS_LIMIT)
        except TrackingError:
            return None
        return content

    def _listing(run: Any, path: str) -> tuple[list[Any], Exception | None, str | None]:
        """Entries of the folder to show: `path` itself, or the folder holding the file."""
        try:
            artifacts = run_artifacts(run)
            rel = artifacts_view.clean_path(path)
            folder = rel if artifacts.is_dir(rel) else artifacts_view.parent_dir(rel)
            return artifacts.list(folder), None, folder
        except TrackingError as e:
            return [], e, None

    def _preview(run: Any, path: str) -> tuple[Any, Exception | None]:
        try:
            artifacts = run_artifacts(run)
            return artifacts_view.build_preview(artifacts, path), None
        except TrackingError as e:
            return None, e

    @router.get("/runs/{run_id}/artifacts", name="ui_artifacts", response_class=HTMLResponse)
    def artifact_listing(
        request: Request, run_id: str, path: str = "", fragment: int = 0
    ) -> Response:
        run = client.get_run(run_id)
        artifacts = run_artifacts(run)
        rel = artifacts_view.clean_path(path)
        if rel and not artifacts.is_dir(rel):
            artifacts.info(rel)  # NotFoundError when there is nothing at all
            raise InvalidParameterError(f"{rel!r} is a file, not a folder")
        listing = artifacts.list(rel)
        context: dict[str, Any] = dict(
            run=run,
            listing=listing,
            listed_dir=rel,
            crumbs=artifacts_view.breadcrumbs(rel),
            kind=artifacts_view.artifact_kind,
            listing_error=None,
        )
        if fragment:
            return render(request, "_artifact_list.html", **context)
        exp = client.get_experiment(run.info.experiment_id)
        return render(request, "artifacts.html", experiment=exp, **context)

    @router.get(
        "/runs/{run_id}/artifacts/preview",
        name="ui_artifact_preview",
        response_class=HTMLResponse,
    )
    def artifact_preview(request: Request, run_id: str, path: str, fragment: int = 0) -> Response:
        run = client.get_run(run_id)
        artifacts = run_artifacts(run)
        preview = artifacts_view.build_preview(artifacts, path)
        if fragment:
            return render(request, "_artifact_preview.html", run=run, preview=preview)
        exp = client.get_experiment(run.info.experiment_id)
        return render(
            request,
            "artifact.html",
            run=run,
            experiment=exp,
            preview=preview,
            crumbs=artifacts_view.breadcrumbs(preview.path),
        )

    def _file_response(run_id: str, path: str, download: bool) -> Response:
        run = client.get_run(run_id)
        artifacts = run_artifacts(run)
        rel = artifacts_view.clean_path(path)
        info = artifacts.info(rel)
        if not rel or info.get("type") == "directory":
            raise InvalidParameterError(f"{rel or '/'!r} is a folder; name a file")
        name = posixpath.basename(rel)
        kind = artifacts_view.content_type(rel)
        if not download and artifacts_view.artifact_kind(rel) != "image":
            kind = "text/plain; charset=utf-8" if kind.startswith("text/") else kind
        headers = {
            "Content-Disposition": (
                f"{'attachment' if download else 'inline'}; filename*=UTF-8''{quote(name)}"
            ),
            "Content-Security-Policy": ARTIFACT_CSP,
            "Cache-Control": "private, max-age=0",
        }
        if info.get("size") is not None:
            headers["Content-Length"] = str(info["size"])
        if download:
            kind = "application/octet-stream"
        return StreamingResponse(artifacts.stream(rel), media_type=kind, headers=headers)

    @router.get("/runs/{run_id}/artifacts/raw", name="ui_artifact_raw")
    def artifact_raw(run_id: str, path: str) -> Response:
        return _file_response(run_id, path, download=False)

    @router.get("/runs/{run_id}/artifacts/download", name="ui_artifact_download")
    def artifact_download(run_id: str, path: str) -> Response:
        return _file_response(run_id, path, download=True)

    # --- compare --------------------------------------------------------------------------
    @router.get("/compare", name="ui_compare", response_class=HTMLResponse)
    def compare(
        request: Request, runs: list[str] = Query(default=[]), metric: str = ""
    ) -> Response:
        run_ids = list(dict.fromkeys(i for value in runs for i in value.split(",") if i))
        if not run_ids:
            raise InvalidParameterError("Select runs to compare (at least one)")
        if len(run_ids) > MAX_COMPARE:
            raise InvalidParameterError(f"Compare at most {MAX_COMPARE} runs at once")
        found = [client.get_run(run_id) for run_id in run_ids]
        compared = data.compare_data(found)
        if metric not in compared.metric_keys:
            metric = _default_metric(compared.metric_keys) if compared.metric_keys else ""
        experiment_ids = list(dict.fromkeys(r.info.experiment_id for r in found))
        experiments = {i: client.get_experiment(i) for i in experiment_ids}
        chart = {
            "metric": metric,
            "runIds": run_ids,
            "runNames": [r.info.run_name or r.info.run_id[:8] for r in found],
            "historyUrl": pages.url(request, "ui_metric_history"),
            "parallel": data.parallel_coordinates(compared),
        }
        return render(
            request,
            "compare.html",
            compared=compared,
            metric=metric,
            experiments=experiments,
            chart=chart,
            charts=True,
        )

    @router.get("/data/metric-history", name="ui_metric_history")
    def metric_history(runs: list[str] = Query(default=[]), key: str = "") -> Response:
        run_ids = list(dict.fromkeys(i for value in runs for i in value.split(",") if i))
        if not key or not run_ids or len(run_ids) > MAX_COMPARE:
            raise InvalidParameterError(f"Give a metric key and 1..{MAX_COMPARE} run ids")
        series = data.metric_history_series(client, run_ids, key)
        return JSONResponse(_finite(series))

    return router


def _default_metric(keys: list[str]) -> str:
    """A metric worth showing first: not the tracker's own duration if there is another."""
    preferred = [k for k in keys if not k.startswith("trackflow.")]
    return (preferred or keys)[0]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def create_ui_app(
    tracking_uri: str | None = None, allowed_hosts: Sequence[str] | None = None
) -> FastAPI:
    """A standalone FastAPI app serving the UI at / (what `trackflow ui` runs).

    `allowed_hosts` lists the Host header values answered (fnmatch patterns, "*" = any; None =
    any), against DNS rebinding: the tracking server's own check, 403 for other names.
    """
    hosts = tuple(allowed_hosts) if allowed_hosts else ("*",)
    app = FastAPI(
        title="Trackflow UI",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        middleware=[Middleware(RequestGuardMiddleware, allowed_hosts=hosts)],
    )
    app.include_router(create_ui_router(tracking_uri))
    return app


__all__ = ["create_ui_app", "create_ui_router", "plotly_js_path"]
