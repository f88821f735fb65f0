"""`trackflow run` / tracking.projects.run: MLflow-format projects, flows and scripts, from
folders and real git repositories (file:// URLs, --version, #subdirectory), in the current
environment. Virtual environments: tests/test_project_envs.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from git_repos import commit, git, make_repo, write

import tracking
from tracking.cli import main
from tracking.entities import Run

MLPROJECT = """\
name: demo
entry_points:
  main:
    parameters:
      alpha: float
      n: {type: int, default: 3}
      label: {type: string, default: "hello world"}
      data: path
      target: {type: uri, default: "s3://bucket/out"}
    command: >-
      python train.py --alpha {alpha} --n {n} --label {label}
      --data {data} --target {target}
  fail:
    command: "python -c 'import sys; sys.exit(3)'"
"""

TRAIN = """\
import argparse, os
import tracking

parser = argparse.ArgumentParser()
for name in ("alpha", "n", "label", "data", "target"):
    parser.add_argument(f"--{name}")
args = parser.parse_args()
with tracking.start_run():  # resumes the project's run ($MLFLOW_RUN_ID)
    tracking.log_metric("score", float(args.alpha) * int(args.n))
    tracking.set_tag("seen.experiment_id", os.environ["MLFLOW_EXPERIMENT_ID"])
    tracking.set_tag("seen.label", args.label)
    tracking.set_tag("seen.data", open(args.data).read().strip())
"""

HELLO = """\
import sys
import tracking

with tracking.start_run():
    tracking.log_param("argv", " ".join(sys.argv[1:]))
"""

PIPELINE = """\
from flows import flow
from tasks import task


@task
def step(x: float, i: int) -> dict:
    return {"value": x * i}


@flow
def pipeline(scale: float = 1.0, repeats: int = 2, code: str = "x") -> dict:
    out = {}
    for i in range(repeats):
        out = step(scale, i + 1)
    return out


not_a_flow = 3
"""


def runs() -> list[Run]:
    client = tracking.TrackingClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, "")) if ids else []


def only_run() -> Run:
    found = runs()
    assert len(found) == 1, [r.info.run_id for r in found]
    return found[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    make_repo(
        repo,
        {
            "MLproject": MLPROJECT,
            "train.py": TRAIN,
            "hello.py": HELLO,
            "run.sh": "echo shell ran > shell.txt\npython hello.py --from shell\n",
            "flows_demo/pipeline.py": PIPELINE,
        },
    )
    (tmp_path / "data.txt").write_text("the data\n")
    return repo


def test_mlproject_runs_with_mlflow_tags_params_and_its_own_start_run(
    project: Path, tmp_path: Path
) -> None:
    head = git(project, "rev-parse", "HEAD")
    code = main(
        ["run", str(project), "-P", "alpha=0.5", "-P", "data=data.txt", "--experiment-name", "x"]
    )
    assert code == 0
    run = only_run()
    tags, params = run.data.tags, run.data.params
    assert run.info.status == "FINISHED"
    assert tracking.get_experiment(run.info.experiment_id).name == "x"
    # the declared parameters, defaults applied, path made absolute, as params
    assert params == {
        "alpha": "0.5",
        "n": "3",
        "label": "hello world",
        "data": str(tmp_path / "data.txt"),
        "target": "s3://bucket/out",
    }
    # MLflow's project tags
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.name"] == str(project)
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags["mlflow.project.backend"] == "local"
    # the command's own start_run() logged into this very run
    assert run.data.metrics["score"] == 1.5
    assert tags["seen.experiment_id"] == run.info.experiment_id
    assert tags["seen.label"] == "hello world"  # quoted through the shell intact
    assert tags["seen.data"] == "the data"
    # and the environment it ran in
    assert tags["trackflow.python_version"].startswith(f"{sys.version_info[0]}.")
    assert tags["trackflow.git.dirty"] == "false"
    names = {
        a.path for a in tracking.TrackingClient().list_artifacts(run.info.run_id, "environment")
    }
    assert names == {"environment/python_env.yaml", "environment/requirements.txt"}


def test_failed_command_fails_the_run(project: Path) -> None:
    assert main(["run", str(project), "-e", "fail"]) == 1
    assert only_run().info.status == "FAILED"
    with pytest.raises(tracking.projects.ExecutionError, match="failed"):
        tracking.projects.run(str(project), entry_point="fail")


def test_python_api_returns_the_run(project: Path, tmp_path: Path) -> None:
    submitted = tracking.projects.run(
        str(project),
        parameters={"alpha": 2, "n": 4, "data": str(tmp_path / "data.txt")},
        run_name="api",
    )
    assert submitted.wait() and submitted.get_status() == "FINISHED"
    assert submitted.run.info.run_name == "api"
    assert submitted.run.data.metrics["score"] == 8.0


def test_script_entry_points_without_mlproject(tmp_path: Path) -> None:
    folder = tmp_path / "scripts"
    write(folder, {"hello.py": HELLO, "run.sh": "python hello.py --from shell\n"})
    assert main(["run", str(folder), "-e", "hello.py", "-P", "x=1 2"]) == 0
    assert only_run().data.params["argv"] == "--x 1 2"  # extra params: --name value
    assert main(["run", str(folder), "-e", "run.sh", "--experiment-name", "sh"]) == 0
    shell = [r for r in runs() if r.data.tags["mlflow.project.entryPoint"] == "run.sh"]
    assert shell[0].data.params["argv"] == "--from shell"
    assert shell[0].data.tags["mlflow.source.name"] == str(folder)
    assert "mlflow.source.git.commit" not in shell[0].data.tags  # not in a git repository


def train_version(value: int) -> dict[str, str]:
    code = f"import tracking\nwith tracking.start_run():\n    tracking.log_metric('v', {value})\n"
    mlproject = "entry_points:\n  main:\n    command: python train.py\n"
    return {"sub/MLproject": mlproject, "sub/train.py": code}


def test_git_urls_versions_and_subdirectories_never_touch_the_users_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, train_version(1))
    git(repo, "tag", "v1")
    git(repo, "checkout", "-q", "-b", "feature")
    feature = commit(repo, {"sub/train.py": train_version(2)["sub/train.py"]}, "feature")
    git(repo, "checkout", "-q", "main")
    head = commit(repo, {"sub/train.py": train_version(3)["sub/train.py"]}, "main moves on")
    write(repo, {"sub/train.py": train_version(99)["sub/train.py"], "untracked.txt": "mine"})
    status_before = git(repo, "status", "--porcelain")

    def run(*args: str) -> Run:
        assert main(["run", *args]) == 0
        newest = max(runs(), key=lambda r: r.info.start_time)
        return newest

    url = f"file://{repo}#sub"
    tagged = run(url, "--version", "v1")
    assert tagged.data.metrics["v"] == 1
    assert tagged.data.tags["mlflow.source.git.commit"] == first
    assert tagged.data.tags["mlflow.source.name"] == url
    assert tagged.data.tags["mlflow.source.git.repoURL"] == f"file://{repo}"
    branch = run(url, "--version", "feature")
    assert branch.data.metrics["v"] == 2
    assert branch.data.tags["mlflow.source.git.branch"] == "feature"
    assert run(url, "--version", feature[:10]).data.metrics["v"] == 2  # a short commit id
    default = run(url)  # the remote's default branch
    assert default.data.metrics["v"] == 3
    assert default.data.tags["mlflow.source.git.commit"] == head
    local = run(str(repo / "sub"))  # a folder runs in place, uncommitted changes included
    assert local.data.metrics["v"] == 99
    assert local.data.tags["trackflow.git.dirty"] == "true"
    assert local.data.tags["mlflow.source.name"] == f"{repo}#sub"
    diff = tracking.TrackingClient().download_artifacts(
        local.info.run_id, "environment/git.diff", str(tmp_path / "diff")
    )
    patch = Path(diff).read_text()
    assert "log_metric('v', 99)" in patch and "untracked.txt" in patch
    assert run(str(repo / "sub"), "--version", "v1").data.metrics["v"] == 1  # a clone
    # the user's work tree, index and branch are as they were
    assert git(repo, "status", "--porcelain") == status_before
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert "99" in (repo / "sub" / "train.py").read_text()


def fails(capsys: pytest.CaptureFixture[str], args: list[str], *phrases: str) -> None:
    """The command exits 1 with one clear line naming `phrases`, and creates no run."""
    assert main(["run", *args]) == 1
    output = capsys.readouterr().err
    errors = [line for line in output.splitlines() if line.startswith("trackflow: error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    error = errors[0]
    for phrase in phrases:
        assert phrase in error, (phrase, error)
    assert runs() == []


def test_clear_errors_before_any_run(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = f"data={tmp_path / 'data.txt'}"
    fails(capsys, [str(tmp_path / "nowhere")], "is not a project", "no such folder")
    write(tmp_path / "empty", {"notes.txt": "x"})
    fails(capsys, [str(tmp_path / "empty")], "is not a project", "no MLproject")
    fails(capsys, [str(project), "-e", "nope"], "Unknown entry point 'nope'", "fail, main")
    fails(capsys, [str(project), "-e", "missing.py"], "no file 'missing.py'")
    fails(capsys, [str(project), "-P", data], "needs a value for 'alpha' (float)")
    fails(capsys, [str(project), "-P", "alpha=x", "-P", data], "'alpha'", "must be a float", "'x'")
    fails(capsys, [str(project), "-P", "alpha=1", "-P", "n=2.5", "-P", data], "must be an int")
    fails(capsys, [str(project), "-P", "alpha=1", "-P", "data=/no/file"], "'/no/file' does not")
    fails(
        capsys,
        [str(project), "-P", "alpha=1", "-P", data, "-P", "target=plain"],
        "must be a uri",
    )
    fails(capsys, [str(project), "-P", "alpha"], "-P name=value")
    fails(capsys, [f"file://{project}", "--version", "nope"], "Version 'nope' not found")
    fails(capsys, [f"file://{tmp_path}/nothing"], "Could not fetch the git repository")
    fails(capsys, [f"file://{project}#absent"], "has no folder 'absent'")
    fails(capsys, [f"{project}#../up"], "must be a relative path inside")
    fails(capsys, [str(tmp_path / "empty"), "--version", "v1"], "needs a git repository")
    for key in ("conda_env: conda.yaml", "docker_env: {image: python}"):
        write(project, {"MLproject": f"{key}\n{MLPROJECT}"})
        fails(
            capsys, [str(project), "-P", "alpha=1", "-P", data], key.split(":")[0], "not supported"
        )
    write(project, {"MLproject": MLPROJECT.replace("alpha: float", "alpha: double")})
    fails(capsys, [str(project)], "type 'double'", "float, int, string, path, uri")
    write(project, {"MLproject": "entry_points:\n  main:\n    parameters: {}\n"})
    fails(capsys, [str(project)], "needs a command")
    write(project, {"MLproject": "python_env: nowhere.yaml\n" + MLPROJECT})
    fails(capsys, [str(project), "-P", "alpha=1", "-P", data], "nowhere.yaml not found")


def test_git_missing_is_a_clear_error(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "tracking.cli", "run", f"file://{project}"],
        env={**os.environ, "PATH": str(empty)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "git is not installed" in done.stderr and "Traceback" not in done.stderr


def test_flow_entry_point_is_the_projects_run(
    project: Path, prefect_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])
    entry = "flows_demo/pipeline.py:pipeline"
    args = ["run", str(project), "-e", entry, "-P", "scale=0.5", "-P", "repeats=3"]
    assert main([*args, "-P", "code=007"]) == 0
    found = runs()
    flow_runs = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert len(flow_runs) == 1
    run = flow_runs[0]
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["prefect.flow_run_id"].replace("-", "") == run.info.run_id  # the flow run
    assert tracking.get_experiment(run.info.experiment_id).name == "pipeline"
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == entry
    assert tags["trackflow.entrypoint"] == entry
    # converted and validated by the flow's signature ("007" stays text for a str parameter)
    assert run.data.params == {"scale": "0.5", "repeats": "3", "code": "007"}
    assert run.data.metrics["value"] == 1.5
    tasks = [r for r in found if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
    assert len(tasks) == 3 and {t.data.tags["prefect.task_name"] for t in tasks} == {"step"}

    assert main([*args, "--experiment-name", "chosen", "--run-name", "named"]) == 0
    chosen = tracking.get_experiment_by_name("chosen")
    named = tracking.search_runs([chosen.experiment_id], "tags.`prefect.flow_name` = 'pipeline'")
    assert [r.info.run_name for r in named] == ["named"]


def test_flow_entry_point_errors(
    project: Path,
    prefect_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])
    entry = "flows_demo/pipeline.py:pipeline"
    fails(capsys, [str(project), "-e", entry, "-P", "repeats=many"], "repeats", "repeats: int")
    fails(capsys, [str(project), "-e", entry, "-P", "bogus=1"], "no parameter 'bogus'", "scale")
    fails(capsys, [str(project), "-e", "flows_demo/pipeline.py:not_a_flow"], "not a Prefect flow")
    fails(capsys, [str(project), "-e", "flows_demo/pipeline.py:absent"], "absent is not defined")
    fails(capsys, [str(project), "-e", "flows_demo/nothing.py:pipeline"], "no file")


def test_the_readme_example_project() -> None:
    example = Path(__file__).parent.parent / "examples" / "project"
    data = f"data={example / 'data.csv'}"
    assert main(["run", str(example), "-P", data, "-P", "alpha=0.02"]) == 0
    run = only_run()
    assert run.data.params["alpha"] == "0.02" and run.data.params["epochs"] == "20"
    assert abs(run.data.metrics["w"] - 2.0) < 0.1  # y is about 2x
    history = tracking.TrackingClient().get_metric_history(run.info.run_id, "loss")
    assert len(history) == 20 and history[-1].value < history[0].value
