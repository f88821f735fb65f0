"""Shared fixtures: every test gets its own mlruns/ folder and a clean fluent state."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracking
from tracking import config, fluent

pytest_plugins = ["s3_servers"]

MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_ARTIFACT_ROOT",
    "MLFLOW_RUN_ID",
    "MLFLOW_TRUNCATE_LONG_VALUES",
)


@pytest.fixture(autouse=True)
def tracking_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory whose ./mlruns is the tracking store."""
    for name in MLFLOW_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    config.reset_tracking_uri()
    fluent._active_experiment = None
    yield tmp_path / "mlruns"
    while tracking.active_run():
        tracking.end_run()
    config.reset_tracking_uri()
    fluent._active_experiment = None
    os.environ.pop("MLFLOW_TRACKING_URI", None)
