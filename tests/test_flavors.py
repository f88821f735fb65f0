"""The LightGBM and XGBoost flavors, the flavor registry (entry points), missing extras and the
import cost of `import tracking`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from sklearn.datasets import load_iris

import tracking
import tracking.lightgbm
import tracking.pyfunc
import tracking.xgboost
from tracking.errors import InvalidParameterError, NotFoundError
from tracking.models import SchemaEnforcementError, flavors

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    iris = load_iris(as_frame=True)
    X = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return X, iris.target.to_numpy()


def _models(X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1}
    xgb_params = {"objective": "multi:softprob", "num_class": 3}
    return {
        "lgb-booster": lgb.train(params, lgb.Dataset(X, y), num_boost_round=5),
        "lgb-classifier": lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y),
        "lgb-regressor": lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y.astype(float)),
        "xgb-booster": xgb.train(xgb_params, xgb.DMatrix(X, y), num_boost_round=5),
        "xgb-classifier": xgb.XGBClassifier(n_estimators=5).fit(X, y),
        "xgb-regressor": xgb.XGBRegressor(n_estimators=5).fit(X, y),
    }


def _predict(model: Any, X: pd.DataFrame) -> np.ndarray:
    if isinstance(model, xgb.Booster):
        return model.predict(xgb.DMatrix(X))
    return np.asarray(model.predict(X))


def test_save_load_and_pyfunc_for_every_model_kind(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = data
    for name, model in _models(X, y).items():
        flavor = tracking.lightgbm if name.startswith("lgb") else tracking.xgboost
        path = tmp_path / name
        flavor.save_model(model, path, input_example=X.head(3))
        meta = yaml.safe_load((path / "MLmodel").read_text())
        conf = meta["flavors"][flavor.FLAVOR_NAME]
        assert conf["model_class"] == f"{type(model).__module__}.{type(model).__qualname__}"
        assert meta["flavors"]["python_function"]["loader_module"] == f"mlflow.{flavor.EXTRA}"
        assert (path / conf["data"]).is_file()
        requirements = (path / "requirements.txt").read_text()
        assert ("lightgbm==" if name.startswith("lgb") else "xgboost") in requirements
        loaded = flavor.load_model(path)
        assert type(loaded) is type(model)
        np.testing.assert_allclose(_predict(loaded, X), _predict(model, X), rtol=1e-6)
        pyfunc = tracking.pyfunc.load_model(path)
        assert pyfunc.signature is not None
        assert [c.name for c in pyfunc.signature.inputs.inputs] == list(X.columns)
        np.testing.assert_allclose(
            np.asarray(pyfunc.predict(X.head(10))), _predict(model, X.head(10)), rtol=1e-6
        )
        shuffled = X.head(4)[list(reversed(X.columns))].assign(extra=1)
        np.testing.assert_allclose(  # reordered, extra column dropped
            np.asarray(pyfunc.predict(shuffled)), _predict(model, X.head(4)), rtol=1e-6
        )
        with pytest.raises(SchemaEnforcementError, match=r"missing column\(s\) \['petal_width'\]"):
            pyfunc.predict(X.drop(columns=["petal_width"]))


def test_log_register_and_other_formats(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    models = _models(X, y)
    with tracking.start_run() as run:
        lgb_info = tracking.lightgbm.log_model(
            models["lgb-classifier"], name="lgbm", registered_model_name="lgbm"
        )
        xgb_info = tracking.xgboost.log_model(
            models["xgb-booster"], "xgb", model_format="json", registered_model_name="xgb"
        )
        skops_info = tracking.lightgbm.log_model(
            models["lgb-regressor"], "skops", serialization_format="skops"
        )
    assert lgb_info.model_uri == f"runs:/{run.info.run_id}/lgbm"
    assert xgb_info.flavors["xgboost"]["model_format"] == "json"
    assert skops_info.flavors["lightgbm"]["serialization_format"] == "skops"
    assert "lightgbm.sklearn.LGBMRegressor" in skops_info.flavors["lightgbm"]["skops_trusted_types"]
    for uri, original in [
        ("models:/lgbm/1", models["lgb-classifier"]),
        ("models:/xgb/1", models["xgb-booster"]),
        (skops_info.model_uri, models["lgb-regressor"]),
    ]:
        np.testing.assert_allclose(
            np.asarray(tracking.pyfunc.load_model(uri).predict(X)), _predict(original, X)
        )
    assert isinstance(tracking.xgboost.load_model("models:/xgb/1"), xgb.Booster)


def test_flavor_errors(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    models = _models(X, y)
    with pytest.raises(TypeError, match=r"must be a lightgbm\.Booster"):
        tracking.lightgbm.save_model(models["xgb-booster"], tmp_path / "a")
    with pytest.raises(TypeError, match=r"must be an xgboost\.Booster"):
        tracking.xgboost.save_model(models["lgb-booster"], tmp_path / "b")
    with pytest.raises(InvalidParameterError, match="Unsupported model_format 'xgb'"):
        tracking.xgboost.save_model(models["xgb-booster"], tmp_path / "c", model_format="xgb")
    with pytest.raises(InvalidParameterError, match="Unsupported serialization_format 'json'"):
        tracking.lightgbm.save_model(
            models["lgb-classifier"], tmp_path / "d", serialization_format="json"
        )
    tracking.xgboost.save_model(models["xgb-classifier"], tmp_path / "x")
    mlmodel = tmp_path / "x" / "MLmodel"
    meta = yaml.safe_load(mlmodel.read_text())
    meta["flavors"]["xgboost"]["model_class"] = "os.system"
    mlmodel.write_text(yaml.safe_dump(meta))
    with pytest.raises(InvalidParameterError, match=r"names model_class 'os\.system'"):
        tracking.xgboost.load_model(tmp_path / "x")
    tracking.lightgbm.save_model(models["lgb-booster"], tmp_path / "l")
    (tmp_path / "l" / "model.lgb").unlink()
    with pytest.raises(NotFoundError, match=r"lacks its model file model\.lgb"):
        tracking.lightgbm.load_model(tmp_path / "l")
    with pytest.raises(InvalidParameterError, match=r"no xgboost flavor \(its flavors: "):
        tracking.xgboost.load_model(tmp_path / "l")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
    )


def test_missing_extra_is_named(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    tracking.xgboost.save_model(_models(X, y)["xgb-classifier"], tmp_path / "x")
    result = _python(
        f"""
        import sys
        sys.modules["lightgbm"] = None   # as if LightGBM were not installed
        sys.modules["xgboost"] = None
        import tracking.lightgbm, tracking.pyfunc
        for call in (lambda: tracking.lightgbm.save_model(object(), "m"),
                     lambda: tracking.pyfunc.load_model({str(tmp_path / "x")!r})):
            try:
                call()
            except ImportError as e:
                print(e)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "pip install 'trackflow[lightgbm]'" in lines[0]
    assert "pip install 'trackflow[xgboost]'" in lines[1]


def test_import_tracking_stays_light() -> None:
    result = _python(
        """
        import sys, tracking, tracking.models, tracking.lightgbm, tracking.xgboost, tracking.pyfunc
        heavy = {"numpy", "pandas", "sklearn", "lightgbm", "xgboost"} & set(sys.modules)
        assert not heavy, heavy
        assert tracking.lightgbm is sys.modules["tracking.models.lightgbm"]
        assert tracking.xgboost.FLAVOR_NAME == "xgboost"
        from tracking.models import infer_signature, ColSpec   # now numpy loads
        assert "numpy" in sys.modules
        print("ok")
        """
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_entry_point_flavors(tmp_path: Path) -> None:
    """A third-party flavor registers through the trackflow.flavors entry-point group and is
    then loaded by tracking.pyfunc; a broken one is skipped with a warning naming it."""
    site = tmp_path / "site"
    (site / "acme_flavor").mkdir(parents=True)
    (site / "acme_flavor" / "__init__.py").write_text(
        textwrap.dedent(
            """
            FLAVOR_NAME = "acme"
            PYFUNC_LOADER_MODULES = ("acme_flavor",)

            class Doubler:
                def predict(self, data, params=None):
                    return [2 * v for v in data]
                def get_raw_model(self):
                    return self

            def load_pyfunc(path, model):
                assert model.flavors["acme"]["factor"] == 2
                return Doubler()
            """
        )
    )
    dist = site / "acme_flavor-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-flavor\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[trackflow.flavors]\nacme = acme_flavor\nbroken = acme_flavor.missing\n"
    )
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text(
        yaml.safe_dump(
            {
                "flavors": {
                    "python_function": {"loader_module": "acme_flavor"},
                    "acme": {"factor": 2},
                }
            }
        )
    )
    result = _python(
        f"""
        import sys, warnings
        sys.path.insert(0, {str(site)!r})
        import tracking.pyfunc
        from tracking.models import flavors
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = sorted(flavors.flavor_modules())
        print(names)
        print([str(w.message) for w in caught])
        print(tracking.pyfunc.load_model({str(model)!r}).predict([1, 2]))
        """
    )
    assert result.returncode == 0, result.stderr
    names, warned, predictions = result.stdout.splitlines()
    assert names == "['acme', 'lightgbm', 'python_function', 'sklearn', 'xgboost']"
    assert "Flavor 'broken' from entry point 'acme_flavor.missing' is not used" in warned
    assert predictions == "[2, 4]"
    # without the entry point, the error lists the loader modules Trackflow knows
    with pytest.raises(InvalidParameterError, match=r"needs loader module 'acme_flavor'.*mlflow"):
        tracking.pyfunc.load_model(model)
    assert "mlflow.lightgbm" in {
        m for f in flavors.flavor_modules().values() for m in f.PYFUNC_LOADER_MODULES
    }
