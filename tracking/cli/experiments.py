"""`trackflow experiments list|create|delete`."""

from __future__ import annotations

import argparse
from typing import Any

from tracking.cli.common import client_for, command, find_experiment, report, table


def experiments_list(args: argparse.Namespace) -> int:
    client = client_for(args)
    experiments = client.search_experiments(filter_string=args.filter)
    rows = [
        [
            e.experiment_id,
            e.name,
            str(len(client.search_runs([e.experiment_id], max_results=50000))),
            e.artifact_location,
        ]
        for e in experiments
    ]
    table(f"Experiments in {client.tracking_uri}", ["id", "name", "runs", "artifacts"], rows)
    return 0


def _experiment_rows(e: Any) -> list[list[str]]:
    return [
        ["id", e.experiment_id],
        ["name", e.name],
        ["artifacts", e.artifact_location],
        ["lifecycle", e.lifecycle_stage],
    ]


def experiments_create(args: argparse.Namespace) -> int:
    from tracking.artifacts import resolve_uri

    client = client_for(args, must_exist=False)
    location = resolve_uri(args.artifact_location) if args.artifact_location else None
    experiment_id = client.create_experiment(args.name, artifact_location=location)
    report(
        "Created experiment",
        ["field", "value"],
        _experiment_rows(client.get_experiment(experiment_id)),
    )
    return 0


def experiments_delete(args: argparse.Namespace) -> int:
    client = client_for(args)
    experiment = find_experiment(client, args.experiment)
    client.delete_experiment(experiment.experiment_id)
    report(
        "Deleted experiment (restorable until `trackflow gc` removes it)",
        ["field", "value"],
        _experiment_rows(client.get_experiment(experiment.experiment_id)),
    )
    return 0


def register(commands: Any) -> None:
    """Add this group's commands to the `trackflow` parser."""
    experiments = commands.add_parser("experiments", help="list, create and delete experiments")
    exp_commands = experiments.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(exp_commands, "list", experiments_list, "List active experiments.")
    listing.add_argument("--filter", help="e.g. \"name LIKE 'iris%%'\"")
    create = command(exp_commands, "create", experiments_create, "Create an experiment.")
    create.add_argument("name")
    create.add_argument(
        "--artifact-location",
        help="where its runs' artifacts go: a folder or URI such as s3://bucket/path "
        "(default: under the store's artifact root)",
    )
    delete = command(
        exp_commands,
        "delete",
        experiments_delete,
        "Mark an experiment and its runs deleted (`trackflow gc` removes them for good).",
    )
    delete.add_argument("experiment", metavar="ID_OR_NAME")
