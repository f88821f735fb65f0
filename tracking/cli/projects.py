"""`trackflow run URI [-e ENTRY] [-P key=value ...] [--version REF] [--env-manager M] ...`."""

from __future__ import annotations

import argparse
from typing import Any

from tracking.cli.common import command, format_value, report


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """-P key=value options as a dict; a clear error for anything else."""
    from tracking.projects import ExecutionError

    parameters: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ExecutionError(f"-P {pair!r}: parameters are given as -P name=value")
        parameters[key.strip()] = value
    return parameters


def run_project(args: argparse.Namespace) -> int:
    import tracking
    from tracking.projects import environments, runner, sources

    if args.tracking_uri:
        tracking.set_tracking_uri(args.tracking_uri)
    request = runner.Request(
        entry_point=args.entry_point,
        parameters=parse_parameters(args.param or []),
        manager=environments.check_manager(args.env_manager),
        experiment_name=args.experiment_name,
        experiment_id=args.experiment_id,
        run_name=args.run_name,
    )
    with sources.checkout(args.uri, args.version) as source:
        submitted = runner.execute(source, request)
    run = submitted.run
    report(
        f"Run {run.info.status}",
        ["", ""],
        [
            ["run id", run.info.run_id],
            ["name", run.info.run_name],
            ["experiment", run.info.experiment_id],
            ["status", run.info.status],
            *[[f"metric {k}", format_value(v)] for k, v in sorted(run.data.metrics.items())],
        ],
    )
    return 0 if run.info.status == "FINISHED" else 1


def add_env_manager(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The --env-manager option of `run` and `runs reproduce`."""
    parser.add_argument(
        "--env-manager", choices=["local", "virtualenv", "uv"], default="local", help=help_text
    )


def register(commands: Any) -> None:
    """Add `trackflow run` to the `trackflow` parser."""
    run = command(
        commands,
        "run",
        run_project,
        "Run a project's entry point as a tracked run: an MLproject (MLflow's format), a Prefect "
        "flow (path/file.py:flow_function), or a .py / .sh file, from a folder or a git URL "
        "(URL#subdirectory, at --version, in a temporary clone).",
    )
    run.add_argument("uri", help="a project folder, or a git URL (https, ssh, file://)")
    run.add_argument(
        "-e",
        "--entry-point",
        default="main",
        help="an MLproject entry point, path/file.py:flow_function, or a .py/.sh file "
        "(default: main)",
    )
    run.add_argument(
        "-P", "--param", action="append", metavar="NAME=VALUE", help="a parameter (repeatable)"
    )
    run.add_argument("-v", "--version", help="git commit, branch or tag to run")
    add_env_manager(
        run,
        "local: the current environment (default); virtualenv or uv: a cached virtual "
        "environment built from the project's python_env.yaml",
    )
    run.add_argument("--experiment-name", help="experiment to log into (created if missing)")
    run.add_argument("--experiment-id", help="experiment id to log into")
    run.add_argument("--run-name", help="name of the run")
