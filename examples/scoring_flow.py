"""Scheduled batch scoring with the model in service: a Prefect flow that Trackflow tracks.

    python examples/retraining_flow.py                         # puts a @champion in service
    python examples/scoring_flow.py --input new_rows.csv       # scores a file once
    python examples/scoring_flow.py --input new_rows.csv --serve   # every hour

Each run:

1. `resolve_model` looks up the version the alias points at *now*
   (``models:/iris-classifier@champion``), so a promotion by the retraining flow is picked up
   by the next scoring run without redeploying anything. The flow run records the version
   (tags ``model_uri`` and ``model_version``).
2. `score` loads that version with ``tracking.pyfunc.load_model`` and scores the file in
   batches (``tracking.models.batch``): when the model has a signature, every batch is checked
   against it first, so a file with a missing column or a wrong type fails the run with an
   error naming the column instead of producing wrong predictions. Its run logs
   ``rows_scored`` and the predictions as the artifact ``predictions.csv``, which is also
   written next to the input (``<input>.predictions.csv``).

To score every hour, serve the flow; every scheduled run is tracked too:

    scoring_flow.serve(name="hourly-scoring", cron="0 * * * *", parameters={"input_path": ...})

Without ``--input`` a sample of iris rows is written to ./scoring-input.csv and scored.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

# Prefect's temporary API: no analytics, and time for a first start (database setup) on a busy
# machine. Settings already in the environment win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import tracking
import tracking.pyfunc
from flows import flow
from tasks import task
from tracking.models import batch

EXPERIMENT = "iris-scoring"
MODEL_NAME = "iris-classifier"
ALIAS = "champion"


@task(log_metrics=False)
def resolve_model(model_name: str, alias: str) -> dict[str, Any]:
    """The registered version `alias` points at now."""
    version = tracking.MlflowClient().get_model_version_by_alias(model_name, alias)
    return {"uri": f"models:/{model_name}/{version.version}", "version": version.version}


@task
def score(model_uri: str, input_path: str, output_path: str) -> dict[str, Any]:
    """Score the file with the model (signature checked batch by batch); write and log the
    predictions. Returns rows_scored (a metric of this task's run)."""
    model = tracking.pyfunc.load_model(model_uri)
    data, params = batch.read_input(input_path, batch.input_format(input_path, None))
    predictions = batch.predict_batches(model, data, params, progress=False)
    batch.write_output(predictions, output_path)
    tracking.log_artifact(output_path)
    return {"rows_scored": len(data)}


@flow(name=EXPERIMENT, log_prints=True)
def scoring_flow(
    input_path: str, model_name: str = MODEL_NAME, alias: str = ALIAS
) -> dict[str, Any]:
    """Score `input_path` with models:/<model_name>@<alias>."""
    model = resolve_model(model_name, alias)
    tracking.set_tags({"model_uri": model["uri"], "model_version": model["version"]})
    output_path = f"{input_path}.predictions.csv"
    result = score(model["uri"], input_path, output_path)
    print(f"Scored {result['rows_scored']} rows of {input_path} with {model['uri']}")
    return {**result, "model_version": model["version"], "output_path": output_path}


def _sample_input(path: str) -> str:
    from sklearn.datasets import load_iris

    # The retraining example's model was fit on unnamed columns: number them.
    rows = load_iris(as_frame=True).data.sample(20, random_state=0)
    rows.columns = [str(i) for i in range(rows.shape[1])]
    rows.to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="CSV, Parquet or JSON file to score")
    parser.add_argument("--model-name", default=MODEL_NAME)
    parser.add_argument("--alias", default=ALIAS)
    parser.add_argument("--serve", action="store_true", help="serve on an hourly schedule")
    parser.add_argument("--cron", default="0 * * * *", help="schedule for --serve")
    args = parser.parse_args()
    input_path = os.path.abspath(args.input or _sample_input("scoring-input.csv"))
    parameters = {"input_path": input_path, "model_name": args.model_name, "alias": args.alias}
    if args.serve:
        scoring_flow.serve(name="hourly-scoring", cron=args.cron, parameters=parameters)
        return
    summary = scoring_flow(**parameters)
    print(f"Predictions in {summary['output_path']}; runs in {tracking.get_tracking_uri()}")


if __name__ == "__main__":
    main()
