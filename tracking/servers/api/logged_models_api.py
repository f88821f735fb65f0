"""MLflow 3's REST endpoints: LoggedModels (``/logged-models/...``), a run's dataset inputs and
model outputs (``runs/log-inputs``, ``runs/outputs``), ``experiments/search-datasets`` and the
bulk metric histories MLflow's UI charts ask for. Shapes follow MLflow's service.proto."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tracking import metric_history
from tracking.entities import Dataset, DatasetInput, LoggedModelOutput, LoggedModelStatus
from tracking.errors import InvalidParameterError
from tracking.servers.api import messages
from tracking.servers.api.messages import Fields, entry, to_int
from tracking.servers.api.rest_api import list_under

if TYPE_CHECKING:
    from tracking.servers.api.app import ServerContext

Handler = Callable[["ServerContext", Fields], dict[str, Any]]
ROUTES: list[tuple[str, tuple[str, ...], Handler]] = []
MAX_EXPERIMENT_IDS_PER_DATASET_SEARCH = 20


def route(path: str, *methods: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((path, methods, handler))
        return handler

    return register


def _pairs(f: Fields, name: str) -> dict[str, str]:
    """A repeated {key, value} field as a dict; values must be strings."""
    found = {}
    for index, item in enumerate(f.objects(name)):
        key = entry(f"{name}[{index}]", item, "key", required=True)
        value = item.get("value", "")
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidParameterError(
                f"Invalid value {messages.shown_json(item)} for parameter '{name}' supplied: "
                "expected objects with string 'key' and 'value'"
            )
        found[key] = value
    return found


def _model(ctx: ServerContext, model_id: str) -> dict[str, Any]:
    return {"model": messages.logged_model_json(ctx.store.get_logged_model(model_id))}


# --- logged models -----------------------------------------------------------------------------


@route("/logged-models", "POST")
def create_logged_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    model = ctx.store.create_logged_model(
        experiment_id=f.string("experiment_id", required=True),
        name=f.string("name") or None,
        source_run_id=f.string("source_run_id") or None,
        tags=_pairs(f, "tags"),
        params=_pairs(f, "params"),
        model_type=f.string("model_type") or None,
    )
    return {"model": messages.logged_model_json(model)}


@route("/logged-models/{model_id}", "GET")
def get_logged_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    allow_deleted = str(f.raw("allow_deleted")).lower() == "true"
    model = ctx.store.get_logged_model(f.string("model_id"), allow_deleted=allow_deleted)
    return {"model": messages.logged_model_json(model)}


@route("/logged-models/{model_id}", "PATCH")
def finalize_logged_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    if not f.has("status"):
        raise messages.missing_error("status")
    raw = f.raw("status")
    try:
        status = LoggedModelStatus.parse(raw)
    except ValueError:
        raise messages.invalid(
            "status", raw, "one of " + ", ".join(s.proto_name for s in LoggedModelStatus)
        ) from None
    model = ctx.store.finalize_logged_model(f.string("model_id"), status)
    return {"model": messages.logged_model_json(model)}


@route("/logged-models/{model_id}", "DELETE")
def delete_logged_model(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.delete_logged_model(f.string("model_id"))
    return {}


@route("/logged-models/{model_id}/tags", "PATCH")
def set_logged_model_tags(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.set_logged_model_tags(f.string("model_id"), _pairs(f, "tags"))
    return {}


@route("/logged-models/{model_id}/tags/{tag_key:path}", "DELETE")
def delete_logged_model_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.delete_logged_model_tag(f.string("model_id"), f.string("tag_key"))
    return {}


@route("/logged-models/{model_id}/params", "POST")
def log_logged_model_params(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.store.log_logged_model_params(f.string("model_id"), _pairs(f, "params"))
    return {}


@route("/logged-models/search", "POST")
def search_logged_models(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    if not f.has("experiment_ids"):
        raise messages.missing_error("experiment_ids")
    page = ctx.store.search_logged_models(
        experiment_ids=f.strings("experiment_ids"),
        filter_string=f.string("filter") or None,
        datasets=f.objects("datasets") or None,
        max_results=f.integer("max_results") or None,
        order_by=f.objects("order_by") or None,
        page_token=f.string("page_token") or None,
    )
    out: dict[str, Any] = {"models": [messages.logged_model_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@route("/logged-models/{model_id}/artifacts/directories", "GET")
def list_logged_model_artifacts(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    root = ctx.store.get_logged_model(f.string("model_id")).artifact_location
    files = list_under(ctx, root, f.string("artifact_directory_path"))
    return {"root_uri": root, "files": files}


# --- dataset inputs and model outputs ------------------------------------------------------------


def _dataset_input(index: int, item: dict[str, Any]) -> DatasetInput:
    where = f"datasets[{index}]"
    values = entry(where, item, "dataset", required=True)
    if not isinstance(values, dict):
        raise messages.invalid(f"{where}.dataset", values, "an object")
    fields = Fields(values)
    dataset = Dataset(
        name=fields.string("name", required=True),
        digest=fields.string("digest", required=True),
        source_type=fields.string("source_type", required=True),
        source=fields.string("source", required=True),
        schema=fields.string("schema"),
        profile=fields.string("profile"),
    )
    return DatasetInput(dataset, _pairs(Fields(item), "tags"))


@route("/runs/log-inputs", "POST")
def log_inputs(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    datasets = [_dataset_input(i, item) for i, item in enumerate(f.objects("datasets"))]
    models = [
        entry(f"models[{i}]", item, "model_id", required=True)
        for i, item in enumerate(f.objects("models"))
    ]
    ctx.store.log_inputs(run_id, datasets, [str(m) for m in models])
    return {}


@route("/runs/outputs", "POST")
def log_outputs(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    outputs = [
        LoggedModelOutput(
            str(entry(f"models[{i}]", item, "model_id", required=True)),
            to_int(f"models[{i}].step", item.get("step", 0)),
        )
        for i, item in enumerate(f.objects("models"))
    ]
    ctx.store.log_outputs(run_id, outputs)
    return {}


@route("/experiments/search-datasets", "POST")
def search_datasets(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    experiment_ids = f.strings("experiment_ids")
    if not experiment_ids:
        raise InvalidParameterError(
            "SearchDatasets request must specify at least one experiment_id."
        )
    if len(experiment_ids) > MAX_EXPERIMENT_IDS_PER_DATASET_SEARCH:
        raise InvalidParameterError(
            "SearchDatasets request cannot specify more than "
            f"{MAX_EXPERIMENT_IDS_PER_DATASET_SEARCH} experiment_ids. Received "
            f"{len(experiment_ids)} experiment_ids."
        )
    summaries = ctx.store.search_datasets(experiment_ids)
    return {
        "dataset_summaries": [
            {k: v for k, v in vars(s).items() if v is not None} for s in summaries
        ]
    }


# --- metric histories of many runs ---------------------------------------------------------------


@route("/metrics/get-history-bulk", "GET")
def get_metric_history_bulk(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_ids = f.strings("run_id")
    if not run_ids:
        raise InvalidParameterError(
            "GetMetricHistoryBulk request must specify at least one run_id."
        )
    if len(run_ids) > metric_history.MAX_RUNS_PER_REQUEST:
        raise InvalidParameterError(
            "GetMetricHistoryBulk request cannot specify more than "
            f"{metric_history.MAX_RUNS_PER_REQUEST} run_ids. Received {len(run_ids)} run_ids."
        )
    key = f.string("metric_key")
    if key is None:
        raise InvalidParameterError("GetMetricHistoryBulk request must specify a metric_key.")
    limit = metric_history.MAX_BULK_HISTORY_RESULTS
    max_results = min(f.integer("max_results", default=limit), limit)
    points = ctx.store.get_metric_history_bulk(run_ids, key, max_results)
    return {"metrics": [messages.metric_json(m) for m in points]}


@route("/metrics/get-history-bulk-interval", "GET")
def get_metric_history_bulk_interval(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_ids = f.strings("run_ids")
    if not run_ids:
        raise messages.missing_error("run_ids")
    if len(run_ids) > metric_history.MAX_RUNS_PER_REQUEST:
        raise InvalidParameterError(
            "GetMetricHistoryBulkInterval request must specify at most "
            f"{metric_history.MAX_RUNS_PER_REQUEST} run_ids. Received {len(run_ids)} run_ids."
        )
    key = f.string("metric_key", required=True)
    max_results = f.integer("max_results", default=metric_history.MAX_RESULTS_PER_RUN)
    if not 1 <= max_results <= metric_history.MAX_RESULTS_PER_RUN:
        raise InvalidParameterError(
            f"max_results must be between 1 and {metric_history.MAX_RESULTS_PER_RUN}."
        )
    points = ctx.store.get_metric_history_bulk_interval(
        run_ids, key, max_results, f.integer("start_step"), f.integer("end_step")
    )
    return {"metrics": [messages.metric_json(m) for m in points]}
