"""Stores on a full disk, on a read-only disk, and with writers killed mid-write.

A full disk is a real one for the writer: a subprocess lowers its RLIMIT_FSIZE and ignores
SIGXFSZ, so the kernel cuts writes past the limit short and then fails them with EFBIG, as a
full disk does with ENOSPC. Read-only stores are read by a subprocess without the root
capability to override file permissions (setpriv, when the tests run as root). Killed writers
are real processes SIGKILLed at random moments.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tracking.entities import Metric, Param, RunTag
from tracking.errors import StorageError
from tracking.stores import open_store
from tracking.stores.file.disk import TEMP_PREFIX
from tracking.stores.file.store import FileStore

# Runs `code` after opening the store ARGV[1] and finding run ARGV[2]; prints a JSON result.
_PRELUDE = """
import json, os, resource, signal, sys
from tracking.entities import Metric, Param, RunTag
from tracking.errors import TrackingError
from tracking.stores import open_store
store = open_store(sys.argv[1])
run_id = sys.argv[2]

def full_disk(limit):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

def attempt(call):
    try:
        call()
        return {"ok": True}
    except TrackingError as e:
        return {"error": type(e).__name__, "message": str(e)}
    except BaseException as e:
        return {"error": "raw " + type(e).__name__, "message": str(e)}
"""


def run_child(code: str, *args: str) -> dict:
    """Run `_PRELUDE + code` in a new interpreter; return what it printed as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", _PRELUDE + code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def metric_path(store: FileStore, run_id: str, key: str) -> Path:
    run = store.get_run(run_id)
    return Path(store.root) / run.info.experiment_id / run_id / "metrics" / key


# --------------------------------------------------------------------------- full disk


def test_metric_line_cut_short_is_blanked_and_raises(tracking_dir: Path) -> None:
    store = FileStore(str(tracking_dir))
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id
    store.log_metric(run_id, Metric("loss", 0.5, 1700000000000, 0))
    path = metric_path(store, run_id, "loss")
    size = path.stat().st_size
    result = run_child(
        f"full_disk({size + 7})\n"  # room for 7 bytes of the next line's ~26
        "print(json.dumps(attempt(lambda: store.log_metric("
        "run_id, Metric('loss', 0.25, 1700000000001, 1)))))",
        str(tracking_dir),
        run_id,
    )
    assert result["error"] == "StorageError"
    assert str(path) in result["message"] and "log_metric" in result["message"]
    lines = path.read_text().split("\n")
    assert lines[1] == " " * 6  # the 7 bytes that were written, blanked out
    store.log_metric(run_id, Metric("loss", 0.125, 1700000000002, 2))
    history = FileStore(str(tracking_dir)).get_metric_history(run_id, "loss")
    assert [(m.timestamp, m.value, m.step) for m in history] == [
        (1700000000000, 0.5, 0),
        (1700000000002, 0.125, 2),
    ]


@pytest.mark.parametrize("limit", [0, 3])
def test_failed_param_tag_and_end_leave_nothing_half_written(
    tracking_dir: Path, limit: int
) -> None:
    store = FileStore(str(tracking_dir))
    run = store.create_run("0", "u", 1, [RunTag("t", "old value")], "r")
    run_id = run.info.run_id
    result = run_child(
        f"full_disk({limit})\n"
        "print(json.dumps([attempt(call) for call in ("
        "lambda: store.log_param(run_id, Param('p', 'the real value')),"
        "lambda: store.set_tag(run_id, RunTag('t', 'new value')),"
        "lambda: store.update_run_info(run_id, 'FINISHED', 2),"
        "lambda: store.log_batch(run_id, [], [Param('q', 'another value')], []),"
        ")]))",
        str(tracking_dir),
        run_id,
    )
    assert [r.get("error") for r in result] == ["StorageError"] * 4, result
    assert all("File too large" in r["message"] for r in result), result
    fresh = FileStore(str(tracking_dir)).get_run(run_id)
    assert fresh.data.params == {}
    assert fresh.data.tags["t"] == "old value"
    assert fresh.info.status == "RUNNING"
    run_dir = Path(store.root) / "0" / run_id
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    store.log_param(run_id, Param("p", "the real value"))  # not "already logged with ''"
    assert store.get_run(run_id).data.params == {"p": "the real value"}


def test_full_sqlite_database_raises_a_storage_error_naming_it(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'full.db'}"
    run_id = open_store(uri).create_run("0", "u", 1, [], "r").info.run_id
    result = run_child(
        "full_disk(1000)\n"
        "print(json.dumps(attempt(lambda: store.log_param(run_id, Param('p', 'v')))))",
        uri,
        run_id,
    )
    assert result["error"] == "StorageError"
    assert str(tmp_path / "full.db") in result["message"] and "disk" in result["message"]
    assert open_store(uri).get_run(run_id).data.params == {}


# --------------------------------------------------------------------------- read-only


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder outside pytest's private (0700) temp tree, removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="trackflow-ro-"))
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def make_read_only(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def unprivileged(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `args` without the power to override file permissions (root loses its
    capabilities through setpriv; other users have none)."""
    if os.geteuid() == 0:
        args = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", *args]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def trackflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "tracking.cli", *args]


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_read_only_store_serves_reads_and_refuses_writes_clearly(
    shared_dir: Path, kind: str
) -> None:
    uri = str(shared_dir / "mlruns") if kind == "file" else f"sqlite:///{shared_dir / 'ro.db'}"
    store = open_store(uri)
    run_id = store.create_run("0", "alice", 1, [], "kept-run").info.run_id
    store.log_metric(run_id, Metric("acc", 0.75, 1, 0))
    if kind == "sqlite":
        store.engine.dispose()  # closed: SQLite folds its write-ahead log into the file
    files = sorted(shared_dir.rglob("*"))
    make_read_only(shared_dir)
    listing = unprivileged(trackflow("runs", "list", "--tracking-uri", uri))
    assert listing.returncode == 0, listing.stderr
    assert "kept-run" in listing.stdout and "0.75" in listing.stdout
    created = unprivileged(trackflow("experiments", "create", "new", "--tracking-uri", uri))
    assert created.returncode == 1
    error = created.stderr.strip()
    assert error.startswith("trackflow: error: ") and "\n" not in error
    assert "Traceback" not in created.stderr
    if kind == "file":
        assert f"File store {shared_dir / 'mlruns'}" in error and "Permission denied" in error
    else:
        assert str(shared_dir / "ro.db") in error and "read-only" in error
    assert sorted(shared_dir.rglob("*")) == files


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_read_commands_never_create_a_missing_store(tmp_path: Path, kind: str) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    uri = str(missing / "mlruns") if kind == "file" else f"sqlite:///{missing / 'x.db'}"
    for command in (["runs", "list"], ["experiments", "list"], ["runs", "describe", "0" * 32]):
        done = subprocess.run(
            trackflow(*command, "--tracking-uri", uri), capture_output=True, text=True
        )
        assert done.returncode == 1
        assert "does not exist" in done.stderr and str(missing) in done.stderr
    assert not (tmp_path / "nonexistent").exists()


# --------------------------------------------------------------------------- killed writers


def kill_at_random(
    work: Callable[[int, Callable[[], None]], object], kills: int, window: float
) -> None:
    """For kill in range(kills): fork a process that runs `work(kill, started)`, wait until it
    calls `started()`, SIGKILL it a random moment (up to `window` seconds) later. Forking saves
    an interpreter start per kill."""
    for kill in range(kills):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: work until killed, never back into pytest
            os.close(read_end)

            def started(fd: int = write_end) -> None:
                os.write(fd, b"!")

            try:
                work(kill, started)
            finally:
                os._exit(0)
        os.close(write_end)
        started = os.read(read_end, 1)  # b"" if the child ended without starting
        os.close(read_end)
        assert started == b"!"
        time.sleep(random.uniform(0, window))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_killed_log_param_never_leaves_an_empty_or_partial_param(tracking_dir: Path) -> None:
    store = FileStore(str(tracking_dir))
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id

    def log_params(kill: int, started: Callable[[], None]) -> None:
        for i in range(10**6):
            store.log_param(run_id, Param(f"p{kill}-{i}", f"value {kill}-{i} " + "x" * 2000))
            if i == 0:
                started()

    kill_at_random(log_params, kills=200, window=0.01)
    params = FileStore(str(tracking_dir)).get_run(run_id).data.params
    assert {key.split("-")[0] for key in params} == {f"p{kill}" for kill in range(200)}
    wrong = {
        key: value for key, value in params.items() if value != f"value {key[1:]} " + "x" * 2000
    }
    assert wrong == {}
    for key, value in params.items():  # logging the same value again is always accepted
        store.log_param(run_id, Param(key, value))


def test_killed_metric_writer_leaves_only_whole_lines(tracking_dir: Path) -> None:
    store = FileStore(str(tracking_dir))
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id

    def log_metrics(kill: int, started: Callable[[], None]) -> None:
        started()
        for step in range(10**7):
            point = Metric("m", step * 0.5, 1700000000000 + step, step)
            store.log_batch(run_id, [point] * 3, [], [])

    kill_at_random(log_metrics, kills=50, window=0.01)
    history = FileStore(str(tracking_dir)).get_metric_history(run_id, "m")
    assert history
    for point in history:
        step = point.timestamp - 1700000000000
        assert (point.step, point.value) == (step, step * 0.5)
    text = metric_path(store, run_id, "m").read_text()
    assert text.endswith("\n") and all(len(line.split()) == 3 for line in text.splitlines())


def test_killed_log_artifact_never_lists_a_partial_file(tracking_dir: Path) -> None:
    from tracking.artifacts import ArtifactRepository

    store = FileStore(str(tracking_dir))
    run = store.create_run("0", "u", 1, [], "r")
    big = tracking_dir.parent / "big.bin"
    size = 64 * 2**20
    with open(big, "wb") as f:
        f.write(os.urandom(size))
    repo = ArtifactRepository(run.info.artifact_uri)
    started = time.monotonic()
    repo.log_artifact(str(big), "whole")
    duration = time.monotonic() - started
    for _ in range(8):

        def upload(kill: int, started: Callable[[], None]) -> None:
            started()
            repo.log_artifact(str(big), "data")

        kill_at_random(upload, kills=1, window=duration)
        listed = {info.path: info.file_size for info in repo.list_artifacts("data")}
        assert listed in ({}, {"data/big.bin": size})
        repo.delete_artifacts("data")
    assert [(i.path, i.file_size) for i in repo.list_artifacts("whole")] == [
        ("whole/big.bin", size)
    ]


def test_storage_errors_are_tracking_errors_naming_the_path(tracking_dir: Path) -> None:
    store = FileStore(str(tracking_dir))
    run_id = store.create_run("0", "u", 1, [], "r").info.run_id
    (tracking_dir / "0" / run_id / "metrics").rmdir()
    (tracking_dir / "0" / run_id / "metrics").write_text("not a folder")
    with pytest.raises(StorageError, match=r"log_metric failed on .*metrics/m: Not a directory"):
        store.log_metric(run_id, Metric("m", 1.0, 1, 0))
