"""`trackflow runs reconcile`: runs left RUNNING by dead processes are ended, live ones kept."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import tracking
from flows import flow
from tasks import task
from tracking import processes
from tracking.cli import main
from tracking.entities import RunStatus


def dead_process() -> str:
    """The process tag of a process of this host that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    started = psutil.Process(child.pid).create_time()
    child.communicate(b"\n", timeout=60)
    return processes.ProcessId(processes.hostname(), child.pid, round(started, 2)).tag_value()


def left_running(client: tracking.TrackingClient, experiment_id: str, process: str | None) -> str:
    tags = {processes.PROCESS_TAG: process} if process else {}
    run = client.create_run(experiment_id, start_time=1_000, tags=tags)
    client.log_metric(run.info.run_id, "loss", 0.5, timestamp=5_000)
    return run.info.run_id


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich folds long cells in narrow terminals


def test_reconcile_ends_only_runs_whose_process_is_gone(
    tracking_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = tracking.TrackingClient()
    experiment_id = client.create_experiment("crashed")
    dead = left_running(client, experiment_id, dead_process())
    alive = left_running(client, experiment_id, processes.current().tag_value())
    untagged = left_running(client, experiment_id, None)
    elsewhere = processes.ProcessId("another-host", 1, 1.0).tag_value()
    remote = left_running(client, experiment_id, elsewhere)

    assert main(["runs", "list", "-e", "crashed"]) == 0
    assert capsys.readouterr().out.count("RUNNING (process gone)") == 1

    assert main(["runs", "reconcile", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 of 4 RUNNING runs would be ended" in out and dead in out
    assert client.get_run(dead).info.status == "RUNNING"

    assert main(["runs", "reconcile", "--experiment", "crashed"]) == 0
    out = capsys.readouterr().out
    assert "1 of 4 RUNNING runs ended" in out and "3 runs left RUNNING" in out
    ended = client.get_run(dead).info
    assert (ended.status, ended.end_time) == ("KILLED", 5_000)  # its last write
    for run_id in (alive, untagged, remote):
        assert client.get_run(run_id).info.status == "RUNNING"
    assert "its process is alive" in out and "cannot tell" in out


def test_a_deleted_or_finished_run_is_not_touched(tracking_dir: Path) -> None:
    client = tracking.TrackingClient()
    experiment_id = client.create_experiment("done")
    deleted = left_running(client, experiment_id, dead_process())
    client.delete_run(deleted)
    finished = left_running(client, experiment_id, dead_process())
    client.set_terminated(finished, "FINISHED", 7_000)
    assert main(["runs", "reconcile"]) == 0
    assert client.get_run(deleted).info.status == "RUNNING"
    assert client.get_run(finished).info.end_time == 7_000


@task
def good(x: int) -> int:
    return x


@task
def bad(x: int) -> int:
    raise ValueError(x)


@flow
def half_failing() -> None:
    good(1)
    bad(2)


def test_prefect_final_states_decide_when_the_process_cannot_be_checked(
    prefect_api: None, tracking_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs of a process on another host: Prefect's Completed -> FINISHED, Failed -> FAILED."""
    state = half_failing(return_state=True)
    assert state.is_failed()
    client = tracking.TrackingClient()
    experiment = client.get_experiment_by_name("half-failing")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    elsewhere = processes.ProcessId("another-host", 1, 1.0).tag_value()
    expected = {}
    for run in runs:  # as if the flow's process had died on another host before ending them
        client.set_tag(run.info.run_id, processes.PROCESS_TAG, elsewhere)
        client.update_run(run.info.run_id, RunStatus.RUNNING.name)
        expected[run.info.run_id] = run.info.status
    assert sorted(expected.values()) == ["FAILED", "FAILED", "FINISHED"]
    deadline = time.monotonic() + 60  # task run states reach Prefect's database by events
    while True:
        assert main(["runs", "reconcile", "--dry-run"]) == 0
        out = capsys.readouterr().out
        if "3 of 3 RUNNING runs would be ended" in out or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert main(["runs", "reconcile"]) == 0
    assert "Prefect reports Completed" in capsys.readouterr().out
    assert {r: client.get_run(r).info.status for r in expected} == expected
