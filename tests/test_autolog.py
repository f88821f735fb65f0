"""sklearn autologging: MLflow's names and values, scoping to the context's run, patch hygiene."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.cluster import KMeans
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler, scale
from sklearn.svm import LinearSVC

import tracking as mlflow
import tracking.pyfunc
import tracking.sklearn
from tracking.models.sklearn import autologging as sklearn_autolog
from tracking.models.sklearn.autologging import FIT_COUNT_TAG, AutologWarning

CLASSIFIER_METRICS = {
    "training_accuracy_score",
    "training_precision_score",
    "training_recall_score",
    "training_f1_score",
    "training_log_loss",
    "training_roc_auc",
    "training_score",
}
REGRESSOR_METRICS = {
    "training_mean_squared_error",
    "training_root_mean_squared_error",
    "training_mean_absolute_error",
    "training_r2_score",
    "training_score",
}


@pytest.fixture(autouse=True)
def autolog_off() -> Iterator[None]:
    yield
    mlflow.sklearn.autolog(disable=True)
    assert not sklearn_autolog._patched
    assert "__init_subclass__" not in BaseEstimator.__dict__


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any]:
    X, y = load_iris(return_X_y=True)
    return scale(X), y  # scaled: LogisticRegression converges in a few iterations


@pytest.fixture(scope="module")
def binary() -> tuple[Any, Any]:
    return make_classification(n_samples=200, n_features=6, random_state=0)


@pytest.fixture(scope="module")
def diabetes() -> tuple[Any, Any]:
    return load_diabetes(return_X_y=True)


def all_runs() -> list[mlflow.Run]:
    return mlflow.search_runs(search_all_experiments=True)


def artifact_dirs(run_id: str) -> set[str]:
    return {f.path for f in mlflow.MlflowClient().list_artifacts(run_id)}


def fit_in_run(estimator: Any, *args: Any, **kwargs: Any) -> mlflow.Run:
    with mlflow.start_run() as run:
        estimator.fit(*args, **kwargs)
    return mlflow.get_run(run.info.run_id)


def strings(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in params.items()}


# --- what one fit logs -----------------------------------------------------------------------
def test_classifier_params_tags_metrics_and_model(iris: tuple[Any, Any]) -> None:
    X, y = iris
    mlflow.sklearn.autolog()
    model = LogisticRegression(max_iter=500, C=0.5)
    run = fit_in_run(model, X, y)

    assert run.data.params == strings(model.get_params())
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    y_pred, proba = model.predict(X), model.predict_proba(X)
    expected = {
        "training_accuracy_score": metrics.accuracy_score(y, y_pred),
        "training_precision_score": metrics.precision_score(y, y_pred, average="weighted"),
        "training_recall_score": metrics.recall_score(y, y_pred, average="weighted"),
        "training_f1_score": metrics.f1_score(y, y_pred, average="weighted"),
        "training_log_loss": metrics.log_loss(y, proba),
        "training_roc_auc": metrics.roc_auc_score(y, proba, average="weighted", multi_class="ovo"),
        "training_score": model.score(X, y),
    }
    assert run.data.metrics == pytest.approx(expected)

    assert artifact_dirs(run.info.run_id) == {"model"}
    loaded = tracking.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert isinstance(loaded, LogisticRegression)
    np.testing.assert_array_equal(loaded.predict(X), y_pred)
    # the model's signature: the training data's tensor in, one label per row out
    signature = tracking.pyfunc.load_model(f"runs:/{run.info.run_id}/model").signature
    assert signature.to_dict() == {
        "inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
        "params": None,
    }


def test_signature_and_input_example_options(iris: tuple[Any, Any]) -> None:
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    mlflow.sklearn.autolog(log_input_examples=True)
    run = fit_in_run(LogisticRegression(max_iter=500), frame, y)
    model = tracking.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert [c.name for c in model.signature.inputs.inputs] == ["a", "b", "c", "d"]
    stored = model.metadata.load_input_example(
        mlflow.MlflowClient().download_artifacts(run.info.run_id, "model")
    )
    pd.testing.assert_frame_equal(stored, frame.head(5))
    mlflow.sklearn.autolog(log_model_signatures=False)
    run = fit_in_run(LogisticRegression(max_iter=500), frame, y)
    assert tracking.pyfunc.load_model(f"runs:/{run.info.run_id}/model").signature is None


def test_binary_classifier_with_sample_weight(binary: tuple[Any, Any]) -> None:
    X, y = binary
    weight = np.linspace(0.1, 3.0, len(y))
    mlflow.sklearn.autolog(log_models=False)
    model = LogisticRegression()
    run = fit_in_run(model, X, y, sample_weight=weight)

    y_pred, proba = model.predict(X), model.predict_proba(X)
    expected = {
        "training_accuracy_score": metrics.accuracy_score(y, y_pred, sample_weight=weight),
        "training_precision_score": metrics.precision_score(
            y, y_pred, average="weighted", sample_weight=weight
        ),
        "training_recall_score": metrics.recall_score(
            y, y_pred, average="weighted", sample_weight=weight
        ),
        "training_f1_score": metrics.f1_score(y, y_pred, average="weighted", sample_weight=weight),
        "training_log_loss": metrics.log_loss(y, proba, sample_weight=weight),
        "training_roc_auc": metrics.roc_auc_score(y, proba[:, 1], sample_weight=weight),
        "training_score": model.score(X, y, sample_weight=weight),
    }
    assert run.data.metrics == pytest.approx(expected)
    # the weighted values differ from the unweighted ones: the weights were used
    assert run.data.metrics["training_log_loss"] != pytest.approx(metrics.log_loss(y, proba))
    assert artifact_dirs(run.info.run_id) == set()  # log_models=False


def test_regressor_metrics(diabetes: tuple[Any, Any]) -> None:
    X, y = diabetes
    mlflow.sklearn.autolog()
    model = Ridge(alpha=0.3)
    run = fit_in_run(model, X, y)

    assert run.data.params == strings(model.get_params())
    assert run.data.tags["estimator_name"] == "Ridge"
    assert set(run.data.metrics) == REGRESSOR_METRICS
    y_pred = model.predict(X)
    mse = metrics.mean_squared_error(y, y_pred)
    assert run.data.metrics == pytest.approx(
        {
            "training_mean_squared_error": mse,
            "training_root_mean_squared_error": np.sqrt(mse),
            "training_mean_absolute_error": metrics.mean_absolute_error(y, y_pred),
            "training_r2_score": metrics.r2_score(y, y_pred),
            "training_score": model.score(X, y),
        }
    )
    loaded = tracking.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_allclose(loaded.predict(X), y_pred)


def test_metrics_use_the_data_before_fit_changed_it(diabetes: tuple[Any, Any]) -> None:
    X, y = diabetes
    X = X + 10.0  # not centered already
    original = X.copy()
    mlflow.sklearn.autolog(log_models=False)
    model = LinearRegression(copy_X=False)  # centers X in place
    run = fit_in_run(model, X, y)
    assert not np.allclose(X, original)
    expected = metrics.r2_score(y, model.predict(original))
    assert run.data.metrics["training_r2_score"] == pytest.approx(expected)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_missing_predict_proba_and_failing_metrics_are_skipped(binary: tuple[Any, Any]) -> None:
    X, y = binary
    mlflow.sklearn.autolog(log_models=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutologWarning)  # no predict_proba is not a failure
        run = fit_in_run(LinearSVC(), X, y)
    assert set(run.data.metrics) == CLASSIFIER_METRICS - {"training_log_loss", "training_roc_auc"}

    class BadProba(ClassifierMixin, BaseEstimator):  # defined while patched: hooked
        def fit(self, X: Any, y: Any) -> BadProba:
            self.classes_ = np.unique(y)
            return self

        def predict(self, X: Any) -> Any:
            return np.zeros(len(X), dtype=int)

        def predict_proba(self, X: Any) -> Any:
            return np.full((len(X), 3), 1 / 3)  # three columns for two classes

    with pytest.warns(AutologWarning) as caught:
        run = fit_in_run(BadProba(), X, y)
    failed = {str(w.message).split()[2] for w in caught if w.category is AutologWarning}
    assert failed == {"training_log_loss", "training_roc_auc"}
    assert "training_log_loss" not in run.data.metrics
    assert "training_roc_auc" not in run.data.metrics
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(np.mean(y == 0))
    assert run.data.tags["estimator_name"] == "BadProba"


def test_store_failure_never_fails_the_fit(
    iris: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = iris
    mlflow.sklearn.autolog()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    with mlflow.start_run():
        monkeypatch.setattr(mlflow.MlflowClient, "log_batch", broken)
        with pytest.warns(AutologWarning, match="disk full"):
            model = LogisticRegression(max_iter=500).fit(X, y)
    assert hasattr(model, "coef_")


# --- meta-estimators: only the outermost fit -------------------------------------------------
def test_pipeline_logs_once_with_flattened_params(iris: tuple[Any, Any]) -> None:
    X, y = iris
    mlflow.sklearn.autolog()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=2.0))])
    run = fit_in_run(pipe, X, y)

    params = run.data.params
    assert params["clf__C"] == "2.0"
    assert params["scale__with_mean"] == "True"
    assert params["clf"] == "LogisticRegression"  # the estimator object: its class name
    assert params["steps"] == "[('scale', StandardScaler), ('clf', LogisticRegression)]"
    assert "C" not in params  # the inner fit logged nothing of its own
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.tags[FIT_COUNT_TAG] == "1"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "training_score")
    assert len(history) == 1
    assert history[0].value == pytest.approx(pipe.score(X, y))
    assert artifact_dirs(run.info.run_id) == {"model"}
    assert len(all_runs()) == 1


def test_fit_transform_and_fit_predict_are_outermost_calls(iris: tuple[Any, Any]) -> None:
    X, _ = iris
    mlflow.sklearn.autolog(log_models=False)
    assert not hasattr(Pipeline([("clf", LogisticRegression())]), "fit_transform")  # available_if
    with mlflow.start_run() as first:
        StandardScaler().fit(X)  # preprocessing on its own: not logged (as in MLflow)
        assert mlflow.get_run(first.info.run_id).data.params == {}
        Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=2))]).fit_transform(X)
    with mlflow.start_run() as second:
        Pipeline([("scale", StandardScaler()), ("km", KMeans(n_clusters=3))]).fit_predict(X)
    for active, key, value in ((first, "pca__n_components", "2"), (second, "km__n_clusters", "3")):
        data = mlflow.get_run(active.info.run_id).data
        assert data.tags["estimator_name"] == "Pipeline"
        assert data.tags[FIT_COUNT_TAG] == "1"
        assert data.params[key] == value


def test_grid_search_logs_once_without_child_runs(iris: tuple[Any, Any]) -> None:
    X, y = iris
    mlflow.sklearn.autolog()
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3)
    run = fit_in_run(search, X, y)

    params = run.data.params
    assert params["estimator"] == "LogisticRegression"
    assert params["param_grid"] == "{'C': [0.1, 1.0]}"
    assert params["best_C"] == str(search.best_params_["C"])
    assert "estimator__C" not in params  # seed estimator's untuned params are not logged
    assert run.data.tags["estimator_name"] == "GridSearchCV"
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert run.data.metrics["training_score"] == pytest.approx(search.score(X, y))
    assert artifact_dirs(run.info.run_id) == {"model", "best_estimator"}
    assert len(all_runs()) == 1


# --- several fits in one run -----------------------------------------------------------------
def test_second_fit_with_other_params_warns_and_logs_metrics(diabetes: tuple[Any, Any]) -> None:
    X, y = diabetes
    mlflow.sklearn.autolog()
    with mlflow.start_run() as active:
        first = Ridge(alpha=1.0).fit(X, y)
        with pytest.warns(AutologWarning, match="alpha"):
            second = Ridge(alpha=5.0).fit(X, y)
    run = mlflow.get_run(active.info.run_id)
    assert run.data.params["alpha"] == "1.0"  # the first fit's value stays
    assert run.data.tags[FIT_COUNT_TAG] == "2"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "training_r2_score")
    assert [(m.step, m.value) for m in history] == [
        (0, pytest.approx(first.score(X, y))),
        (1, pytest.approx(second.score(X, y))),
    ]
    assert run.data.metrics["training_r2_score"] == pytest.approx(second.score(X, y))
    assert artifact_dirs(run.info.run_id) == {"model", "model_1"}
    loaded = tracking.sklearn.load_model(f"runs:/{run.info.run_id}/model_1")
    assert loaded.alpha == 5.0


# --- scoping: never a run of its own, never another context's run ----------------------------
def test_no_active_run_logs_nothing_and_creates_no_run(iris: tuple[Any, Any]) -> None:
    X, y = iris
    mlflow.sklearn.autolog()
    before = len(all_runs())
    LogisticRegression(max_iter=500).fit(X, y)
    GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert mlflow.active_run() is None
    assert len(all_runs()) == before == 0

    with mlflow.start_run() as ended:  # MLflow #7814: nothing reaches a run after it ended
        pass
    LogisticRegression(max_iter=500).fit(X, y)
    run = mlflow.get_run(ended.info.run_id)
    assert run.data.params == {} and run.data.metrics == {} and FIT_COUNT_TAG not in run.data.tags
    assert len(all_runs()) == 1


def test_failed_fit_logs_nothing_and_resets_the_nesting_guard(iris: tuple[Any, Any]) -> None:
    X, y = iris
    mlflow.sklearn.autolog()
    with mlflow.start_run() as active:
        with pytest.raises(ValueError, match="class"):
            LogisticRegression().fit(X, np.zeros(len(y)))  # one class only
        assert mlflow.get_run(active.info.run_id).data.params == {}
        LogisticRegression(max_iter=500).fit(X, y)
    assert mlflow.get_run(active.info.run_id).data.tags[FIT_COUNT_TAG] == "1"


def test_disable_restores_the_original_methods(iris: tuple[Any, Any]) -> None:
    X, y = iris
    originals = {
        (cls, name): cls.__dict__[name]
        for cls, name in [
            (LogisticRegression, "fit"),
            (Pipeline, "fit"),
            (Pipeline, "fit_transform"),
            (Pipeline, "fit_predict"),
            (BaseSearchCV, "fit"),
            (StandardScaler, "fit"),
        ]
    }
    mlflow.sklearn.autolog()
    for (cls, name), original in originals.items():
        assert cls.__dict__[name] is not original
    assert LogisticRegression.fit.__wrapped__ is originals[(LogisticRegression, "fit")]

    mlflow.sklearn.autolog(disable=True)
    for (cls, name), original in originals.items():
        assert cls.__dict__[name] is original
    assert "__init_subclass__" not in BaseEstimator.__dict__
    with mlflow.start_run() as active:
        LogisticRegression(max_iter=500).fit(X, y)
    run = mlflow.get_run(active.info.run_id)
    assert run.data.params == {} and run.data.metrics == {}
    assert artifact_dirs(run.info.run_id) == set()


def test_classes_defined_while_enabled_are_patched_and_restored(binary: tuple[Any, Any]) -> None:
    X, y = binary
    mlflow.sklearn.autolog(log_models=False)

    class Custom(LogisticRegression):
        def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Custom:
            return super().fit(X, y, sample_weight)  # the parent's patched fit: nested

    plain_fit = Custom.fit.__wrapped__
    run = fit_in_run(Custom(), X, y)
    assert run.data.tags["estimator_name"] == "Custom"
    assert run.data.tags[FIT_COUNT_TAG] == "1"
    mlflow.sklearn.autolog(disable=True)
    assert Custom.__dict__["fit"] is plain_fit


def test_fit_in_another_thread_without_a_run_logs_nothing(iris: tuple[Any, Any]) -> None:
    X, y = iris
    mlflow.sklearn.autolog(log_models=False)
    fitted = threading.Event()
    main_may_finish = threading.Event()

    def worker() -> None:
        assert mlflow.active_run() is None
        LogisticRegression(max_iter=500).fit(X, y)
        fitted.set()
        main_may_finish.wait(10)

    with mlflow.start_run() as active:
        thread = threading.Thread(target=worker)
        thread.start()
        assert fitted.wait(30)
        main_may_finish.set()
        thread.join()
        during = mlflow.get_run(active.info.run_id)
        assert during.data.params == {} and during.data.metrics == {}
        LogisticRegression(max_iter=500).fit(X, y)  # the main thread's own fit does log
    run = mlflow.get_run(active.info.run_id)
    assert run.data.tags[FIT_COUNT_TAG] == "1"
    assert len(all_runs()) == 1


def test_scoped_logs_only_that_run_in_this_context(iris: tuple[Any, Any]) -> None:
    X, y = iris
    other: dict[str, str] = {}

    def other_thread_with_its_own_run() -> None:
        with mlflow.start_run() as own:
            LogisticRegression(max_iter=500).fit(X, y)
        other["run_id"] = own.info.run_id

    with mlflow.start_run() as active:
        with sklearn_autolog.scoped(active.info.run_id, log_models=False):
            thread = threading.Thread(target=other_thread_with_its_own_run)
            thread.start()
            thread.join()
            with mlflow.start_run(nested=True) as child:  # not the scoped run
                LogisticRegression(max_iter=500).fit(X, y)
            mlflow.sklearn.autolog()
            mlflow.sklearn.autolog(disable=True)  # global off: the open scope keeps its patches
            assert sklearn_autolog._patched
            LogisticRegression(max_iter=500).fit(X, y)
        assert not sklearn_autolog._patched  # the last scope closed: originals back
        LogisticRegression(max_iter=500).fit(X, y)  # after the block: not logged

    run = mlflow.get_run(active.info.run_id)
    assert run.data.tags[FIT_COUNT_TAG] == "1"
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    for run_id in (other["run_id"], child.info.run_id):
        assert mlflow.get_run(run_id).data.metrics == {}


def test_options() -> None:
    with pytest.raises(TypeError, match="log_modles"):
        mlflow.sklearn.autolog(log_modles=False)
    mlflow.sklearn.autolog(log_input_examples=True, max_tuning_runs=3)  # MLflow's: ignored
    assert sklearn_autolog.INTEGRATION.global_config is not None
    with pytest.raises(mlflow.MlflowException):
        mlflow.sklearn.autolog(serialization_format="json")


# --- the decorator option --------------------------------------------------------------------
@pytest.mark.usefixtures("prefect_api")
def test_task_and_flow_option(iris: tuple[Any, Any]) -> None:
    from flows import flow
    from tasks import task

    X, y = iris

    @task(autolog=True, log_params=False)
    def train(c: float) -> str:
        LogisticRegression(C=c, max_iter=500).fit(X, y)
        return mlflow.active_run().info.run_id

    @flow(name="autolog-task-flow", log_params=False)
    def pipeline() -> dict[str, str]:
        task_run_id = train(0.5)
        assert not sklearn_autolog._patched  # the task ended: nothing patched
        Ridge().fit(X, y)  # the flow body: autolog is not on for the flow's run
        return {"task": task_run_id, "flow": mlflow.active_run().info.run_id}

    ids = pipeline()
    task_run = mlflow.get_run(ids["task"])
    assert task_run.data.tags[FIT_COUNT_TAG] == "1"  # the flow body's later fit: not here
    assert task_run.data.params["C"] == "0.5"
    assert task_run.data.tags["estimator_name"] == "LogisticRegression"
    assert set(task_run.data.metrics) >= CLASSIFIER_METRICS
    assert "model" in artifact_dirs(ids["task"])
    flow_run = mlflow.get_run(ids["flow"])
    assert "estimator_name" not in flow_run.data.tags
    assert not any(k.startswith("training_") for k in flow_run.data.metrics)

    both_fitting = threading.Barrier(2, timeout=30)

    @task(autolog=True, log_params=False)
    def autologged(c: float) -> str:
        both_fitting.wait()
        LogisticRegression(C=c, max_iter=500).fit(X, y)
        both_fitting.wait()
        return mlflow.active_run().info.run_id

    @task(log_params=False)
    def plain(c: float) -> str:
        both_fitting.wait()
        LogisticRegression(C=c, max_iter=500).fit(X, y)
        both_fitting.wait()
        return mlflow.active_run().info.run_id

    @flow(name="autolog-concurrent-flow", log_params=False)
    def concurrent() -> list[str]:
        futures = [autologged.submit(0.25), plain.submit(4.0)]  # two worker threads at once
        return [f.result() for f in futures]

    logged, not_logged = (mlflow.get_run(run_id) for run_id in concurrent())
    assert logged.data.params["C"] == "0.25"
    assert logged.data.tags[FIT_COUNT_TAG] == "1"
    assert "estimator_name" not in not_logged.data.tags
    assert not any(k.startswith("training_") for k in not_logged.data.metrics)
    assert not sklearn_autolog._patched

    @flow(name="autolog-flow", autolog=True, log_params=False)
    def flow_with_autolog() -> str:
        Ridge(alpha=2.0).fit(X, y)
        return mlflow.active_run().info.run_id

    flow_run = mlflow.get_run(flow_with_autolog())
    assert flow_run.data.params["alpha"] == "2.0"
    assert set(flow_run.data.metrics) >= REGRESSOR_METRICS
    assert not sklearn_autolog._patched
