"""Run a recorded run again, and compare: same entry point, same commit (the recorded diff
applied when the work tree was dirty), same parameters, in the recorded environment
(`virtualenv` / `uv`) or the current one (`local`, with a warning naming the packages whose
versions differ). The new run carries `trackflow.reproduced_from`."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from tracking import fluent, git, run_environment, system_tags
from tracking.client import TrackingClient
from tracking.entities import Run
from tracking.errors import NotFoundError
from tracking.projects import environments, progress, runner, sources
from tracking.projects.environments import EnvSpec
from tracking.projects.errors import ExecutionError

TIMING_METRICS = ("trackflow.duration_seconds",)  # shown, never checked
TASK_NAME_TAG = "prefect.task_name"
FLOW_RUN_ID_TAG = "prefect.flow_run_id"


@dataclass(frozen=True)
class ParamRow:
    key: str
    recorded: str | None
    new: str | None

    @property
    def equal(self) -> bool:
        return self.recorded == self.new


@dataclass(frozen=True)
class MetricRow:
    scope: str  # "run", or the task run: task name, with its call number when repeated
    key: str
    recorded: float | None
    new: float | None

    @property
    def difference(self) -> float | None:
        if self.recorded is None or self.new is None:
            return None
        return self.new - self.recorded

    @property
    def checked(self) -> bool:
        return self.key not in TIMING_METRICS

    def within(self, tolerance: float) -> bool:
        """Both values there and at most `tolerance` apart (NaN equals NaN)."""
        if self.recorded is None or self.new is None:
            return False
        if math.isnan(self.recorded) or math.isnan(self.new):
            return math.isnan(self.recorded) and math.isnan(self.new)
        return abs(self.new - self.recorded) <= tolerance


@dataclass
class Comparison:
    """The recorded run, its reproduction, and how their params and metrics compare."""

    recorded: Run
    new: Run
    params: list[ParamRow]
    metrics: list[MetricRow]
    warnings: list[str] = field(default_factory=list)

    def differing(self, tolerance: float) -> list[MetricRow]:
        """Checked metrics missing on one side or further apart than `tolerance`."""
        return [m for m in self.metrics if m.checked and not m.within(tolerance)]

    def reproduced(self, tolerance: float) -> bool:
        """The new run finished and every checked metric is within `tolerance`."""
        return self.new.info.status == "FINISHED" and not self.differing(tolerance)


def reproduce(
    run_id: str,
    env_manager: str | None = None,
    experiment_name: str | None = None,
) -> Comparison:
    """Run the recorded run `run_id` again (see the module's docstring); the comparison."""
    manager = environments.check_manager(env_manager)
    client = fluent.current_client()
    recorded = client.get_run(run_id)
    tags = recorded.data.tags
    entry_point, subdirectory = _entry_point(recorded)
    warnings: list[str] = []
    env_spec = _environment(client, recorded, manager, warnings)
    request = runner.Request(
        entry_point=entry_point,
        parameters=_parameters(recorded),
        manager=manager,
        experiment_name=experiment_name,
        experiment_id=None if experiment_name else recorded.info.experiment_id,
        env_spec=env_spec,
        tags={runner.REPRODUCED_FROM_TAG: run_id},
    )
    commit = tags.get(system_tags.GIT_COMMIT)
    if not commit:
        raise ExecutionError(
            f"Run {run_id} recorded no git commit: its code cannot be checked out again"
        )
    url = _repository(recorded)
    diff = _recorded_diff(client, recorded)
    uri = f"{url}#{subdirectory}" if subdirectory else url
    with sources.cloned(url, commit, subdirectory, uri) as source:
        if diff:
            git.apply(source.root, diff)
        submitted = runner.execute(source, request)
    new = submitted.run
    return Comparison(
        recorded,
        new,
        _param_rows(recorded, new),
        _metric_rows(recorded, new),
        warnings,
    )


def _entry_point(run: Run) -> tuple[str, str]:
    """(entry point, project folder inside the repository) the run was started from."""
    tags = run.data.tags
    if tags.get(system_tags.SOURCE_TYPE) == runner.PROJECT_SOURCE_TYPE and (
        runner.ENTRY_POINT_TAG in tags
    ):
        return tags[runner.ENTRY_POINT_TAG], tags.get(runner.SUBDIRECTORY_TAG, "")
    if run_environment.ENTRYPOINT_TAG in tags:
        entry = tags[run_environment.ENTRYPOINT_TAG]
        if os.path.isabs(entry.partition(":")[0]):
            raise ExecutionError(
                f"Run {run.info.run_id} ran {entry}, outside any git repository: its code "
                "cannot be checked out again"
            )
        return entry, ""
    raise ExecutionError(
        f"Run {run.info.run_id} recorded no entry point: only project runs, flow runs and "
        "runs started with start_run(log_environment=True) can be reproduced"
    )


def _parameters(run: Run) -> dict[str, str]:
    """The params the run was given: those its project passed to the command when it says
    which; else all of them (a flow keeps those that are parameters of it)."""
    given = run.data.tags.get(runner.PARAMETERS_TAG)
    params = run.data.params
    if given is None:
        return dict(params)
    return {k: params[k] for k in json.loads(given) if k in params}


def _repository(run: Run) -> str:
    """The recorded work tree when it is still on this machine, else the recorded URL."""
    tags = run.data.tags
    root = tags.get(run_environment.GIT_ROOT_TAG)
    if root and os.path.isdir(root):
        return root
    url = tags.get(run_environment.GIT_REPO_URL_TAG)
    if url:
        return url
    raise ExecutionError(
        f"Run {run.info.run_id} recorded no repository URL, and its work tree "
        f"{root or '(unknown)'} is not on this machine"
    )


def _recorded_diff(client: TrackingClient, run: Run) -> bytes:
    tags = run.data.tags
    if tags.get(run_environment.GIT_DIRTY_TAG) != "true":
        return b""
    if tags.get(run_environment.DIFF_TRUNCATED_TAG) == "true":
        raise ExecutionError(
            f"Run {run.info.run_id} ran in a dirty work tree whose diff was too large to record "
            f"in full (see environment/{run_environment.DIFF_FILE} and "
            f"${run_environment.MAX_DIFF_ENV}): its code cannot be restored"
        )
    return _artifact(client, run, run_environment.DIFF_FILE) or b""


def _artifact(client: TrackingClient, run: Run, name: str) -> bytes | None:
    """environment/<name> of the run, or None when it has none."""
    repo = client.artifact_repo_at(run.info.artifact_uri)
    with tempfile.TemporaryDirectory(prefix="trackflow-reproduce-") as folder:
        try:
            path = repo.download_artifacts(f"{run_environment.ARTIFACT_DIR}/{name}", folder)
        except NotFoundError:
            return None
        with open(path, "rb") as f:
            return f.read()


def _environment(
    client: TrackingClient, run: Run, manager: str, warnings: list[str]
) -> EnvSpec | None:
    """The recorded environment to build; for `local`, warn about differing packages."""
    requirements = _artifact(client, run, run_environment.REQUIREMENTS_FILE)
    python_env = _artifact(client, run, run_environment.PYTHON_ENV_FILE)
    if manager != "local":
        if requirements is None or python_env is None:
            raise ExecutionError(
                f"Run {run.info.run_id} recorded no environment (environment/"
                f"{run_environment.REQUIREMENTS_FILE}); reproduce it with --env-manager local"
            )
        return EnvSpec.recorded(python_env.decode(), requirements.decode())
    if requirements is None:
        warnings.append(f"Run {run.info.run_id} recorded no environment to compare with")
    else:
        recorded = run_environment.parse_requirements(requirements.decode())
        here = run_environment.distributions()
        changed = [
            f"{name} {version} (here: {here[key][1] if key in here else 'not installed'})"
            for key, (name, version) in sorted(recorded.items())
            if key != "trackflow" and (key not in here or here[key][1] != version)
        ]
        if changed:
            warnings.append(
                f"{len(changed)} packages differ from the recorded environment: "
                + ", ".join(changed)
            )
    for warning in warnings:
        progress.say(f"Warning: {warning}")
    return None


def _param_rows(recorded: Run, new: Run) -> list[ParamRow]:
    keys = sorted(set(recorded.data.params) | set(new.data.params))
    return [ParamRow(k, recorded.data.params.get(k), new.data.params.get(k)) for k in keys]


def _metric_rows(recorded: Run, new: Run) -> list[MetricRow]:
    """The runs' metrics, then each task run's, matched by task name and start order."""
    rows = _rows("run", recorded.data.metrics, new.data.metrics)
    old_tasks, new_tasks = _task_runs(recorded), _task_runs(new)
    for name in sorted(set(old_tasks) | set(new_tasks)):
        olds, news = old_tasks.get(name, []), new_tasks.get(name, [])
        for i in range(max(len(olds), len(news))):
            scope = f"{name}[{i}]" if max(len(olds), len(news)) > 1 else name
            old = olds[i].data.metrics if i < len(olds) else {}
            fresh = news[i].data.metrics if i < len(news) else {}
            rows += _rows(scope, old, fresh)
    return rows


def _rows(scope: str, old: dict[str, float], new: dict[str, float]) -> list[MetricRow]:
    return [MetricRow(scope, k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new))]


def _task_runs(run: Run) -> dict[str, list[Run]]:
    """A flow run's task runs (at any depth) by task name, in start order."""
    flow_run_id = run.data.tags.get(FLOW_RUN_ID_TAG)
    if not flow_run_id or TASK_NAME_TAG in run.data.tags:
        return {}
    found: list[Run] = fluent.search_runs(
        [run.info.experiment_id], f"tags.`{FLOW_RUN_ID_TAG}` = '{flow_run_id}'"
    )
    tasks: dict[str, list[Run]] = {}
    for task in sorted(found, key=lambda r: (r.info.start_time or 0, r.info.run_id)):
        name = task.data.tags.get(TASK_NAME_TAG)
        if name and task.info.run_id != run.info.run_id:
            tasks.setdefault(name, []).append(task)
    return tasks


def describe(value: Any) -> str:
    """A metric value for the comparison table."""
    return "-" if value is None else f"{value:.6g}"
