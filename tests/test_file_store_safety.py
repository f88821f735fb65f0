"""The file store under concurrent writers and with damaged files on disk."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

import tracking
from tracking.entities import Metric, RunTag
from tracking.stores.file.disk import TEMP_PREFIX
from tracking.stores.file.store import FileStore

N_PROCS = 6


def test_threads_logging_to_one_run_lose_nothing(tracking_dir: Path) -> None:
    with tracking.start_run() as run:
        run_id = run.info.run_id

        def work(worker: int) -> None:
            for step in range(300):
                tracking.log_metric("shared", worker * 1000 + step, step=step, run_id=run_id)
                tracking.log_metric(f"own/{worker}", step, step=step, run_id=run_id)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    client = tracking.MlflowClient()
    shared = client.get_metric_history(run_id, "shared")
    assert sorted(m.value for m in shared) == sorted(
        float(w * 1000 + s) for w in range(8) for s in range(300)
    )
    lines = (tracking_dir / "0" / run_id / "metrics" / "shared").read_text().splitlines()
    assert len(lines) == 2400 and all(len(line.split()) == 3 for line in lines)
    for w in range(8):
        assert [m.step for m in client.get_metric_history(run_id, f"own/{w}")] == list(range(300))


def _set_experiment(root: str, barrier: multiprocessing.synchronize.Barrier) -> str:
    tracking.set_tracking_uri(root)
    barrier.wait()
    tracking.set_experiment("x")
    with tracking.start_run() as run:
        return run.info.experiment_id


def _create_runs(root: str, barrier: multiprocessing.synchronize.Barrier) -> list[str]:
    tracking.set_tracking_uri(root)
    barrier.wait()
    ids = []
    for i in range(25):
        with tracking.start_run() as run:
            tracking.log_param("i", i)
            ids.append(run.info.run_id)
    return ids


def _run_in_processes(target, root: str) -> list:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(N_PROCS)
        with ctx.Pool(N_PROCS) as pool:
            return pool.starmap(target, [(root, barrier)] * N_PROCS)


def test_processes_racing_set_experiment_create_exactly_one(tracking_dir: Path) -> None:
    experiment_ids = _run_in_processes(_set_experiment, str(tracking_dir))
    names = [e.name for e in FileStore(str(tracking_dir)).search_experiments()]
    assert names.count("x") == 1
    assert set(experiment_ids) == {
        FileStore(str(tracking_dir)).get_experiment_by_name("x").experiment_id
    }


def test_processes_creating_runs_lose_none(tracking_dir: Path) -> None:
    results = _run_in_processes(_create_runs, str(tracking_dir))
    created = {run_id for ids in results for run_id in ids}
    assert len(created) == N_PROCS * 25
    found = FileStore(str(tracking_dir)).search_runs(["0"], max_results=1000)
    assert {r.info.run_id for r in found} == created
    assert all(r.data.params.get("i") is not None for r in found)


def test_damaged_entries_are_skipped_with_a_warning(tracking_dir: Path) -> None:
    store = FileStore(str(tracking_dir))
    exp_id = store.create_experiment("ok")
    broken_exp = store.create_experiment("broken")
    good = store.create_run(exp_id, "u", 1, [], "good")
    bad = store.create_run(exp_id, "u", 1, [], "bad")
    store.log_metric(good.info.run_id, Metric("m", 1.0, 5, 0))
    (tracking_dir / broken_exp / "meta.yaml").write_text("name: [unclosed\n")
    (tracking_dir / exp_id / bad.info.run_id / "meta.yaml").write_text(": : :\n- x")
    metric_file = tracking_dir / exp_id / good.info.run_id / "metrics" / "m"
    metric_file.write_text(metric_file.read_text() + "garbage line here\n7 2.0 1\n")
    fresh = FileStore(str(tracking_dir))
    with pytest.warns(UserWarning, match="broken|meta.yaml") as record:
        names = {e.name for e in fresh.search_experiments()}
    assert {"Default", "ok"} <= names and "broken" not in names
    assert any(str(tracking_dir / broken_exp) in str(w.message) for w in record)
    with pytest.warns(UserWarning, match=r"metrics/m line 2"):
        history = fresh.get_metric_history(good.info.run_id, "m")
    assert [(m.value, m.step) for m in history] == [(1.0, 0), (2.0, 1)]
    with pytest.warns(UserWarning, match=bad.info.run_id):
        runs = fresh.search_runs([exp_id])
    assert [r.info.run_id for r in runs] == [good.info.run_id]
    fresh.set_tag(good.info.run_id, RunTag("still", "writable"))


def test_meta_yaml_is_replaced_atomically(tracking_dir: Path) -> None:
    store = FileStore(str(tracking_dir))
    run = store.create_run("0", "u", 1, [], "r")
    meta = tracking_dir / "0" / run.info.run_id / "meta.yaml"
    inode = meta.stat().st_ino
    store.update_run_info(run.info.run_id, "FINISHED", 2)
    assert meta.stat().st_ino != inode  # written to a new file and renamed over the old one
    assert not [p for p in meta.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]
