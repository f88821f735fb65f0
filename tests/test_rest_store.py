"""The REST store and the artifact proxy against a real `mlflow server`, plus retry behaviour.

One MLflow 3.x server (SQLite backend, artifacts proxied to a local folder) serves the module. It
boots in the background while the first tests (retries, errors) run against stub servers; on a
busy machine the boot takes a while, since it imports all of MLflow twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from s3_servers import free_port
from server_process import MlflowServer

import tracking
from tracking import TrackingClient, ViewType
from tracking.artifacts import ArtifactRepository
from tracking.entities import LifecycleStage, Metric, Param, RunStatus, RunTag
from tracking.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
    TrackingError,
)
from tracking.stores import get_store
from tracking.stores.rest.store import REQUESTED_RUN_ID_TAG, RestStore, split_proxy_uri

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

HOST = "127.0.0.1"
HTTP_ENV = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "TRACKFLOW_HTTP_RETRY_TIMEOUT",
)


# --------------------------------------------------------------------------- the MLflow server
@pytest.fixture(scope="module", autouse=True)
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Started when the module starts; tests that need it wait through `server_url`."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def http_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in HTTP_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server_url(mlflow_server: MlflowServer) -> str:
    """The server's URL, made the tracking URI of this test."""
    url = mlflow_server.wait()
    tracking.set_tracking_uri(url)
    return url


@pytest.fixture
def store(server_url: str) -> RestStore:
    store = get_store(server_url)
    assert isinstance(store, RestStore)
    return store


@pytest.fixture(scope="module")
def mlflow_client(mlflow_server: MlflowServer) -> Any:
    """MLflow's own client on the same server, to read back what we wrote (and vice versa)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.wait())


def unique(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- stub HTTP servers
class _StubHandler(BaseHTTPRequestHandler):
    server: _Stub

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        answers = self.server.answers
        status, payload, *headers = answers.pop(0) if len(answers) > 1 else answers[0]
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers[0] if headers else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: list[tuple[Any, ...]]) -> None:
        super().__init__((HOST, 0), _StubHandler)
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.url = f"http://{HOST}:{self.server_address[1]}"


@contextlib.contextmanager
def stub_server(*answers: tuple[Any, ...]) -> Iterator[_Stub]:
    """A local HTTP server answering (status, body[, headers]) in order, the last for ever."""
    stub = _Stub(list(answers))
    thread = threading.Thread(target=stub.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.shutdown()
        stub.server_close()


EXPERIMENT = {"experiment": {"experiment_id": "7", "name": "e", "artifact_location": "x"}}
UNAVAILABLE = (503, "<html>busy</html>")


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0.01")


# --------------------------------------------------------------------------- retries and errors
def test_503_twice_then_200_is_retried(fast_retries: None) -> None:
    with stub_server(UNAVAILABLE, UNAVAILABLE, (200, EXPERIMENT)) as stub:
        experiment = RestStore(stub.url).get_experiment("7")
    assert experiment.name == "e"
    assert [r[1] for r in stub.requests] == ["/api/2.0/mlflow/experiments/get?experiment_id=7"] * 3


def test_retries_are_bounded(fast_retries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    with stub_server(UNAVAILABLE) as stub, pytest.raises(TrackingError, match=r"HTTP 503") as e:
        RestStore(stub.url).get_experiment("7")
    assert len(stub.requests) == 3 and "3 attempt(s)" in str(e.value)


def test_client_errors_are_not_retried_and_keep_the_message(fast_retries: None) -> None:
    error = {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad filter here"}
    with (
        stub_server((400, error)) as stub,
        pytest.raises(InvalidParameterError, match="bad filter"),
    ):
        RestStore(stub.url).search_runs(["0"], "nonsense")
    assert len(stub.requests) == 1


def test_upload_body_is_sent_again_on_retry(fast_retries: None, tmp_path: Path) -> None:
    data = os.urandom(3 * 2**20 + 17)  # several streamed chunks
    (tmp_path / "model.bin").write_bytes(data)
    with stub_server(UNAVAILABLE, (200, "")) as stub:
        repo = ArtifactRepository(f"{stub.url}/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts")
        repo.log_artifact(tmp_path / "model.bin", "models")
    puts = [r for r in stub.requests if r[0] == "PUT"]
    assert len(puts) == 2
    assert {p[1] for p in puts} == {
        "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/models/model.bin"
    }
    assert all(p[3] == data for p in puts)


def test_nothing_listening_fails_fast_and_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0.05")
    url = f"http://{HOST}:{free_port()}"
    tracking.set_tracking_uri(url)
    started = time.monotonic()
    with pytest.raises(StorageError, match=f"Cannot reach tracking server at {url}") as e:
        tracking.start_run()
    assert time.monotonic() - started < 10
    assert "4 attempt(s)" in str(e.value) and "ConnectError" in str(e.value)


def test_total_retry_time_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "100")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0.2")
    monkeypatch.setenv("TRACKFLOW_HTTP_RETRY_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(StorageError, match="Cannot reach tracking server"):
        RestStore(f"http://{HOST}:{free_port()}").get_run("a" * 32)
    assert time.monotonic() - started < 5


def test_auth_from_environment_and_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    with stub_server((200, EXPERIMENT)) as stub:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
        store = RestStore(stub.url)
        store.get_experiment("7")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")  # the token wins, read per request
        store.get_experiment("7")
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME"):
            monkeypatch.delenv(name)
        RestStore(stub.url.replace("://", "://bob:pw@")).get_experiment("7")
    auth = [r[2].get("Authorization") for r in stub.requests]
    assert auth == ["Basic YW5uOnMzY3JldA==", "Bearer tok", "Basic Ym9iOnB3"]


def test_not_an_mlflow_server(fast_retries: None) -> None:
    expected = r"is .* an MLflow tracking server"
    with (
        stub_server((404, "<html>nope</html>")) as stub,
        pytest.raises(TrackingError, match=expected) as e,
    ):
        RestStore(stub.url.replace("://", "://u:hidden@") + "/prefix").get_experiment("1")
    assert "hidden" not in str(e.value) and "/prefix/api/2.0/mlflow/experiments/get" in str(e.value)


def test_redirects_are_explained(fast_retries: None) -> None:
    moved = (301, "", {"Location": "https://tracking.example/"})
    with (
        stub_server(moved) as stub,
        pytest.raises(TrackingError, match=r"https://tracking\.example"),
    ):
        RestStore(stub.url).get_experiment("1")


def test_a_server_that_honours_chosen_run_ids(fast_retries: None) -> None:
    """Trackflow's extension: runs/create takes "run_id"; no lookup tag is kept then."""
    wanted, second = uuid.uuid4().hex, uuid.uuid4().hex
    missing = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"}

    def created(run_id: str) -> tuple[int, dict]:
        info = {"run_id": run_id, "experiment_id": "0", "status": "RUNNING"}
        tags = [{"key": REQUESTED_RUN_ID_TAG, "value": run_id}]
        return 200, {"run": {"info": info, "data": {"tags": tags}}}

    answers = [(404, missing), (200, {"runs": []}), created(wanted), (200, {}), created(second)]
    with stub_server(*answers) as stub:
        store = RestStore(stub.url)
        run = store.create_run("0", "me", 0, [], "r", run_id=wanted)
        assert run.info.run_id == wanted and REQUESTED_RUN_ID_TAG not in run.data.tags
        assert store.create_run("0", "me", 0, [], "r", run_id=second).info.run_id == second
    calls = [(method, path.split("?")[0].rsplit("/", 2)[-2:]) for method, path, *_ in stub.requests]
    assert calls == [
        ("GET", ["runs", "get"]),  # is the id taken?
        ("POST", ["runs", "search"]),  # ... by a stock server, under its lookup tag?
        ("POST", ["runs", "create"]),
        ("POST", ["runs", "delete-tag"]),  # the server kept the id: the tag is not needed
        ("POST", ["runs", "create"]),  # known now: one request
    ]
    assert json.loads(stub.requests[-1][3])["run_id"] == second


def test_proxy_uri_mapping() -> None:
    tracking_uri = "https://host:5000/ml"
    assert split_proxy_uri("mlflow-artifacts:/1/r/artifacts", tracking_uri) == (
        "https://host:5000/ml",
        "1/r/artifacts",
    )
    assert split_proxy_uri("mlflow-artifacts://other:81/1/r", tracking_uri) == (
        "https://other:81/ml",
        "1/r",
    )
    proxy = "http://h:1/p/api/2.0/mlflow-artifacts/artifacts/1/a%20b"
    assert split_proxy_uri(proxy) == ("http://h:1/p", "1/a b")
    with pytest.raises(InvalidParameterError, match="set_tracking_uri"):
        ArtifactRepository("mlflow-artifacts:/1/r/artifacts")  # the tracking URI is ./mlruns


# --------------------------------------------------------------------------- against MLflow
def test_tracking_uri_selects_the_rest_store(server_url: str) -> None:
    assert isinstance(get_store(server_url.replace("http://", "https://")), RestStore)
    assert isinstance(tracking.TrackingClient().store, RestStore)
    assert tracking.get_experiment("0").name == "Default"


def test_experiments_crud(store: RestStore) -> None:
    name = unique()
    exp_id = store.create_experiment(name, tags={"team": "ds"})
    exp = store.get_experiment(exp_id)
    assert (exp.name, exp.tags, exp.lifecycle_stage) == (name, {"team": "ds"}, "active")
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert store.get_experiment_by_name(name).experiment_id == exp_id
    assert store.get_experiment_by_name(unique("missing")) is None
    with pytest.raises(AlreadyExistsError, match="already exists"):
        store.create_experiment(name)
    with pytest.raises(NotFoundError, match="987654"):
        store.get_experiment("987654")
    with pytest.raises(InvalidParameterError):
        store.get_experiment("../etc")
    store.set_experiment_tag(exp_id, RunTag("stage", "dev"))
    store.delete_experiment_tag(exp_id, "team")
    store.rename_experiment(exp_id, name + "-new")
    exp = store.get_experiment(exp_id)
    assert (exp.name, exp.tags) == (name + "-new", {"stage": "dev"})
    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == LifecycleStage.DELETED
    deleted = store.search_experiments(ViewType.DELETED_ONLY, filter_string=f"name = '{name}-new'")
    assert [e.experiment_id for e in deleted] == [exp_id]
    store.restore_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == LifecycleStage.ACTIVE
    with pytest.raises(InvalidParameterError, match="Default experiment"):
        store.delete_experiment("0")


def test_fluent_run_is_read_back_by_mlflow(server_url: str, mlflow_client: Any) -> None:
    exp = tracking.set_experiment(unique())
    with tracking.start_run(run_name="train", tags={"team": "x"}) as run:
        tracking.log_param("lr", 0.01)
        tracking.log_params({"depth": 3, "kind": "tree"})
        for step, loss in enumerate([0.9, 0.5, 0.25]):
            tracking.log_metric("loss", loss, step=step)
        tracking.log_metrics({"acc": 0.75, "inf": float("inf")})
        tracking.log_metric("nan", float("nan"))
        tracking.set_tag("stage", "dev")
        tracking.set_tags({"a": 1, "b": 2})
        tracking.delete_tag("b")
    run_id = run.info.run_id
    ours = tracking.get_run(run_id)
    assert ours.info.status == "FINISHED" and ours.info.end_time is not None
    assert ours.info.run_name == "train" and ours.info.experiment_id == exp.experiment_id
    assert ours.data.params == {"lr": "0.01", "depth": "3", "kind": "tree"}
    assert ours.data.metrics["loss"] == 0.25
    assert ours.data.metrics["inf"] > 1e308  # MLflow's SQL store clamps inf to the max float
    assert ours.data.metrics["nan"] != ours.data.metrics["nan"]
    expected_tags = {"team": "x", "stage": "dev", "a": "1", "mlflow.runName": "train"}
    assert expected_tags.items() <= ours.data.tags.items()
    assert "b" not in ours.data.tags and "mlflow.user" in ours.data.tags
    history = TrackingClient().get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.25)]

    theirs = mlflow_client.get_run(run_id)
    assert theirs.info.status == "FINISHED" and theirs.info.run_name == "train"
    assert theirs.data.params == ours.data.params
    assert {k: v for k, v in theirs.data.tags.items()} == ours.data.tags
    assert theirs.data.metrics["loss"] == 0.25 and theirs.data.metrics["inf"] > 1e308
    assert [m.value for m in mlflow_client.get_metric_history(run_id, "loss")] == [0.9, 0.5, 0.25]


def test_nested_runs(server_url: str) -> None:
    tracking.set_experiment(unique())
    with tracking.start_run(run_name="parent") as parent:
        with tracking.start_run(run_name="child", nested=True) as child:
            tracking.log_metric("m", 1)
        detached = tracking.start_run(parent_run_id=parent.info.run_id, run_name="other")
        tracking.end_run()
    for run in (child, detached):
        assert tracking.get_parent_run(run.info.run_id).info.run_id == parent.info.run_id
    children = tracking.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["attributes.run_name ASC"],
    )
    assert [r.info.run_name for r in children] == ["child", "other"]


def test_log_all_is_chunked_within_mlflow_limits(
    store: RestStore, mlflow_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp_id = store.create_experiment(unique())
    run = store.create_run(exp_id, "me", 0, [], "batch")
    calls: list[dict] = []
    call = store._http.call

    def counting(method: str, endpoint: str, body: Any = None) -> dict:
        if endpoint.endswith("runs/log-batch"):
            calls.append(body)
        return call(method, endpoint, body)

    monkeypatch.setattr(store._http, "call", counting)
    metrics = [Metric("loss", i / 10, 1_000 + i, i) for i in range(2500)]
    params = [Param(f"p{i}", "v" * 6000) for i in range(150)]  # 0.9 MB: the size limit splits
    tags = [RunTag(f"t{i}", f"{i}".ljust(8000, "t")) for i in range(120)]  # ... and 0.96 MB
    store.log_all(run.info.run_id, metrics, params + params[:3], tags)
    assert len(calls) >= 3
    for body in calls:
        assert len(body["metrics"]) <= 1000 and len(body["params"]) <= 100
        assert len(body["tags"]) <= 100
        assert len(body["metrics"]) + len(body["params"]) + len(body["tags"]) <= 1000
        assert len(json.dumps(body)) < 1_000_000
    history = store.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(2500))
    read = mlflow_client.get_run(run.info.run_id)
    assert len(read.data.params) == 150 and read.data.tags["t119"].startswith("119t")
    assert len(mlflow_client.get_metric_history(run.info.run_id, "loss")) == 2500


def test_search_runs_filter_order_and_pages(server_url: str) -> None:
    exp_id = tracking.create_experiment(unique())
    for i in range(7):
        with tracking.start_run(experiment_id=exp_id, run_name=f"r{i}"):
            tracking.log_param("kind", "a" if i % 2 == 0 else "b")
            tracking.log_metric("acc", i / 10)
    client = TrackingClient()
    where = "params.kind = 'a' and metrics.acc >= 0.2"
    pages, token = [], None
    while True:
        page = client.search_runs(
            exp_id, where, order_by=["metrics.acc DESC"], max_results=2, page_token=token
        )
        pages.append([r.info.run_name for r in page])
        token = page.token
        if not token:
            break
    assert pages == [["r6", "r4"], ["r2"]]
    runs = tracking.search_runs([exp_id], order_by=["metrics.acc ASC"])
    assert [r.info.run_name for r in runs] == [f"r{i}" for i in range(7)]
    frame = tracking.search_runs([exp_id], "metrics.acc > 0.4", output_format="pandas")
    assert sorted(frame["params.kind"]) == ["a", "b"]
    with pytest.raises(InvalidParameterError, match="Expected numeric value"):
        client.search_runs(exp_id, "metrics.acc LIKE 'x'")


def test_delete_and_restore_run(server_url: str) -> None:
    exp_id = tracking.create_experiment(unique())
    with tracking.start_run(experiment_id=exp_id) as run:
        pass
    run_id = run.info.run_id
    tracking.delete_run(run_id)
    assert tracking.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
    assert tracking.search_runs([exp_id]) == []
    assert len(tracking.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    with pytest.raises(InvalidParameterError, match="must be in the 'active' state"):
        TrackingClient().log_param(run_id, "late", 1)
    tracking.restore_run(run_id)
    assert [r.info.run_id for r in tracking.search_runs([exp_id])] == [run_id]


def test_errors_are_mapped_from_the_server(store: RestStore) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(NotFoundError, match=f"Run with id={missing} not found") as e:
        store.get_run(missing)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    exp_id = store.create_experiment(unique())
    run_id = store.create_run(exp_id, "me", 0, [], "r").info.run_id
    store.log_param(run_id, Param("lr", "1"))
    store.log_param(run_id, Param("lr", "1"))  # the same value again is fine
    with pytest.raises(InvalidParameterError, match="Changing param values is not allowed"):
        store.log_param(run_id, Param("lr", "2"))
    with pytest.raises(InvalidParameterError, match="Changing param values"):
        store.log_batch(run_id, [], [Param("lr", "3")], [])
    with pytest.raises(NotFoundError, match="No tag with name"):
        store.delete_tag(run_id, "absent")
    with pytest.raises(InvalidParameterError, match="metric"):  # checked before any request
        store.log_metric(run_id, Metric("m", "high", 0, 0))  # type: ignore[arg-type]
    store.update_run_info(run_id, "FAILED", 5)
    assert store.get_run(run_id).info.status == RunStatus.FAILED.name


def test_artifacts_through_the_proxy(server_url: str, mlflow_client: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.csv").write_text("x,y\n1,2\n")
    (src / "sub" / "deeper" / "c 1.json").write_text("{}")
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(5 * 2**20 + 3))
    tracking.set_experiment(unique())
    with tracking.start_run() as run:
        tracking.log_artifact(big)
        tracking.log_artifact(src / "a.txt", "single")
        tracking.log_artifacts(src, "tree")
        tracking.log_text("hello", "notes/hello.txt")
        tracking.log_dict({"k": [1, 2]}, "notes/conf.yaml")
    run_id = run.info.run_id
    uri = tracking.get_run(run_id).info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith(f"/{run_id}/artifacts")

    client = TrackingClient()
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [
        ("notes", True),
        ("single", True),
        ("tree", True),
        ("weights.bin", False),
    ]
    assert client.list_artifacts(run_id)[-1].file_size == big.stat().st_size
    assert [f.path for f in client.list_artifacts(run_id, "tree/sub")] == [
        "tree/sub/b.csv",
        "tree/sub/deeper",
    ]
    assert client.list_artifacts(run_id, "single/a.txt") == []
    assert client.list_artifacts(run_id, "nowhere") == []

    local = Path(client.download_artifacts(run_id, "", tmp_path / "all"))
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert files == [
        "notes/conf.yaml",
        "notes/hello.txt",
        "single/a.txt",
        "tree/a.txt",
        "tree/sub/b.csv",
        "tree/sub/deeper/c 1.json",
        "weights.bin",
    ]
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    assert hashlib.sha256((local / "weights.bin").read_bytes()).hexdigest() == digest
    one = client.download_artifacts(run_id, "notes/hello.txt", tmp_path / "one")
    assert Path(one).read_text() == "hello"
    with pytest.raises(NotFoundError, match="does not exist"):
        client.download_artifacts(run_id, "notes/missing.txt", tmp_path / "none")

    # MLflow's client reads the same bytes, and its uploads are visible to us.
    theirs = mlflow_client.download_artifacts(run_id, "tree/sub/b.csv", str(tmp_path / "m"))
    assert Path(theirs).read_text() == "x,y\n1,2\n"
    mlflow_client.log_text(run_id, "from mlflow", "mlflow/said.txt")
    assert [f.path for f in client.list_artifacts(run_id, "mlflow")] == ["mlflow/said.txt"]

    # The http(s) form of the proxy URI, and deletion.
    base = f"{server_url}/api/2.0/mlflow-artifacts/artifacts/{uri.split(':', 1)[1].strip('/')}"
    repo = ArtifactRepository(base)
    assert [f.path for f in repo.list_artifacts("notes")] == ["notes/conf.yaml", "notes/hello.txt"]
    repo.delete_artifacts("notes/hello.txt")
    repo.delete_artifacts("tree")
    repo.delete_artifacts("not/there")
    assert [f.path for f in client.list_artifacts(run_id)] == [
        "mlflow",
        "notes",
        "single",
        "weights.bin",
    ]


def test_mlflow_written_runs_read_by_trackflow(server_url: str, mlflow_client: Any) -> None:
    exp_id = mlflow_client.create_experiment(unique())
    run = mlflow_client.create_run(exp_id, run_name="theirs")
    mlflow_client.log_metric(run.info.run_id, "rmse", 0.5, step=3)
    mlflow_client.log_param(run.info.run_id, "alpha", "0.1")
    mlflow_client.log_text(run.info.run_id, "text", "out/t.txt")
    mlflow_client.set_terminated(run.info.run_id)
    ours = tracking.get_run(run.info.run_id)
    assert ours.info.run_name == "theirs" and ours.info.status == "FINISHED"
    assert ours.data.metrics == {"rmse": 0.5} and ours.data.params == {"alpha": "0.1"}
    path = TrackingClient().download_artifacts(run.info.run_id, "out/t.txt")
    assert Path(path).read_text() == "text"


def test_chosen_run_ids_on_a_stock_mlflow_server(store: RestStore, server_url: str) -> None:
    """MLflow picks its own ids; the requested one keeps working (see rest.py's docstring)."""
    exp_id = store.create_experiment(unique())
    requested = uuid.uuid4().hex
    run = store.create_run(exp_id, "me", 0, [RunTag("prefect.task", "t")], "task", run_id=requested)
    actual = run.info.run_id
    assert actual != requested and run.data.tags[REQUESTED_RUN_ID_TAG] == requested
    store.log_batch(requested, [Metric("m", 1.0, 0, 0)], [Param("p", "1")], [])
    store.update_run_info(requested, "FINISHED", 10)
    assert store.get_run(requested).info.run_id == actual
    assert store.get_run(actual).data.params == {"p": "1"}
    with pytest.raises(AlreadyExistsError, match=requested):
        store.create_run(exp_id, "me", 0, [], "again", run_id=requested)

    other = RestStore(server_url)  # another process: no memory of the mapping
    assert other.get_run(requested).info.run_id == actual
    other.log_metric(requested, Metric("m", 2.0, 1, 1))
    assert [m.value for m in other.get_metric_history(requested, "m")] == [1.0, 2.0]
    fresh = RestStore(server_url)
    with pytest.raises(AlreadyExistsError):  # a retried Prefect run resumes instead
        fresh.create_run(exp_id, "me", 0, [], "again", run_id=requested)
    with pytest.raises(NotFoundError):
        fresh.get_run(uuid.uuid4().hex)
    tracking.set_tracking_uri(server_url)
    with tracking.start_run(run_id=requested) as resumed:  # the fluent API resumes it too
        tracking.log_param("q", 2)
    assert resumed.info.run_id == actual
    assert tracking.get_run(actual).data.params == {"p": "1", "q": "2"}


def test_explicit_client_uri_reaches_the_artifact_proxy(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    """TrackingClient(url) while the global tracking URI is another: MLflow resolves
    mlflow-artifacts:/ against the client's URI; ours uses the global one (./mlruns here)."""
    client = TrackingClient(mlflow_server.wait())
    run = client.create_run("0")
    client.log_text(run.info.run_id, "x", "x.txt")
