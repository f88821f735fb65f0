"""`trackflow gc` and `trackflow migrate`: store administration."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import tracking
from tracking import stores
from tracking.cli.common import command, format_time, report, table


def gc_command(args: argparse.Namespace) -> int:
    from tracking.admin.gc import gc

    stores.check_exists(args.tracking_uri or tracking.get_tracking_uri())
    result = gc(
        args.tracking_uri,
        older_than=args.older_than,
        run_ids=args.run_ids,
        experiment_ids=args.experiment_ids,
        progress=not args.no_progress,
        dry_run=args.dry_run,
        artifacts_destination=args.artifacts_destination,
    )
    verb = "Would remove" if result.dry_run else "Removed"
    if result.runs:
        shown = result.runs[: args.max_rows]
        report(
            f"{verb} {len(result.runs)} runs"
            + (f" (first {len(shown)} shown)" if len(shown) < len(result.runs) else ""),
            ["run id", "name", "experiment", "deleted"],
            [[r.run_id, r.run_name, r.experiment_id, format_time(r.deleted_time)] for r in shown],
        )
    if result.experiments:
        report(
            f"{verb} {len(result.experiments)} experiments",
            ["id", "name"],
            [[e.experiment_id, e.name] for e in result.experiments],
        )
    for experiment, left in result.kept_experiments:
        print(
            f"trackflow: note: deleted experiment {experiment.experiment_id} "
            f"({experiment.name!r}) kept: {left} runs left in it",
            file=sys.stderr,
        )
    for warning in result.warnings:
        print(f"trackflow: warning: {warning}", file=sys.stderr)
    title = "gc summary" + (" (dry run: nothing removed)" if result.dry_run else "")
    rows = [["store", result.tracking_uri], *(list(row) for row in result.summary_rows())]
    report(title, ["", ""], rows)
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from tracking.admin.migrate import migrate

    result = migrate(args.source, args.target, progress=not args.no_progress)
    table(
        f"Migrated {result.source_uri} -> {result.target_uri}",
        ["", "count"],
        [list(row) for row in result.summary_rows()],
    )
    for warning in result.warnings:
        print(f"trackflow: warning: {warning}", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    """Add this group's commands to the `trackflow` parser."""
    collect = command(
        commands,
        "gc",
        gc_command,
        "Permanently remove deleted runs (with their artifacts) and deleted experiments.",
    )
    collect.add_argument(
        "--older-than",
        metavar="AGE",
        help="only what was deleted longer ago than AGE: #d#h#m#s, e.g. 30d, 12h, 1d12h",
    )
    collect.add_argument(
        "--run-ids",
        nargs="+",
        metavar="RUN_ID",
        help="only these deleted runs (space- or comma-separated)",
    )
    collect.add_argument(
        "--experiment-ids",
        nargs="+",
        metavar="EXPERIMENT_ID",
        help="only these deleted experiments and their runs (space- or comma-separated)",
    )
    collect.add_argument(
        "--artifacts-destination",
        metavar="URI",
        help="the tracking server's --artifacts-destination, to remove the files of runs "
        "whose artifacts are proxied (mlflow-artifacts:/ URIs)",
    )
    collect.add_argument("--dry-run", action="store_true", help="show what would be removed")
    collect.add_argument("--no-progress", action="store_true", help="no progress bar")
    collect.add_argument("--max-rows", type=int, default=50, help="removed runs listed")

    migrate = commands.add_parser(
        "migrate",
        help="copy all experiments and runs to another store",
        description="Copy every experiment and run (incl. deleted ones, params, tags, full metric "
        "histories) from one store to another; artifacts stay where they are and keep their "
        "URIs. Safe to rerun: runs already in the target are skipped.",
    )
    migrate.add_argument(
        "--from", dest="source", required=True, metavar="SRC_URI", help="store to copy from"
    )
    migrate.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="DST_URI",
        help="store to copy into (path, sqlite:///..., postgresql://...); created if missing",
    )
    migrate.add_argument("--no-progress", action="store_true", help="no progress bar")
    migrate.set_defaults(handler=migrate_command)
