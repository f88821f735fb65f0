"""Running a project's entry point as a run: MLflow's project tags and the parameters on the
run, its environment recorded, then the command (whose own start_run() logs into the run) or
the Prefect flow (whose flow run is the run) in the chosen environment."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

from tracking import fluent, run_environment, system_tags
from tracking.client import TrackingClient
from tracking.entities import Param, Run, RunStatus, RunTag
from tracking.projects import environments, progress, spec
from tracking.projects.environments import Environment, EnvSpec
from tracking.projects.errors import ExecutionError
from tracking.projects.sources import Source

ENTRY_POINT_TAG = "mlflow.project.entryPoint"
ENV_TAG = "mlflow.project.env"
BACKEND_TAG = "mlflow.project.backend"
SUBDIRECTORY_TAG = "trackflow.project.subdirectory"
REPRODUCED_FROM_TAG = "trackflow.reproduced_from"
PARAMETERS_TAG = "trackflow.project.parameters"  # JSON list: the params given to the command
PROJECT_SOURCE_TYPE = "PROJECT"
#: the Prefect side of flow entry points (tracking never imports Prefect): run as a module
#: in the project's environment, it creates the flow run and runs the flow (flows/entrypoint.py)
FLOW_RUNNER = "flows.entrypoint"


class SubmittedRun:
    """A finished project run (MLflow's SubmittedRun): `run_id`, `wait()`, `get_status()`,
    and `run`, the run as stored now."""

    def __init__(self, run_id: str, client: TrackingClient) -> None:
        self.run_id = run_id
        self._client = client

    @property
    def run(self) -> Run:
        return self._client.get_run(self.run_id)

    def get_status(self) -> str:
        return self.run.info.status

    def wait(self) -> bool:
        """True when the run FINISHED (runs are synchronous: it has ended already)."""
        return self.get_status() == RunStatus.FINISHED.name

    def __repr__(self) -> str:
        return f"SubmittedRun(run_id={self.run_id!r})"


@dataclass
class Request:
    """What to run from a checked-out project, and where to record it."""

    entry_point: str = "main"
    parameters: dict[str, Any] = field(default_factory=dict)
    manager: str = "local"
    experiment_name: str | None = None
    experiment_id: str | None = None
    run_name: str | None = None
    env_spec: EnvSpec | None = None  # instead of the project's own (reproduce)
    tags: dict[str, str] = field(default_factory=dict)


def execute(source: Source, request: Request) -> SubmittedRun:
    """Validate everything, prepare the environment, run; the run, ended."""
    project = spec.load(source.directory)
    entry = project.entry_point(request.entry_point)
    client = fluent.current_client()
    tags = {**_project_tags(source, entry.name, request.manager), **request.tags}
    if entry.kind == "flow":
        env = _environment(project, request, flow=True)
        return _run_flow(client, source, entry.name, request, env, tags)
    declared, extra = entry.resolve(request.parameters, os.getcwd())
    command = entry.command_line(declared, extra)
    experiment_id = _experiment(client, request)
    env = _environment(project, request, flow=False)
    name = request.run_name or system_tags.random_run_name()
    given = json.dumps(sorted({**declared, **extra}))
    run = client.create_run(
        experiment_id,
        tags={**tags, system_tags.RUN_NAME: name, PARAMETERS_TAG: given},
        run_name=name,
    )
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in {**declared, **extra}.items()])
    _record_environment(client, run, source, env)
    variables = {
        **env.variables(),
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_TRACKING_URI": client.tracking_uri,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
    }
    progress.say(f"=== Running command '{command}' in run {run_id} ===")
    code = _wait(["bash", "-c", command], source.directory, variables)
    status = RunStatus.FINISHED if code == 0 else RunStatus.FAILED
    if code < 0:
        status = RunStatus.KILLED
    client.set_terminated(run_id, status.name)
    return SubmittedRun(run_id, client)


def _environment(project: spec.Project, request: Request, flow: bool) -> Environment:
    env_spec = request.env_spec
    if env_spec is None:
        env_spec = EnvSpec.from_python_env(project.python_env) if project.python_env else EnvSpec()
    return environments.prepare(request.manager, env_spec, flow)


def _experiment(client: TrackingClient, request: Request) -> str:
    if request.experiment_id is not None:
        return client.get_experiment(str(request.experiment_id)).experiment_id
    if request.experiment_name is not None:
        return client.store.get_or_create_experiment(request.experiment_name).experiment_id
    return fluent.resolve_experiment_id()


def _project_tags(source: Source, entry_point: str, manager: str) -> dict[str, str]:
    """MLflow's tags of a project run."""
    tags = {
        system_tags.USER: system_tags.current_user(),
        system_tags.SOURCE_NAME: source.source_name,
        system_tags.SOURCE_TYPE: PROJECT_SOURCE_TYPE,
        ENTRY_POINT_TAG: entry_point,
        ENV_TAG: manager,
        BACKEND_TAG: "local",
    }
    if source.commit:
        tags[system_tags.GIT_COMMIT] = source.commit
    if source.repo_url:
        tags[run_environment.GIT_REPO_URL_TAG] = source.repo_url
    if source.branch:
        tags[run_environment.GIT_BRANCH_TAG] = source.branch
    if source.subdirectory:
        tags[SUBDIRECTORY_TAG] = source.subdirectory
    return tags


def _record_environment(client: TrackingClient, run: Run, source: Source, env: Environment) -> None:
    """The environment the command runs in, and the state of the user's work tree."""
    tags = {
        run_environment.PYTHON_VERSION_TAG: env.python_version,
        run_environment.PLATFORM_TAG: platform.platform(),
    }
    artifacts = environments.describe(env)
    if source.state is not None:
        captured = run_environment.git_snapshot(source.state)
        tags.update(captured.tags)
        artifacts.update(captured.artifacts)
    client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    repo = client.artifact_repo_at(run.info.artifact_uri)
    for name, content in artifacts.items():
        repo.write_bytes(f"{run_environment.ARTIFACT_DIR}/{name}", content)


def _run_flow(
    client: TrackingClient,
    source: Source,
    entry_point: str,
    request: Request,
    env: Environment,
    tags: dict[str, str],
) -> SubmittedRun:
    """Run the flow in a process of the environment; its flow run is the project's run."""
    experiment_id = request.experiment_id
    if experiment_id is None and request.experiment_name is not None:
        experiment_id = _experiment(client, request)
    with tempfile.TemporaryDirectory(prefix="trackflow-flow-") as folder:
        result = os.path.join(folder, "result.json")
        job = os.path.join(folder, "job.json")
        with open(job, "w") as f:
            json.dump(
                {
                    "entry_point": entry_point,
                    "parameters": request.parameters,
                    "experiment_id": experiment_id,
                    "run_name": request.run_name,
                    "tags": tags,
                    "ignore_unknown": REPRODUCED_FROM_TAG in tags,
                    "result": result,
                },
                f,
            )
        variables = {**env.variables(), "MLFLOW_TRACKING_URI": client.tracking_uri}
        progress.say(f"=== Running flow {entry_point} ===")
        code = _wait([env.python, "-m", FLOW_RUNNER, job], source.directory, variables)
        outcome: dict[str, Any] = {}
        if os.path.isfile(result):
            with open(result) as f:
                outcome = json.load(f)
    if "error" in outcome:
        raise ExecutionError(outcome["error"])
    if "run_id" not in outcome:
        raise ExecutionError(
            f"Flow entry point {entry_point!r} did not start (exit code {code}); its output is "
            "above"
        )
    return SubmittedRun(outcome["run_id"], client)


def _wait(command: list[str], cwd: str, variables: dict[str, str]) -> int:
    """Run to the end; Ctrl-C stops the child too (a negative code: killed by a signal)."""
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **variables})
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return -2
