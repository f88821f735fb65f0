"""The tracking server reads and accepts artifact locations only under its artifact roots.

Real servers (``python -m tracking.servers.api`` on free ports, tests/server_process.py), real HTTP:
the REST API and the web UI the server serves apply one served-roots rule, so no client can make
the server read a folder outside its roots (the attack: an experiment whose artifact_location is
``file:///<dir>`` plus a run with a chosen id, whose artifacts the UI would then serve from
``<dir>/<run id>/artifacts``). New experiments must lie under the roots unless the operator
starts the server with --allow-any-artifact-location. MLflow's own client keeps working.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import Server, quiet_clients, start_server, stop_server

import tracking

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

API = "/api/2.0/mlflow"
FLAG = "--allow-any-artifact-location"
SECRET = f"TOP-SECRET-{uuid.uuid4().hex}"
UI_FILE_ROUTES = ("raw", "download", "preview")


@dataclass
class Site:
    """A server with its folders: `outside` is a folder of the server's machine outside its
    artifact roots, holding what no client may read through the server."""

    server: Server
    destination: Path
    outside: Path

    @property
    def url(self) -> str:
        return self.server.url


def _site(workdir: Path, backend: str, *args: str) -> Iterator[Site]:
    destination = workdir / "artifacts"
    outside = workdir / "outside"
    outside.mkdir(parents=True)
    server = start_server(workdir, backend, "--artifacts-destination", str(destination), *args)
    try:
        yield Site(server, destination, outside)
    finally:
        stop_server(server)
    assert server.process.returncode == 0, server.log_text()
    assert "Traceback" not in server.log_text()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The default server: file store, artifact proxy."""
    workdir = tmp_path_factory.mktemp("strict")
    yield from _site(workdir, str(workdir / "mlruns"))


@pytest.fixture(scope="module")
def permissive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose operator allows any artifact location: SQLite store, artifact proxy."""
    workdir = tmp_path_factory.mktemp("permissive")
    yield from _site(workdir, f"sqlite:///{workdir / 'tracking.db'}", FLAG)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_experiment(url: str, location: str | None, prefix: str = "/api") -> httpx.Response:
    body: dict[str, Any] = {"name": unique("exp")}
    if location is not None:
        body["artifact_location"] = location
    return httpx.post(f"{url}{prefix}/2.0/mlflow/experiments/create", json=body, timeout=60)


def plant_secret(outside: Path, location: Path, run_id: str) -> None:
    """What the attacker wants: a file where the run's artifacts would be."""
    folder = location / run_id / "artifacts"
    folder.mkdir(parents=True)
    (folder / "secret.txt").write_text(SECRET)
    assert folder.is_relative_to(outside)


def assert_nothing_served(url: str, run_id: str) -> None:
    """REST and every UI artifact endpoint refuse the run's artifacts and leak nothing."""
    listed = httpx.get(f"{url}{API}/artifacts/list", params={"run_id": run_id}, timeout=60)
    assert listed.status_code == 400, listed.text
    assert "outside the locations this server serves" in listed.json()["message"]
    for route in UI_FILE_ROUTES:
        response = httpx.get(f"{url}/runs/{run_id}/artifacts/{route}?path=secret.txt", timeout=60)
        assert response.status_code == 400, (route, response.status_code)
        assert "outside the locations this server serves" in response.text, route
        assert SECRET not in response.text, route
    for path in (f"/runs/{run_id}/artifacts", f"/runs/{run_id}/artifacts?fragment=1"):
        response = httpx.get(url + path, timeout=60)
        assert response.status_code == 400, path
        assert "secret.txt" not in response.text and SECRET not in response.text
    page = httpx.get(f"{url}/runs/{run_id}?artifact=secret.txt", timeout=60)
    assert page.status_code == 200  # the run page itself shows, with the refusal in place
    assert "outside the locations this server serves" in page.text
    assert "secret.txt" not in page.text.replace("artifact=secret.txt", "")
    assert SECRET not in page.text


# --------------------------------------------------------------------------- creating experiments


def test_experiments_outside_the_roots_are_refused(strict: Site) -> None:
    link = strict.destination / "link-out"
    link.symlink_to(strict.outside, target_is_directory=True)
    refused = [
        strict.outside.as_uri(),
        str(strict.outside),  # a plain path
        "file:///etc",
        f"file://localhost{strict.outside}",
        f"{link.as_uri()}/exp",  # inside a root by name, outside once the symlink is followed
        "s3://some-other-bucket/prefix",
        "mlflow-artifacts://other-server:5000/team",  # another server's proxy
        "http://127.0.0.1:1/api/2.0/mlflow-artifacts/artifacts/x",
    ]
    for location in refused:
        for prefix in ("/api", "/ajax-api"):
            response = create_experiment(strict.url, location, prefix)
            assert response.status_code == 400, (location, response.text)
            answer = response.json()
            assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
            message = answer["message"]
            assert repr(location) in message, message
            assert "mlflow-artifacts:/" in message and strict.destination.as_uri() in message
            assert FLAG in message
    store = strict.server.store()
    names = {e.artifact_location for e in store.search_experiments(max_results=1000)}
    assert names.isdisjoint(refused)  # nothing was created


def test_experiments_under_the_roots_are_accepted(strict: Site) -> None:
    default = create_experiment(strict.url, None).json()["experiment_id"]
    proxied = create_experiment(strict.url, "mlflow-artifacts:/team-a").json()["experiment_id"]
    direct_location = f"{strict.destination.as_uri()}/direct"
    direct = create_experiment(strict.url, direct_location).json()["experiment_id"]
    store_root = Path(strict.server.backend_uri)
    in_store = create_experiment(strict.url, str(store_root / "kept-here")).json()
    store = strict.server.store()
    assert store.get_experiment(default).artifact_location == f"mlflow-artifacts:/{default}"
    assert store.get_experiment(proxied).artifact_location == "mlflow-artifacts:/team-a"
    assert store.get_experiment(direct).artifact_location == direct_location
    assert store.get_experiment(in_store["experiment_id"]).artifact_location.endswith("kept-here")


def test_the_flag_accepts_any_location(permissive: Site) -> None:
    response = create_experiment(permissive.url, permissive.outside.as_uri())
    assert response.status_code == 200, response.text
    experiment = permissive.server.store().get_experiment(response.json()["experiment_id"])
    assert experiment.artifact_location == permissive.outside.as_uri()
    assert "any artifact_location accepted" in permissive.server.log_text()


def test_mlflow_client_keeps_working(strict: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's client in its normal cases: the server's default location and a location of
    its own in the proxy's mlflow-artifacts:/ space; elsewhere, a clear MlflowException."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    quiet_clients(monkeypatch)
    client = MlflowClient(tracking_uri=strict.url)
    default = client.create_experiment(unique("mlflow-default"))
    assert client.get_experiment(default).artifact_location == f"mlflow-artifacts:/{default}"
    run = client.create_run(default)
    client.log_text(run.info.run_id, "from mlflow", "a/b.txt")
    assert [f.path for f in client.list_artifacts(run.info.run_id, "a")] == ["a/b.txt"]
    mine = client.create_experiment(unique("mlflow-own"), artifact_location="mlflow-artifacts:/own")
    run = client.create_run(mine)
    client.log_text(run.info.run_id, "own place", "x.txt")
    stored = strict.destination / "own" / run.info.run_id / "artifacts" / "x.txt"
    assert stored.read_text() == "own place"
    with pytest.raises(MlflowException) as caught:
        client.create_experiment(unique("mlflow-out"), artifact_location=strict.outside.as_uri())
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert strict.outside.as_uri() in caught.value.message and FLAG in caught.value.message


# --------------------------------------------------------------------------- reading artifacts


def test_the_attack_through_the_api_reads_nothing(permissive: Site) -> None:
    """The issue's sequence, on a server that accepts any location: experiment at
    file:///<dir>, run with a chosen id, files planted at <dir>/<run id>/artifacts."""
    experiment_id = create_experiment(permissive.url, permissive.outside.as_uri()).json()[
        "experiment_id"
    ]
    run_id = uuid.uuid4().hex
    created = httpx.post(
        f"{permissive.url}{API}/runs/create",
        json={"experiment_id": experiment_id, "run_id": run_id},
        timeout=60,
    )
    assert created.json()["run"]["info"]["run_id"] == run_id
    plant_secret(permissive.outside, permissive.outside, run_id)
    assert_nothing_served(permissive.url, run_id)


@pytest.mark.parametrize("where", ["outside", "symlink in a root"])
def test_runs_already_outside_the_roots_are_not_served(strict: Site, where: str) -> None:
    """Experiments written to the store directly (before the rule, or by a local process)."""
    if where == "outside":
        location = strict.outside / unique("old")
        location_uri = location.as_uri()
    else:
        link = strict.destination / unique("link")
        link.symlink_to(strict.outside, target_is_directory=True)
        location = strict.outside
        location_uri = link.as_uri()
    local = tracking.TrackingClient(strict.server.backend_uri)
    experiment_id = local.create_experiment(unique("planted"), artifact_location=location_uri)
    run_id = local.create_run(experiment_id, run_id=uuid.uuid4().hex).info.run_id
    plant_secret(strict.outside, location, run_id)
    assert_nothing_served(strict.url, run_id)


def test_the_ui_serves_runs_inside_the_roots(strict: Site) -> None:
    """Proxied runs (read from the proxy's destination) and runs under the file store's root;
    a symlink in a run's artifacts, or a run folder that is a symlink, leads nowhere."""
    remote = tracking.TrackingClient(strict.url)
    proxied = remote.create_run(remote.create_experiment(unique("proxied")))
    remote.log_text(proxied.info.run_id, "through the proxy\n", "notes/hello.txt")
    local = tracking.TrackingClient(strict.server.backend_uri)
    in_store = local.create_run(local.create_experiment(unique("in-store")))
    local.log_text(in_store.info.run_id, "in the store\n", "hello.txt")
    for run_id, path, text in (
        (proxied.info.run_id, "notes/hello.txt", "through the proxy\n"),
        (in_store.info.run_id, "hello.txt", "in the store\n"),
    ):
        base = f"{strict.url}/runs/{run_id}/artifacts"
        assert httpx.get(f"{base}/raw", params={"path": path}, timeout=60).text == text
        download = httpx.get(f"{base}/download", params={"path": path}, timeout=60)
        assert download.text == text
        assert download.headers["content-disposition"].startswith("attachment")
        preview = httpx.get(f"{base}/preview", params={"path": path}, timeout=60)
        assert preview.status_code == 200 and text.strip() in preview.text
        listing = httpx.get(base, timeout=60)
        assert listing.status_code == 200 and path.split("/")[0] in listing.text

    run_root = strict.destination / proxied.info.experiment_id / proxied.info.run_id / "artifacts"
    (strict.outside / "secret.txt").write_text(SECRET)
    (run_root / "escape").symlink_to(strict.outside, target_is_directory=True)
    escape = httpx.get(
        f"{strict.url}/runs/{proxied.info.run_id}/artifacts/raw?path=escape/secret.txt", timeout=60
    )
    assert escape.status_code == 400 and SECRET not in escape.text

    moved = remote.create_run(proxied.info.experiment_id)
    (strict.destination / proxied.info.experiment_id / moved.info.run_id).symlink_to(
        strict.outside, target_is_directory=True
    )
    (strict.outside / "artifacts").mkdir()
    (strict.outside / "artifacts" / "secret.txt").write_text(SECRET)
    for route in UI_FILE_ROUTES:
        response = httpx.get(
            f"{strict.url}/runs/{moved.info.run_id}/artifacts/{route}?path=secret.txt", timeout=60
        )
        assert response.status_code == 400 and SECRET not in response.text
