"""The example pipeline (examples/iris_pipeline.py): in-process against a real Prefect API, and
once as a script the way a newcomer runs it (Prefect's temporary server, ./mlruns)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from example_modules import import_example
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import tracking
import tracking.sklearn
from tracking import TrackingClient
from tracking.entities import Run

pytestmark = pytest.mark.usefixtures("prefect_api")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "iris_pipeline.py"
EXPERIMENT = "iris-pipeline"
C_VALUES = [0.01, 0.1, 1.0, 10.0]
PARENT_TAG = "mlflow.parentRunId"


def _import_example() -> ModuleType:
    return import_example("iris_pipeline")


def _test_accuracy(model: Any) -> float:
    """The accuracy on the example's split (the spec's: test_size=0.2, random_state=42)."""
    X, y = load_iris(return_X_y=True)
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    return float(accuracy_score(y_test, model.predict(X_test)))


class Result:
    """One in-process run of the example flow, read back from its store."""

    def __init__(self, store: str, summary: dict[str, Any], flow_run_id: str) -> None:
        self.store = store
        self.summary = summary
        self.flow_run_id = flow_run_id
        self.client = TrackingClient(tracking_uri=store)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        assert experiment is not None, f"no experiment {EXPERIMENT!r} in {store}"
        self.experiment = experiment
        self.runs: list[Run] = self.client.search_runs([experiment.experiment_id])

    def children(self, task_name: str) -> list[Run]:
        return [r for r in self.runs if r.data.tags.get("prefect.task_name") == task_name]

    def run(self, run_id: str) -> Run:
        return next(r for r in self.runs if r.info.run_id == run_id)


@pytest.fixture(scope="module")
def result(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Result]:
    """Run the flow once for the module, in its own folder with its own ./mlruns."""
    example = _import_example()
    workdir = tmp_path_factory.mktemp("iris")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        tracking.config.reset_tracking_uri()
        state = example.iris_pipeline(return_state=True)
        assert state.is_completed(), state
        store = tracking.get_tracking_uri()
    yield Result(store, state.result(), state.state_details.flow_run_id.hex)
    sys.modules.pop("iris_pipeline", None)


def test_one_finished_flow_run_in_the_flows_experiment(result: Result) -> None:
    assert result.store.endswith("/mlruns")
    top = [r for r in result.runs if PARENT_TAG not in r.data.tags]
    assert [r.info.run_id for r in top] == [result.flow_run_id]
    flow_run = top[0]
    assert flow_run.info.status == "FINISHED"
    assert flow_run.info.experiment_id == result.experiment.experiment_id
    assert flow_run.data.tags["prefect.flow_name"] == EXPERIMENT
    assert flow_run.data.params == {"c_values": str(C_VALUES), "max_iter": "200"}


def test_every_task_is_a_finished_child_of_the_flow_run(result: Result) -> None:
    children = [r for r in result.runs if r.info.run_id != result.flow_run_id]
    assert sorted(r.data.tags["prefect.task_name"] for r in children) == sorted(
        ["load_data", "split"] + ["train"] * len(C_VALUES)
    )
    for child in children:
        assert child.data.tags[PARENT_TAG] == result.flow_run_id
        assert child.info.status == "FINISHED"
        assert child.info.experiment_id == result.experiment.experiment_id


def test_split_params_summarise_the_arrays(result: Result) -> None:
    [split] = result.children("split")
    assert split.data.params["X"] == "ndarray(shape=(150, 4), dtype=float64)"
    assert split.data.params["y"].startswith("ndarray(shape=(150,), dtype=int")
    assert split.data.params["test_size"] == "0.2"
    assert split.data.params["random_state"] == "42"


def test_one_training_run_per_setting(result: Result) -> None:
    trains = result.children("train")
    assert sorted(float(r.data.params["C"]) for r in trains) == C_VALUES
    for run in trains:
        assert run.data.params == {"C": run.data.params["C"], "max_iter": "200"}  # data excluded
        accuracy = run.data.metrics["accuracy"]
        assert 0.5 <= accuracy <= 1.0
        assert set(run.data.metrics) == {"accuracy", "trackflow.duration_seconds"}


def test_flow_run_names_the_best_training_run(result: Result) -> None:
    trains = result.children("train")
    best_accuracy = max(r.data.metrics["accuracy"] for r in trains)
    # The example keeps the first of equally good settings, in the order of C_VALUES.
    best = min(
        (r for r in trains if r.data.metrics["accuracy"] == best_accuracy),
        key=lambda r: C_VALUES.index(float(r.data.params["C"])),
    )
    flow_run = result.run(result.flow_run_id)
    assert flow_run.data.tags["best_run_id"] == best.info.run_id
    assert flow_run.data.tags["best_C"] == best.data.params["C"]
    assert flow_run.data.metrics["best_accuracy"] == best_accuracy
    assert result.summary == {"best_accuracy": best_accuracy, "best_run_id": best.info.run_id}


def test_best_model_is_logged_and_loads(result: Result) -> None:
    files = {f.path for f in result.client.list_artifacts(result.flow_run_id, "model")}
    assert {"model/MLmodel", "model/model.pkl", "model/requirements.txt"} <= files
    flow_run = result.run(result.flow_run_id)

    tracking.set_tracking_uri(result.store)  # this test's own cwd has no mlruns
    model = tracking.sklearn.load_model(f"runs:/{result.flow_run_id}/model")

    assert type(model).__name__ == "LogisticRegression"
    assert str(model.C) == flow_run.data.tags["best_C"]
    assert model.max_iter == 200
    assert _test_accuracy(model) == flow_run.data.metrics["best_accuracy"]


def test_script_runs_from_a_fresh_folder(tmp_path: Path) -> None:
    """`python examples/iris_pipeline.py` as a newcomer runs it: Prefect's temporary server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    workdir = tmp_path / "fresh"
    workdir.mkdir()

    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    store = workdir / "mlruns"
    assert store.is_dir()
    assert f"file://{store}" in proc.stdout
    client = TrackingClient(tracking_uri=str(store))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    [flow_run] = [r for r in runs if PARENT_TAG not in r.data.tags]
    assert flow_run.info.status == "FINISHED"
    assert f"runs:/{flow_run.info.run_id}/model" in proc.stdout
    assert len(runs) == 1 + 2 + len(C_VALUES)
    assert (
        store / experiment.experiment_id / flow_run.info.run_id / "artifacts/model/MLmodel"
    ).is_file()
