"""Shared fixtures: every test gets its own mlruns/ folder and a clean fluent state."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Prefect reads its settings at import: point it at a throwaway home before anything imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="trackflow-prefect-home-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", os.path.join(_PREFECT_HOME, "results"))
# Task-run journals (tracking.journal) of the tests' processes, away from the user's own.
os.environ.setdefault("TRACKFLOW_JOURNAL_DIR", os.path.join(_PREFECT_HOME, "journal"))

import pytest  # noqa: E402

import tracking  # noqa: E402
from tracking import state  # noqa: E402

pytest_plugins = ["s3_servers", "pg_server"]

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
    state.reset()
    yield tmp_path / "mlruns"
    while tracking.active_run():
        tracking.end_run()
    state.reset()
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API (temporary server + SQLite), started once per test session."""
    import prefect.settings as ps
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={ps.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture
def prefect_env(prefect_api: None, tracking_dir: Path) -> dict[str, str]:
    """Environment for a subprocess running flows against the session's Prefect API, tracking
    into this test's ./mlruns."""
    import prefect.settings as ps

    return {
        **os.environ,
        "PREFECT_API_URL": str(ps.PREFECT_API_URL.value()),
        "MLFLOW_TRACKING_URI": str(tracking_dir),
    }
