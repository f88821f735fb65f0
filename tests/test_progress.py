"""Long commands show a progress bar on a terminal, and nothing in logs or pipes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tracking import TrackingClient


def trackflow(*args: str, terminal: bool, cwd: Path) -> str:
    """Run `trackflow ARGS` in a subprocess; its stderr. `terminal`: rich treats stderr as a
    terminal (TTY_COMPATIBLE), as it does for a user at a console."""
    env = {k: v for k, v in os.environ.items() if k not in ("TTY_COMPATIBLE", "NO_COLOR")}
    env["TTY_COMPATIBLE" if terminal else "NO_COLOR"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", "import sys, tracking.cli; sys.exit(tracking.cli.main())", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A file store with 3 finished runs (one deleted) and a run with 60 small artifacts."""
    uri = str(tmp_path / "mlruns")
    client = TrackingClient(uri)
    experiment_id = client.create_experiment("bars")
    for step in range(3):
        run_id = client.create_run(experiment_id).info.run_id
        client.log_metric(run_id, "loss", 1 / (step + 1))
        client.set_terminated(run_id)
    client.delete_run(run_id)
    files = tmp_path / "files"
    files.mkdir()
    for number in range(60):
        (files / f"part-{number:02}.txt").write_text(str(number))
    run_id = client.create_run(experiment_id).info.run_id
    client.log_artifacts(run_id, str(files), "parts")
    client.set_terminated(run_id)
    (tmp_path / "artifacts_run").write_text(run_id)
    return uri


@pytest.mark.parametrize("terminal", [True, False])
def test_migrate_gc_and_downloads_show_progress_on_a_terminal(
    store: str, tmp_path: Path, terminal: bool
) -> None:
    run_id = (tmp_path / "artifacts_run").read_text()
    outputs = {
        "migrating": trackflow(
            "migrate", "--from", store, "--to", f"sqlite:///{tmp_path}/copy.db", terminal=terminal,
            cwd=tmp_path,
        ),
        "gc": trackflow("gc", "--tracking-uri", store, terminal=terminal, cwd=tmp_path),
        "downloading": trackflow(
            "artifacts", "download", run_id, "--tracking-uri", store, "--dst",
            str(tmp_path / "downloaded"), terminal=terminal, cwd=tmp_path,
        ),
    }  # fmt: skip
    for description, err in outputs.items():
        if terminal:
            assert description in err, err
        else:
            assert description not in err and "\x1b[" not in err, err
    if terminal:
        text = {k: re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", v) for k, v in outputs.items()}
        assert "4/4 runs" in text["migrating"] and "copied 4 · skipped 0" in text["migrating"]
        assert "1/1 items" in text["gc"] and "60/60 files" in text["downloading"]
    assert len(list((tmp_path / "downloaded" / "parts").iterdir())) == 60
