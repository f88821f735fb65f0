"""Load on our tracking server: many client processes at once, nothing lost, no 5xx.

The server runs for real (``python -m tracking.servers.api --workers 2`` on a free 127.0.0.1 port)
on SQLite and on PostgreSQL. CLIENTS processes (multiprocessing "spawn") start together behind
a barrier; each logs METRIC_CALLS points into one run with `tracking.log_metric`, then makes
RUNS runs of start_run / log_param / log_metric / end_run, all through our REST store.

Afterwards every run, param and metric point must be there, exactly once: counted through our
store opened directly on the backend (`tracking.stores.open_store`, plus row counts) and through
the REST API. The children run with MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 (the REST store keeps no
retry counter), so a 5xx or a dropped connection fails the child instead of being retried away;
the server's access log (one line per request, with its status) must show exactly one
request per client call, each answered 200.

Counts: 8 clients x (500 log_metric + 100 runs), 7,224 requests; about 75 s per backend on a
2-CPU VM (see the bench's README). TRACKFLOW_LOAD_QUICK=1 scales it down to 8 x (150 + 30),
about 30 s per backend.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_process import Server, start_server, stop_server

QUICK = os.environ.get("TRACKFLOW_LOAD_QUICK", "").strip().lower() in ("1", "true", "yes")
#: (clients, log_metric calls per client, runs per client)
LOAD = (8, 150, 30) if QUICK else (8, 500, 100)
WORKERS = 2
CHILD_TIMEOUT = 600.0
EXPERIMENT = "load"
METRIC_KEY = "load"
ACCESS_LINE = re.compile(r'"(GET|POST|PUT|DELETE|PATCH) (\S+) HTTP/1\.[01]" (\d{3})')
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
}
CLEARED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "TRACKFLOW_HTTP_RETRY_TIMEOUT",
)


# --------------------------------------------------------------------------- the server
@pytest.fixture(params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    if request.param == "sqlite":
        backend = f"sqlite:///{tmp_path / 'server' / 'tracking.db'}"
    else:
        postgres_uri: Callable[[], str] = request.getfixturevalue("postgres_uri")
        backend = postgres_uri()
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in CLIENT_ENV.items():  # inherited by the spawned clients
        monkeypatch.setenv(name, value)
    workdir = tmp_path / "server"
    running = start_server(
        workdir, backend, "--default-artifact-root", str(workdir / "artifacts"),
        "--serve-artifacts", "--workers", str(WORKERS),
    )  # fmt: skip
    try:
        yield running
    finally:
        stop_server(running)


# --------------------------------------------------------------------------- the clients
def client_process(
    url: str,
    experiment_id: str,
    index: int,
    metric_calls: int,
    runs: int,
    barrier: Any,
    results: Any,
) -> None:
    """One client: `metric_calls` log_metric into a run, then `runs` small runs; reports
    {"index", "seconds", "error"} on `results`."""
    report: dict[str, Any] = {"index": index, "error": None}
    try:
        import tracking

        tracking.set_tracking_uri(url)
        barrier.wait(timeout=CHILD_TIMEOUT)
        started = time.perf_counter()
        with tracking.start_run(experiment_id=experiment_id, run_name=f"metrics-{index}"):
            tracking.log_param("client", index)
            for step in range(metric_calls):
                tracking.log_metric(METRIC_KEY, index * 1_000_000 + step, step=step)
        for j in range(runs):
            tracking.start_run(experiment_id=experiment_id, run_name=f"run-{index}-{j}")
            tracking.log_param("j", j)
            tracking.log_metric("j", j)
            tracking.end_run()
        report["seconds"] = time.perf_counter() - started
    except BaseException:
        report["error"] = traceback.format_exc()
    results.put(report)


def run_clients(
    url: str, experiment_id: str, clients: int, metric_calls: int, runs: int
) -> tuple[list[dict[str, Any]], float]:
    """Start `clients` spawned processes together; their reports and the wall time."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=client_process,
            args=(url, experiment_id, i, metric_calls, runs, barrier, results),
            daemon=True,
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, Any]] = []
    try:
        barrier.wait(timeout=CHILD_TIMEOUT)
        started = time.perf_counter()
        deadline = time.monotonic() + CHILD_TIMEOUT
        while len(reports) < clients:
            reports.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
        wall = time.perf_counter() - started
        for process in processes:
            process.join(timeout=30)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
    return sorted(reports, key=lambda r: r["index"]), wall


# --------------------------------------------------------------------------- checks
def all_runs(search: Callable[[str | None], Any]) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = search(token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def check_runs(runs: list[Any], clients: int, metric_calls: int, runs_each: int) -> None:
    """Every run once, FINISHED, with its param and latest metric value."""
    by_name = {run.info.run_name: run for run in runs}
    assert len(runs) == len(by_name) == clients * (runs_each + 1)
    for i in range(clients):
        run = by_name[f"metrics-{i}"]
        assert run.info.status == "FINISHED"
        assert run.data.params == {"client": str(i)}
        assert run.data.metrics == {METRIC_KEY: i * 1_000_000 + metric_calls - 1}
        for j in range(runs_each):
            run = by_name[f"run-{i}-{j}"]
            assert run.info.status == "FINISHED", run.info
            assert run.data.params == {"j": str(j)}
            assert run.data.metrics == {"j": j}


def check_history(history: list[Any], index: int, metric_calls: int) -> None:
    """All the points of one client's metric run, each step exactly once."""
    assert sorted(m.step for m in history) == list(range(metric_calls))
    assert sorted(m.value for m in history) == [index * 1_000_000 + s for s in range(metric_calls)]


def row_counts(backend_uri: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from tracking.stores import open_store
    from tracking.stores.sql import schema as schema

    store = open_store(backend_uri)
    tables = {
        "runs": schema.runs,
        "params": schema.params,
        "metrics": schema.metrics,
        "latest_metrics": schema.latest_metrics,
    }
    try:
        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in tables.items()
            }
    finally:
        store.close()


#: What the clients call: start_run, log_param, log_metric, end_run (the checks read with
#: runs/search and metrics/get-history).
CLIENT_ENDPOINTS = tuple(
    f"/api/2.0/mlflow/runs/{name}" for name in ("create", "log-parameter", "log-metric", "update")
)


def access_log_statuses(log_text: str, paths: tuple[str, ...] | None = None) -> Counter[int]:
    """Statuses of the logged requests (only those to `paths` when given)."""
    return Counter(
        int(m.group(3))
        for m in ACCESS_LINE.finditer(log_text)
        if paths is None or m.group(2) in paths
    )


# --------------------------------------------------------------------------- the test
def test_concurrent_clients_lose_nothing_and_get_no_5xx(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from tracking import TrackingClient, ViewType
    from tracking.stores import open_store

    clients, metric_calls, runs_each = LOAD
    api = TrackingClient(server.url)
    experiment_id = api.create_experiment(EXPERIMENT)
    reports, wall = run_clients(server.url, experiment_id, clients, metric_calls, runs_each)

    errors = [f"client {r['index']}:\n{r['error']}" for r in reports if r["error"]]
    assert not errors, "\n".join(errors)

    # Read back through our store, opened directly on the backend...
    expected_points = clients * (metric_calls + runs_each)
    counts = row_counts(server.backend_uri)
    assert counts == {
        "runs": clients * (runs_each + 1),
        "params": clients * (runs_each + 1),
        "metrics": expected_points,
        "latest_metrics": clients * (runs_each + 1),
    }
    store = open_store(server.backend_uri)
    try:
        direct = all_runs(
            lambda token: store.search_runs([experiment_id], None, ViewType.ALL, 1000, None, token)
        )
        check_runs(direct, clients, metric_calls, runs_each)
        for run in direct:
            name = run.info.run_name
            if name.startswith("metrics-"):
                history = store.get_metric_history(run.info.run_id, METRIC_KEY)
                check_history(history, int(name.split("-")[1]), metric_calls)
            else:
                assert len(store.get_metric_history(run.info.run_id, "j")) == 1
    finally:
        store.close()

    # ... and through the REST API.
    served = all_runs(
        lambda token: api.search_runs([experiment_id], "", ViewType.ALL, 200, None, token)
    )
    check_runs(served, clients, metric_calls, runs_each)
    for run in served:
        if run.info.run_name.startswith("metrics-"):
            index = int(run.info.run_name.split("-")[1])
            check_history(api.get_metric_history(run.info.run_id, METRIC_KEY), index, metric_calls)

    # The server's access log: one request per client call (start_run = runs/create, end_run =
    # runs/update; no retries, no extra reads), each answered 200; nothing else failed.
    stop_server(server)
    log = server.log_text()
    statuses = access_log_statuses(log, CLIENT_ENDPOINTS)
    requests = clients * (1 + 1 + metric_calls + 1 + runs_each * 4)
    assert statuses == {200: requests}, (statuses, requests)
    assert not [s for s in access_log_statuses(log) if s >= 500]
    assert "Traceback" not in log, log[-3000:]

    backend = server.backend_uri.split(":", 1)[0]
    with capsys.disabled():
        print(
            f"\n[load {backend}] {clients} clients x ({metric_calls} log_metric + "
            f"{runs_each} runs) = {requests} requests in {wall:.1f} s "
            f"({requests / wall:.0f} req/s; slowest client "
            f"{max(r['seconds'] for r in reports):.1f} s); statuses {dict(statuses)}"
        )
