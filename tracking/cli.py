"""The `trackflow` command line: look at experiments and runs from the terminal."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Sequence
from typing import Any

import tracking
from tracking import processes, stores
from tracking.entities import Run
from tracking.listen import port_number

PICKLE_WARNING = (
    "WARNING: loading a model runs code from its files. A model.pkl (the default cloudpickle "
    "and pickle formats) executes whatever it contains when it is unpickled, and a skops model "
    "trusts the types its own MLmodel file lists. Serving a runs:/ or models:/ URI (any version "
    "in the model registry) therefore runs code chosen by whoever logged or registered that "
    "model: anyone who can write to the tracking store or server. Serve only models you trust."
)


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, min_width=len(title) + 2)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _client(args: argparse.Namespace, must_exist: bool = True) -> tracking.TrackingClient:
    """The client of --tracking-uri; unless `must_exist` is False (commands that create
    things), a local store that does not exist is an error rather than created empty."""
    uri = args.tracking_uri or tracking.get_tracking_uri()
    if must_exist:
        stores.check_exists(uri)
    return tracking.TrackingClient(uri)


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
            processes.shown_status(r.info.status, r.data.tags),
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


def runs_reconcile(args: argparse.Namespace) -> int:
    from tracking import reconcile

    client = _client(args)
    store = client.store  # opening it replayed the journals of dead processes
    runs = list(reconcile.running_runs(store, _experiment_ids(client, args.experiment)))
    decisions = reconcile.decide(store, runs, reconcile.state_sources())
    ended = [d for d in decisions if d.new_status is not None]
    if not args.dry_run:
        reconcile.apply(store, ended)
    verb = "would be ended (dry run)" if args.dry_run else "ended"
    columns = ["run id", "name", "status", "end", "why"]
    rows = [
        [d.run.info.run_id, d.run.info.run_name, d.new_status, _time(d.end_time), d.reason]
        for d in ended
    ]
    _table(f"{len(ended)} of {len(runs)} RUNNING runs {verb}", columns, rows)
    left = [d for d in decisions if d.new_status is None]
    if left:
        rows = [[d.run.info.run_id, d.run.info.run_name, "RUNNING", "-", d.reason] for d in left]
        _table(f"{len(left)} runs left RUNNING", columns, rows)
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


# --- experiments create/delete, runs delete ---------------------------------------------------
def _report(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """_table, at least as wide as its title (rich would wrap it), ids never broken, and no
    header row when the columns have no names."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, min_width=len(title) + 2, show_header=any(columns))
    for column in columns:
        is_id = column in ("id", "run id")
        table.add_column(column, overflow="fold", no_wrap=is_id, min_width=8 if is_id else None)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _experiment(client: tracking.TrackingClient, id_or_name: str) -> Any:
    """An experiment by name (first) or id; NotFoundError naming both tries."""
    from tracking.errors import InvalidParameterError, NotFoundError

    found = client.get_experiment_by_name(id_or_name)
    if found is not None:
        return found
    try:
        return client.get_experiment(id_or_name)
    except (NotFoundError, InvalidParameterError):
        raise NotFoundError(f"No experiment with name or id {id_or_name!r}") from None


def _experiment_rows(e: Any) -> list[list[str]]:
    return [
        ["id", e.experiment_id],
        ["name", e.name],
        ["artifacts", e.artifact_location],
        ["lifecycle", e.lifecycle_stage],
    ]


def experiments_create(args: argparse.Namespace) -> int:
    from tracking.artifacts import resolve_uri

    client = _client(args, must_exist=False)
    location = resolve_uri(args.artifact_location) if args.artifact_location else None
    experiment_id = client.create_experiment(args.name, artifact_location=location)
    _report(
        "Created experiment",
        ["field", "value"],
        _experiment_rows(client.get_experiment(experiment_id)),
    )
    return 0


def experiments_delete(args: argparse.Namespace) -> int:
    client = _client(args)
    experiment = _experiment(client, args.experiment)
    client.delete_experiment(experiment.experiment_id)
    _report(
        "Deleted experiment (restorable until `trackflow gc` removes it)",
        ["field", "value"],
        _experiment_rows(client.get_experiment(experiment.experiment_id)),
    )
    return 0


def runs_delete(args: argparse.Namespace) -> int:
    client = _client(args)
    client.delete_run(args.run_id)
    info = client.get_run(args.run_id).info
    _report(
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


# --- artifacts ----------------------------------------------------------------------------------
#: Downloads at least this big (bytes) or with this many files show a progress bar.
PROGRESS_MIN_BYTES = 32 * 1024 * 1024
PROGRESS_MIN_FILES = 50


def _size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":  # decimal units, as rich's progress bar shows
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(size)  # pragma: no cover


def artifacts_list(args: argparse.Namespace) -> int:
    client = _client(args)
    infos = client.list_artifacts(args.run_id, args.path)
    where = f" under {args.path.strip('/')}/" if args.path and args.path.strip("/") else ""
    rows = [
        [i.path + ("/" if i.is_dir else ""), "dir" if i.is_dir else "file", _size(i.file_size)]
        for i in infos
    ]
    _report(f"{len(infos)} artifacts of run {args.run_id}{where}", ["path", "type", "size"], rows)
    return 0


def _artifact_files(client: tracking.TrackingClient, run_id: str, path: str | None) -> list[Any]:
    """Every file below `path` (recursively)."""
    files, folders = [], [path]
    while folders:
        for info in client.list_artifacts(run_id, folders.pop()):
            (folders if info.is_dir else files).append(info.path if info.is_dir else info)
    return sorted(files, key=lambda info: info.path)


def artifacts_download(args: argparse.Namespace) -> int:
    import tempfile

    from tracking.errors import StorageError

    client = _client(args)
    path = (args.path or "").strip("/")
    files = _artifact_files(client, args.run_id, path or None)  # a missing run fails here
    dst = os.path.abspath(args.dst) if args.dst else ""
    try:
        dst = dst or tempfile.mkdtemp(prefix="trackflow-artifacts-")
        os.makedirs(dst, exist_ok=True)
        return _download(client, args, path, dst, files)
    except OSError as e:  # the local side: a read-only or missing --dst, a full disk, ...
        raise StorageError(f"Cannot write the download to {dst}: {e.strerror or e}") from None


def _download(
    client: tracking.TrackingClient,
    args: argparse.Namespace,
    path: str,
    dst: str,
    files: list[Any],
) -> int:
    from concurrent.futures import ThreadPoolExecutor

    if not files:  # a single file, an empty folder, or nothing: let the client tell
        local = client.download_artifacts(args.run_id, path, dst)
        count = 1 if os.path.isfile(local) else 0
        size = os.path.getsize(local) if count else 0
    else:
        total = sum(info.file_size or 0 for info in files)
        show = not args.no_progress and (
            total >= PROGRESS_MIN_BYTES or len(files) >= PROGRESS_MIN_FILES
        )
        with _DownloadProgress(len(files), total, show) as bar, ThreadPoolExecutor(8) as pool:
            jobs = [
                pool.submit(client.download_artifacts, args.run_id, info.path, dst)
                for info in files
            ]
            try:
                for info, job in zip(files, jobs, strict=True):
                    job.result()
                    bar.advance(info)
            except BaseException:  # a failed file or Ctrl+C: do not start the others
                for job in jobs:
                    job.cancel()
                raise
        local = os.path.join(dst, *path.split("/")) if path else dst
        count, size = len(files), total
    _report(
        f"Downloaded {args.path or 'all artifacts'} of run {args.run_id}",
        ["", ""],
        [["files", str(count)], ["size", _size(size)], ["to", local]],
    )
    return 0


class _DownloadProgress:
    """A rich progress bar over bytes (files as they complete), or nothing."""

    def __init__(self, files: int, total: int, enabled: bool) -> None:
        self.progress: Any = None
        if enabled:
            from rich.console import Console

            console = Console(stderr=True)
            if not console.is_terminal:  # a log or a pipe: no bar, no stray blank line
                return
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]downloading"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[done]}/{task.fields[files]} files"),
                console=console,
                transient=True,
            )
            self.task = self.progress.add_task("download", total=total or None, done=0, files=files)

    def __enter__(self) -> _DownloadProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self, info: Any) -> None:
        if self.progress is not None:
            done = self.progress.tasks[0].fields["done"] + 1
            self.progress.update(self.task, advance=info.file_size or 0, done=done)


# --- model registry and serving -----------------------------------------------------------------
def _quote(text: str) -> str:
    return text.replace("'", "''")


def _aliases(aliases: dict[str, int], version: int) -> str:
    return ", ".join(sorted(a for a, v in aliases.items() if int(v) == int(version)))


def models_list(args: argparse.Namespace) -> int:
    client = _client(args)
    models, token = [], None
    while True:
        page = client.search_registered_models(args.filter, 1000, ["name ASC"], token)
        models += page
        token = page.token
        if not token:
            break
    rows = [
        [
            m.name,
            ", ".join(f"v{v.version} {v.current_stage}" for v in m.latest_versions),
            ", ".join(f"@{a} -> v{v}" for a, v in sorted(m.aliases.items())),
            _time(m.last_updated_timestamp),
            m.description or "",
        ]
        for m in models
    ]
    columns = ["name", "latest versions", "aliases", "updated", "description"]
    _report(f"{len(models)} registered models in {client.registry_uri}", columns, rows)
    return 0


def _source(version: Any) -> str:
    """The version's source, as runs:/<run_id>/<path> when it lies in its run's artifacts."""
    source = version.source or ""
    marker = f"/{version.run_id}/artifacts/" if version.run_id else None
    if marker and marker in source:
        return f"runs:/{version.run_id}/{source.split(marker, 1)[1]}"
    return source


def _version_rows(versions: list[Any], aliases: dict[str, int]) -> list[list[str]]:
    return [
        [
            str(v.version),
            v.current_stage,
            _aliases(aliases, v.version),
            _time(v.creation_timestamp),
            _source(v),
            v.description or "",
        ]
        for v in versions
    ]


_VERSION_COLUMNS = ["version", "stage", "aliases", "created", "source", "description"]


def models_versions(args: argparse.Namespace) -> int:
    client = _client(args)
    model = client.get_registered_model(args.name)  # a clear error when there is no such model
    versions = client.search_model_versions(f"name = '{_quote(args.name)}'", 200_000)
    versions = sorted(versions, key=lambda v: v.version, reverse=True)
    _report(
        f"{len(versions)} versions of {args.name}",
        _VERSION_COLUMNS,
        _version_rows(versions, model.aliases),
    )
    return 0


def models_transition(args: argparse.Namespace) -> int:
    from tracking.registry.entities import canonical_stage

    client = _client(args)
    stage = canonical_stage(args.stage)
    before = {
        v.version: v.current_stage
        for v in client.search_model_versions(f"name = '{_quote(args.name)}'", 200_000)
    }
    moved = client.transition_model_version_stage(
        args.name, args.version, stage, archive_existing_versions=args.archive_existing
    )
    after = client.search_model_versions(f"name = '{_quote(args.name)}'", 200_000)
    changed = sorted(
        (
            v
            for v in after
            if before.get(v.version) != v.current_stage or v.version == moved.version
        ),
        key=lambda v: v.version,
        reverse=True,
    )
    aliases = client.get_registered_model(args.name).aliases
    _report(
        f"{args.name} v{moved.version} -> {moved.current_stage}",
        _VERSION_COLUMNS,
        _version_rows(changed, aliases),
    )
    return 0


def models_serve(args: argparse.Namespace) -> int:
    from tracking.scoring import serve

    serve(args.model_uri, host=args.host, port=args.port, tracking_uri=args.tracking_uri)
    return 0


# --- gc -----------------------------------------------------------------------------------------
def gc_command(args: argparse.Namespace) -> int:
    from tracking.gc import gc

    stores.check_exists(args.tracking_uri or tracking.get_tracking_uri())
    report = gc(
        args.tracking_uri,
        older_than=args.older_than,
        run_ids=args.run_ids,
        experiment_ids=args.experiment_ids,
        progress=not args.no_progress,
        dry_run=args.dry_run,
        artifacts_destination=args.artifacts_destination,
    )
    verb = "Would remove" if report.dry_run else "Removed"
    if report.runs:
        shown = report.runs[: args.max_rows]
        _report(
            f"{verb} {len(report.runs)} runs"
            + (f" (first {len(shown)} shown)" if len(shown) < len(report.runs) else ""),
            ["run id", "name", "experiment", "deleted"],
            [[r.run_id, r.run_name, r.experiment_id, _time(r.deleted_time)] for r in shown],
        )
    if report.experiments:
        _report(
            f"{verb} {len(report.experiments)} experiments",
            ["id", "name"],
            [[e.experiment_id, e.name] for e in report.experiments],
        )
    for experiment, left in report.kept_experiments:
        print(
            f"trackflow: note: deleted experiment {experiment.experiment_id} "
            f"({experiment.name!r}) kept: {left} runs left in it",
            file=sys.stderr,
        )
    for warning in report.warnings:
        print(f"trackflow: warning: {warning}", file=sys.stderr)
    title = "gc summary" + (" (dry run: nothing removed)" if report.dry_run else "")
    rows = [["store", report.tracking_uri], *(list(row) for row in report.summary_rows())]
    _report(title, ["", ""], rows)
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

    runs = commands.add_parser("runs", help="list, describe and delete runs")
    run_commands = runs.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(run_commands, "list", runs_list, "List runs with params and metrics.")
    listing.add_argument("--experiment", "-e", help="experiment name or id (default: all)")
    listing.add_argument("--filter", help='e.g. "metrics.accuracy > 0.9"')
    listing.add_argument("--order-by", action="append", help="e.g. 'metrics.accuracy DESC'")
    listing.add_argument("--max-results", type=int, default=100)
    listing.add_argument("--max-columns", type=int, default=6, help="params/metrics shown")
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

    artifacts = commands.add_parser("artifacts", help="list and download run artifacts")
    artifact_commands = artifacts.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(artifact_commands, "list", artifacts_list, "List a run's artifacts.")
    listing.add_argument("run_id")
    listing.add_argument("path", nargs="?", help="folder inside the run's artifacts")
    download = command(
        artifact_commands,
        "download",
        artifacts_download,
        "Download a run's artifacts (a file, a folder, or all of them).",
    )
    download.add_argument("run_id")
    download.add_argument("path", nargs="?", help="file or folder (default: all artifacts)")
    download.add_argument("--dst", metavar="DIR", help="local folder (default: a new temp dir)")
    download.add_argument("--no-progress", action="store_true", help="no progress bar")

    models = commands.add_parser("models", help="the model registry, and serving models")
    model_commands = models.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    listing = command(model_commands, "list", models_list, "List registered models.")
    listing.add_argument("--filter", help="e.g. \"name LIKE 'iris%%'\"")
    versions = command(model_commands, "versions", models_versions, "List a model's versions.")
    versions.add_argument("name")
    transition = command(
        model_commands,
        "transition",
        models_transition,
        "Move a model version to None, Staging, Production or Archived.",
    )
    transition.add_argument("name")
    transition.add_argument("version")
    transition.add_argument("stage", help="None, Staging, Production or Archived")
    transition.add_argument(
        "--archive-existing",
        action="store_true",
        help="archive the model's other versions in that stage (Staging/Production)",
    )
    serve = command(
        model_commands,
        "serve",
        models_serve,
        "Serve a model over HTTP with MLflow's scoring protocol (POST /invocations).",
    )
    serve.description = f"{serve.description} {PICKLE_WARNING}"
    serve.add_argument(
        "--model-uri",
        "-m",
        required=True,
        metavar="MODEL_URI",
        help="runs:/<run_id>/<path>, models:/<name>/<version|stage>, models:/<name>@<alias>, "
        "or a model folder",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        "-p",
        type=port_number,
        default=5000,
        help="port to listen on, 1-65535, or 0 for any free port (default: 5000)",
    )

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

    from tracking.server.cli import add_server_command
    from tracking.ui.cli import add_ui_command

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
