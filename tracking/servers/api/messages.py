"""MLflow's REST JSON: reading request fields and building response bodies.

Field names, defaults and shapes follow MLflow's ``service.proto`` as its Python client sends
and reads them (protobuf JSON): int64 values may arrive as strings, doubles may be the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, enums arrive as names or numbers, and GET
requests carry repeated fields as repeated query parameters (``?experiment_ids=1&...=2``).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from tracking.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModel,
    Metric,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from tracking.errors import InvalidParameterError
from tracking.validation import INT64_MAX, INT64_MIN

_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MISSING = object()


def missing_error(name: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"Missing value for required parameter '{name}'. "
        "See the API docs for more information about request parameters."
    )


def shown_json(value: Any, limit: int = 200) -> str:
    """`value` as MLflow's server shows it in an error: compact JSON with sorted keys."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid(name: str, value: Any, expected: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"Invalid value {shown_json(value)} for parameter '{name}' supplied: expected {expected}"
    )


def parse_json_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; {} for an empty body."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
        if isinstance(data, str):  # MLflow accepts old clients' double-encoded JSON
            data = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidParameterError("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameterError("The request body must be a JSON object")
    return data


class Fields:
    """The fields of one request: a JSON body, or a query string for GET requests."""

    def __init__(self, data: Mapping[str, Any], multi: Mapping[str, list[str]] | None = None):
        self._data = data
        self._multi = multi  # query parameters: every value of a repeated name

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]]) -> Fields:
        multi: dict[str, list[str]] = {}
        for key, value in items:
            multi.setdefault(key, []).append(value)
        return cls({k: v[0] for k, v in multi.items()}, multi)

    def raw(self, name: str) -> Any:
        return self._data.get(name, _MISSING)

    def with_values(self, values: Mapping[str, str]) -> Fields:
        """These fields with `values` (parts of the request path) set."""
        multi = (
            None if self._multi is None else {**self._multi, **{k: [v] for k, v in values.items()}}
        )
        return Fields({**self._data, **values}, multi)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def has(self, name: str) -> bool:
        return self.raw(name) not in (_MISSING, None)

    def string(self, name: str, *, required: bool = False, default: str | None = None) -> Any:
        value = self.raw(name)
        if value is _MISSING or value is None or (required and value == ""):
            if required:
                raise missing_error(name)
            return default
        if not isinstance(value, str):
            raise invalid(name, value, "a string")
        return value

    def integer(self, name: str, *, required: bool = False, default: int | None = None) -> Any:
        value = self.raw(name)
        if value is _MISSING or value is None or value == "":
            if required:
                raise missing_error(name)
            return default
        return to_int(name, value)

    def strings(self, name: str) -> list[str]:
        if self._multi is not None:
            return list(self._multi.get(name, []))
        value = self.raw(name)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(name, value, "a list of strings")
        return value

    def objects(self, name: str) -> list[dict[str, Any]]:
        value = self.raw(name)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise invalid(name, value, "a list of objects")
        return value

    def run_id(self) -> str:
        """run_id, or its legacy alias run_uuid."""
        value = self.string("run_id") or self.string("run_uuid")
        if not value:
            raise missing_error("run_id")
        return value

    def view_type(self, name: str) -> ViewType:
        value = self.raw(name)
        if value is _MISSING or value is None or value == "":
            return ViewType.ACTIVE_ONLY
        try:
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise KeyError(value)
            return ViewType.parse(value)
        except (KeyError, ValueError):
            raise invalid(name, value, "ACTIVE_ONLY, DELETED_ONLY or ALL") from None


def to_int(name: str, value: Any) -> int:
    """An int64 as protobuf JSON writes it: a number or its decimal text."""
    number = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = int(value.strip())
    if number is None:
        raise invalid(name, value, "an integer")
    if not INT64_MIN <= number <= INT64_MAX:
        raise invalid(name, value, f"a 64-bit integer ({INT64_MIN}..{INT64_MAX})")
    return number


def to_float(name: str, value: Any) -> float:
    """A double as protobuf JSON writes it: a number or "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(value, bool):
        raise invalid(name, value, "a number")
    if isinstance(value, str) and value in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[value]
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except ValueError:
            pass
        except OverflowError:
            raise invalid(name, value, "a number within the range of a 64-bit float") from None
    raise invalid(name, value, "a number")


def to_status(name: str, value: Any) -> str:
    try:
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(value)
        return RunStatus.parse(value).name
    except ValueError:
        allowed = ", ".join(s.name for s in RunStatus)
        raise invalid(name, value, f"one of {allowed}") from None


def entry(where: str, item: Mapping[str, Any], key: str, *, required: bool) -> Any:
    """Field `key` of an object `where` names (e.g. "metrics[3]"; "" for the request)."""
    value = item.get(key)
    if required and (value is None or value == ""):
        raise missing_error(f"{where}.{key}" if where else key)
    return value


# --- responses -------------------------------------------------------------------------------


def float_json(value: float) -> float | str:
    """A double as protobuf JSON writes it (JSON has no NaN or infinities)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def key_value(name: str, index: int, item: dict[str, Any]) -> tuple[str, str]:
    """(key, value) of the object `name[index]` of a request (a tag or a param)."""
    key = entry(f"{name}[{index}]", item, "key", required=True)
    value = item.get("value")
    if not isinstance(key, str) or not isinstance(value, str | int | float | type(None)):
        raise InvalidParameterError(f"Invalid key or value in parameter '{name}[{index}]'")
    return key, "" if value is None else str(value)


def key_values(items: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items.items()]


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
    }
    if experiment.last_update_time is not None:
        out["last_update_time"] = experiment.last_update_time
    if experiment.creation_time is not None:
        out["creation_time"] = experiment.creation_time
    if experiment.tags:
        out["tags"] = key_values(experiment.tags)
    return out


def run_info_json(info: RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_uuid": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "user_id": info.user_id,
        "status": info.status,
    }
    if info.start_time is not None:
        out["start_time"] = info.start_time
    if info.end_time is not None:
        out["end_time"] = info.end_time
    out["artifact_uri"] = info.artifact_uri
    out["lifecycle_stage"] = info.lifecycle_stage
    out["run_id"] = info.run_id
    return out


def metric_json(metric: Metric) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": metric.key,
        "value": float_json(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
    for name in ("dataset_name", "dataset_digest", "model_id", "run_id"):
        if getattr(metric, name) is not None:
            out[name] = getattr(metric, name)
    return out


def dataset_input_json(item: DatasetInput) -> dict[str, Any]:
    dataset = {k: v for k, v in vars(item.dataset).items() if v is not None}
    out: dict[str, Any] = {"dataset": dataset}
    if item.tags:
        out["tags"] = key_values(item.tags)
    return out


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    """A LoggedModel as MLflow's service.proto writes it: {"info", "data"}."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": model.artifact_location,
        "status": model.status.proto_name,
    }
    for name in ("model_type", "source_run_id", "status_message"):
        if getattr(model, name):
            info[name] = getattr(model, name)
    if model.tags:
        info["tags"] = key_values(model.tags)
    data: dict[str, Any] = {}
    if model.params:
        data["params"] = key_values(model.params)
    if model.metrics:
        data["metrics"] = [metric_json(m) for m in model.metrics]
    return {"info": info, "data": data}


def run_json(run: Run, latest: Mapping[str, Metric]) -> dict[str, Any]:
    """A run; `latest` holds each metric's latest point (for its timestamp and step)."""
    data: dict[str, Any] = {}
    if run.data.metrics:
        data["metrics"] = []
        for key, value in run.data.metrics.items():
            point = latest.get(key)
            timestamp, step = (point.timestamp, point.step) if point else (0, 0)
            data["metrics"].append(metric_json(Metric(key, value, timestamp, step)))
    if run.data.params:
        data["params"] = key_values(run.data.params)
    if run.data.tags:
        data["tags"] = key_values(run.data.tags)
    inputs: dict[str, Any] = {}
    if run.inputs.dataset_inputs:
        inputs["dataset_inputs"] = [dataset_input_json(i) for i in run.inputs.dataset_inputs]
    if run.inputs.model_inputs:
        inputs["model_inputs"] = [{"model_id": m} for m in run.inputs.model_inputs]
    outputs: dict[str, Any] = {}
    if run.outputs.model_outputs:
        outputs["model_outputs"] = [vars(o) for o in run.outputs.model_outputs]
    return {"info": run_info_json(run.info), "data": data, "inputs": inputs, "outputs": outputs}


def file_info_json(info: FileInfo, path: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": info.path if path is None else path, "is_dir": info.is_dir}
    if not info.is_dir and info.file_size is not None:
        out["file_size"] = info.file_size
    return out


def dumps(payload: Any) -> bytes:
    """Compact JSON of an answer, by orjson (5-10x faster than json; json for integers beyond
    64 bits). Answers hold no NaN or infinities: `float_json` spells those as strings."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
