"""`trackflow runs reproduce`: a flow run started from a dirty work tree, reproduced after HEAD
moved on (the old code, diff applied, runs: metrics equal, task by task); --check failing on
a nondeterministic flow; the local environment's differences named; runs that cannot be
reproduced refused clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from git_repos import commit, git, make_repo, write

import tracking
from tracking.cli import main

TRAIN = """\
import random
import sys

from flows import flow
from tasks import task
from helpers import factor


@task
def fit(lr: float, epoch: int) -> dict:
    return {"loss": lr * factor() / (epoch + 1)}


@flow
def train(lr: float = 0.1, epochs: int = 2, noisy: bool = False) -> dict:
    out = {}
    for epoch in range(epochs):
        out = fit(lr, epoch)
    if noisy:
        return {"loss": random.random()}
    return out


if __name__ == "__main__":
    train(lr=float(sys.argv[1]), noisy=len(sys.argv) > 2)
"""
SCRIPT = """\
import tracking

with tracking.start_run(log_environment=True):
    tracking.log_metric("answer", 42)
"""


def flow_runs() -> list[tracking.Run]:
    client = tracking.TrackingClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(ids, "tags.`mlflow.parentRunId` IS NULL") if ids else []
    return sorted(found, key=lambda r: r.info.start_time)


def start(repo: Path, env: dict[str, str], *args: str) -> tracking.Run:
    """Run pipeline/train.py as a script (python pipeline/train.py ARGS); its flow run."""
    before = {r.info.run_id for r in flow_runs()}
    subprocess.run(
        [sys.executable, "pipeline/train.py", *args], cwd=repo, env=env, check=True, timeout=300
    )
    new = [r for r in flow_runs() if r.info.run_id not in before]
    assert len(new) == 1
    return new[0]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    make_repo(
        repo, {"pipeline/train.py": TRAIN, "pipeline/helpers.py": "def factor():\n    return 2.0\n"}
    )
    return repo


def test_reproduce_a_dirty_flow_run_after_head_moved_on(
    repo: Path,
    prefect_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])
    recorded_commit = git(repo, "rev-parse", "HEAD")
    # uncommitted: a changed module and a new, untracked one
    write(
        repo,
        {
            "pipeline/helpers.py": "from extra import K\n\n\ndef factor():\n    return K\n",
            "pipeline/extra.py": "K = 5.0\n",
        },
    )
    recorded = start(repo, prefect_env, "0.5")
    tags = recorded.data.tags
    assert tags["trackflow.git.dirty"] == "true"
    assert tags["mlflow.source.git.commit"] == recorded_commit
    assert tags["trackflow.entrypoint"] == "pipeline/train.py:train"
    assert recorded.data.metrics["loss"] == 1.25  # 0.5 * 5.0 / 2

    # HEAD moves on: the working changes are dropped, different code is committed
    git(repo, "checkout", "--", "pipeline/helpers.py")
    os.remove(repo / "pipeline" / "extra.py")
    commit(repo, {"pipeline/helpers.py": "def factor():\n    return 7.0\n"}, "new factor")
    assert main(["runs", "reproduce", recorded.info.run_id, "--check"]) == 0
    out = capsys.readouterr().out
    assert "every metric within 1e-09" in out
    for task in ("fit[0]", "fit[1]"):
        assert task in out  # task runs compared one by one
    new = flow_runs()[-1]
    assert new.data.tags["trackflow.reproduced_from"] == recorded.info.run_id
    assert new.data.tags["prefect.flow_run_id"].replace("-", "") == new.info.run_id
    assert new.info.experiment_id == recorded.info.experiment_id
    assert new.data.metrics["loss"] == 1.25  # the recorded code ran, not HEAD's
    assert new.data.params == recorded.data.params
    assert "trackflow.reproduced_from" not in tracking.get_run(recorded.info.run_id).data.tags

    # --check fails on a flow whose metric is not reproducible
    noisy = start(repo, prefect_env, "0.5", "noisy")
    assert main(["runs", "reproduce", noisy.info.run_id, "--check"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and "metrics differ by more than 1e-09" in out
    # without --check the comparison is only printed; a loose tolerance accepts it
    assert main(["runs", "reproduce", noisy.info.run_id]) == 0
    assert main(["runs", "reproduce", noisy.info.run_id, "--check", "--tolerance", "2"]) == 0


def test_local_environment_differences_are_named(
    repo: Path,
    prefect_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])
    recorded = start(repo, prefect_env, "0.25")
    # as if recorded on another machine: an older six, and a package missing here
    client = tracking.TrackingClient()
    requirements = client.artifact_repo_at(recorded.info.artifact_uri)
    requirements.write_bytes(
        "environment/requirements.txt", b"six==0.0.1\ntrackflow-test-missing==1.0\n"
    )
    assert main(["runs", "reproduce", recorded.info.run_id, "--check"]) == 0
    err = capsys.readouterr().err
    assert "2 packages differ from the recorded environment" in err
    assert "six 0.0.1 (here: " in err and "trackflow-test-missing 1.0 (here: not installed)" in err


def test_reproduce_a_script_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "scripts"
    make_repo(repo, {"train.py": SCRIPT})
    env = {**os.environ, "MLFLOW_TRACKING_URI": str(tmp_path / "mlruns")}
    subprocess.run([sys.executable, "train.py"], cwd=repo, env=env, check=True)
    recorded = flow_runs()[-1]
    assert recorded.data.tags["trackflow.entrypoint"] == "train.py"
    assert main(["runs", "reproduce", recorded.info.run_id, "--check"]) == 0
    new = flow_runs()[-1]
    assert new.data.tags["trackflow.reproduced_from"] == recorded.info.run_id
    assert new.data.metrics["answer"] == 42
    assert "answer" in capsys.readouterr().out


def test_runs_that_cannot_be_reproduced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def refused(run_id: str, *phrases: str, args: tuple[str, ...] = ()) -> None:
        assert main(["runs", "reproduce", run_id, *args]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        for phrase in phrases:
            assert phrase in err, (phrase, err)

    with tracking.start_run() as plain:
        pass
    refused(plain.info.run_id, "recorded no entry point")
    refused("0" * 32, "not found")
    outside = tmp_path / "outside"
    write(outside, {"train.py": SCRIPT})
    env = {**os.environ, "MLFLOW_TRACKING_URI": str(tmp_path / "mlruns")}
    subprocess.run([sys.executable, "train.py"], cwd=outside, env=env, check=True)
    refused(flow_runs()[-1].info.run_id, "outside any git repository")
    # a dirty tree whose diff was too large to record in full
    repo = tmp_path / "repo"
    make_repo(repo, {"train.py": SCRIPT})
    write(repo, {"big.txt": "x" * 5000})
    capped = {**env, "TRACKFLOW_GIT_DIFF_MAX_BYTES": "100"}
    subprocess.run([sys.executable, "train.py"], cwd=repo, env=capped, check=True)
    truncated = flow_runs()[-1]
    assert truncated.data.tags["trackflow.git.diff_truncated"] == "true"
    refused(truncated.info.run_id, "diff was too large to record in full")
    # the recorded environment is needed to rebuild it
    with tracking.start_run() as bare:
        recorded_as = {
            "mlflow.source.git.commit": git(repo, "rev-parse", "HEAD"),
            "trackflow.entrypoint": "train.py",
            "trackflow.git.root": str(repo),
        }
        tracking.set_tags(recorded_as)
    refused(bare.info.run_id, "recorded no environment", args=("--env-manager", "uv"))
