"""Every example of spec/mlflow-fundamentals.md, with `import tracking as mlflow`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

FIRST_EXAMPLE = """
import tracking as mlflow
import tracking.sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.metrics import accuracy_score

# Load data
iris = load_iris()
X_train, X_test, y_train, y_test = train_test_split(
    iris.data, iris.target, test_size=0.2, random_state=42
)

# Start MLflow run
with mlflow.start_run():
    # Log parameters
    mlflow.log_param("model_type", "LogisticRegression")
    mlflow.log_param("max_iter", 200)

    # Train model
    model = LogisticRegression(max_iter=200)
    model.fit(X_train, y_train)

    # Make predictions and log metrics
    predictions = model.predict(X_test)
    accuracy = accuracy_score(y_test, predictions)
    mlflow.log_metric("accuracy", accuracy)

    # Log the model
    mlflow.sklearn.log_model(model, "model")

    print(f"Model accuracy: {accuracy}")
"""

COMMON_PATTERNS = """
import tracking as mlflow

# Set experiment
mlflow.set_experiment("my-experiment")

# Set run name
with mlflow.start_run(run_name="lr-model-v1"):
    pass

# Add tags
with mlflow.start_run():
    mlflow.set_tag("team", "data-science")
    mlflow.set_tag("model_type", "classification")

# Log multiple metrics at once
with mlflow.start_run():
    mlflow.log_metrics({
        "accuracy": 0.95,
        "precision": 0.93,
        "recall": 0.94
    })

# Log artifacts
with mlflow.start_run():
    # Save a plot
    import matplotlib.pyplot as plt
    plt.plot([1, 2, 3], [4, 5, 6])
    plt.savefig("plot.png")
    mlflow.log_artifact("plot.png")
"""


def run_script(source: str, cwd: Path) -> str:
    script = cwd / "example.py"
    script.write_text(textwrap.dedent(source))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "MPLBACKEND": "Agg",
            "HOME": str(cwd),
        },
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_dirs(experiment_dir: Path) -> list[Path]:
    return [p for p in experiment_dir.iterdir() if p.is_dir() and p.name != "tags"]


def test_first_tracking_example_leaves_the_documented_tree(tmp_path: Path) -> None:
    out = run_script(FIRST_EXAMPLE, tmp_path)
    accuracy = float(out.split("Model accuracy:")[1])
    assert accuracy > 0.9
    mlruns = tmp_path / "mlruns"
    assert yaml.safe_load((mlruns / "0" / "meta.yaml").read_text())["name"] == "Default"
    (run_dir,) = run_dirs(mlruns / "0")
    for sub in ("meta.yaml", "metrics", "params", "tags", "artifacts"):
        assert (run_dir / sub).exists(), sub
    meta = yaml.safe_load((run_dir / "meta.yaml").read_text())
    assert meta["status"] == 3 and meta["lifecycle_stage"] == "active"
    assert meta["artifact_uri"] == f"file://{run_dir}/artifacts"
    assert (run_dir / "params" / "model_type").read_text() == "LogisticRegression"
    assert (run_dir / "params" / "max_iter").read_text() == "200"
    ts, value, step = (run_dir / "metrics" / "accuracy").read_text().split()
    assert float(value) == accuracy and step == "0" and int(ts) > 0
    model_dir = run_dir / "artifacts" / "model"
    for name in ("MLmodel", "model.pkl", "requirements.txt", "python_env.yaml"):
        assert (model_dir / name).is_file(), name


def test_common_patterns(tmp_path: Path) -> None:
    run_script(COMMON_PATTERNS, tmp_path)
    mlruns = tmp_path / "mlruns"
    experiments = {
        yaml.safe_load((d / "meta.yaml").read_text())["name"]: d
        for d in mlruns.iterdir()
        if (d / "meta.yaml").is_file()
    }
    assert set(experiments) == {"Default", "my-experiment"}
    runs = run_dirs(experiments["my-experiment"])
    assert len(runs) == 4
    names = {(r / "tags" / "mlflow.runName").read_text() for r in runs}
    assert "lr-model-v1" in names
    tagged = [r for r in runs if (r / "tags" / "team").exists()]
    assert [(r / "tags" / "model_type").read_text() for r in tagged] == ["classification"]
    with_metrics = [r for r in runs if (r / "metrics" / "accuracy").exists()]
    (m,) = with_metrics
    assert {p.name for p in (m / "metrics").iterdir()} == {"accuracy", "precision", "recall"}
    with_plot = [r for r in runs if (r / "artifacts" / "plot.png").exists()]
    (p,) = with_plot
    assert (p / "artifacts" / "plot.png").read_bytes() == (tmp_path / "plot.png").read_bytes()
