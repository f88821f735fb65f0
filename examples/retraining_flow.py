"""Scheduled retraining with a promotion gate: a Prefect flow that Trackflow tracks.

    python examples/retraining_flow.py                 # one retraining run now
    python examples/retraining_flow.py --C 0.003       # ... with another setting
    python examples/retraining_flow.py --serve         # every night at 03:00

Each run trains an iris classifier and promotes it only if it beats the model in service:

1. `train` (a child run of the flow run) fits the model, logs `accuracy` and the model itself
   (`runs:/<train run>/model`).
2. `current_champion` finds the version in service in the registry: the one the `@champion`
   alias points at, else the newest `Production` version. Its accuracy is read from the run that
   logged it (a registered version records its run_id), so nothing is recomputed.
3. Only if the candidate is better (or no model is in service yet) `promote` registers it as a
   new version of "iris-classifier", moves it to Production (archiving the previous Production
   version) and points `@champion` at it. Otherwise the registry is left alone; the candidate
   stays logged in its run for later inspection.

Serving applications load whatever is in service with
``tracking.pyfunc.load_model("models:/iris-classifier@champion")`` (or ``.../Production``).

To retrain every night at 03:00, serve the flow; every scheduled run is tracked too:

    retraining_flow.serve(name="nightly-retraining", cron="0 3 * * *")

No server setup is needed for a single run: Prefect starts a temporary local API and the runs
and the registry go to ./mlruns (or $MLFLOW_TRACKING_URI; sqlite:// and postgresql:// work too).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, NamedTuple

# Prefect's temporary API: no analytics, and time for a first start (database setup) on a busy
# machine. Settings already in the environment win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import tracking
import tracking.sklearn
from flows import flow
from tasks import task
from tracking.errors import NotFoundError

EXPERIMENT = "iris-retraining"
MODEL_NAME = "iris-classifier"
CHAMPION_ALIAS = "champion"
METRIC = "accuracy"


class Split(NamedTuple):
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@task
def load_data(test_size: float = 0.2, random_state: int = 42) -> Split:
    X, y = load_iris(return_X_y=True)
    return Split(*train_test_split(X, y, test_size=test_size, random_state=random_state))


@task(exclude_params=["data"])
def train(C: float, max_iter: int, data: Split) -> dict[str, Any]:
    """Fit and evaluate a candidate; its run gets params C, max_iter, metric accuracy, model."""
    model = LogisticRegression(C=C, max_iter=max_iter).fit(data.X_train, data.y_train)
    accuracy = float(accuracy_score(data.y_test, model.predict(data.X_test)))
    info = tracking.sklearn.log_model(model, "model")
    return {METRIC: accuracy, "model_uri": info.model_uri}


@task(log_metrics=False)
def current_champion(model_name: str) -> dict[str, Any] | None:
    """The version in service (@champion, else the newest Production version) and the metric
    its training run logged; None when nothing is in service yet."""
    client = tracking.MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except NotFoundError:  # no such model yet, or no @champion alias
        try:
            production = client.get_latest_versions(model_name, ["Production"])
        except NotFoundError:
            return None
        if not production:
            return None
        version = production[0]
    metric = client.get_run(version.run_id).data.metrics.get(METRIC) if version.run_id else None
    return {"version": version.version, METRIC: metric, "run_id": version.run_id}


@task(log_metrics=False)
def promote(model_uri: str, model_name: str, accuracy: float) -> int:
    """Register the candidate, make it the Production version and the @champion."""
    client = tracking.MlflowClient()
    version = client.register_model(model_uri, model_name, tags={METRIC: f"{accuracy:.4f}"})
    client.transition_model_version_stage(
        model_name, version.version, "Production", archive_existing_versions=True
    )
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
    return version.version


@flow(name=EXPERIMENT, log_prints=True)
def retraining_flow(
    C: float = 1.0,
    max_iter: int = 200,
    model_name: str = MODEL_NAME,
    min_improvement: float = 0.0,
) -> dict[str, Any]:
    """Train a candidate; promote it if its accuracy beats the champion's by > min_improvement."""
    data = load_data()
    candidate = train(C, max_iter, data)
    champion = current_champion(model_name)
    champion_accuracy = champion[METRIC] if champion else None
    better = champion_accuracy is None or candidate[METRIC] > champion_accuracy + min_improvement

    if better:
        version = promote(candidate["model_uri"], model_name, candidate[METRIC])
        previous = f"version {champion['version']}" if champion else "no model"
        print(
            f"Promoted {model_name} version {version} (accuracy {candidate[METRIC]:.3f}); "
            f"replaces {previous}"
        )
    else:
        assert champion is not None
        version = champion["version"]
        print(
            f"Kept {model_name} version {version}: candidate accuracy {candidate[METRIC]:.3f} "
            f"is not better than {champion_accuracy:.3f}"
        )
    tracking.set_tags({"promoted": str(better).lower(), "champion_version": version})
    # Numbers in the returned dict become metrics of the flow run (the flag is a tag above).
    return {
        "promoted": better,
        "champion_version": version,
        "candidate_accuracy": candidate[METRIC],
        "previous_champion_accuracy": champion_accuracy,
        "candidate_model_uri": candidate["model_uri"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--serve", action="store_true", help="serve on a nightly schedule")
    parser.add_argument("--cron", default="0 3 * * *", help="schedule for --serve")
    args = parser.parse_args()
    if args.serve:
        retraining_flow.serve(
            name="nightly-retraining",
            cron=args.cron,
            parameters={"C": args.C, "max_iter": args.max_iter},
        )
        return
    summary = retraining_flow(C=args.C, max_iter=args.max_iter)
    print(f"\nLogged to {tracking.get_tracking_uri()}, experiment {EXPERIMENT!r}")
    outcome = "promoted" if summary["promoted"] else "not promoted (not better)"
    print(f"Candidate accuracy {summary['candidate_accuracy']:.3f}: {outcome}")
    print(
        f"In service: models:/{MODEL_NAME}@{CHAMPION_ALIAS} = version {summary['champion_version']}"
    )
    load = f"tracking.pyfunc.load_model('models:/{MODEL_NAME}@{CHAMPION_ALIAS}')"
    print(f'  python -c "import tracking.pyfunc; print({load})"')


if __name__ == "__main__":
    main()
