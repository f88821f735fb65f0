"""MLflow's tracking REST API (``/api/2.0/mlflow/...``) over a Trackflow store.

Each endpoint is a plain function ``(context, fields) -> dict`` run in a worker thread (the
stores block); `ROUTES` lists them with the HTTP methods MLflow's client uses, for
`tracking.servers.api.dispatch.ApiDispatcher`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tracking import system_tags, validation
from tracking.artifacts import is_proxy_uri
from tracking.entities import Metric, Param, Run, RunTag, now_ms
from tracking.errors import InvalidParameterError, NotFoundError
from tracking.servers.api import messages
from tracking.servers.api.messages import Fields, entry, key_value, to_float, to_int, to_status
from tracking.servers.api.security import contained, request_path
from tracking.stores.base import SEARCH_MAX_RESULTS_DEFAULT, decode_page_token, encode_page_token

if TYPE_CHECKING:
    from tracking.servers.api.app import ServerContext

MAX_METRIC_HISTORY_RESULTS = 1_000_000

Handler = Callable[["ServerContext", Fields], dict[str, Any]]
ROUTES: list[tuple[str, tuple[str, ...], Handler]] = []
#: Endpoints that make one short transaction on one run or experiment (the hot ones).
QUICK: set[Handler] = set()


def route(path: str, *methods: str, quick: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((path, methods, handler))
        if quick:
            QUICK.add(handler)
        return handler

    return register


# --- experiments ------------------------------------------------------------------------------


@route("/experiments/create", "POST")
def create_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    name = f.string("name", required=True)
    location = f.string("artifact_location") or None
    if location is not None:
        location = validation.absolute_location(validation.artifact_location(location))
        ctx.check_artifact_location(location)
    tags = dict(key_value("tags", i, t) for i, t in enumerate(f.objects("tags")))
    experiment_id = ctx.store.create_experiment(name, location, tags)
    return {"experiment_id": experiment_id}


@route("/experiments/get", "GET", quick=True)
def get_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    experiment = ctx.store.get_experiment(f.string("experiment_id", required=True))
    return {"experiment": messages.experiment_json(experiment)}


@route("/experiments/get-by-name", "GET", quick=True)
def get_experiment_by_name(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    name = f.string("experiment_name", required=True)
    experiment = ctx.store.get_experiment_by_name(name)
    if experiment is None:
        raise NotFoundError(f"Could not find experiment with name '{name}'")
    return {"experiment": messages.experiment_json(experiment)}


@route("/experiments/search", "GET", "POST")
def search_experiments(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    page = ctx.store.search_experiments(
        view_type=f.view_type("view_type"),
        max_results=f.integer("max_results", default=SEARCH_MAX_RESULTS_DEFAULT),
        filter_string=f.string("filter") or None,
        order_by=f.strings("order_by") or None,
        page_token=f.string("page_token") or None,
    )
    out: dict[str, Any] = {"experiments": [messages.experiment_json(e) for e in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@route("/experiments/update", "POST")
def update_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    experiment_id = f.string("experiment_id", required=True)
    new_name = f.string("new_name")
    if new_name:
        ctx.store.rename_experiment(experiment_id, new_name)
    else:
        ctx.store.get_experiment(experiment_id)
    return {}


@route("/experiments/delete", "POST")
def delete_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.delete_experiment(f.string("experiment_id", required=True))
    return {}


@route("/experiments/restore", "POST")
def restore_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.restore_experiment(f.string("experiment_id", required=True))
    return {}


@route("/experiments/set-experiment-tag", "POST")
def set_experiment_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    tag = RunTag(f.string("key", required=True), f.string("value", default=""))
    ctx.store.set_experiment_tag(f.string("experiment_id", required=True), tag)
    return {}


@route("/experiments/delete-experiment-tag", "POST")
def delete_experiment_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    experiment_id = f.string("experiment_id", required=True)
    ctx.store.delete_experiment_tag(experiment_id, f.string("key", required=True))
    return {}


# --- runs -------------------------------------------------------------------------------------


def _runs_json(ctx: ServerContext, runs: list[Run]) -> list[dict[str, Any]]:
    """Runs as MLflow shows them: data.metrics holds each latest value with its timestamp
    and step, which the stores' RunData (values only) lacks."""
    latest = ctx.store.get_latest_metrics([run.info.run_id for run in runs])
    return [messages.run_json(run, latest.get(run.info.run_id, {})) for run in runs]


def _run_json(ctx: ServerContext, run: Run) -> dict[str, Any]:
    return _runs_json(ctx, [run])[0]


@route("/runs/create", "POST", quick=True)
def create_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    tags = [RunTag(*key_value("tags", i, t)) for i, t in enumerate(f.objects("tags"))]
    tag_name = next((t.value for t in tags if t.key == system_tags.RUN_NAME), None)
    run_name = f.string("run_name") or tag_name or system_tags.random_run_name()
    run = ctx.store.create_run(
        experiment_id=f.string("experiment_id") or "0",
        user_id=f.string("user_id", default=""),
        start_time=f.integer("start_time", default=None) or now_ms(),
        tags=tags,
        run_name=run_name,
        run_id=f.string("run_id") or None,  # Trackflow extension: Prefect-chosen run ids
    )
    return {"run": messages.run_json(run, {})}  # a new run has no metrics yet


@route("/runs/get", "GET", quick=True)
def get_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    return {"run": _run_json(ctx, ctx.store.get_run(f.run_id()))}


@route("/runs/update", "POST", quick=True)
def update_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    status = to_status("status", f.raw("status")) if f.has("status") else None
    info = ctx.store.update_run_info(
        f.run_id(),
        run_status=status,
        end_time=f.integer("end_time"),
        run_name=f.string("run_name") or None,
    )
    return {"run_info": messages.run_info_json(info)}


@route("/runs/delete", "POST")
def delete_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.delete_run(f.run_id())
    return {}


@route("/runs/restore", "POST")
def restore_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.restore_run(f.run_id())
    return {}


@route("/runs/search", "POST", "GET")
def search_runs(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    page = ctx.store.search_runs(
        experiment_ids=f.strings("experiment_ids"),
        filter_string=f.string("filter") or None,
        run_view_type=f.view_type("run_view_type"),
        max_results=f.integer("max_results", default=SEARCH_MAX_RESULTS_DEFAULT),
        order_by=f.strings("order_by") or None,
        page_token=f.string("page_token") or None,
    )
    out: dict[str, Any] = {"runs": _runs_json(ctx, list(page))}
    if page.token:
        out["next_page_token"] = page.token
    return out


def _metric(item: dict[str, Any], where: str = "") -> Metric:
    """A metric from a JSON object: key, value and timestamp required, step defaults to 0."""
    prefix = f"{where}." if where else ""
    key = entry(where, item, "key", required=True)
    if not isinstance(key, str):
        raise messages.invalid(f"{prefix}key", key, "a string")
    value = entry(where, item, "value", required=True)
    timestamp = entry(where, item, "timestamp", required=True)
    step = item.get("step")
    links = {}
    for name in ("model_id", "dataset_name", "dataset_digest"):
        link = item.get(name)
        if link not in (None, ""):
            if not isinstance(link, str):
                raise messages.invalid(f"{prefix}{name}", link, "a string")
            links[name] = link
    return Metric(
        key=key,
        value=to_float(f"{prefix}value", value),
        timestamp=to_int(f"{prefix}timestamp", timestamp),
        step=0 if step in (None, "") else to_int(f"{prefix}step", step),
        **links,
    )


@route("/runs/log-metric", "POST", quick=True)
def log_metric(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    ctx.store.log_metric(run_id, _metric(f.as_dict()))
    return {}


@route("/runs/log-parameter", "POST", quick=True)
def log_param(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    param = Param(f.string("key", required=True), f.string("value", default=""))
    ctx.store.log_param(run_id, param)
    return {}


@route("/runs/set-tag", "POST", quick=True)
def set_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    tag = RunTag(f.string("key", required=True), f.string("value", default=""))
    ctx.store.set_tag(run_id, tag)
    return {}


@route("/runs/delete-tag", "POST", quick=True)
def delete_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.delete_tag(f.run_id(), f.string("key", required=True))
    return {}


@route("/runs/log-batch", "POST")
def log_batch(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    metrics = [_metric(m, f"metrics[{i}]") for i, m in enumerate(f.objects("metrics"))]
    params = [Param(*key_value("params", i, p)) for i, p in enumerate(f.objects("params"))]
    tags = [RunTag(*key_value("tags", i, t)) for i, t in enumerate(f.objects("tags"))]
    ctx.store.log_batch(run_id, metrics, params, tags)
    return {}


@route("/metrics/get-history", "GET")
def get_metric_history(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    key = f.string("metric_key", required=True)
    max_results = f.integer("max_results")
    if max_results is not None and not 0 < max_results <= MAX_METRIC_HISTORY_RESULTS:
        raise InvalidParameterError(
            f"Invalid value {max_results} for parameter 'max_results' supplied: "
            f"expected an integer in 1..{MAX_METRIC_HISTORY_RESULTS}"
        )
    history = ctx.store.get_metric_history(run_id, key)
    start = decode_page_token(f.string("page_token") or None)
    end = len(history) if max_results is None else start + max_results
    out: dict[str, Any] = {"metrics": [messages.metric_json(m) for m in history[start:end]]}
    if end < len(history):
        out["next_page_token"] = encode_page_token(end)
    return out


# --- artifacts (metadata) ---------------------------------------------------------------------


def list_under(ctx: ServerContext, root: str, path: str | None) -> list[dict[str, Any]]:
    """The entries of folder `path` under an artifact root (a run's or a model's), read by the
    served-roots rule."""
    rel = request_path(path or None)
    if is_proxy_uri(root):
        destination, prefix = ctx.proxied_location(root)
        full = f"{prefix}/{rel}" if rel else prefix
        infos = destination.list(full)
        return [messages.file_info_json(i, i.path[len(prefix) :].lstrip("/")) for i in infos]
    repo = ctx.server_side_repository(root)
    if repo.protocol == "file":
        contained(ctx.real_local_root(repo), rel)
    return [messages.file_info_json(i) for i in repo.list_artifacts(rel or None)]


@route("/artifacts/list", "GET")
def list_artifacts(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    root = ctx.store.get_run(f.run_id()).info.artifact_uri
    return {"root_uri": root, "files": list_under(ctx, root, f.string("path"))}
