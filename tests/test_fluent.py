"""The module-level API: runs, nesting, contexts, environment variables, system tags."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path

import pytest

import tracking
from tracking.errors import InvalidStateError, NotFoundError


def test_start_run_context_manager_finishes(tracking_dir: Path) -> None:
    with tracking.start_run(run_name="lr-model-v1", description="first try") as run:
        assert tracking.active_run().info.run_id == run.info.run_id
    assert tracking.active_run() is None
    got = tracking.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.end_time >= got.info.start_time
    assert got.info.run_name == "lr-model-v1"
    tags = got.data.tags
    assert tags["mlflow.runName"] == "lr-model-v1"
    assert tags["mlflow.note.content"] == "first try"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] and tags["mlflow.source.name"]
    assert tracking.last_active_run().info.run_id == run.info.run_id
    assert (tracking_dir / "0" / run.info.run_id / "meta.yaml").is_file()


def test_exception_marks_run_failed_and_reraises() -> None:
    with pytest.raises(ZeroDivisionError), tracking.start_run() as run:
        1 / 0  # noqa: B018
    assert tracking.get_run(run.info.run_id).info.status == "FAILED"
    assert tracking.active_run() is None


def test_second_top_level_run_is_refused() -> None:
    with tracking.start_run() as run:
        with pytest.raises(InvalidStateError, match=run.info.run_id):
            tracking.start_run()
        with (
            tracking.start_run(nested=True) as child,
            tracking.start_run(nested=True) as grandchild,
        ):
            pass
    assert tracking.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == run.info.run_id
    tags = tracking.get_run(grandchild.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == child.info.run_id


def test_end_run_and_statuses() -> None:
    run = tracking.start_run()
    tracking.end_run("KILLED")
    assert tracking.get_run(run.info.run_id).info.status == "KILLED"
    tracking.end_run()  # nothing active: no error
    with pytest.raises(ValueError, match="allowed"):
        tracking.start_run()
        tracking.end_run("WHATEVER")
    tracking.end_run()


def test_resume_run_by_id() -> None:
    with tracking.start_run() as run:
        tracking.log_param("a", 1)
    with tracking.start_run(run_id=run.info.run_id):
        tracking.log_metric("m", 2.0)
    got = tracking.get_run(run.info.run_id)
    assert got.data.params == {"a": "1"} and got.data.metrics == {"m": 2.0}
    assert got.info.status == "FINISHED"


def test_mlflow_run_id_env_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    with tracking.start_run() as run:
        pass
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    with tracking.start_run() as resumed:
        assert resumed.info.run_id == run.info.run_id
    assert "MLFLOW_RUN_ID" not in os.environ


def test_logging_without_run_in_main_thread_starts_one() -> None:
    tracking.log_metric("auto", 1.0)
    run = tracking.active_run()
    assert run is not None
    tracking.end_run()
    assert tracking.get_run(run.info.run_id).data.metrics == {"auto": 1.0}


def test_worker_thread_without_run_gets_clear_error() -> None:
    with tracking.start_run(), ThreadPoolExecutor(1) as pool:
        future = pool.submit(tracking.log_metric, "m", 1.0)
        with pytest.raises(InvalidStateError, match="No active run in this thread"):
            future.result()


def test_thread_runs_are_isolated_and_parent_run_id_works_anywhere() -> None:
    results: dict[str, str] = {}
    with tracking.start_run() as parent:

        def work(i: int) -> None:
            assert tracking.active_run() is None  # an unrelated thread sees no run
            with tracking.start_run(parent_run_id=parent.info.run_id, run_name=f"w{i}") as r:
                tracking.log_metric("i", i)
                results[f"w{i}"] = r.info.run_id

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert tracking.active_run().info.run_id == parent.info.run_id
    for i in range(4):
        child = tracking.get_run(results[f"w{i}"])
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.metrics == {"i": float(i)}
        assert child.info.experiment_id == parent.info.experiment_id


def test_copied_context_carries_the_active_run_into_threads() -> None:
    with tracking.start_run() as parent, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(copy_context().run, _nested_child, i) for i in range(8)]
        child_ids = [f.result() for f in futures]
    for child_id in child_ids:
        assert tracking.get_run(child_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def _nested_child(i: int) -> str:
    with tracking.start_run(nested=True) as child:
        tracking.log_param("i", i)
        return child.info.run_id


def test_asyncio_tasks_on_one_thread_have_their_own_runs() -> None:
    async def job(i: int) -> str:
        with tracking.start_run(run_name=f"job-{i}") as run:
            for step in range(3):
                tracking.log_metric("step", step, step=step)
                await asyncio.sleep(0)
            tracking.log_param("job", i)
            assert tracking.active_run().info.run_id == run.info.run_id
            return run.info.run_id

    async def main() -> list[str]:
        return await asyncio.gather(*(job(i) for i in range(5)))

    run_ids = asyncio.run(main())
    assert len(set(run_ids)) == 5
    for i, run_id in enumerate(run_ids):
        run = tracking.get_run(run_id)
        assert run.data.params == {"job": str(i)}
        assert run.info.status == "FINISHED"
        assert len(tracking.MlflowClient().get_metric_history(run_id, "step")) == 3


def test_set_experiment_and_env_experiment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    exp = tracking.set_experiment("my-experiment")
    with tracking.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    assert tracking.set_experiment("my-experiment").experiment_id == exp.experiment_id


def test_mlflow_experiment_name_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with tracking.start_run() as run:
        pass
    assert tracking.get_experiment(run.info.experiment_id).name == "from-env"


def test_set_experiment_refuses_deleted() -> None:
    exp_id = tracking.create_experiment("gone")
    tracking.delete_experiment(exp_id)
    with pytest.raises(InvalidStateError, match="restore"):
        tracking.set_experiment("gone")
    tracking.restore_experiment(exp_id)
    assert tracking.set_experiment("gone").experiment_id == exp_id


def test_tracking_uri_env_and_setter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "elsewhere"))
    assert tracking.get_tracking_uri() == "file://" + str(tmp_path / "elsewhere")
    with tracking.start_run() as run:
        pass
    assert (tmp_path / "elsewhere" / "0" / run.info.run_id).is_dir()
    tracking.set_tracking_uri(tmp_path / "third")
    assert os.environ["MLFLOW_TRACKING_URI"] == "file://" + str(tmp_path / "third")
    with tracking.start_run() as run2:
        pass
    assert (tmp_path / "third" / "0" / run2.info.run_id).is_dir()


def test_artifact_root_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", "memory://bucket/prefix")
    exp_id = tracking.create_experiment("remote-artifacts")
    assert tracking.get_experiment(exp_id).artifact_location == f"memory://bucket/prefix/{exp_id}"
    with tracking.start_run(experiment_id=exp_id) as run:
        tracking.log_text("hello", "notes/hello.txt")
    uri = run.info.artifact_uri
    assert uri == f"memory://bucket/prefix/{exp_id}/{run.info.run_id}/artifacts"
    files = tracking.MlflowClient().list_artifacts(run.info.run_id, "notes")
    assert [f.path for f in files] == ["notes/hello.txt"]


def test_git_commit_tag_inside_a_work_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text(
        "import tracking\nwith tracking.start_run() as run:\n    print(run.info.run_id)\n"
    )
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()
    tags = tracking.get_run(out).data.tags
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.name"] == str(script)


def test_log_params_metrics_tags_batch() -> None:
    with tracking.start_run() as run:
        tracking.log_params({"a": 1, "b": "x"})
        tracking.log_metrics({"accuracy": 0.95, "precision": 0.93, "recall": 0.94}, step=2)
        tracking.set_tags({"team": "data-science", "model_type": "classification"})
        tracking.delete_tag("model_type")
    data = tracking.get_run(run.info.run_id).data
    assert data.params == {"a": "1", "b": "x"}
    assert data.metrics == {"accuracy": 0.95, "precision": 0.93, "recall": 0.94}
    assert data.tags["team"] == "data-science" and "model_type" not in data.tags


def test_search_runs_fluent_list_and_pandas() -> None:
    tracking.set_experiment("s")
    for lr in (0.1, 0.2):
        with tracking.start_run():
            tracking.log_param("lr", lr)
            tracking.log_metric("acc", lr * 2)
    runs = tracking.search_runs(filter_string="params.lr = '0.2'")
    assert [r.data.metrics["acc"] for r in runs] == [0.4]
    frame = tracking.search_runs(order_by=["metrics.acc ASC"], output_format="pandas")
    assert list(frame["metrics.acc"]) == [0.2, 0.4]
    assert {"run_id", "experiment_id", "status", "params.lr", "tags.mlflow.runName"} <= set(
        frame.columns
    )
    by_name = tracking.search_runs(experiment_names=["s"], max_results=1)
    assert len(by_name) == 1


def test_search_experiments_and_delete_run() -> None:
    tracking.create_experiment("alpha", tags={"team": "a"})
    tracking.create_experiment("beta")
    names = [e.name for e in tracking.search_experiments(filter_string="name LIKE 'a%'")]
    assert names == ["alpha"]
    with tracking.start_run() as run:
        pass
    tracking.delete_run(run.info.run_id)
    assert tracking.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert tracking.search_runs(experiment_ids=["0"]) == []
    with pytest.raises(NotFoundError):
        tracking.get_run("0" * 32)


def test_artifacts_fluent(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    with tracking.start_run() as run:
        tracking.log_artifact(src / "a.txt")
        tracking.log_artifacts(src, artifact_path="dir")
        tracking.log_text("hello", "texts/t.txt")
        tracking.log_dict({"k": [1, 2]}, "conf.json")
        tracking.log_dict({"k": 1}, "conf.yaml")
        assert tracking.get_artifact_uri("a.txt") == run.info.artifact_uri + "/a.txt"
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    assert (root / "a.txt").read_text() == "a"
    assert (root / "dir" / "sub" / "b.txt").read_text() == "b"
    assert (root / "texts" / "t.txt").read_text() == "hello"
    assert (root / "conf.yaml").read_text() == "k: 1\n"
    client = tracking.MlflowClient()
    listed = [(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)]
    assert listed == [
        ("a.txt", False),
        ("conf.json", False),
        ("conf.yaml", False),
        ("dir", True),
        ("texts", True),
    ]
    local = client.download_artifacts(run.info.run_id, "dir", str(tmp_path / "dl"))
    assert (Path(local) / "sub" / "b.txt").read_text() == "b"


def test_log_figure_and_image() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [4, 5, 6])
    with tracking.start_run() as run:
        tracking.log_figure(fig, "plots/line.png")
        tracking.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "images/black.png")
        tracking.log_image(np.full((2, 2), 0.5), "images/grey.png")
        with pytest.raises(tracking.TrackingError, match="shape"):
            tracking.log_image(np.zeros((2, 2, 7)), "images/bad.png")
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    assert (root / "plots" / "line.png").read_bytes()[:4] == b"\x89PNG"
    with Image.open(root / "images" / "black.png") as img:
        assert img.size == (5, 4)
    with Image.open(root / "images" / "grey.png") as img:
        assert img.getpixel((0, 0)) == 128
