"""The `ui` command: ``trackflow ui [--host 127.0.0.1] [--port 5000] [--backend-store-uri URI]
[--allowed-hosts HOSTS]``.

`tracking.cli` adds it with ``add_ui_command(subparsers)``; ``python -m tracking.servers.ui``
runs it on its own. Importing this module is cheap: FastAPI and uvicorn load when the command runs.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from tracking.servers.listen import (
    add_allowed_hosts_option,
    allowed_hosts,
    bind,
    port_number,
    serve,
    socket_url,
    uvicorn_config,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000


def add_ui_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add `ui` to an argparse subparsers group; the handler is in `args.handler`."""
    description = (
        "Serve the web UI: experiments, runs as flow -> task trees, metric charts, artifacts, "
        "run comparison and scheduled-run series. Stop it with Ctrl+C."
    )
    parser = subparsers.add_parser("ui", help="serve the web UI", description=description)
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}; 0.0.0.0 exposes the UI, which has "
        "no authentication, to the network)",
    )
    parser.add_argument(
        "--port",
        "-p",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port to listen on, 1-65535, or 0 for any free port (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--backend-store-uri",
        "--tracking-uri",
        dest="tracking_uri",
        metavar="URI",
        help="store to show (default: $MLFLOW_TRACKING_URI or ./mlruns)",
    )
    add_allowed_hosts_option(parser)
    parser.set_defaults(handler=run_ui)
    return parser


#: uvicorn settings of the UI: quiet (no access log), no lifespan events.
UVICORN_OPTIONS: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "off"}


def make_server(app: Any, sock: socket.socket) -> Any:
    """A uvicorn.Server for `app` on a socket from `tracking.servers.listen.bind`, for tests and
    benchmarks that run it in a thread (``.run(sockets=[sock])``)."""
    import uvicorn

    return uvicorn.Server(uvicorn_config(app, sock, **UVICORN_OPTIONS))


def warm_up(uri: str) -> None:
    """Read every experiment's runs once, so the first page views find warm caches (the file
    store parses each run's meta.yaml once per process)."""
    try:
        from tracking.client import TrackingClient

        client = TrackingClient(uri)  # the same (cached) store object as the app's
        for experiment in client.search_experiments(max_results=1000):
            client.store.experiment_runs(experiment.experiment_id).stats()
    except Exception:  # only an optimisation: the pages report real errors themselves
        pass


def run_ui(args: argparse.Namespace) -> int:
    from tracking import config
    from tracking.config import redact_uri
    from tracking.servers.ui.app import create_ui_app, plotly_js_path

    uri = args.tracking_uri or config.get_tracking_uri()
    try:
        plotly_js_path()
    except RuntimeError as e:
        print(f"trackflow: error: {e}", file=sys.stderr)
        return 1
    # opens the store: a bad URI fails here, before listening
    app = create_ui_app(uri, allowed_hosts(args.allowed_hosts, args.host))
    sock = bind(args.host, args.port)
    print(f"Trackflow UI for {redact_uri(uri)}", flush=True)
    print(f"Listening on {socket_url(sock)}/ (press Ctrl+C to stop)", flush=True)
    threading.Thread(target=warm_up, args=(uri,), name="trackflow-ui-warm-up", daemon=True).start()
    serve(app, sock, **UVICORN_OPTIONS)
    print("Trackflow UI stopped.", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tracking.servers.ui`: the `ui` command alone."""
    parser = argparse.ArgumentParser(prog="trackflow")
    commands = parser.add_subparsers(dest="command")
    add_ui_command(commands)
    args = parser.parse_args(["ui", *(sys.argv[1:] if argv is None else argv)])
    from tracking.errors import TrackingError

    try:
        return int(args.handler(args))
    except TrackingError as e:
        print(f"trackflow: error: {e}", file=sys.stderr)
        return 1
