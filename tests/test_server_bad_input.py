"""Bad input over HTTP: a clear 4xx answer naming what is wrong, never a 5xx (which clients
retry for half a minute), on a real server over the file store, SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pg_server import PostgresServer
from server_process import Server, quiet_clients, start_server, stop_server

import tracking
from tracking.entities import Metric, Param, RunTag
from tracking.errors import InvalidParameterError

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module", params=["file", "sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    backend = {
        "file": str(workdir / "mlruns"),
        "sqlite": f"sqlite:///{workdir / 'tracking.db'}",
    }.get(request.param)
    if backend is None:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        backend = postgres.create_database()
    running = start_server(workdir, backend, "--artifacts-destination", str(workdir / "art"))
    yield running
    stop_server(running)
    assert "Traceback" not in running.log_text()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def run_id(http: httpx.Client) -> str:
    experiment_id = http.post("/experiments/create", json={"name": "bad-input"}).json()
    body = {"experiment_id": experiment_id["experiment_id"], "start_time": 1}
    run_id: str = http.post("/runs/create", json=body).json()["run"]["info"]["run_id"]
    http.post("/runs/log-parameter", json={"run_id": run_id, "key": "taken", "value": "1"})
    http.post("/runs/set-tag", json={"run_id": run_id, "key": "folder/tag", "value": "1"})
    return run_id


def token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


BIG = 2**63
RUN = "<run>"  # replaced by the run's id
# (endpoint, JSON body or raw text, HTTP status, a piece of the message)
CASES: list[tuple[str, Any, int, str]] = [
    ("runs/log-metric", {"key": "m", "value": 1, "timestamp": 1, "step": BIG}, 400, "64-bit"),
    ("runs/log-metric", {"key": "m", "value": 1, "timestamp": str(BIG)}, 400, "64-bit"),
    ("runs/log-metric", {"key": "m", "value": 1, "timestamp": -1}, 400, "out of range"),
    ("runs/log-metric", '{"key": "m", "value": 1%s, "timestamp": 1}' % ("0" * 400), 400, "64-bit"),
    ("runs/log-batch", {"metrics": [{"key": "m", "value": 1, "timestamp": BIG}]}, 400, "64-bit"),
    ("runs/create", {"experiment_id": "0", "start_time": BIG}, 400, "64-bit"),
    ("runs/create", {"experiment_id": "0", "run_name": "r" * 251}, 400, "at most 250"),
    ("runs/create", {"experiment_id": "0", "run_name": "a\x00b"}, 400, "NUL"),
    ("runs/create", {"experiment_id": str(BIG)}, 404, "does not exist"),
    ("runs/update", {"end_time": BIG}, 400, "64-bit"),
    ("runs/log-parameter", {"key": "é" * 200, "value": "v"}, 400, "at most 255"),
    ("runs/log-parameter", {"key": "taken/x", "value": "v"}, 400, "clashes with 'taken'"),
    ("runs/set-tag", {"key": "folder", "value": "v"}, 400, "clashes with 'folder/tag'"),
    ("runs/log-parameter", {"key": "n", "value": "a\x00b"}, 400, "NUL"),
    ("runs/log-parameter", '{"key": "s", "value": "a\\ud800"}', 400, "surrogate"),
    ("experiments/create", {"name": "a\x00b"}, 400, "NUL"),
    ("experiments/create", {"name": "x", "artifact_location": "/a\x00b"}, 400, "NUL"),
    (
        "runs/search",
        {"filter": " and ".join(f"params.p{i} = 'x'" for i in range(1000))},
        400,
        "at most 50 comparisons",
    ),
    ("runs/search", {"filter": "params.p = 'a\x00'"}, 400, "NUL"),
    ("runs/search", {"order_by": [f"metrics.m{i}" for i in range(11)]}, 400, "at most 10"),
    ("runs/search", {"page_token": token(2**64)}, 400, "offset must be an integer in 0.."),
    ("experiments/search", {"page_token": token(10**30)}, 400, "offset must be"),
    ("runs/search", {"max_results": 10**30}, 400, "64-bit"),
    ("registered-models/create", {"name": "é" * 200}, 400, "at most 255"),
    ("registered-models/create", {"name": "m", "description": "a\x00"}, 400, "NUL"),
]


@pytest.mark.parametrize(("endpoint", "body", "status", "message"), CASES)
def test_bad_input_gets_a_clear_4xx(
    http: httpx.Client, run_id: str, endpoint: str, body: Any, status: int, message: str
) -> None:
    if isinstance(body, str):
        text = body[:-1] + f', "run_id": "{run_id}"}}'
        response = http.post(f"/{endpoint}", content=text.encode(), headers=JSON)
    else:
        response = http.post(f"/{endpoint}", json={"run_id": run_id, **body})
    answer = response.json()
    assert response.status_code == status, answer
    assert message in answer["message"] and "Traceback" not in answer["message"]
    assert answer["error_code"] == (
        "INVALID_PARAMETER_VALUE" if status == 400 else "RESOURCE_DOES_NOT_EXIST"
    )


JSON = {"Content-Type": "application/json"}


def test_get_requests_with_bad_numbers(http: httpx.Client, run_id: str) -> None:
    history = {"run_id": run_id, "metric_key": "m", "page_token": token(10**30)}
    assert http.get("/metrics/get-history", params=history).status_code == 400
    history = {"run_id": run_id, "metric_key": "m", "max_results": str(10**30)}
    assert http.get("/metrics/get-history", params=history).status_code == 400
    assert http.get("/experiments/get", params={"experiment_id": "9" * 40}).status_code == 404
    version = {"name": "m", "version": str(2**40)}
    answer = http.get("/model-versions/get", params=version)
    assert answer.status_code == 400 and "at most 2147483647" in answer.json()["message"]


def test_the_python_client_gets_the_error_at_once(
    server: Server, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet_clients(monkeypatch)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")  # a 5xx would be retried
    client = tracking.TrackingClient(server.url)
    with pytest.raises(InvalidParameterError, match="NUL"):
        client.store.log_param(run_id, Param("nul", "a\x00"))
    with pytest.raises(InvalidParameterError, match="clashes"):
        client.store.set_tag(run_id, RunTag("folder", "v"))
    with pytest.raises(InvalidParameterError, match="64-bit"):
        client.store.log_metric(run_id, Metric("m", 1.0, 1, 2**63))
    with pytest.raises(InvalidParameterError, match="NUL"):
        client.search_runs(["0"], "params.p = 'a\x00'")
    assert client.get_experiment_by_name("a\x00b") is None
    with pytest.raises(InvalidParameterError, match="clashes"):
        client.store.log_param(run_id, Param("taken/y", "v"))
