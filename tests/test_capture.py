"""Unit tests of the capture rules (tasks/capture.py): arguments -> params, results -> metrics.

Pure functions, no Prefect needed. Every test asserts the exact dict a run would receive.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import pydantic
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tasks.capture import (
    MAX_FLAT_ITEMS,
    clean_key,
    metrics_from_result,
    params_from_arguments,
    summarize,
)
from tracking.validation import MAX_PARAM_VAL_LENGTH, validate_key


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


class Mode(enum.StrEnum):
    FAST = "fast"


@dataclasses.dataclass
class Optimizer:
    name: str = "adam"
    lr: float = 0.01


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 3
    optimizer: Optimizer = dataclasses.field(default_factory=Optimizer)
    tags: list[str] = dataclasses.field(default_factory=lambda: ["a", "b"])


class Point(NamedTuple):
    x: int
    y: float
    label: str = "p"


class Settings(pydantic.BaseModel):
    batch_size: int = 32
    dropout: float = 0.5
    mode: Mode = Mode.FAST


class Nested(pydantic.BaseModel):
    settings: Settings = Settings()
    seed: int | None = None


def params(**arguments: object) -> dict[str, str]:
    return params_from_arguments(arguments)


# --- params: scalars --------------------------------------------------------------------------
def test_scalars_become_text() -> None:
    assert params(i=3, f=0.25, neg=-1.5e-10, t=True, f2=False, n=None, s="adam", empty="") == {
        "i": "3",
        "f": "0.25",
        "neg": "-1.5e-10",
        "t": "True",
        "f2": "False",
        "n": "None",
        "s": "adam",
        "empty": "",
    }


def test_enums_are_recorded_by_value() -> None:
    assert params(c=Color.RED, b=Color.BLUE, m=Mode.FAST) == {"c": "red", "b": "2", "m": "fast"}


def test_special_floats() -> None:
    assert params(nan=math.nan, inf=math.inf, ninf=-math.inf) == {
        "nan": "nan",
        "inf": "inf",
        "ninf": "-inf",
    }


def test_numpy_float64_is_a_float() -> None:
    assert params(lr=np.float64(0.1)) == {"lr": "0.1"}


def test_numpy_scalars_are_text() -> None:
    assert params(n=np.int64(3), f=np.float32(0.5), b=np.bool_(True)) == {
        "n": "3",
        "f": "0.5",
        "b": "True",
    }


# --- params: records flattened to dotted keys --------------------------------------------------
def test_nested_dicts_are_flattened() -> None:
    config = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": {"beta": 0.9}}, "epochs": 10}
    assert params(config=config) == {
        "config.optimizer.name": "sgd",
        "config.optimizer.lr": "0.1",
        "config.optimizer.momentum.beta": "0.9",
        "config.epochs": "10",
    }


def test_empty_dict() -> None:
    assert params(options={}) == {"options": "{}"}


def test_dict_keys_are_made_text_and_cleaned() -> None:
    assert params(d={1: "one", "a b!": 2, "x/y": 3, None: 4}) == {
        "d.1": "one",
        "d.a b_": "2",
        "d.x/y": "3",
        "d.None": "4",
    }


def test_dataclasses_are_flattened() -> None:
    assert params(cfg=TrainConfig()) == {
        "cfg.epochs": "3",
        "cfg.optimizer.name": "adam",
        "cfg.optimizer.lr": "0.01",
        "cfg.tags": "['a', 'b']",
    }


def test_a_dataclass_class_is_not_flattened() -> None:
    assert params(kind=TrainConfig) == {"kind": "type()"}


def test_namedtuples_are_flattened() -> None:
    assert params(p=Point(1, 2.5)) == {"p.x": "1", "p.y": "2.5", "p.label": "p"}


def test_pydantic_models_are_flattened() -> None:
    assert params(s=Settings(), n=Nested(seed=7)) == {
        "s.batch_size": "32",
        "s.dropout": "0.5",
        "s.mode": "fast",
        "n.settings.batch_size": "32",
        "n.settings.dropout": "0.5",
        "n.settings.mode": "fast",
        "n.seed": "7",
    }


def test_nesting_stops_at_max_depth_with_a_summary() -> None:
    deep = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    assert params(deep=deep) == {"deep.a.b.c.d": "dict(len=1)"}


def test_flattening_stops_at_max_flat_items() -> None:
    wide = {f"k{i}": i for i in range(MAX_FLAT_ITEMS + 50)}
    assert params(wide=wide) == {f"wide.k{i}": str(i) for i in range(MAX_FLAT_ITEMS)}


# --- params: sequences -------------------------------------------------------------------------
def test_short_lists_of_scalars_as_text() -> None:
    assert params(
        layers=[64, 32, 16],
        names=["a", "b"],
        mixed=[1, "x", None, True, 0.5],
        colors=[Color.RED, Color.BLUE],
        empty=[],
    ) == {
        "layers": "[64, 32, 16]",
        "names": "['a', 'b']",
        "mixed": "[1, 'x', None, True, 0.5]",
        "colors": "['red', '2']",
        "empty": "[]",
    }


def test_short_tuples_of_scalars_as_text() -> None:
    # Rendered like a list (the tuple's brackets are not kept).
    assert params(shape=(3, 4)) == {"shape": "[3, 4]"}


def test_long_lists_are_summarised() -> None:
    assert params(ids=list(range(1000)), t=tuple(range(500))) == {
        "ids": "list(len=1000)",
        "t": "tuple(len=500)",
    }


def test_list_just_over_the_text_limit_is_summarised() -> None:
    words = ["abcdefgh"] * 30  # str() is 30 * 12 - 2 = 358 characters
    assert params(words=words) == {"words": "list(len=30)"}


def test_lists_of_non_scalars_are_summarised() -> None:
    assert params(rows=[[1, 2], [3, 4]], objs=[object()]) == {
        "rows": "list(len=2)",
        "objs": "list(len=1)",
    }


def test_sets_are_summarised() -> None:
    assert params(s={1, 2, 3}, fs=frozenset()) == {"s": "set(len=3)", "fs": "frozenset(len=0)"}


# --- params: large objects summarised ----------------------------------------------------------
def test_numpy_arrays_summarised_with_shape_and_dtype() -> None:
    assert params(
        X=np.zeros((100, 4)),
        y=np.arange(100),
        mask=np.ones(3, dtype=bool),
        img=np.zeros((2, 8, 8), dtype=np.uint8),
    ) == {
        "X": "ndarray(shape=(100, 4), dtype=float64)",
        "y": f"ndarray(shape=(100,), dtype={np.arange(1).dtype})",
        "mask": "ndarray(shape=(3,), dtype=bool)",
        "img": "ndarray(shape=(2, 8, 8), dtype=uint8)",
    }


def test_pandas_objects_summarised() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]})
    assert params(df=frame, col=frame["b"], empty=pd.DataFrame()) == {
        "df": "DataFrame(shape=(3, 2), columns=2)",
        "col": "Series(shape=(3,), dtype=float64)",
        "empty": "DataFrame(shape=(0, 0), columns=0)",
    }


def test_sklearn_estimators_by_class_name() -> None:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    assert params(
        model=LogisticRegression(C=0.1),
        forest=RandomForestClassifier(n_estimators=3),
        pipeline=pipeline,
    ) == {"model": "LogisticRegression", "forest": "RandomForestClassifier", "pipeline": "Pipeline"}


def test_fitted_estimator_by_class_name() -> None:
    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), np.array([0, 1]))
    assert params(model=model) == {"model": "LogisticRegression"}


def test_summarize_directly() -> None:
    assert summarize(np.zeros((2, 3), dtype=np.float32)) == "ndarray(shape=(2, 3), dtype=float32)"
    assert summarize({"a": 1}) == "dict(len=1)"
    assert summarize(object()) == "object()"


# --- params: odd objects never crash -----------------------------------------------------------
class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Hostile:
    """Every attribute access raises, even the ones isinstance/hasattr look at."""

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(f"no attribute {name}")


class BadMapping(dict):
    def items(self):  # type: ignore[override]
        raise RuntimeError("no items")


class BadLen(list):
    def __len__(self) -> int:
        raise RuntimeError("no len")


@dataclasses.dataclass
class Unset:
    value: int = dataclasses.field(init=False)


class LyingShape:
    shape = "not a tuple"
    dtype = "weird"


def test_odd_objects_never_crash() -> None:
    def gen():
        yield 1

    lock = threading.Lock()
    assert params(
        unprintable=Unprintable(),
        generator=gen(),
        lock=lock,
        hostile=Hostile(),
        bad_mapping=BadMapping(a=1),
        bad_len=BadLen([object()]),
        unset=Unset(),
        lying=LyingShape(),
        function=len,
        lam=lambda x: x,
        cls=int,
        data=b"\x00\x01",
        ellipsis=...,
    ) == {
        "unprintable": "Unprintable()",
        "generator": "generator()",
        "lock": f"{type(lock).__name__}()",
        "hostile": "Hostile",
        "bad_mapping": "BadMapping",
        "bad_len": "BadLen",
        "unset": "Unset",
        "lying": "LyingShape(dtype=weird)",
        "function": "builtin_function_or_method()",
        "lam": "function()",
        "cls": "type()",
        "data": "bytes()",
        "ellipsis": "ellipsis()",
    }


def test_unprintable_inside_a_dict_is_summarised() -> None:
    assert params(d={"ok": 1, "bad": Unprintable()}) == {"d.ok": "1", "d.bad": "Unprintable()"}


def test_self_referencing_dict_stops_at_max_depth() -> None:
    loop: dict[str, object] = {"n": 1}
    loop["self"] = loop
    assert params(loop=loop) == {
        "loop.n": "1",
        "loop.self.n": "1",
        "loop.self.self.n": "1",
        "loop.self.self.self.n": "1",
        "loop.self.self.self.self": "dict(len=2)",
    }


# --- params: truncation and keys ---------------------------------------------------------------
def test_over_long_values_truncated_with_a_warning() -> None:
    text = "x" * (MAX_PARAM_VAL_LENGTH + 1000)
    with pytest.warns(UserWarning, match=r"'prompt' is 7000 characters long; truncated to 6000"):
        result = params(prompt=text)
    assert result == {"prompt": "x" * MAX_PARAM_VAL_LENGTH}


def test_value_at_the_limit_is_kept_without_warning() -> None:
    text = "y" * MAX_PARAM_VAL_LENGTH
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert params(prompt=text) == {"prompt": text}


def test_over_long_nested_value_truncated_under_its_dotted_key() -> None:
    with pytest.warns(UserWarning, match=r"'cfg.text'"):
        result = params(cfg={"text": "z" * 6001})
    assert result == {"cfg.text": "z" * 6000}


def test_keys_with_invalid_characters_are_cleaned() -> None:
    result = params_from_arguments({"learning rate!": 0.1, "a/b": 1, "../up": 2, "é-ok": 3})
    assert result == {"learning rate_": "0.1", "a/b": "1", "_/up": "2", "é-ok": "3"}
    for key in result:
        validate_key(key)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("lr", "lr"),
        ("a b", "a b"),
        ("a:b", "a:b"),
        ("x$y%z", "x_y_z"),
        ("/lead/", "lead"),
        ("a//b", "a/_/b"),
        ("a/./b", "a/_/b"),
        ("..", "_"),
        ("", "_"),
        ("k" * 300, "k" * 250),
    ],
)
def test_clean_key(raw: str, clean: str) -> None:
    assert clean_key(raw) == clean
    validate_key(clean_key(raw))


def test_long_dotted_keys_stay_valid() -> None:
    with pytest.warns(UserWarning, match="truncated to 250"):
        result = params(cfg={"k" * 240: {"v" * 240: 1}})
    assert len(result) == 1
    for key in result:
        validate_key(key)


# --- params: selection options -----------------------------------------------------------------
ARGS = {"lr": 0.1, "epochs": 5, "X": np.zeros((10, 2)), "cfg": {"a": 1}}


def test_log_params_true_keeps_everything() -> None:
    assert params_from_arguments(ARGS, True) == {
        "lr": "0.1",
        "epochs": "5",
        "X": "ndarray(shape=(10, 2), dtype=float64)",
        "cfg.a": "1",
    }


def test_log_params_list_keeps_only_those_names() -> None:
    assert params_from_arguments(ARGS, ["lr", "cfg", "missing"]) == {"lr": "0.1", "cfg.a": "1"}
    assert params_from_arguments(ARGS, ("epochs",)) == {"epochs": "5"}


def test_log_params_empty_list_keeps_nothing() -> None:
    assert params_from_arguments(ARGS, []) == {}


def test_exclude_params_drops_names() -> None:
    assert params_from_arguments(ARGS, exclude=["X", "cfg"]) == {"lr": "0.1", "epochs": "5"}


def test_exclude_wins_over_keep() -> None:
    assert params_from_arguments(ARGS, ["lr", "X"], exclude=["X"]) == {"lr": "0.1"}


def test_log_params_false_gives_nothing() -> None:
    assert params_from_arguments(ARGS, False) == {}
    assert params_from_arguments(ARGS, False, exclude=["lr"]) == {}


def test_no_arguments() -> None:
    assert params_from_arguments({}) == {}


# --- metrics -----------------------------------------------------------------------------------
def test_a_number_is_named_after_the_task() -> None:
    assert metrics_from_result("score", 0.93) == {"score": 0.93}
    assert metrics_from_result("count", 7) == {"count": 7.0}
    assert metrics_from_result("loss", -1.5) == {"loss": -1.5}


def test_metric_name_is_cleaned() -> None:
    assert metrics_from_result("my task!", 1) == {"my task_": 1.0}


def test_numpy_scalars_are_numbers() -> None:
    assert metrics_from_result("a", np.float64(0.5)) == {"a": 0.5}
    assert metrics_from_result("b", np.float32(0.25)) == {"b": 0.25}
    assert metrics_from_result("c", np.int64(3)) == {"c": 3.0}
    assert metrics_from_result("d", np.array(2.5)) == {"d": 2.5}
    assert all(
        type(v) is float
        for v in metrics_from_result("m", {"x": np.int32(1), "y": np.float16(2)}).values()
    )


def test_nan_is_a_number() -> None:
    result = metrics_from_result("loss", math.nan)
    assert list(result) == ["loss"]
    assert math.isnan(result["loss"])


def test_bools_are_ignored() -> None:
    assert metrics_from_result("ok", True) == {}
    assert metrics_from_result("ok", False) == {}
    assert metrics_from_result("ok", np.bool_(True)) == {}
    assert metrics_from_result("r", {"passed": True, "n": 1}) == {"n": 1.0}


def test_mapping_numeric_entries_only() -> None:
    result = {
        "accuracy": 0.9,
        "f1 score": np.float64(0.8),
        "n": 10,
        "name": "lr",
        "flag": True,
        "missing": None,
        "per_class": [0.1, 0.2],
        "nested": {"x": 1.0},
        "array": np.array([1.0, 2.0]),
        3: 0.5,
    }
    assert metrics_from_result("evaluate", result) == {
        "accuracy": 0.9,
        "f1 score": 0.8,
        "n": 10.0,
        "3": 0.5,
    }


def test_mapping_keys_are_cleaned() -> None:
    assert metrics_from_result("t", {"val/loss": 0.1, "acc@1": 0.9}) == {
        "val/loss": 0.1,
        "acc_1": 0.9,
    }


@dataclasses.dataclass
class Scores:
    accuracy: float
    n: int
    label: str
    flag: bool = False


def test_dataclass_numeric_entries_only() -> None:
    assert metrics_from_result("t", Scores(0.75, 4, "x", True)) == {"accuracy": 0.75, "n": 4.0}


def test_namedtuple_numeric_entries_only() -> None:
    assert metrics_from_result("t", Point(1, 2.5, "p")) == {"x": 1.0, "y": 2.5}


def test_pydantic_numeric_entries_only() -> None:
    assert metrics_from_result("t", Settings()) == {"batch_size": 32.0, "dropout": 0.5}


@pytest.mark.parametrize(
    "result",
    [
        None,
        "0.5",
        b"1",
        [0.1, 0.2],
        (0.1, 0.2),
        {0.5},
        np.array([1.0, 2.0]),
        pd.DataFrame({"a": [1.0]}),
        pd.Series([1.0]),
        complex(1, 2),
        LogisticRegression(),
        object(),
        Unprintable(),
        BadMapping(a=1),
        {},
        Scores,
    ],
    ids=lambda v: type(v).__name__,
)
def test_non_numeric_results_give_nothing(result: object) -> None:
    assert metrics_from_result("t", result) == {}


def test_hostile_result_gives_nothing() -> None:
    assert metrics_from_result("t", Hostile()) == {}
