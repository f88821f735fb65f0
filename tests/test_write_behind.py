"""tracking.write_behind: queued store writes, in order, never visible as missing to readers."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from server_process import quiet_clients, start_server, stop_server

import tracking
from flows import flow
from tasks import task
from tracking import write_behind


def test_actions_run_in_order_and_flush_waits_for_all() -> None:
    done: list[int] = []
    for i in range(200):
        write_behind.submit(
            lambda i=i: (time.sleep(0.001) if i % 50 == 0 else None, done.append(i))
        )
    write_behind.flush()
    assert done == list(range(200))


def test_flush_inside_an_action_does_not_wait_for_itself() -> None:
    finished = threading.Event()

    def action() -> None:
        write_behind.flush()  # e.g. a store call through a TrackingClient on the writer thread
        finished.set()

    write_behind.submit(action)
    assert finished.wait(timeout=10), "flush() on the writer thread deadlocked"
    write_behind.flush()


def test_an_escaping_error_is_kept_and_later_actions_still_run() -> None:
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("store gone")

    write_behind.submit(broken)
    write_behind.submit(lambda: done.append("after"))
    write_behind.flush()
    errors = write_behind.take_errors()
    assert [str(e) for e in errors] == ["store gone"]
    assert done == ["after"]
    assert write_behind.take_errors() == []


def test_client_calls_and_active_run_see_queued_writes(tracking_dir: Path) -> None:
    client = tracking.TrackingClient()
    experiment_id = client.create_experiment("queued")
    release = threading.Event()
    run_id = "a" * 32

    def slow_create() -> None:
        release.wait(timeout=10)
        client.create_run(experiment_id, run_id=run_id, run_name="queued-run")

    write_behind.submit(slow_create)
    threading.Timer(0.2, release.set).start()
    assert client.get_run(run_id).info.run_name == "queued-run"  # waited for the queue

    marker = tracking_dir / "marker"
    write_behind.submit(lambda: (time.sleep(0.2), marker.write_text("written")))
    assert tracking.active_run() is None
    assert marker.read_text() == "written"


def test_a_forked_child_does_not_wait_for_the_parents_queue() -> None:
    release = threading.Event()
    write_behind.submit(lambda: release.wait(timeout=30))
    pid = os.fork()
    if pid == 0:  # child: no writer thread, nothing queued
        code = 1
        try:
            write_behind.flush()
            write_behind.submit(lambda: None)
            write_behind.flush()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child blocked on its parent's write-behind queue")
    release.set()
    write_behind.flush()
    assert os.waitstatus_to_exitcode(status) == 0


# --- through the decorators --------------------------------------------------------------------
@task(log_result=True)
def read_own_run(x: int) -> list[int]:
    run = tracking.active_run()
    assert run is not None
    stored = tracking.get_run(run.info.run_id)
    assert stored.data.params == {"x": str(x)}
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_dir()
    return [x, x + 1]


@flow
def mutating_pipeline(x: int) -> list[int]:
    values = read_own_run(x)
    values.append(99)  # after the task returned: its stored result must not change
    return values


@pytest.mark.usefixtures("prefect_api")
def test_task_body_reads_its_own_queued_run_and_result_is_kept_as_returned(
    tracking_dir: Path,
) -> None:
    assert mutating_pipeline(3) == [3, 4, 99]
    client = tracking.MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("mutating-pipeline").experiment_id],
        "tags.`prefect.task_name` = 'read_own_run'",
    )
    assert run.info.status == "FINISHED"
    local = client.download_artifacts(run.info.run_id, "result.json", str(tracking_dir))
    assert json.loads(Path(local).read_text()) == [3, 4]


@task
def note(i: int) -> int:
    tracking.log_text(f"item {i}", f"notes/{i}.txt")
    return i * i


@flow
def noting_pipeline(n: int) -> list[str]:
    return [str(f.task_run_id) for f in note.map(range(n))]


@pytest.mark.usefixtures("prefect_api")
def test_queued_task_runs_through_our_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the REST store (our server keeps the ids asked for): mapped task runs are
    planned, queued and land with Prefect's ids, the right parent and their artifacts."""
    server = start_server(
        tmp_path / "server",
        f"sqlite:///{tmp_path / 'server' / 'tracking.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
    )
    try:
        quiet_clients(monkeypatch)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        state = noting_pipeline(6, return_state=True)
        task_run_ids = state.result()
        client = tracking.TrackingClient(server.url)
        flow_run_id = state.state_details.flow_run_id.hex
        for i, task_run_id in enumerate(task_run_ids):
            run = client.get_run(task_run_id.replace("-", ""))
            assert run.info.status == "FINISHED"
            assert run.info.artifact_uri.startswith("mlflow-artifacts:")
            assert run.data.tags["mlflow.parentRunId"] == flow_run_id
            assert run.data.params == {"i": str(i)}
            assert run.data.metrics["note"] == i * i
            local = client.download_artifacts(run.info.run_id, f"notes/{i}.txt", str(tmp_path))
            assert Path(local).read_text() == f"item {i}"
    finally:
        stop_server(server)


def test_client_store_does_not_wait_and_synced_store_does(tracking_dir: Path) -> None:
    """`client.store` is the store as it is (a queued write may be pending); every client
    method and `synced_store()` wait for this process's queued writes first."""
    client = tracking.TrackingClient()
    run_id = client.create_run(client.create_experiment("explicit")).info.run_id
    release = threading.Event()
    write_behind.submit(release.wait)  # the writer is busy until released
    write_behind.submit(lambda: client.store.log_param(run_id, tracking.Param("queued", "1")))
    assert "queued" not in client.store.get_run(run_id).data.params  # nothing waited
    threading.Timer(0.2, release.set).start()
    assert client.synced_store().get_run(run_id).data.params["queued"] == "1"


def test_state_reset_forgets_what_the_process_chose(
    tracking_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracking import state

    tracking.set_tracking_uri(str(tmp_path / "elsewhere"))
    tracking.set_registry_uri(str(tmp_path / "registry"))
    tracking.set_experiment("chosen")
    run = tracking.start_run()
    state.reset()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # what set_tracking_uri told subprocesses
    assert tracking.get_tracking_uri() == f"file://{tracking_dir}"
    assert tracking.get_registry_uri() == tracking.get_tracking_uri()
    assert tracking.active_run() is None and tracking.last_active_run() is None
    with tracking.start_run() as fresh:  # in the default experiment again, not "chosen"
        assert fresh.info.experiment_id == "0"
    assert tracking.TrackingClient(str(tmp_path / "elsewhere")).get_run(run.info.run_id)
