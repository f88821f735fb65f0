"""Signatures and input examples: MLflow's JSON both ways, and enforcement at predict time."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import tracking.pyfunc
import tracking.sklearn
from tracking.errors import InvalidParameterError
from tracking.models import (
    ColSpec,
    DataType,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    SchemaEnforcementError,
    TensorSpec,
    infer_signature,
)
from tracking.models.enforcement import enforce_params, enforce_schema

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer"),
]

PARAMS = {"k": 2, "name": "x", "arr": [1, 2], "flag": True, "scale": 0.5}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    X = load_iris(as_frame=True).data.head(5).copy()
    X["count"] = np.arange(5)
    X["label"] = list("abcde")
    X["when"] = pd.to_datetime([f"2024-01-0{i}" for i in range(1, 6)])
    return X


@pytest.fixture(scope="module")
def mlflow_models() -> Any:
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow.models

    return mlflow.models


def test_inferred_signatures_are_mlflows(frame: pd.DataFrame, mlflow_models: Any) -> None:
    cases = [
        (frame, np.array([0, 1, 0, 1, 1]), PARAMS),
        (frame.to_numpy()[:, :4].astype("float32"), np.zeros((5, 3)), None),
        ({"image": np.zeros((2, 8, 8)), "mask": np.ones((2, 8), dtype="int32")}, None, None),
        ([{"q": "hi", "n": 1}, {"q": "there", "n": None}], ["a", "b"], None),
        (frame["label"], None, {"when": dt.datetime(2024, 1, 1)}),
    ]
    for data, output, params in cases:
        ours = infer_signature(data, output, params)
        theirs = mlflow_models.infer_signature(data, output, params)
        assert ours.to_dict() == theirs.to_dict(), (data, ours.to_dict(), theirs.to_dict())
        assert ModelSignature.from_dict(theirs.to_dict()) == ours
        assert mlflow_models.ModelSignature.from_dict(ours.to_dict()) == theirs


def test_mlflows_nested_types_survive_a_round_trip(mlflow_models: Any) -> None:
    theirs = mlflow_models.infer_signature(
        pd.DataFrame({"tags": [["a", "b"], ["c"]], "meta": [{"k": "v"}, {"k": "w"}], "x": [1, 2]})
    )
    ours = ModelSignature.from_dict(theirs.to_dict())
    assert ours.to_dict() == theirs.to_dict()
    assert [c.type.name for c in ours.inputs.inputs] == ["array", "object", "long"]
    # presence is checked, values are passed through
    out = enforce_schema(pd.DataFrame({"tags": [["z"]], "meta": [{}], "x": [3]}), ours.inputs)
    assert out["tags"].tolist() == [["z"]]
    with pytest.raises(SchemaEnforcementError, match=r"missing column\(s\) \['meta'\]"):
        enforce_schema(pd.DataFrame({"tags": [["z"]], "x": [3]}), ours.inputs)


def test_hand_written_schemas_and_their_errors() -> None:
    schema = Schema([ColSpec("double", "a"), ColSpec(DataType.string, "b", required=False)])
    signature = ModelSignature(
        inputs=schema, params=ParamSchema([ParamSpec("top_k", "long", 3, None)])
    )
    assert ModelSignature.from_dict(signature.to_dict()) == signature
    assert signature.to_dict()["inputs"] == (
        '[{"type": "double", "name": "a", "required": true}, '
        '{"type": "string", "name": "b", "required": false}]'
    )
    assert Schema([TensorSpec(np.dtype("float32"), (-1, 4))]).to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}
    ]
    for bad, words in [
        (lambda: ColSpec("decimal", "a"), "Unsupported type 'decimal'"),
        (lambda: Schema([]), "non-empty"),
        (lambda: Schema([ColSpec("double", "a"), ColSpec("double")]), "all named or all"),
        (lambda: Schema([ColSpec("double", "a"), ColSpec("long", "a")]), "unique"),
        (lambda: ParamSpec("k", "long", "three"), "Param 'k' must be of type long"),
        (lambda: ParamSpec("k", "binary", b""), "other than binary"),
        (lambda: ParamSpec("k", "long", 1, (2, 2)), "shape must be None"),
        (lambda: ModelSignature(), "needs inputs, outputs or params"),
        (lambda: ModelSignature(inputs="a"), "must be a Schema"),
        (lambda: infer_signature(object()), "Cannot infer a schema from a object"),
        (lambda: infer_signature(params={"m": {"a": 1}}), "Cannot infer a type for param 'm'"),
        (lambda: infer_signature(pd.Series([1, "a"], name="c")), "Column 'c' mixes types"),
    ]:
        with pytest.raises(InvalidParameterError, match=words):
            bad()


def test_columns_are_checked_converted_and_reordered(
    frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    schema = infer_signature(frame).inputs
    given = frame[list(reversed(frame.columns))].assign(
        extra=1,
        count=frame["count"].astype("int8"),  # int8 -> long
        when=["2024-02-01"] * 5,  # strings -> datetime
    )
    given["sepal length (cm)"] = [5, 4, 6, 7, 8]  # int64 -> double: exact
    with caplog.at_level(logging.WARNING):
        out = enforce_schema(given, schema)
    assert list(out.columns) == list(frame.columns)  # schema order, extra column dropped
    assert "['extra'] are not in the model signature and are ignored" in caplog.text
    assert out["count"].dtype == np.int64
    assert out["sepal length (cm)"].dtype == np.float64
    assert out["when"].dtype == "datetime64[ns]"
    # a dict of scalars is one row, a list of records a frame
    row = {c: frame[c].iloc[0] for c in frame.columns}
    assert len(enforce_schema(row, schema)) == 1
    assert len(enforce_schema(frame.to_dict(orient="records"), schema)) == 5


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda f: f.drop(columns=["label"]), r"missing column\(s\) \['label'\]"),
        (lambda f: f.assign(count=f["count"] + 0.5), "column 'count': cannot safely convert"),
        (lambda f: f.assign(count=[1.0, np.nan, 2, 3, 4]), "missing values"),
        (lambda f: f.assign(label=[1, 2, 3, 4, 5]), "column 'label': cannot safely convert"),
        (lambda f: f.assign(**{"petal width (cm)": [2**60] * 5}), "int64 to double"),
        (lambda f: f.assign(when=["not a date"] * 5), "'when' cannot be read as datetime"),
        (lambda f: f.assign(**{"sepal width (cm)": [True] * 5}), "bool to double"),
    ],
)
def test_unsafe_column_input_is_refused_naming_the_column(
    frame: pd.DataFrame, change: Any, words: str
) -> None:
    schema = infer_signature(frame).inputs
    with pytest.raises(SchemaEnforcementError, match=words):
        enforce_schema(change(frame), schema)


def test_tensors() -> None:
    schema = infer_signature(np.zeros((3, 4), dtype="float64")).inputs
    assert enforce_schema(np.ones((2, 4), dtype="int32"), schema).dtype == np.float64
    assert enforce_schema(np.ones((2, 4), dtype="float32"), schema).dtype == np.float64
    assert enforce_schema(pd.DataFrame(np.ones((2, 4))), schema).shape == (2, 4)
    assert enforce_schema([[1.0, 2.0, 3.0, 4.0]], schema).shape == (1, 4)
    with pytest.raises(SchemaEnforcementError, match=r"shape of input \(2, 5\)"):
        enforce_schema(np.ones((2, 5)), schema)
    narrow = infer_signature(np.zeros((3, 2), dtype="float32")).inputs
    with pytest.raises(SchemaEnforcementError, match="float64 to float32"):
        enforce_schema(np.ones((2, 2)), narrow)
    named = infer_signature({"x": np.zeros((2, 3)), "y": np.zeros(2, dtype="int64")}).inputs
    out = enforce_schema({"x": np.ones((1, 3)), "y": np.array([7], dtype="int16")}, named)
    assert out["y"].dtype == np.int64
    with pytest.raises(SchemaEnforcementError, match=r"missing tensor\(s\) \['y'\]"):
        enforce_schema({"x": np.ones((1, 3))}, named)


def test_params_are_checked_and_defaulted() -> None:
    schema = infer_signature(params=PARAMS).params
    assert enforce_params(None, schema) == PARAMS
    assert enforce_params({"k": np.int32(5), "scale": 1, "arr": (3,)}, schema) == {
        **PARAMS,
        "k": 5,
        "scale": 1.0,
        "arr": [3],
    }
    for bad, words in [
        ({"k": 1.5}, "Param 'k' must be of type long, got 1.5"),
        ({"flag": 1}, "Param 'flag' must be of type boolean"),
        ({"scale": True}, "Param 'scale' must be of type double"),
        ({"arr": 3}, "Param 'arr' must be a 1-D list of long"),
        ({"nope": 1}, r"Unknown inference param\(s\) \['nope'\].*allows \['k', 'name'"),
        ("k=1", "params must be a dict"),
    ]:
        with pytest.raises(SchemaEnforcementError, match=words):
            enforce_params(bad, schema)  # type: ignore[arg-type]
    with pytest.raises(SchemaEnforcementError, match="takes no inference params"):
        enforce_params({"k": 1}, None, "The model")


def test_sklearn_input_example_and_signature_files_are_mlflows(
    tmp_path: Path, mlflow_models: Any
) -> None:
    import mlflow.sklearn

    X = load_iris(as_frame=True).data
    model = LogisticRegression(max_iter=300).fit(X, load_iris().target)
    example = X.head(3)
    tracking.sklearn.save_model(model, tmp_path / "ours", input_example=example)
    mlflow.sklearn.save_model(
        model, str(tmp_path / "theirs"), input_example=example, serialization_format="cloudpickle"
    )
    for name in ("input_example.json", "serving_input_example.json"):
        assert (tmp_path / "ours" / name).read_text() == (tmp_path / "theirs" / name).read_text()
    ours = tracking.models.Model.load(tmp_path / "ours")
    theirs = mlflow_models.Model.load(str(tmp_path / "theirs"))
    assert ours["signature"] == theirs.signature.to_dict()
    assert ours.saved_input_example_info == theirs.saved_input_example_info
    pd.testing.assert_frame_equal(ours.load_input_example(tmp_path / "ours"), example)
    # the pyfunc refuses what the signature does not allow
    loaded = tracking.pyfunc.load_model(tmp_path / "ours")
    assert loaded.signature == ModelSignature.from_dict(theirs.signature.to_dict())
    np.testing.assert_array_equal(loaded.predict(X.head(4)), model.predict(X.head(4)))
    with pytest.raises(SchemaEnforcementError, match=r"missing column\(s\) \['petal width"):
        loaded.predict(X.head(4).drop(columns=["petal width (cm)"]))
    # signature=False stores none; an explicit one wins over the example
    tracking.sklearn.save_model(model, tmp_path / "none", input_example=example, signature=False)
    assert "signature" not in tracking.models.Model.load(tmp_path / "none")
    explicit = infer_signature(X)
    tracking.sklearn.save_model(model, tmp_path / "expl", signature=explicit)
    assert tracking.pyfunc.load_model(tmp_path / "expl").signature == explicit
    with pytest.raises(InvalidParameterError, match="signature must be a ModelSignature"):
        tracking.sklearn.save_model(model, tmp_path / "bad", signature={"inputs": "[]"})
    with pytest.raises(InvalidParameterError, match="Unsupported input_example of type set"):
        tracking.sklearn.save_model(model, tmp_path / "bad2", input_example={1, 2})
    assert not (tmp_path / "bad2").exists()  # nothing half-written is left behind


def test_input_examples_of_every_kind_read_back(tmp_path: Path) -> None:
    from scipy import sparse

    from tracking.models.input_example import read_example, save_example

    examples: list[Any] = [
        np.array([[1.0, np.nan], [3.0, 4.0]]),
        {"a": np.arange(3), "b": np.ones((3, 2))},
        sparse.csr_matrix(np.eye(3)),
        [{"q": "hello"}],
        (pd.DataFrame({"x": [1, 2]}), {"k": 3}),
    ]
    for number, example in enumerate(examples):
        folder = tmp_path / str(number)
        folder.mkdir()
        saved = save_example(str(folder), example)
        data, params = read_example(str(folder), saved.info)
        if isinstance(example, tuple):
            pd.testing.assert_frame_equal(data, example[0])
            assert params == {"k": 3} and saved.info["params"] == "true"
        elif isinstance(example, dict):
            assert {k: v.tolist() for k, v in data.items()} == {
                k: v.tolist() for k, v in example.items()
            }
        elif sparse.issparse(example):
            assert (data != example).nnz == 0
        elif isinstance(example, np.ndarray):
            np.testing.assert_array_equal(data, example)
        else:
            assert data == example
    with pytest.raises(InvalidParameterError, match="Unknown input example type 'image'"):
        read_example(str(tmp_path / "0"), {"type": "image"})
