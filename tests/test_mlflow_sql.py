"""One SQL database for MLflow and Trackflow, both ways, on SQLite and PostgreSQL.

MLflow 3.17.2 (the dev dependency) runs in this process; MLflow 2.9.2 and 2.22.1 databases come
from SQL dumps their own clients made (tests/mlflow2_databases/make.py). Checked: a database
Trackflow creates is MLflow's schema to the index; MLflow reads everything Trackflow wrote into
it, and Trackflow reads, extends and leaves unchanged what MLflow made; unknown revisions are
refused with what to do; Trackflow's own databases from before are upgraded keeping every row.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pg_server import PostgresServer, _bin
from server_process import MlflowServer
from sqlalchemy import create_engine, inspect, text

import tracking
import tracking.admin.migrate
import tracking.stores
from tracking import TrackingClient
from tracking.entities import Dataset, DatasetInput, Metric, Param, RunTag, ViewType
from tracking.errors import InvalidParameterError, InvalidStateError
from tracking.stores.sql.migrations import HEAD, UnsupportedSchemaError
from tracking.stores.sql.store import engine_url

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # MLflow's deprecated stages
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

MLFLOW2 = Path(__file__).parent / "mlflow2_databases"
NAN = float("nan")
TRACKFLOW_INDEXES = {
    "trackflow_runs_experiment_start",
    "trackflow_latest_metrics_key_value",
    "trackflow_model_versions_run_id",
}


# --- databases ------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def new_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """A factory of URIs of new, empty databases of one kind."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres").create_database  # type: ignore[no-any-return]
    names = iter(range(100))
    return lambda: f"sqlite:///{tmp_path / f'db{next(names)}.db'}"


def _restore(uri: str, dump: Path, postgres: PostgresServer | None) -> None:
    """Load an SQL dump (tests/mlflow2_databases) into the empty database `uri`."""
    if postgres is None:
        path = uri.split(":///", 1)[1]
        with sqlite3.connect(path) as db:
            db.executescript(dump.read_text())
        return
    subprocess.run(
        [_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(dump), uri],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def mlflow2_uri(request: pytest.FixtureRequest, new_uri: Callable[[], str]) -> Callable[[str], str]:
    """A factory: a new database holding what MLflow `version` (2.x) made."""

    def make(version: str) -> str:
        uri = new_uri()
        postgres = request.getfixturevalue("postgres") if uri.startswith("postgres") else None
        kind = "postgresql" if postgres else "sqlite"
        _restore(uri, MLFLOW2 / f"mlflow-{version}.{kind}.sql", postgres)
        return uri

    return make


def _engine(uri: str) -> Any:
    return create_engine(engine_url(uri))


def revision(uri: str) -> str:
    engine = _engine(uri)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def trackflow_indexes(uri: str) -> set[str]:
    """The names of Trackflow's own indexes in the database."""
    engine = _engine(uri)
    try:
        with engine.connect() as conn:
            seen = inspect(conn)
            return {
                str(index["name"])
                for name in seen.get_table_names()
                for index in seen.get_indexes(name)
                if str(index["name"]).startswith("trackflow_")
            }
    finally:
        engine.dispose()


def schema_of(uri: str) -> dict[str, Any]:
    """Everything a schema is made of, as SQLAlchemy reflects it (columns in order, keys,
    constraints, indexes, triggers), but Trackflow's own indexes."""
    engine = _engine(uri)
    try:
        found: dict[str, Any] = {}
        with engine.connect() as conn:
            seen = inspect(conn)
            for name in seen.get_table_names():
                indexes = [
                    (i["name"], i["column_names"], bool(i["unique"]))
                    for i in seen.get_indexes(name)
                    if not str(i["name"]).startswith("trackflow_")
                ]
                found[name] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in seen.get_columns(name)
                    ],
                    "primary key": seen.get_pk_constraint(name),
                    "foreign keys": sorted(map(repr, seen.get_foreign_keys(name))),
                    "unique": sorted(map(repr, seen.get_unique_constraints(name))),
                    "checks": sorted(map(repr, seen.get_check_constraints(name))),
                    "indexes": sorted(indexes),
                }
            triggers = (
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                if conn.dialect.name == "sqlite"
                else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            )
            found["triggers"] = sorted(conn.execute(text(triggers)).scalars())
        return found
    finally:
        engine.dispose()


# --- MLflow ---------------------------------------------------------------------------------------
@pytest.fixture
def mlflow_mod(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real mlflow package (3.17.2), its globals reset afterwards."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.setenv(name, "")  # recorded as unset, so removed again after the test
        monkeypatch.delenv(name)  # (mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID)
    import mlflow
    import mlflow.tracking.fluent as mlflow_fluent

    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    yield mlflow
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        os.environ.pop(name, None)  # mlflow.set_experiment exports its choice


def _history(metrics: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (m.key, "nan" if math.isnan(m.value) else m.value, m.timestamp, m.step) for m in metrics
    ]


def _info(run: Any) -> tuple[Any, ...]:
    info = run.info
    return (
        info.run_id,
        info.experiment_id,
        info.run_name,
        info.user_id,
        info.status,
        info.start_time,
        info.end_time,
        info.artifact_uri,
        info.lifecycle_stage,
    )


def _same_run(ours: Any, theirs: Any) -> None:
    assert _info(ours) == _info(theirs)
    assert (ours.data.params, ours.data.tags) == (theirs.data.params, theirs.data.tags)
    assert {k: str(v) for k, v in ours.data.metrics.items()} == {
        k: str(v) for k, v in theirs.data.metrics.items()
    }


# --- a new database is MLflow's schema ------------------------------------------------------------
def test_a_new_database_is_mlflows_schema(new_uri: Callable[[], str], mlflow_mod: Any) -> None:
    from mlflow.store.db.utils import _all_tables_exist, _verify_schema

    ours, theirs = new_uri(), new_uri()
    TrackingClient(ours).search_experiments()
    mlflow_mod.MlflowClient(theirs).search_experiments()
    assert revision(ours) == revision(theirs) == HEAD == "dc11669786a5"
    assert schema_of(ours) == schema_of(theirs)  # every table, column, key, index, trigger
    assert trackflow_indexes(ours) == TRACKFLOW_INDEXES
    engine = _engine(ours)
    try:  # MLflow's own checks accept it as is
        _verify_schema(engine)
        assert _all_tables_exist(engine)
    finally:
        engine.dispose()


# --- Trackflow writes, MLflow reads ---------------------------------------------------------------
def _fill_with_trackflow(uri: str) -> dict[str, str]:
    """Experiments, runs (nested, deleted), metric histories and the registry, by Trackflow."""
    client = TrackingClient(uri)
    experiment_id = client.create_experiment("shared", tags={"team": "ds"})
    parent = client.create_run(experiment_id, run_name="parent", tags={"stage": "train"})
    parent_id = parent.info.run_id
    client.log_batch(
        parent_id,
        [Metric("loss", 0.5, 1000, 0), Metric("loss", NAN, 1001, 1), Metric("loss", 0.25, 1002, 2)],
        [Param("lr", "0.1"), Param("layers", "3")],
        [RunTag("mlflow.note.content", "a note")],
    )
    client.log_metric(parent_id, "accuracy", 0.9, timestamp=1003, step=0)
    child = client.create_run(
        experiment_id, run_name="child", tags={"mlflow.parentRunId": parent_id}
    )
    client.log_param(child.info.run_id, "lr", "0.01")
    client.set_terminated(child.info.run_id, "FAILED", end_time=2000)
    client.set_terminated(parent_id, "FINISHED", end_time=3000)
    gone = client.create_run(experiment_id, run_name="gone")
    client.delete_run(gone.info.run_id)
    client.create_registered_model("shared-model", tags={"owner": "ds"}, description="ours")
    client.create_model_version(
        "shared-model", f"runs:/{parent_id}/model", parent_id, tags={"validated": "yes"}
    )
    client.transition_model_version_stage("shared-model", 1, "Production")
    client.set_registered_model_alias("shared-model", "champion", 1)
    return {"experiment": experiment_id, "parent": parent_id, "child": child.info.run_id,
            "gone": gone.info.run_id}  # fmt: skip


def test_mlflow_reads_what_trackflow_wrote(new_uri: Callable[[], str], mlflow_mod: Any) -> None:
    uri = new_uri()
    ids = _fill_with_trackflow(uri)
    ours = TrackingClient(uri)
    theirs = mlflow_mod.MlflowClient(uri)

    experiment = theirs.get_experiment_by_name("shared")
    assert (experiment.experiment_id, experiment.tags) == (ids["experiment"], {"team": "ds"})
    for key in ("parent", "child"):
        _same_run(ours.get_run(ids[key]), theirs.get_run(ids[key]))
    assert theirs.get_run(ids["parent"]).data.tags["mlflow.note.content"] == "a note"
    assert (
        _history(theirs.get_metric_history(ids["parent"], "loss"))
        == _history(ours.get_metric_history(ids["parent"], "loss"))
        == [("loss", 0.5, 1000, 0), ("loss", "nan", 1001, 1), ("loss", 0.25, 1002, 2)]
    )

    found = theirs.search_runs([ids["experiment"]], "params.lr = '0.1' and metrics.accuracy > 0.5")
    assert [r.info.run_id for r in found] == [ids["parent"]]
    deleted = theirs.search_runs([ids["experiment"]], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [ids["gone"]]
    mlflow_mod.set_tracking_uri(uri)
    frame = mlflow_mod.search_runs(experiment_names=["shared"], order_by=["attributes.start_time"])
    assert list(frame["run_id"]) == [ids["parent"], ids["child"]]
    assert list(frame["params.lr"]) == ["0.1", "0.01"]

    model = theirs.get_registered_model("shared-model")
    assert (model.description, model.tags) == ("ours", {"owner": "ds"})
    version = theirs.get_model_version_by_alias("shared-model", "champion")
    assert (str(version.version), version.run_id, version.current_stage) == (
        "1",
        ids["parent"],
        "Production",
    )
    assert version.tags == {"validated": "yes"}
    assert [
        str(v.version) for v in theirs.search_model_versions(f"run_id = '{ids['parent']}'")
    ] == ["1"]


def test_mlflow_server_serves_a_trackflow_database(tmp_path: Path) -> None:
    """`mlflow server` (what `mlflow ui` runs) on a database Trackflow created and filled."""
    ids = _fill_with_trackflow(f"sqlite:///{tmp_path / 'mlflow.db'}")
    server = MlflowServer(tmp_path)
    try:
        url = server.wait()
        with httpx.Client(base_url=url, timeout=60) as http:
            experiments = http.post(
                "/api/2.0/mlflow/experiments/search", json={"max_results": 10}
            ).json()["experiments"]
            assert {e["name"] for e in experiments} == {"shared", "Default"}
            runs = http.post(
                "/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [ids["experiment"]], "filter": "params.lr = '0.1'"},
            ).json()["runs"]
            assert [r["info"]["run_id"] for r in runs] == [ids["parent"]]
            alias = http.get(
                "/api/2.0/mlflow/registered-models/alias",
                params={"name": "shared-model", "alias": "champion"},
            ).json()["model_version"]
            assert alias["run_id"] == ids["parent"]
            assert http.get("/").status_code == 200  # the web UI itself
    finally:
        server.stop()


# --- MLflow writes, Trackflow reads and writes, MLflow reads again --------------------------------
def _fill_with_mlflow(mlflow: Any, uri: str) -> dict[str, str]:
    client = mlflow.MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("from-mlflow")
    with mlflow.start_run(run_name="mlflow-run") as run:
        mlflow.log_params({"lr": "0.01", "depth": "4"})
        for step, loss in enumerate((0.9, 0.5, 0.3)):
            mlflow.log_metric("loss", loss, step=step, timestamp=5000 + step)
        mlflow.set_tag("stage", "train")
        with mlflow.start_run(run_name="mlflow-child", nested=True) as child:
            mlflow.log_metric("score", 1.5)
    client.create_registered_model("mlflow-model", description="theirs")
    client.create_model_version("mlflow-model", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("mlflow-model", "prod", "1")
    return {
        "experiment": run.info.experiment_id,
        "run": run.info.run_id,
        "child": child.info.run_id,
    }


def test_trackflow_uses_a_database_mlflow_made(new_uri: Callable[[], str], mlflow_mod: Any) -> None:
    uri = new_uri()
    ids = _fill_with_mlflow(mlflow_mod, uri)
    theirs = mlflow_mod.MlflowClient(uri)
    before = schema_of(uri)
    ours = TrackingClient(uri)

    # reads: the same runs, histories, searches and registry as MLflow's own client
    for key in ("run", "child"):
        _same_run(ours.get_run(ids[key]), theirs.get_run(ids[key]))
    assert _history(ours.get_metric_history(ids["run"], "loss")) == _history(
        theirs.get_metric_history(ids["run"], "loss")
    )
    found = ours.search_runs([ids["experiment"]], "metrics.loss < 0.5", order_by=["metrics.loss"])
    assert [r.info.run_id for r in found] == [ids["run"]]
    assert ours.get_model_version_by_alias("mlflow-model", "prod").run_id == ids["run"]
    assert ours.get_registered_model("mlflow-model").description == "theirs"

    # writes: a run in MLflow's experiment, and registry entries
    tracking.set_tracking_uri(uri)  # reset by conftest's tracking_dir
    tracking.set_experiment("from-mlflow")
    with tracking.start_run(run_name="trackflow-run") as run:
        tracking.log_param("lr", "0.02")
        tracking.log_metrics({"loss": 0.2, "f1": 0.7}, step=3)
        tracking.set_tag("by", "trackflow")
    new_id = run.info.run_id
    ours.log_metric(ids["run"], "loss", 0.1, timestamp=6000, step=4)  # into MLflow's run
    ours.create_model_version("mlflow-model", f"runs:/{new_id}/model", new_id)
    ours.set_registered_model_alias("mlflow-model", "prod", 2)
    ours.set_model_version_tag("mlflow-model", 2, "by", "trackflow")
    ours.create_registered_model("trackflow-model")

    # MLflow sees all of it; the database keeps MLflow's revision and tables
    run_seen = theirs.get_run(new_id)
    assert run_seen.info.experiment_id == ids["experiment"]
    assert (run_seen.data.params, run_seen.data.metrics) == (
        {"lr": "0.02"},
        {"loss": 0.2, "f1": 0.7},
    )
    assert run_seen.data.tags["by"] == "trackflow"
    assert [m.value for m in theirs.get_metric_history(ids["run"], "loss")] == [0.9, 0.5, 0.3, 0.1]
    found = theirs.search_runs([ids["experiment"]], "params.lr = '0.02'")
    assert [r.info.run_id for r in found] == [new_id]
    version = theirs.get_model_version_by_alias("mlflow-model", "prod")
    assert (str(version.version), version.run_id, version.tags) == (
        "2",
        new_id,
        {"by": "trackflow"},
    )
    assert theirs.get_registered_model("trackflow-model").name == "trackflow-model"
    assert revision(uri) == HEAD
    assert schema_of(uri) == before


@pytest.mark.parametrize("version", ["2.9.2", "2.22.1"])
def test_mlflow_2_databases_are_used_as_they_are(
    version: str, mlflow2_uri: Callable[[str], str], mlflow_mod: Any
) -> None:
    """A database MLflow 2.x made: read, written, left at its revision; MLflow 3 then upgrades
    it with its own migrations and sees what both wrote."""
    uri = mlflow2_uri(version)
    old_revision = revision(uri)
    before = schema_of(uri)
    ours = TrackingClient(uri)

    experiment = ours.get_experiment_by_name("legacy")
    assert experiment is not None and experiment.tags == {"team": "ds"}
    runs = {
        r.info.run_name: r for r in ours.search_runs([experiment.experiment_id], max_results=10)
    }
    assert set(runs) == {"mlflow2-run", "mlflow2-child"}
    run = runs["mlflow2-run"]
    assert (run.info.status, run.data.params, run.data.tags["stage"]) == (
        "FINISHED",
        {"lr": "0.01"},
        "train",
    )
    assert [(m.value, m.step) for m in ours.get_metric_history(run.info.run_id, "loss")] == [
        (0.5, 0),
        (0.25, 1),
    ]
    assert runs["mlflow2-child"].data.tags["mlflow.parentRunId"] == run.info.run_id
    deleted = ours.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_name for r in deleted] == ["mlflow2-deleted"]
    model = ours.get_registered_model("legacy-model")
    assert (model.description, model.aliases) == ("from MLflow 2", {"prod": 1})
    assert ours.get_model_version("legacy-model", 1).current_stage == "Staging"

    new = ours.create_run(experiment.experiment_id, run_name="trackflow-run")
    ours.log_batch(new.info.run_id, [Metric("loss", 0.1, 7000, 2)], [Param("lr", "0.02")], [])
    ours.set_terminated(new.info.run_id)
    ours.create_model_version("legacy-model", f"runs:/{new.info.run_id}/model", new.info.run_id)
    ours.set_registered_model_alias("legacy-model", "prod", 2)
    message = r"Experiment tag 'long' value .* holds at most 5000 in experiment_tags\.value"
    with pytest.raises(InvalidParameterError, match=message):  # MLflow 2's column; 3's: any
        ours.set_experiment_tag(experiment.experiment_id, "long", "x" * 6000)
    assert revision(uri) == old_revision
    assert schema_of(uri) == before
    assert trackflow_indexes(uri) == TRACKFLOW_INDEXES  # the only change: searches stay fast

    from mlflow.store.db.utils import _upgrade_db

    engine = _engine(uri)
    try:
        _upgrade_db(engine)  # what `mlflow db upgrade` runs
    finally:
        engine.dispose()
    assert revision(uri) == HEAD
    assert trackflow_indexes(uri) == TRACKFLOW_INDEXES  # MLflow's migrations kept them
    theirs = mlflow_mod.MlflowClient(uri)
    seen = theirs.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [r.info.run_name for r in seen] == ["mlflow2-run", "mlflow2-child", "trackflow-run"]
    assert seen[2].data.params == {"lr": "0.02"}
    assert theirs.get_model_version_by_alias("legacy-model", "prod").run_id == new.info.run_id
    assert _history(theirs.get_metric_history(run.info.run_id, "loss")) == _history(
        ours.get_metric_history(run.info.run_id, "loss")
    )


def test_mlflow_2_databases_keep_dataset_inputs_and_refuse_logged_models(
    mlflow2_uri: Callable[[str], str],
) -> None:
    """MLflow 2's schema has dataset inputs but no LoggedModel tables: a run's inputs are
    stored and read back; a LoggedModel is refused with what to do; searches find none; the
    schema stays MLflow 2's."""
    uri = mlflow2_uri("2.9.2")
    before = schema_of(uri)
    ours = TrackingClient(uri)
    experiment = ours.get_experiment_by_name("legacy")
    assert experiment is not None
    run_id = ours.create_run(experiment.experiment_id).info.run_id
    dataset = Dataset("iris", "abcd1234", "s3", '{"uri": "s3://bucket/iris.csv"}')
    ours.log_inputs(run_id, [DatasetInput(dataset, {"mlflow.data.context": "training"})])
    inputs = ours.get_run(run_id).inputs
    assert [(d.dataset.name, d.tags) for d in inputs.dataset_inputs] == [
        ("iris", {"mlflow.data.context": "training"})
    ]
    assert inputs.model_inputs == [] and ours.get_run(run_id).outputs.model_outputs == []
    with pytest.raises(InvalidStateError, match=r"no logged_models table.*mlflow db upgrade"):
        ours.create_logged_model(experiment.experiment_id, name="model")
    assert list(ours.search_logged_models([experiment.experiment_id])) == []
    assert schema_of(uri) == before


def test_trackflow_ui_on_a_database_mlflow_made(tmp_path: Path, mlflow_mod: Any) -> None:
    """The issue's first command: `trackflow ui --backend-store-uri sqlite:///mlflow.db`."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ids = _fill_with_mlflow(mlflow_mod, uri)
    command = [sys.executable, "-m", "tracking.cli", "ui", "--backend-store-uri", uri]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert "Listening on http://127.0.0.1:" in lines[1], lines
        url = lines[1].split("Listening on ", 1)[1].split("/ ", 1)[0]
        page = httpx.get(f"{url}/experiments/{ids['experiment']}", timeout=60).text
        assert "mlflow-run" in page and "mlflow-child" in page
        run_page = httpx.get(f"{url}/runs/{ids['run']}", timeout=60).text
        assert "loss" in run_page and "0.01" in run_page
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


# --- databases Trackflow does not know ------------------------------------------------------------
def _set_revision(uri: str, value: str | None) -> None:
    engine = _engine(uri)
    try:
        with engine.begin() as conn:
            if value is None:
                conn.execute(text("DELETE FROM alembic_version"))
            else:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": value})
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("found", "message"),
    [
        (
            "ffffffffffff",
            r"at schema revision 'ffffffffffff', which this Trackflow does not know: a newer "
            r"MLflow made or upgraded it, or it is damaged\. Trackflow reads and writes MLflow "
            r"2\.9 to 3\.17\.2 \(schema revisions acf3f17fdcc7 to dc11669786a5\) .* "
            r"`trackflow migrate --from .* --to NEW_URI` reads it without writing to it",
        ),
        (
            "2d6e25af4d3e",
            r"at MLflow schema revision 2d6e25af4d3e, from an MLflow older than 2\.9\. .* upgrade "
            r"it with MLflow \(`mlflow db upgrade .*`\), then open it again",
        ),
        (None, r"holds tables \(.*\) but no schema revision \(no row in alembic_version\)"),
    ],
)
def test_unknown_revisions_are_refused_untouched(
    new_uri: Callable[[], str], found: str | None, message: str
) -> None:
    uri = new_uri()
    TrackingClient(uri).create_experiment("kept")
    _set_revision(uri, found)
    engine = _engine(uri)
    try:
        with engine.begin() as conn:  # as an unknown MLflow would leave it: none of our indexes
            for name in TRACKFLOW_INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
    finally:
        engine.dispose()
    before = schema_of(uri)
    with pytest.raises(UnsupportedSchemaError, match=message):
        tracking.stores.open_store(uri)
    assert schema_of(uri) == before and trackflow_indexes(uri) == set()  # nothing added
    if found is not None:
        assert revision(uri) == found

    # every command says so in one line, no traceback
    for command in (
        ["experiments", "list", "--tracking-uri", uri],
        ["ui", "--backend-store-uri", uri, "--port", "0"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "tracking.cli", *command],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1
        assert result.stderr.startswith("trackflow: error: Database ")
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_databases_with_other_mlflow_workspaces_are_refused(new_uri: Callable[[], str]) -> None:
    uri = new_uri()
    TrackingClient(uri).create_experiment("kept")
    engine = _engine(uri)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO workspaces (name) VALUES ('team-a')"))
    finally:
        engine.dispose()
    with pytest.raises(UnsupportedSchemaError, match=r"uses MLflow's workspaces .*'team-a'"):
        tracking.stores.open_store(uri)


def test_values_beyond_mlflows_columns_are_refused_by_name(new_uri: Callable[[], str]) -> None:
    """MLflow's SQL schema is narrower than MLflow's own validation in places: what it cannot
    hold is refused before anything is written, on SQLite as on PostgreSQL."""
    client = TrackingClient(new_uri())
    with pytest.raises(InvalidParameterError, match=r"Experiment name 'n{40}.* is 257 .* 256"):
        client.create_experiment("n" * 257)
    with pytest.raises(InvalidParameterError, match=r"in experiments\.artifact_location"):
        client.create_experiment("far", artifact_location="/" + "a" * 300)
    experiment_id = client.create_experiment("e" * 256)
    with pytest.raises(InvalidParameterError, match=r"Run id 'r{33}' is 33 .* runs\.run_uuid"):
        client.create_run(experiment_id, run_id="r" * 33)
    client.create_registered_model("m")
    with pytest.raises(InvalidParameterError, match=r"source .* at most 500 in model_versions"):
        client.create_model_version("m", "s3://bucket/" + "x" * 500)
    with pytest.raises(InvalidParameterError, match=r"'k' value .* 5000 in registered_model_tags"):
        client.set_registered_model_tag("m", "k", "v" * 5001)
    assert [e.name for e in client.search_experiments()] == ["e" * 256, "Default"]
    assert client.search_model_versions("name = 'm'") == []


# --- Trackflow's own databases from before --------------------------------------------------------
def _trackflow_0002_database(uri: str, run_id: str = "r1") -> None:
    """A database as Trackflow made it at revision 0002 (its own schema), with rows."""
    from alembic import command
    from alembic.config import Config

    import tracking.stores.sql.migrations as migrations

    config = Config()
    config.set_main_option("script_location", os.path.dirname(migrations.__file__))
    engine = _engine(uri)
    rows = [
        "INSERT INTO experiments VALUES (0, 'Default', '/a/0', 'active', 1, 1), "
        "(7, 'old', '/a/7', 'active', 2, 2), (8, 'dropped', '/a/8', 'deleted', 3, 9)",
        "INSERT INTO experiment_tags VALUES (7, 'team', 'ds')",
        "INSERT INTO runs VALUES "
        f"('{run_id}', 'one', 7, 'u', 'FINISHED', 10, 20, NULL, '/a/7/{run_id}/artifacts', "
        "'active'), ('r2', 'two', 8, 'u', 'KILLED', 11, 21, 9, '/a/8/r2/artifacts', 'deleted')",
        f"INSERT INTO params VALUES ('{run_id}', 'lr', '0.1')",
        f"INSERT INTO tags VALUES ('{run_id}', 'mlflow.runName', 'one'), ('r2', 'k', 'v')",
        "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES "
        f"('{run_id}', 'm', 1.0, false, 100, 0), ('{run_id}', 'm', 1.0, false, 100, 0), "
        f"('{run_id}', 'm', 0, true, 101, 1), ('{run_id}', 'm', 2.0, false, 102, 2)",
        f"INSERT INTO latest_metrics VALUES ('{run_id}', 'm', 2.0, false, 102, 2)",
        "INSERT INTO registered_models VALUES ('iris', 1, 2, 'desc')",
        "INSERT INTO model_versions VALUES "
        f"('iris', 1, 1, 2, NULL, NULL, 'Production', 's', 's', '{run_id}', NULL, 'READY', NULL), "
        "('iris', 2, 1, 2, NULL, NULL, 'Deleted_Internal', 's', 's', NULL, NULL, 'READY', NULL)",
        "INSERT INTO model_version_tags VALUES ('iris', 1, 'k', 'v')",
        "INSERT INTO registered_model_tags VALUES ('iris', 'k2', 'v2')",
        "INSERT INTO registered_model_aliases VALUES ('iris', 'champ', 1)",
    ]
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0002")
            for row in rows:
                conn.execute(text(row))
    finally:
        engine.dispose()


def test_trackflow_databases_from_before_are_upgraded_keeping_every_row(
    new_uri: Callable[[], str], mlflow_mod: Any
) -> None:
    uri = new_uri()
    _trackflow_0002_database(uri)
    with pytest.warns(UserWarning, match=r"from revision 0002 to MLflow's schema .* every run"):
        ours = TrackingClient(uri)
    run = ours.get_run("r1")
    assert (run.info.experiment_id, run.info.status, run.info.artifact_uri) == (
        "7",
        "FINISHED",
        "/a/7/r1/artifacts",
    )
    assert (run.data.params, run.data.metrics, run.data.tags) == (
        {"lr": "0.1"},
        {"m": 2.0},
        {"mlflow.runName": "one"},
    )
    # the point logged twice is kept once (MLflow's key), NaN stays NaN
    assert _history(ours.get_metric_history("r1", "m")) == [
        ("m", 1.0, 100, 0),
        ("m", "nan", 101, 1),
        ("m", 2.0, 102, 2),
    ]
    assert ours.get_experiment("7").tags == {"team": "ds"}
    deleted = ours.search_runs(["8"], run_view_type=ViewType.DELETED_ONLY)
    assert [(r.info.run_id, r.data.tags) for r in deleted] == [("r2", {"k": "v"})]
    model = ours.get_registered_model("iris")
    assert (model.description, model.tags, model.aliases) == ("desc", {"k2": "v2"}, {"champ": 1})
    assert [v.version for v in ours.search_model_versions("name = 'iris'")] == [1]
    assert ours.create_experiment("next") == "9"  # ids go on after the old ones

    fresh = new_uri()
    TrackingClient(fresh)
    assert revision(uri) == HEAD
    assert schema_of(uri) == schema_of(fresh)  # MLflow's schema, as a new database has it
    assert trackflow_indexes(uri) == TRACKFLOW_INDEXES
    theirs = mlflow_mod.MlflowClient(uri)
    assert theirs.get_run("r1").data.metrics == {"m": 2.0}
    assert str(theirs.get_model_version_by_alias("iris", "champ").version) == "1"
    if uri.startswith("sqlite"):  # the file from before the upgrade, unchanged
        backup = uri.split(":///", 1)[1] + ".before-mlflow-schema-0002.bak"
        with sqlite3.connect(backup) as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
            assert db.execute("SELECT COUNT(*) FROM metrics").fetchall() == [(4,)]


def test_an_upgrade_mlflows_columns_cannot_hold_changes_nothing(postgres: PostgresServer) -> None:
    """PostgreSQL enforces MLflow's column sizes: the upgrade names what does not fit and
    leaves the database as it was."""
    uri = postgres.create_database()
    long_id = "a" * 40
    _trackflow_0002_database(uri, run_id=long_id)
    before = schema_of(uri)
    message = r"runs\.run_uuid holds 'a{40}' \(MLflow: 32\).* Nothing was changed"
    with pytest.raises(tracking.errors.StorageError, match=message), pytest.warns(UserWarning):
        tracking.stores.open_store(uri)
    assert revision(uri) == "0002"
    assert schema_of(uri) == before


# --- trackflow migrate between MLflow's and Trackflow's stores ------------------------------------
def _runs_by_id(client: Any, experiment_name: str) -> dict[str, tuple[Any, ...]]:
    """{run id: (name, status, params, metrics, tags, loss history)} of an experiment's runs."""
    experiment = client.get_experiment_by_name(experiment_name)
    found = {}
    for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL):
        history = _history(client.get_metric_history(run.info.run_id, "loss"))
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.source")}
        found[run.info.run_id] = (
            run.info.run_name,
            run.info.status,
            run.data.params,
            {k: str(v) for k, v in run.data.metrics.items()},
            tags,
            history,
        )
    return found


def test_migrate_between_mlflow_and_trackflow_stores_keeps_run_ids(
    new_uri: Callable[[], str], mlflow_mod: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's SQL database -> a file store -> a new Trackflow database, and MLflow's own file
    store -> a Trackflow database; MLflow reads every copy, with the same run ids."""
    from tracking.cli import main

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    source = new_uri()
    _fill_with_mlflow(mlflow_mod, source)
    expected = _runs_by_id(mlflow_mod.MlflowClient(source), "from-mlflow")
    files = f"file://{tmp_path / 'copied-mlruns'}"
    target = new_uri()
    assert main(["migrate", "--from", source, "--to", files]) == 0
    assert main(["migrate", "--from", files, "--to", target]) == 0
    for copy in (files, target):
        assert _runs_by_id(mlflow_mod.MlflowClient(copy), "from-mlflow") == expected

    # a file store MLflow itself wrote, into a new Trackflow database
    mlflow_files = f"file://{tmp_path / 'mlflow-mlruns'}"
    _fill_with_mlflow(mlflow_mod, mlflow_files)
    expected = _runs_by_id(mlflow_mod.MlflowClient(mlflow_files), "from-mlflow")
    target = new_uri()
    assert main(["migrate", "--from", mlflow_files, "--to", target]) == 0
    assert _runs_by_id(mlflow_mod.MlflowClient(target), "from-mlflow") == expected
    assert revision(target) == HEAD


def test_migrate_copies_an_mlflow_2_database(
    mlflow2_uri: Callable[[str], str], tmp_path: Path
) -> None:
    source = mlflow2_uri("2.22.1")
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    report = tracking.admin.migrate.migrate(source, target, progress=False)
    assert (report.runs_copied, report.warnings) == (3, [])
    ours = TrackingClient(target)
    assert _runs_by_id(ours, "legacy") == _runs_by_id(TrackingClient(source), "legacy")


def test_migrate_reads_a_newer_mlflows_database_without_writing_to_it(
    new_uri: Callable[[], str], mlflow_mod: Any, tmp_path: Path
) -> None:
    """What the refusal advises: a database at a revision this Trackflow does not know (a newer
    MLflow's) is copied out read-only, as long as its tracking tables are as expected."""
    source = new_uri()
    _fill_with_mlflow(mlflow_mod, source)
    expected = _runs_by_id(mlflow_mod.MlflowClient(source), "from-mlflow")
    _set_revision(source, "0123456789ab")
    before = schema_of(source)
    target = str(tmp_path / "mlruns-copy")
    with pytest.warns(UserWarning, match=r"schema revision 0123456789ab, unknown .* without writ"):
        report = tracking.admin.migrate.migrate(source, target, progress=False)
    assert report.runs_copied == 2
    assert _runs_by_id(TrackingClient(target), "from-mlflow") == expected
    assert revision(source) == "0123456789ab" and schema_of(source) == before
    assert trackflow_indexes(source) == set()  # not even Trackflow's indexes were added


# --- trackflow gc on MLflow's databases -----------------------------------------------------------
def _count(uri: str, sql: str, **params: Any) -> int:
    engine = _engine(uri)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def test_gc_follows_mlflows_foreign_keys(new_uri: Callable[[], str], mlflow_mod: Any) -> None:
    """gc deletes what MLflow's keys leave to it; MLflow's own rules do the rest (an issue that
    names a removed run keeps existing without it, and goes with its experiment)."""
    from tracking.cli import main

    uri = new_uri()
    ids = _fill_with_mlflow(mlflow_mod, uri)
    engine = _engine(uri)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO issues (issue_id, experiment_id, name, description, status, "
                    "source_run_id, created_timestamp, last_updated_timestamp) "
                    "VALUES ('i1', :e, 'drift', 'seen in a run', 'open', :r, 1, 1)"
                ),
                {"e": int(ids["experiment"]), "r": ids["child"]},
            )
    finally:
        engine.dispose()
    client = TrackingClient(uri)
    client.delete_run(ids["child"])
    assert main(["gc", "--tracking-uri", uri]) == 0
    assert _count(uri, "SELECT COUNT(*) FROM runs WHERE run_uuid = :r", r=ids["child"]) == 0
    assert _count(uri, "SELECT COUNT(*) FROM metrics WHERE run_uuid = :r", r=ids["child"]) == 0
    assert _count(uri, "SELECT COUNT(*) FROM issues WHERE source_run_id IS NULL") == 1

    client.delete_experiment(ids["experiment"])
    assert main(["gc", "--tracking-uri", uri]) == 0
    for table in ("experiments", "runs", "issues"):
        found = _count(
            uri, f"SELECT COUNT(*) FROM {table} WHERE experiment_id = :e", e=int(ids["experiment"])
        )
        assert found == 0, table
    assert mlflow_mod.MlflowClient(uri).search_experiments()[0].name == "Default"


def test_gc_on_an_mlflow_2_database(mlflow2_uri: Callable[[str], str]) -> None:
    """MLflow 2's schema lacks MLflow 3's tables: gc touches only what is there."""
    from tracking.cli import main

    uri = mlflow2_uri("2.22.1")
    assert main(["gc", "--tracking-uri", uri]) == 0  # the run MLflow 2 deleted
    client = TrackingClient(uri)
    experiment = client.get_experiment_by_name("legacy")
    assert experiment is not None
    assert client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY) == []
    assert _count(uri, "SELECT COUNT(*) FROM runs") == 2
