"""pytest plugin: MLflow's REST tests talk to `trackflow server` instead of MLflow's server.

Loaded with `-p mlflow_swap` (this folder on PYTHONPATH) by tests/peers/mlflow_suite.py. Once the
test modules are collected it replaces, in each module, the names their server fixtures call:

- `initialize_backend_stores(uri, default_artifact_root=...)` + `ServerThread(app, port)`
  (test_rest_tracking.py, test_model_registry.py): a `trackflow server` on that backend, with
  that artifact root and no artifact proxy (what MLflow's in-process app runs with);
- `_init_server(...)` and `_launch_server(...)` (test_mlflow_artifacts.py and the tests that
  start a server of their own): a `trackflow server` with the same options.

MLflow's fixtures skip its FileStore ("FileStore is no longer supported."): that skip is
lifted, so every test also runs against our file store. Trackflow's SQL schema is MLflow's, so
a SQLite database MLflow's own client writes to (MLflow's `db_uri` fixture) is served as it is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
FILESTORE_SKIP = "FileStore is no longer supported."
STARTUP_TIMEOUT = 60.0
_pending: dict[str, str | None] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TrackflowServer:
    """A `trackflow server` subprocess on 127.0.0.1, stopped (SIGTERM) on exit."""

    def __init__(
        self,
        backend: str,
        artifact_root: str | None,
        port: int | None = None,
        *,
        serve_artifacts: bool = False,
        artifacts_destination: str | None = None,
    ) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "tracking.cli", "server", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--backend-store-uri", backend]
        command += ["--no-access-log", "--allow-any-artifact-location"]
        if artifact_root:
            command += ["--default-artifact-root", artifact_root]
        command.append("--serve-artifacts" if serve_artifacts else "--no-serve-artifacts")
        if artifacts_destination:
            command += ["--artifacts-destination", artifacts_destination]
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(self.command, env=env)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trackflow server exited: {' '.join(self.command)}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return self.url
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"trackflow server did not start: {' '.join(self.command)}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _initialize_backend_stores(
    backend_store_uri: str | None = None,
    registry_store_uri: str | None = None,
    default_artifact_root: str | None = None,
    **_: Any,
) -> None:
    _pending["backend"] = backend_store_uri
    _pending["artifact_root"] = default_artifact_root


class ServerThread:
    """Stands in for MLflow's `ServerThread(app, port)`: serves what the fixture initialized.

    MLflow's in-process server shares its store with the test process, whose default tracking
    URI (MLflow's conftest) is the same database; here that default becomes the server, so what
    the tests write without naming a URI (MLflow's CLI, fluent calls) reaches it as well. The
    conftest restores its own URI after the test."""

    def __init__(self, app: Any, port: int) -> None:
        backend = _pending.get("backend")
        assert backend, "initialize_backend_stores was not called before ServerThread"
        self.server = TrackflowServer(backend, _pending.get("artifact_root"), port)

    def __enter__(self) -> str:
        import mlflow

        url = self.server.start()
        mlflow.set_tracking_uri(url)
        return url

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@contextlib.contextmanager
def _init_server(
    backend_uri: str,
    root_artifact_uri: str,
    extra_env: dict[str, Any] | None = None,
    app: str | None = None,
    server_type: str = "fastapi",
) -> Iterator[str]:
    server = TrackflowServer(backend_uri, root_artifact_uri)
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def _launch_server(
    host: str,
    port: int,
    backend_store_uri: str,
    default_artifact_root: str,
    artifacts_destination: str,
) -> Iterator[subprocess.Popen[bytes]]:
    server = TrackflowServer(
        backend_store_uri,
        None,
        port,
        serve_artifacts=True,
        artifacts_destination=artifacts_destination,
    )
    try:
        server.start()
        assert server.process is not None
        yield server.process
    finally:
        server.stop()


class _PytestWithoutFileStoreSkip(ModuleType):
    """`pytest` for the test modules, whose fixtures skip MLflow's FileStore: we run it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(pytest, name)

    @staticmethod
    def skip(reason: str = "", **kwargs: Any) -> None:
        if reason != FILESTORE_SKIP:
            pytest.skip(reason, **kwargs)


_REPLACEMENTS: dict[str, Any] = {
    "initialize_backend_stores": _initialize_backend_stores,
    "ServerThread": ServerThread,
    "_init_server": _init_server,
    "_launch_server": _launch_server,
    "pytest": _PytestWithoutFileStoreSkip("pytest"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    modules = {id(item.module): item.module for item in items if getattr(item, "module", None)}
    helpers = sys.modules.get("tests.tracking.integration_test_utils")
    for module in [*modules.values(), helpers]:
        if module is None:
            continue
        for name, replacement in _REPLACEMENTS.items():
            if name in vars(module):
                setattr(module, name, replacement)
