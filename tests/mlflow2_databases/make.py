"""Make the MLflow 2.x databases of tests/test_mlflow_sql.py (run with MLflow 2.x, not ours).

Each database is created and filled by that MLflow version's own client, then dumped as SQL
next to this file: `mlflow-<version>.sqlite.sql` and `mlflow-<version>.postgresql.sql`. The
tests restore them into fresh databases. To remake them (or add a version):

    python -m venv /tmp/mlflow2 && /tmp/mlflow2/bin/pip install "mlflow-skinny==2.22.1" \\
        "sqlalchemy<2.1" alembic psycopg2-binary
    createdb -h 127.0.0.1 -p PORT mlflow2          # an empty PostgreSQL database
    /tmp/mlflow2/bin/python tests/mlflow2_databases/make.py \\
        --postgres postgresql://postgres@127.0.0.1:PORT/mlflow2 \\
        --pg-dump /usr/lib/postgresql/15/bin/pg_dump

What is in them (the tests look it up by name): experiment "legacy" (tag team=ds) with run
"mlflow2-run" (param lr=0.01, metric loss 0.5 then 0.25 at steps 0 and 1, tag stage=train, a
dataset input "iris"), its child run "mlflow2-child" and a deleted run "mlflow2-deleted";
registered model "legacy-model" with version 1 from mlflow2-run (stage Staging, alias prod,
tag validated=yes).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import tempfile

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

HERE = os.path.dirname(os.path.abspath(__file__))


def fill(uri: str) -> None:
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("legacy", tags={"team": "ds"})
    run = client.create_run(experiment_id, run_name="mlflow2-run")
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[
            Metric("loss", 0.5, 1_700_000_000_000, 0),
            Metric("loss", 0.25, 1_700_000_001_000, 1),
        ],
        params=[Param("lr", "0.01")],
        tags=[RunTag("stage", "train")],
    )
    dataset = Dataset("iris", "a1b2c3d4", "local", '{"uri": "/data/iris.csv"}', None, None)
    client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "train")])])
    client.set_terminated(run_id, "FINISHED")
    child = client.create_run(
        experiment_id, run_name="mlflow2-child", tags={"mlflow.parentRunId": run_id}
    )
    client.set_terminated(child.info.run_id, "FINISHED")
    deleted = client.create_run(experiment_id, run_name="mlflow2-deleted")
    client.delete_run(deleted.info.run_id)
    client.create_registered_model("legacy-model", description="from MLflow 2")
    client.create_model_version(
        "legacy-model", f"runs:/{run_id}/model", run_id, tags={"validated": "yes"}
    )
    client.transition_model_version_stage("legacy-model", "1", "Staging")
    client.set_registered_model_alias("legacy-model", "prod", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", required=True, help="URI of an empty PostgreSQL database")
    parser.add_argument("--pg-dump", default="pg_dump", help="the pg_dump binary")
    args = parser.parse_args()
    version = mlflow.__version__
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mlflow.db")
        fill(f"sqlite:///{path}")
        with (
            sqlite3.connect(path) as db,
            open(os.path.join(HERE, f"mlflow-{version}.sqlite.sql"), "w") as out,
        ):
            out.writelines(line + "\n" for line in db.iterdump())
    fill(args.postgres)
    with open(os.path.join(HERE, f"mlflow-{version}.postgresql.sql"), "w") as out:
        subprocess.run(
            [args.pg_dump, "--no-owner", "--no-privileges", args.postgres], stdout=out, check=True
        )


if __name__ == "__main__":
    main()
