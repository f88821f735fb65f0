"""Tracking servers for the tests, each on a free 127.0.0.1 port: ours in a subprocess
(`start_server`, ready once /health answers, stopped with Ctrl+C, SIGINT, to its process group)
or in a thread of the test process (`serving`, for many short-lived servers), and a stock
`mlflow server` (`MlflowServer`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from s3_servers import _log_tail, _stop_process_group

from tracking.stores import get_store
from tracking.stores.base import TrackingStore

STARTUP_TIMEOUT = 60.0
MLFLOW_BOOT_TIMEOUT = 240.0  # MLflow's server imports for a long time on a busy machine

# HTTP clients in the tests: no telemetry, no retries (a 5xx must surface), no stray settings.
CLIENT_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
CLIENT_ENV_CLEARED = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
    "MLFLOW_ARTIFACT_ROOT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "TRACKFLOW_HTTP_RETRY_TIMEOUT",
)


def quiet_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply CLIENT_ENV and clear CLIENT_ENV_CLEARED for one test."""
    for name in CLIENT_ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in CLIENT_ENV.items():
        monkeypatch.setenv(name, value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run the ASGI `app` with uvicorn in a thread; yield its base URL; stop it afterwards."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Server:
    url: str
    backend_uri: str
    workdir: Path
    destination: Path | None
    process: subprocess.Popen[bytes]
    log: Path

    def store(self) -> TrackingStore:
        """Our own store on the server's backend, opened in the test process."""
        return get_store(self.backend_uri)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    workdir: Path,
    backend_uri: str,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Server:
    """``python -m tracking.servers.api`` on `port` (default: a free one); returns once /health
    answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = workdir / "server.log"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKFLOW_SERVER_")}
    child_env.update(env or {})
    command = [sys.executable, "-m", "tracking.servers.api", "--backend-store-uri", backend_uri]
    command += ["--host", "127.0.0.1", "--port", str(port), *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    destination = None
    if "--artifacts-destination" in args:
        value = args[args.index("--artifacts-destination") + 1]
        destination = Path(value) if "://" not in value else None
    server = Server(f"http://127.0.0.1:{port}", backend_uri, workdir, destination, process, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).text == "OK":
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server did not start in {STARTUP_TIMEOUT}s:\n{server.log_text()}")


def stop_server(server: Server) -> None:
    """SIGINT (what Ctrl+C sends) to the server's process group; SIGKILL if it hangs."""
    interrupt(server.process)


def interrupt(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (what Ctrl+C sends) to the process group of `process`, started with
    start_new_session=True; SIGKILL if it does not exit within 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class MlflowServer:
    """`python -m mlflow server` (SQLite backend, artifact proxy into `destination`) in its own
    process group; it boots from construction on, `wait()` returns its URL once it answers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{free_port()}"
        self.destination = root / "mlartifacts"
        self.log = root / "server.log"
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_CLEARED}
        env.update(CLIENT_ENV, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(self.destination),
            "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1],
            "--workers", "1",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def log_tail(self) -> str:
        return _log_tail(self.log)

    def wait(self) -> str:
        deadline = time.monotonic() + MLFLOW_BOOT_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).text.strip() == "OK":
                    return self.url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up in {MLFLOW_BOOT_TIMEOUT} s:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        _stop_process_group(self.proc)
