"""LightGBM and XGBoost autologging: params, per-iteration metrics, feature importance, the
model with its signature; scoping to the active run; `@task(autolog=True)` for every flavor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import tracking as mlflow
import tracking.lightgbm
import tracking.sklearn
import tracking.xgboost
from tracking.models.autologging import FIT_COUNT_TAG, AutologWarning
from tracking.models.lightgbm import autologging as lgb_autolog
from tracking.models.xgboost import autologging as xgb_autolog

ROUNDS = 6
pytestmark = pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")


@pytest.fixture(autouse=True)
def autolog_off() -> Iterator[None]:
    yield
    for flavor in (tracking.lightgbm, tracking.xgboost, tracking.sklearn):
        flavor.autolog(disable=True)
    assert not lgb_autolog.AUTOLOG.patched and not xgb_autolog.AUTOLOG.patched


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    iris = load_iris(as_frame=True)
    X = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return X, iris.target.to_numpy()


def _artifacts(tracking_dir: Path, run: Any) -> Path:
    return tracking_dir / run.info.experiment_id / run.info.run_id / "artifacts"


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, key)]


def test_lightgbm_train(tracking_dir: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    tracking.lightgbm.autolog(log_input_examples=True)
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "learning_rate": 0.2}
    with mlflow.start_run() as run:
        booster = lgb.train(
            params,
            lgb.Dataset(X, y),
            num_boost_round=ROUNDS,
            valid_sets=[lgb.Dataset(X, y)],
            valid_names=["valid"],
        )
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.params["learning_rate"] == "0.2"
    assert logged.data.params["num_boost_round"] == str(ROUNDS)
    assert "train_set" not in logged.data.params
    history = _history(run.info.run_id, "valid-multi_logloss")
    assert [step for step, _ in history] == list(range(ROUNDS))
    assert history[-1][1] < history[0][1]  # the loss went down
    artifacts = _artifacts(tracking_dir, run)
    split = json.loads((artifacts / "feature_importance_split.json").read_text())
    assert set(split) == set(X.columns)
    assert (
        json.loads((artifacts / "feature_importance_gain.json").read_text()).keys() == split.keys()
    )
    meta = yaml.safe_load((artifacts / "model" / "MLmodel").read_text())
    assert meta["flavors"]["lightgbm"]["model_class"] == "lightgbm.basic.Booster"
    assert "signature" in meta and (artifacts / "model" / "input_example.json").is_file()
    loaded = tracking.lightgbm.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))


def test_lightgbm_early_stopping_and_estimator(
    tracking_dir: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = data
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.3, random_state=1)
    tracking.lightgbm.autolog()
    with mlflow.start_run() as run:
        model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.5, verbose=-1)
        model.fit(
            X_train,
            y_train,
            eval_set=[(X_valid, y_valid)],
            callbacks=[lgb.early_stopping(2, verbose=False)],
        )
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.tags["estimator_name"] == "LGBMClassifier"
    assert logged.data.tags[FIT_COUNT_TAG] == "1"
    metrics = logged.data.metrics
    assert metrics["best_iteration"] == model.best_iteration_ - 1
    stopped = int(metrics["stopped_iteration"])
    assert stopped == len(_history(run.info.run_id, "valid_0-multi_logloss")) - 1 < 200
    meta = yaml.safe_load((_artifacts(tracking_dir, run) / "model" / "MLmodel").read_text())
    assert meta["flavors"]["lightgbm"]["model_class"] == "lightgbm.sklearn.LGBMClassifier"
    pyfunc = tracking.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert [c.name for c in pyfunc.signature.inputs.inputs] == list(X.columns)
    np.testing.assert_array_equal(pyfunc.predict(X), model.predict(X))


def test_xgboost_train_and_estimator(
    tracking_dir: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = data
    tracking.xgboost.autolog(importance_types=["weight", "gain"], model_format="json")
    with mlflow.start_run() as run:
        dtrain = xgb.DMatrix(X, y)
        booster = xgb.train(
            {"objective": "multi:softprob", "num_class": 3, "eta": 0.3},
            dtrain,
            num_boost_round=ROUNDS,
            evals=[(dtrain, "train")],
            verbose_eval=False,
        )
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.params["eta"] == "0.3"
    assert logged.data.params["num_boost_round"] == str(ROUNDS)
    assert [s for s, _ in _history(run.info.run_id, "train-mlogloss")] == list(range(ROUNDS))
    artifacts = _artifacts(tracking_dir, run)
    for kind in ("weight", "gain"):
        assert set(json.loads((artifacts / f"feature_importance_{kind}.json").read_text())) <= set(
            X.columns
        )
    pyfunc = tracking.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert pyfunc.metadata.flavors["xgboost"]["model_format"] == "json"
    assert [c.name for c in pyfunc.signature.inputs.inputs] == list(X.columns)  # from DMatrix
    np.testing.assert_allclose(pyfunc.predict(X), booster.predict(dtrain))

    with mlflow.start_run() as run:
        model = xgb.XGBClassifier(n_estimators=50, early_stopping_rounds=2)
        model.fit(X, y, eval_set=[(X, y)], verbose=False)
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.tags["estimator_class"] == "xgboost.sklearn.XGBClassifier"
    assert logged.data.metrics["best_iteration"] == model.best_iteration
    assert _history(run.info.run_id, "validation_0-mlogloss")
    loaded = tracking.xgboost.load_model(f"runs:/{run.info.run_id}/model")
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_no_run_no_logging_and_disable_restores(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    originals = (lgb.train, xgb.train, lgb.LGBMClassifier.fit, xgb.XGBClassifier.fit)
    tracking.lightgbm.autolog()
    tracking.xgboost.autolog()
    assert lgb.train is not originals[0] and xgb.XGBClassifier.fit is not originals[3]
    lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)  # no active run: nothing logged
    xgb.train({}, xgb.DMatrix(X, y), num_boost_round=2)
    assert mlflow.search_runs(experiment_ids=["0"]) == []
    tracking.lightgbm.autolog(disable=True)
    tracking.xgboost.autolog(disable=True)
    assert (lgb.train, xgb.train, lgb.LGBMClassifier.fit, xgb.XGBClassifier.fit) == originals
    with pytest.raises(TypeError, match="log_modles"):
        tracking.lightgbm.autolog(log_modles=False)
    with pytest.raises(mlflow.MlflowException, match="Unknown importance_types"):
        tracking.xgboost.autolog(importance_types=["size"])


def test_one_run_many_libraries_and_nested_fits(
    tracking_dir: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """All three autologs on: each fit is logged once, under model, model_1, model_2; a
    LightGBM model inside a Pipeline is logged as the Pipeline only."""
    X, y = data
    for flavor in (tracking.sklearn, tracking.lightgbm, tracking.xgboost):
        flavor.autolog()
    with mlflow.start_run() as run:
        lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)
        with pytest.warns(AutologWarning, match=r"xgboost.train \(fit #1 .* learning_rate"):
            xgb.XGBRegressor(n_estimators=3).fit(X, y)  # params LightGBM logged differently
        with pytest.warns(AutologWarning, match=r"LogisticRegression.fit \(fit #2 .*: verbose"):
            LogisticRegression(max_iter=300).fit(X, y)
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags[FIT_COUNT_TAG] == "3"
    artifacts = _artifacts(tracking_dir, run)
    kinds = {
        d: list(yaml.safe_load((artifacts / d / "MLmodel").read_text())["flavors"])
        for d in ("model", "model_1", "model_2")
    }
    assert kinds == {
        "model": ["lightgbm", "python_function"],
        "model_1": ["python_function", "xgboost"],
        "model_2": ["python_function", "sklearn"],
    }
    with mlflow.start_run() as run:
        Pipeline([("scale", StandardScaler()), ("lgb", lgb.LGBMClassifier(verbose=-1))]).fit(X, y)
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.tags[FIT_COUNT_TAG] == "1"
    assert logged.data.tags["estimator_name"] == "Pipeline"
    assert not (_artifacts(tracking_dir, run) / "feature_importance_split.json").exists()


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.filterwarnings("ignore::tracking.models.autologging.AutologWarning")
def test_task_autolog_turns_on_every_installed_flavor(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    from flows import flow
    from tasks import task

    X, y = data

    @task(autolog=True, log_params=False)
    def train() -> str:
        lgb.train({"verbose": -1}, lgb.Dataset(X, y.astype(float)), num_boost_round=3)
        xgb.XGBClassifier(n_estimators=3).fit(X, y)
        LogisticRegression(max_iter=300).fit(X, y)
        return mlflow.active_run().info.run_id

    @task(log_params=False)
    def plain() -> str:
        lgb.train({"verbose": -1}, lgb.Dataset(X, y.astype(float)), num_boost_round=3)
        return mlflow.active_run().info.run_id

    @flow(name="boosting-autolog-flow", log_params=False)
    def pipeline() -> list[str]:
        ids = [train(), plain()]
        assert not lgb_autolog.AUTOLOG.patched and not xgb_autolog.AUTOLOG.patched
        return ids

    logged_id, plain_id = pipeline()
    logged = mlflow.get_run(logged_id)
    assert logged.data.tags[FIT_COUNT_TAG] == "3"
    assert logged.data.tags["estimator_name"] == "LogisticRegression"  # the latest fit
    assert "num_boost_round" in logged.data.params
    plain_run = mlflow.get_run(plain_id)
    assert FIT_COUNT_TAG not in plain_run.data.tags
