"""Acceptance: the `mlruns/` format is shared with MLflow's FileStore, in both directions.

a) `tracking` writes, the real `mlflow` package (3.x) reads;
b) `mlflow` writes, `tracking` reads.

MLflow >= 3.13 refuses its FileStore unless MLFLOW_ALLOW_FILE_STORE=true, so every test that
builds an MLflow client sets it first. `mlflow` is imported inside the fixture (about 1.5 s once).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tracking
from tracking import ViewType

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # MLflow's FileStore deprecation
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

NAN, INF = float("nan"), float("inf")
MLFLOW_GLOBAL_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def mlflow_mod(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real mlflow package, allowed to use its FileStore; its globals reset afterwards."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow
    import mlflow.tracking.fluent as mlflow_fluent

    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    yield mlflow
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    for name in MLFLOW_GLOBAL_ENV:
        os.environ.pop(name, None)


def _uri(path: Path) -> str:
    return "file://" + str(path.resolve())


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _same_metrics(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(_same_float(a[k], b[k]) for k in a)


def _history(metrics: list[Any]) -> list[tuple[str, float | str, int, int]]:
    """(key, value, timestamp, step) in order; NaN as the string 'nan' so lists compare."""
    return [
        (m.key, "nan" if math.isnan(m.value) else m.value, m.timestamp, m.step) for m in metrics
    ]


def _info(run: Any) -> dict[str, Any]:
    info = run.info
    fields = ("run_id", "experiment_id", "run_name", "user_id", "status", "start_time")
    fields += ("end_time", "artifact_uri", "lifecycle_stage")
    return {f: getattr(info, f) for f in fields}


def _assert_same_run(ours: Any, theirs: Any) -> None:
    assert _info(ours) == _info(theirs)
    assert ours.data.params == theirs.data.params
    assert ours.data.tags == theirs.data.tags
    assert _same_metrics(ours.data.metrics, theirs.data.metrics), (
        ours.data.metrics,
        theirs.data.metrics,
    )


# --------------------------------------------------------------------------- a) MLflow reads ours
@pytest.fixture
def our_store(tracking_dir: Path) -> dict[str, Any]:
    """A store written by `tracking` only, covering every on-disk feature; returns the ids."""
    ids: dict[str, Any] = {}
    client = tracking.TrackingClient()
    experiment = tracking.set_experiment("compat-by-name")
    ids["exp"] = experiment.experiment_id
    tracking.set_experiment_tag("team", "vision")

    with tracking.start_run(run_name="parent", description="the **best** run") as parent:
        tracking.log_params({"lr": "0.1", "batch": 32, "opt/name": "adam"})
        for step, acc in enumerate([0.2, 0.6, 0.9]):
            tracking.log_metric("acc", acc, step=step, timestamp=1_700_000_000_000 + step)
        for step, value in enumerate([NAN, INF, -INF, 1.5]):
            tracking.log_metric("loss", value, step=step, timestamp=1_700_000_000_100 + step)
        tracking.log_metric("loss", 0.25, step=1, timestamp=1_700_000_000_050)  # out of order
        tracking.log_metric("train/loss", 3.0, step=7)  # key with '/' is a sub-folder
        tracking.log_metrics({"a": 1.0, "b": 2.0}, step=2)
        tracking.set_tags({"stage": "dev", "note/x": "y"})
        tracking.log_text("hello", "notes/hello.txt")
        with tracking.start_run(run_name="child", nested=True) as child:
            tracking.log_metric("acc", 0.4)
            tracking.log_param("lr", "0.01")
    ids["parent"], ids["child"] = parent.info.run_id, child.info.run_id

    with tracking.start_run(run_name="failed") as failed:
        tracking.log_param("lr", "0.1")
        tracking.log_metric("acc", 0.3)
        tracking.end_run("FAILED")
    ids["failed"] = failed.info.run_id

    running = client.create_run(ids["exp"], run_name="still-running", tags={"k": "v"})
    client.log_batch(
        running.info.run_id,
        metrics=[tracking.Metric("acc", 0.7, 1_700_000_000_000 + i, i) for i in range(5)],
        params=[tracking.Param("lr", "0.1")],
    )
    client.update_run(running.info.run_id, name="renamed-running")
    ids["running"] = running.info.run_id

    with tracking.start_run(run_name="doomed") as doomed:
        tracking.log_metric("acc", 0.99)
    tracking.delete_run(doomed.info.run_id)
    ids["deleted_run"] = doomed.info.run_id

    with tracking.start_run(experiment_id="0", run_name="in-default") as default_run:
        tracking.log_param("p", "v")
    ids["default_run"] = default_run.info.run_id

    gone = tracking.create_experiment("to-delete", tags={"why": "test"})
    with tracking.start_run(experiment_id=gone, run_name="in-deleted-exp") as gone_run:
        tracking.log_metric("m", 1.0)
    tracking.delete_experiment(gone)
    ids["deleted_exp"], ids["deleted_exp_run"] = gone, gone_run.info.run_id
    ids["all_runs"] = [
        ids[k] for k in ("parent", "child", "failed", "running", "deleted_run", "default_run")
    ] + [ids["deleted_exp_run"]]
    return ids


def test_mlflow_lists_our_experiments(mlflow_mod: Any, tracking_dir: Path, our_store: dict):
    from mlflow.entities import ViewType as MlflowViewType

    ours = tracking.TrackingClient()
    theirs = mlflow_mod.tracking.MlflowClient(tracking_uri=_uri(tracking_dir))

    listed = {e.experiment_id: e for e in theirs.search_experiments()}
    assert listed.keys() == {"0", our_store["exp"]}
    assert listed["0"].name == "Default"
    assert listed[our_store["exp"]].name == "compat-by-name"
    assert listed[our_store["exp"]].tags == {"team": "vision"}
    for e in ours.search_experiments(ViewType.ALL):
        other = theirs.get_experiment(e.experiment_id)
        assert (other.name, other.lifecycle_stage) == (e.name, e.lifecycle_stage)
        assert (other.artifact_location, other.tags) == (e.artifact_location, e.tags)
        assert (other.creation_time, other.last_update_time) == (
            e.creation_time,
            e.last_update_time,
        )
    assert theirs.get_experiment_by_name("compat-by-name").experiment_id == our_store["exp"]

    deleted = theirs.search_experiments(view_type=MlflowViewType.DELETED_ONLY)
    assert [(e.experiment_id, e.name) for e in deleted] == [(our_store["deleted_exp"], "to-delete")]
    assert deleted[0].lifecycle_stage == "deleted"
    assert deleted[0].tags == {"why": "test"}
    assert len(theirs.search_experiments(view_type=MlflowViewType.ALL)) == 3


def test_mlflow_reads_our_runs_and_histories(mlflow_mod: Any, tracking_dir: Path, our_store: dict):
    ours = tracking.TrackingClient()
    theirs = mlflow_mod.tracking.MlflowClient(tracking_uri=_uri(tracking_dir))

    for run_id in our_store["all_runs"]:
        mine, other = ours.get_run(run_id), theirs.get_run(run_id)
        _assert_same_run(mine, other)
        for key in mine.data.metrics:
            assert _history(theirs.get_metric_history(run_id, key)) == _history(
                ours.get_metric_history(run_id, key)
            ), key

    parent = theirs.get_run(our_store["parent"])
    assert parent.info.status == "FINISHED" and parent.info.run_name == "parent"
    assert parent.data.params == {"lr": "0.1", "batch": "32", "opt/name": "adam"}
    assert parent.data.tags["mlflow.note.content"] == "the **best** run"
    assert parent.data.tags["note/x"] == "y"
    # Latest value = max by (step, timestamp): step 3 of "loss", step 2 of "acc".
    assert parent.data.metrics["acc"] == 0.9 and parent.data.metrics["loss"] == 1.5
    assert parent.data.metrics["train/loss"] == 3.0
    loss = theirs.get_metric_history(our_store["parent"], "loss")
    assert [m.step for m in loss] == [0, 1, 2, 3, 1]
    assert math.isnan(loss[0].value) and loss[1].value == INF and loss[2].value == -INF
    assert loss[1].timestamp == 1_700_000_000_101

    assert theirs.get_run(our_store["failed"]).info.status == "FAILED"
    running = theirs.get_run(our_store["running"])
    assert running.info.status == "RUNNING" and running.info.end_time is None
    assert running.info.run_name == running.data.tags["mlflow.runName"] == "renamed-running"
    assert [m.step for m in theirs.get_metric_history(our_store["running"], "acc")] == [
        0,
        1,
        2,
        3,
        4,
    ]

    child = theirs.get_run(our_store["child"])
    assert child.data.tags["mlflow.parentRunId"] == our_store["parent"]
    assert child.info.experiment_id == our_store["exp"]
    assert theirs.get_run(our_store["default_run"]).info.experiment_id == "0"

    assert theirs.get_run(our_store["deleted_run"]).info.lifecycle_stage == "deleted"
    gone_run = theirs.get_run(our_store["deleted_exp_run"])
    assert gone_run.info.lifecycle_stage == "deleted"
    assert gone_run.info.experiment_id == our_store["deleted_exp"]

    # Artifacts we wrote are where MLflow looks for them.
    listed = theirs.list_artifacts(our_store["parent"], "notes")
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [("notes/hello.txt", False, 5)]
    local = theirs.download_artifacts(
        our_store["parent"], "notes/hello.txt", str(tracking_dir.parent)
    )
    assert Path(local).read_text() == "hello"


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("params.lr = '0.1' and metrics.acc > 0.5", None),
        ("params.lr = '0.1'", ["metrics.acc DESC"]),
        ("metrics.acc >= 0.3", ["metrics.acc ASC"]),
        ("attributes.status = 'FINISHED'", ["attributes.run_name ASC"]),
        ("tags.stage = 'dev'", None),
        ("", ["params.lr DESC", "attributes.start_time ASC"]),
    ],
)
def test_mlflow_search_on_our_store_matches_ours(
    mlflow_mod: Any,
    tracking_dir: Path,
    our_store: dict,
    filter_string: str,
    order_by: list[str] | None,
):
    from mlflow.entities import ViewType as MlflowViewType

    ours = tracking.TrackingClient()
    theirs = mlflow_mod.tracking.MlflowClient(tracking_uri=_uri(tracking_dir))
    experiments = [our_store["exp"], "0"]
    for ours_view, their_view in [
        (ViewType.ACTIVE_ONLY, MlflowViewType.ACTIVE_ONLY),
        (ViewType.ALL, MlflowViewType.ALL),
    ]:
        mine = ours.search_runs(experiments, filter_string, ours_view, order_by=order_by)
        other = theirs.search_runs(experiments, filter_string, their_view, order_by=order_by or [])
        assert [r.info.run_id for r in mine] == [r.info.run_id for r in other]
        for a, b in zip(mine, other, strict=True):
            _assert_same_run(a, b)


def test_mlflow_search_finds_parent_links_and_deleted_runs(
    mlflow_mod: Any, tracking_dir: Path, our_store: dict
):
    from mlflow.entities import ViewType as MlflowViewType

    theirs = mlflow_mod.tracking.MlflowClient(tracking_uri=_uri(tracking_dir))
    found = theirs.search_runs([our_store["exp"]], "params.lr = '0.1' and metrics.acc > 0.5")
    assert {r.info.run_id for r in found} == {our_store["parent"], our_store["running"]}
    children = theirs.search_runs(
        [our_store["exp"]], f"tags.mlflow.parentRunId = '{our_store['parent']}'"
    )
    assert [r.info.run_id for r in children] == [our_store["child"]]
    deleted = theirs.search_runs([our_store["exp"]], run_view_type=MlflowViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [our_store["deleted_run"]]
    in_trash = theirs.search_runs([our_store["deleted_exp"]], run_view_type=MlflowViewType.ALL)
    assert [r.info.run_id for r in in_trash] == [our_store["deleted_exp_run"]]


def test_mlflow_keeps_logging_into_our_run(mlflow_mod: Any, tracking_dir: Path):
    """Mixed use: a run started by us, resumed and extended by MLflow, read back by us."""
    with tracking.start_run(run_name="shared") as run:
        tracking.log_metric("acc", 0.1, step=0)
        tracking.log_param("lr", "0.1")
    run_id = run.info.run_id
    mlflow_mod.set_tracking_uri(_uri(tracking_dir))
    with mlflow_mod.start_run(run_id=run_id):
        mlflow_mod.log_metric("acc", 0.2, step=1)
        mlflow_mod.set_tag("by", "mlflow")
        mlflow_mod.log_param("lr", "0.1")  # same value: a no-op on both sides
    ours = tracking.TrackingClient()
    got = ours.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics == {"acc": 0.2}
    assert got.data.tags["by"] == "mlflow" and got.data.params == {"lr": "0.1"}
    assert [(m.value, m.step) for m in ours.get_metric_history(run_id, "acc")] == [
        (0.1, 0),
        (0.2, 1),
    ]


# --------------------------------------------------------------------------- b) we read MLflow's
@pytest.fixture
def mlflow_store(mlflow_mod: Any, tmp_path: Path) -> dict[str, Any]:
    """A store written by `mlflow` only (fluent + client API); returns the ids."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    mlflow = mlflow_mod
    root = tmp_path / "mlflow-runs"
    uri = _uri(root)
    mlflow.set_tracking_uri(uri)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    ids: dict[str, Any] = {"uri": uri, "root": root}

    experiment = mlflow.set_experiment("made-by-mlflow")
    ids["exp"] = experiment.experiment_id
    mlflow.set_experiment_tag("owner", "mlflow")
    with mlflow.start_run(run_name="parent", description="notes") as parent:
        mlflow.log_params({"lr": "0.1", "layers": 3, "opt/name": "sgd"})
        for step, acc in enumerate([0.3, 0.8, 0.95]):
            mlflow.log_metric("acc", acc, step=step, timestamp=1_700_000_000_000 + step)
        for step, value in enumerate([NAN, INF, -INF, 2.5]):
            mlflow.log_metric("loss", value, step=step)
        mlflow.log_metric("val/loss", 0.5, step=3)
        mlflow.set_tags({"stage": "prod", "dotted.key": "1"})
        mlflow.log_text("hello from mlflow", "notes/hello.txt")
        mlflow.log_dict({"a": 1}, "config.json")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.55)
            mlflow.log_param("lr", "0.01")
    ids["parent"], ids["child"] = parent.info.run_id, child.info.run_id

    with mlflow.start_run(run_name="failed") as failed:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("acc", 0.7)
        mlflow.end_run("FAILED")
    ids["failed"] = failed.info.run_id

    killed = client.create_run(ids["exp"], run_name="killed", tags={"k": "v"})
    # Metric lines with a dataset name and digest (5 fields) and a LoggedModel + dataset input
    # add files and folders our reader must tolerate.
    client.log_metric(
        killed.info.run_id, "acc", 0.6, step=1, dataset_name="ds", dataset_digest="abc123"
    )
    client.log_batch(killed.info.run_id, params=[mlflow.entities.Param("lr", "0.5")])
    dataset = Dataset(name="ds", digest="abc123", source_type="code", source="{}")
    client.log_inputs(
        killed.info.run_id,
        datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])],
    )
    client.create_logged_model(ids["exp"], name="model", source_run_id=killed.info.run_id)
    client.set_terminated(killed.info.run_id, "KILLED")
    ids["killed"] = killed.info.run_id

    doomed = client.create_run(ids["exp"], run_name="doomed")
    client.log_metric(doomed.info.run_id, "acc", 0.99)
    client.delete_run(doomed.info.run_id)
    ids["deleted_run"] = doomed.info.run_id

    gone = client.create_experiment("mlflow-deleted", tags={"why": "test"})
    gone_run = client.create_run(gone, run_name="in-deleted-exp")
    client.delete_experiment(gone)
    ids["deleted_exp"], ids["deleted_exp_run"] = gone, gone_run.info.run_id

    default_run = client.create_run("0", run_name="in-default")
    client.set_terminated(default_run.info.run_id)
    ids["default_run"] = default_run.info.run_id
    ids["all_runs"] = [
        ids[k] for k in ("parent", "child", "failed", "killed", "deleted_run", "deleted_exp_run")
    ] + [ids["default_run"]]
    ids["client"] = client
    return ids


def test_we_read_mlflow_experiments(mlflow_store: dict):
    theirs = mlflow_store["client"]
    ours = tracking.TrackingClient(tracking_uri=mlflow_store["uri"])
    from mlflow.entities import ViewType as MlflowViewType

    for ours_view, their_view in [
        (ViewType.ACTIVE_ONLY, MlflowViewType.ACTIVE_ONLY),
        (ViewType.DELETED_ONLY, MlflowViewType.DELETED_ONLY),
        (ViewType.ALL, MlflowViewType.ALL),
    ]:
        mine = {e.experiment_id: e for e in ours.search_experiments(ours_view)}
        other = {e.experiment_id: e for e in theirs.search_experiments(view_type=their_view)}
        assert mine.keys() == other.keys()
        for exp_id, e in mine.items():
            o = other[exp_id]
            assert (e.name, e.lifecycle_stage, e.artifact_location, e.tags) == (
                o.name,
                o.lifecycle_stage,
                o.artifact_location,
                o.tags,
            )
            assert (e.creation_time, e.last_update_time) == (o.creation_time, o.last_update_time)
    assert ours.get_experiment_by_name("made-by-mlflow").experiment_id == mlflow_store["exp"]
    assert ours.get_experiment(mlflow_store["exp"]).tags == {"owner": "mlflow"}
    gone = ours.get_experiment(mlflow_store["deleted_exp"])
    assert (gone.name, gone.lifecycle_stage) == ("mlflow-deleted", "deleted")


def test_we_read_mlflow_runs_and_histories(mlflow_store: dict):
    theirs = mlflow_store["client"]
    ours = tracking.TrackingClient(tracking_uri=mlflow_store["uri"])

    for run_id in mlflow_store["all_runs"]:
        mine, other = ours.get_run(run_id), theirs.get_run(run_id)
        _assert_same_run(mine, other)
        if run_id == mlflow_store["killed"]:
            continue  # 5-field lines: see test_we_read_metric_lines_with_a_dataset
        for key in other.data.metrics:
            assert _history(ours.get_metric_history(run_id, key)) == _history(
                theirs.get_metric_history(run_id, key)
            ), key

    parent = ours.get_run(mlflow_store["parent"])
    assert parent.info.status == "FINISHED" and parent.info.run_name == "parent"
    assert parent.data.params == {"lr": "0.1", "layers": "3", "opt/name": "sgd"}
    assert parent.data.metrics["acc"] == 0.95 and parent.data.metrics["val/loss"] == 0.5
    loss = ours.get_metric_history(mlflow_store["parent"], "loss")
    assert [m.step for m in loss] == [0, 1, 2, 3]
    assert math.isnan(loss[0].value) and loss[1].value == INF and loss[2].value == -INF
    assert parent.data.tags["mlflow.note.content"] == "notes"

    assert ours.get_parent_run(mlflow_store["child"]).info.run_id == mlflow_store["parent"]
    assert ours.get_parent_run(mlflow_store["parent"]) is None
    assert ours.get_run(mlflow_store["failed"]).info.status == "FAILED"
    killed = ours.get_run(mlflow_store["killed"])
    assert killed.info.status == "KILLED" and killed.data.metrics == {"acc": 0.6}
    assert ours.get_run(mlflow_store["deleted_run"]).info.lifecycle_stage == "deleted"
    assert ours.get_run(mlflow_store["deleted_exp_run"]).info.lifecycle_stage == "deleted"
    assert ours.get_run(mlflow_store["default_run"]).info.experiment_id == "0"


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("params.lr = '0.1' and metrics.acc > 0.5", ["metrics.acc DESC"]),
        ("metrics.acc > 0.5", ["metrics.acc ASC"]),
        ("attributes.status != 'FINISHED'", ["attributes.run_name DESC"]),
        ("tags.stage = 'prod'", None),
        ("", ["params.lr ASC", "metrics.acc DESC"]),
    ],
)
def test_our_search_on_mlflow_store_matches_mlflow(
    mlflow_store: dict, filter_string: str, order_by: list[str] | None
):
    from mlflow.entities import ViewType as MlflowViewType

    theirs = mlflow_store["client"]
    ours = tracking.TrackingClient(tracking_uri=mlflow_store["uri"])
    experiments = [mlflow_store["exp"], "0"]
    for ours_view, their_view in [
        (ViewType.ACTIVE_ONLY, MlflowViewType.ACTIVE_ONLY),
        (ViewType.ALL, MlflowViewType.ALL),
    ]:
        mine = ours.search_runs(experiments, filter_string, ours_view, order_by=order_by)
        other = theirs.search_runs(experiments, filter_string, their_view, order_by=order_by or [])
        assert [r.info.run_id for r in mine] == [r.info.run_id for r in other]
        for a, b in zip(mine, other, strict=True):
            _assert_same_run(a, b)
    found = ours.search_runs(
        [mlflow_store["exp"]],
        "params.lr = '0.1' and metrics.acc > 0.5",
        order_by=["metrics.acc DESC"],
    )
    assert [r.info.run_id for r in found] == [mlflow_store["parent"], mlflow_store["failed"]]


def test_we_read_mlflow_artifacts(mlflow_store: dict, tmp_path: Path):
    ours = tracking.TrackingClient(tracking_uri=mlflow_store["uri"])
    run_id = mlflow_store["parent"]
    top = [(f.path, f.is_dir) for f in ours.list_artifacts(run_id)]
    assert top == [("config.json", False), ("notes", True)]
    assert [(f.path, f.file_size) for f in ours.list_artifacts(run_id, "notes")] == [
        ("notes/hello.txt", len("hello from mlflow"))
    ]
    one = ours.download_artifacts(run_id, "notes/hello.txt", str(tmp_path / "one"))
    assert Path(one).read_text() == "hello from mlflow"
    everything = Path(ours.download_artifacts(run_id, "", str(tmp_path / "all")))
    assert (everything / "notes" / "hello.txt").read_text() == "hello from mlflow"
    assert (everything / "config.json").exists()
    assert ours.get_artifact_uri(run_id) == mlflow_store["client"].get_run(run_id).info.artifact_uri


def test_we_keep_logging_into_an_mlflow_store(mlflow_store: dict):
    """Our writes into MLflow's store (new run, resumed run) stay readable by MLflow."""
    theirs = mlflow_store["client"]
    tracking.set_tracking_uri(mlflow_store["uri"])
    tracking.set_experiment("made-by-mlflow")
    with tracking.start_run(run_name="ours", nested=False) as run:
        tracking.log_param("lr", "0.2")
        tracking.log_metric("acc", 0.77, step=4)
    with tracking.start_run(run_id=mlflow_store["failed"]):
        tracking.log_metric("acc", 0.71, step=1)
    got = theirs.get_run(run.info.run_id)
    assert got.info.experiment_id == mlflow_store["exp"]
    assert (got.data.params, got.data.metrics) == ({"lr": "0.2"}, {"acc": 0.77})
    resumed = theirs.get_run(mlflow_store["failed"])
    assert resumed.info.status == "FINISHED" and resumed.data.metrics == {"acc": 0.71}
    assert [m.value for m in theirs.get_metric_history(mlflow_store["failed"], "acc")] == [
        0.7,
        0.71,
    ]


def test_we_read_metric_lines_with_a_dataset(mlflow_store: dict):
    """`<ts> <value> <step> <dataset> <digest>` lines: we keep the step that was written.

    MLflow 3.17's own FileStore reader returns step 0 for such lines (it only reads the step
    of 3-field lines), so here we compare with the file, not with MLflow's reader.
    """
    run_id = mlflow_store["killed"]
    ours = tracking.TrackingClient(tracking_uri=mlflow_store["uri"])
    run_dir = Path(mlflow_store["root"]) / mlflow_store["exp"] / run_id
    fields = (run_dir / "metrics" / "acc").read_text().split()
    assert fields[1:] == ["0.6", "1", "ds", "abc123"]
    history = ours.get_metric_history(run_id, "acc")
    assert [(m.value, m.timestamp, m.step) for m in history] == [(0.6, int(fields[0]), 1)]
    theirs = mlflow_store["client"].get_metric_history(run_id, "acc")
    assert [(m.value, m.timestamp) for m in theirs] == [(0.6, int(fields[0]))]


TRICKY_NAMES = ["it's", "a: b", "null", "123", "0x1f", "1e5", "yes", "- dash", "#hash", "é ü", "x'"]


def test_tricky_names_survive_both_ways(mlflow_mod: Any, tracking_dir: Path, tmp_path: Path):
    """Names that YAML would read as another type, or that need quoting, in meta.yaml."""
    ours = tracking.TrackingClient()
    theirs = mlflow_mod.tracking.MlflowClient(tracking_uri=_uri(tracking_dir))
    written = {}
    for name in TRICKY_NAMES:
        experiment_id = ours.create_experiment(name)
        run = ours.create_run(experiment_id, run_name=name)
        written[experiment_id] = run.info.run_id
    for experiment_id, run_id in written.items():
        assert theirs.get_experiment(experiment_id).name == ours.get_experiment(experiment_id).name
        assert theirs.get_run(run_id).info.run_name == ours.get_run(run_id).info.run_name

    mlflow_root = tmp_path / "by-mlflow"
    theirs = mlflow_mod.tracking.MlflowClient(tracking_uri=_uri(mlflow_root))
    ours = tracking.TrackingClient(tracking_uri=_uri(mlflow_root))
    for name in TRICKY_NAMES:
        if "'" in name:
            continue  # MLflow's FileStore cannot create these (it puts the name in a filter)
        experiment_id = theirs.create_experiment(name)
        run_id = theirs.create_run(experiment_id, run_name=name).info.run_id
        assert ours.get_experiment(experiment_id).name == name
        assert ours.get_experiment_by_name(name).experiment_id == experiment_id
        assert ours.get_run(run_id).info.run_name == name


def test_metric_key_containing_a_metrics_folder(mlflow_mod: Any, tracking_dir: Path):
    ours = tracking.TrackingClient()
    run_id = ours.create_run("0").info.run_id
    ours.log_metric(run_id, "train/metrics/acc", 0.5, step=1)
    theirs = mlflow_mod.tracking.MlflowClient(tracking_uri=_uri(tracking_dir))
    assert [m.key for m in theirs.get_metric_history(run_id, "train/metrics/acc")] == [
        "train/metrics/acc"
    ]
    assert [m.key for m in ours.get_metric_history(run_id, "train/metrics/acc")] == [
        "train/metrics/acc"
    ]


# --------------------------------------------------------------------------- c) models both ways
class _Doubler(tracking.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        with open(context.artifacts["offset"], encoding="utf-8") as f:
            self.offset = float(f.read())

    def predict(self, context: Any, model_input: Any, params: dict | None = None) -> Any:
        return (model_input["a"] * 2 + self.offset) * (params or {}).get("scale", 1)


def _model_data() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    X = iris.data.rename(columns=dict(zip(iris.data.columns, "abcd", strict=True)))
    return X, pd.Series(iris.target)


def _boosters(X: Any, y: Any) -> dict[str, Any]:
    import lightgbm as lgb
    import xgboost as xgb

    return {
        "lightgbm-booster": lgb.train(
            {"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(X, y), 4
        ),
        "lightgbm-classifier": lgb.LGBMClassifier(n_estimators=4, verbose=-1).fit(X, y),
        "xgboost-booster": xgb.train(
            {"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, y), 4
        ),
        "xgboost-classifier": xgb.XGBClassifier(n_estimators=4).fit(X, y),
    }


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")
def test_mlflow_loads_our_models_and_signatures(
    mlflow_mod: Any, tracking_dir: Path, tmp_path: Path
) -> None:
    import mlflow.lightgbm
    import mlflow.pyfunc
    import mlflow.xgboost
    import numpy as np

    import tracking.lightgbm
    import tracking.xgboost

    X, y = _model_data()
    (tmp_path / "offset.txt").write_text("1")
    uris = {}
    with tracking.start_run():
        for name, model in _boosters(X, y).items():
            flavor = tracking.lightgbm if name.startswith("lightgbm") else tracking.xgboost
            uris[name] = flavor.log_model(model, name, input_example=X.head(3)).model_uri
        uris["custom"] = tracking.pyfunc.log_model(
            "custom",
            python_model=_Doubler(),
            artifacts={"offset": str(tmp_path / "offset.txt")},
            input_example=(X.head(3), {"scale": 1}),
        ).model_uri
    mlflow_mod.set_tracking_uri(_uri(tracking_dir))
    models = _boosters(X, y)
    for name, uri in uris.items():
        ours = tracking.pyfunc.load_model(uri)
        theirs = mlflow.pyfunc.load_model(uri)  # MLflow reads our run's artifacts itself
        assert theirs.metadata.signature.to_dict() == ours.metadata["signature"], name
        assert theirs.metadata.get_input_schema().input_names() == list("abcd")
        np.testing.assert_allclose(
            np.asarray(theirs.predict(X.head(5))), np.asarray(ours.predict(X.head(5))), rtol=1e-6
        )
        if name != "custom":
            flavor = mlflow.lightgbm if name.startswith("lightgbm") else mlflow.xgboost
            assert type(flavor.load_model(uri)) is type(models[name])
    custom = mlflow.pyfunc.load_model(uris["custom"])
    assert custom.predict(X.head(2), params={"scale": 10}).tolist() == (
        ((X["a"].head(2) * 2 + 1) * 10).tolist()
    )
    with pytest.raises(mlflow_mod.exceptions.MlflowException, match="scale"):
        custom.predict(X.head(2), params={"scale": "big"})  # MLflow enforces our param schema


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")
@pytest.mark.filterwarnings("ignore:.*Add type hints to the `predict` method")
def test_we_load_models_mlflow_saved(mlflow_mod: Any, tmp_path: Path) -> None:
    import mlflow.lightgbm
    import mlflow.pyfunc
    import mlflow.xgboost
    import numpy as np

    import tracking.lightgbm
    import tracking.xgboost
    from tracking.models import ModelSignature, SchemaEnforcementError

    X, y = _model_data()
    (tmp_path / "offset.txt").write_text("1")

    class TheirDoubler(mlflow.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            with open(context.artifacts["offset"], encoding="utf-8") as f:
                self.offset = float(f.read())

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            # (no type hints: MLflow would try to validate the input against them)
            return (model_input["a"] * 2 + self.offset) * (params or {}).get("scale", 1)

    models = _boosters(X, y)
    for name, model in models.items():
        flavor = mlflow.lightgbm if name.startswith("lightgbm") else mlflow.xgboost
        flavor.save_model(model, str(tmp_path / name), input_example=X.head(3))
    mlflow.pyfunc.save_model(
        str(tmp_path / "custom"),
        python_model=TheirDoubler(),
        artifacts={"offset": str(tmp_path / "offset.txt")},
        input_example=(X.head(3), {"scale": 1}),
    )
    for name in [*models, "custom"]:
        theirs = mlflow.pyfunc.load_model(str(tmp_path / name))
        ours = tracking.pyfunc.load_model(tmp_path / name)
        assert ours.signature == ModelSignature.from_dict(theirs.metadata.signature.to_dict())
        np.testing.assert_allclose(
            np.asarray(ours.predict(X.head(5))), np.asarray(theirs.predict(X.head(5))), rtol=1e-6
        )
        with pytest.raises(SchemaEnforcementError, match=r"missing column\(s\) \['b'\]"):
            ours.predict(X.head(5).drop(columns=["b"]))
        if name != "custom":
            flavor = tracking.lightgbm if name.startswith("lightgbm") else tracking.xgboost
            assert type(flavor.load_model(tmp_path / name)) is type(models[name])
    custom = tracking.pyfunc.load_model(tmp_path / "custom")
    assert custom.predict(X.head(2), params={"scale": 3}).tolist() == (
        ((X["a"].head(2) * 2 + 1) * 3).tolist()
    )
