"""Registry entities: registered models and their versions (MLflow's shapes and stage names)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tracking.errors import InvalidParameterError

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
#: What a deleted version's meta.yaml says (MLflow's soft delete); never returned to callers.
STAGE_DELETED_INTERNAL = "Deleted_Internal"
ALL_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
#: Stages whose other versions `archive_existing_versions=True` may archive.
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)

STATUS_READY = "READY"


def canonical_stage(stage: object) -> str:
    """'production' -> 'Production'; raise naming the allowed stages otherwise."""
    if isinstance(stage, str):
        for known in ALL_STAGES:
            if stage.strip().lower() == known.lower():
                return known
    raise InvalidParameterError(
        f"Invalid model version stage {stage!r}; allowed: {', '.join(ALL_STAGES)} "
        "(case-insensitive)"
    )


@dataclass
class ModelVersion:
    """One version of a registered model; `version` counts 1, 2, ... per model."""

    name: str
    version: int
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    current_stage: str = STAGE_NONE
    description: str | None = None
    source: str | None = None
    run_id: str | None = None
    run_link: str | None = None
    status: str = STATUS_READY
    status_message: str | None = None
    user_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)


@dataclass
class RegisteredModel:
    """A named model; `latest_versions` holds the newest version of each stage that has one."""

    name: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_versions: list[ModelVersion] = field(default_factory=list)


def latest_per_stage(versions: list[ModelVersion], stages: list[str] | None) -> list[ModelVersion]:
    """The highest version in each requested stage (all four when `stages` is empty), in the
    order of the stages asked for."""
    wanted = [canonical_stage(s) for s in stages] if stages else list(ALL_STAGES)
    best: dict[str, ModelVersion] = {}
    for mv in versions:
        if mv.current_stage in wanted:
            held = best.get(mv.current_stage)
            if held is None or mv.version > held.version:
                best[mv.current_stage] = mv
    return [best[s] for s in dict.fromkeys(wanted) if s in best]
