"""The `trackflow` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tracking
from tracking.cli import main


def test_help_and_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tracking.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"trackflow {tracking.__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "tracking.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "experiments" in out.stdout and "runs" in out.stdout


def test_experiments_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    tracking.set_experiment("cli-exp")
    with tracking.start_run(run_name="good") as good:
        tracking.log_param("lr", 0.1)
        tracking.log_metric("accuracy", 0.93)
    with tracking.start_run(run_name="bad"):
        tracking.log_metric("accuracy", 0.5)
    assert main(["experiments", "list"]) == 0
    out = capsys.readouterr().out
    assert "cli-exp" in out and "Default" in out
    assert main(["runs", "list", "-e", "cli-exp", "--filter", "metrics.accuracy > 0.9"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "bad" not in out and "0.93" in out and "lr" in out
    assert main(["runs", "describe", good.info.run_id]) == 0
    out = capsys.readouterr().out
    assert "FINISHED" in out and "accuracy" in out and "mlflow.runName" in out


def test_errors_are_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list"]) == 1  # reading never creates the default ./mlruns
    assert "mlruns: the folder does not exist" in capsys.readouterr().err
    tracking.TrackingClient().create_experiment("made")
    assert main(["runs", "describe", "0" * 32]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["runs", "list", "--filter", "metrics.x >"]) == 1
    assert "position" in capsys.readouterr().err
