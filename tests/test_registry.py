"""The model registry, against every store (file, SQLite, PostgreSQL), and model URIs.

Also: MLflow 3 reading (and writing) our file registry, concurrent register_model calls getting
distinct version numbers, and the SQL migration from a database created before the registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import tracking
import tracking.pyfunc
import tracking.sklearn
from tracking import TrackingClient, registry
from tracking.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from tracking.registry import RegistryUnavailableError, get_registry_store
from tracking.registry.uris import parse_model_uri, resolve_model_uri
from tracking.stores.file.registry import FileRegistryStore
from tracking.stores.sql.registry import SqlRegistryStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["file", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Track (and register) into a fresh store of each kind; yields the kind."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'store.db'}"
    elif request.param == "postgresql":
        uri = request.getfixturevalue("postgres_uri")()
    else:
        uri = str(tmp_path / "mlruns")
    tracking.set_tracking_uri(uri)
    yield request.param
    registry.set_registry_uri(None)


@pytest.fixture
def client(backend: str) -> TrackingClient:
    return TrackingClient()


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


def _log_model(model: Any, metric: float | None = None, path: str = "model") -> str:
    """Log `model` in a new run; returns its runs:/ URI."""
    with tracking.start_run() as run:
        if metric is not None:
            tracking.log_metric("accuracy", metric)
        tracking.sklearn.log_model(model, path)
    return f"runs:/{run.info.run_id}/{path}"


@pytest.fixture
def model_uri(client: TrackingClient, iris: tuple[np.ndarray, np.ndarray]) -> str:
    return _log_model(LogisticRegression(max_iter=300).fit(*iris))


# --- lifecycle ---------------------------------------------------------------------------------
def test_full_lifecycle(client: TrackingClient, model_uri: str) -> None:
    run_id = model_uri.split("/")[1]
    created = client.create_registered_model("iris", tags={"team": "ds"}, description="first")
    assert (created.name, created.description, created.tags) == ("iris", "first", {"team": "ds"})
    assert created.latest_versions == [] and created.aliases == {}
    assert created.creation_timestamp == created.last_updated_timestamp

    v1 = tracking.register_model(model_uri, "iris", tags={"k": 1})
    assert (v1.name, v1.version, v1.current_stage, v1.status) == ("iris", 1, "None", "READY")
    assert v1.run_id == run_id
    assert v1.tags == {"k": "1"}
    # The source is the run's artifact location, not the runs:/ URI.
    assert v1.source == f"{client.get_run(run_id).info.artifact_uri}/model"
    assert client.get_model_version_download_uri("iris", 1) == v1.source
    v2 = client.register_model(model_uri, "iris")
    assert v2.version == 2

    model = client.get_registered_model("iris")
    assert model.last_updated_timestamp >= v2.creation_timestamp
    assert [(v.version, v.current_stage) for v in model.latest_versions] == [(2, "None")]

    assert client.update_registered_model("iris", description="second").description == "second"
    updated = client.update_model_version("iris", "1", description="v1 notes")
    assert (updated.version, updated.description) == (1, "v1 notes")

    client.set_registered_model_tag("iris", "owner", "alice")
    client.delete_registered_model_tag("iris", "team")
    client.delete_registered_model_tag("iris", "never-set")  # a missing tag is no error (MLflow)
    assert client.get_registered_model("iris").tags == {"owner": "alice"}
    client.set_model_version_tag("iris", 2, "validated", True)
    client.delete_model_version_tag("iris", 1, "k")
    assert client.get_model_version("iris", 2).tags == {"validated": "True"}
    assert client.get_model_version("iris", 1).tags == {}

    client.delete_model_version("iris", 2)
    with pytest.raises(
        NotFoundError, match=r"Model Version \(name=iris, version=2\) not found.*: 1"
    ):
        client.get_model_version("iris", 2)
    # Deleting is soft: the number is not given out again.
    assert client.register_model(model_uri, "iris").version == 3
    assert [v.version for v in tracking.search_model_versions(filter_string="name='iris'")] == [
        3,
        1,
    ]

    renamed = client.rename_registered_model("iris", "iris-clf")
    assert renamed.name == "iris-clf"
    assert renamed.tags == {"owner": "alice"}
    assert {v.name for v in renamed.latest_versions} == {"iris-clf"}
    assert client.get_model_version("iris-clf", 3).tags == {}
    assert client.get_model_version("iris-clf", 1).description == "v1 notes"
    with pytest.raises(NotFoundError, match="name=iris "):
        client.get_registered_model("iris")

    client.delete_registered_model("iris-clf")
    assert client.search_registered_models() == []
    with pytest.raises(NotFoundError, match="Registered Model with name=iris-clf not found"):
        client.get_model_version("iris-clf", 1)
    # Deleting a registered model is a hard delete: the name starts over at version 1.
    assert client.register_model(model_uri, "iris-clf").version == 1


def test_file_layout_is_mlflows(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    tracking.set_tracking_uri(tmp_path / "mlruns")
    model_uri = _log_model(LogisticRegression(max_iter=300).fit(*iris))
    client = TrackingClient()
    client.create_registered_model("iris", tags={"team": "ds", "a/b": "nested"})
    client.register_model(model_uri, "iris", tags={"k": "v"})
    client.register_model(model_uri, "iris")
    client.set_registered_model_alias("iris", "champion", 1)
    client.transition_model_version_stage("iris", 1, "Production")
    client.delete_model_version("iris", 2)

    root = tmp_path / "mlruns" / "models" / "iris"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "aliases/champion",
        "meta.yaml",
        "tags/a/b",
        "tags/team",
        "version-1/meta.yaml",
        "version-1/tags/k",
        "version-2/meta.yaml",
    ]
    assert (root / "aliases/champion").read_text() == "1"
    assert (root / "tags/team").read_text() == "ds"
    meta = yaml.safe_load((root / "meta.yaml").read_text())
    assert set(meta) == {
        "aliases",
        "creation_timestamp",
        "deployment_job_id",
        "deployment_job_state",
        "description",
        "last_updated_timestamp",
        "name",
        "workspace",
    }
    assert meta["aliases"] == {"champion": "1"} and meta["name"] == "iris"
    v1 = yaml.safe_load((root / "version-1/meta.yaml").read_text())
    assert v1["version"] == 1 and v1["current_stage"] == "Production"
    assert v1["status"] == "READY" and v1["source"] == v1["storage_location"]
    assert yaml.safe_load((root / "version-2/meta.yaml").read_text())["current_stage"] == (
        "Deleted_Internal"
    )
    # Our tracking store ignores the registry folder.
    assert [e.name for e in client.search_experiments()] == ["Default"]


# --- stages ------------------------------------------------------------------------------------
def test_stage_transitions(client: TrackingClient, model_uri: str) -> None:
    for _ in range(3):
        client.register_model(model_uri, "iris")

    staged = client.transition_model_version_stage("iris", 1, "staging")  # case-insensitive
    assert staged.current_stage == "Staging"
    assert client.transition_model_version_stage("iris", 1, "Production").current_stage == (
        "Production"
    )
    # Without archive_existing_versions two versions can share a stage.
    client.transition_model_version_stage("iris", 2, "Production")
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='iris'")}
    assert stages == {1: "Production", 2: "Production", 3: "None"}
    assert [v.version for v in client.get_latest_versions("iris", ["Production"])] == [2]

    # Version 3 to Production archives 1 and 2.
    promoted = tracking.transition_model_version_stage(
        "iris", "3", "Production", archive_existing_versions=True
    )
    assert promoted.current_stage == "Production"
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='iris'")}
    assert stages == {1: "Archived", 2: "Archived", 3: "Production"}
    latest = client.get_latest_versions("iris")
    assert [(v.version, v.current_stage) for v in latest] == [(3, "Production"), (2, "Archived")]
    assert client.get_latest_versions("iris", ["Staging"]) == []

    # Rolling back: an archived version can return to Production.
    client.transition_model_version_stage("iris", 1, "Production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='iris'")}
    assert stages == {1: "Production", 2: "Archived", 3: "Archived"}
    assert client.transition_model_version_stage("iris", 1, "None").current_stage == "None"

    with pytest.raises(InvalidParameterError, match="None, Staging, Production, Archived"):
        client.transition_model_version_stage("iris", 1, "Deployed")
    with pytest.raises(InvalidParameterError, match="None, Staging, Production, Archived"):
        client.transition_model_version_stage("iris", 1, "Deleted_Internal")
    with pytest.raises(InvalidParameterError, match="Staging or Production"):
        client.transition_model_version_stage("iris", 1, "Archived", archive_existing_versions=True)
    with pytest.raises(InvalidParameterError, match="Staging, Production"):
        client.get_latest_versions("iris", ["Live"])
    with pytest.raises(NotFoundError, match=r"Model Version \(name=iris, version=9\) .*: 1, 2, 3"):
        client.transition_model_version_stage("iris", 9, "Production")


# --- aliases -----------------------------------------------------------------------------------
def test_aliases(client: TrackingClient, model_uri: str) -> None:
    for _ in range(3):
        client.register_model(model_uri, "iris")
    client.set_registered_model_alias("iris", "champion", 1)
    tracking.set_registered_model_alias("iris", "challenger", "2")
    assert client.get_registered_model("iris").aliases == {"champion": 1, "challenger": 2}
    assert client.get_model_version("iris", 1).aliases == ["champion"]
    assert client.get_model_version_by_alias("iris", "champion").version == 1

    client.set_registered_model_alias("iris", "champion", 2)  # moves the alias
    assert client.get_model_version("iris", 1).aliases == []
    assert client.get_model_version("iris", 2).aliases == ["challenger", "champion"]
    assert client.get_model_version_by_alias("iris", "latest").version == 3

    client.delete_registered_model_alias("iris", "challenger")
    client.delete_registered_model_alias("iris", "challenger")  # already gone: no error
    assert tracking.get_registered_model("iris").aliases == {"champion": 2}
    with pytest.raises(NotFoundError, match=r"no alias 'challenger' \(its aliases: champion\)"):
        client.get_model_version_by_alias("iris", "challenger")

    # Deleting a version drops the aliases pointing at it.
    client.delete_model_version("iris", 2)
    assert client.get_registered_model("iris").aliases == {}
    client.delete_model_version("iris", 3)
    assert client.get_model_version_by_alias("iris", "latest").version == 1

    for reserved in ("latest", "Latest", "v1", "V12"):
        with pytest.raises(InvalidParameterError, match="reserved"):
            client.set_registered_model_alias("iris", reserved, 1)
    for bad in ("has space", "a/b", "dot.ted", ""):
        with pytest.raises(InvalidParameterError, match="lias"):
            client.set_registered_model_alias("iris", bad, 1)
    with pytest.raises(InvalidParameterError, match="at most 255"):
        client.set_registered_model_alias("iris", "a" * 256, 1)
    client.set_registered_model_alias("iris", "a-b_C9" + "x" * 249, 1)  # 255 is fine
    with pytest.raises(NotFoundError, match=r"Model Version \(name=iris, version=2\) not found"):
        client.set_registered_model_alias("iris", "prod", 2)
    with pytest.raises(NotFoundError, match="Registered Model with name=nope not found"):
        client.set_registered_model_alias("nope", "prod", 1)


# --- search ------------------------------------------------------------------------------------
def test_search(client: TrackingClient, model_uri: str) -> None:
    client.create_registered_model("iris-a", tags={"team": "a"})
    client.create_registered_model("iris-b", tags={"team": "b"})
    client.create_registered_model("Wine")
    for name in ("iris-a", "iris-b", "iris-b"):
        client.register_model(model_uri, name)
    other = _log_model(LogisticRegression(max_iter=300).fit(*load_iris(return_X_y=True)))
    client.register_model(other, "Wine", tags={"k": "v"})

    def names(**kw: Any) -> list[str]:
        return [m.name for m in client.search_registered_models(**kw)]

    assert names() == ["Wine", "iris-a", "iris-b"]
    assert names(filter_string="name LIKE 'iris%'") == ["iris-a", "iris-b"]
    assert names(filter_string="name ILIKE 'WINE'") == ["Wine"]
    assert names(filter_string="name = 'iris-b'") == ["iris-b"]
    assert names(filter_string="name != 'iris-b'") == ["Wine", "iris-a"]
    assert names(filter_string="tags.team = 'a'") == ["iris-a"]
    assert names(filter_string="name LIKE 'iris%' AND tags.team != 'a'") == ["iris-b"]
    assert names(order_by=["name DESC"]) == ["iris-b", "iris-a", "Wine"]
    assert names(filter_string="name = 'missing'") == []
    assert [m.name for m in tracking.search_registered_models(filter_string="name LIKE 'i%'")] == [
        "iris-a",
        "iris-b",
    ]

    first = client.search_registered_models(max_results=2)
    assert [m.name for m in first] == ["Wine", "iris-a"] and first.token
    second = client.search_registered_models(max_results=2, page_token=first.token)
    assert [m.name for m in second] == ["iris-b"] and second.token is None
    assert len(tracking.search_registered_models(max_results=2)) == 2

    def versions(filter_string: str | None = None, **kw: Any) -> list[tuple[str, int]]:
        found = client.search_model_versions(filter_string, **kw)
        return [(v.name, v.version) for v in found]

    assert sorted(versions()) == [("Wine", 1), ("iris-a", 1), ("iris-b", 1), ("iris-b", 2)]
    assert versions("name = 'iris-b'", order_by=["version_number"]) == [
        ("iris-b", 1),
        ("iris-b", 2),
    ]
    assert versions("name='iris-b' AND version_number > 1") == [("iris-b", 2)]
    run_id = other.split("/")[1]
    assert versions(f"run_id = '{run_id}'") == [("Wine", 1)]
    assert versions(f"run_id IN ('{run_id}', 'nope')") == [("Wine", 1)]
    assert versions("tags.k = 'v'") == [("Wine", 1)]
    assert versions("source_path LIKE '%/artifacts/model'", order_by=["name ASC"])[0] == (
        "Wine",
        1,
    )
    assert versions("name = 'missing'") == []
    assert versions("name = 'not/a/name'") == []
    assert names(filter_string="name = 'not/a/name'") == []
    assert versions(order_by=["name ASC", "version_number DESC"]) == [
        ("Wine", 1),
        ("iris-a", 1),
        ("iris-b", 2),
        ("iris-b", 1),
    ]

    with pytest.raises(InvalidParameterError, match="unknown registered model attribute 'stage'"):
        client.search_registered_models("stage = 'Production'")
    with pytest.raises(InvalidParameterError, match="only AND is supported"):
        client.search_model_versions("name = 'a' OR name = 'b'")
    with pytest.raises(InvalidParameterError, match=r"max_results must be in 1\.\.1000"):
        client.search_registered_models(max_results=1001)
    with pytest.raises(InvalidParameterError, match="filter_string="):
        tracking.search_model_versions("name = 'iris-a'")  # type: ignore[arg-type]


# --- validation ----------------------------------------------------------------------------------
def test_errors_name_what_is_wrong(client: TrackingClient, model_uri: str) -> None:
    client.create_registered_model("iris")
    with pytest.raises(AlreadyExistsError, match=r"Registered Model \(name=iris\) already exists"):
        client.create_registered_model("iris")
    with pytest.raises(NotFoundError, match="Registered Model with name=nope not found"):
        client.get_registered_model("nope")
    with pytest.raises(NotFoundError, match="Registered Model with name=nope not found"):
        client.get_latest_versions("nope")
    with pytest.raises(NotFoundError, match=r"Model Version \(name=iris, version=1\) not f"):
        client.get_model_version("iris", 1)
    for bad_version in ("abc", 0, -1, "1.5", None, True):
        with pytest.raises(InvalidParameterError, match="Invalid model version"):
            client.get_model_version("iris", bad_version)  # type: ignore[arg-type]
    for bad_name in ("a/b", "a:b", "50%", "", "  ", ".hidden", "x" * 257):
        with pytest.raises(InvalidParameterError, match="egistered model name"):
            client.create_registered_model(bad_name)
    with pytest.raises(InvalidParameterError, match="tag key"):
        client.set_registered_model_tag("iris", "../x", "v")
    with pytest.raises(InvalidParameterError, match="at most 100000"):
        client.set_registered_model_tag("iris", "big", "x" * 100_001)

    client.create_registered_model("other")
    with pytest.raises(AlreadyExistsError, match=r"Registered Model \(name=other\) already exists"):
        client.rename_registered_model("iris", "other")
    with pytest.raises(NotFoundError, match="name=nope "):
        client.rename_registered_model("nope", "fresh")
    with pytest.raises(NotFoundError, match="name=nope "):
        client.delete_registered_model("nope")

    run_id = model_uri.split("/")[1]
    with pytest.raises(NotFoundError, match="no MLmodel file"):
        client.register_model(f"runs:/{run_id}/not-a-model", "iris")
    with pytest.raises(NotFoundError, match="not found"):
        client.register_model("runs:/0123456789abcdef0123456789abcdef/model", "iris")
    with pytest.raises(InvalidParameterError, match="egistered model name"):
        client.register_model(model_uri, "a/b")
    with tracking.start_run() as run, pytest.raises(InvalidParameterError, match="model name"):
        tracking.sklearn.log_model(LogisticRegression(), "m", registered_model_name="a:b")
    assert client.list_artifacts(run.info.run_id) == []  # checked before logging anything
    assert client.search_model_versions("name = 'iris'") == []


# --- model URIs ----------------------------------------------------------------------------------
def test_model_uris_load_real_models(
    client: TrackingClient, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    linear = LogisticRegression(max_iter=300).fit(X, y)
    tree = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)  # predicts 2 classes
    assert not np.array_equal(linear.predict(X), tree.predict(X))

    with tracking.start_run():
        info = tracking.sklearn.log_model(linear, "model", registered_model_name="iris")
    assert info.registered_model_version == 1
    tree_uri = _log_model(tree, path="tree")
    assert tracking.register_model(tree_uri, "iris").version == 2
    client.transition_model_version_stage("iris", 1, "Production")
    client.transition_model_version_stage("iris", 2, "Staging")
    client.set_registered_model_alias("iris", "champion", 1)
    client.set_registered_model_alias("iris", "challenger", 2)

    expected = {
        info.model_uri: linear,
        tree_uri: tree,
        "models:/iris/1": linear,
        "models:/iris/2": tree,
        "models:/iris/Production": linear,
        "models:/iris/production": linear,
        "models:/iris/Staging": tree,
        "models:/iris/latest": tree,
        "models:/iris@champion": linear,
        "models:/iris@challenger": tree,
        "models:/iris@latest": tree,
        resolve_model_uri("models:/iris@champion", TrackingClient()): linear,
    }
    for uri, model in expected.items():
        pyfunc_model = tracking.pyfunc.load_model(uri)
        np.testing.assert_array_equal(pyfunc_model.predict(X), model.predict(X), err_msg=uri)
        assert type(pyfunc_model.get_raw_model()) is type(model)
        assert pyfunc_model.metadata["flavors"]["python_function"]["loader_module"] == (
            "mlflow.sklearn"
        )
        loaded = tracking.sklearn.load_model(uri)
        assert loaded.get_params() == model.get_params(), uri

    source = client.get_model_version("iris", 2).source
    assert resolve_model_uri("models:/iris/Staging", TrackingClient()) == source
    assert source.endswith("/artifacts/tree")
    assert resolve_model_uri(tree_uri, TrackingClient()) == source

    # A registered version's source can itself be registered again (models:/ -> same files).
    again = client.register_model("models:/iris@champion", "iris-copy")
    assert again.source == client.get_model_version("iris", 1).source
    assert again.run_id == info.run_id
    np.testing.assert_array_equal(
        tracking.pyfunc.load_model("models:/iris-copy/1").predict(X), linear.predict(X)
    )

    client.transition_model_version_stage("iris", 2, "Archived")
    with pytest.raises(NotFoundError, match=r"no version in stage 'Staging'.*1 \(Production\)"):
        tracking.pyfunc.load_model("models:/iris/Staging")
    with pytest.raises(NotFoundError, match="Registered Model with name=nope not found"):
        tracking.sklearn.load_model("models:/nope/1")
    with pytest.raises(NotFoundError, match=r"Model Version \(name=iris, version=7\)"):
        tracking.pyfunc.load_model("models:/iris/7")
    with pytest.raises(NotFoundError, match="no alias 'gone'"):
        tracking.pyfunc.load_model("models:/iris@gone")
    with pytest.raises(InvalidParameterError, match="neither a version number, a stage"):
        tracking.pyfunc.load_model("models:/iris/Deployed")
    with pytest.raises(InvalidParameterError, match=r"models:/<name>@<alias>"):
        tracking.sklearn.load_model("models:/iris")
    with pytest.raises(InvalidParameterError, match="LoggedModel"):
        tracking.sklearn.load_model("models:/m-0123456789abcdef")
    with pytest.raises(InvalidParameterError, match="Unsupported model URI scheme 'bogus'"):
        tracking.pyfunc.load_model("bogus://x/y")


def test_parse_model_uri() -> None:
    assert parse_model_uri("models:/iris/3").version == 3
    assert parse_model_uri("models:///iris/Production").stage == "Production"
    assert parse_model_uri("models:/iris@champion").alias == "champion"
    assert parse_model_uri("models:/my model/latest").latest
    assert parse_model_uri("models:/my model/latest").name == "my model"
    runs = parse_model_uri("runs:/abc/path/to/model/")
    assert (runs.run_id, runs.path) == ("abc", "path/to/model")
    assert parse_model_uri("/tmp/model").scheme == ""
    assert parse_model_uri("s3://bucket/model").scheme == "s3"
    for bad in ("runs:/", "models:/", "models:/iris/", "models:/@x", "models:/iris/1/extra"):
        with pytest.raises(InvalidParameterError):
            parse_model_uri(bad)


def test_pyfunc_errors(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    model = LogisticRegression(max_iter=300).fit(*iris)
    tracking.sklearn.save_model(model, tmp_path / "m")
    loaded = tracking.pyfunc.load_model(str(tmp_path / "m"))
    assert "LogisticRegression" in repr(loaded)
    with pytest.raises(InvalidParameterError, match="takes no inference params"):
        loaded.predict(iris[0], params={"x": 1})
    with pytest.raises(NotFoundError, match="no MLmodel file"):
        tracking.pyfunc.load_model(str(tmp_path))
    mlmodel = tmp_path / "m" / "MLmodel"
    meta = yaml.safe_load(mlmodel.read_text())
    meta["flavors"]["python_function"]["loader_module"] = "mlflow.pytorch"
    mlmodel.write_text(yaml.safe_dump(meta))
    with pytest.raises(InvalidParameterError, match=r"loader module 'mlflow\.pytorch'"):
        tracking.pyfunc.load_model(str(tmp_path / "m"))
    del meta["flavors"]["python_function"]
    mlmodel.write_text(yaml.safe_dump(meta))
    with pytest.raises(InvalidParameterError, match="no python_function flavor"):
        tracking.pyfunc.load_model(str(tmp_path / "m"))


# --- concurrency ---------------------------------------------------------------------------------
def test_concurrent_register_model_threads(client: TrackingClient, model_uri: str) -> None:
    """Threads registering at once (the model does not exist yet) get distinct versions."""
    count = 12
    barrier = threading.Barrier(count)
    versions: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            own = TrackingClient(tracking_uri=client.tracking_uri)
            barrier.wait()
            versions.append(own.register_model(model_uri, "iris").version)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=register) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(versions) == list(range(1, count + 1))
    found = client.search_model_versions("name = 'iris'", order_by=["version_number"])
    assert [v.version for v in found] == list(range(1, count + 1))


_REGISTER_SCRIPT = """
import sys, tracking
client = tracking.TrackingClient(sys.argv[1])
print(",".join(str(client.register_model(sys.argv[2], "iris").version) for _ in range(5)))
"""


@pytest.mark.parametrize("backend", ["file", "sqlite"], indirect=True)
def test_concurrent_register_model_processes(
    client: TrackingClient, model_uri: str, backend: str
) -> None:
    """Processes (flock for files, the database's write lock for SQLite) too."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REGISTER_SCRIPT, client.tracking_uri, model_uri],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    versions = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        versions += [int(v) for v in out.strip().split(",")]
    assert sorted(versions) == list(range(1, 21))


# --- compatibility with MLflow -------------------------------------------------------------------
@pytest.fixture
def mlflow_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    """MLflow 3's client on this test's file store (MLFLOW_ALLOW_FILE_STORE=true)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file://{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def make() -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    return make


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_mlflow_reads_our_file_registry(
    tmp_path: Path,
    mlflow_client: Callable[[], Any],
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    tracking.set_tracking_uri(tmp_path / "mlruns")
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    uri = _log_model(model)
    ours = TrackingClient()
    ours.create_registered_model("iris", tags={"team": "ds"}, description="Iris classifier")
    for _ in range(3):
        ours.register_model(uri, "iris", tags={"k": "v"})
    ours.transition_model_version_stage("iris", 1, "Production")
    ours.transition_model_version_stage("iris", 2, "Production", archive_existing_versions=True)
    ours.set_registered_model_alias("iris", "champion", 2)
    ours.update_model_version("iris", 2, "the best")
    ours.delete_model_version("iris", 3)
    ours.create_registered_model("wine")

    theirs = mlflow_client()
    models = {m.name: m for m in theirs.search_registered_models()}
    assert set(models) == {"iris", "wine"}
    iris_model = theirs.get_registered_model("iris")
    assert iris_model.description == "Iris classifier"
    assert iris_model.tags == {"team": "ds"}
    assert {a: int(v) for a, v in iris_model.aliases.items()} == {"champion": 2}
    versions = {int(v.version): v for v in theirs.search_model_versions("name='iris'")}
    assert {v: mv.current_stage for v, mv in versions.items()} == {1: "Archived", 2: "Production"}
    assert versions[2].aliases == ["champion"]
    assert versions[2].description == "the best"
    assert versions[2].tags == {"k": "v"}
    assert versions[2].run_id == uri.split("/")[1]
    assert versions[2].source == ours.get_model_version("iris", 2).source
    [production] = theirs.get_latest_versions("iris", stages=["Production"])
    assert int(production.version) == 2
    assert int(theirs.get_model_version_by_alias("iris", "champion").version) == 2

    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model("models:/iris@champion")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    # And the other way: what MLflow writes, we read (and number after).
    theirs.create_model_version("iris", versions[2].source, run_id=versions[2].run_id)
    theirs.set_registered_model_alias("iris", "challenger", "4")
    theirs.create_registered_model("made-by-mlflow", tags={"x": "y"})
    assert ours.get_model_version_by_alias("iris", "challenger").version == 4
    assert ours.get_registered_model("made-by-mlflow").tags == {"x": "y"}
    assert ours.register_model(uri, "iris").version == 5
    np.testing.assert_array_equal(
        tracking.pyfunc.load_model("models:/iris@challenger").predict(X), model.predict(X)
    )


# --- stores and URIs -----------------------------------------------------------------------------
def test_registry_store_follows_the_tracking_uri(tmp_path: Path) -> None:
    file_store = get_registry_store(str(tmp_path / "a"))
    assert isinstance(file_store, FileRegistryStore)
    assert file_store.models_dir == str(tmp_path / "a" / "models")
    assert get_registry_store(f"file://{tmp_path / 'a'}").root == str(tmp_path / "a")
    sql_store = get_registry_store(f"sqlite:///{tmp_path / 'r.db'}")
    assert isinstance(sql_store, SqlRegistryStore)
    tracking_store = TrackingClient(f"sqlite:///{tmp_path / 'r.db'}").store
    assert sql_store.database is tracking_store  # its transactions are the tracking store's
    from tracking.stores.rest.registry import RestRegistryStore

    assert isinstance(get_registry_store("http://x"), RestRegistryStore)
    with pytest.raises(RegistryUnavailableError, match="No model registry for 'ftp://x'"):
        get_registry_store("ftp://x")


def test_separate_registry_uri(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    tracking.set_tracking_uri(tmp_path / "mlruns")
    uri = _log_model(LogisticRegression(max_iter=300).fit(*iris))
    registry_db = f"sqlite:///{tmp_path / 'registry.db'}"
    try:
        tracking.set_registry_uri(registry_db)
        assert tracking.get_registry_uri() == registry_db
        assert tracking.register_model(uri, "iris").version == 1
    finally:
        tracking.set_registry_uri(None)
    assert tracking.get_registry_uri() == tracking.get_tracking_uri()
    assert tracking.search_registered_models() == []  # the file registry is empty
    explicit = TrackingClient(registry_uri=registry_db)
    assert explicit.get_model_version("iris", 1).run_id == uri.split("/")[1]
    assert not (tmp_path / "mlruns" / "models" / "iris").exists()


def test_sql_database_from_before_the_registry_is_upgraded(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    import tracking.stores.sql.migrations as migrations

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", os.path.dirname(migrations.__file__))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    assert migrations.current_revision(engine) == "0001"
    assert "registered_models" not in inspect(engine).get_table_names()

    with pytest.warns(UserWarning, match="from revision 0001 to MLflow's schema"):
        client = TrackingClient(url)
    assert migrations.current_revision(engine) == migrations.HEAD == "dc11669786a5"
    assert {
        "registered_models",
        "model_versions",
        "registered_model_tags",
        "model_version_tags",
        "registered_model_aliases",
    } <= set(inspect(engine).get_table_names())
    client.create_registered_model("iris")
    assert client.get_registered_model("iris").name == "iris"
