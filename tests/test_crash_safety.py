"""Crash safety of tracked flows, by killing real processes against a real Prefect API.

Invariant: every task run Prefect reports COMPLETED is in the store (after the journal of the
killed process is replayed), and `trackflow runs reconcile` then leaves nothing RUNNING.
TRACKFLOW_KILL_LOOPS (default 2) sets how many kills per store; the figures are printed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import tracking
from tracking import stores
from tracking.admin import reconcile
from tracking.entities import RunStatus

KILLS = int(os.environ.get("TRACKFLOW_KILL_LOOPS", "2"))

FLOW = """
import time
from prefect.runtime import flow_run
from flows import flow
from tasks import task

@task
def step(i: int) -> dict:
    time.sleep(0.002)
    return {"score": i / 400}

@flow
def killed_pipeline(n: int = 400) -> None:
    print("flow run", flow_run.id, flush=True)
    for i in range(n):
        step(i)

killed_pipeline()
"""

TERMINATED = """
import time
from flows import flow
from tasks import task

@task
def quick(i: int) -> int:
    return i

@task
def slow() -> None:
    print("sleeping", flush=True)
    time.sleep(120)

@flow
def terminated() -> None:
    quick.map(range(3)).result()
    slow()

terminated()
"""


def completed_task_runs(flow_run_id: str) -> set[str]:
    """Task runs Prefect's API reports COMPLETED, once the count stops changing (task run
    states reach its database through events)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
    previous: set[str] | None = None
    with get_client(sync_client=True) as api:
        for _ in range(30):
            found: set[str] = set()
            offset = 0
            while True:
                page = api.read_task_runs(flow_run_filter=flow_filter, offset=offset, limit=200)
                found |= {t.id.hex for t in page if t.state and t.state.type.value == "COMPLETED"}
                offset += len(page)
                if len(page) < 200:
                    break
            if found == previous:
                return found
            previous = found
            time.sleep(1)
    raise AssertionError("Prefect's task run states never settled")


def start_and_kill(script: Path, env: dict[str, str], rng: random.Random) -> str:
    child = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("flow run "), line
    time.sleep(rng.uniform(0.1, 3.0))
    child.kill()
    child.wait(timeout=60)
    return uuid.UUID(line.split()[-1]).hex


@pytest.mark.parametrize("backend", ["file", "sqlite", "postgresql"])
def test_sigkill_loses_no_completed_task_run(
    backend: str, prefect_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    uri = {
        "file": str(tmp_path / "mlruns"),
        "sqlite": f"sqlite:///{tmp_path / 'store.db'}",
        "postgresql": request.getfixturevalue("postgres_uri")() if backend == "postgresql" else "",
    }[backend]
    script = tmp_path / "killed_pipeline.py"
    script.write_text(FLOW)
    env = {**prefect_env, "MLFLOW_TRACKING_URI": uri}
    rng = random.Random(backend)
    confirmed = lost = running = 0
    for _ in range(KILLS):
        flow_run_id = start_and_kill(script, env, rng)
        completed = completed_task_runs(flow_run_id)
        store = stores.open_store(uri)  # replays the killed process's journal
        client = tracking.TrackingClient(uri)
        experiment = client.get_experiment_by_name("killed-pipeline")
        assert experiment is not None
        finished = {
            r.info.run_id
            for r in client.search_runs([experiment.experiment_id], max_results=50000)
            if r.info.status == RunStatus.FINISHED.name
        }
        confirmed += len(completed)
        lost += len(completed - finished)
        left = list(reconcile.running_runs(store, [experiment.experiment_id]))
        running += len(left)
        reconcile.apply(store, reconcile.decide(store, left, reconcile.state_sources()))
        assert list(reconcile.running_runs(store, [experiment.experiment_id])) == []
        assert client.get_run(flow_run_id).info.status == RunStatus.KILLED.name
    print(
        f"\n{backend}: {KILLS} kills, {confirmed} task runs Prefect confirmed COMPLETED, "
        f"{lost} lost, {running} left RUNNING before reconcile, 0 after"
    )
    assert confirmed > 0
    assert lost == 0


def test_sigterm_ends_the_flow_run_and_its_open_task_runs_killed(
    prefect_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "terminated.py"
    script.write_text(TERMINATED)
    child = subprocess.Popen(
        [sys.executable, str(script)], env=prefect_env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    while "sleeping" not in child.stdout.readline():
        assert child.poll() is None, "the flow ended before its slow task started"
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=120)
    client = tracking.TrackingClient(prefect_env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("terminated")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    statuses = sorted((r.data.tags.get("prefect.task_name", "flow"), r.info.status) for r in runs)
    assert statuses == [
        ("flow", "KILLED"),
        ("quick", "FINISHED"),
        ("quick", "FINISHED"),
        ("quick", "FINISHED"),
        ("slow", "KILLED"),
    ]
