"""Custom Python models (tracking.pyfunc.PythonModel): layout, artifacts from any URI, code
paths, params, signatures, registry URIs, and errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import tracking
import tracking.pyfunc
from tracking.errors import InvalidParameterError, NotFoundError
from tracking.models import SchemaEnforcementError, get_model_info, infer_signature


class Scaler(tracking.pyfunc.PythonModel):
    """Multiplies column x by a factor read from an artifact, times params["mult"]."""

    def load_context(self, context: tracking.pyfunc.PythonModelContext) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())
        self.words = sorted(p.name for p in Path(context.artifacts["folder"]).iterdir())

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> Any:
        return model_input["x"] * self.factor * (params or {}).get("mult", 1)


class NoContext(tracking.pyfunc.PythonModel):
    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> Any:  # type: ignore[override]
        return model_input["x"] + (params or {}).get("add", 0)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    factor = tmp_path / "factor.txt"
    factor.write_text("3")
    folder = tmp_path / "words"
    folder.mkdir()
    for word in ("alpha", "beta"):
        (folder / word).write_text(word)
    return {"factor": factor, "folder": folder}


EXAMPLE = pd.DataFrame({"x": [1.0, 2.0], "tag": ["a", "b"]})


def test_custom_model_layout_and_round_trip(tracking_dir: Path, files: dict[str, Path]) -> None:
    with tracking.start_run() as run:
        info = tracking.pyfunc.log_model(
            "model",
            python_model=Scaler(),
            artifacts={"factor": str(files["factor"]), "folder": str(files["folder"])},
            input_example=(EXAMPLE, {"mult": 1}),
            registered_model_name="scaler",
        )
    folder = tracking_dir / "0" / run.info.run_id / "artifacts" / "model"
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*")}
    assert {
        "MLmodel",
        "python_model.pkl",
        "artifacts/factor.txt",
        "artifacts/words/alpha",
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
        "input_example.json",
        "serving_input_example.json",
    } <= names
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    pyfunc = meta["flavors"]["python_function"]
    assert list(meta["flavors"]) == ["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.model"
    assert pyfunc["python_model"] == "python_model.pkl"
    assert pyfunc["artifacts"]["factor"] == {
        "path": "artifacts/factor.txt",
        "uri": str(files["factor"]),
    }
    assert "cloudpickle==" in (folder / "requirements.txt").read_text()
    assert json.loads(meta["signature"]["params"]) == [
        {"name": "mult", "default": 1, "shape": None, "type": "long"}
    ]
    assert info.signature == infer_signature(EXAMPLE, EXAMPLE["x"] * 3.0, {"mult": 1})
    assert info.registered_model_version == 1
    assert get_model_info(info.model_uri).signature == info.signature

    files["factor"].write_text("100")  # the model keeps its own copy
    for uri in (info.model_uri, "models:/scaler/1", str(folder)):
        model = tracking.pyfunc.load_model(uri)
        assert model.predict(EXAMPLE).tolist() == [3.0, 6.0]
        assert model.predict(EXAMPLE, params={"mult": 2}).tolist() == [6.0, 12.0]
        assert model.unwrap_python_model().words == ["alpha", "beta"]
    model = tracking.pyfunc.load_model(info.model_uri)
    with pytest.raises(SchemaEnforcementError, match=r"missing column\(s\) \['tag'\]"):
        model.predict(EXAMPLE[["x"]])
    with pytest.raises(SchemaEnforcementError, match="Param 'mult' must be of type long"):
        model.predict(EXAMPLE, params={"mult": "two"})
    with pytest.raises(SchemaEnforcementError, match=r"Unknown inference param\(s\) \['mul'\]"):
        model.predict(EXAMPLE, params={"mul": 2})


def test_artifacts_from_runs_models_and_remote_uris(
    files: dict[str, Path], s3_env: Any, moto_s3: Any
) -> None:
    server = s3_env(moto_s3)
    bucket = server.create_bucket("pyfunc-artifacts")
    tracking.artifacts.ArtifactRepository(f"s3://{bucket}/shared").log_artifact(
        str(files["factor"])
    )
    with tracking.start_run() as source:
        tracking.log_artifacts(str(files["folder"]), "vocab")
    helper = tracking.pyfunc.log_model(
        "helper", python_model=NoContext(), run_id=source.info.run_id
    )
    tracking.register_model(helper.model_uri, "helper")
    with tracking.start_run():
        info = tracking.pyfunc.log_model(
            "model",
            python_model=Scaler(),
            artifacts={
                "factor": f"s3://{bucket}/shared/factor.txt",
                "folder": f"runs:/{source.info.run_id}/vocab",
                "other": "models:/helper/1",
            },
        )
    model = tracking.pyfunc.load_model(info.model_uri)
    assert model.predict(pd.DataFrame({"x": [2.0]})).tolist() == [6.0]
    artifacts = model.metadata.flavors["python_function"]["artifacts"]
    assert artifacts["other"]["path"] == "artifacts/helper"  # the helper model folder, copied
    assert artifacts["folder"]["uri"] == f"runs:/{source.info.run_id}/vocab"
    with pytest.raises(NotFoundError, match="does not exist"):
        tracking.pyfunc.save_model(
            "unused", python_model=Scaler(), artifacts={"factor": f"s3://{bucket}/nothing.txt"}
        )
    with pytest.raises(NotFoundError, match="does not exist"):
        tracking.pyfunc.save_model(
            "unused2", python_model=Scaler(), artifacts={"factor": "no/such/file.txt"}
        )


def test_code_paths_predict_without_context_and_functions(tmp_path: Path) -> None:
    package = tmp_path / "src" / "shop_rules"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def discount(x):\n    return x * 0.5\n")
    model_file = tmp_path / "src" / "shop_model.py"
    model_file.write_text(
        textwrap.dedent(
            """
            import tracking.pyfunc

            class Discount(tracking.pyfunc.PythonModel):
                def predict(self, context, model_input, params=None):
                    import shop_rules
                    return shop_rules.discount(model_input["x"])
            """
        )
    )
    import subprocess
    import sys

    save = (
        f"import sys; sys.path.insert(0, {str(tmp_path / 'src')!r}); import shop_model, "
        "tracking.pyfunc; tracking.pyfunc.save_model("
        f"{str(tmp_path / 'm')!r}, python_model=shop_model.Discount(), code_paths=["
        f"{str(package)!r}, {str(model_file)!r}])"
    )
    subprocess.run([sys.executable, "-c", save], check=True)
    assert (tmp_path / "m" / "code" / "shop_rules" / "__init__.py").is_file()
    # a fresh process without src/ on its path: the model's code/ folder provides both modules
    load = (
        "import pandas as pd, tracking.pyfunc; m = tracking.pyfunc.load_model("
        f"{str(tmp_path / 'm')!r}); print(m.predict(pd.DataFrame({{'x': [4.0]}})).tolist())"
    )
    out = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[2.0]"

    tracking.pyfunc.save_model(
        tmp_path / "nc", python_model=NoContext(), signature=infer_signature(params={"add": 1})
    )
    assert tracking.pyfunc.load_model(tmp_path / "nc").predict(
        pd.DataFrame({"x": [1, 2]}), params={"add": 5}
    ).tolist() == [6, 7]
    tracking.pyfunc.save_model(tmp_path / "fn", python_model=lambda df: np.asarray(df) * 2)
    assert tracking.pyfunc.load_model(tmp_path / "fn").predict([[1, 2]]).tolist() == [[2, 4]]


def test_custom_model_errors(tmp_path: Path, files: dict[str, Path]) -> None:
    for kwargs, error, words in [
        ({"python_model": 3}, InvalidParameterError, "python_model must be"),
        (
            {"python_model": Scaler(), "artifacts": {"a/b": str(files["factor"])}},
            InvalidParameterError,
            "must not contain path separators",
        ),
        (
            {"python_model": Scaler(), "artifacts": ["x"]},
            InvalidParameterError,
            "artifacts must map non-empty names",
        ),
        (
            {"python_model": Scaler(), "code_paths": str(files["factor"])},
            InvalidParameterError,
            "code_paths must be a list",
        ),
        (
            {"python_model": Scaler(), "pip_requirements": ["a"], "extra_pip_requirements": ["b"]},
            InvalidParameterError,
            "Pass only one of pip_requirements",
        ),
    ]:
        with pytest.raises(error, match=words):
            tracking.pyfunc.save_model(tmp_path / "bad", **kwargs)
        assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    tracking.pyfunc.save_model(tmp_path / "ok", python_model=NoContext())
    with pytest.raises(InvalidParameterError, match="already exists"):
        tracking.pyfunc.save_model(tmp_path / "ok", python_model=NoContext())
    with pytest.raises(SchemaEnforcementError, match="takes no inference params"):
        tracking.pyfunc.load_model(tmp_path / "ok").predict(pd.DataFrame({"x": [1]}), {"a": 1})
    (tmp_path / "ok" / "python_model.pkl").unlink()
    with pytest.raises(NotFoundError, match=r"lacks its python_model\.pkl"):
        tracking.pyfunc.load_model(tmp_path / "ok")
    with tracking.start_run(), pytest.raises(InvalidParameterError, match="exactly one"):
        tracking.pyfunc.log_model(python_model=NoContext())
