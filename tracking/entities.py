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
    key: str
    value: float
    timestamp: int
    step: int = 0


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


@dataclass
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)


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
