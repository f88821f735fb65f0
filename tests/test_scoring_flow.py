"""The scheduled scoring example (examples/scoring_flow.py) against a real Prefect API: it
scores with whatever version @champion points at, records it, and refuses bad files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import lightgbm as lgb
import pandas as pd
import pytest
from example_modules import import_example
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import tracking
import tracking.lightgbm
import tracking.sklearn

pytestmark = pytest.mark.usefixtures("prefect_api")

MODEL = "iris-classifier"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    yield import_example("scoring_flow")
    sys.modules.pop("scoring_flow", None)


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, Any]:
    data = load_iris(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return X, data.target


def _champion(model: Any, X: pd.DataFrame, flavor: Any) -> int:
    with tracking.start_run():
        info = flavor.log_model(
            model, "model", input_example=X.head(3), registered_model_name=MODEL
        )
    version = info.registered_model_version
    tracking.MlflowClient().set_registered_model_alias(MODEL, "champion", version)
    return int(version)


def _run(example: ModuleType, input_path: Path) -> Any:
    return example.scoring_flow(input_path=str(input_path), return_state=True)


def test_scores_with_the_current_champion(
    example: ModuleType, iris: tuple[pd.DataFrame, Any], tmp_path: Path
) -> None:
    X, y = iris
    batch = tmp_path / "batch.csv"
    X.sample(30, random_state=0).to_csv(batch, index=False)
    first = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    assert _champion(first, X, tracking.lightgbm) == 1

    state = _run(example, batch)
    assert state.is_completed(), state
    result = state.result()
    assert result["rows_scored"] == 30 and result["model_version"] == 1
    scored = pd.read_csv(result["output_path"])
    assert scored["prediction"].tolist() == first.predict(pd.read_csv(batch)).tolist()
    client = tracking.MlflowClient()
    flow_run = client.get_run(state.state_details.flow_run_id.hex)
    assert flow_run.data.tags["model_uri"] == f"models:/{MODEL}/1"
    assert flow_run.data.tags["model_version"] == "1"
    score_run = next(
        r
        for r in tracking.search_runs(
            experiment_names=["iris-scoring"], filter_string="tags.`prefect.task_name` = 'score'"
        )
    )
    assert score_run.data.metrics["rows_scored"] == 30
    assert [f.path for f in client.list_artifacts(score_run.info.run_id)] == [
        "batch.csv.predictions.csv"
    ]

    # a promotion is picked up by the next run, with no redeploy
    second = LogisticRegression(max_iter=500).fit(X, y)
    assert _champion(second, X, tracking.sklearn) == 2
    state = _run(example, batch)
    assert state.result()["model_version"] == 2
    assert pd.read_csv(batch.with_name("batch.csv.predictions.csv"))["prediction"].tolist() == (
        second.predict(pd.read_csv(batch)).tolist()
    )


def test_a_file_that_breaks_the_signature_fails_the_run(
    example: ModuleType, iris: tuple[pd.DataFrame, Any], tmp_path: Path
) -> None:
    X, y = iris
    _champion(lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y), X, tracking.lightgbm)
    broken = tmp_path / "broken.csv"
    X.drop(columns=["petal_length"]).head(5).to_csv(broken, index=False)
    state = _run(example, broken)
    assert state.is_failed()
    with pytest.raises(tracking.TrackingError, match=r"missing column\(s\) \['petal_length'\]"):
        state.result()
    assert not broken.with_name("broken.csv.predictions.csv").exists()


def test_without_a_champion_the_run_fails_naming_the_alias(
    example: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "rows.csv").write_text("a\n1\n")
    state = _run(example, tmp_path / "rows.csv")
    assert state.is_failed()
    with pytest.raises(tracking.TrackingError, match=MODEL):
        state.result()


def test_docstring_shows_a_schedule(example: ModuleType) -> None:
    assert 'scoring_flow.serve(name="hourly-scoring", cron="0 * * * *"' in (example.__doc__ or "")
    deployment = example.scoring_flow.to_deployment(
        name="hourly-scoring", cron="0 * * * *", parameters={"input_path": "rows.csv"}
    )
    assert [s.schedule.cron for s in deployment.schedules] == ["0 * * * *"]
