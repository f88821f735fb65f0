"""A tracked Prefect flow logging to a real, stock `mlflow server`, read back by MLflow's client.

One `python -m mlflow server` (SQLite backend, artifacts proxied to a local folder, one worker)
serves the module. The flow maps a task, calls a task that calls another task, retries a task
that fails once, and logs metrics and text artifacts from the bodies, with the tracking URI
pointing at the server. Stock MLflow ignores the run ids we ask for (Prefect's ids) and picks
its own; our REST store tags each run with `trackflow.requested_run_id` and translates, so the
`mlflow.parentRunId` links must hold MLflow's real ids. Then MLflow's own `MlflowClient` and
our `TrackingClient` read everything back, artifacts through the server's proxy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner
from server_process import MlflowServer, quiet_clients

import tracking
from flows import flow
from tasks import task
from tasks.runs import DURATION_METRIC
from tracking.stores import open_store
from tracking.stores.rest.store import REQUESTED_RUN_ID_TAG, RestStore

pytestmark = [
    pytest.mark.usefixtures("prefect_api"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

FLOW_NAME = "flow-on-mlflow-server"
PARENT_TAG = "mlflow.parentRunId"


# --------------------------------------------------------------------------- the MLflow server
@pytest.fixture(scope="session", autouse=True)
def mlflow_server_booting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Started before the (session-scoped, also slow) Prefect API, so that both boot at once.
    Autouse in this module only: it starts with this module's first test."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mlflow_server(mlflow_server_booting: MlflowServer) -> Iterator[MlflowServer]:
    """The server once it answers; stopped at the end of this module."""
    try:
        mlflow_server_booting.wait()
        yield mlflow_server_booting
    finally:
        mlflow_server_booting.stop()


@pytest.fixture
def server_url(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server, made the tracking URI of this test (for our fluent API and the decorators)."""
    quiet_clients(monkeypatch)
    tracking.set_tracking_uri(mlflow_server.url)
    return mlflow_server.url


@pytest.fixture
def mlflow_client(server_url: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server_url)


# --------------------------------------------------------------------------- the flow
attempts: list[int] = []


@task
def square(i: int) -> float:
    tracking.log_metric("in_body", i)
    return float(i * i)


@task
def inner(x: float) -> float:
    tracking.log_metric("inner_seen", x, step=1)
    return x + 1


@task
def outer(x: float) -> float:
    tracking.log_text(f"outer got {x}", "notes/outer.txt")
    return inner(x) * 2  # a task called inside a task: a grandchild run


@task(retries=2, retry_delay_seconds=0)
def flaky(n: int) -> int:
    attempts.append(n)
    if len(attempts) == 1:
        raise RuntimeError("first attempt fails")
    tracking.log_metric("flaky_ok", 1)
    return n


@flow(name=FLOW_NAME, task_runner=ThreadPoolTaskRunner(max_workers=4))
def pipeline(n: int = 3, label: str = "demo") -> dict[str, Any]:
    squares = [future.result() for future in square.map(range(n))]
    total = outer(sum(squares))
    flaky(n)
    for step in range(3):
        tracking.log_metric("flow_progress", step / 2, step=step)
    tracking.log_text(f"label={label}", "flow/hello.txt")
    return {"total": total, "flow_run_id": str(FlowRunContext.get().flow_run.id)}


def _hex(prefect_id: str) -> str:
    return uuid.UUID(prefect_id).hex


# --------------------------------------------------------------------------- the test
def test_tracked_flow_on_a_stock_mlflow_server(
    server_url: str, mlflow_server: MlflowServer, mlflow_client: Any, tmp_path: Path
) -> None:
    attempts.clear()
    result = pipeline(n=3, label="demo")
    assert result["total"] == (0 + 1 + 4 + 1) * 2
    prefect_flow_id = _hex(result["flow_run_id"])
    assert attempts == [3, 3]

    # --- MLflow's own client: the flow run's run, under MLflow's id ---------------------------
    experiment = mlflow_client.get_experiment_by_name(FLOW_NAME)
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    exp_id = experiment.experiment_id
    runs = mlflow_client.search_runs([exp_id], max_results=100)
    assert len(runs) == 1 + 3 + 1 + 1 + 1  # flow, 3 squares, outer, inner, flaky
    by_requested = {r.data.tags[REQUESTED_RUN_ID_TAG]: r for r in runs}
    assert len(by_requested) == len(runs)
    flow_run = by_requested[prefect_flow_id]
    flow_id = flow_run.info.run_id
    assert flow_id != prefect_flow_id  # stock MLflow chose its own id
    tags = flow_run.data.tags
    assert tags["prefect.flow_name"] == FLOW_NAME
    assert tags["prefect.flow_run_id"] == result["flow_run_id"]
    assert tags["prefect.flow_run_name"] == flow_run.info.run_name == tags["mlflow.runName"]
    assert tags["prefect.tags"] == "[]"
    assert PARENT_TAG not in tags
    assert flow_run.info.status == "FINISHED"
    assert flow_run.data.params == {"n": "3", "label": "demo"}
    assert flow_run.data.metrics["flow_progress"] == 1.0
    assert flow_run.data.metrics["total"] == 12.0
    assert DURATION_METRIC in flow_run.data.metrics
    history = mlflow_client.get_metric_history(flow_id, "flow_progress")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 0.5), (2, 1.0)]

    # --- child runs: parent links hold MLflow's real ids ---------------------------------------
    children = mlflow_client.search_runs([exp_id], f"tags.`{PARENT_TAG}` = '{flow_id}'")
    kids: dict[str, list[Any]] = {}
    for kid in children:
        kids.setdefault(kid.data.tags["prefect.task_name"], []).append(kid)
    assert {name: len(found) for name, found in kids.items()} == {
        "square": 3,
        "outer": 1,
        "flaky": 1,
    }
    for kid in children:
        kid_tags = kid.data.tags
        assert kid.info.status == "FINISHED"
        assert kid_tags["prefect.flow_run_id"] == result["flow_run_id"]
        assert kid_tags[REQUESTED_RUN_ID_TAG] == _hex(kid_tags["prefect.task_run_id"])
        assert kid.info.run_id != kid_tags[REQUESTED_RUN_ID_TAG]
        assert mlflow_client.get_run(kid_tags[PARENT_TAG]).info.run_id == flow_id
    for kid in kids["square"]:
        i = int(kid.data.params["i"])
        assert kid.data.metrics["in_body"] == i
        assert kid.data.metrics["square"] == i * i
    assert sorted(int(k.data.params["i"]) for k in kids["square"]) == [0, 1, 2]

    (outer_run,) = kids["outer"]
    assert outer_run.data.params == {"x": "5.0"}
    assert outer_run.data.metrics["outer"] == 12.0
    (inner_run,) = mlflow_client.search_runs(
        [exp_id], f"tags.`{PARENT_TAG}` = '{outer_run.info.run_id}'"
    )
    assert inner_run.data.tags["prefect.task_name"] == "inner"
    assert inner_run.data.metrics["inner"] == 6.0
    (seen,) = mlflow_client.get_metric_history(inner_run.info.run_id, "inner_seen")
    assert (seen.value, seen.step) == (5.0, 1)

    (flaky_run,) = kids["flaky"]
    assert flaky_run.data.tags["prefect.attempts"] == "2"  # the retry resumed the same run
    assert flaky_run.data.metrics["flaky_ok"] == 1.0
    assert flaky_run.data.params == {"n": "3"}

    # --- artifacts, through the proxy ------------------------------------------------------
    assert flow_run.info.artifact_uri.startswith("mlflow-artifacts:")
    listed = [f.path for f in mlflow_client.list_artifacts(flow_id, "flow")]
    assert listed == ["flow/hello.txt"]
    local = mlflow_client.download_artifacts(flow_id, "flow/hello.txt", str(tmp_path))
    assert Path(local).read_text() == "label=demo"
    local = mlflow_client.download_artifacts(outer_run.info.run_id, "notes", str(tmp_path))
    assert (Path(local) / "outer.txt").read_text() == "outer got 5.0"
    stored = sorted(p.name for p in mlflow_server.destination.rglob("*.txt"))
    # written by the server, behind its proxy (requirements.txt: the flow run's environment)
    assert stored == ["hello.txt", "outer.txt", "requirements.txt"]

    # --- our TrackingClient reads the same -----------------------------------------------------
    ours = tracking.TrackingClient(server_url)
    run = ours.get_run(prefect_flow_id)  # the requested id still finds the run
    assert run.info.run_id == flow_id
    assert run.data.params == flow_run.data.params
    assert run.data.metrics == flow_run.data.metrics
    assert run.data.tags == flow_run.data.tags
    our_kids = ours.search_runs([exp_id], f"tags.`{PARENT_TAG}` = '{flow_id}'")
    assert sorted(k.info.run_id for k in our_kids) == sorted(k.info.run_id for k in children)
    assert [m.value for m in ours.get_metric_history(flow_id, "flow_progress")] == [0.0, 0.5, 1.0]
    assert [f.path for f in ours.list_artifacts(flow_id, "flow")] == ["flow/hello.txt"]
    local = ours.download_artifacts(outer_run.info.run_id, "notes/outer.txt", str(tmp_path / "o"))
    assert Path(local).read_text() == "outer got 5.0"

    # A fresh store (another process: no id cache) finds runs by their requested ids too.
    fresh = open_store(server_url)
    assert isinstance(fresh, RestStore)
    try:
        assert fresh.get_run(prefect_flow_id).info.run_id == flow_id
        requested_outer = outer_run.data.tags[REQUESTED_RUN_ID_TAG]
        assert fresh.get_run(requested_outer).info.run_id == outer_run.info.run_id
    finally:
        fresh.close()
    assert "Traceback" not in mlflow_server.log.read_text(errors="replace")
