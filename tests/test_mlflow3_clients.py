"""MLflow 3 clients against `trackflow server`: LoggedModels, dataset inputs, registration.

Our server runs for real (``python -m tracking.servers.api`` on a free 127.0.0.1 port, artifacts
proxied) on the file store, SQLite and PostgreSQL. MLflow 3.17.2's own client logs a dataset
input and a scikit-learn model (a LoggedModel), logs a metric of the model on that dataset,
registers the model and loads it back by models:/<model_id> and models:/<name>/<version>; our
client reads the same LoggedModel and inputs. A decorated Prefect flow whose tasks take a
DataFrame and an ndarray records them as dataset inputs of the task runs (`log_inputs=True`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from server_process import Server, quiet_clients, start_server, stop_server
from sklearn.linear_model import LogisticRegression

import tracking
import tracking.pyfunc
from flows import flow
from tasks import task
from tracking import TrackingClient, state
from tracking.entities import LoggedModelStatus
from tracking.errors import InvalidParameterError, NotFoundError

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module", params=["file", "sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(f"mlflow3-{request.param}")
    backend = {
        "file": lambda: str(workdir / "mlruns"),
        "sqlite": lambda: f"sqlite:///{workdir / 'tracking.db'}",
        "postgresql": lambda: request.getfixturevalue("postgres").create_database(),
    }[request.param]()
    running = start_server(workdir, backend, "--artifacts-destination", str(workdir / "artifacts"))
    yield running
    stop_server(running)
    assert running.process.returncode == 0, running.log_text()
    assert "Traceback" not in running.log_text()


@pytest.fixture
def mlflow_client(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLflow's fluent API and client pointed at our server (reset afterwards)."""
    import mlflow

    quiet_clients(monkeypatch)
    # mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID for subprocesses: recorded as unset
    # (setenv, then delenv) so that the variable is removed again after the test
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
    mlflow.set_tracking_uri(server.url)
    yield mlflow
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    tracking.set_registry_uri(None)


def iris() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, data.target.to_numpy()


def test_mlflow_client_logs_registers_and_loads_a_logged_model(
    server: Server, mlflow_client: Any
) -> None:
    mlflow = mlflow_client
    X, y = iris()
    model = LogisticRegression(max_iter=300).fit(X, y)
    name = f"iris-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        dataset = mlflow.data.from_pandas(X, source="s3://bucket/iris.csv", name="iris")
        mlflow.log_input(dataset, context="training")
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
        mlflow.log_metric("accuracy", 0.97, model_id=info.model_id, dataset=dataset)
    assert info.model_id.startswith("m-")
    version = mlflow.register_model(info.model_uri, name)
    assert str(version.version) == "1"

    for uri in (f"models:/{info.model_id}", f"models:/{name}/1"):
        loaded = mlflow.sklearn.load_model(uri)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        np.testing.assert_array_equal(mlflow.pyfunc.load_model(uri).predict(X), model.predict(X))

    client = mlflow.MlflowClient()
    logged = client.get_logged_model(info.model_id)
    assert (logged.name, logged.source_run_id) == ("model", run.info.run_id)
    assert logged.status.name == "READY"
    linked = json.loads(logged.tags["mlflow.modelVersions"])
    assert {(v["name"], str(v["version"])) for v in linked} == {(name, "1")}
    metric = next(m for m in logged.metrics if m.key == "accuracy")
    assert (metric.value, metric.dataset_name, metric.dataset_digest) == (
        0.97,
        "iris",
        dataset.digest,
    )
    found = client.search_logged_models(
        [run.info.experiment_id], filter_string="metrics.accuracy > 0.9 AND name = 'model'"
    )
    assert [m.model_id for m in found] == [info.model_id]
    fetched = client.get_run(run.info.run_id)
    assert [o.model_id for o in fetched.outputs.model_outputs] == [info.model_id]
    (used,) = fetched.inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest) == ("iris", dataset.digest)
    assert {t.key: t.value for t in used.tags}["mlflow.data.context"] == "training"

    # our client reads the same LoggedModel and inputs, and loads the model itself
    ours = TrackingClient(server.url)
    same = ours.get_logged_model(info.model_id)
    assert (same.name, same.status, same.artifact_location) == (
        "model",
        LoggedModelStatus.READY,
        logged.artifact_location,
    )
    assert ours.get_run(run.info.run_id).inputs.dataset_inputs[0].dataset.digest == dataset.digest
    tracking.set_tracking_uri(server.url)
    try:
        listed = tracking.search_logged_models([run.info.experiment_id], "name = 'model'")
        assert [m.model_id for m in listed] == [info.model_id]
        loaded = tracking.pyfunc.load_model(f"models:/{info.model_id}")
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    finally:
        state.reset()


def test_mlflow_client_logged_model_lifecycle(server: Server, mlflow_client: Any) -> None:
    client = mlflow_client.MlflowClient()
    experiment_id = client.create_experiment(f"lifecycle-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    model = client.create_logged_model(
        experiment_id, name="candidate", params={"C": "1.0"}, tags={"team": "a"}
    )
    assert model.status.name == "PENDING"
    client.log_model_params(model.model_id, {"penalty": "l2"})
    client.set_logged_model_tags(model.model_id, {"stage": "dev"})
    client.delete_logged_model_tag(model.model_id, "team")
    client.log_metric(run.info.run_id, "loss", 0.5, step=1, model_id=model.model_id)
    client.log_metric(run.info.run_id, "loss", 0.25, step=2, model_id=model.model_id)
    assert client.finalize_logged_model(model.model_id, "FAILED").status.name == "FAILED"
    got = client.get_logged_model(model.model_id)
    assert got.params == {"C": "1.0", "penalty": "l2"}
    assert got.tags == {"stage": "dev"}
    assert [(m.key, m.value, m.step) for m in got.metrics] == [("loss", 0.25, 2)]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [0.5, 0.25]
    client.delete_logged_model(model.model_id)
    assert list(client.search_logged_models([experiment_id])) == []
    with pytest.raises(Exception, match="not found"):
        client.get_logged_model(model.model_id)


def test_bad_logged_model_requests_get_mlflow_errors(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        experiment_id = http.post(f"{API}/experiments/create", json={"name": "bad"}).json()[
            "experiment_id"
        ]
        answers = [
            http.post(f"{API}/logged-models", json={"experiment_id": experiment_id, "name": "a/b"}),
            http.post(f"{API}/logged-models", json={}),
            http.post(
                f"{API}/logged-models/search",
                json={"experiment_ids": [experiment_id], "filter": "metrics.x ~ 1"},
            ),
            http.patch(f"{API}/logged-models/m-{'0' * 32}", json={"status": "LOGGED_MODEL_BOGUS"}),
            http.get(f"{API}/metrics/get-history-bulk-interval", params={"metric_key": "x"}),
        ]
        for answer in answers:
            assert answer.status_code == 400, answer.text
            assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE", answer.text
        missing = http.get(f"{API}/logged-models/m-{'0' * 32}")
        assert (missing.status_code, missing.json()["error_code"]) == (
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        run_id = http.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()[
            "run"
        ]["info"]["run_id"]
        too_long = {"name": "d", "digest": "x" * 37, "source_type": "code", "source": "{}"}
        refused = http.post(
            f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": [{"dataset": too_long}]}
        )
        assert refused.status_code == 400
        assert "'digest' exceeds the maximum length of 36 characters" in refused.json()["message"]
        assert http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["inputs"] == {}
        # GenAI features are out of scope: MLflow's answer for an endpoint a server lacks
        for path in ("/api/3.0/mlflow/traces", "/graphql", "/ajax-api/2.0/mlflow/gateway-proxy"):
            answer = http.post(path, json={})
            assert (answer.status_code, answer.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


@task(log_inputs=True)
def train(features: pd.DataFrame, labels: np.ndarray, C: float) -> float:
    return float(
        LogisticRegression(C=C, max_iter=300).fit(features, labels).score(features, labels)
    )


@flow
def dataset_lineage(C: float = 1.0) -> float:
    X, y = iris()
    return train(X, y, C)


@pytest.mark.usefixtures("prefect_api")
def test_decorated_flow_records_dataset_inputs(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    quiet_clients(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    tracking.set_tracking_uri(server.url)
    try:
        dataset_lineage()
    finally:
        state.reset()
    client = mlflow.MlflowClient(server.url)
    experiment = client.get_experiment_by_name("dataset-lineage")
    (task_run,) = client.search_runs(
        [experiment.experiment_id], "tags.`prefect.task_name` = 'train'"
    )
    X, y = iris()
    inputs = {i.dataset.name: i for i in task_run.inputs.dataset_inputs}
    assert set(inputs) == {"features", "labels"}
    assert inputs["features"].dataset.digest == mlflow.data.from_pandas(X).digest
    assert inputs["labels"].dataset.digest == mlflow.data.from_numpy(y).digest
    assert json.loads(inputs["features"].dataset.profile) == {"num_rows": 150, "num_elements": 600}
    assert {t.key: t.value for t in inputs["labels"].tags} == {"mlflow.data.context": "input"}
    summaries = TrackingClient(server.url).store.search_datasets([experiment.experiment_id])
    assert {(s.name, s.context) for s in summaries} == {("features", "input"), ("labels", "input")}


def test_tracking_log_input_and_models_by_id_on_the_file_store(
    tracking_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our fluent API on the embedded store; MLflow's FileStore reads what it wrote."""
    X, y = iris()
    with tracking.start_run() as run:
        dataset = tracking.data.from_pandas(X, source="data/iris.csv", name="iris", targets=None)
        tracking.log_input(dataset, context="training", tags={"split": "all"})
        tracking.log_inputs([tracking.data.from_numpy(y, name="labels")], ["training"])
    client = TrackingClient()
    model = client.create_logged_model(
        run.info.experiment_id, name="m", source_run_id=run.info.run_id
    )
    client.log_outputs(run.info.run_id, [tracking.LoggedModelOutput(model.model_id, 3)])
    with pytest.raises(InvalidParameterError, match="Invalid model name"):
        client.create_logged_model(run.info.experiment_id, name="a.b")
    with pytest.raises(NotFoundError):
        client.log_outputs(run.info.run_id, [tracking.LoggedModelOutput(f"m-{'1' * 32}", 0)])
    with pytest.raises(InvalidParameterError, match="Cannot log list as a dataset"):
        tracking.log_input([1, 2, 3])

    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    theirs = mlflow.MlflowClient(tracking_uri=tracking_dir.as_uri())
    fetched = theirs.get_run(run.info.run_id)
    names = {i.dataset.name: i for i in fetched.inputs.dataset_inputs}
    assert names["iris"].dataset.digest == mlflow.data.from_pandas(X).digest
    assert names["iris"].dataset.source_type == "local"
    assert {t.key: t.value for t in names["iris"].tags} == {
        "split": "all",
        "mlflow.data.context": "training",
    }
    assert [(o.model_id, o.step) for o in fetched.outputs.model_outputs] == [(model.model_id, 3)]
    (found,) = theirs.search_logged_models([run.info.experiment_id])
    assert (found.model_id, found.name, found.status.name) == (model.model_id, "m", "PENDING")


def test_ui_run_page_lists_inputs_and_logged_models(server: Server, mlflow_client: Any) -> None:
    mlflow = mlflow_client
    mlflow.set_experiment(f"ui-{uuid.uuid4().hex[:8]}")
    X, y = iris()
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(X, name="iris-features"), context="training")
        info = mlflow.sklearn.log_model(LogisticRegression(max_iter=300).fit(X, y), name="clf")
    page = httpx.get(f"{server.url}/runs/{run.info.run_id}", timeout=30).text
    assert "Dataset inputs" in page and "iris-features" in page and "training" in page
    assert "Logged models" in page and f"models:/{info.model_id}" in page
    assert "sepal length (cm)" in page  # the dataset's columns


def test_bulk_metric_histories_for_charts(server: Server) -> None:
    """What MLflow's UI asks for its charts: every run's points, or samples of them."""
    client = TrackingClient(server.url)
    experiment_id = client.create_experiment(f"charts-{uuid.uuid4().hex[:8]}")
    run_ids = []
    for offset in (0, 1):
        run = client.create_run(experiment_id)
        client.log_batch(
            run.info.run_id,
            [
                tracking.Metric("loss", step / 100 + offset, 1000 + step, step)
                for step in range(100)
            ],
        )
        run_ids.append(run.info.run_id)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        sampled = http.get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": run_ids, "metric_key": "loss", "max_results": 10},
        ).json()["metrics"]
        for run_id in run_ids:
            steps = [m["step"] for m in sampled if m["run_id"] == run_id]
            assert steps[0] == 0 and steps[-1] == 99 and 10 <= len(steps) <= 12
            assert steps == sorted(steps)
        ranged = http.get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": run_ids[:1], "metric_key": "loss", "start_step": 40,
                    "end_step": 45, "max_results": 100},
        ).json()["metrics"]  # fmt: skip
        assert [m["step"] for m in ranged] == [40, 41, 42, 43, 44, 45]
        bulk = http.get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk",
            params={"run_id": run_ids, "metric_key": "loss", "max_results": 150},
        ).json()["metrics"]
        assert len(bulk) == 150 and {m["run_id"] for m in bulk} == set(run_ids)
        refused = http.get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": run_ids, "metric_key": "loss", "start_step": 5},
        )
        assert refused.status_code == 400
        assert "both must be specified" in refused.json()["message"]


def test_upload_artifact_and_runs_rooted_at_the_proxy_url(server: Server) -> None:
    """MLflow's UI uploads a file with upload-artifact, and reads it with /get-artifact; a run
    whose artifact URI is the proxy's http(s) URL (the root MLflow's own server hands out when
    started with one) is kept under the proxy's destination."""
    assert server.destination is not None
    store = server.store()
    try:
        name = f"http-root-{uuid.uuid4().hex[:8]}"
        location = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{name}"
        experiment_id = store.create_experiment(name, artifact_location=location)
    finally:
        store.close()
    client = TrackingClient(server.url)
    run_id = client.create_run(experiment_id).info.run_id
    upload = f"{server.url}/ajax-api/2.0/mlflow/upload-artifact"
    answer = httpx.post(upload, params={"run_uuid": run_id, "path": "notes/a.txt"}, content=b"hi")
    assert answer.status_code == 200, answer.text
    stored = list((server.destination / name).rglob("a.txt"))
    assert [path.read_bytes() for path in stored] == [b"hi"]
    got = httpx.get(f"{server.url}/get-artifact", params={"run_id": run_id, "path": "notes/a.txt"})
    assert (got.status_code, got.content) == (200, b"hi")
    assert [f.path for f in client.list_artifacts(run_id, "notes")] == ["notes/a.txt"]

    for params, message in (
        ({"run_uuid": run_id, "path": "../escape.txt"}, "Invalid path"),
        ({"path": "a.txt"}, "Request must specify run_uuid."),
        ({"run_uuid": run_id}, "Request must specify path."),
    ):
        bad = httpx.post(upload, params=params, content=b"x")
        assert (bad.status_code, bad.json()["message"]) == (400, message)
    assert not list(server.destination.rglob("escape.txt"))
