"""The model registry over REST: our server's registry endpoints and our REST registry client.

Our server runs for real (``python -m tracking.servers.api`` in a subprocess on a free 127.0.0.1
port, artifacts proxied), once per backend (file store, SQLite) for the module. MLflow's own client
registers, stages, aliases, searches, loads and deletes models there; our client does the same
through `tracking.TrackingClient(url)` and the fluent API, and raw HTTP checks MLflow's JSON
shapes, error codes and auth.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from server_process import Server, quiet_clients, start_server, stop_server
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import tracking
import tracking.pyfunc
import tracking.sklearn
from tracking import TrackingClient
from tracking.errors import AlreadyExistsError, InvalidParameterError, NotFoundError, TrackingError
from tracking.registry import get_registry_store
from tracking.stores.rest.registry import RestRegistryStore

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

API = "/api/2.0/mlflow"
TOKEN = "registry-secret"


# --------------------------------------------------------------------------- the server


def proxied(workdir: Path) -> tuple[str, ...]:
    """Artifacts proxied by the server, stored under workdir/artifacts."""
    return ("--artifacts-destination", str(workdir / "artifacts"))


@pytest.fixture(scope="module", params=["file", "sqlite"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(f"registry-server-{request.param}")
    if request.param == "file":
        backend = str(workdir / "mlruns")
    else:
        backend = f"sqlite:///{workdir / 'tracking.db'}"
    running = start_server(workdir, backend, *proxied(workdir))
    yield running
    stop_server(running)
    assert running.process.returncode == 0, running.log_text()
    assert "Traceback" not in running.log_text()


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Quiet, fail-fast HTTP clients; MLflow's and our registry globals reset afterwards."""
    quiet_clients(monkeypatch)
    yield
    tracking.set_registry_uri(None)
    if "mlflow" in sys.modules:
        mlflow = sys.modules["mlflow"]
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@pytest.fixture
def mlflow(server: Server, client_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    import mlflow
    import mlflow.tracking.fluent as mlflow_fluent

    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(server.url)
    return mlflow


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def log_model_via_proxy(url: str, model: Any, registered_model_name: str | None = None) -> Any:
    """Log `model` with our client into a new run on the server (artifacts through its proxy)."""
    tracking.set_tracking_uri(url)
    with tracking.start_run():
        return tracking.sklearn.log_model(
            model, "model", registered_model_name=registered_model_name
        )


def post(http: httpx.Client, endpoint: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"{API}/{endpoint}", json=body)


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("error_code")


def new_run(http: httpx.Client) -> dict[str, Any]:
    """A run created over raw HTTP; returns its info."""
    response = post(http, "runs/create", {"experiment_id": "0", "start_time": 1})
    return response.json()["run"]["info"]  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- MLflow's client


def test_mlflow_client_uses_our_registry(
    server: Server, mlflow: Any, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = iris
    first = LogisticRegression(max_iter=300).fit(X, y)
    second = DecisionTreeClassifier(random_state=0).fit(X, y)
    info1 = log_model_via_proxy(server.url, first)
    info2 = log_model_via_proxy(server.url, second)
    name = unique("iris")

    mv1 = mlflow.register_model(info1.model_uri, name)
    mv2 = mlflow.register_model(info2.model_uri, name, tags={"algo": "tree"})
    assert (mv1.version, mv2.version) == ("1", "2")
    assert mv1.run_id == info1.run_id and mv1.status == "READY"
    assert mv1.source == f"mlflow-artifacts:/0/{info1.run_id}/artifacts/model"
    assert mv2.tags == {"algo": "tree"}

    client = mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    with pytest.raises(mlflow.exceptions.MlflowException) as exc:
        client.create_registered_model(name)
    assert exc.value.error_code == "RESOURCE_ALREADY_EXISTS"

    # tags and descriptions
    team = unique("vision")
    client.set_registered_model_tag(name, "team", team)
    client.set_registered_model_tag(name, "tmp", "x")
    client.delete_registered_model_tag(name, "tmp")
    client.update_registered_model(name, description="iris classifiers")
    client.set_model_version_tag(name, "1", "validated", "yes")
    client.delete_model_version_tag(name, "2", "algo")
    client.update_model_version(name, "2", description="a tree")
    model = client.get_registered_model(name)
    assert model.tags == {"team": team}
    assert model.description == "iris classifiers"
    assert client.get_model_version(name, "1").tags == {"validated": "yes"}
    assert client.get_model_version(name, "2").tags == {}
    assert client.get_model_version(name, "2").description == "a tree"

    # stages: archive_existing_versions moves the old Production version to Archived
    assert client.transition_model_version_stage(name, "1", "Production").current_stage == (
        "Production"
    )
    moved = client.transition_model_version_stage(
        name, "2", "production", archive_existing_versions=True
    )
    assert moved.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions(name, ["Production"])] == ["2"]
    assert {(v.version, v.current_stage) for v in client.get_latest_versions(name)} == {
        ("1", "Archived"),
        ("2", "Production"),
    }
    assert {v.version for v in client.get_registered_model(name).latest_versions} == {"1", "2"}

    # aliases
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version(name, "1").aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "1", "challenger": "2"}
    client.delete_registered_model_alias(name, "challenger")
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    with pytest.raises(mlflow.exceptions.MlflowException) as exc:
        client.get_model_version_by_alias(name, "challenger")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # search (MLflow's client adds a prompt-tag clause to every registered-model filter)
    found = client.search_registered_models(filter_string=f"name = '{name}'")
    assert [m.name for m in found] == [name]
    assert name in [
        m.name for m in mlflow.search_registered_models(filter_string=f"name LIKE '{name[:8]}%'")
    ]
    assert [m.name for m in client.search_registered_models(f"tags.team = '{team}'")] == [name]
    versions = client.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"])
    assert [v.version for v in versions] == ["1", "2"]
    page = client.search_model_versions(f"name = '{name}'", max_results=1)
    assert len(page) == 1 and page.token
    rest = client.search_model_versions(f"name = '{name}'", max_results=1, page_token=page.token)
    assert {page[0].version, rest[0].version} == {"1", "2"} and not rest.token
    by_run = client.search_model_versions(f"run_id = '{info2.run_id}'")
    assert [(v.name, v.version) for v in by_run] == [(name, "2")]

    # loading: models:/name@alias, models:/name/<stage>, models:/name/<version>
    assert client.get_model_version_download_uri(name, "1") == mv1.source
    by_alias = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(by_alias.predict(X), first.predict(X))
    by_stage = mlflow.sklearn.load_model(f"models:/{name}/Production")
    np.testing.assert_array_equal(by_stage.predict(X), second.predict(X))
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path))
    assert (Path(local) / "MLmodel").is_file()

    # what the server wrote, read with our own registry store on its backend
    ours = get_registry_store(server.backend_uri)
    assert ours.get_model_version_by_alias(name, "champion").version == 1
    assert ours.get_model_version(name, 2).current_stage == "Production"
    if not server.backend_uri.startswith("sqlite"):
        meta = Path(server.backend_uri) / "models" / name / "version-1" / "meta.yaml"
        assert yaml.safe_load(meta.read_text())["source"] == mv1.source

    # deleting: a version, then the model
    client.delete_model_version(name, "1")
    with pytest.raises(mlflow.exceptions.MlflowException) as exc:
        client.get_model_version(name, "1")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_registered_model(name).aliases == {}  # the alias went with it
    assert mlflow.register_model(info1.model_uri, name).version == "3"  # numbers not reused
    client.delete_registered_model(name)
    with pytest.raises(mlflow.exceptions.MlflowException) as exc:
        client.get_registered_model(name)
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_registered_models(filter_string=f"name = '{name}'") == []


def test_mlflow_client_rename_and_prompt_filter(
    server: Server, mlflow: Any, http: httpx.Client
) -> None:
    client = mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    prefix = unique("rn")
    client.create_registered_model(f"{prefix}-a", tags={"k": "v"}, description="first")
    client.rename_registered_model(f"{prefix}-a", f"{prefix}-b")
    renamed = client.get_registered_model(f"{prefix}-b")
    assert (renamed.tags, renamed.description) == ({"k": "v"}, "first")
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_registered_model(f"{prefix}-a")
    # A registered model tagged as an MLflow prompt is not listed by MLflow's model search
    prompt_tag = {"key": "mlflow.prompt.is_prompt", "value": "true"}
    post(http, "registered-models/create", {"name": f"{prefix}-p", "tags": [prompt_tag]})
    listed = client.search_registered_models(f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert [m.name for m in listed] == [f"{prefix}-b"]
    everything = TrackingClient(server.url).search_registered_models(f"name LIKE '{prefix}%'")
    assert sorted(m.name for m in everything) == [f"{prefix}-b", f"{prefix}-p"]
    prompts = http.get(
        f"{API}/registered-models/search",
        params={"filter": f"name LIKE '{prefix}%' AND tags.`mlflow.prompt.is_prompt` = 'true'"},
    ).json()["registered_models"]
    assert [m["name"] for m in prompts] == [f"{prefix}-p"]


# --------------------------------------------------------------------------- our client


def test_our_client_registers_and_loads_models(
    server: Server, client_env: None, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = iris
    first = LogisticRegression(max_iter=300).fit(X, y)
    second = DecisionTreeClassifier(random_state=0).fit(X, y)
    name = unique("ours")
    info = log_model_via_proxy(server.url, first, registered_model_name=name)
    assert info.registered_model_version == 1
    client = TrackingClient(server.url)
    assert isinstance(client.registry, RestRegistryStore)
    assert tracking.get_registry_uri() == server.url

    mv = client.get_model_version(name, 1)
    assert (mv.version, mv.run_id, mv.status) == (1, info.run_id, "READY")
    assert mv.source == f"mlflow-artifacts:/0/{info.run_id}/artifacts/model"
    client.transition_model_version_stage(name, 1, "Production")
    client.set_registered_model_alias(name, "champion", 1)
    expected = first.predict(X)
    for uri in (
        f"models:/{name}/1",
        f"models:/{name}/Production",
        f"models:/{name}@champion",
        f"models:/{name}/latest",
    ):
        np.testing.assert_array_equal(tracking.pyfunc.load_model(uri).predict(X), expected)
    np.testing.assert_array_equal(
        tracking.sklearn.load_model(f"models:/{name}@champion").predict(X), expected
    )
    # the download URI is the registry server's proxy URL: no tracking URI needed to fetch it
    download = client.get_model_version_download_uri(name, 1)
    assert download == (
        f"{server.url}/api/2.0/mlflow-artifacts/artifacts/0/{info.run_id}/artifacts/model"
    )

    # a second version, registered from a runs:/ URI, promoted with archiving
    info2 = log_model_via_proxy(server.url, second)
    mv2 = tracking.register_model(info2.model_uri, name, tags={"algo": "tree"})
    assert (mv2.version, mv2.tags) == (2, {"algo": "tree"})
    client.transition_model_version_stage(name, 2, "Production", archive_existing_versions=True)
    assert client.get_model_version(name, 1).current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions(name, ["Production"])] == [2]
    np.testing.assert_array_equal(
        tracking.pyfunc.load_model(f"models:/{name}/Production").predict(X), second.predict(X)
    )
    np.testing.assert_array_equal(
        tracking.pyfunc.load_model(f"models:/{name}@champion").predict(X), expected
    )
    # a version registered from a models:/ URI points at the version it names
    mv3 = client.register_model(f"models:/{name}@champion", name)
    assert (mv3.version, mv3.run_id, mv3.source) == (3, info.run_id, mv.source)
    np.testing.assert_array_equal(
        tracking.pyfunc.load_model(f"models:/{name}/3").predict(X), expected
    )

    # tags, descriptions, search and pages
    team = unique("vision")
    client.set_registered_model_tag(name, "team", team)
    client.update_registered_model(name, "iris models")
    client.update_model_version(name, 2, "a tree")
    client.set_model_version_tag(name, None, "checked", "yes", stage="Production")
    model = client.get_registered_model(name)
    assert (model.tags, model.description, model.aliases) == (
        {"team": team},
        "iris models",
        {"champion": 1},
    )
    assert {v.current_stage for v in model.latest_versions} == {"Archived", "Production", "None"}
    assert client.get_model_version(name, 2).tags == {"algo": "tree", "checked": "yes"}
    assert [m.name for m in client.search_registered_models(f"tags.team = '{team}'")] == [name]
    page = client.search_model_versions(f"name = '{name}'", max_results=2)
    rest = client.search_model_versions(f"name = '{name}'", max_results=2, page_token=page.token)
    assert sorted(v.version for v in [*page, *rest]) == [1, 2, 3] and rest.token is None
    assert [
        m.name for m in tracking.search_registered_models(filter_string=f"name = '{name}'")
    ] == [name]

    # errors come back as our exceptions, bad input fails before any request
    with pytest.raises(AlreadyExistsError):
        client.create_registered_model(name)
    with pytest.raises(NotFoundError, match="not found"):
        client.get_model_version(name, 99)
    with pytest.raises(NotFoundError):
        client.get_model_version_by_alias(name, "nobody")
    with pytest.raises(InvalidParameterError, match="reserved"):
        client.set_registered_model_alias(name, "latest", 1)
    with pytest.raises(InvalidParameterError, match="stage"):
        client.transition_model_version_stage(name, 1, "Prod")

    # rename and delete
    renamed = client.rename_registered_model(name, f"{name}-v2")
    assert renamed.name == f"{name}-v2" and renamed.aliases == {"champion": 1}
    np.testing.assert_array_equal(
        tracking.pyfunc.load_model(f"models:/{name}-v2@champion").predict(X), expected
    )
    client.delete_registered_model_alias(f"{name}-v2", "champion")
    client.delete_model_version(f"{name}-v2", 3)
    assert sorted(v.version for v in client.search_model_versions(f"name = '{name}-v2'")) == [1, 2]
    client.delete_registered_model(f"{name}-v2")
    with pytest.raises(NotFoundError):
        client.get_registered_model(f"{name}-v2")


def test_our_client_without_a_global_tracking_uri(
    server: Server, client_env: None, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    """TrackingClient(url) alone (the current tracking URI stays ./mlruns) loads from the
    server's registry and proxy."""
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    name = unique("alone")
    log_model_via_proxy(server.url, model, registered_model_name=name)
    tracking.set_tracking_uri("mlruns")
    client = TrackingClient(server.url, registry_uri=server.url)
    client.set_registered_model_alias(name, "champion", 1)
    from tracking.registry.uris import download_model

    local = download_model(f"models:/{name}@champion", str(Path.cwd() / "dl"), client)
    assert (Path(local) / "MLmodel").is_file()
    assert not (Path.cwd() / "mlruns" / "models" / name).exists()


def test_concurrent_registrations_get_distinct_versions(server: Server, client_env: None) -> None:
    http = httpx.Client(base_url=server.url, timeout=60)
    info = new_run(http)
    name = unique("race")
    client = TrackingClient(server.url)
    client.create_registered_model(name)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            mv = client.create_model_version(
                name, f"{info['artifact_uri']}/model", run_id=info["run_id"]
            )
            numbers.append(mv.version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    http.close()
    assert not errors
    assert sorted(numbers) == list(range(1, 9))


# --------------------------------------------------------------------------- raw HTTP


def test_json_shapes(http: httpx.Client) -> None:
    name = unique("shapes")
    created = post(
        http,
        "registered-models/create",
        {"name": name, "tags": [{"key": "team", "value": "a"}], "description": "d"},
    )
    assert created.status_code == 200, created.text
    model = created.json()["registered_model"]
    assert list(model) == [
        "name",
        "creation_timestamp",
        "last_updated_timestamp",
        "description",
        "tags",
    ]
    assert model["name"] == name and model["description"] == "d"
    assert isinstance(model["creation_timestamp"], int)
    assert model["tags"] == [{"key": "team", "value": "a"}]

    run = new_run(http)
    source = f"{run['artifact_uri']}/model"
    body = {
        "name": name,
        "source": source,
        "run_id": run["run_id"],
        "tags": [{"key": "k", "value": "v"}],
        "run_link": "http://example/run",
        "description": "first",
    }
    version = post(http, "model-versions/create", body).json()["model_version"]
    assert list(version) == [
        "name",
        "version",
        "creation_timestamp",
        "last_updated_timestamp",
        "current_stage",
        "description",
        "source",
        "run_id",
        "status",
        "tags",
        "run_link",
    ]
    assert version["version"] == "1" and isinstance(version["version"], str)
    assert isinstance(version["creation_timestamp"], int)
    assert (version["current_stage"], version["status"]) == ("None", "READY")
    assert (version["source"], version["run_id"]) == (source, run["run_id"])
    assert version["tags"] == [{"key": "k", "value": "v"}]
    assert version["run_link"] == "http://example/run"

    assert (
        post(
            http, "registered-models/alias", {"name": name, "alias": "champion", "version": "1"}
        ).json()
        == {}
    )
    by_alias = http.get(
        f"{API}/registered-models/alias", params={"name": name, "alias": "champion"}
    )
    assert by_alias.json()["model_version"]["aliases"] == ["champion"]
    got = http.get(f"{API}/registered-models/get", params={"name": name}).json()["registered_model"]
    assert got["aliases"] == [{"alias": "champion", "version": "1"}]
    assert [v["version"] for v in got["latest_versions"]] == ["1"]
    got_version = http.get(f"{API}/model-versions/get", params={"name": name, "version": "1"})
    assert got_version.json()["model_version"]["aliases"] == ["champion"]

    staged = post(
        http,
        "model-versions/transition-stage",
        {"name": name, "version": "1", "stage": "Staging", "archive_existing_versions": False},
    ).json()["model_version"]
    assert staged["current_stage"] == "Staging"
    for response in (
        post(http, "registered-models/get-latest-versions", {"name": name, "stages": ["Staging"]}),
        http.get(
            f"{API}/registered-models/get-latest-versions",
            params={"name": name, "stages": "Staging"},
        ),
    ):
        assert [v["version"] for v in response.json()["model_versions"]] == ["1"]
    uri = http.get(f"{API}/model-versions/get-download-uri", params={"name": name, "version": "1"})
    assert uri.json() == {"artifact_uri": source}

    patched = http.patch(f"{API}/registered-models/update", json={"name": name, "description": "x"})
    assert patched.json()["registered_model"]["description"] == "x"
    patched = http.patch(
        f"{API}/model-versions/update", json={"name": name, "version": "1", "description": "y"}
    )
    assert patched.json()["model_version"]["description"] == "y"
    post(http, "model-versions/set-tag", {"name": name, "version": "1", "key": "a", "value": "b"})
    deleted = http.request(
        "DELETE",
        f"{API}/model-versions/delete-tag",
        json={"name": name, "version": "1", "key": "a"},
    )
    assert deleted.status_code == 200 and deleted.json() == {}
    # DELETE with query parameters (as some HTTP tools send them) works too
    gone = http.delete(f"{API}/registered-models/alias", params={"name": name, "alias": "champion"})
    assert gone.status_code == 200
    assert (
        "aliases"
        not in http.get(f"{API}/registered-models/get", params={"name": name}).json()[
            "registered_model"
        ]
    )

    # search: pages carry next_page_token; the /ajax-api prefix serves the same API
    post(http, "registered-models/create", {"name": f"{name}-2"})
    first = http.get(
        f"{API}/registered-models/search",
        params={"filter": f"name LIKE '{name}%'", "max_results": 1, "order_by": "name ASC"},
    ).json()
    assert [m["name"] for m in first["registered_models"]] == [name]
    second = http.get(
        "/ajax-api/2.0/mlflow/registered-models/search",
        params={
            "filter": f"name LIKE '{name}%'",
            "max_results": 1,
            "order_by": "name ASC",
            "page_token": first["next_page_token"],
        },
    ).json()
    assert [m["name"] for m in second["registered_models"]] == [f"{name}-2"]
    assert "next_page_token" not in second
    versions = http.get(f"{API}/model-versions/search", params={"filter": f"name = '{name}'"})
    assert [v["version"] for v in versions.json()["model_versions"]] == ["1"]
    assert http.get(
        f"{API}/model-versions/search", params={"filter": "name = 'no-such-model'"}
    ).json() == {"model_versions": []}

    removed = http.request("DELETE", f"{API}/registered-models/delete", json={"name": f"{name}-2"})
    assert removed.json() == {}


def test_errors_carry_mlflow_codes(http: httpx.Client) -> None:
    name = unique("errors")
    assert error_of(post(http, "registered-models/create", {})) == (400, "INVALID_PARAMETER_VALUE")
    assert (
        "Missing value for required parameter 'name'"
        in (post(http, "registered-models/create", {}).json()["message"])
    )
    post(http, "registered-models/create", {"name": name})
    assert error_of(post(http, "registered-models/create", {"name": name})) == (
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    missing = http.get(f"{API}/registered-models/get", params={"name": "no-such-model"})
    assert error_of(missing) == (404, "RESOURCE_DOES_NOT_EXIST")
    missing = http.get(f"{API}/model-versions/get", params={"name": name, "version": "7"})
    assert error_of(missing) == (404, "RESOURCE_DOES_NOT_EXIST")
    bad_version = http.get(f"{API}/model-versions/get", params={"name": name, "version": "x"})
    assert error_of(bad_version) == (400, "INVALID_PARAMETER_VALUE")
    bad_name = post(http, "registered-models/create", {"name": "a/b"})
    assert error_of(bad_name) == (400, "INVALID_PARAMETER_VALUE")
    bad_filter = http.get(f"{API}/registered-models/search", params={"filter": "name ~ 'x'"})
    assert error_of(bad_filter) == (400, "INVALID_PARAMETER_VALUE")
    too_many = http.get(f"{API}/registered-models/search", params={"max_results": 1001})
    assert error_of(too_many) == (400, "INVALID_PARAMETER_VALUE")
    assert error_of(http.get(f"{API}/registered-models/create")) == (405, "BAD_REQUEST")
    assert error_of(http.delete(f"{API}/model-versions/transition-stage")) == (405, "BAD_REQUEST")

    run = new_run(http)
    inside = f"{run['artifact_uri']}/model"
    ok = post(
        http, "model-versions/create", {"name": name, "source": inside, "run_id": run["run_id"]}
    )
    assert ok.status_code == 200
    bad_sources = [
        {"source": inside},  # no run_id for a proxied source
        {"source": f"{run['artifact_uri']}/../../other", "run_id": run["run_id"]},
        {"source": "mlflow-artifacts:/0/elsewhere/artifacts/model", "run_id": run["run_id"]},
        {"source": "/etc", "run_id": run["run_id"]},
        {"source": "file:///etc/passwd"},
        {"source": "runs:/" + "0" * 32 + "/model", "run_id": run["run_id"]},
        {"source": "https://example.com/model"},
        {"source": "models:/m-0123456789abcdef"},
        {"source": inside, "run_id": run["run_id"], "model_id": "m-123"},
        {"source": inside, "run_id": "0" * 32},
        {"source": f"runs:/{run['run_id']}/model"},  # MLflow: a runs:/ source names its run_id
    ]
    for extra in bad_sources:
        response = post(http, "model-versions/create", {"name": name, **extra})
        assert error_of(response) == (400, "INVALID_PARAMETER_VALUE"), extra
    missing_model = post(
        http, "model-versions/create", {"name": "nope", "source": inside, "run_id": run["run_id"]}
    )
    assert error_of(missing_model) == (404, "RESOURCE_DOES_NOT_EXIST")
    # runs:/ and models:/ sources are accepted (lineage checked)
    runs_source = {"name": name, "source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"]}
    via_runs = post(http, "model-versions/create", runs_source).json()["model_version"]
    assert via_runs["run_id"] == run["run_id"]
    via_models = post(
        http, "model-versions/create", {"name": name, "source": f"models:/{name}/1"}
    ).json()["model_version"]
    assert (via_models["source"], via_models["run_id"]) == (f"models:/{name}/1", run["run_id"])
    uri = http.get(
        f"{API}/model-versions/get-download-uri",
        params={"name": name, "version": via_models["version"]},
    )
    assert uri.json() == {"artifact_uri": inside}

    stage = {"name": name, "version": "1", "stage": "Prod", "archive_existing_versions": False}
    assert error_of(post(http, "model-versions/transition-stage", stage)) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    stage = {"name": name, "version": "1", "stage": "Staging", "archive_existing_versions": "maybe"}
    assert error_of(post(http, "model-versions/transition-stage", stage)) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    alias = {"name": name, "alias": "v1", "version": "1"}
    assert error_of(post(http, "registered-models/alias", alias)) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    text = http.post(
        f"{API}/registered-models/create",
        content=b'{"name": "x"}',
        headers={"Content-Type": "text/plain"},
    )
    assert text.status_code == 415  # the tracking API's CSRF guard covers the registry too


def test_auth_covers_the_registry(
    tmp_path_factory: pytest.TempPathFactory,
    client_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    workdir = tmp_path_factory.mktemp("registry-auth")
    running = start_server(
        workdir, str(workdir / "mlruns"), *proxied(workdir), "--auth-token", TOKEN
    )
    try:
        search = f"{running.url}{API}/registered-models/search"
        assert httpx.get(search, timeout=30).status_code == 401
        denied = TrackingClient(running.url)
        with pytest.raises(TrackingError, match="Authentication required") as refused:
            denied.create_registered_model("secret-model")
        assert refused.value.error_code == "UNAUTHENTICATED"
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
        ours = TrackingClient(running.url)
        ours.create_registered_model("secret-model", tags={"a": "b"})
        theirs = mlflow.MlflowClient(tracking_uri=running.url, registry_uri=running.url)
        assert theirs.get_registered_model("secret-model").tags == {"a": "b"}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(search, headers=headers, timeout=30).status_code == 200
    finally:
        stop_server(running)
    assert "Traceback" not in running.log_text()


def test_local_sources_on_a_server_without_the_proxy(
    tmp_path_factory: pytest.TempPathFactory,
    client_env: None,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    """--no-serve-artifacts: runs keep file:// artifact URIs, which are valid sources inside
    the run's artifact folder only."""
    import mlflow

    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    workdir = tmp_path_factory.mktemp("registry-direct")
    running = start_server(
        workdir, str(workdir / "mlruns"), *proxied(workdir), "--no-serve-artifacts"
    )
    try:
        info = log_model_via_proxy(running.url, model, registered_model_name="direct")
        client = TrackingClient(running.url)
        source = client.get_model_version("direct", 1).source
        assert source == f"file://{workdir / 'mlruns'}/0/{info.run_id}/artifacts/model"
        np.testing.assert_array_equal(
            tracking.pyfunc.load_model("models:/direct/1").predict(X), model.predict(X)
        )
        mlflow.set_tracking_uri(running.url)
        assert mlflow.register_model(info.model_uri, "direct").source == source
        loaded = mlflow.pyfunc.load_model("models:/direct/2")
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        with pytest.raises(InvalidParameterError, match="contained within the artifact directory"):
            client.create_model_version("direct", str(workdir / "mlruns"), run_id=info.run_id)
    finally:
        stop_server(running)
    assert "Traceback" not in running.log_text()


def test_http_registry_uris_select_the_rest_store(tmp_path: Path) -> None:
    store = get_registry_store("http://127.0.0.1:1/prefix")
    assert isinstance(store, RestRegistryStore)
    assert get_registry_store("https://registry.example:8443") is not store
    client = TrackingClient(str(tmp_path / "mlruns"), registry_uri="http://127.0.0.1:1")
    assert isinstance(client.registry, RestRegistryStore)
    with pytest.raises(InvalidParameterError):  # checked before any request is sent
        client.create_registered_model("a/b")
