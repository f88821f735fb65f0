"""The retraining example (examples/retraining_flow.py) against a real Prefect API: the first
run promotes version 1, a worse candidate is not promoted, a better one is."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from example_modules import import_example
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import tracking
import tracking.pyfunc
from tracking import TrackingClient

pytestmark = pytest.mark.usefixtures("prefect_api")

MODEL = "iris-classifier"
# Test accuracies on the example's split (test_size=0.2, random_state=42).
FIRST_C, WORSE_C, BETTER_C = 0.01, 0.003, 1.0  # 0.933, 0.900, 1.000


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    yield import_example("retraining_flow")
    sys.modules.pop("retraining_flow", None)


def _run(example: ModuleType, C: float) -> tuple[dict[str, Any], str]:
    state = example.retraining_flow(C=C, return_state=True)
    assert state.is_completed(), state
    return state.result(), state.state_details.flow_run_id.hex


def _accuracy(model: Any) -> float:
    X, y = load_iris(return_X_y=True)
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    return float(np.mean(model.predict(X_test) == y_test))


@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_promotes_only_better_models(example: ModuleType, store: str, tmp_path: Path) -> None:
    if store == "sqlite":
        tracking.set_tracking_uri(f"sqlite:///{tmp_path / 'tracking.db'}")
    client = TrackingClient()

    # 1. Nothing in service: the first candidate is promoted to version 1.
    first, first_run = _run(example, FIRST_C)
    assert first["promoted"] is True
    assert first["champion_version"] == 1
    assert first["previous_champion_accuracy"] is None
    v1 = client.get_model_version_by_alias(MODEL, "champion")
    assert (v1.version, v1.current_stage) == (1, "Production")
    first_accuracy = client.get_run(v1.run_id).data.metrics["accuracy"]
    assert first_accuracy == pytest.approx(0.9333, abs=1e-3) == first["candidate_accuracy"]
    assert v1.tags == {"accuracy": f"{first_accuracy:.4f}"}
    # The registered run is the train task's run, a child of the flow run.
    train_run = client.get_run(v1.run_id)
    assert train_run.data.tags["mlflow.parentRunId"] == first_run
    assert train_run.data.params["C"] == str(FIRST_C)
    assert client.get_run(first_run).data.tags["promoted"] == "true"

    # 2. A worse candidate is logged but not registered.
    worse, worse_run = _run(example, WORSE_C)
    assert worse["promoted"] is False
    assert worse["champion_version"] == 1
    assert worse["candidate_accuracy"] < first_accuracy
    assert worse["previous_champion_accuracy"] == first_accuracy
    assert [v.version for v in client.search_model_versions(f"name = '{MODEL}'")] == [1]
    assert client.get_model_version_by_alias(MODEL, "champion").version == 1
    assert client.get_run(worse_run).data.tags["promoted"] == "false"
    tracking.pyfunc.load_model(worse["candidate_model_uri"])  # still there, for inspection

    # 3. A better candidate becomes version 2; version 1 is archived.
    better, _ = _run(example, BETTER_C)
    assert better["promoted"] is True
    assert better["champion_version"] == 2
    assert better["candidate_accuracy"] == 1.0 > first_accuracy
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name='{MODEL}'")}
    assert stages == {1: "Archived", 2: "Production"}
    assert client.get_registered_model(MODEL).aliases == {"champion": 2}
    assert [v.version for v in client.get_latest_versions(MODEL, ["Production"])] == [2]

    for uri in (f"models:/{MODEL}@champion", f"models:/{MODEL}/Production"):
        served = tracking.pyfunc.load_model(uri)
        assert served.get_raw_model().C == BETTER_C
        assert _accuracy(served) == 1.0

    # 4. An equally good candidate does not replace the champion either.
    tie, _ = _run(example, BETTER_C)
    assert (tie["promoted"], tie["champion_version"]) == (False, 2)


def test_champion_falls_back_to_production(example: ModuleType) -> None:
    """Without a @champion alias the newest Production version is the one to beat."""
    first, _ = _run(example, FIRST_C)
    client = TrackingClient()
    client.delete_registered_model_alias(MODEL, "champion")
    worse, _ = _run(example, WORSE_C)
    assert (worse["promoted"], worse["champion_version"]) == (False, 1)
    assert worse["previous_champion_accuracy"] == first["candidate_accuracy"]


def test_docstring_shows_a_schedule(example: ModuleType) -> None:
    assert 'retraining_flow.serve(name="nightly-retraining", cron="0 3 * * *")' in (
        example.__doc__ or ""
    )
    deployment = example.retraining_flow.to_deployment(name="nightly-retraining", cron="0 3 * * *")
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
