"""`trackflow` commands that change things: experiments create/delete, runs delete, artifacts
list/download, models list/versions/transition, and gc (file store, SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import create_engine, text

import tracking
import tracking.admin.gc
import tracking.sklearn
from tracking import TrackingClient, registry
from tracking.cli import main
from tracking.errors import NotFoundError
from tracking.uris import local_path

Capsys = pytest.CaptureFixture[str]


def run_cli(capsys: Capsys, *args: str, code: int = 0) -> tuple[str, str]:
    """Run `trackflow ARGS`; assert its exit code; (stdout, stderr). Tables must not wrap
    run ids: the console is made wide."""
    assert main(list(args)) == code, capsys.readouterr()
    out, err = capsys.readouterr()
    if code:
        assert err.startswith("trackflow: error: ") and err.count("\n") == 1, err
    return out, err


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def store_uri(tracking_dir: Path) -> str:
    uri = str(tracking_dir)
    tracking.set_tracking_uri(uri)
    return uri


def _artifacts_dir(run_id: str, uri: str) -> str:
    path = local_path(TrackingClient(uri).get_run(run_id).info.artifact_uri)
    assert path is not None
    return path


def _run_with_artifacts(name: str, experiment_id: str | None = None) -> str:
    with tracking.start_run(run_name=name, experiment_id=experiment_id) as run:
        tracking.log_param("p", 1)
        tracking.log_metric("m", 0.5)
        tracking.log_text(f"{name}\n", "notes/readme.txt")
        tracking.log_dict({"name": name}, "config.json")
    return run.info.run_id


# --- experiments and runs ----------------------------------------------------------------------
def test_experiments_create_and_delete(store_uri: str, capsys: Capsys, tmp_path: Path) -> None:
    out, _ = run_cli(capsys, "experiments", "create", "exp-a", "--tracking-uri", store_uri)
    created = tracking.get_experiment_by_name("exp-a")
    assert created is not None
    assert "Created experiment" in out and "exp-a" in out and created.experiment_id in out

    run_cli(capsys, "experiments", "create", "exp-b", "--artifact-location", "art")
    exp_b = tracking.get_experiment_by_name("exp-b")
    assert exp_b is not None
    assert exp_b.artifact_location == (tmp_path / "art").as_uri()  # absolute, not ./art

    _, err = run_cli(capsys, "experiments", "create", "exp-a", code=1)
    assert "already exists" in err

    out, _ = run_cli(capsys, "experiments", "delete", "exp-a")
    assert "Deleted experiment" in out and "deleted" in out and "trackflow gc" in out
    out, _ = run_cli(capsys, "experiments", "delete", exp_b.experiment_id)  # by id
    assert "exp-b" in out
    out, _ = run_cli(capsys, "experiments", "list")
    assert "exp-a" not in out and "exp-b" not in out and "Default" in out
    _, err = run_cli(capsys, "experiments", "delete", "no-such-experiment", code=1)
    assert "No experiment with name or id 'no-such-experiment'" in err
    _, err = run_cli(capsys, "experiments", "delete", "exp-a", code=1)
    assert "already deleted" in err
    _, err = run_cli(capsys, "experiments", "delete", "0", code=1)
    assert "cannot be deleted" in err


def test_runs_delete(store_uri: str, capsys: Capsys) -> None:
    tracking.set_experiment("runs-exp")
    kept, gone = _run_with_artifacts("kept"), _run_with_artifacts("gone")
    out, _ = run_cli(capsys, "runs", "delete", gone, "--tracking-uri", store_uri)
    assert gone in out and "deleted" in out
    assert tracking.get_run(gone).info.lifecycle_stage == "deleted"
    out, _ = run_cli(capsys, "runs", "list", "-e", "runs-exp", "--full-ids")
    assert kept in out and gone not in out
    _, err = run_cli(capsys, "runs", "delete", "f" * 32, code=1)
    assert "not found" in err


# --- artifacts ---------------------------------------------------------------------------------
@pytest.fixture
def artifact_run(store_uri: str) -> str:
    with tracking.start_run() as run:
        tracking.log_text("top", "a.txt")
        tracking.log_text("b" * 2000, "dir/b.txt")
        tracking.log_text("c", "dir/sub/c.txt")
    return run.info.run_id


def test_artifacts_list(artifact_run: str, capsys: Capsys) -> None:
    out, _ = run_cli(capsys, "artifacts", "list", artifact_run)
    assert "a.txt" in out and "dir/" in out and "dir/b.txt" not in out and "2 artifacts" in out
    out, _ = run_cli(capsys, "artifacts", "list", artifact_run, "dir")
    assert "dir/b.txt" in out and "2.0 KB" in out and "dir/sub/" in out and "file" in out
    out, _ = run_cli(capsys, "artifacts", "list", artifact_run, "missing")
    assert "0 artifacts" in out
    _, err = run_cli(capsys, "artifacts", "list", artifact_run, "../etc", code=1)
    assert "Invalid artifact path" in err


def test_artifacts_download(
    artifact_run: str, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = tmp_path / "all"
    out, _ = run_cli(capsys, "artifacts", "download", artifact_run, "--dst", str(everything))
    assert (everything / "a.txt").read_text() == "top"
    assert (everything / "dir" / "sub" / "c.txt").read_text() == "c"
    assert "3" in out and str(everything) in out

    folder = tmp_path / "folder"
    run_cli(capsys, "artifacts", "download", artifact_run, "dir", "--dst", str(folder))
    assert (folder / "dir" / "b.txt").read_text() == "b" * 2000
    assert not (folder / "a.txt").exists()

    single = tmp_path / "single"
    out, _ = run_cli(
        capsys, "artifacts", "download", artifact_run, "dir/b.txt", "--dst", str(single)
    )
    assert (single / "dir" / "b.txt").is_file() and "2.0 KB" in out

    # Without --dst: a new temp folder, printed; with a progress bar once downloads are large.
    monkeypatch.setattr("tracking.cli.artifacts.PROGRESS_MIN_BYTES", 0)
    out, _ = run_cli(capsys, "artifacts", "download", artifact_run)
    printed = next(line for line in out.splitlines() if "trackflow-artifacts-" in line)
    target = printed.split("│")[-2].strip()
    assert (Path(target) / "dir" / "sub" / "c.txt").is_file()

    _, err = run_cli(capsys, "artifacts", "download", artifact_run, "nope.txt", code=1)
    assert "does not exist" in err
    (tmp_path / "a-file").write_text("")
    _, err = run_cli(
        capsys, "artifacts", "download", artifact_run, "--dst", str(tmp_path / "a-file"), code=1
    )
    assert "Cannot write the download to" in err
    _, err = run_cli(capsys, "artifacts", "download", "0" * 32, code=1)
    assert "not found" in err


# --- model registry ----------------------------------------------------------------------------
def test_models_list_versions_transition(store_uri: str, capsys: Capsys) -> None:
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    for _ in range(3):
        with tracking.start_run():
            tracking.sklearn.log_model(
                LogisticRegression().fit(X, y), "model", registered_model_name="clf"
            )
    client = TrackingClient(store_uri)
    client.set_registered_model_alias("clf", "champion", 2)
    client.create_registered_model("empty-model", description="nothing yet")

    out, _ = run_cli(capsys, "models", "list", "--tracking-uri", store_uri)
    assert "2 registered models" in out and "clf" in out and "empty-model" in out
    assert "v3 None" in out and "@champion -> v2" in out and "nothing yet" in out
    out, _ = run_cli(capsys, "models", "list", "--filter", "name = 'clf'")
    assert "1 registered models" in out and "empty-model" not in out

    out, _ = run_cli(capsys, "models", "versions", "clf")
    assert "3 versions of clf" in out and "champion" in out
    lines = [line for line in out.splitlines() if "│" in line and "None" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["3", "2", "1"]

    out, _ = run_cli(capsys, "models", "transition", "clf", "1", "production")
    assert "clf v1 -> Production" in out
    out, _ = run_cli(capsys, "models", "transition", "clf", "2", "Production", "--archive-existing")
    assert "clf v2 -> Production" in out and "Archived" in out  # v1, archived, shown too
    stages = {v.version: v.current_stage for v in client.search_model_versions("name = 'clf'")}
    assert stages == {1: "Archived", 2: "Production", 3: "None"}

    _, err = run_cli(capsys, "models", "transition", "clf", "3", "Live", code=1)
    assert "allowed: None, Staging, Production, Archived" in err
    _, err = run_cli(capsys, "models", "transition", "clf", "9", "Staging", code=1)
    assert "not found" in err
    _, err = run_cli(capsys, "models", "versions", "nope", code=1)
    assert "name=nope not found" in err


# --- gc ----------------------------------------------------------------------------------------
@pytest.fixture(params=["file", "sqlite", "postgresql"])
def gc_store(request: pytest.FixtureRequest, tracking_dir: Path) -> Iterator[str]:
    """A tracking URI of each store kind, active for the fluent API; yields the URI."""
    if request.param == "file":
        uri = str(tracking_dir)
    elif request.param == "sqlite":
        uri = f"sqlite:///{tracking_dir.parent / 'store.db'}"
    else:
        uri = request.getfixturevalue("postgres_uri")()
    tracking.set_tracking_uri(uri)
    yield uri
    registry.set_registry_uri(None)


def _sql_rows(uri: str, run_id: str) -> int:
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return sum(
                conn.execute(
                    text(f"SELECT COUNT(*) FROM {table} WHERE run_uuid = :r"), {"r": run_id}
                ).scalar_one()
                for table in ("runs", "params", "tags", "metrics", "latest_metrics")
            )
    finally:
        engine.dispose()


def _assert_gone(uri: str, run_id: str, artifacts: str) -> None:
    with pytest.raises(NotFoundError):
        TrackingClient(uri).get_run(run_id)
    assert not os.path.exists(artifacts)
    assert not os.path.exists(os.path.dirname(artifacts))  # nor the emptied <run_id>/ folder
    if not uri.startswith(("sqlite", "postgresql")):
        assert not list(Path(uri).glob(f"*/{run_id}")) and not list(
            Path(uri).glob(f".trash/*/{run_id}")
        )
    else:
        assert _sql_rows(uri, run_id) == 0


def _assert_intact(uri: str, run_id: str, artifacts: str) -> None:
    run = TrackingClient(uri).get_run(run_id)
    assert run.data.params == {"p": "1"} and run.data.metrics == {"m": 0.5}
    assert os.path.isfile(os.path.join(artifacts, "notes", "readme.txt"))


def test_gc_removes_deleted_runs_and_their_artifacts(gc_store: str, capsys: Capsys) -> None:
    tracking.set_experiment("gc-exp")
    kept, gone, also_gone = (_run_with_artifacts(n) for n in ("kept", "gone", "also-gone"))
    dirs = {r: _artifacts_dir(r, gc_store) for r in (kept, gone, also_gone)}
    client = TrackingClient(gc_store)
    client.delete_run(gone)
    client.delete_run(also_gone)

    out, err = run_cli(capsys, "gc", "--tracking-uri", gc_store)
    assert "Removed 2 runs" in out and gone in out and also_gone in out and kept not in out
    assert "runs removed" in out and err == ""
    _assert_gone(gc_store, gone, dirs[gone])
    _assert_gone(gc_store, also_gone, dirs[also_gone])
    _assert_intact(gc_store, kept, dirs[kept])
    out, _ = run_cli(
        capsys, "runs", "list", "-e", "gc-exp", "--full-ids", "--tracking-uri", gc_store
    )
    assert kept in out

    out, _ = run_cli(capsys, "gc", "--tracking-uri", gc_store)  # nothing left to do
    assert "Removed" not in out and "runs removed" in out and "│ 0" in out


def test_gc_older_than(gc_store: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    tracking.set_experiment("gc-age")
    kept, gone = _run_with_artifacts("kept"), _run_with_artifacts("gone")
    gone_dir = _artifacts_dir(gone, gc_store)
    TrackingClient(gc_store).delete_run(gone)

    out, _ = run_cli(capsys, "gc", "--older-than", "1d", "--tracking-uri", gc_store)
    assert "Removed" not in out
    assert TrackingClient(gc_store).get_run(gone).info.lifecycle_stage == "deleted"
    assert os.path.isdir(gone_dir)
    _, err = run_cli(capsys, "gc", "--older-than", "1d", "--run-ids", gone, code=1)
    assert "deleted less than 1d ago" in err and "Nothing was removed" in err

    later = int(time.time() * 1000) + 2 * 86_400_000  # two days from now
    monkeypatch.setattr(tracking.admin.gc, "now_ms", lambda: later)
    out, _ = run_cli(capsys, "gc", "--older-than", "1d12h", "--tracking-uri", gc_store)
    assert "Removed 1 runs" in out and gone in out
    _assert_gone(gc_store, gone, gone_dir)
    _assert_intact(gc_store, kept, _artifacts_dir(kept, gc_store))

    _, err = run_cli(capsys, "gc", "--older-than", "yesterday", code=1)
    assert "Invalid --older-than 'yesterday'" in err and "30d" in err


def test_gc_deleted_experiments(gc_store: str, capsys: Capsys) -> None:
    exp_id = tracking.create_experiment("doomed")
    first, second = _run_with_artifacts("first", exp_id), _run_with_artifacts("second", exp_id)
    dirs = {r: _artifacts_dir(r, gc_store) for r in (first, second)}
    survivor = tracking.create_experiment("survivor")
    kept = _run_with_artifacts("kept", survivor)
    client = TrackingClient(gc_store)
    client.delete_experiment(exp_id)

    # Only one run asked for: the experiment stays while the other run is in it.
    out, _ = run_cli(capsys, "gc", "--run-ids", first, "--tracking-uri", gc_store)
    assert "Removed 1 runs" in out
    _assert_gone(gc_store, first, dirs[first])
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"

    _, err = run_cli(capsys, "gc", "--experiment-ids", survivor, code=1)
    assert "is not deleted" in err
    out, _ = run_cli(capsys, "gc", "--experiment-ids", exp_id, "--tracking-uri", gc_store)
    assert "Removed 1 runs" in out and "Removed 1 experiments" in out and "doomed" in out
    _assert_gone(gc_store, second, dirs[second])
    with pytest.raises(NotFoundError):
        client.get_experiment(exp_id)
    assert client.get_experiment_by_name("doomed") is None
    if not gc_store.startswith(("sqlite", "postgresql")):
        assert not (Path(gc_store) / ".trash" / exp_id).exists()
    _assert_intact(gc_store, kept, _artifacts_dir(kept, gc_store))
    client.create_experiment("doomed")  # the name is free again


def test_gc_refuses_active_and_unknown_runs(store_uri: str, capsys: Capsys) -> None:
    active, deleted = _run_with_artifacts("active"), _run_with_artifacts("deleted")
    tracking.delete_run(deleted)
    _, err = run_cli(capsys, "gc", "--run-ids", f"{deleted},{active}", code=1)
    assert f"run {active} is not deleted" in err and "Nothing was removed" in err
    assert tracking.get_run(deleted).info.lifecycle_stage == "deleted"  # not half done
    _, err = run_cli(capsys, "gc", "--run-ids", "0" * 32, code=1)
    assert "does not exist" in err
    _, err = run_cli(capsys, "gc", "--tracking-uri", "http://127.0.0.1:9", code=1)
    assert "direct access to the backend store" in err


def test_gc_dry_run_and_many_runs(
    store_uri: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [_run_with_artifacts(f"r{i}") for i in range(4)]
    for run_id in runs:
        tracking.delete_run(run_id)
    out, _ = run_cli(capsys, "gc", "--dry-run")
    assert "Would remove 4 runs" in out and "dry run: nothing removed" in out
    assert all(tracking.get_run(r).info.lifecycle_stage == "deleted" for r in runs)
    out, _ = run_cli(capsys, "gc", "--max-rows", "2", "--run-ids", *runs[:3])
    assert "Removed 3 runs (first 2 shown)" in out
    out, _ = run_cli(capsys, "gc", "--no-progress")
    assert "Removed 1 runs" in out and runs[3] in out


def test_gc_warns_about_registered_versions(store_uri: str, capsys: Capsys) -> None:
    with tracking.start_run() as run:
        tracking.sklearn.log_model(
            LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model", registered_model_name="reg"
        )
    tracking.delete_run(run.info.run_id)
    out, err = run_cli(capsys, "gc")
    assert "Removed 1 runs" in out
    assert "registered model version reg/1 was made from run" in err


def test_gc_proxied_artifacts_need_the_destination(
    store_uri: str, capsys: Capsys, tmp_path: Path
) -> None:
    """Runs logged through a tracking server's artifact proxy (mlflow-artifacts:/ URIs)."""
    client = TrackingClient(store_uri)
    exp_id = client.create_experiment("proxied", artifact_location="mlflow-artifacts:/proxied")
    run_id = client.create_run(exp_id).info.run_id
    files = tmp_path / "mlartifacts" / "proxied" / run_id / "artifacts"
    files.mkdir(parents=True)
    (files / "x.txt").write_text("x")
    client.delete_run(run_id)

    out, err = run_cli(capsys, "gc")  # where are they? the run is kept, with a hint
    assert "runs skipped" in out and "--artifacts-destination" in err
    assert client.get_run(run_id).info.lifecycle_stage == "deleted" and files.is_dir()
    out, _ = run_cli(capsys, "gc", "--artifacts-destination", str(tmp_path / "mlartifacts"))
    assert "Removed 1 runs" in out
    assert not files.parent.exists() and (tmp_path / "mlartifacts" / "proxied").is_dir()


def test_gc_function_api(tracking_dir: Path) -> None:
    uri = f"sqlite:///{tracking_dir.parent / 'api.db'}"
    tracking.set_tracking_uri(uri)
    run_id = _run_with_artifacts("x")
    tracking.delete_run(run_id)
    report = tracking.admin.gc.gc(uri, run_ids=[run_id])
    assert [r.run_id for r in report.runs] == [run_id] and report.artifact_folders == 1
    assert dict(report.summary_rows())["runs removed"] == "1"
    assert tracking.admin.gc.parse_older_than("1d2h3m4.5s") == ((26 * 60 + 3) * 60 + 4.5) * 1000


def test_runs_list_fits_the_terminal(
    tracking_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An 80-column terminal gets readable columns (never 3-letter stubs) and a note naming
    what did not fit; the sort key comes right after the fixed columns."""
    tracking.set_experiment("wide")
    for i in range(3):
        with tracking.start_run(run_name=f"training-run-number-{i}"):
            tracking.log_params({f"param_{k}": f"value-{k}-{i}" for k in range(8)})
            tracking.log_metrics({"accuracy": 0.9 + i / 100, "zz_loss": 1.0 / (i + 1)})
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["runs", "list", "-e", "wide", "--order-by", "metrics.zz_loss ASC"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert all(f"training-run-number-{i}" in out for i in range(3))
    header = next(line for line in lines if "status" in line)
    assert "zz_loss" in header  # the sort key first
    note = " ".join(out.split())  # rich wraps the note at the terminal's width
    assert "more columns do not fit (accuracy, param_0" in note and "runs describe RUN_ID" in note

    monkeypatch.setenv("COLUMNS", "400")
    assert main(["runs", "list", "-e", "wide", "--full-ids"]) == 0
    out = capsys.readouterr().out
    run_ids = [r.info.run_id for r in tracking.search_runs(experiment_names=["wide"])]
    assert all(run_id in out for run_id in run_ids)
    assert "do not fit" not in out
