"""`trackflow migrate`: copy everything between file, SQLite and PostgreSQL stores."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tracking
from tracking import stores
from tracking.admin.migrate import MigrationError, MigrationReport, migrate
from tracking.cli import main
from tracking.entities import LifecycleStage, Metric, Param, RunTag, ViewType
from tracking.stores.base import TrackingStore

LONG_RUN_POINTS = 2500  # > 1000: several log_batch calls for one run


# --- a realistic source store ---------------------------------------------------------------------
def _ts(i: int) -> int:
    return 1_700_000_000_000 + i


def populate() -> dict[str, Any]:
    """Fill ./mlruns (the default store) with experiments and runs in every state."""
    client = tracking.TrackingClient()

    with tracking.start_run(run_name="default-run"):  # the Default experiment
        tracking.log_param("where", "default")
        tracking.log_metric("score", 1.5)

    training = tracking.create_experiment("training", tags={"team": "vision", "stage": "dev"})
    tracking.set_experiment("training")
    with tracking.start_run(run_name="sweep") as parent:
        tracking.log_params({"optimizer": "adam", "epochs": 3})
        for i, lr in enumerate((0.1, 0.01)):
            status = "FAILED" if i else "FINISHED"
            with tracking.start_run(run_name=f"trial-{i}", nested=True):
                tracking.log_param("lr", lr)
                for step in range(5):
                    tracking.log_metric("loss", 1 / (step + 1 + i), step=step)
                tracking.set_tag("trial", str(i))
                if status == "FAILED":
                    tracking.end_run("FAILED")
        tracking.log_metric("best_loss", 0.2)

    # A long, still RUNNING run: many steps, NaN/inf values, nested keys, > 100 params and tags.
    long = client.create_run(training, start_time=_ts(0), run_name="long", tags={"kind": "long"})
    loss = [Metric("loss", 1.0 / (i + 1), _ts(i), i) for i in range(LONG_RUN_POINTS)]
    loss[10] = Metric("loss", math.nan, _ts(10), 10)
    loss[20] = Metric("loss", math.inf, _ts(20), 20)
    loss[30] = Metric("loss", -math.inf, _ts(30), 30)
    acc = [Metric("val/acc", i / 100, _ts(i), i // 2) for i in range(60)]  # repeated steps
    client.log_batch(
        long.info.run_id,
        loss + acc + [Metric("nan_only", math.nan, _ts(1), 0)],
        [Param(f"p{i:03d}", f"value {i}") for i in range(130)],
        [RunTag(f"t{i:03d}", f"tag {i}") for i in range(120)],
    )

    killed = client.create_run(training, run_name="killed")
    client.log_metric(killed.info.run_id, "loss", 3.0, step=1)
    client.set_terminated(killed.info.run_id, "KILLED", end_time=_ts(99))

    removed = client.create_run(training, run_name="removed")
    client.log_param(removed.info.run_id, "gone", "yes")
    client.set_terminated(removed.info.run_id)
    client.delete_run(removed.info.run_id)

    unnamed = client.create_run(training, run_name="no-name-tag")  # run name, no runName tag
    client.delete_tag(unnamed.info.run_id, "mlflow.runName")
    client.set_terminated(unnamed.info.run_id, "FINISHED")

    # A deleted experiment: one run deleted on its own before, two deleted with the experiment.
    archive = tracking.create_experiment("archive", tags={"retired": "yes"})
    old = []
    for name, status in (("old-1", "FINISHED"), ("old-2", "FINISHED"), ("old-3", "FAILED")):
        run = client.create_run(archive, run_name=name)
        client.log_metric(run.info.run_id, "acc", 0.5, step=0)
        client.set_terminated(run.info.run_id, status)
        old.append(run.info.run_id)
    client.delete_run(old[0])
    time.sleep(0.005)
    tracking.delete_experiment(archive)

    empty = tracking.create_experiment("empty-and-deleted", tags={"why": "test"})
    tracking.delete_experiment(empty)
    tracking.set_experiment("training")  # keep the fluent state pointing at an active experiment
    return {
        "runs": 1 + 3 + 4 + 3,
        "points": 1 + 10 + 1 + LONG_RUN_POINTS + 60 + 1 + 1 + 3,
        "long": long.info.run_id,
        "parent": parent.info.run_id,
        "old": old,
    }


# --- reading a store back in full -----------------------------------------------------------------
def open_store(uri: str) -> TrackingStore:
    return stores.open_store(uri, None)


def close(store: TrackingStore) -> None:
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()


def _value(value: float) -> float | str:
    return "nan" if math.isnan(value) else value


def snapshot(uri: str) -> dict[str, Any]:
    """Everything a store holds, keyed by experiment name and run id (ids of experiments vary)."""
    store = open_store(uri)
    try:
        result = {}
        for e in store.search_experiments(ViewType.ALL, 50000):
            runs = {}
            for r in store.search_runs([e.experiment_id], None, ViewType.ALL, 50000):
                info = dict(vars(r.info))
                assert info.pop("experiment_id") == e.experiment_id
                histories = {
                    key: [
                        (m.step, m.timestamp, _value(m.value))
                        for m in store.get_metric_history(r.info.run_id, key)
                    ]
                    for key in r.data.metrics
                }
                runs[r.info.run_id] = {
                    "info": info,
                    "params": r.data.params,
                    "tags": r.data.tags,
                    "latest": {k: _value(v) for k, v in r.data.metrics.items()},
                    "histories": histories,
                }
            result[e.name] = {
                "is_default": e.experiment_id == "0",
                "artifact_location": e.artifact_location,
                "lifecycle_stage": e.lifecycle_stage,
                "tags": e.tags,
                "runs": runs,
            }
        return result
    finally:
        close(store)


def assert_same(source_uri: str, target_uri: str) -> dict[str, Any]:
    source, target = snapshot(source_uri), snapshot(target_uri)
    assert sorted(source) == sorted(target)
    for name, experiment in source.items():
        copied = target[name]
        assert sorted(copied["runs"]) == sorted(experiment["runs"]), name
        for run_id, run in experiment["runs"].items():
            assert copied["runs"][run_id] == run, (name, run_id)
        assert copied == experiment, name
    return source


def check_first_copy(report: MigrationReport, facts: dict[str, Any]) -> None:
    assert (report.experiments_copied, report.experiments_skipped) == (3, 1)  # Default reused
    assert (report.runs_copied, report.runs_skipped, report.runs_topped_up) == (facts["runs"], 0, 0)
    assert report.metric_points_copied == facts["points"]
    assert report.warnings == []


def check_rerun(report: MigrationReport, facts: dict[str, Any]) -> None:
    assert (report.experiments_copied, report.experiments_skipped) == (0, 4)
    assert (report.runs_copied, report.runs_skipped, report.runs_topped_up) == (0, facts["runs"], 0)
    assert report.metric_points_copied == report.params_copied == report.tags_copied == 0
    assert report.warnings == []


@pytest.fixture
def facts() -> Iterator[dict[str, Any]]:
    yield populate()


# --- round trips ----------------------------------------------------------------------------------
def test_file_to_sqlite_to_file(facts: dict[str, Any], tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'copy.db'}"
    report = migrate("mlruns", sqlite, progress=False)
    check_first_copy(report, facts)
    data = assert_same("mlruns", sqlite)

    # the comparison saw what matters
    training = data["training"]["runs"]
    long = training[facts["long"]]
    assert len(long["histories"]["loss"]) == LONG_RUN_POINTS
    assert long["info"]["status"] == "RUNNING" and long["info"]["end_time"] is None
    assert len(long["params"]) == 130 and long["tags"]["t119"] == "tag 119"
    assert (
        long["histories"]["loss"][10][2] == "nan" and long["histories"]["loss"][20][2] == math.inf
    )
    assert {r["info"]["status"] for r in training.values()} == {
        "RUNNING",
        "FINISHED",
        "FAILED",
        "KILLED",
    }
    children = [r for r in training.values() if r["tags"].get("mlflow.parentRunId")]
    assert {r["tags"]["mlflow.parentRunId"] for r in children} == {facts["parent"]}
    assert data["archive"]["lifecycle_stage"] == LifecycleStage.DELETED
    assert {r["info"]["lifecycle_stage"] for r in data["archive"]["runs"].values()} == {"deleted"}
    unnamed = [r for r in training.values() if r["info"]["run_name"] == "no-name-tag"]
    assert "mlflow.runName" not in unnamed[0]["tags"]
    default_run = next(iter(data["Default"]["runs"].values()))
    assert default_run["info"]["artifact_uri"].startswith(f"file://{tmp_path}/mlruns/0/")

    # rerun: nothing new, nothing duplicated
    check_rerun(migrate("mlruns", sqlite, progress=False), facts)
    assert_same("mlruns", sqlite)

    # and back into a new file store: same ids, URIs (the Default's too), histories
    copy = str(tmp_path / "copy-mlruns")
    check_first_copy(migrate(sqlite, copy, progress=False), facts)
    assert_same(sqlite, copy)
    assert_same("mlruns", copy)
    check_rerun(migrate(sqlite, f"file://{copy}", progress=False), facts)

    # restore semantics survive: restoring the experiment brings back the same runs
    for uri in ("mlruns", sqlite, copy):
        store = open_store(uri)
        store.restore_experiment(store.get_experiment_by_name("archive").experiment_id)
        close(store)
    archive = assert_same("mlruns", copy)["archive"]
    assert archive["lifecycle_stage"] == LifecycleStage.ACTIVE
    stages = {i: r["info"]["lifecycle_stage"] for i, r in archive["runs"].items()}
    assert stages == dict(zip(facts["old"], ["deleted", "active", "active"], strict=True))
    assert_same(sqlite, copy)


def test_file_to_postgresql(facts: dict[str, Any], postgres_uri: Callable[[], str]) -> None:
    target = postgres_uri()
    check_first_copy(migrate("mlruns", target, progress=False), facts)
    assert_same("mlruns", target)
    check_rerun(migrate("mlruns", target, progress=False), facts)
    assert_same("mlruns", target)


def test_sqlite_to_postgresql(
    facts: dict[str, Any], postgres_uri: Callable[[], str], tmp_path: Path
) -> None:
    sqlite = f"sqlite:///{tmp_path / 'a.db'}"
    migrate("mlruns", sqlite, progress=False)
    target = postgres_uri()
    check_first_copy(migrate(sqlite, target, progress=False), facts)
    assert_same(sqlite, target)


def test_interrupted_migration_is_topped_up(facts: dict[str, Any], tmp_path: Path) -> None:
    """A target holding part of a run (as a crash would leave it) gets the rest on rerun."""
    target_uri = f"sqlite:///{tmp_path / 'partial.db'}"
    source, target = open_store("mlruns"), open_store(target_uri)
    training = source.get_experiment_by_name("training")
    long = source.get_run(facts["long"])
    experiment_id = target.create_experiment("training", training.artifact_location)
    target.create_run(
        experiment_id,
        long.info.user_id,
        long.info.start_time,
        [RunTag("mlflow.runName", "long")],
        "long",
        run_id=facts["long"],
    )
    history = source.get_metric_history(facts["long"], "loss")
    target.log_batch(facts["long"], history[:700], [Param("p000", "value 0")], [])
    # the archive experiment, created but not yet deleted, its runs not yet copied
    archive = source.get_experiment_by_name("archive")
    target.create_experiment("archive", archive.artifact_location, {"retired": "yes"})
    close(source)
    close(target)

    report = migrate("mlruns", target_uri, progress=False)
    assert report.runs_topped_up == 1 and report.runs_copied == facts["runs"] - 1
    assert report.metric_points_copied == facts["points"] - 700
    assert report.warnings == []
    assert_same("mlruns", target_uri)
    check_rerun(migrate("mlruns", target_uri, progress=False), facts)


def test_conflicts_in_the_target_are_reported_not_fatal(
    facts: dict[str, Any], tmp_path: Path
) -> None:
    target_uri = f"sqlite:///{tmp_path / 'conflict.db'}"
    target = open_store(target_uri)
    experiment_id = target.create_experiment("training", "file:///elsewhere", {"team": "audio"})
    target.create_run(experiment_id, "bob", 1, [], "long", run_id=facts["long"])
    target.log_batch(facts["long"], [], [Param("p000", "other")], [])
    close(target)

    report = migrate("mlruns", target_uri, progress=False)
    text = "\n".join(report.warnings)
    assert "tag 'team' differs" in text and "param 'p000' differs" in text
    assert "artifact location 'file:///elsewhere'" in text and "start_time differs" in text
    assert report.runs_topped_up == 1 and report.runs_copied == facts["runs"] - 1
    copied = open_store(target_uri)
    assert copied.get_run(facts["long"]).data.params["p000"] == "other"
    assert len(copied.get_metric_history(facts["long"], "loss")) == LONG_RUN_POINTS
    close(copied)


# --- command line ---------------------------------------------------------------------------------
def test_cli_migrate(
    facts: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["migrate", "--from", "mlruns", "--to", target]) == 0  # with the progress bar
    out = capsys.readouterr().out
    assert "runs copied" in out and str(facts["runs"]) in out and "metric points" in out
    assert_same("mlruns", target)
    assert main(["migrate", "--from", "mlruns", "--to", target, "--no-progress"]) == 0
    assert "already in target" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("mlruns", "{cwd}/mlruns", "same store"),
        ("mlruns", "file://{cwd}/mlruns/", "same store"),
        ("sqlite:///x.db", "sqlite:///{cwd}/x.db", "same store"),
        ("nowhere", "sqlite:///t.db", "'nowhere' does not exist"),
        ("empty-folder", "sqlite:///t.db", "'empty-folder' is not a tracking store"),
        ("sqlite:///missing.db", "t2", "'sqlite:///missing.db' does not exist"),
        ("sqlite:///not-a-db.db", "t2", "Cannot open source store 'sqlite:///not-a-db.db'"),
        ("foo://bar", "t2", "Cannot open source store 'foo://bar'"),
        ("mlruns", "foo://bar", "Cannot open target store 'foo://bar'"),
        ("mlruns", "sqlite:///:memory:", "in-memory"),
        (
            "postgresql://u:secret@127.0.0.1:1/db",
            "t2",
            "Cannot open source store 'postgresql://u:***@127.0.0.1:1/db'",
        ),
        ("mlruns", "postgresql://u@127.0.0.1:1/db", "target store 'postgresql://u@127.0.0.1:1/db'"),
    ],
)
def test_cli_errors_are_one_line(
    source: str,
    target: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tracking.log_metric("m", 1.0)  # a small source store in ./mlruns
    tracking.end_run()
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "not-a-db.db").write_text("hello")
    argv = ["migrate", "--from", source.format(cwd=tmp_path), "--to", target.format(cwd=tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("trackflow: error: ") and message in err, err
    assert err.count("\n") == 1 and "secret" not in err
    for untouched in ("nowhere", "t2", "t.db", "missing.db"):
        assert not (tmp_path / untouched).exists()


def test_error_for_a_missing_postgresql_database(postgres_uri: Callable[[], str]) -> None:
    uri = postgres_uri().rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(MigrationError, match=r"Cannot open source store .*no_such_database"):
        migrate(uri, "copy", progress=False)
