"""MLflow 3 LoggedModels and dataset inputs: the rules and the search every store shares.

A LoggedModel (id ``m-<32 hex>``) keeps its files under
``<experiment artifact location>/models/<model_id>/artifacts``; its metrics are points logged
with ``model_id`` (MLflow's client sends them with the run's metrics). `search_models` filters,
sorts and pages models in Python for the stores that hold them as files or rows.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracking import search, validation
from tracking.entities import Dataset, DatasetInput, LoggedModel, Metric
from tracking.errors import InvalidParameterError

if TYPE_CHECKING:
    from tracking.stores.base import PagedList

MODELS_FOLDER = "models"
SEARCH_MAX_RESULTS_DEFAULT = 100
#: MLflow's limits for what a run's dataset inputs may hold (utils/validation.py).
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
MAX_DATASETS_PER_BATCH = 1000
#: The input tag saying what a run used a dataset for (training, evaluation, ...).
DATASET_CONTEXT_TAG = "mlflow.data.context"
#: The logged model tag listing the registered versions made from it.
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
_BAD_NAME_CHARACTERS = ("/", ":", ".", "%", '"', "'")


def new_model_id() -> str:
    return "m-" + uuid.uuid4().hex


def is_model_id(value: str) -> bool:
    """Whether `value` looks like a LoggedModel id (m-<32 hex>), as in models:/<model_id>."""
    hex_part = value[2:]
    return (
        value.startswith("m-")
        and len(hex_part) == 32
        and all(c in "0123456789abcdef" for c in hex_part)
    )


def artifact_location(experiment_location: str, model_id: str) -> str:
    """Where a new model's files go: `<experiment location>/models/<model_id>/artifacts`."""
    return f"{experiment_location.rstrip('/')}/{MODELS_FOLDER}/{model_id}/artifacts"


def model_name(name: object) -> str | None:
    """A model name as MLflow accepts it (None: the store picks a random one)."""
    if name is None:
        return None
    if not isinstance(name, str) or not name or any(c in name for c in _BAD_NAME_CHARACTERS):
        raise InvalidParameterError(
            f"Invalid model name ({validation.shown(name)}) provided. Model name must be a "
            f"non-empty string and cannot contain the following characters: {_BAD_NAME_CHARACTERS}"
        )
    return validation.text("Model name", name)


def checked_params(params: Mapping[str, object] | None) -> dict[str, str]:
    """A model's params: run param rules for keys and values."""
    return {k: validation.param_value(k, v) for k, v in (params or {}).items()}


def checked_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    """A model's tags: run tag rules for keys and values."""
    return {k: validation.tag_value(k, v) for k, v in (tags or {}).items()}


def _limited(what: str, value: object, limit: int | None, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise InvalidParameterError(f"{what} cannot be None")
        return None
    if not isinstance(value, str):
        raise InvalidParameterError(f"{what} must be a string, got {validation.shown(value)}")
    if limit is not None and len(value) > limit:
        name = what.rsplit(" ", 1)[-1]
        raise InvalidParameterError(f"'{name}' exceeds the maximum length of {limit} characters")
    return validation.text(what, value)


def checked_dataset_inputs(inputs: Iterable[DatasetInput]) -> list[DatasetInput]:
    """Dataset inputs within MLflow's limits; duplicates (same name and digest) dropped, the
    first one kept."""
    found: dict[tuple[str, str], DatasetInput] = {}
    for item in inputs:
        dataset = item.dataset
        if dataset is None:
            raise InvalidParameterError("Dataset cannot be None")
        _limited("Dataset name", dataset.name, MAX_DATASET_NAME_SIZE)
        _limited("Dataset digest", dataset.digest, MAX_DATASET_DIGEST_SIZE)
        _limited("Dataset source_type", dataset.source_type, None)
        _limited("Dataset source", dataset.source, MAX_DATASET_SOURCE_SIZE)
        _limited("Dataset schema", dataset.schema, MAX_DATASET_SCHEMA_SIZE, required=False)
        _limited("Dataset profile", dataset.profile, MAX_DATASET_PROFILE_SIZE, required=False)
        for key, value in item.tags.items():
            _limited("InputTag key", key, MAX_INPUT_TAG_KEY_SIZE)
            _limited("InputTag value", value, MAX_INPUT_TAG_VALUE_SIZE)
        found.setdefault((dataset.name, dataset.digest), item)
    if len(found) > MAX_DATASETS_PER_BATCH:
        raise InvalidParameterError(
            f"A run may log at most {MAX_DATASETS_PER_BATCH} datasets in one call, got {len(found)}"
        )
    return list(found.values())


def dataset_from_dict(values: Mapping[str, Any]) -> Dataset:
    """A Dataset from MLflow's meta.yaml / JSON keys."""
    return Dataset(
        name=str(values["name"]),
        digest=str(values["digest"]),
        source_type=str(values["source_type"]),
        source=str(values["source"]),
        schema=values.get("schema"),
        profile=values.get("profile"),
    )


def latest_points(points: Iterable[Metric]) -> list[Metric]:
    """Each metric's latest point (highest step, timestamp, value) per dataset, as a model's
    `metrics` lists them."""
    best: dict[tuple[str, str | None, str | None], Metric] = {}
    for point in points:
        group = (point.key, point.dataset_name, point.dataset_digest)
        held = best.get(group)
        if held is None or (point.step, point.timestamp, point.value) >= (
            held.step,
            held.timestamp,
            held.value,
        ):
            best[group] = point
    return list(best.values())


# --- search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetFilter:
    """Only metrics computed on this dataset count (search_logged_models' `datasets`)."""

    dataset_name: str
    dataset_digest: str | None = None

    def covers(self, metric: Metric) -> bool:
        return metric.dataset_name == self.dataset_name and (
            self.dataset_digest is None or metric.dataset_digest == self.dataset_digest
        )


@dataclass(frozen=True)
class ModelOrder:
    """One search_logged_models order_by entry."""

    field: search.OrderBy
    dataset: DatasetFilter | None = None


def dataset_filters(datasets: Sequence[Mapping[str, Any]] | None) -> list[DatasetFilter]:
    found = []
    for entry in datasets or []:
        if not isinstance(entry, Mapping) or not entry.get("dataset_name"):
            raise InvalidParameterError(
                "`dataset_name` in the `datasets` clause must be specified."
            )
        found.append(DatasetFilter(str(entry["dataset_name"]), entry.get("dataset_digest") or None))
    return found


def model_orders(order_by: Sequence[Mapping[str, Any]] | None) -> list[ModelOrder]:
    """Parse order_by entries ({"field_name", "ascending", "dataset_name", "dataset_digest"})."""
    found = []
    for entry in order_by or []:
        if not isinstance(entry, Mapping):
            raise InvalidParameterError("`order_by` must be a list of dictionaries.")
        field_name = entry.get("field_name")
        if not isinstance(field_name, str) or not field_name.strip():
            raise InvalidParameterError("`field_name` in the `order_by` clause must be specified.")
        ascending = entry.get("ascending", True)
        if ascending is None:
            ascending = True
        if not isinstance(ascending, bool):
            raise InvalidParameterError(
                "Value of `ascending` in the `order_by` clause must be a boolean, got "
                f"{type(ascending)} for field {field_name}."
            )
        parsed = search.parse_logged_model_order_field(field_name.strip())
        if parsed.entity not in (search.ATTRIBUTE, search.METRIC):
            raise InvalidParameterError(
                f"Invalid order by field name: {field_name}. Only metrics are supported."
            )
        dataset_name, digest = entry.get("dataset_name"), entry.get("dataset_digest")
        if digest and not dataset_name:
            raise InvalidParameterError(
                "`dataset_digest` can only be specified if `dataset_name` is also specified."
            )
        dataset = DatasetFilter(dataset_name, digest or None) if dataset_name else None
        found.append(ModelOrder(search.OrderBy(parsed.entity, parsed.key, ascending), dataset))
    return found


_TIE_BREAK = (
    search.OrderBy(search.ATTRIBUTE, "creation_timestamp", False),
    search.OrderBy(search.ATTRIBUTE, "model_id", True),
)


class _ModelView:
    """A LoggedModel through the accessors `tracking.search` evaluates."""

    def __init__(self, model: LoggedModel, datasets: Sequence[DatasetFilter] = ()) -> None:
        self.model = model
        self.datasets = datasets

    def attribute(self, key: str) -> str | int | None:
        if key == "status":
            return self.model.status.name
        value = getattr(self.model, key, None)
        return value if value is None or isinstance(value, int) else str(value)

    def metric(self, key: str) -> float | None:
        points = [m for m in self.model.metrics if m.key == key]
        if self.datasets:
            points = [m for m in points if any(d.covers(m) for d in self.datasets)]
        if not points:
            return None
        return max(points, key=lambda m: (m.timestamp, m.step)).value

    def param(self, key: str) -> str | None:
        return self.model.params.get(key)

    def tag(self, key: str) -> str | None:
        return self.model.tags.get(key)


def search_models(
    models: Iterable[LoggedModel],
    filter_string: str | None,
    datasets: Sequence[Mapping[str, Any]] | None,
    order_by: Sequence[Mapping[str, Any]] | None,
    max_results: int | None,
    page_token: str | None,
) -> PagedList[LoggedModel]:
    """One page of `models` filtered by MLflow's rules (metric comparisons look at metrics on
    `datasets` when given; with `datasets` and no metric comparison, a model needs a metric on
    one of them), ordered by `order_by`, then newest first."""
    from tracking.stores.base import check_max_results, page_of

    comparisons = search.parse_logged_model_filter(filter_string)
    filters = dataset_filters(datasets)
    orders = model_orders(order_by)
    limit = check_max_results(max_results or SEARCH_MAX_RESULTS_DEFAULT)
    found = []
    metric_filter = any(c.entity == search.METRIC for c in comparisons)
    for model in models:
        if (
            filters
            and not metric_filter
            and not any(d.covers(m) for m in model.metrics for d in filters)
        ):
            continue
        if search.run_matches(comparisons, _ModelView(model, filters)):
            found.append(model)
    ordered = search.sort_items(found, _TIE_BREAK, _ModelView)
    for order in reversed(orders):  # stable sorts, least significant first
        scope = [order.dataset] if order.dataset else []
        ordered = search.sort_items(ordered, [order.field], functools.partial(_view, scope=scope))
    return page_of(ordered, limit, page_token)


def _view(model: LoggedModel, scope: list[DatasetFilter]) -> _ModelView:
    return _ModelView(model, scope)
