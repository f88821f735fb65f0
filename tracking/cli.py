"""The `trackflow` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import tracking


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackflow",
        description="Experiment tracking for Prefect pipelines (MLflow-compatible).",
    )
    parser.add_argument("--version", action="version", version=f"trackflow {tracking.__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `trackflow` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
