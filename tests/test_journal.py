"""tracking.journal: a finished task run's writes survive its process; replay is idempotent."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from server_process import free_port, quiet_clients, start_server, stop_server

import tracking
from tracking import journal, stores
from tracking.entities import Metric, RunStatus
from tracking.journal import RunCreation, RunRecord

RUN_ID = "a" * 32


@pytest.fixture(params=["file", "sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_uri")()
    return str(tmp_path / "store")


def finished_record(experiment_id: str = "0") -> RunRecord:
    creation = RunCreation(experiment_id, "train-1", "alice", 1_000, {"mlflow.runName": "train-1"})
    return RunRecord(
        RUN_ID,
        creation,
        params={"lr": "0.1"},
        tags={"stage": "train"},
        metrics=[Metric("loss", 0.5, 2_000, 0), Metric("loss", 0.25, 2_001, 1)],
        status=RunStatus.FINISHED.name,
        end_time=3_000,
    )


def assert_recorded(uri: str) -> None:
    run = tracking.TrackingClient(uri).get_run(RUN_ID)
    assert (run.info.status, run.info.end_time, run.info.run_name) == ("FINISHED", 3_000, "train-1")
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["stage"] == "train"
    history = tracking.TrackingClient(uri).get_metric_history(RUN_ID, "loss")
    assert [(m.value, m.step) for m in history] == [(0.5, 0), (0.25, 1)]


def test_replaying_a_record_twice_changes_nothing(store_uri: str) -> None:
    store = stores.open_store(store_uri)
    record = finished_record()
    record.apply(store, created=False)
    record.apply(store, created=False)
    assert_recorded(store_uri)


def test_a_partly_applied_record_is_completed_without_duplicates(store_uri: str) -> None:
    """The writer died between the metrics and the end of the run."""
    store = stores.open_store(store_uri)
    partial = finished_record()
    partial.status = partial.end_time = None
    partial.metrics = partial.metrics[:1]
    partial.apply(store, created=False)
    assert store.get_run(RUN_ID).info.status == "RUNNING"
    finished_record().apply(store, created=False)
    assert_recorded(store_uri)


WRITE_AND_DIE = """
import os, signal, sys
from tracking import journal
from tracking.entities import Metric, RunStatus
from tracking.journal import RunCreation, RunRecord

creation = RunCreation("0", "train-1", "alice", 1000, {"mlflow.runName": "train-1"})
record = RunRecord("a" * 32, creation, {"lr": "0.1"}, {"stage": "train"},
                   [Metric("loss", 0.5, 2000, 0), Metric("loss", 0.25, 2001, 1)], "FINISHED", 3000)
journal.journal_for(sys.argv[1]).append(record.to_line())
print("appended", flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # stay alive until the test closes stdin
"""


def start_writer(uri: str, how: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITE_AND_DIE, uri, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "appended"
    return child


def test_a_killed_processs_journal_is_replayed_when_the_store_is_next_opened(
    store_uri: str,
) -> None:
    child = start_writer(store_uri, "die")
    assert child.wait(timeout=60) == -signal.SIGKILL
    stores.open_store(store_uri)  # the run's writes were never performed: replayed here
    assert_recorded(store_uri)
    assert list(journal.journal_dir(store_uri).iterdir()) == []
    stores.open_store(store_uri)  # nothing left to replay, nothing doubled
    assert_recorded(store_uri)


def test_a_live_processs_journal_is_left_to_its_owner(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    child = start_writer(uri, "live")
    try:
        stores.open_store(uri)
        with pytest.raises(tracking.TrackingError):
            tracking.TrackingClient(uri).get_run(RUN_ID)
    finally:
        child.kill()
        child.wait(timeout=60)
    stores.open_store(uri)
    assert_recorded(uri)


def test_the_same_store_spelled_differently_shares_its_journals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert journal.journal_dir("mlruns") == journal.journal_dir(f"file://{tmp_path}/mlruns")
    assert journal.journal_dir("sqlite:///x.db") == journal.journal_dir(
        f"sqlite:///{tmp_path}/x.db"
    )
    assert journal.journal_dir("sqlite:///x.db") != journal.journal_dir("sqlite:///y.db")


APPEND_OVER_LIMIT = """
import resource, signal, sys
from tracking import journal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
log = journal.journal_for(sys.argv[1])
log.append(b"small\\n")
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    log.append(b"x" * 10000 + b"\\n")
except OSError as e:
    print("refused:", e)
print(open(log.path, "rb").read() == b"small\\n")
"""


def test_a_record_that_does_not_fit_is_refused_whole(tmp_path: Path) -> None:
    """A full disk (here: the kernel's file size limit) never leaves a partial record."""
    out = subprocess.run(
        [sys.executable, "-c", APPEND_OVER_LIMIT, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "refused:" in out and out.strip().endswith("True"), out


def test_a_damaged_record_is_skipped_and_the_rest_replayed(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    folder = journal.journal_dir(uri)
    folder.mkdir(parents=True)
    (folder / f"999999-dead{journal.SUFFIX}").write_bytes(
        b'{"run_id": "broken\n' + finished_record().to_line() + b'{"unfinished'
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stores.open_store(uri)
    assert any("damaged record" in str(w.message) for w in caught)
    assert_recorded(uri)


def test_an_unreachable_store_keeps_the_journal_for_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tracking server is down when the journal is replayed: nothing is lost, the next
    open (server back) writes it."""
    quiet_clients(monkeypatch)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder = journal.journal_dir(url)
    folder.mkdir(parents=True)
    path = folder / f"999999-dead{journal.SUFFIX}"
    path.write_bytes(finished_record().to_line())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stores.open_store(url)
    assert any("kept for later" in str(w.message) for w in caught)
    assert path.exists()
    server = start_server(tmp_path / "server", f"sqlite:///{tmp_path / 'db.sqlite'}", port=port)
    try:
        stores.open_store(url)
        assert not path.exists()
        assert_recorded(url)
    finally:
        stop_server(server)


def test_journal_folder_unwritable_means_synchronous_writes(
    tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    """No journal can be kept: task runs are written before the task returns, with a warning."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the journal folder should be")
    script = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("always")
        from flows import flow
        from tasks import task

        @task
        def double(x: int) -> int:
            return 2 * x

        @flow
        def pipeline() -> list[int]:
            return [double(i) for i in range(3)]

        pipeline()
        """
    )
    env = {**prefect_env, journal.JOURNAL_DIR_ENV: str(blocked)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cannot keep a write journal" in done.stderr
    client = tracking.TrackingClient(prefect_env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("pipeline")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.metrics.get("double", -1) for r in runs) == [-1, 0, 2, 4]
    assert {r.info.status for r in runs} == {"FINISHED"}
