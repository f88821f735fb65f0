"""Plain entity objects: experiments, runs and what a run holds (MLflow's shapes)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum

from tracking.errors import InvalidParameterError


def now_ms() -> int:
    """The current time in milliseconds since the epoch (MLflow's timestamps)."""
    return int(time.time() * 1000)


class RunStatus(IntEnum):
    """Run status; the integer is what MLflow's FileStore writes to meta.yaml."""

    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5

    @classmethod
    def parse(cls, value: str | int | RunStatus) -> RunStatus:
        """Accept a status name ("FINISHED") or its integer; InvalidParameterError (a
        ValueError) naming the allowed ones otherwise."""
        if isinstance(value, RunStatus):
            return value
        try:
            return cls(value) if isinstance(value, int) else cls[str(value).upper()]
        except (KeyError, ValueError):
            allowed = ", ".join(s.name for s in cls)
            raise InvalidParameterError(
                f"Unknown run status {value!r}; allowed: {allowed}"
            ) from None

    @staticmethod
    def is_terminated(status: str | int | RunStatus) -> bool:
        return RunStatus.parse(status) in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(IntEnum):
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    def matches(self, stage: str) -> bool:
        if self is ViewType.ALL:
            return True
        return (stage == LifecycleStage.ACTIVE) == (self is ViewType.ACTIVE_ONLY)

    @classmethod
    def parse(cls, value: str | int | ViewType) -> ViewType:
        if isinstance(value, str):
            return cls[value.upper()]
        return cls(value)


@dataclass(frozen=True)
class Metric:
    """One point of a metric's history. MLflow 3 links a point to a LoggedModel (`model_id`)
    and to the dataset it was computed on; `run_id` names the run a model's point came from."""

    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


ExperimentTag = RunTag


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE

    @property
    def run_uuid(self) -> str:
        """MLflow's legacy name for run_id."""
        return self.run_id


@dataclass
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """A dataset as MLflow records it: `source`, `schema` and `profile` are JSON text."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class DatasetInput:
    """A dataset used by a run; the tag `mlflow.data.context` says how (training, eval...)."""

    dataset: Dataset
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedModelOutput:
    """A LoggedModel a run produced, at the step it was logged."""

    model_id: str
    step: int = 0


@dataclass
class RunInputs:
    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    #: ids of the LoggedModels the run used
    model_inputs: list[str] = field(default_factory=list)


@dataclass
class RunOutputs:
    model_outputs: list[LoggedModelOutput] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetSummary:
    """One (dataset, context) pair an experiment's runs used (experiments/search-datasets)."""

    experiment_id: str
    name: str
    digest: str
    context: str | None = None


@dataclass
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)


class LoggedModelStatus(IntEnum):
    """A LoggedModel's status; the integer is what MLflow stores (meta.yaml, SQL)."""

    UNSPECIFIED = 0
    PENDING = 1
    READY = 2
    FAILED = 3

    @property
    def proto_name(self) -> str:
        """The name in MLflow's REST JSON (LOGGED_MODEL_READY, ...)."""
        return _LOGGED_MODEL_STATUS_NAMES[self]

    @classmethod
    def parse(cls, value: str | int | LoggedModelStatus) -> LoggedModelStatus:
        """Accept READY, LOGGED_MODEL_READY or 2; raise ValueError naming the allowed ones."""
        if isinstance(value, str):
            name = value.strip().upper()
            for status, proto in _LOGGED_MODEL_STATUS_NAMES.items():
                if name in (status.name, proto):
                    return status
            if name.isdigit():
                value = int(name)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value in cls._value2member_map_
        ):
            return cls(value)
        allowed = ", ".join(f"{s.name} ({s.value})" for s in cls)
        raise ValueError(f"Unknown logged model status {value!r}; allowed: {allowed}")


_LOGGED_MODEL_STATUS_NAMES = {
    LoggedModelStatus.UNSPECIFIED: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModelStatus.READY: "LOGGED_MODEL_READY",
    LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}


@dataclass
class LoggedModel:
    """An MLflow 3 LoggedModel: a model with its own id (m-<hex>), artifacts, params, tags and
    metrics, usually produced by a run (`source_run_id`). `metrics` holds each metric's latest
    point per dataset."""

    experiment_id: str
    model_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    model_type: str | None = None
    source_run_id: str | None = None
    status: LoggedModelStatus = LoggedModelStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    lifecycle_stage: str = LifecycleStage.ACTIVE

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"


@dataclass(frozen=True)
class FileInfo:
    """One entry of an artifact listing; path is relative to the run's artifact root."""

    path: str
    is_dir: bool
    file_size: int | None


def new_run_info(
    run_id: str,
    experiment_id: str,
    run_name: str,
    user_id: str,
    start_time: int,
    artifact_location: str,
) -> RunInfo:
    """A just-created run: RUNNING, artifacts at `<experiment artifact location>/<id>/artifacts`
    (MLflow's layout; every store follows it, so a run can be planned before it is written)."""
    return RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        run_name=run_name,
        user_id=user_id,
        status=RunStatus.RUNNING.name,
        start_time=start_time,
        end_time=None,
        artifact_uri=f"{artifact_location}/{run_id}/artifacts",
    )
