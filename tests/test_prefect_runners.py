"""Tracked tasks and flows on Prefect's other executors, on schedules, on S3 and on broken stores.

Every test runs against the real Prefect API (session fixture `prefect_api`). Task and flow
functions live at module level so that worker processes (ProcessPoolTaskRunner, Dask) can import
them; the tracking store reaches those processes through MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import tracking
from flows import flow
from tasks import task
from tasks.runs import ON_ERROR_ENV, TrackingFailedError
from tracking import system_tags
from tracking.entities import RunStatus

pytestmark = pytest.mark.usefixtures("prefect_api")


# --- module-level tasks and flows (importable by worker processes) -----------------------------
@task
def square(x: int) -> dict[str, float]:
    return {"square": float(x * x), "pid": float(os.getpid())}


@flow
def mapped_squares(xs: list[int]) -> list[tuple[str, dict[str, float]]]:
    futures = square.map(xs)
    return [(str(f.task_run_id), f.result()) for f in futures]


@flow
def nightly_job(lr: float = 0.1, epochs: int = 1) -> float:
    return lr * epochs


@task
def write_artifacts(x: int, workdir: str) -> int:
    tracking.log_text(f"item {x}\n", f"notes/item-{x}.txt")
    local = Path(workdir) / f"data-{x}.csv"
    local.write_text(f"x,y\n{x},{x * 10}\n")
    tracking.log_artifact(str(local), artifact_path="data")
    return x


@flow
def artifact_pipeline(xs: list[int], workdir: str) -> list[tuple[str, int]]:
    futures = write_artifacts.map(xs, workdir=workdir)
    return [(str(f.task_run_id), f.result()) for f in futures]


@task
def add_one(x: int) -> int:
    return x + 1


@flow
def fragile_pipeline(x: int = 1) -> int:
    return add_one(x) * 10


@task(on_tracking_error="warn")
def add_one_warn(x: int) -> int:
    return x + 1


@flow(on_tracking_error="warn")
def fragile_pipeline_warn(x: int = 1) -> int:
    return add_one_warn(x) * 10


@task
def destroy_own_run(x: int, how: str) -> int:
    """Break this task's own run folder from inside its body."""
    run = tracking.active_run()
    assert run is not None
    run_dir = Path(run.info.artifact_uri.removeprefix("file://")).parent
    if how == "delete":
        shutil.rmtree(run_dir)
    elif how == "metrics-file":  # the run stays readable by meta, but metrics cannot be written
        shutil.rmtree(run_dir / "metrics")
        (run_dir / "metrics").write_text("in the way")
    return x * 2


@flow
def breaking_pipeline(how: str) -> int:
    return destroy_own_run(1, how) + add_one(1)


# --- helpers -----------------------------------------------------------------------------------
def _flow_run_id(state: Any) -> str:
    return state.state_details.flow_run_id.hex


def _children(parent_run_id: str) -> dict[str, tracking.Run]:
    client = tracking.MlflowClient()
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id], f"tags.`{system_tags.PARENT_RUN_ID}` = '{parent_run_id}'"
    )
    return {r.info.run_id: r for r in runs}


def _assert_mapped_squares(state: Any, xs: list[int]) -> None:
    assert state.is_completed(), state
    results = state.result()
    flow_run_id = _flow_run_id(state)
    client = tracking.MlflowClient()
    flow_run = client.get_run(flow_run_id)
    assert flow_run.info.status == "FINISHED"
    children = _children(flow_run_id)
    assert len(children) == len(xs)
    pids = set()
    for (task_run_id, result), x in zip(results, xs, strict=True):
        run = children[uuid.UUID(task_run_id).hex]
        assert run.info.experiment_id == flow_run.info.experiment_id
        assert run.info.status == "FINISHED"
        assert run.data.tags[system_tags.PARENT_RUN_ID] == flow_run_id
        assert run.data.tags["prefect.task_run_id"] == task_run_id
        assert run.data.tags["prefect.flow_run_id"] == str(uuid.UUID(flow_run_id))
        assert run.data.params == {"x": str(x)}
        assert run.data.metrics["square"] == float(x * x) == result["square"]
        assert run.data.metrics["pid"] == result["pid"]
        pids.add(int(result["pid"]))
    assert os.getpid() not in pids  # the bodies really ran in worker processes


def _absolute_store(monkeypatch: pytest.MonkeyPatch, tracking_dir: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tracking_dir))


# --- 1. ProcessPoolTaskRunner -----------------------------------------------------------------
def test_process_pool_task_runner_tracks_each_mapped_task(
    tracking_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.task_runners import ProcessPoolTaskRunner

    _absolute_store(monkeypatch, tracking_dir)
    xs = [1, 2, 3, 4]
    pooled = mapped_squares.with_options(task_runner=ProcessPoolTaskRunner(max_workers=2))
    state = pooled(xs, return_state=True)
    _assert_mapped_squares(state, xs)


# --- 2. DaskTaskRunner on worker processes ----------------------------------------------------
def test_dask_task_runner_with_worker_processes(
    tracking_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_dask import DaskTaskRunner

    _absolute_store(monkeypatch, tracking_dir)
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": 2,
            "processes": True,
            "threads_per_worker": 1,
            "dashboard_address": None,
        }
    )
    xs = [1, 2, 3, 4]
    state = mapped_squares.with_options(task_runner=runner)(xs, return_state=True)
    _assert_mapped_squares(state, xs)


# --- 3. scheduled flow runs, without waiting on the clock -------------------------------------
def test_scheduled_and_manual_deployment_runs_are_tracked() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from prefect.deployments import run_deployment
    from prefect.flow_engine import run_flow

    name = f"nightly-{uuid.uuid4().hex[:8]}"
    deployment = nightly_job.to_deployment(
        name=name, cron="*/30 * * * *", tags=["exp"], parameters={"lr": 0.5, "epochs": 3}
    )
    deployment_id = deployment.apply()
    now = datetime.now(UTC)
    with get_client(sync_client=True) as api:
        response = api._client.post(
            f"/deployments/{deployment_id}/schedule",
            json={
                "start_time": (now - timedelta(hours=2)).isoformat(),
                "end_time": now.isoformat(),
                "min_runs": 2,
                "max_runs": 2,
                "min_time": 0,
            },
        )
        response.raise_for_status()
        manual = run_deployment(
            f"{nightly_job.name}/{name}", timeout=0, parameters={"lr": 0.7}, as_subflow=False
        )
        runs = api.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])
            )
        )
        due = [
            fr
            for fr in runs
            if fr.state_name == "Scheduled"
            and (fr.id == manual.id or fr.expected_start_time <= now)
        ]
        auto = [fr for fr in due if fr.auto_scheduled]
        assert len(auto) == 2
        assert manual.id in {fr.id for fr in due}
        for fr in due:
            run_flow(nightly_job, flow_run=fr, parameters=fr.parameters)
        finished = {fr.id: api.read_flow_run(fr.id) for fr in due}

    client = tracking.MlflowClient()
    for fr in due:
        assert finished[fr.id].state_name == "Completed"
        run = client.get_run(fr.id.hex)
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert client.get_experiment(run.info.experiment_id).name == nightly_job.name
        assert tags["prefect.deployment_name"] == name
        assert tags["prefect.deployment_id"] == str(deployment_id)
        assert tags["prefect.flow_run_id"] == str(fr.id)
        assert tags["prefect.scheduled_start_time"] == fr.expected_start_time.isoformat()
        assert tags["prefect.auto_scheduled"] == ("false" if fr.id == manual.id else "true")
        if fr.id == manual.id:
            assert run.data.params == {"lr": "0.7", "epochs": "3"}
            assert run.data.metrics[nightly_job.name] == pytest.approx(2.1)
        else:
            assert run.data.params == {"lr": "0.5", "epochs": "3"}
            assert run.data.metrics[nightly_job.name] == pytest.approx(1.5)
            assert fr.expected_start_time <= now
    assert len({fr.expected_start_time for fr in auto}) == 2


# --- 4. artifacts on S3 -----------------------------------------------------------------------
def test_mapped_task_artifacts_land_under_each_task_run_on_s3(
    tracking_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    seaweedfs_s3: Any,
    s3_env: Any,
    tmp_path: Path,
) -> None:
    import s3fs

    server = s3_env(seaweedfs_s3)
    bucket = server.create_bucket("runners")
    root = f"s3://{bucket}/prefix"
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", root)
    experiment = f"s3-artifacts-{uuid.uuid4().hex[:8]}"
    pipeline = artifact_pipeline.with_options(name=experiment)
    workdir = tmp_path / "artifact-sources"
    workdir.mkdir()
    xs = [0, 1, 2, 3, 4]

    state = pipeline(xs, str(workdir), return_state=True)

    assert state.is_completed(), state
    client = tracking.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    assert exp.artifact_location == f"{root}/{exp.experiment_id}"
    children = _children(_flow_run_id(state))
    assert len(children) == len(xs)
    fs = s3fs.S3FileSystem(
        endpoint_url=server.endpoint_url, key=server.access_key, secret=server.secret_key
    )
    for task_run_id, x in state.result():
        run_id = uuid.UUID(task_run_id).hex
        run = children[run_id]
        prefix = f"{bucket}/prefix/{exp.experiment_id}/{run_id}/artifacts"
        assert run.info.artifact_uri == f"s3://{prefix}"
        assert run.info.status == "FINISHED"
        listed = client.list_artifacts(run_id)
        assert sorted((f.path, f.is_dir) for f in listed) == [("data", True), ("notes", True)]
        assert [f.path for f in client.list_artifacts(run_id, "notes")] == [f"notes/item-{x}.txt"]
        assert [f.path for f in client.list_artifacts(run_id, "data")] == [f"data/data-{x}.csv"]
        stored = sorted(fs.find(prefix))
        assert stored == [f"{prefix}/data/data-{x}.csv", f"{prefix}/notes/item-{x}.txt"]
        assert fs.cat_file(f"{prefix}/notes/item-{x}.txt") == f"item {x}\n".encode()
        assert fs.cat_file(f"{prefix}/data/data-{x}.csv") == f"x,y\n{x},{x * 10}\n".encode()


# --- 5. tracking failures ---------------------------------------------------------------------


@pytest.fixture
def broken_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MLFLOW_TRACKING_URI below a regular file: every attempt to create the store fails."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's parent folder should be")
    monkeypatch.delenv(ON_ERROR_ENV, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(blocker / "mlruns"))
    return blocker / "mlruns"


def _assert_runs_untracked_with_warnings(pipeline: Any, store: Path) -> None:
    with pytest.warns(UserWarning, match=ON_ERROR_ENV) as record:
        state = pipeline(1, return_state=True)
    assert state.is_completed(), state
    assert state.result() == 20
    messages = [str(w.message) for w in record if ON_ERROR_ENV in str(w.message)]
    assert any(m.startswith("Tracking flow run") for m in messages), messages
    assert any(m.startswith("Tracking task") for m in messages), messages
    assert not store.exists()


def test_broken_store_fails_the_flow_by_default(broken_store: Path) -> None:
    state = fragile_pipeline(1, return_state=True)
    assert state.is_failed(), state
    error = state.result(raise_on_failure=False)
    assert isinstance(error, TrackingFailedError), repr(error)
    assert ON_ERROR_ENV in str(error), repr(error)
    assert str(broken_store) in str(error)


def test_broken_store_with_warn_env_lets_the_flow_finish(
    broken_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ON_ERROR_ENV, "warn")
    _assert_runs_untracked_with_warnings(fragile_pipeline, broken_store)


def test_broken_store_with_warn_option_lets_the_flow_finish(broken_store: Path) -> None:
    _assert_runs_untracked_with_warnings(fragile_pipeline_warn, broken_store)


@pytest.mark.parametrize("how", ["delete", "metrics-file"])
def test_store_breaking_mid_run_leaves_no_run_running(
    how: str, tracking_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ON_ERROR_ENV, "warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = breaking_pipeline(how, return_state=True)
    assert state.is_completed(), state
    assert state.result() == 4
    assert any("Tracking task" in str(w.message) for w in caught), [str(w.message) for w in caught]

    client = tracking.MlflowClient()
    flow_run_id = _flow_run_id(state)
    flow_run = client.get_run(flow_run_id)
    assert flow_run.info.status == "FINISHED"
    runs = client.search_runs([flow_run.info.experiment_id], "", run_view_type="ALL")
    statuses = {r.info.run_id: r.info.status for r in runs}
    assert RunStatus.RUNNING.name not in statuses.values(), statuses
    children = _children(flow_run_id)
    names = sorted(r.data.tags["prefect.task_name"] for r in children.values())
    if how == "delete":
        assert names == ["add_one"]
    else:
        assert names == ["add_one", "destroy_own_run"]
        broken = next(
            r for r in children.values() if r.data.tags["prefect.task_name"] == "destroy_own_run"
        )
        assert broken.info.status == "FAILED"


def test_store_breaking_mid_run_fails_the_flow_by_default(
    tracking_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nested task run's writes are queued (tracking.write_behind); a failure among them
    fails the flow with the error naming the task, and closes every run it can."""
    monkeypatch.delenv(ON_ERROR_ENV, raising=False)
    state = breaking_pipeline("metrics-file", return_state=True)
    assert state.is_failed(), state
    error = state.result(raise_on_failure=False)
    assert isinstance(error, TrackingFailedError), repr(error)
    assert "destroy_own_run" in str(error) and "writing its run" in str(error), str(error)
    assert ON_ERROR_ENV in str(error)

    client = tracking.MlflowClient()
    flow_run = client.get_run(_flow_run_id(state))
    assert flow_run.info.status == "FAILED"
    assert flow_run.data.tags["trackflow.error.type"] == "TrackingFailedError"
    children = _children(flow_run.info.run_id)
    statuses = {r.data.tags["prefect.task_name"]: r.info.status for r in children.values()}
    assert statuses == {"destroy_own_run": "FAILED", "add_one": "FINISHED"}, statuses
