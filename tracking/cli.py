"""The `trackflow` command line: look at experiments and runs from the terminal."""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from typing import Any

import tracking
from tracking.entities import Run


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _client(args: argparse.Namespace) -> tracking.TrackingClient:
    return tracking.TrackingClient(args.tracking_uri)


def _experiment_ids(client: tracking.TrackingClient, experiment: str | None) -> list[str]:
    if experiment is None:
        return [e.experiment_id for e in client.search_experiments()]
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return [found.experiment_id]
    return [client.get_experiment(experiment).experiment_id]


def experiments_list(args: argparse.Namespace) -> int:
    client = _client(args)
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
    _table(f"Experiments in {client.tracking_uri}", ["id", "name", "runs", "artifacts"], rows)
    return 0


def runs_list(args: argparse.Namespace) -> int:
    client = _client(args)
    runs = client.search_runs(
        _experiment_ids(client, args.experiment),
        args.filter or "",
        max_results=args.max_results,
        order_by=args.order_by or None,
    )
    metric_keys = sorted({k for r in runs for k in r.data.metrics})[: args.max_columns]
    param_keys = sorted({k for r in runs for k in r.data.params})[: args.max_columns]
    rows = [
        [
            r.info.run_id,
            r.info.run_name,
            r.info.status,
            _time(r.info.start_time),
            r.data.tags.get("mlflow.parentRunId", "")[:8],
            *(_fmt(r.data.params.get(k)) for k in param_keys),
            *(_fmt(r.data.metrics.get(k)) for k in metric_keys),
        ]
        for r in runs
    ]
    columns = ["run id", "name", "status", "start", "parent", *param_keys, *metric_keys]
    _table(f"{len(runs)} runs", columns, rows)
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def runs_describe(args: argparse.Namespace) -> int:
    client = _client(args)
    run: Run = client.get_run(args.run_id)
    info = run.info
    _table(
        f"Run {info.run_id}",
        ["field", "value"],
        [
            ["name", info.run_name],
            ["experiment", info.experiment_id],
            ["status", info.status],
            ["start", _time(info.start_time)],
            ["end", _time(info.end_time)],
            ["user", info.user_id],
            ["artifacts", info.artifact_uri],
            ["lifecycle", info.lifecycle_stage],
        ],
    )
    _table("Params", ["key", "value"], [[k, v] for k, v in sorted(run.data.params.items())])
    _table(
        "Metrics (latest)",
        ["key", "value"],
        [[k, _fmt(v)] for k, v in sorted(run.data.metrics.items())],
    )
    _table("Tags", ["key", "value"], [[k, v] for k, v in sorted(run.data.tags.items())])
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from tracking.migrate import migrate

    report = migrate(args.source, args.target, progress=not args.no_progress)
    _table(
        f"Migrated {report.source_uri} -> {report.target_uri}",
        ["", "count"],
        [list(row) for row in report.summary_rows()],
    )
    for warning in report.warnings:
        print(f"trackflow: warning: {warning}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackflow",
        description="Experiment tracking for Prefect pipelines (MLflow-compatible).",
    )
    parser.add_argument("--version", action="version", version=f"trackflow {tracking.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(group: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--tracking-uri", help="store to read (default: $MLFLOW_TRACKING_URI or ./mlruns)"
        )
        sub.set_defaults(handler=handler)
        return sub

    experiments = commands.add_parser("experiments", help="list experiments")
    exp_commands = experiments.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(exp_commands, "list", experiments_list, "List active experiments.")
    listing.add_argument("--filter", help="e.g. \"name LIKE 'iris%%'\"")

    runs = commands.add_parser("runs", help="list and describe runs")
    run_commands = runs.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(run_commands, "list", runs_list, "List runs with params and metrics.")
    listing.add_argument("--experiment", "-e", help="experiment name or id (default: all)")
    listing.add_argument("--filter", help='e.g. "metrics.accuracy > 0.9"')
    listing.add_argument("--order-by", action="append", help="e.g. 'metrics.accuracy DESC'")
    listing.add_argument("--max-results", type=int, default=100)
    listing.add_argument("--max-columns", type=int, default=6, help="params/metrics shown")
    describe = command(run_commands, "describe", runs_describe, "Show one run in full.")
    describe.add_argument("run_id")

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

    from tracking.server.cli import add_server_command

    add_server_command(commands)
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
