"""Projects: run a project's entry point as a tracked run, and run a recorded run again.

    import tracking

    submitted = tracking.projects.run(
        "https://github.com/org/repo#subdir", entry_point="main", version="v1.2",
        parameters={"alpha": 0.5}, env_manager="uv",
    )
    submitted.run_id, submitted.wait(), submitted.run

A project is a folder with an MLproject file in MLflow's format, or any folder whose entry
point is a Prefect flow (`path/file.py:flow_function`) or a .py / .sh file. See
tracking.projects.reproduce for running a recorded run again.
"""

from __future__ import annotations

from typing import Any

from tracking.projects.errors import ExecutionError, ExecutionException
from tracking.projects.reproduction import Comparison, reproduce
from tracking.projects.runner import Request, SubmittedRun

__all__ = [
    "Comparison",
    "ExecutionError",
    "ExecutionException",
    "SubmittedRun",
    "reproduce",
    "run",
]


def run(
    uri: str,
    entry_point: str = "main",
    version: str | None = None,
    parameters: dict[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
) -> SubmittedRun:
    """Run `entry_point` of the project at `uri` (a folder, or a git URL with an optional
    #subdirectory, checked out at `version` in a temporary clone) as a run, in the current
    environment (env_manager "local", the default) or a cached virtual environment
    ("virtualenv", "uv"); returns once the run has ended. ExecutionError for anything that
    cannot run as given, before any run is created; a failed run raises too (as MLflow)."""
    from tracking.projects import environments, runner, sources

    request = Request(
        entry_point=entry_point,
        parameters=dict(parameters or {}),
        manager=environments.check_manager(env_manager),
        experiment_name=experiment_name,
        experiment_id=experiment_id,
        run_name=run_name,
    )
    with sources.checkout(uri, version) as source:
        submitted = runner.execute(source, request)
    status = submitted.get_status()
    if status != "FINISHED":
        raise ExecutionError(f"Run (ID '{submitted.run_id}') failed: it ended {status}")
    return submitted
