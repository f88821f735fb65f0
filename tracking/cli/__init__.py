"""The `trackflow` command line: one module per command group.

trackflow experiments|runs|artifacts|models ...   (tracking.cli.<group>)
trackflow run URI ...                              (tracking.cli.projects)
trackflow gc | migrate                             (tracking.cli.admin)
trackflow server | ui                              (tracking.servers.api.cli, .ui.cli)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import tracking
from tracking.cli import admin, artifacts, experiments, models, projects, runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackflow",
        description="Experiment tracking for Prefect pipelines (MLflow-compatible).",
    )
    parser.add_argument("--version", action="version", version=f"trackflow {tracking.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (experiments, runs, artifacts, models, admin, projects):
        group.register(commands)

    from tracking.servers.api.cli import add_server_command
    from tracking.servers.ui.cli import add_ui_command

    add_server_command(commands)
    add_ui_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `trackflow` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return int(handler(args))
    except tracking.TrackingError as e:
        print(f"trackflow: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
