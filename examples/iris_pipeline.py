"""The spec's iris example as a Prefect pipeline that Trackflow tracks.

    python examples/iris_pipeline.py

What it shows:

- `@flow` makes every flow run a run in the experiment named after the flow ("iris-pipeline");
  `@task` makes every task execution a child run of it.
- Params come from the call's arguments: small values as text, arrays as a summary such as
  "ndarray(shape=(150, 4), dtype=float64)", and `exclude_params` leaves out what you don't want.
- Metrics come from return values: `train` returns a dict, and its numeric entry "accuracy"
  becomes the run's metric (the model in the same dict is not a number, so it is skipped).
- `train.map(...)` trains one model per value of C, each in its own child run.
- The flow body uses the ordinary tracking API: it logs the best model to the flow run's
  artifacts with `tracking.sklearn.log_model` and tags the flow run with the best run and C.

No server setup is needed: Prefect starts a temporary local API and the runs go to ./mlruns
(or $MLFLOW_TRACKING_URI). To run it every night at 03:00 instead, serve the flow:

    iris_pipeline.serve(name="nightly", cron="0 3 * * *")
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

# Prefect's temporary API: no analytics, and time for a first start (database setup) on a busy
# machine. Settings already in the environment win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import numpy as np
from prefect import unmapped
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import tracking
import tracking.sklearn
from flows import flow
from tasks import task

EXPERIMENT = "iris-pipeline"
C_VALUES = [0.01, 0.1, 1.0, 10.0]


class Split(NamedTuple):
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@task
def load_data() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


@task
def split(X: np.ndarray, y: np.ndarray, test_size: float = 0.2, random_state: int = 42) -> Split:
    # Params: X and y as summaries, test_size and random_state as text.
    return Split(*train_test_split(X, y, test_size=test_size, random_state=random_state))


def evaluate(model: LogisticRegression, data: Split) -> float:
    return float(accuracy_score(data.y_test, model.predict(data.X_test)))


@task(exclude_params=["data"])
def train(C: float, max_iter: int, data: Split) -> dict[str, Any]:
    # Params: C and max_iter. Metric: accuracy (the only number in the returned dict).
    model = LogisticRegression(C=C, max_iter=max_iter).fit(data.X_train, data.y_train)
    run_id = tracking.active_run().info.run_id  # this task execution's own run
    return {"accuracy": evaluate(model, data), "model": model, "run_id": run_id}


@flow(name=EXPERIMENT, log_prints=True)
def iris_pipeline(c_values: list[float] = C_VALUES, max_iter: int = 200) -> dict[str, Any]:
    X, y = load_data()
    data = split(X, y)
    results = train.map(C=c_values, max_iter=max_iter, data=unmapped(data)).result()

    # The best setting (the first of equally good ones) and its model go to the flow run.
    best_C, best = max(zip(c_values, results, strict=True), key=lambda cr: cr[1]["accuracy"])
    tracking.sklearn.log_model(best["model"], "model")
    tracking.set_tags({"best_run_id": best["run_id"], "best_C": best_C})
    print(f"Best C={best_C}: accuracy {best['accuracy']:.3f} (run {best['run_id']})")
    # The flow's return value is captured too: best_accuracy becomes a metric of the flow run.
    return {"best_accuracy": best["accuracy"], "best_run_id": best["run_id"]}


if __name__ == "__main__":
    state = iris_pipeline(return_state=True)
    summary = state.result()
    run_id = state.state_details.flow_run_id.hex  # a flow run's tracking run id is its Prefect id
    print(f"\nLogged to {tracking.get_tracking_uri()}, experiment {EXPERIMENT!r}")
    print(f"Flow run {run_id}: best accuracy {summary['best_accuracy']:.3f}")
    print(f"Best model: runs:/{run_id}/model (trained in run {summary['best_run_id']})")
    runs = f"tracking.search_runs(experiment_names=['{EXPERIMENT}'], output_format='pandas')"
    columns = "[['run_id', 'tags.mlflow.runName', 'params.C', 'metrics.accuracy']].to_string()"
    model = f"tracking.sklearn.load_model('runs:/{run_id}/model')"
    print("Look at the runs and load the best model:")
    print("  find mlruns -maxdepth 3")
    print(f'  python -c "import tracking; print({runs}{columns})"')
    print(f'  python -c "import tracking.sklearn; print({model})"')
