"""The store contract, written once and run against every store implementation."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import serving

from tracking.entities import LifecycleStage, Metric, Param, RunStatus, RunTag, ViewType
from tracking.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    TrackingError,
)
from tracking.servers.api import create_app
from tracking.stores.base import TrackingStore, encode_page_token
from tracking.stores.file.store import FileStore
from tracking.stores.rest.store import RestStore
from tracking.stores.sql.store import SqlStore


@pytest.fixture(params=["file", "sqlite", "postgresql", "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TrackingStore]:
    """The same contract for every store: the embedded file store, SQLite, PostgreSQL, and the
    REST store against our own tracking server (a fresh one on a file store for each test)."""
    artifacts = f"file://{tmp_path}/artifacts"
    if request.param == "rest":
        app = create_app(str(tmp_path / "server"), artifacts_destination=str(tmp_path / "proxy"))
        with serving(app) as url:
            rest = RestStore(url)
            yield rest
            rest.close()
        return
    if request.param == "sqlite":
        found: TrackingStore = SqlStore(f"sqlite:///{tmp_path / 'store.db'}", artifacts)
    elif request.param == "postgresql":
        found = SqlStore(request.getfixturevalue("postgres_uri")(), artifacts)
    else:
        found = FileStore(str(tmp_path / "store"))
    yield found
    found.close()


def new_run(store: TrackingStore, experiment_id: str = "0", name: str = "r", **kw):
    return store.create_run(experiment_id, "alice", 1000, [RunTag("t", "v")], name, **kw)


def test_default_experiment_exists(store: TrackingStore) -> None:
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert default.lifecycle_stage == LifecycleStage.ACTIVE


def test_create_and_get_experiment(store: TrackingStore) -> None:
    exp_id = store.create_experiment("exp", tags={"team": "ds"})
    exp = store.get_experiment(exp_id)
    assert (exp.name, exp.tags) == ("exp", {"team": "ds"})
    assert exp.artifact_location.endswith(f"/{exp_id}")
    assert store.get_experiment_by_name("exp").experiment_id == exp_id
    assert store.get_experiment_by_name("missing") is None


def test_duplicate_experiment_name_rejected(store: TrackingStore) -> None:
    store.create_experiment("exp")
    with pytest.raises(AlreadyExistsError, match="'exp' already exists"):
        store.create_experiment("exp")


@pytest.mark.parametrize("name", ["", "   ", None, "x" * 501])
def test_bad_experiment_names(store: TrackingStore, name: object) -> None:
    with pytest.raises(InvalidParameterError, match="xperiment name"):
        store.create_experiment(name)  # type: ignore[arg-type]


def test_missing_experiment(store: TrackingStore) -> None:
    with pytest.raises(NotFoundError, match="12345"):
        store.get_experiment("12345")
    with pytest.raises(InvalidParameterError):
        store.get_experiment("../etc")


def test_delete_and_restore_experiment(store: TrackingStore) -> None:
    exp_id = store.create_experiment("exp")
    run = new_run(store, exp_id)
    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == LifecycleStage.DELETED
    assert store.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    active = {e.name for e in store.search_experiments()}
    deleted = {e.name for e in store.search_experiments(ViewType.DELETED_ONLY)}
    assert "exp" not in active and "exp" in deleted
    with pytest.raises(AlreadyExistsError, match="deleted state"):
        store.create_experiment("exp")
    store.restore_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == LifecycleStage.ACTIVE
    assert store.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.ACTIVE


def test_default_experiment_cannot_be_deleted(store: TrackingStore) -> None:
    with pytest.raises(InvalidParameterError, match="Default"):
        store.delete_experiment("0")


def test_rename_experiment(store: TrackingStore) -> None:
    exp_id = store.create_experiment("old")
    store.create_experiment("taken")
    with pytest.raises(AlreadyExistsError):
        store.rename_experiment(exp_id, "taken")
    store.rename_experiment(exp_id, "new")
    assert store.get_experiment_by_name("new").experiment_id == exp_id
    assert store.get_experiment_by_name("old") is None


def test_experiment_tags(store: TrackingStore) -> None:
    exp_id = store.create_experiment("exp")
    store.set_experiment_tag(exp_id, RunTag("k", "v1"))
    store.set_experiment_tag(exp_id, RunTag("k", "v2"))
    assert store.get_experiment(exp_id).tags == {"k": "v2"}
    store.delete_experiment_tag(exp_id, "k")
    assert store.get_experiment(exp_id).tags == {}


def test_run_lifecycle(store: TrackingStore) -> None:
    run = new_run(store, name="first")
    info = run.info
    assert (info.status, info.run_name, info.user_id) == ("RUNNING", "first", "alice")
    assert info.artifact_uri.endswith(f"/0/{info.run_id}/artifacts")
    assert run.data.tags["mlflow.runName"] == "first"
    store.update_run_info(info.run_id, "FINISHED", 2000)
    got = store.get_run(info.run_id).info
    assert (got.status, got.start_time, got.end_time) == ("FINISHED", 1000, 2000)
    store.delete_run(info.run_id)
    assert store.get_run(info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    with pytest.raises(InvalidStateError, match="deleted"):
        store.log_metric(info.run_id, Metric("m", 1.0, 1, 0))
    store.restore_run(info.run_id)
    store.log_metric(info.run_id, Metric("m", 1.0, 1, 0))


def test_update_run_info_answers_and_refusals(store: TrackingStore) -> None:
    run_id = new_run(store, name="before").info.run_id
    info = store.update_run_info(run_id, "FAILED", 3000, "after")
    assert (info.run_id, info.status, info.end_time, info.run_name) == (
        run_id,
        "FAILED",
        3000,
        "after",
    )
    assert (info.start_time, info.user_id, info.experiment_id) == (1000, "alice", "0")
    assert store.get_run(run_id).data.tags["mlflow.runName"] == "after"
    unchanged = store.update_run_info(run_id)  # nothing to change: the current info
    assert (unchanged.status, unchanged.end_time, unchanged.run_name) == ("FAILED", 3000, "after")
    with pytest.raises(NotFoundError, match="c" * 32):
        store.update_run_info("c" * 32, "FINISHED", 1)
    with pytest.raises(NotFoundError, match="c" * 32):
        store.update_run_info("c" * 32)
    store.delete_run(run_id)
    with pytest.raises(InvalidStateError, match="deleted"):
        store.update_run_info(run_id, "FINISHED", 4000)
    with pytest.raises(InvalidStateError, match="deleted"):
        store.update_run_info(run_id)
    store.restore_run(run_id)
    assert store.get_run(run_id).info.end_time == 3000  # the refused update changed nothing


def test_create_run_needs_an_active_experiment(store: TrackingStore) -> None:
    exp_id = store.create_experiment("exp")
    store.delete_experiment(exp_id)
    with pytest.raises(InvalidStateError, match="restore it first"):
        new_run(store, exp_id)
    with pytest.raises(NotFoundError, match="12345"):
        new_run(store, "12345")
    store.restore_experiment(exp_id)
    assert store.search_runs([exp_id], run_view_type=ViewType.ALL) == []


def test_chosen_run_id(store: TrackingStore) -> None:
    run = new_run(store, run_id="a" * 32)
    assert store.get_run("a" * 32).info.run_id == run.info.run_id
    with pytest.raises(AlreadyExistsError):
        new_run(store, run_id="a" * 32)


def test_create_ended_run_writes_the_whole_run(store: TrackingStore) -> None:
    """A task run written after its body returned: one call, the run complete and ended."""
    run_id = "e" * 32
    store.create_ended_run(
        "0", "me", 1_000, [RunTag("source", "task"), RunTag("nested/tag", "x")], "step-1",
        run_id, [Param("lr", "0.1"), Param("lr", "0.1")],
        [Metric("loss", 0.5, 1_001, 0), Metric("loss", 0.25, 1_002, 1),
         Metric("nan", math.nan, 1_003, 0)],
        "FINISHED", 1_500,
    )  # fmt: skip
    run = store.get_run(run_id)
    assert (run.info.status, run.info.start_time, run.info.end_time) == ("FINISHED", 1_000, 1_500)
    assert run.info.run_name == "step-1" and run.data.tags["mlflow.runName"] == "step-1"
    assert run.data.tags["source"] == "task" and run.data.tags["nested/tag"] == "x"
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics["loss"] == 0.25 and math.isnan(run.data.metrics["nan"])
    assert [(m.value, m.step) for m in store.get_metric_history(run_id, "loss")] == [
        (0.5, 0), (0.25, 1),
    ]  # fmt: skip
    assert [r.info.run_id for r in store.search_runs(["0"], "params.lr = '0.1'")] == [run_id]
    with pytest.raises(AlreadyExistsError):
        store.create_ended_run("0", "me", 1, [], "again", run_id, [], [], "FINISHED", 2)


@pytest.mark.parametrize(
    ("params", "metrics", "status", "message"),
    [
        ([Param("lr", "0.1"), Param("lr", "0.2")], [], "FINISHED", "lr"),
        ([], [Metric("loss", "high", 1, 0)], "FINISHED", "loss"),  # type: ignore[arg-type]
        ([Param("../up", "1")], [], "FINISHED", "up"),
        ([], [], "DONE", "DONE"),
    ],
)
def test_create_ended_run_refuses_bad_input_and_writes_nothing(
    store: TrackingStore, params: list[Param], metrics: list[Metric], status: str, message: str
) -> None:
    with pytest.raises(TrackingError, match=message):
        store.create_ended_run("0", "me", 1, [], "bad", "b" * 32, params, metrics, status, 2)
    assert [r.info.run_id for r in store.search_runs(["0"], None, ViewType.ALL)] in ([], ["b" * 32])


def test_missing_run(store: TrackingStore) -> None:
    with pytest.raises(NotFoundError, match="f" * 32):
        store.get_run("f" * 32)
    with pytest.raises(InvalidParameterError):
        store.get_run("../../etc")


def test_params_are_immutable(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.log_param(run_id, Param("lr", "0.1"))
    store.log_param(run_id, Param("lr", "0.1"))
    with pytest.raises(InvalidParameterError) as err:
        store.log_param(run_id, Param("lr", "0.2"))
    assert "'lr'" in str(err.value) and "'0.1'" in str(err.value) and "'0.2'" in str(err.value)
    assert store.get_run(run_id).data.params == {"lr": "0.1"}


def test_metric_history_keeps_everything(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    values = [(0.5, 10, 0), (0.7, 11, 1), (float("nan"), 12, 2), (float("inf"), 13, 3)]
    values += [(-math.inf, 14, 4), (0.1, 15, 1)]
    for value, ts, step in values:
        store.log_metric(run_id, Metric("loss", value, ts, step))
    history = store.get_metric_history(run_id, "loss")
    got = [(m.value, m.timestamp, m.step) for m in history]
    assert len(got) == len(values)
    for (v1, t1, s1), (v2, t2, s2) in zip(got, values, strict=True):
        assert (t1, s1) == (t2, s2)
        assert (math.isnan(v1) and math.isnan(v2)) or v1 == v2
    # latest = highest step, then latest timestamp
    assert store.get_run(run_id).data.metrics["loss"] == -math.inf


@pytest.mark.parametrize("value", ["0.5", None, True, [1], object()])
def test_non_numeric_metric_rejected(store: TrackingStore, value: object) -> None:
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterError, match="'m'"):
        store.log_metric(run_id, Metric("m", value, 1, 0))  # type: ignore[arg-type]
    assert store.get_metric_history(run_id, "m") == []


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x",
        "/abs",
        "a/../../b",
        "a//b",
        "a/",
        "bad*char",
        "x" * 251,
        "a\\b",
        "a\x00b",
        "é" * 128,  # 256 bytes of UTF-8: too long for a file name
        "ok/" + "é" * 128,
        ".trackflow~1",  # the file store's temporary names can never be keys
    ],
)
def test_bad_keys_rejected(store: TrackingStore, key: str) -> None:
    run_id = new_run(store).info.run_id
    for call in (
        lambda: store.log_metric(run_id, Metric(key, 1.0, 1, 0)),
        lambda: store.log_param(run_id, Param(key, "v")),
        lambda: store.set_tag(run_id, RunTag(key, "v")),
    ):
        with pytest.raises(InvalidParameterError, match="key"):
            call()


def test_keys_with_slashes_spaces_and_colons(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.log_metric(run_id, Metric("train/loss", 1.0, 1, 0))
    store.log_param(run_id, Param("model: depth", "3"))
    store.set_tag(run_id, RunTag("a.b-c_d", "x"))
    data = store.get_run(run_id).data
    assert data.metrics["train/loss"] == 1.0
    assert data.params["model: depth"] == "3"
    assert data.tags["a.b-c_d"] == "x"


def test_value_length_limits(store: TrackingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterError, match=r"'p'.*6001.*6000"):
        store.log_param(run_id, Param("p", "x" * 6001))
    with pytest.raises(InvalidParameterError, match=r"'t'.*8001.*8000"):
        store.set_tag(run_id, RunTag("t", "x" * 8001))
    store.log_param(run_id, Param("ok", "x" * 6000))
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "true")
    with pytest.warns(UserWarning, match="truncated"):
        store.log_param(run_id, Param("p", "x" * 7000))
    assert store.get_run(run_id).data.params["p"] == "x" * 6000


def test_log_batch_is_validated_before_writing(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.log_param(run_id, Param("fixed", "1"))
    with pytest.raises(InvalidParameterError, match="fixed"):
        store.log_batch(
            run_id, [Metric("m", 1.0, 1, 0)], [Param("new", "x"), Param("fixed", "2")], []
        )
    data = store.get_run(run_id).data
    assert data.metrics == {} and data.params == {"fixed": "1"}
    with pytest.raises(InvalidParameterError, match="1001 metrics"):
        store.log_batch(run_id, [Metric("m", 1.0, 1, i) for i in range(1001)], [], [])


def test_tags_overwrite_and_delete(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.set_tag(run_id, RunTag("k", "1"))
    store.set_tag(run_id, RunTag("k", "2"))
    assert store.get_run(run_id).data.tags["k"] == "2"
    store.delete_tag(run_id, "k")
    assert "k" not in store.get_run(run_id).data.tags
    with pytest.raises(NotFoundError, match="No tag with name: k in run"):
        store.delete_tag(run_id, "k")


def test_search_runs(store: TrackingStore) -> None:
    exp_id = store.create_experiment("search")
    ids = []
    for i in range(6):
        run_id = new_run(store, exp_id, name=f"run-{i}").info.run_id
        store.log_batch(
            run_id,
            [Metric("acc", i / 10, 1, 0)],
            [Param("lr", "0.1" if i % 2 else "0.01")],
            [RunTag("parity", "odd" if i % 2 else "even")],
        )
        ids.append(run_id)
    store.delete_run(ids[5])
    found = store.search_runs([exp_id], "metrics.acc >= 0.2 and params.lr = '0.1'")
    assert {r.info.run_id for r in found} == {ids[3]}
    ordered = store.search_runs([exp_id], order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in ordered] == ids[4::-1]
    assert ordered[0].data.params == {"lr": "0.01"}
    deleted = store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [ids[5]]
    page1 = store.search_runs([exp_id], order_by=["attributes.run_name"], max_results=2)
    page2 = store.search_runs(
        [exp_id], order_by=["attributes.run_name"], max_results=2, page_token=page1.token
    )
    page3 = store.search_runs(
        [exp_id], order_by=["attributes.run_name"], max_results=2, page_token=page2.token
    )
    names = [r.info.run_name for r in [*page1, *page2, *page3]]
    assert names == [f"run-{i}" for i in range(5)]
    assert page3.token is None
    like = store.search_runs([exp_id], "tags.parity LIKE 'ev%'")
    assert len(like) == 3


def test_search_runs_bad_filter(store: TrackingStore) -> None:
    with pytest.raises(InvalidParameterError, match="position"):
        store.search_runs(["0"], "metrics.acc >")
    with pytest.raises(InvalidParameterError, match="page token"):
        store.search_runs(["0"], page_token="garbage!")


def test_run_status_values(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    for status in RunStatus:
        store.update_run_info(run_id, status.name)
        assert store.get_run(run_id).info.status == status.name
    with pytest.raises(ValueError, match="allowed"):
        store.update_run_info(run_id, "DONE")


def test_nan_ranks_lowest_for_the_latest_value(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.log_batch(run_id, [Metric("m", -1.0, 5, 1), Metric("m", float("nan"), 5, 1)], [], [])
    store.log_metric(run_id, Metric("n", float("nan"), 5, 1))
    store.log_metric(run_id, Metric("n", -2.0, 5, 1))
    assert store.get_run(run_id).data.metrics == {"m": -1.0, "n": -2.0}


def test_run_id_taken_in_another_experiment(store: TrackingStore) -> None:
    other = store.create_experiment("other")
    new_run(store, run_id="b" * 32)
    with pytest.raises(AlreadyExistsError):
        new_run(store, other, run_id="b" * 32)


# --------------------------------------------------------------------------- bad input


def test_keys_like_temporary_names_are_read_back(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.log_param(run_id, Param(".tmp-p", "1"))
    store.set_tag(run_id, RunTag(".tmp-t", "2"))
    store.log_metric(run_id, Metric(".tmp-m", 3.0, 1, 0))
    store.log_param(run_id, Param(".upload-0123456789abcdef0123456789abcdef.tmp", "4"))
    data = store.get_run(run_id).data
    assert data.params == {".tmp-p": "1", ".upload-0123456789abcdef0123456789abcdef.tmp": "4"}
    assert data.tags[".tmp-t"] == "2" and data.metrics == {".tmp-m": 3.0}


def test_long_non_ascii_keys_up_to_the_file_name_limit(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    key = "é" * 127 + "/" + "ü" * 122  # 254 and 244 bytes per part, 250 characters
    store.log_param(run_id, Param(key, "v"))
    store.log_metric(run_id, Metric(key, 1.0, 1, 0))
    assert store.get_run(run_id).data.params == {key: "v"}
    with pytest.raises(InvalidParameterError, match=r"256 bytes long in UTF-8.*at most 255"):
        store.set_tag(run_id, RunTag("é" * 128, "v"))


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [
        ("param", "a", "a/b"),
        ("param", "a/b", "a"),
        ("metric", "a", "a/b/c"),
        ("metric", "a/b/c", "a"),
        ("tag", "a/b", "a"),
        ("tag", "a", "a/b"),
    ],
)
def test_a_key_cannot_also_be_a_folder_of_keys(
    store: TrackingStore, kind: str, first: str, second: str
) -> None:
    run_id = new_run(store).info.run_id

    def log(key: str, value: str) -> None:
        if kind == "param":
            store.log_param(run_id, Param(key, value))
        elif kind == "tag":
            store.set_tag(run_id, RunTag(key, value))
        else:
            store.log_metric(run_id, Metric(key, float(value), 1, 0))

    log(first, "1")
    with pytest.raises(InvalidParameterError, match=f"'{second}' clashes with '{first}'"):
        log(second, "2")
    batch = {"param": ([], [Param(second, "2")], []), "tag": ([], [], [RunTag(second, "2")])}
    with pytest.raises(InvalidParameterError, match="clashes"):
        store.log_batch(run_id, *batch.get(kind, ([Metric(second, 2.0, 1, 0)], [], [])))
    data = store.get_run(run_id).data
    assert {"param": data.params, "tag": data.tags, "metric": data.metrics}[kind][first] in (
        "1",
        1.0,
    )
    assert second not in data.params and second not in data.tags and second not in data.metrics
    log("other/" + second, "3")  # other folders and other kinds of keys are free
    if kind != "param":
        store.log_param(run_id, Param(second, "4"))


def test_keys_clashing_inside_one_batch_write_nothing(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterError, match="'x' and 'x/y'"):
        store.log_batch(run_id, [Metric("m", 1.0, 1, 0)], [Param("x", "1"), Param("x/y", "2")], [])
    with pytest.raises(InvalidParameterError, match="'t' and 't/u'"):
        store.create_run("0", "u", 1, [RunTag("t", "1"), RunTag("t/u", "2")], "r")
    with pytest.raises(InvalidParameterError, match="'e' and 'e/f'"):
        store.create_experiment("clash", tags={"e/f": "1", "e": "2"})
    assert store.get_run(run_id).data.metrics == {}
    assert store.get_experiment_by_name("clash") is None
    exp_id = store.create_experiment("tagged", tags={"e": "1"})
    with pytest.raises(InvalidParameterError, match="clashes"):
        store.set_experiment_tag(exp_id, RunTag("e/f", "2"))
    assert store.get_experiment(exp_id).tags == {"e": "1"}


def test_a_deleted_folder_of_tags_frees_its_name(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    store.set_tag(run_id, RunTag("a/b", "1"))
    store.delete_tag(run_id, "a/b")
    store.set_tag(run_id, RunTag("a", "2"))
    assert store.get_run(run_id).data.tags["a"] == "2"


@pytest.mark.parametrize(
    ("step", "timestamp", "message"),
    [
        (2**63, 1, r"step 9223372036854775808 is out of range.*64-bit"),
        (-(2**63) - 1, 1, "step -9223372036854775809 is out of range"),
        (0, 2**63, r"timestamp \(milliseconds\) 9223372036854775808 is out of range"),
        (0, -1, r"timestamp .* -1 is out of range: it must be a 64-bit integer in 0\.\."),
        (1.5, 1, "step must be an integer, got 1.5"),
    ],
)
def test_steps_and_timestamps_are_64_bit_integers(
    store: TrackingStore, step: int, timestamp: int, message: str
) -> None:
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterError, match=message):
        store.log_metric(run_id, Metric("m", 1.0, timestamp, step))
    with pytest.raises(InvalidParameterError, match=message):
        store.log_batch(run_id, [Metric("m", 1.0, timestamp, step)], [], [])
    store.log_metric(run_id, Metric("m", 1.0, 2**63 - 1, -(2**63)))  # the extremes fit
    history = store.get_metric_history(run_id, "m")
    assert [(m.timestamp, m.step) for m in history] == [(2**63 - 1, -(2**63))]


def test_metric_values_beyond_a_double_are_refused(store: TrackingStore) -> None:
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterError, match=r"'m' value .* 64-bit float"):
        store.log_metric(run_id, Metric("m", 10**400, 1, 0))
    store.log_metric(run_id, Metric("m", 10**300, 1, 0))  # an int a double holds
    assert store.get_run(run_id).data.metrics["m"] == 1e300


def test_run_times_names_and_users_are_bounded(store: TrackingStore) -> None:
    with pytest.raises(InvalidParameterError, match=r"start_time .* out of range"):
        store.create_run("0", "u", 2**63, [], "r")
    with pytest.raises(InvalidParameterError, match=r"Run name .* 251 characters long"):
        store.create_run("0", "u", 1, [], "r" * 251)
    with pytest.raises(InvalidParameterError, match=r"User id .* 257 characters long"):
        store.create_run("0", "u" * 257, 1, [], "r")
    with pytest.raises(InvalidParameterError, match="Invalid run id"):
        store.create_run("0", "u", 1, [], "r", run_id="a" * 256)
    longest = 255
    if store.mlflow_store_type == "SqlStore":  # MLflow's SQL schema: run ids of 32 characters
        longest = 32
        message = r"Run id 'a{33}' is 33 .* at most 32 in runs\.run_uuid"
        with pytest.raises(InvalidParameterError, match=message):
            store.create_run("0", "u", 1, [], "r", run_id="a" * 33)
    run_id = store.create_run("0", "u" * 256, 1, [], "r" * 250, run_id="a" * longest).info.run_id
    with pytest.raises(InvalidParameterError, match=r"end_time .* out of range"):
        store.update_run_info(run_id, "FINISHED", 2**63)
    with pytest.raises(InvalidParameterError, match=r"Run name .* 251 characters long"):
        store.update_run_info(run_id, run_name="n" * 251)
    info = store.get_run(run_id).info
    assert (info.status, info.end_time, info.run_name) == ("RUNNING", None, "r" * 250)


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_nul_and_unpaired_surrogates_are_refused_everywhere(store: TrackingStore, bad: str) -> None:
    run_id = new_run(store).info.run_id
    exp_id = store.create_experiment("fine")
    message = "NUL character|not valid Unicode text"
    for call in (
        lambda: store.log_param(run_id, Param("p", bad)),
        lambda: store.set_tag(run_id, RunTag("t", bad)),
        lambda: store.log_batch(run_id, [], [Param("q", bad)], []),
        lambda: store.create_experiment(bad),
        lambda: store.create_experiment("loc", artifact_location=f"/tmp/{bad}"),
        lambda: store.rename_experiment(exp_id, bad),
        lambda: store.set_experiment_tag(exp_id, RunTag("t", bad)),
        lambda: store.create_run("0", bad, 1, [], "r"),
        lambda: store.create_run("0", "u", 1, [], bad),
        lambda: store.update_run_info(run_id, run_name=bad),
        lambda: store.search_runs(["0"], f"params.p = '{bad}'"),
        lambda: store.search_runs(["0"], order_by=[f"params.`{bad}`"]),
        lambda: store.search_experiments(filter_string=f"name = '{bad}'"),
    ):
        with pytest.raises(InvalidParameterError, match=message):
            call()
    assert store.get_experiment_by_name(bad) is None
    data = store.get_run(run_id).data
    assert (data.params, set(data.tags)) == ({}, {"t", "mlflow.runName"})


def test_search_limits_are_stated(store: TrackingStore) -> None:
    def terms(n: int) -> str:
        return " and ".join(f"params.p{i} = 'x'" for i in range(n))

    assert store.search_runs(["0"], terms(50), order_by=[f"metrics.m{i}" for i in range(10)]) == []
    with pytest.raises(InvalidParameterError, match="at most 50 comparisons"):
        store.search_runs(["0"], terms(51))
    with pytest.raises(InvalidParameterError, match="at most 10 are allowed"):
        store.search_runs(["0"], order_by=[f"metrics.m{i}" for i in range(11)])
    many = ", ".join(f"'{i}'" for i in range(10_001))
    with pytest.raises(InvalidParameterError, match="at most 10000 values"):
        store.search_runs(["0"], f"params.p IN ({many})")
    with pytest.raises(InvalidParameterError, match="within the 64-bit range"):
        store.search_runs(["0"], f"attributes.start_time > {2**63}")
    for offset in (2**63, 10**30):
        token = encode_page_token(offset)
        with pytest.raises(InvalidParameterError, match=r"offset must be an integer in 0\.\."):
            store.search_runs(["0"], page_token=token)
        with pytest.raises(InvalidParameterError, match="offset must be an integer"):
            store.search_experiments(page_token=token)
    assert list(store.search_runs(["0"], page_token=encode_page_token(2**62))) == []


@pytest.mark.parametrize("experiment_id", [str(2**63), "9" * 60])
def test_experiment_ids_beyond_64_bits_do_not_exist(
    store: TrackingStore, experiment_id: str
) -> None:
    with pytest.raises(NotFoundError, match=experiment_id):
        store.get_experiment(experiment_id)
    with pytest.raises(NotFoundError, match=experiment_id):
        new_run(store, experiment_id)
    assert store.search_runs([experiment_id]) == []


# --------------------------------------------------------------------------- run names


def test_the_run_name_tag_renames_the_run(store: TrackingStore) -> None:
    """As in MLflow: setting mlflow.runName, alone or in a batch, renames the run."""
    exp_id = store.create_experiment("names")
    run_id = new_run(store, exp_id, name="first").info.run_id
    store.set_tag(run_id, RunTag("mlflow.runName", "second"))
    run = store.get_run(run_id)
    assert (run.info.run_name, run.data.tags["mlflow.runName"]) == ("second", "second")
    store.log_batch(run_id, [Metric("m", 1.0, 1, 0)], [], [RunTag("mlflow.runName", "third")])
    run = store.get_run(run_id)
    assert (run.info.run_name, run.data.tags["mlflow.runName"]) == ("third", "third")
    found = store.search_runs([exp_id], "attributes.run_name = 'third'")
    assert [r.info.run_id for r in found] == [run_id]
    assert store.search_runs([exp_id], "attributes.run_name = 'first'") == []
    for bad in (
        lambda: store.set_tag(run_id, RunTag("mlflow.runName", "n" * 251)),
        lambda: store.log_batch(run_id, [], [], [RunTag("mlflow.runName", "n" * 251)]),
    ):
        with pytest.raises(InvalidParameterError, match="Run name"):
            bad()
    assert store.get_run(run_id).info.run_name == "third"
    store.update_run_info(run_id, run_name="fourth")
    run = store.get_run(run_id)
    assert (run.info.run_name, run.data.tags["mlflow.runName"]) == ("fourth", "fourth")


def test_log_batch_refuses_more_than_mlflows_limits(store: TrackingStore) -> None:
    """Every store refuses an oversized batch whole (log_all splits one instead)."""
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterError, match="101 params"):
        store.log_batch(run_id, [], [Param(f"p{i}", "v") for i in range(101)], [])
    with pytest.raises(InvalidParameterError, match="101 tags"):
        store.log_batch(run_id, [], [], [RunTag(f"t{i}", "v") for i in range(101)])
    assert store.get_run(run_id).data.params == {}
    store.log_all(run_id, [Metric("m", 1.0, 1, i) for i in range(2500)], [], [])
    assert len(store.get_metric_history(run_id, "m")) == 2500


# --------------------------------------------------------------------------- capabilities


def _tree(store: TrackingStore) -> tuple[str, list[str]]:
    """An experiment of three top-level runs with durations 30, 10, 20 and one still running;
    the first has two children (the second of them deleted), one of which has a child."""
    exp_id = store.create_experiment("tree")
    top = []
    for i, duration in enumerate([30, 10, 20, None]):
        run_id = new_run(store, exp_id, name=f"top{i}").info.run_id  # started at 1000
        if duration is not None:
            store.update_run_info(run_id, "FINISHED", 1000 + duration)
        store.log_metric(run_id, Metric("acc", i / 10, 1, 0))
        top.append(run_id)
    child = store.create_run(exp_id, "u", 2000, [RunTag("mlflow.parentRunId", top[0])], "c1")
    gone = store.create_run(exp_id, "u", 2001, [RunTag("mlflow.parentRunId", top[0])], "c2")
    store.delete_run(gone.info.run_id)
    store.create_run(exp_id, "u", 3000, [RunTag("mlflow.parentRunId", child.info.run_id)], "g")
    return exp_id, [*top, child.info.run_id]


def test_experiment_runs_answer_the_same_on_every_store(store: TrackingStore) -> None:
    exp_id, ids = _tree(store)
    runs = store.experiment_runs(exp_id)
    assert runs.stats() == (6, 3000)
    assert store.run_stats([exp_id, "0", "123456"]) == {
        exp_id: (6, 3000),
        "0": (0, None),
        "123456": (0, None),
    }
    assert store.run_stats([exp_id], ViewType.DELETED_ONLY)[exp_id] == (1, 2001)
    assert store.run_stats([exp_id], ViewType.ALL)[exp_id].runs == 7

    def names(page: tuple[list, bool]) -> tuple[list[str], bool]:
        return [r.info.run_name for r in page[0]], page[1]

    assert names(runs.page("", "duration DESC", 0, 2, True)) == (["top0", "top2"], True)
    assert names(runs.page("", "duration ASC", 1, 5, True)) == (["top2", "top0", "top3"], False)
    assert names(runs.page("metrics.acc >= 0.1", "metrics.`acc` DESC", 0, 5, True)) == (
        ["top3", "top2", "top1"],
        False,
    )
    assert names(runs.page("", "attributes.start_time ASC", 4, 3, False)) == (["c1", "g"], False)
    with pytest.raises(InvalidParameterError, match="duration"):
        runs.page("", "duration SIDEWAYS", 0, 5, True)
    assert names(runs.descendants([ids[0]], 1, 10)) == (["c1"], False)
    assert names(runs.descendants([ids[0]], 5, 10)) == (["c1", "g"], False)
    assert names(runs.descendants([ids[4], ids[1]], 5, 10)) == (["g"], False)
    assert names(runs.descendants([ids[4], ids[0]], 5, 10)) == (["g"], False)  # each once
    assert names(runs.descendants([ids[0]], 5, 1)) == (["c1"], True)
    assert runs.descendants([], 5, 10) == ([], False)
    assert [r.info.run_name for r in store.get_runs([ids[2], "f" * 32, ids[0]])] == [
        "top2",
        "top0",
    ]


def test_hard_delete_removes_only_deleted_things(store: TrackingStore) -> None:
    exp_id = store.create_experiment("doomed")
    run_id = new_run(store, exp_id).info.run_id
    assert store.deleted_time(run_id) is None
    if not store.can_hard_delete:  # a server's store: gc runs where the data lives
        with pytest.raises(TrackingError, match="cannot remove runs for good"):
            store.hard_delete_run(run_id)
        with pytest.raises(TrackingError, match="cannot remove experiments for good"):
            store.hard_delete_experiment(exp_id)
        return
    assert not store.hard_delete_run(run_id)  # not deleted: kept
    before = int(time.time() * 1000)
    store.delete_run(run_id)
    deleted = store.deleted_time(run_id)
    assert deleted is not None and before <= deleted <= int(time.time() * 1000)
    store.delete_experiment(exp_id)
    assert not store.hard_delete_experiment(exp_id)  # a run is left in it
    assert store.hard_delete_run(run_id)
    with pytest.raises(NotFoundError):
        store.get_run(run_id)
    assert not store.hard_delete_run(run_id)  # gone already
    assert store.hard_delete_experiment(exp_id)
    with pytest.raises(NotFoundError):
        store.get_experiment(exp_id)
    assert not store.hard_delete_experiment(exp_id)
    assert store.get_experiment_by_name("doomed") is None
    store.create_experiment("doomed")  # the name is free again
