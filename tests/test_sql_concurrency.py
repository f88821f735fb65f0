"""Several processes writing into ONE SQL store at once (one SQLite file / one PostgreSQL database).

The children use the fluent API exactly like user scripts do (`tracking.set_tracking_uri(uri)`)
and catch nothing: an exception in a child (e.g. "database is locked") is reported back with its
traceback and fails the test. Children are started with the `spawn` method, so each one opens
its own engine, runs the migration check and races the others from a cold start.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

import tracking
from tracking.entities import RunStatus
from tracking.stores.sql import schema as schema
from tracking.stores.sql.store import engine_url

WORKERS = 4
RUNS_PER_WORKER = 250
METRIC_KEYS = ("loss", "acc", "lr_now")
STEPS = 5
SHARED_KEYS = tuple(f"m{k:02d}" for k in range(25))
SHARED_BATCHES = 40
RACERS = 6  # processes calling set_experiment on one new name at the same moment
RACE_ROUNDS = 3
CHILD_TIMEOUT = 300.0  # seconds for all children together; only reached on a hang


@pytest.fixture(params=["sqlite", "postgresql"])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty tracking URI: the children create the schema themselves, concurrently."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'concurrency.db'}"
    return request.getfixturevalue("postgres_uri")()


# --------------------------------------------------------------------------- expected values
def metric_value(worker: int, index: int, key: int, step: int) -> float:
    """A distinct, exactly representable value per (worker, run, key, step)."""
    return worker * 1_000_000 + index * 1_000 + key * 100 + step + 0.25


def expected_params(worker: int, index: int) -> dict[str, str]:
    return {"worker": str(worker), "index": str(index), "label": f"w{worker}-r{index}-{'x' * 40}"}


# --------------------------------------------------------------------------- child processes
def _log_runs(uri: str, experiment: str, worker: int, barrier: Any) -> list[str]:
    """One worker: RUNS_PER_WORKER runs, each with params and a full metric history."""
    tracking.set_tracking_uri(uri)
    tracking.fluent.current_client()  # open the store (engine, migrations) before the barrier
    barrier.wait()
    tracking.set_experiment(experiment)
    run_ids = []
    for index in range(RUNS_PER_WORKER):
        with tracking.start_run(run_name=f"w{worker}-r{index}") as run:
            tracking.log_params(expected_params(worker, index))
            for step in range(STEPS):
                if step % 2:  # odd steps: one log_metrics batch; even steps: one call per key
                    tracking.log_metrics(
                        {
                            k: metric_value(worker, index, n, step)
                            for n, k in enumerate(METRIC_KEYS)
                        },
                        step=step,
                    )
                else:
                    for n, key in enumerate(METRIC_KEYS):
                        tracking.log_metric(key, metric_value(worker, index, n, step), step=step)
        run_ids.append(run.info.run_id)
    return run_ids


def _race_set_experiment(uri: str, names: list[str], worker: int, barrier: Any) -> list[Any]:
    """For each name: wait for everyone, set_experiment(name), log one run; report ids."""
    tracking.set_tracking_uri(uri)
    client = tracking.fluent.current_client()
    client.get_experiment_by_name("warm-up")  # open the store and a pooled connection first
    results = []
    for name in names:
        barrier.wait()
        experiment = tracking.set_experiment(name)
        with tracking.start_run() as run:
            tracking.log_param("worker", worker)
        results.append((experiment.experiment_id, run.info.run_id))
    return results


def _log_into_shared_run(uri: str, run_id: str, worker: int, barrier: Any) -> None:
    """One worker of a shared run: the same params as everyone, its own keys in its own order."""
    tracking.set_tracking_uri(uri)
    tracking.get_run(run_id)  # open the store before the barrier
    keys = list(SHARED_KEYS) if worker % 2 else list(reversed(SHARED_KEYS))
    barrier.wait()
    for i in range(SHARED_BATCHES):
        tracking.log_params({f"common-{i}": "same value", f"w{worker}-{i}": worker}, run_id=run_id)
        tracking.log_metrics(
            {k: float(worker) for k in keys}, step=i, timestamp=1000 + i, run_id=run_id
        )
        tracking.log_metric("single", float(worker), step=i, timestamp=1000 + i, run_id=run_id)


def _child(
    target: Callable[..., Any], args: tuple[Any, ...], worker: int, out: Any, barrier: Any
) -> None:
    """Run target; send its result, or its traceback, to the parent. Errors are re-raised.

    A failing child also breaks the barrier, so the others stop waiting and fail fast.
    """
    try:
        out.put((worker, "ok", target(*args)))
    except BaseException:
        out.put((worker, "error", traceback.format_exc()))
        barrier.abort()
        raise


def run_processes(
    target: Callable[..., Any], args: Callable[[int, Any], tuple[Any, ...]], n: int
) -> list[Any]:
    """Start n spawned processes on target(*args(i, barrier)); return their results in order.

    Fails the test with the children's tracebacks if any child raises, dies or hangs.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n, timeout=120)
    out = ctx.Queue()
    processes = [
        ctx.Process(target=_child, args=(target, args(i, barrier), i, out, barrier), daemon=True)
        for i in range(n)
    ]
    for p in processes:
        p.start()
    results: dict[int, Any] = {}
    errors: list[str] = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while len(results) + len(errors) < n and time.monotonic() < deadline:
            try:
                worker, kind, payload = out.get(timeout=0.5)
            except queue.Empty:
                if all(not p.is_alive() for p in processes) and out.empty():
                    break  # someone died without reporting (killed, segfault)
                continue
            if kind == "ok":
                results[worker] = payload
            else:
                errors.append(f"--- worker {worker} ---\n{payload}")
        for p in processes:
            p.join(timeout=30)
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
                p.join()
    codes = [p.exitcode for p in processes]
    assert not errors, "child process failed:\n" + "\n".join(errors)
    assert len(results) == n and codes == [0] * n, f"children lost or hung: exit codes {codes}"
    return [results[i] for i in range(n)]


# --------------------------------------------------------------------------- tests
def test_many_processes_log_into_one_database(uri: str) -> None:
    experiment = "concurrent-writers"
    started = time.perf_counter()
    per_worker = run_processes(_log_runs, lambda i, barrier: (uri, experiment, i, barrier), WORKERS)
    elapsed = time.perf_counter() - started
    total = WORKERS * RUNS_PER_WORKER
    print(f"{uri.split(':')[0]}: {total} runs from {WORKERS} processes in {elapsed:.1f} s")

    all_ids = [run_id for ids in per_worker for run_id in ids]
    assert len(set(all_ids)) == total

    client = tracking.TrackingClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id], max_results=50_000)
    assert {r.info.run_id for r in runs} == set(all_ids)
    by_id = {r.info.run_id: r for r in runs}

    # Every run: finished, right name, every param, the latest value of every metric.
    for worker, ids in enumerate(per_worker):
        for index, run_id in enumerate(ids):
            run = by_id[run_id]
            assert run.info.status == RunStatus.FINISHED.name
            assert run.info.run_name == f"w{worker}-r{index}"
            assert run.data.params == expected_params(worker, index)
            assert run.data.metrics == {
                key: metric_value(worker, index, n, STEPS - 1) for n, key in enumerate(METRIC_KEYS)
            }

    # Every metric point is stored: counts per table, then whole histories for a sample.
    engine = create_engine(engine_url(uri))  # the database itself, not through the store
    m, p = schema.metrics, schema.params
    with engine.connect() as conn:
        points = conn.execute(
            select(func.count()).select_from(m).where(m.c.run_uuid.in_(all_ids))
        ).scalar_one()
        per_series = (
            conn.execute(select(func.count()).select_from(m).group_by(m.c.run_uuid, m.c.key))
            .scalars()
            .all()
        )
        params = conn.execute(select(func.count()).select_from(p)).scalar_one()
    engine.dispose()
    assert points == total * len(METRIC_KEYS) * STEPS
    assert set(per_series) == {STEPS}
    assert params == total * len(expected_params(0, 0))

    rng = random.Random(0)
    for _ in range(25):
        worker = rng.randrange(WORKERS)
        index = rng.randrange(RUNS_PER_WORKER)
        for n, key in enumerate(METRIC_KEYS):
            history = client.get_metric_history(per_worker[worker][index], key)
            assert [(h.step, h.value) for h in history] == [
                (step, metric_value(worker, index, n, step)) for step in range(STEPS)
            ]


def test_concurrent_set_experiment_creates_one_experiment(uri: str) -> None:
    names = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(RACE_ROUNDS)]
    per_worker = run_processes(
        _race_set_experiment, lambda i, barrier: (uri, names, i, barrier), RACERS
    )
    client = tracking.TrackingClient(uri)
    for round_no, name in enumerate(names):
        matching = client.search_experiments(filter_string=f"name = '{name}'")
        assert len(matching) == 1, f"{name}: {len(matching)} experiments"
        experiment_id = matching[0].experiment_id
        reported = [results[round_no] for results in per_worker]
        assert {exp_id for exp_id, _ in reported} == {experiment_id}
        runs = client.search_runs([experiment_id])
        assert sorted(r.info.run_id for r in runs) == sorted(run_id for _, run_id in reported)
        assert sorted(r.data.params["worker"] for r in runs) == [str(i) for i in range(RACERS)]
    assert len(client.search_runs(["0"])) == 0, "a racer's run fell back to Default"
    assert len(client.search_experiments()) == 1 + RACE_ROUNDS


def test_many_processes_log_into_one_shared_run(uri: str) -> None:
    """Prefect-style: every worker logs into the same run (same params, overlapping metrics)."""
    client = tracking.TrackingClient(uri)
    run_id = client.create_run("0", run_name="shared").info.run_id
    run_processes(_log_into_shared_run, lambda i, barrier: (uri, run_id, i, barrier), WORKERS)
    run = client.get_run(run_id)
    expected = {f"common-{i}": "same value" for i in range(SHARED_BATCHES)}
    expected.update({f"w{w}-{i}": str(w) for w in range(WORKERS) for i in range(SHARED_BATCHES)})
    assert run.data.params == expected
    # Latest = highest (step, timestamp, value): the last step, from the highest worker number.
    assert run.data.metrics == {k: float(WORKERS - 1) for k in (*SHARED_KEYS, "single")}
    for key in (SHARED_KEYS[0], SHARED_KEYS[-1], "single"):
        history = client.get_metric_history(run_id, key)
        assert sorted((h.step, h.value) for h in history) == [
            (i, float(w)) for i in range(SHARED_BATCHES) for w in range(WORKERS)
        ]
