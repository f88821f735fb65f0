"""Project environments built for real: `virtualenv` (venv + pip) and `uv`, from MLflow's
python_env.yaml, cached by content and reused; a recorded run rebuilt from its recorded
environment. Requirement sets stay tiny (six, plus what `import tracking` needs)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest
from git_repos import make_repo, write

import tracking
from tracking.cli import main
from tracking.projects import environments
from tracking.projects.environments import EnvSpec

PYTHON = ".".join(platform.python_version_tuple()[:2])
MLPROJECT = """\
name: envs
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      greeting: {type: string, default: hi}
    command: "python check.py {greeting}"
"""
PYTHON_ENV = f"""\
python: "{PYTHON}"
build_dependencies:
  - pip
dependencies:
  - six==1.16.0
"""
CHECK = """\
import sys
import six
import tracking

with tracking.start_run():
    tracking.log_param("six", six.__version__)
    tracking.log_param("prefix", sys.prefix)
    tracking.log_param("tracking_from", tracking.__file__)
    tracking.log_metric("length", len(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def env_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envs")


@pytest.fixture
def project(tmp_path: Path, env_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(environments.ENV_ROOT_ENV, str(env_root))
    repo = tmp_path / "project"
    make_repo(repo, {"MLproject": MLPROJECT, "python_env.yaml": PYTHON_ENV, "check.py": CHECK})
    return repo


def newest_run() -> tracking.Run:
    client = tracking.TrackingClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    return max(client.search_runs(ids, ""), key=lambda r: r.info.start_time)


@pytest.mark.parametrize("manager", ["virtualenv", "uv"])
def test_environment_built_cached_and_reused(
    manager: str, project: Path, env_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(project), "--env-manager", manager]) == 0
    built = capsys.readouterr().err
    run = newest_run()
    prefix = run.data.params["prefix"]
    assert prefix.startswith(str(env_root / f"{manager}-")), prefix
    assert run.data.params["six"] == "1.16.0"  # the project's own pin
    # Trackflow is the one this process imports, linked in as an editable install is
    assert os.path.realpath(run.data.params["tracking_from"]) == os.path.realpath(tracking.__file__)
    assert run.data.tags["mlflow.project.env"] == manager
    requirements = Path(
        tracking.TrackingClient().download_artifacts(
            run.info.run_id, "environment/requirements.txt", str(project.parent / "r")
        )
    ).read_text()
    assert "six==1.16.0" in requirements and "PyYAML==" in requirements
    assert f"Building {manager} environment (Python {PYTHON}" in built

    # the second build is a cache hit: same environment, nothing rebuilt
    marker = Path(prefix) / environments.MARKER
    stamp = marker.stat().st_mtime_ns
    assert main(["run", str(project), "--env-manager", manager, "-P", "greeting=hello"]) == 0
    assert f"Reusing {manager} environment {prefix}" in capsys.readouterr().err
    again = newest_run()
    assert again.data.params["prefix"] == prefix and again.data.metrics["length"] == 5
    assert marker.stat().st_mtime_ns == stamp
    started = time.perf_counter()
    env = environments.prepare(
        manager, EnvSpec.from_python_env(str(project / "python_env.yaml")), False
    )
    print(f"second {manager} build (cache hit): {time.perf_counter() - started:.3f} s")
    assert env.reused and env.directory == prefix


def test_reproduce_in_the_recorded_environment(
    project: Path, env_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(project), "--env-manager", "uv", "-P", "greeting=again"]) == 0
    recorded = newest_run()
    capsys.readouterr()
    assert main(["runs", "reproduce", recorded.info.run_id, "--env-manager", "uv", "--check"]) == 0
    out = capsys.readouterr().out
    assert "every metric within 1e-09" in out
    new = newest_run()
    assert new.data.tags["trackflow.reproduced_from"] == recorded.info.run_id
    assert new.data.params["greeting"] == "again" and new.data.metrics["length"] == 5
    # built from the recorded requirements.txt (every package pinned), not from the project's
    assert new.data.params["prefix"] != recorded.data.params["prefix"]
    assert new.data.params["prefix"].startswith(str(env_root / "uv-"))
    assert new.data.params["six"] == "1.16.0"


def test_environment_errors(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def error(*args: str) -> str:
        assert main(["run", str(project), *args]) == 1
        return capsys.readouterr().err

    write(project, {"python_env.yaml": PYTHON_ENV.replace(PYTHON, "3.99")})
    message = error("--env-manager", "uv")
    assert "Python 3.99 is not available here; available:" in message
    assert platform.python_version() in message
    write(project, {"python_env.yaml": "python: 3.10\n"})
    assert "must be a quoted version" in error("--env-manager", "virtualenv")
    write(project, {"python_env.yaml": "dependencies: six==1.16.0\n"})
    assert "dependencies must be a list" in error("--env-manager", "uv")
    write(project, {"python_env.yaml": "dependencies: ['-r missing.txt']\n"})
    assert "missing.txt cannot be read" in error("--env-manager", "uv")
    write(project, {"python_env.yaml": "dependencies: [trackflow-test-no-such-package==1.0]\n"})
    message = error("--env-manager", "uv")
    assert "Building the environment failed while installing the dependencies" in message
    assert "trackflow-test-no-such-package" in message
    with pytest.raises(
        tracking.projects.ExecutionError, match="Unknown environment manager 'conda'"
    ):
        tracking.projects.run(str(project), env_manager="conda")
    client = tracking.TrackingClient()
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()], "")
    assert not [p for p in os.listdir(os.environ[environments.ENV_ROOT_ENV]) if "3.99" in p]
