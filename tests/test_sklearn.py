"""The sklearn flavor: the spec's first example, load paths, MLflow compatibility, errors."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import tracking as mlflow
import tracking.models.sklearn.flavor
import tracking.sklearn
from tracking.artifacts import ArtifactRepository
from tracking.errors import InvalidParameterError, NotFoundError, TrackingError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any, Any, Any]:
    data = load_iris()
    return train_test_split(data.data, data.target, test_size=0.2, random_state=42)


@pytest.fixture(scope="module")
def model(iris: tuple[Any, Any, Any, Any]) -> LogisticRegression:
    x_train, _, y_train, _ = iris
    return LogisticRegression(max_iter=200).fit(x_train, y_train)


def _first_example(iris: tuple[Any, Any, Any, Any]) -> tuple[str, LogisticRegression]:
    """The spec's "First MLflow Tracking Example", verbatim but for the import."""
    x_train, x_test, y_train, y_test = iris
    with mlflow.start_run() as run:
        mlflow.log_param("model_type", "LogisticRegression")
        mlflow.log_param("max_iter", 200)
        model = LogisticRegression(max_iter=200)
        model.fit(x_train, y_train)
        predictions = model.predict(x_test)
        mlflow.log_metric("accuracy", accuracy_score(y_test, predictions))
        mlflow.sklearn.log_model(model, "model")
    return run.info.run_id, model


def test_first_example_layout(tracking_dir: Path, iris: tuple[Any, Any, Any, Any]) -> None:
    run_id, _ = _first_example(iris)
    model_dir = tracking_dir / "0" / run_id / "artifacts" / "model"
    files = {p.name for p in model_dir.iterdir()}
    assert {"MLmodel", "model.pkl", "requirements.txt", "python_env.yaml", "conda.yaml"} <= files

    meta = yaml.safe_load((model_dir / "MLmodel").read_text())
    assert meta["artifact_path"] == "model"
    assert meta["run_id"] == run_id
    assert len(meta["model_uuid"]) == 32
    assert meta["utc_time_created"]
    pyfunc = meta["flavors"]["python_function"]
    assert pyfunc["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert pyfunc["model_path"] == "model.pkl"
    assert pyfunc["predict_fn"] == "predict"
    assert pyfunc["python_version"].count(".") == 2
    import sklearn

    assert meta["flavors"]["sklearn"] == {
        "code": None,
        "pickled_model": "model.pkl",
        "serialization_format": "cloudpickle",
        "sklearn_version": sklearn.__version__,
    }

    requirements = (model_dir / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"numpy=={np.__version__}" in requirements
    assert any(r.startswith("cloudpickle==") for r in requirements)
    env = yaml.safe_load((model_dir / "python_env.yaml").read_text())
    assert env["python"] == pyfunc["python_version"]
    assert env["dependencies"] == ["-r requirements.txt"]
    assert [d.split("==")[0] for d in env["build_dependencies"]] == ["pip", "setuptools", "wheel"]
    conda = yaml.safe_load((model_dir / "conda.yaml").read_text())
    assert conda["dependencies"][-1] == {"pip": requirements}

    history = json.loads(mlflow.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model"]


def test_load_via_runs_uri_and_artifact_uri(tracking_dir: Path, iris: Any) -> None:
    run_id, original = _first_example(iris)
    x_test = iris[1]
    expected = original.predict_proba(x_test)
    artifact_uri = mlflow.get_run(run_id).info.artifact_uri + "/model"
    local_dir = tracking_dir / "0" / run_id / "artifacts" / "model"
    for uri in (f"runs:/{run_id}/model", artifact_uri, str(local_dir), local_dir):
        loaded = tracking.sklearn.load_model(uri)
        assert isinstance(loaded, LogisticRegression)
        np.testing.assert_array_equal(loaded.predict_proba(x_test), expected)


def test_model_info_and_name_alias(model: LogisticRegression) -> None:
    with mlflow.start_run() as run:
        info = tracking.sklearn.log_model(model, name="clf/v1")
    assert info.artifact_path == "clf/v1"
    assert info.run_id == run.info.run_id
    assert info.model_uri == f"runs:/{run.info.run_id}/clf/v1"
    assert set(info.flavors) == {"python_function", "sklearn"}
    assert isinstance(tracking.sklearn.load_model(info.model_uri), LogisticRegression)


def test_log_model_with_explicit_run_id(model: LogisticRegression, iris: Any) -> None:
    run = mlflow.start_run()
    mlflow.end_run()
    info = tracking.sklearn.log_model(model, "m", run_id=run.info.run_id)
    assert mlflow.active_run() is None
    loaded = tracking.sklearn.load_model(f"runs:/{run.info.run_id}/m")
    np.testing.assert_array_equal(loaded.predict(iris[1]), model.predict(iris[1]))
    assert info.run_id == run.info.run_id


def test_mlflow_loads_our_model(
    tracking_dir: Path, iris: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, original = _first_example(iris)
    x_test = iris[1]
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow_sklearn = importlib.import_module("mlflow.sklearn")  # the real MLflow
    mlflow_pyfunc = importlib.import_module("mlflow.pyfunc")

    local_dir = str(tracking_dir / "0" / run_id / "artifacts" / "model")
    loaded = mlflow_sklearn.load_model(local_dir)
    np.testing.assert_array_equal(loaded.predict_proba(x_test), original.predict_proba(x_test))
    pyfunc_model = mlflow_pyfunc.load_model(local_dir)
    np.testing.assert_array_equal(pyfunc_model.predict(x_test), original.predict(x_test))
    # MLflow's runs:/ resolution against our store works too.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.get_tracking_uri())
    loaded = mlflow_sklearn.load_model(f"runs:/{run_id}/model")
    np.testing.assert_array_equal(loaded.predict(x_test), original.predict(x_test))


def test_we_load_mlflow_saved_model(
    tmp_path: Path, model: LogisticRegression, iris: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow_sklearn = importlib.import_module("mlflow.sklearn")  # the real MLflow
    for fmt in ("cloudpickle", "skops"):
        path = tmp_path / fmt
        # Explicit requirements: MLflow's inference runs a slow subprocess.
        mlflow_sklearn.save_model(
            model, str(path), serialization_format=fmt, pip_requirements=["scikit-learn"]
        )
        loaded = tracking.sklearn.load_model(path)
        np.testing.assert_array_equal(loaded.predict(iris[1]), model.predict(iris[1]))


@pytest.mark.parametrize(("fmt", "file"), [("pickle", "model.pkl"), ("skops", "model.skops")])
def test_other_serialization_formats(
    tmp_path: Path, model: LogisticRegression, iris: Any, fmt: str, file: str
) -> None:
    path = tmp_path / "saved"
    tracking.sklearn.save_model(model, path, serialization_format=fmt)
    meta = yaml.safe_load((path / "MLmodel").read_text())
    assert meta["flavors"]["sklearn"]["serialization_format"] == fmt
    assert meta["flavors"]["sklearn"]["pickled_model"] == file
    assert (path / file).is_file()
    requirements = (path / "requirements.txt").read_text()
    assert "cloudpickle" not in requirements
    loaded = tracking.sklearn.load_model(f"file://{path}")
    np.testing.assert_array_equal(loaded.predict(iris[1]), model.predict(iris[1]))
    with mlflow.start_run():
        info = tracking.sklearn.log_model(model, "m", serialization_format=fmt)
    loaded = tracking.sklearn.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(iris[1]), model.predict(iris[1]))


def test_requirements_options(tmp_path: Path, model: LogisticRegression) -> None:
    tracking.sklearn.save_model(model, tmp_path / "a", extra_pip_requirements=["pandas>=2"])
    lines = (tmp_path / "a" / "requirements.txt").read_text().splitlines()
    assert lines[-1] == "pandas>=2"
    assert any(line.startswith("scikit-learn==") for line in lines)
    req_file = tmp_path / "req.txt"
    req_file.write_text("# pinned\nscikit-learn\n\nnumpy<3\n")
    tracking.sklearn.save_model(model, tmp_path / "b", pip_requirements=str(req_file))
    assert (tmp_path / "b" / "requirements.txt").read_text() == "scikit-learn\nnumpy<3\n"
    with pytest.raises(InvalidParameterError, match="only one"):
        tracking.sklearn.save_model(
            model, tmp_path / "c", pip_requirements=["a"], extra_pip_requirements=["b"]
        )
    with pytest.raises(InvalidParameterError, match="already exists"):
        tracking.sklearn.save_model(model, tmp_path / "a")


def test_non_local_artifact_store(model: LogisticRegression, iris: Any) -> None:
    """Logging and loading go through fsspec, so any artifact URI works (memory:// here)."""
    experiment_id = mlflow.create_experiment("remote", artifact_location="memory://bucket/exp")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = tracking.sklearn.log_model(model, "model")
    assert run.info.artifact_uri.startswith("memory://")
    repo = ArtifactRepository(run.info.artifact_uri)
    assert "model/MLmodel" in {f.path for f in repo.list_artifacts("model")}
    for uri in (info.model_uri, f"{run.info.artifact_uri}/model"):
        loaded = tracking.sklearn.load_model(uri)
        np.testing.assert_array_equal(loaded.predict(iris[1]), model.predict(iris[1]))


def test_s3_artifact_store(s3_env: Any, moto_s3: Any, model: LogisticRegression, iris: Any) -> None:
    """Round trip through a real S3 API (moto's server mode)."""
    server = s3_env(moto_s3)
    location = f"s3://{server.create_bucket('models')}/exp"
    experiment_id = mlflow.create_experiment("s3", artifact_location=location)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = tracking.sklearn.log_model(model, "model")
    for uri in (info.model_uri, f"{location}/{run.info.run_id}/artifacts/model"):
        loaded = tracking.sklearn.load_model(uri)
        np.testing.assert_array_equal(loaded.predict(iris[1]), model.predict(iris[1]))
    with pytest.raises(NotFoundError, match="no MLmodel file at"):
        tracking.sklearn.load_model(f"{location}/nothing")


def test_log_model_argument_errors(model: LogisticRegression) -> None:
    with mlflow.start_run():
        with pytest.raises(InvalidParameterError, match="exactly one"):
            tracking.sklearn.log_model(model)
        with pytest.raises(InvalidParameterError, match="exactly one"):
            tracking.sklearn.log_model(model, "a", name="a")
        with pytest.raises(InvalidParameterError, match="Invalid model artifact path"):
            tracking.sklearn.log_model(model, "../escape")
        with pytest.raises(InvalidParameterError, match="serialization_format"):
            tracking.sklearn.log_model(model, "m", serialization_format="json")
        info = tracking.sklearn.log_model(model, "m", registered_model_name="iris")
        assert info.registered_model_version == 1


def test_load_model_errors(tmp_path: Path, model: LogisticRegression) -> None:
    load = tracking.sklearn.load_model
    with pytest.raises(InvalidParameterError, match="Unsupported model URI scheme 'bogus'"):
        load("bogus://somewhere/model")
    with pytest.raises(NotFoundError, match="Registered Model with name=iris not found"):
        load("models:/iris/1")
    with pytest.raises(InvalidParameterError, match="runs:/<run_id>"):
        load("runs:/")
    with pytest.raises(NotFoundError, match="no MLmodel file at"):
        load(str(tmp_path))
    with pytest.raises(NotFoundError, match="no MLmodel file at memory://nothing/here"):
        load("memory://nothing/here")
    with mlflow.start_run() as run:
        mlflow.log_text("hi", "notes/readme.txt")
    with pytest.raises(NotFoundError, match="was a model logged there"):
        load(f"runs:/{run.info.run_id}/notes")
    with pytest.raises(NotFoundError, match="was a model logged there"):
        load(f"runs:/{run.info.run_id}/missing")
    with pytest.raises(NotFoundError):
        load("runs:/0123456789abcdef0123456789abcdef/model")

    other = tmp_path / "other"
    other.mkdir()
    (other / "MLmodel").write_text(yaml.safe_dump({"flavors": {"python_function": {}}}))
    with pytest.raises(TrackingError, match=r"no sklearn flavor .*python_function"):
        load(other)


def test_import_tracking_does_not_import_sklearn() -> None:
    code = (
        "import sys, tracking; assert 'sklearn' not in sys.modules, 'sklearn imported'; "
        "import tracking.sklearn; assert 'sklearn' not in sys.modules, 'flavor imported sklearn'"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert result.returncode == 0, result.stderr


def test_cloudpickle_missing_falls_back_to_pickle(
    tmp_path: Path, model: LogisticRegression, monkeypatch: pytest.MonkeyPatch
) -> None:
    flavor = tracking.models.sklearn.flavor  # what it asks about installed packages
    real = flavor._installed
    monkeypatch.setattr(flavor, "_installed", lambda p: p != "cloudpickle" and real(p))
    with pytest.warns(UserWarning, match="cloudpickle is not installed"):
        tracking.sklearn.save_model(model, tmp_path / "m")
    meta = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert meta["flavors"]["sklearn"]["serialization_format"] == "pickle"
    assert "cloudpickle" not in (tmp_path / "m" / "requirements.txt").read_text()
    assert isinstance(tracking.sklearn.load_model(tmp_path / "m"), LogisticRegression)
