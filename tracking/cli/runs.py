"""`trackflow runs list|describe|reconcile|delete`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracking import processes
from tracking.cli.common import (
    client_for,
    command,
    experiment_ids,
    format_time,
    format_value,
    report,
    table,
)
from tracking.cli.projects import add_env_manager
from tracking.entities import Run


def runs_list(args: argparse.Namespace) -> int:
    """A table that fits the terminal: name, status, start, the sort key, then as many
    params and metrics as fit; a note names the columns left out."""
    client = client_for(args)
    runs = client.search_runs(
        experiment_ids(client, args.experiment),
        args.filter or "",
        max_results=args.max_results,
        order_by=args.order_by or None,
    )
    id_width = 32 if args.full_ids else 8
    fixed = [
        Column("id", lambda r: r.info.run_id[:id_width]),
        Column("name", lambda r: r.info.run_name),
        Column("status", lambda r: processes.shown_status(r.info.status, r.data.tags)),
        Column("start", lambda r: format_time(r.info.start_time)),
    ]
    shown, hidden = fit(fixed + value_columns(runs, args.order_by or []), runs, terminal_width())
    table(f"{len(runs)} runs", [c.title for c in shown], [[c.cell(r) for c in shown] for r in runs])
    if hidden:
        names = ", ".join(c.title for c in hidden[:8]) + (", ..." if len(hidden) > 8 else "")
        from rich.console import Console

        Console().print(
            f"{len(hidden)} more columns do not fit ({names}): widen the terminal, narrow the "
            "runs with --filter, or see one run in full with `trackflow runs describe RUN_ID`.",
            markup=False,
            highlight=False,
        )
    return 0


@dataclass(frozen=True)
class Column:
    title: str
    cell: Callable[[Run], str]


def value_columns(runs: list[Run], order_by: list[str]) -> list[Column]:
    """The sort keys first, then metrics, then params (each group by name)."""
    metrics = sorted({k for r in runs for k in r.data.metrics})
    params = sorted({k for r in runs for k in r.data.params})
    keys = [("metrics", k) for k in metrics] + [("params", k) for k in params]
    sort_keys = [tuple(o.split()[0].split(".", 1)) for o in order_by if "." in o.split()[0]]
    ordered = [k for k in keys if k in sort_keys] + [k for k in keys if k not in sort_keys]
    return [
        Column(
            f"{kind}.{key}" if kind == "params" and key in metrics else key,
            lambda r, kind=kind, key=key: format_value(getattr(r.data, kind).get(key)),
        )
        for kind, key in ordered
    ]


def fit(columns: list[Column], runs: list[Run], width: int) -> tuple[list[Column], list[Column]]:
    """The leading columns whose contents fit in `width` characters (the first four always)."""
    used = 1  # the table's left border
    shown: list[Column] = []
    for i, column in enumerate(columns):
        needed = max([len(column.title), *(len(column.cell(r)) for r in runs)]) + 3
        if i >= 4 and used + needed > width:
            return shown, columns[i:]
        shown.append(column)
        used += needed
    return shown, []


def terminal_width() -> int:
    from rich.console import Console

    return Console().width


def runs_describe(args: argparse.Namespace) -> int:
    client = client_for(args)
    run: Run = client.get_run(args.run_id)
    info = run.info
    table(
        f"Run {info.run_id}",
        ["field", "value"],
        [
            ["name", info.run_name],
            ["experiment", info.experiment_id],
            ["status", info.status],
            ["start", format_time(info.start_time)],
            ["end", format_time(info.end_time)],
            ["user", info.user_id],
            ["artifacts", info.artifact_uri],
            ["lifecycle", info.lifecycle_stage],
        ],
    )
    table("Params", ["key", "value"], [[k, v] for k, v in sorted(run.data.params.items())])
    table(
        "Metrics (latest)",
        ["key", "value"],
        [[k, format_value(v)] for k, v in sorted(run.data.metrics.items())],
    )
    table("Tags", ["key", "value"], [[k, v] for k, v in sorted(run.data.tags.items())])
    return 0


def runs_reconcile(args: argparse.Namespace) -> int:
    from tracking.admin import reconcile

    client = client_for(args)
    store = client.store  # opening it replayed the journals of dead processes
    runs = list(reconcile.running_runs(store, experiment_ids(client, args.experiment)))
    decisions = reconcile.decide(store, runs, reconcile.state_sources())
    ended = [d for d in decisions if d.new_status is not None]
    if not args.dry_run:
        reconcile.apply(store, ended)
    verb = "would be ended (dry run)" if args.dry_run else "ended"
    columns = ["run id", "name", "status", "end", "why"]
    rows = [
        [d.run.info.run_id, d.run.info.run_name, d.new_status, format_time(d.end_time), d.reason]
        for d in ended
    ]
    table(f"{len(ended)} of {len(runs)} RUNNING runs {verb}", columns, rows)
    left = [d for d in decisions if d.new_status is None]
    if left:
        rows = [[d.run.info.run_id, d.run.info.run_name, "RUNNING", "-", d.reason] for d in left]
        table(f"{len(left)} runs left RUNNING", columns, rows)
    return 0


def runs_delete(args: argparse.Namespace) -> int:
    client = client_for(args)
    client.delete_run(args.run_id)
    info = client.get_run(args.run_id).info
    report(
        "Deleted run (restorable until `trackflow gc` removes it)",
        ["field", "value"],
        [
            ["run id", info.run_id],
            ["name", info.run_name],
            ["experiment", info.experiment_id],
            ["lifecycle", info.lifecycle_stage],
        ],
    )
    return 0


def runs_reproduce(args: argparse.Namespace) -> int:
    """Run a recorded run again and compare; with --check, 1 when anything differs."""
    import tracking
    from tracking.projects import reproduction

    if args.tracking_uri:
        tracking.set_tracking_uri(args.tracking_uri)
    comparison = reproduction.reproduce(args.run_id, args.env_manager, args.experiment_name)
    new = comparison.new.info
    report(
        f"Params of {args.run_id} (recorded) and {new.run_id} (new)",
        ["param", "recorded", "new", ""],
        [
            [p.key, p.recorded or "-", p.new or "-", "equal" if p.equal else "DIFFERENT"]
            for p in comparison.params
        ],
    )
    tolerance = args.tolerance
    report(
        f"Metrics, run and task by task (tolerance {tolerance:g})",
        ["scope", "metric", "recorded", "new", "difference", ""],
        [
            [
                m.scope,
                m.key,
                reproduction.describe(m.recorded),
                reproduction.describe(m.new),
                reproduction.describe(m.difference),
                _verdict(m, tolerance),
            ]
            for m in comparison.metrics
        ],
    )
    differing = comparison.differing(tolerance)
    from rich.console import Console

    summary = f"New run {new.run_id} ended {new.status}; " + (
        f"{len(differing)} metrics differ by more than {tolerance:g}"
        if differing
        else f"every metric within {tolerance:g}"
    )
    Console(soft_wrap=True).print(summary, markup=False, highlight=False)
    if args.check and not comparison.reproduced(tolerance):
        return 1
    return 0


def _verdict(row: Any, tolerance: float) -> str:
    if not row.checked:
        return "timing (not checked)"
    return "equal" if row.within(tolerance) else "DIFFERENT"


def register(commands: Any) -> None:
    """Add this group's commands to the `trackflow` parser."""
    runs = commands.add_parser("runs", help="list, describe, delete and reproduce runs")
    run_commands = runs.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(run_commands, "list", runs_list, "List runs with params and metrics.")
    listing.add_argument("--experiment", "-e", help="experiment name or id (default: all)")
    listing.add_argument("--filter", help='e.g. "metrics.accuracy > 0.9"')
    listing.add_argument("--order-by", action="append", help="e.g. 'metrics.accuracy DESC'")
    listing.add_argument("--max-results", type=int, default=100)
    listing.add_argument(
        "--full-ids", action="store_true", help="show whole run ids (default: the first 8 chars)"
    )
    describe = command(run_commands, "describe", runs_describe, "Show one run in full.")
    describe.add_argument("run_id")
    reconcile = command(
        run_commands,
        "reconcile",
        runs_reconcile,
        "End runs left RUNNING by processes that died: KILLED when their process is gone "
        "from this host, or the final state the Prefect API reports (Completed -> FINISHED, "
        "Failed -> FAILED, Crashed/Cancelled -> KILLED). Runs of live processes are kept.",
    )
    reconcile.add_argument("--experiment", "-e", help="experiment name or id (default: all)")
    reconcile.add_argument("--dry-run", action="store_true", help="show what would change")
    delete = command(
        run_commands,
        "delete",
        runs_delete,
        "Mark a run deleted (`trackflow gc` removes it and its artifacts for good).",
    )
    delete.add_argument("run_id")
    again = command(
        run_commands,
        "reproduce",
        runs_reproduce,
        "Run a recorded run again: its entry point at its git commit (with its recorded diff), "
        "with its params, in its recorded environment (virtualenv/uv) or this one (local), then "
        "compare params and metrics (task by task for flows).",
    )
    again.add_argument("run_id")
    add_env_manager(
        again,
        "local: this environment, with a warning naming packages that differ (default); "
        "virtualenv or uv: the recorded environment, built and cached",
    )
    again.add_argument("--experiment-name", help="experiment of the new run (default: the same)")
    again.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the new run fails or a metric differs by more than --tolerance",
    )
    again.add_argument("--tolerance", type=float, default=1e-9, help="default 1e-9")
