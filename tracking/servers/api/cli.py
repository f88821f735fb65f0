"""``trackflow server``: run the tracking server with uvicorn.

tracking/cli.py adds the command with `add_server_command(subparsers)`; ``python -m
tracking.servers.api`` runs the same options without the ``server`` word.
"""

from __future__ import annotations

import argparse
import copy
import http
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from tracking.config import redact_uri
from tracking.servers.listen import (
    add_allowed_hosts_option,
    allowed_hosts,
    bind,
    is_loopback,
    port_number,
    serve,
    socket_url,
    uvicorn_config,
)

DESCRIPTION = (
    "Run an MLflow-compatible tracking server: MLflow's REST API (MLflow clients and "
    "trackflow connect with MLFLOW_TRACKING_URI=http://HOST:PORT) and, by default, an "
    "artifact proxy so that clients need no storage credentials."
)


#: "200 OK", ... as uvicorn's access lines end.
_STATUS_LINES: dict[object, str] = {
    status.value: f"{status.value} {status.phrase}" for status in http.HTTPStatus
}


class AccessFormatter(logging.Formatter):
    """uvicorn's access line, ``INFO:     127.0.0.1:5000 - "GET /health HTTP/1.1" 200 OK``,
    at less than half the CPU time of uvicorn's formatter (no copy of each record, no colours):
    one is written per request."""

    def format(self, record: logging.LogRecord) -> str:
        client, method, path, version, status = record.args  # type: ignore[misc]  # uvicorn passes this 5-tuple
        status_line = _STATUS_LINES.get(status, status)
        prefix = f"{record.levelname}:".ljust(9)
        return f'{prefix} {client} - "{method} {path} HTTP/{version}" {status_line}'


def _log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with `AccessFormatter` for the access lines."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"] = {"()": f"{__name__}.AccessFormatter"}
    return config


def add_server_options(parser: argparse.ArgumentParser) -> None:
    from tracking.servers.api.app import DEFAULT_MAX_REQUEST_BYTES

    parser.add_argument(
        "--backend-store-uri",
        default="./mlruns",
        metavar="URI",
        help="where experiments and runs live: a folder (file store), sqlite:///path.db or "
        "postgresql://... (default: ./mlruns)",
    )
    parser.add_argument(
        "--default-artifact-root",
        metavar="URI",
        help="artifact root of new experiments when not serving artifacts; with "
        "--serve-artifacts, the default --artifacts-destination",
    )
    parser.add_argument(
        "--serve-artifacts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="proxy artifact uploads and downloads through this server; new experiments get "
        "mlflow-artifacts:/ locations (default: on)",
    )
    parser.add_argument(
        "--artifacts-destination",
        metavar="URI",
        help="where proxied artifacts are stored: a folder or any fsspec URI such as "
        "s3://bucket/prefix (default: --default-artifact-root, else ./mlartifacts)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        "-p",
        type=port_number,
        default=5000,
        help="port to listen on, 1-65535, or 0 for any free port (default: 5000)",
    )
    parser.add_argument(
        "--workers", "-w", type=int, default=1, help="uvicorn worker processes (default: 1)"
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per request to stdout, as `mlflow server` does (default: on; "
        "--no-access-log saves a few percent of the server's CPU time under load)",
    )
    parser.add_argument(
        "--auth-token",
        metavar="TOKEN",
        default=None,
        help="require 'Authorization: Bearer TOKEN' (default: $TRACKFLOW_SERVER_TOKEN; prefer "
        "the variable, command lines are visible to other users)",
    )
    parser.add_argument(
        "--basic-auth",
        metavar="USER:PASSWORD",
        default=None,
        help="require HTTP basic credentials (default: $TRACKFLOW_SERVER_BASIC_AUTH)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help=f"largest API request body (default: {DEFAULT_MAX_REQUEST_BYTES})",
    )
    parser.add_argument(
        "--max-artifact-bytes",
        type=int,
        default=None,
        metavar="N",
        help="largest artifact upload through the proxy (default: no limit)",
    )
    add_allowed_hosts_option(parser)
    parser.add_argument(
        "--allow-any-artifact-location",
        action="store_true",
        help="let clients create experiments whose artifact_location lies outside this "
        "server's artifact roots (refused by default; the server never reads such locations "
        "for the REST API or the UI either way)",
    )


def add_server_command(subparsers: Any) -> None:
    """Add ``server`` to a `trackflow` sub-command group (argparse subparsers)."""
    parser = subparsers.add_parser(
        "server", help="run an MLflow-compatible tracking server", description=DESCRIPTION
    )
    add_server_options(parser)
    parser.set_defaults(handler=run_server)


def _backend_uri(uri: str) -> str:
    scheme = urlsplit(uri).scheme
    if len(scheme) <= 1:  # a folder: absolute, so that every worker opens the same one
        return os.path.abspath(uri)
    return uri


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from tracking.servers.api.app import ENV_BASIC_AUTH, ENV_TOKEN

    return {
        "backend_store_uri": _backend_uri(args.backend_store_uri),
        "default_artifact_root": args.default_artifact_root,
        "serve_artifacts": args.serve_artifacts,
        "artifacts_destination": args.artifacts_destination,
        "auth_token": args.auth_token or os.environ.get(ENV_TOKEN) or None,
        "basic_auth": args.basic_auth or os.environ.get(ENV_BASIC_AUTH) or None,
        "max_request_bytes": args.max_request_bytes,
        "max_artifact_bytes": args.max_artifact_bytes,
        "allowed_hosts": allowed_hosts(args.allowed_hosts, args.host),
        "allow_any_artifact_location": args.allow_any_artifact_location,
    }


def run_server(args: argparse.Namespace) -> int:
    """Handler of ``trackflow server``: check the settings, then serve until Ctrl+C."""
    from tracking.servers.api.app import create_app, freeze_startup_objects, settings_to_env

    if args.workers < 1:
        print("trackflow server: error: --workers must be at least 1", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    try:
        app = create_app(**settings)  # fail fast, and run store migrations once
    except ValueError as e:
        print(f"trackflow server: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # e.g. the database is unreachable: one line, no traceback
        first_line = (str(e).strip().splitlines() or [""])[0]
        print(
            f"trackflow server: error: cannot open {redact_uri(settings['backend_store_uri'])}: "
            f"{type(e).__name__}: {first_line}",
            file=sys.stderr,
        )
        return 1
    sock = bind(args.host, args.port)
    _announce(app, settings, socket_url(sock))
    if not (settings["auth_token"] or settings["basic_auth"]) and not is_loopback(args.host):
        print(
            f"WARNING: listening on {args.host} without authentication: anyone who can reach "
            "this port can read and change all runs and artifacts. Set TRACKFLOW_SERVER_TOKEN "
            "or TRACKFLOW_SERVER_BASIC_AUTH.",
            file=sys.stderr,
            flush=True,
        )
    options: dict[str, Any] = {
        "server_header": False,
        "log_level": "info",
        "access_log": args.access_log,
        "log_config": _log_config(),
    }
    if args.workers == 1:
        freeze_startup_objects()
        serve(app, sock, **options)
    else:  # each worker process builds its own app from the environment
        os.environ.update(settings_to_env(settings))
        _run_workers(sock, args.workers, options)
    return 0


def _announce(app: Any, settings: dict[str, Any], url: str) -> None:
    """Where the server listens (`url`: the bound socket's address) and how it is set up."""
    context = app.state.trackflow
    artifacts = (
        f"proxied to {context.destination.uri}"
        if context.destination
        else f"clients write to {context.store.artifact_root}"
    )
    auth = "required" if settings["auth_token"] or settings["basic_auth"] else "off"
    print(f"Trackflow tracking server on {url}", flush=True)
    print(f"  backend store: {redact_uri(settings['backend_store_uri'])}", flush=True)
    print(f"  artifacts:     {artifacts}", flush=True)
    print(f"  auth:          {auth}", flush=True)
    if settings["allow_any_artifact_location"]:
        print("  experiments:   any artifact_location accepted", flush=True)
    print(f"Point clients at it with MLFLOW_TRACKING_URI={url}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)


def worker_app() -> Any:
    """uvicorn factory of each ``--workers N`` process: `app_from_env`, startup objects frozen."""
    from tracking.servers.api.app import app_from_env, freeze_startup_objects

    app = app_from_env()
    freeze_startup_objects()
    return app


def _run_workers(sock: socket.socket, workers: int, options: dict[str, Any]) -> None:
    from uvicorn.supervisors import Multiprocess

    app = f"{__name__}:worker_app"
    config = uvicorn_config(app, sock, factory=True, workers=workers, **options)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tracking.servers.api``: the server options, no sub-command."""
    from tracking.errors import TrackingError

    parser = argparse.ArgumentParser(prog="python -m tracking.servers.api", description=DESCRIPTION)
    add_server_options(parser)
    args = parser.parse_args(argv)
    try:
        return run_server(args)
    except TrackingError as e:
        print(f"trackflow server: error: {e}", file=sys.stderr)
        return 1
