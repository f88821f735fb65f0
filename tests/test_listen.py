"""The commands that listen (`trackflow server`, `trackflow ui`, `trackflow models serve`):
one port rule, a clear one-line error for a bad or busy port, the announced address is the
one really listened on, and the UI answers only allowed Host headers as the server does.

Every command runs for real in its own process, on free 127.0.0.1 ports, and is stopped with
Ctrl+C (SIGINT to its process group).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from server_process import free_port, interrupt

import tracking
import tracking.sklearn
from tracking.servers.listen import bind

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

BAD_PORTS = ["-1", "65536", "99999", "abc", "5000.5"]
ANNOUNCED = re.compile(r"http://127\.0\.0\.1:(\d+)")
STARTUP_TIMEOUT = 60.0
FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:{port}",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
]
LOOPBACK_HOSTS = ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost:8080"]


@dataclass
class Stores:
    tracking_uri: str
    model: str  # a saved sklearn model folder, for `models serve`


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("listen")
    X, y = load_iris(return_X_y=True)
    tracking.sklearn.save_model(LogisticRegression(max_iter=300).fit(X, y), root / "model")
    tracking.TrackingClient(str(root / "mlruns")).create_experiment("listen")
    return Stores(str(root / "mlruns"), str(root / "model"))


COMMANDS = ["server", "ui", "models serve"]
HEALTH = {"server": "/health", "ui": "/", "models serve": "/ping"}


def command(name: str, stores: Stores, *args: str) -> list[str]:
    """`trackflow <name>` on the test stores, with `args` (e.g. --port)."""
    cli = [sys.executable, "-m", "tracking.cli", *name.split()]
    if name == "models serve":
        return [*cli, "-m", stores.model, *args]
    return [*cli, "--backend-store-uri", stores.tracking_uri, *args]


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(argv: list[str], workdir: Path) -> Running:
    """Run `argv` in its own process group; return once it announced where it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "out.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Running(process, log, "")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        found = ANNOUNCED.search(running.output())
        if found:
            running.url = found.group(0)
            return running
        time.sleep(0.1)
    interrupt(running.process)
    pytest.fail(f"{argv} announced no address:\n{running.output()}")


@contextmanager
def running(argv: list[str], workdir: Path) -> Iterator[Running]:
    started = start(argv, workdir)
    try:
        yield started
    finally:
        interrupt(started.process)
    assert "Traceback" not in started.output(), started.output()


def answers(url: str, path: str, host: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    return httpx.get(url + path, headers=headers, timeout=60)


# --------------------------------------------------------------------------- ports


@pytest.mark.parametrize("name", COMMANDS)
def test_bad_ports_are_refused_in_one_line(name: str, stores: Stores, tmp_path: Path) -> None:
    for port in BAD_PORTS:
        result = subprocess.run(
            command(name, stores, "--port", port),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, (port, result.stderr)
        error = result.stderr.strip().splitlines()[-1]
        assert f"invalid port {port!r}: use 1-65535, or 0 for any free port" in error, error
        assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("name", COMMANDS)
def test_a_busy_port_is_a_one_line_error(name: str, stores: Stores, tmp_path: Path) -> None:
    holder = bind("127.0.0.1", 0)
    try:
        port = holder.getsockname()[1]
        result = subprocess.run(
            command(name, stores, "--port", str(port)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.close()
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"Cannot listen on 127.0.0.1:{port}: " in result.stderr and "--port" in result.stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_the_announced_address_is_the_one_listened_on(
    name: str, stores: Stores, tmp_path: Path
) -> None:
    port = free_port()
    with running(command(name, stores, "--port", str(port)), tmp_path / "fixed") as fixed:
        assert fixed.url == f"http://127.0.0.1:{port}"
        assert answers(fixed.url, HEALTH[name]).status_code == 200
    with running(command(name, stores, "--port", "0"), tmp_path / "any") as chosen:
        assert int(chosen.url.rsplit(":", 1)[1]) > 0
        assert answers(chosen.url, HEALTH[name]).status_code == 200
    assert chosen.process.returncode == 0 and fixed.process.returncode == 0


def test_server_workers_listen_on_the_announced_port(stores: Stores, tmp_path: Path) -> None:
    """Worker processes share the socket bound first, and get the settings (here the artifact
    location flag) through the environment."""
    argv = command("server", stores, "--port", "0", "--workers", "2", "--host", "localhost")
    with running([*argv, "--allow-any-artifact-location"], tmp_path) as server:
        assert answers(server.url, "/health").text == "OK"
        assert f"MLFLOW_TRACKING_URI={server.url}" in server.output()
        for _ in range(4):  # whichever worker answers
            created = httpx.post(
                f"{server.url}/api/2.0/mlflow/experiments/create",
                json={"name": uuid.uuid4().hex, "artifact_location": (tmp_path / "x").as_uri()},
                timeout=60,
            )
            assert created.status_code == 200, created.text


# --------------------------------------------------------------------------- Host headers


@pytest.mark.parametrize("name", ["ui", "server"])
def test_only_allowed_host_headers_are_answered(name: str, stores: Stores, tmp_path: Path) -> None:
    """DNS rebinding: a page of another site, its name pointed at 127.0.0.1, sends its own
    name in Host. `trackflow ui` refuses it exactly as `trackflow server` does."""
    with running(command(name, stores, "--port", "0"), tmp_path / "default") as served:
        port = served.url.rsplit(":", 1)[1]
        for host in FOREIGN_HOSTS:
            response = answers(served.url, "/", host.format(port=port))
            assert response.status_code == 403, (host, response.status_code)
            assert response.json()["error_code"] == "PERMISSION_DENIED"
            assert "--allowed-hosts" in response.json()["message"]
            assert "listen" not in response.text  # the store's content is not in the answer
        for host in LOOPBACK_HOSTS:
            assert answers(served.url, "/", host.format(port=port)).status_code == 200, host
    allowed = ["--allowed-hosts", "tracking.example.com, *.corp.example"]
    argv = command(name, stores, "--port", "0", *allowed)
    with running(argv, tmp_path / "listed") as served:
        port = served.url.rsplit(":", 1)[1]
        for host in ("tracking.example.com", f"tracking.example.com:{port}", "ml.corp.example"):
            assert answers(served.url, "/", host).status_code == 200, host
        for host in ("evil.example", f"localhost:{port}"):
            assert answers(served.url, "/", host).status_code == 403, host
