"""`trackflow models list|versions|transition|serve|predict`: the registry, serving, scoring."""

from __future__ import annotations

import argparse
from typing import Any

from tracking.cli.common import client_for, command, format_time, report
from tracking.servers.listen import port_number

PICKLE_WARNING = (
    "WARNING: loading a model runs code from its files. A model.pkl (the default cloudpickle "
    "and pickle formats) executes whatever it contains when it is unpickled, and a skops model "
    "trusts the types its own MLmodel file lists. Serving a runs:/ or models:/ URI (any version "
    "in the model registry) therefore runs code chosen by whoever logged or registered that "
    "model: anyone who can write to the tracking store or server. Serve only models you trust."
)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _aliases(aliases: dict[str, int], version: int) -> str:
    return ", ".join(sorted(a for a, v in aliases.items() if int(v) == int(version)))


def models_list(args: argparse.Namespace) -> int:
    client = client_for(args)
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
            format_time(m.last_updated_timestamp),
            m.description or "",
        ]
        for m in models
    ]
    columns = ["name", "latest versions", "aliases", "updated", "description"]
    report(f"{len(models)} registered models in {client.registry_uri}", columns, rows)
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
            format_time(v.creation_timestamp),
            _source(v),
            v.description or "",
        ]
        for v in versions
    ]


_VERSION_COLUMNS = ["version", "stage", "aliases", "created", "source", "description"]


def models_versions(args: argparse.Namespace) -> int:
    client = client_for(args)
    model = client.get_registered_model(args.name)  # a clear error when there is no such model
    versions = client.search_model_versions(f"name = '{_quote(args.name)}'", 200_000)
    versions = sorted(versions, key=lambda v: v.version, reverse=True)
    report(
        f"{len(versions)} versions of {args.name}",
        _VERSION_COLUMNS,
        _version_rows(versions, model.aliases),
    )
    return 0


def models_transition(args: argparse.Namespace) -> int:
    from tracking.registry.entities import canonical_stage

    client = client_for(args)
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
    report(
        f"{args.name} v{moved.version} -> {moved.current_stage}",
        _VERSION_COLUMNS,
        _version_rows(changed, aliases),
    )
    return 0


def models_serve(args: argparse.Namespace) -> int:
    from tracking.servers.scoring import serve

    serve(args.model_uri, host=args.host, port=args.port, tracking_uri=args.tracking_uri)
    return 0


def models_predict(args: argparse.Namespace) -> int:
    from tracking.models import batch
    from tracking.servers.scoring import load_scoring_model

    fmt = batch.input_format(args.input_path, args.content_type)
    data, params = batch.read_input(args.input_path, fmt)
    model = load_scoring_model(args.model_uri, args.tracking_uri)
    predictions = batch.predict_batches(
        model, data, params, args.batch_size, progress=not args.no_progress
    )
    batch.write_output(predictions, args.output_path)
    return 0


def register(commands: Any) -> None:
    """Add this group's commands to the `trackflow` parser."""
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
    _model_uri_option(serve)
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
    predict = command(
        model_commands,
        "predict",
        models_predict,
        "Score a file (CSV, JSON or Parquet) with a model's pyfunc, checked against its signature.",
    )
    predict.description = f"{predict.description} {PICKLE_WARNING}"
    _model_uri_option(predict)
    predict.add_argument(
        "--input-path", "-i", required=True, help="the file to score (.csv, .json, .parquet)"
    )
    predict.add_argument(
        "--content-type",
        "-t",
        choices=("csv", "json", "parquet"),
        help="the input's format (default: from its extension); json is the scoring "
        "server's request format (dataframe_split, dataframe_records, instances, inputs)",
    )
    predict.add_argument(
        "--output-path",
        "-o",
        help="where to write the predictions: .csv or .parquet (a table), else JSON "
        '{"predictions": [...]}; default: JSON on stdout',
    )
    predict.add_argument(
        "--batch-size",
        type=int,
        default=10_000,
        help="rows scored at a time (default: 10000); a progress bar shows the batches",
    )
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")


def _model_uri_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-uri",
        "-m",
        required=True,
        metavar="MODEL_URI",
        help="runs:/<run_id>/<path>, models:/<name>/<version|stage>, models:/<name>@<alias>, "
        "or a model folder",
    )
