"""The tracking server, driven by MLflow's own client and by raw HTTP.

The server runs for real: ``python -m tracking.servers.api`` in a subprocess on a free 127.0.0.1
port, once per backend (file store and SQLite) for the module. Everything the MLflow client
writes is read back through the client, through raw JSON, and through our store directly.
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import (
    CLIENT_ENV_CLEARED,
    Server,
    free_port,
    quiet_clients,
    start_server,
    stop_server,
)

import tracking
from tracking.entities import ViewType
from tracking.stores import get_store

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


# --------------------------------------------------------------------------- the server


@pytest.fixture(scope="module", params=["file", "sqlite"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "file":
        backend = str(workdir / "mlruns")
    else:
        backend = f"sqlite:///{workdir / 'tracking.db'}"
    destination = workdir / "artifacts"
    running = start_server(workdir, backend, "--artifacts-destination", str(destination))
    yield running
    stop_server(running)
    assert running.process.returncode == 0, running.log_text()
    assert "Traceback" not in running.log_text()


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """`use(url)` points MLflow's fluent API and clients at `url`; globals reset afterwards."""
    import mlflow
    import mlflow.tracking.fluent as mlflow_fluent

    quiet_clients(monkeypatch)
    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)

    def use(url: str) -> Any:
        mlflow.set_tracking_uri(url)
        return mlflow

    yield use
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    for name in CLIENT_ENV_CLEARED:
        os.environ.pop(name, None)


@pytest.fixture
def mlflow(server: Server, mlflow_env: Callable[[str], Any]) -> Any:
    return mlflow_env(server.url)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# --------------------------------------------------------------------------- basics


def test_health_version_and_server_info(http: httpx.Client) -> None:
    import tracking

    assert http.get("/health").text == "OK"
    assert http.get("/version").text == tracking.__version__
    info = http.get("/api/3.0/mlflow/server-info").json()
    assert info["store_type"] in ("FileStore", "SqlStore")
    assert info["multipart_uploads_enabled"] is False


def test_cli_server_command_options() -> None:
    import argparse

    from tracking.servers.api.cli import add_server_command, run_server

    parser = argparse.ArgumentParser(prog="trackflow")
    add_server_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["server"])
    assert (args.host, args.port, args.workers, args.serve_artifacts) == (
        "127.0.0.1",
        5000,
        1,
        True,
    )
    assert args.backend_store_uri == "./mlruns"
    assert args.handler is run_server
    args = parser.parse_args(
        [
            *("server", "--no-serve-artifacts", "--host", "0.0.0.0", "-p", "8080", "-w", "3"),
            *("--auth-token", "t", "--basic-auth", "u:p", "--artifacts-destination", "s3://b/p"),
        ]
    )
    assert (args.serve_artifacts, args.host, args.port, args.workers) == (False, "0.0.0.0", 8080, 3)
    assert (args.auth_token, args.basic_auth, args.artifacts_destination) == (
        "t",
        "u:p",
        "s3://b/p",
    )


# --------------------------------------------------------------------------- MLflow's client


def test_tracking_example_with_mlflow_client(server: Server, mlflow: Any, tmp_path: Path) -> None:
    """The spec's tracking example (params, metrics, tags, nested runs, artifacts) via MLflow."""
    name = unique("example")
    experiment = mlflow.set_experiment(name)
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment.experiment_id}"
    notes = write_file(tmp_path, "notes.txt", "hello from mlflow")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 4, "model": "rf"})
        mlflow.log_metric("loss", 0.9, step=0)
        mlflow.log_metrics({"loss": 0.5, "acc": 0.8}, step=1)
        mlflow.log_metric("loss", 0.25, step=2)
        mlflow.set_tag("team", "ml")
        mlflow.set_tags({"stage": "dev", "owner": "alice"})
        for fold in range(2):
            with mlflow.start_run(run_name=f"fold-{fold}", nested=True):
                mlflow.log_metric("fold_acc", [0.7, 0.8][fold])
        mlflow.log_artifact(str(notes))
        mlflow.log_artifact(str(notes), artifact_path="reports/daily")
        mlflow.log_text("some text", "texts/readme.txt")
        mlflow.log_dict({"a": 1}, "config.json")
    run_id = parent.info.run_id

    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "parent"
    assert (
        run.info.artifact_uri == f"mlflow-artifacts:/{experiment.experiment_id}/{run_id}/artifacts"
    )
    assert run.info.end_time is not None
    assert run.data.params == {"lr": "0.01", "depth": "4", "model": "rf"}
    assert run.data.metrics == {"loss": 0.25, "acc": 0.8}
    latest_loss = next(m for m in run.data._metric_objs if m.key == "loss")
    assert latest_loss.step == 2
    assert {"team": "ml", "stage": "dev", "owner": "alice"}.items() <= run.data.tags.items()
    assert run.data.tags["mlflow.runName"] == "parent"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [
        (0, 0.9),
        (1, 0.5),
        (2, 0.25),
    ]
    children = client.search_runs(
        [experiment.experiment_id],
        f"tags.mlflow.parentRunId = '{run_id}'",
        order_by=["attributes.run_name ASC"],
    )
    assert [c.info.run_name for c in children] == ["fold-0", "fold-1"]
    assert [c.data.metrics["fold_acc"] for c in children] == [0.7, 0.8]

    listed = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert listed == {
        ("config.json", False),
        ("notes.txt", False),
        ("reports", True),
        ("texts", True),
    }
    assert [f.path for f in client.list_artifacts(run_id, "reports/daily")] == [
        "reports/daily/notes.txt"
    ]
    assert mlflow.artifacts.load_text(f"{run.info.artifact_uri}/notes.txt") == "hello from mlflow"
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config.json") == {"a": 1}
    local = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    got = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert got == ["config.json", "notes.txt", "reports/daily/notes.txt", "texts/readme.txt"]

    # ... and through our own store and the artifact destination on the server's disk
    store = server.store()
    ours = store.get_run(run_id)
    assert ours.data.params == run.data.params
    assert ours.data.metrics == run.data.metrics
    assert ours.data.tags == run.data.tags
    assert ours.info.status == "FINISHED"
    assert [m.value for m in store.get_metric_history(run_id, "loss")] == [0.9, 0.5, 0.25]
    assert store.get_experiment_by_name(name).experiment_id == experiment.experiment_id  # type: ignore[union-attr]
    assert server.destination is not None
    stored = server.destination / experiment.experiment_id / run_id / "artifacts"
    assert (stored / "notes.txt").read_text() == "hello from mlflow"
    assert (stored / "reports" / "daily" / "notes.txt").is_file()


def test_runs_created_by_client_keep_user_name_and_system_tags(mlflow: Any) -> None:
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment(unique("names"))
    named = client.create_run(experiment_id, run_name="my-run", tags={"k": "v"})
    assert named.info.run_name == "my-run"
    assert named.data.tags["mlflow.runName"] == "my-run"
    unnamed = client.create_run(experiment_id)
    assert unnamed.info.run_name  # the server picks a name, as MLflow's does
    assert client.get_run(unnamed.info.run_id).data.tags["mlflow.runName"] == unnamed.info.run_name
    client.update_run(named.info.run_id, name="renamed")
    assert client.get_run(named.info.run_id).info.run_name == "renamed"
    client.set_terminated(named.info.run_id, "FAILED")
    assert client.get_run(named.info.run_id).info.status == "FAILED"


def test_special_metric_values_round_trip(server: Server, mlflow: Any) -> None:
    client = mlflow.MlflowClient()
    run = client.create_run(client.create_experiment(unique("special")))
    run_id = run.info.run_id
    for step, value in enumerate([float("nan"), float("inf"), float("-inf"), 1e308, -0.5]):
        client.log_metric(run_id, "x", value, step=step, timestamp=1000 + step)
    history = client.get_metric_history(run_id, "x")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    expected = [float("nan"), float("inf"), float("-inf"), 1e308, -0.5]
    assert all(same(m.value, v) for m, v in zip(history, expected, strict=True))
    assert client.get_run(run_id).data.metrics["x"] == -0.5
    ours = server.store().get_metric_history(run_id, "x")
    assert all(same(m.value, v) for m, v in zip(ours, expected, strict=True))


def test_search_runs_filter_order_and_pages(server: Server, mlflow: Any) -> None:
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment(unique("search"))
    accuracies = [0.5, 0.9, 0.7, 0.8, 0.6, 0.95, 0.3]
    for i, acc in enumerate(accuracies):
        run = client.create_run(experiment_id, run_name=f"r{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[mlflow.entities.Metric("acc", acc, 1000 + i, 0)],
            params=[mlflow.entities.Param("model", "rf" if i % 2 else "svm")],
            tags=[mlflow.entities.RunTag("i", str(i))],
        )
        client.set_terminated(run.info.run_id)

    query = "metrics.acc > 0.55 and params.model = 'rf'"
    found = client.search_runs([experiment_id], query, order_by=["metrics.acc DESC"])
    assert [r.data.metrics["acc"] for r in found] == [0.95, 0.9, 0.8]

    seen: list[float] = []
    token = None
    pages = 0
    while True:
        page = client.search_runs(
            [experiment_id], "", order_by=["metrics.acc ASC"], max_results=3, page_token=token
        )
        seen += [r.data.metrics["acc"] for r in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == sorted(accuracies) and pages == 3

    ours = server.store().search_runs([experiment_id], query, order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in ours] == [r.info.run_id for r in found]

    frame = mlflow.search_runs(
        [experiment_id], filter_string="metrics.acc >= 0.8", order_by=["metrics.acc DESC"]
    )
    assert list(frame["metrics.acc"]) == [0.95, 0.9, 0.8]
    assert set(frame["status"]) == {"FINISHED"}

    with pytest.raises(mlflow.exceptions.MlflowException, match=r"(?i)invalid|syntax|OR"):
        client.search_runs([experiment_id], "metrics.acc > 1 or metrics.acc < 0")


def test_metric_history_is_paginated(server: Server, mlflow: Any, http: httpx.Client) -> None:
    """MLflow's client pages get-history by 25 000 points; a longer history takes two pages."""
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment(unique("history"))).info.run_id
    total = 25_050
    metrics = [mlflow.entities.Metric("loss", i / total, 1_000 + i, i) for i in range(total)]
    client.log_batch(run_id, metrics=metrics)  # the client sends 1000 metrics per request
    history = client.get_metric_history(run_id, "loss")
    assert len(history) == total
    assert [m.step for m in history[:3]] == [0, 1, 2]
    assert history[-1].step == total - 1
    assert len(server.store().get_metric_history(run_id, "loss")) == total

    params = {"run_id": run_id, "metric_key": "loss", "max_results": 10_000}
    first = http.get(f"{API}/metrics/get-history", params=params).json()
    assert len(first["metrics"]) == 10_000 and first["next_page_token"]
    steps = [m["step"] for m in first["metrics"]]
    token = first["next_page_token"]
    while token:
        page = http.get(f"{API}/metrics/get-history", params={**params, "page_token": token})
        body = page.json()
        steps += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
    assert steps == list(range(total))


def test_delete_and_restore_runs(server: Server, mlflow: Any) -> None:
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment(unique("lifecycle"))
    keep = client.create_run(experiment_id).info.run_id
    gone = client.create_run(experiment_id).info.run_id
    client.delete_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "deleted"
    active = client.search_runs([experiment_id])
    assert [r.info.run_id for r in active] == [keep]
    deleted = client.search_runs(
        [experiment_id], run_view_type=mlflow.entities.ViewType.DELETED_ONLY
    )
    assert [r.info.run_id for r in deleted] == [gone]
    assert len(client.search_runs([experiment_id], run_view_type=mlflow.entities.ViewType.ALL)) == 2
    assert server.store().get_run(gone).info.lifecycle_stage == "deleted"
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.log_param(gone, "p", "v")  # logging to a deleted run is refused
    client.restore_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "active"
    assert len(client.search_runs([experiment_id])) == 2


def test_experiments_crud(server: Server, mlflow: Any) -> None:
    client = mlflow.MlflowClient()
    name = unique("crud")
    experiment_id = client.create_experiment(name, tags={"owner": "bob"})
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == name and experiment.tags == {"owner": "bob"}
    assert experiment.lifecycle_stage == "active"
    assert client.get_experiment_by_name(name).experiment_id == experiment_id
    assert client.get_experiment_by_name(unique("missing")) is None
    with pytest.raises(mlflow.exceptions.MlflowException, match="RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)

    new_name = unique("renamed")
    client.rename_experiment(experiment_id, new_name)
    client.set_experiment_tag(experiment_id, "stage", "prod")
    client.delete_experiment_tag(experiment_id, "owner")
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == new_name and experiment.tags == {"stage": "prod"}
    store = server.store()
    assert store.get_experiment(experiment_id).name == new_name
    assert store.get_experiment(experiment_id).tags == {"stage": "prod"}

    found = client.search_experiments(filter_string=f"name = '{new_name}'")
    assert [e.experiment_id for e in found] == [experiment_id]
    found = client.search_experiments(filter_string="tags.stage = 'prod'")
    assert experiment_id in {e.experiment_id for e in found}

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    active = {e.experiment_id for e in client.search_experiments()}
    deleted = {
        e.experiment_id
        for e in client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)
    }
    assert experiment_id not in active and experiment_id in deleted
    assert store.get_experiment(experiment_id).lifecycle_stage == "deleted"
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"

    ids: list[str] = []
    token = None
    while True:
        page = client.search_experiments(max_results=2, page_token=token, view_type=3)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    expected = store.search_experiments(view_type=ViewType.ALL, max_results=50_000)
    assert ids == [e.experiment_id for e in expected]


def test_artifact_directories_through_the_proxy(
    server: Server, mlflow: Any, tmp_path: Path, http: httpx.Client
) -> None:
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment(unique("artifacts"))
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    source = tmp_path / "model"
    write_file(source, "MLmodel", "flavors: {}")
    write_file(source, "data/weights.bin", "0" * 3000)
    write_file(source, "data/nested/deep.txt", "deep")
    client.log_artifacts(run_id, str(source), artifact_path="model")
    assert {(f.path, f.is_dir) for f in client.list_artifacts(run_id, "model")} == {
        ("model/MLmodel", False),
        ("model/data", True),
    }
    sizes = {f.path: f.file_size for f in client.list_artifacts(run_id, "model/data")}
    assert sizes == {"model/data/nested": None, "model/data/weights.bin": 3000}
    local = Path(client.download_artifacts(run_id, "model/data", str(tmp_path / "dl")))
    assert (local / "nested" / "deep.txt").read_text() == "deep"

    # MLflow's tracking endpoint artifacts/list reads the proxied destination
    body = http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "model"}).json()
    assert body["root_uri"] == run.info.artifact_uri
    assert body["files"] == [
        {"path": "model/MLmodel", "is_dir": False, "file_size": 11},
        {"path": "model/data", "is_dir": True},
    ]
    # the proxy's own listing gives base names, relative to the destination root
    proxied = f"{experiment_id}/{run_id}/artifacts/model/data"
    body = http.get(ARTIFACTS, params={"path": proxied}).json()
    assert body == {
        "files": [
            {"path": "nested", "is_dir": True},
            {"path": "weights.bin", "is_dir": False, "file_size": 3000},
        ]
    }
    download = http.get(f"{ARTIFACTS}/{proxied}/weights.bin")
    assert download.status_code == 200 and download.content == b"0" * 3000
    assert download.headers["content-disposition"].startswith("attachment")
    assert http.get(f"{ARTIFACTS}/{proxied}/missing.bin").status_code == 404
    assert http.delete(f"{ARTIFACTS}/{proxied}/nested").json() == {}
    assert [f.path for f in client.list_artifacts(run_id, "model/data")] == [
        "model/data/weights.bin"
    ]
    assert server.destination is not None
    assert not (server.destination / proxied / "nested").exists()


def test_large_artifact_streams_both_ways(server: Server, mlflow: Any, tmp_path: Path) -> None:
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment(unique("big"))).info.run_id
    big = tmp_path / "big.bin"
    chunk = os.urandom(1024 * 1024)
    with open(big, "wb") as f:
        for _ in range(24):
            f.write(chunk)
    client.log_artifact(run_id, str(big))
    local = Path(client.download_artifacts(run_id, "big.bin", str(tmp_path / "dl")))
    assert local.stat().st_size == big.stat().st_size
    with open(local, "rb") as f:
        assert f.read(len(chunk)) == chunk


# --------------------------------------------------------------------------- raw JSON


def post(http: httpx.Client, endpoint: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"{API}/{endpoint}", json=body)


def test_json_shapes(http: httpx.Client) -> None:
    experiment_id = post(http, "experiments/create", {"name": unique("shapes")}).json()[
        "experiment_id"
    ]
    created = post(
        http,
        "runs/create",
        {
            "experiment_id": experiment_id,
            "run_name": "r1",
            "start_time": 1700000000000,
            "user_id": "alice",
            "tags": [{"key": "mlflow.source.name", "value": "flow.py"}],
        },
    )
    assert created.status_code == 200
    assert created.headers["content-type"] == "application/json"
    run = created.json()["run"]
    info = run["info"]
    run_id = info["run_id"]
    assert list(info) == [
        "run_uuid",
        "experiment_id",
        "run_name",
        "user_id",
        "status",
        "start_time",
        "artifact_uri",
        "lifecycle_stage",
        "run_id",
    ]
    assert info["run_uuid"] == run_id and len(run_id) == 32
    assert info["status"] == "RUNNING" and info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
    assert (info["user_id"], info["start_time"]) == ("alice", 1700000000000)
    assert sorted(run["data"]["tags"], key=lambda t: t["key"]) == [
        {"key": "mlflow.runName", "value": "r1"},
        {"key": "mlflow.source.name", "value": "flow.py"},
    ]
    assert run["inputs"] == {}

    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 1700000000001, "step": 0},
            {"key": "loss", "value": "0.25", "timestamp": "1700000000002", "step": "3"},
            {"key": "bad", "value": "NaN", "timestamp": 1700000000003},
        ],
        "params": [{"key": "lr", "value": "0.01"}],
        "tags": [{"key": "team", "value": "x"}],
    }
    assert post(http, "runs/log-batch", batch).json() == {}
    assert (
        post(
            http, "runs/log-metric", {"run_id": run_id, "key": "acc", "value": 1, "timestamp": 5}
        ).json()
        == {}
    )
    assert (
        post(http, "runs/log-parameter", {"run_uuid": run_id, "key": "k", "value": "v"}).json()
        == {}
    )
    assert post(http, "runs/set-tag", {"run_id": run_id, "key": "gone", "value": "1"}).json() == {}
    assert post(http, "runs/delete-tag", {"run_id": run_id, "key": "gone"}).json() == {}

    data = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["loss"] == {"key": "loss", "value": 0.25, "timestamp": 1700000000002, "step": 3}
    assert metrics["bad"] == {"key": "bad", "value": "NaN", "timestamp": 1700000000003, "step": 0}
    assert metrics["acc"]["value"] == 1.0
    assert {p["key"]: p["value"] for p in data["params"]} == {"lr": "0.01", "k": "v"}
    assert "gone" not in {t["key"] for t in data["tags"]}

    updated = post(
        http, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 1700000000009}
    )
    assert updated.json()["run_info"]["status"] == "FINISHED"
    assert updated.json()["run_info"]["end_time"] == 1700000000009
    by_number = post(http, "runs/update", {"run_id": run_id, "status": 4})  # proto enum number
    assert by_number.json()["run_info"]["status"] == "FAILED"

    search = post(
        http,
        "runs/search",
        {
            "experiment_ids": [experiment_id],
            "filter": "metrics.loss < 1 and params.lr = '0.01'",
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 10,
            "order_by": ["metrics.loss DESC"],
            "page_token": None,
        },
    ).json()
    assert [r["info"]["run_id"] for r in search["runs"]] == [run_id]
    assert "next_page_token" not in search
    assert search["runs"][0]["outputs"] == {}

    history = http.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}
    ).json()
    assert history == {
        "metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 1700000000001, "step": 0},
            {"key": "loss", "value": 0.25, "timestamp": 1700000000002, "step": 3},
        ]
    }
    paged = http.get(
        f"{API}/metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": 1},
    ).json()
    token = paged["next_page_token"]
    assert json.loads(base64.b64decode(token)) == {"offset": 1}

    experiment = http.get(f"{API}/experiments/get", params={"experiment_id": experiment_id})
    shape = experiment.json()["experiment"]
    assert list(shape)[:4] == ["experiment_id", "name", "artifact_location", "lifecycle_stage"]
    assert isinstance(shape["creation_time"], int) and isinstance(shape["last_update_time"], int)


def test_get_endpoints_take_repeated_query_parameters(http: httpx.Client) -> None:
    prefix = unique("rep")
    ids = [
        post(http, "experiments/create", {"name": f"{prefix}-{i}"}).json()["experiment_id"]
        for i in range(3)
    ]
    for experiment_id in ids:
        post(http, "runs/create", {"experiment_id": experiment_id, "start_time": 1})
    runs = http.get(
        f"{API}/runs/search", params=[("experiment_ids", ids[0]), ("experiment_ids", ids[2])]
    ).json()["runs"]
    assert sorted(r["info"]["experiment_id"] for r in runs) == sorted([ids[0], ids[2]])
    params = [
        ("filter", f"name LIKE '{prefix}%'"),
        ("order_by", "name DESC"),
        ("order_by", "experiment_id ASC"),
        ("max_results", "2"),
        ("view_type", "ALL"),
    ]
    page = http.get(f"{API}/experiments/search", params=params).json()
    assert [e["name"] for e in page["experiments"]] == [f"{prefix}-2", f"{prefix}-1"]
    rest = http.get(
        f"{API}/experiments/search", params=[*params, ("page_token", page["next_page_token"])]
    ).json()
    assert [e["name"] for e in rest["experiments"]] == [f"{prefix}-0"]
    assert "next_page_token" not in rest
    posted = post(
        http,
        "experiments/search",
        {"filter": f"name LIKE '{prefix}%'", "order_by": ["name ASC"], "view_type": 1},
    )
    assert posted.json()["experiments"][0]["name"] == f"{prefix}-0"


def test_ajax_api_prefix_serves_the_same_api(http: httpx.Client) -> None:
    name = unique("ajax")
    created = http.post("/ajax-api/2.0/mlflow/experiments/create", json={"name": name})
    experiment_id = created.json()["experiment_id"]
    got = http.get(f"{API}/experiments/get-by-name", params={"experiment_name": name}).json()
    assert got["experiment"]["experiment_id"] == experiment_id


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert "Traceback" not in body["message"]
    return response.status_code, body["error_code"]


def test_errors_carry_mlflow_codes(http: httpx.Client) -> None:
    missing_run = "0" * 32
    assert error_of(http.get(f"{API}/runs/get", params={"run_id": missing_run})) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert error_of(http.get(f"{API}/experiments/get", params={"experiment_id": "424242"})) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    response = http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
    name = unique("dup")
    post(http, "experiments/create", {"name": name})
    assert error_of(post(http, "experiments/create", {"name": name})) == (
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    assert error_of(post(http, "experiments/create", {})) == (400, "INVALID_PARAMETER_VALUE")
    assert (
        "Missing value for required parameter 'name'"
        in post(http, "experiments/create", {}).json()["message"]
    )
    assert error_of(http.get(f"{API}/runs/get")) == (400, "INVALID_PARAMETER_VALUE")
    assert error_of(http.get(f"{API}/no/such/endpoint")) == (404, "ENDPOINT_NOT_FOUND")
    assert error_of(http.delete(f"{API}/runs/get")) == (405, "BAD_REQUEST")

    experiment_id = post(http, "experiments/create", {"name": unique("err")}).json()[
        "experiment_id"
    ]
    run_id = post(http, "runs/create", {"experiment_id": experiment_id}).json()["run"]["info"][
        "run_id"
    ]
    bad_key = {"run_id": run_id, "key": "../x", "value": 1, "timestamp": 1}
    assert error_of(post(http, "runs/log-metric", bad_key)) == (400, "INVALID_PARAMETER_VALUE")
    no_value = {"run_id": run_id, "key": "m", "timestamp": 1}
    assert error_of(post(http, "runs/log-metric", no_value)) == (400, "INVALID_PARAMETER_VALUE")
    bool_value = {"run_id": run_id, "key": "m", "value": True, "timestamp": 1}
    assert error_of(post(http, "runs/log-metric", bool_value)) == (400, "INVALID_PARAMETER_VALUE")
    post(http, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"})
    changed = post(http, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"})
    assert error_of(changed) == (400, "INVALID_PARAMETER_VALUE")
    assert error_of(post(http, "runs/update", {"run_id": run_id, "status": "DONE"})) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    bad_filter = {"experiment_ids": [experiment_id], "filter": "metrics.a ~ 1"}
    assert error_of(post(http, "runs/search", bad_filter)) == (400, "INVALID_PARAMETER_VALUE")
    bad_token = {"experiment_ids": [experiment_id], "page_token": "garbage"}
    assert error_of(post(http, "runs/search", bad_token)) == (400, "INVALID_PARAMETER_VALUE")
    too_many = {"experiment_ids": [experiment_id], "max_results": 50_001}
    assert error_of(post(http, "runs/search", too_many)) == (400, "INVALID_PARAMETER_VALUE")
    not_json = http.post(
        f"{API}/runs/search", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_of(not_json) == (400, "INVALID_PARAMETER_VALUE")
    not_object = http.post(f"{API}/runs/search", json=[1, 2])
    assert error_of(not_object) == (400, "INVALID_PARAMETER_VALUE")
    wrong_type = post(http, "runs/search", {"experiment_ids": experiment_id})
    assert error_of(wrong_type) == (400, "INVALID_PARAMETER_VALUE")


def test_log_batch_limits(http: httpx.Client) -> None:
    experiment_id = post(http, "experiments/create", {"name": unique("limits")}).json()[
        "experiment_id"
    ]
    run_id = post(http, "runs/create", {"experiment_id": experiment_id}).json()["run"]["info"][
        "run_id"
    ]
    metrics = [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(1001)]
    response = post(http, "runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    response = post(http, "runs/log-batch", {"run_id": run_id, "params": params})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    huge = [{"key": f"t{i}", "value": "x" * 7900} for i in range(100)]  # 100 tags, ~800 KB
    params = [{"key": f"p{i}", "value": "y" * 5000} for i in range(100)]  # + ~500 KB
    response = post(http, "runs/log-batch", {"run_id": run_id, "tags": huge, "params": params})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert "at most 1000000 bytes" in response.json()["message"]
    data = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    assert "metrics" not in data and "params" not in data  # nothing of a refused batch


# --------------------------------------------------------------------------- other setups


def test_no_serve_artifacts_gives_direct_locations(
    tmp_path: Path, mlflow_env: Callable[[str], Any]
) -> None:
    root = tmp_path / "direct-artifacts"
    running = start_server(
        tmp_path / "srv",
        str(tmp_path / "mlruns"),
        "--no-serve-artifacts",
        "--default-artifact-root",
        str(root),
    )
    try:
        mlflow = mlflow_env(running.url)
        experiment = mlflow.set_experiment(unique("direct"))
        assert experiment.artifact_location == f"{root.as_uri()}/{experiment.experiment_id}"
        with mlflow.start_run() as run:
            mlflow.log_text("direct", "a/b.txt")
        expected = root / experiment.experiment_id / run.info.run_id / "artifacts" / "a" / "b.txt"
        assert expected.read_text() == "direct"
        listed = httpx.get(
            f"{running.url}{API}/artifacts/list", params={"run_id": run.info.run_id, "path": "a"}
        ).json()
        assert listed["files"] == [{"path": "a/b.txt", "is_dir": False, "file_size": 6}]
        proxy = httpx.get(f"{running.url}{ARTIFACTS}", params={"path": "x"})
        assert error_of(proxy) == (404, "ENDPOINT_NOT_FOUND")
    finally:
        stop_server(running)
    assert running.process.returncode == 0


def test_s3_destination_needs_no_client_credentials(
    tmp_path: Path,
    seaweedfs_s3: Any,
    mlflow_env: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Artifacts go to S3 through the proxy; only the server holds the S3 credentials."""
    bucket = seaweedfs_s3.create_bucket("proxy")
    server_env = {
        "AWS_ENDPOINT_URL": seaweedfs_s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweedfs_s3.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweedfs_s3.secret_key,
        "AWS_DEFAULT_REGION": seaweedfs_s3.region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # the client side has no credentials at all
    running = start_server(
        tmp_path / "srv",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        "--artifacts-destination",
        f"s3://{bucket}/mlartifacts",
        env=server_env,
    )
    try:
        mlflow = mlflow_env(running.url)
        experiment = mlflow.set_experiment(unique("s3"))
        payload = tmp_path / "payload.bin"
        payload.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(payload), artifact_path="data")
            mlflow.log_text("on s3", "notes/readme.txt")
        client = mlflow.MlflowClient()
        run_id = run.info.run_id
        assert [f.path for f in client.list_artifacts(run_id, "data")] == ["data/payload.bin"]
        local = client.download_artifacts(run_id, "data/payload.bin", str(tmp_path / "dl"))
        assert Path(local).read_bytes() == payload.read_bytes()
        key = f"mlartifacts/{experiment.experiment_id}/{run_id}/artifacts/notes/readme.txt"
        body = seaweedfs_s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == b"on s3"
        listed = httpx.get(f"{running.url}{API}/artifacts/list", params={"run_id": run_id}).json()[
            "files"
        ]
        assert {f["path"] for f in listed} == {"data", "notes"}
    finally:
        stop_server(running)
    assert running.process.returncode == 0


def test_several_workers_share_one_store(tmp_path: Path, mlflow_env: Callable[[str], Any]) -> None:
    """--workers 2: uvicorn starts the app from the environment in each worker process."""
    running = start_server(
        tmp_path / "srv",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        "--workers",
        "2",
        "--artifacts-destination",
        str(tmp_path / "art"),
    )
    try:
        mlflow = mlflow_env(running.url)
        mlflow.set_experiment(unique("workers"))
        ids = []
        for i in range(6):
            with mlflow.start_run() as run:
                mlflow.log_metric("i", i)
                mlflow.log_text(str(i), "i.txt")
            ids.append(run.info.run_id)
        client = mlflow.MlflowClient()
        assert [client.get_run(r).data.metrics["i"] for r in ids] == [float(i) for i in range(6)]
        # The server answers once one worker is up; the other may still be starting.
        deadline = time.monotonic() + 60
        while running.log_text().count("Started server process") < 2:
            assert time.monotonic() < deadline, running.log_text()
            time.sleep(0.1)
    finally:
        stop_server(running)


def test_postgres_backend(
    tmp_path: Path, postgres_uri: Callable[[], str], mlflow_env: Callable[[str], Any]
) -> None:
    uri = postgres_uri()
    running = start_server(tmp_path / "srv", uri, "--artifacts-destination", str(tmp_path / "a"))
    try:
        mlflow = mlflow_env(running.url)
        experiment = mlflow.set_experiment(unique("pg"))
        with mlflow.start_run(run_name="pg-run") as run:
            mlflow.log_params({"a": 1})
            mlflow.log_metrics({"m": 0.5}, step=3)
            mlflow.log_text("pg", "t.txt")
        client = mlflow.MlflowClient()
        found = client.search_runs([experiment.experiment_id], "params.a = '1'")
        assert [r.info.run_id for r in found] == [run.info.run_id]
        assert get_store(uri).get_run(run.info.run_id).data.metrics == {"m": 0.5}
        assert mlflow.artifacts.load_text(f"{run.info.artifact_uri}/t.txt") == "pg"
    finally:
        stop_server(running)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_access_log_lines_and_no_access_log(tmp_path: Path, workers: str) -> None:
    """One uvicorn-style line per request by default (as mlflow server writes), in every
    worker; none with --no-access-log."""
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    logs = {}
    for flag in ("--access-log", "--no-access-log"):
        running = start_server(tmp_path / flag, uri, "--workers", workers, flag)
        try:
            missing = f"/api/2.0/mlflow/runs/get?run_id={'f' * 32}"
            assert httpx.get(running.url + missing).status_code == 404
            assert httpx.post(running.url + "/api/2.0/mlflow/runs/get").status_code == 405
        finally:
            stop_server(running)
        logs[flag] = running.log_text()
    lines = [line for line in logs["--access-log"].splitlines() if ' - "' in line]
    assert any(
        line.startswith("INFO:     127.0.0.1:")
        and line.endswith(f'"GET {missing} HTTP/1.1" 404 Not Found')
        for line in lines
    ), lines
    assert any(
        line.endswith('"POST /api/2.0/mlflow/runs/get HTTP/1.1" 405 Method Not Allowed')
        for line in lines
    ), lines
    assert ' - "' not in logs["--no-access-log"]
    assert "Application startup complete" in logs["--no-access-log"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend-store-uri", "mongodb://x/y"], "Unsupported tracking URI"),
        (
            ["--backend-store-uri", "postgresql://admin:hunter2@127.0.0.1:1/db"],
            "cannot open postgresql://admin:***@127.0.0.1:1/db",
        ),
        (["--basic-auth", "no-colon"], "user:password"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_server_refuses_bad_settings_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tracking.servers.api", "--port", str(free_port()), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_tmp_files_do_not_linger(server: Server) -> None:
    """Uploads write to a temporary name first; none are left once they finish."""
    assert server.destination is not None
    leftovers = [p for p in server.destination.rglob(".upload-*")]
    assert leftovers == []


def test_server_serves_the_web_ui(tmp_path: Path) -> None:
    """`trackflow server` serves the same UI as `trackflow ui`, next to the REST API."""
    from fastapi.testclient import TestClient

    from tracking.servers.api.app import create_app

    store = f"sqlite:///{tmp_path / 'ui.db'}"
    client = tracking.TrackingClient(store)
    experiment_id = client.create_experiment("ui-on-server")
    run = client.create_run(experiment_id, run_name="shown")
    http = TestClient(create_app(store, default_artifact_root=str(tmp_path / "artifacts")))
    home = http.get("/")
    assert home.status_code == 200 and "ui-on-server" in home.text
    page = http.get(f"/runs/{run.info.run_id}")
    assert page.status_code == 200 and "shown" in page.text
    assert http.get("/health").text == "OK"
