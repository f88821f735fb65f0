"""Every tracked run records its environment: flow runs by default (`capture_environment`),
`start_run(log_environment=True)` on request; MLflow's python_env.yaml, requirements.txt, and
the git state of the code (a dirty tree's diff, size-capped)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from git_repos import git, make_repo, write

import tracking
from flows import flow
from tasks import task

SCRIPT = """\
import tracking

with tracking.start_run(log_environment=True) as run:
    tracking.log_metric("x", 1)
print(run.info.run_id)
"""


def artifact(run_id: str, name: str, folder: Path) -> str:
    path = tracking.TrackingClient().download_artifacts(
        run_id, f"environment/{name}", str(folder / run_id)
    )
    return Path(path).read_text()


def environment_files(run_id: str) -> set[str]:
    listed = tracking.TrackingClient().list_artifacts(run_id, "environment")
    return {a.path.rsplit("/", 1)[-1] for a in listed}


def test_start_run_records_the_environment_when_asked(tmp_path: Path) -> None:
    with tracking.start_run() as plain:
        pass
    assert "trackflow.python_version" not in tracking.get_run(plain.info.run_id).data.tags
    assert environment_files(plain.info.run_id) == set()

    with tracking.start_run(log_environment=True) as run:
        pass
    tags = tracking.get_run(run.info.run_id).data.tags
    assert tags["trackflow.python_version"] == platform.python_version()
    assert tags["trackflow.platform"] == platform.platform()
    assert environment_files(run.info.run_id) >= {"python_env.yaml", "requirements.txt"}
    requirements = artifact(run.info.run_id, "requirements.txt", tmp_path).splitlines()
    assert f"PyYAML=={metadata.version('pyyaml')}" in requirements
    assert f"prefect=={metadata.version('prefect')}" in requirements
    assert len(requirements) == len({d.metadata["Name"].lower() for d in metadata.distributions()})
    # MLflow reads the python_env.yaml as its own
    from mlflow.utils.environment import _PythonEnv

    env = _PythonEnv.from_yaml(
        tracking.TrackingClient().download_artifacts(
            run.info.run_id, "environment/python_env.yaml", str(tmp_path / "mlflow")
        )
    )
    assert env.python == platform.python_version()
    assert env.dependencies == ["-r requirements.txt"]
    assert f"pip=={metadata.version('pip')}" in env.build_dependencies


def test_git_state_of_the_code(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    head = make_repo(repo, {"train.py": SCRIPT, "helpers.py": "A = 1\n"})
    git(repo, "remote", "add", "origin", "https://example.com/org/repo.git")
    env = {**os.environ, "MLFLOW_TRACKING_URI": str(tmp_path / "mlruns")}

    def run_script(**extra: str) -> tracking.Run:
        done = subprocess.run(
            [sys.executable, "train.py"],
            cwd=repo,
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return tracking.get_run(done.stdout.split()[-1])

    clean = run_script()
    tags = clean.data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.repoURL"] == "https://example.com/org/repo.git"
    assert tags["trackflow.git.dirty"] == "false"
    assert tags["trackflow.git.root"] == str(repo)
    assert tags["trackflow.entrypoint"] == "train.py"
    assert "git.diff" not in environment_files(clean.info.run_id)

    write(repo, {"helpers.py": "A = 2\n", "new_module.py": "B = 3\n"})
    dirty = run_script()
    assert dirty.data.tags["trackflow.git.dirty"] == "true"
    diff = artifact(dirty.info.run_id, "git.diff", tmp_path)
    assert "-A = 1" in diff and "+A = 2" in diff and "+B = 3" in diff  # untracked files too
    assert git(repo, "status", "--porcelain") == "M helpers.py\n?? new_module.py"  # untouched

    capped = run_script(TRACKFLOW_GIT_DIFF_MAX_BYTES="40")
    assert capped.data.tags["trackflow.git.diff_truncated"] == "true"
    text = artifact(capped.info.run_id, "git.diff", tmp_path)
    assert text.endswith(f"# trackflow: diff truncated to 40 of {len(diff.encode())} bytes\n")


@task
def double(x: int) -> int:
    return 2 * x


@flow
def recorded_flow(x: int = 2) -> int:
    return double(x)


@flow(capture_environment=False)
def unrecorded_flow(x: int = 2) -> int:
    return double(x)


def test_flow_runs_record_their_environment(prefect_api: None) -> None:
    recorded_flow()
    unrecorded_flow()
    client = tracking.TrackingClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, "")
    flows = {
        r.data.tags["prefect.flow_name"]: r for r in runs if "prefect.task_name" not in r.data.tags
    }
    tags = flows["recorded-flow"].data.tags
    assert tags["trackflow.entrypoint"].endswith("test_run_environment.py:recorded_flow")
    assert tags["trackflow.python_version"] == platform.python_version()
    assert environment_files(flows["recorded-flow"].info.run_id) >= {
        "python_env.yaml",
        "requirements.txt",
    }
    assert "trackflow.python_version" not in flows["unrecorded-flow"].data.tags
    assert environment_files(flows["unrecorded-flow"].info.run_id) == set()
    tasks = [r for r in runs if "prefect.task_name" in r.data.tags]
    assert len(tasks) == 2
    assert all("trackflow.python_version" not in t.data.tags for t in tasks)  # flow runs only
