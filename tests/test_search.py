"""Tests for the search_runs / search_experiments grammar (tracking.search)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracking.entities import Experiment, RunStatus
from tracking.errors import INVALID_PARAMETER_VALUE, InvalidParameterError
from tracking.search import (
    Comparison,
    OrderBy,
    SearchSyntaxError,
    experiment_matches,
    format_filter,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
    run_matches,
    sort_experiments,
    sort_runs,
)

NAN = float("nan")


@dataclass
class RunRecord:
    """A run as plain test data, exposing the RunView accessors."""

    run_id: str
    start_time: int | None = 0
    end_time: int | None = None
    run_name: str | None = None
    status: str | int = "FINISHED"
    user_id: str = "alice"
    artifact_uri: str = "file:///tmp/a"
    lifecycle_stage: str = "active"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def attribute(self, key: str) -> str | int | None:
        return getattr(self, key)

    def metric(self, key: str) -> float | None:
        return self.metrics.get(key)

    def param(self, key: str) -> str | None:
        return self.params.get(key)

    def tag(self, key: str) -> str | None:
        return self.tags.get(key)


def C(entity: str, key: str, op: str, value: object = None) -> Comparison:
    return Comparison(entity, key, op, value)  # type: ignore[arg-type]


def ids(items: list[RunRecord]) -> list[str]:
    return [r.run_id for r in items]


def matches(filter_string: str, run: RunRecord) -> bool:
    return run_matches(parse_run_filter(filter_string), run)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc > 0.9", [C("metric", "acc", ">", 0.9)]),
        ("metric.acc<=1", [C("metric", "acc", "<=", 1.0)]),
        ("METRICS.acc != 2", [C("metric", "acc", "!=", 2.0)]),
        ("params.lr = '0.1'", [C("param", "lr", "=", "0.1")]),
        ("param.lr = '0.1'", [C("param", "lr", "=", "0.1")]),
        ("parameters.lr = '0.1'", [C("param", "lr", "=", "0.1")]),
        ("parameter.lr = '0.1'", [C("param", "lr", "=", "0.1")]),
        ("tags.team = 'ml'", [C("tag", "team", "=", "ml")]),
        ('tag.team != "ml"', [C("tag", "team", "!=", "ml")]),
        ("params.model.lr = 'x'", [C("param", "model.lr", "=", "x")]),
        ("metrics.loss/val-1:x < 2", [C("metric", "loss/val-1:x", "<", 2.0)]),
        ("metrics.`my metric/1` >= 1", [C("metric", "my metric/1", ">=", 1.0)]),
        ("params.`a.b c` = 'v'", [C("param", "a.b c", "=", "v")]),
        ("tags.\"a b\" = 'x'", [C("tag", "a b", "=", "x")]),
        ("tags.`we``ird` = 'x'", [C("tag", "we`ird", "=", "x")]),
        ('tags."say ""hi""" = \'x\'', [C("tag", 'say "hi"', "=", "x")]),
        ("attributes.created > 5", [C("attribute", "start_time", ">", 5)]),
        ("attribute.Created > 5", [C("attribute", "start_time", ">", 5)]),
        ("attributes.`Run name` = 'r'", [C("attribute", "run_name", "=", "r")]),
        ("attr.\"run name\" = 'r'", [C("attribute", "run_name", "=", "r")]),
        ("attr.run_uuid = 'abc'", [C("attribute", "run_id", "=", "abc")]),
        ("run.status = 'FINISHED'", [C("attribute", "status", "=", "FINISHED")]),
        (
            "attributes.lifecycle_stage = 'deleted'",
            [C("attribute", "lifecycle_stage", "=", "deleted")],
        ),
        ("attributes.end_time <= 1700000000000", [C("attribute", "end_time", "<=", 1700000000000)]),
        ("attributes.start_time >= 1.7e12", [C("attribute", "start_time", ">=", 1700000000000)]),
        ("attributes.run_id IN ('a', 'b')", [C("attribute", "run_id", "IN", ("a", "b"))]),
        ('tags.t NOT IN ("x")', [C("tag", "t", "NOT IN", ("x",))]),
        ("params.p in ('a','b','c')", [C("param", "p", "IN", ("a", "b", "c"))]),
        ("params.p not in ('a')", [C("param", "p", "NOT IN", ("a",))]),
        ("metrics.m = -1", [C("metric", "m", "=", -1.0)]),
        ("metrics.m > -1.5e-3", [C("metric", "m", ">", -0.0015)]),
        ("metrics.m < 1E10", [C("metric", "m", "<", 1e10)]),
        ("metrics.m < .5", [C("metric", "m", "<", 0.5)]),
        ("metrics.m < +2", [C("metric", "m", "<", 2.0)]),
        ("metrics.m>-1", [C("metric", "m", ">", -1.0)]),
        ("tags.t = 'it''s'", [C("tag", "t", "=", "it's")]),
        (r"tags.t = 'it\'s'", [C("tag", "t", "=", "it's")]),
        (r"tags.t = 'back\\slash'", [C("tag", "t", "=", "back\\slash")]),
        (r"tags.t LIKE 'a\_b'", [C("tag", "t", "LIKE", r"a\_b")]),
        ("tags.t = ''", [C("tag", "t", "=", "")]),
        ("tags.t like 'a%'", [C("tag", "t", "LIKE", "a%")]),
        ("tags.t ILike 'a%'", [C("tag", "t", "ILIKE", "a%")]),
        ("tags.t is null", [C("tag", "t", "IS NULL")]),
        ("tags.t Is Not Null", [C("tag", "t", "IS NOT NULL")]),
        ("metrics.m IS NULL", [C("metric", "m", "IS NULL")]),
        (
            "metrics.a>=1 and params.p='x' AND tags.t != 'y'",
            [C("metric", "a", ">=", 1.0), C("param", "p", "=", "x"), C("tag", "t", "!=", "y")],
        ),
        (
            "  metrics.a = 1\n\tAND\nmetrics.b = 2  ",
            [C("metric", "a", "=", 1), C("metric", "b", "=", 2)],
        ),
    ],
)
def test_parse_run_filter(text: str, expected: list[Comparison]) -> None:
    assert parse_run_filter(text) == tuple(expected)


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_filter(text: str | None) -> None:
    assert parse_run_filter(text) == ()
    assert parse_experiment_filter(text) == ()


def test_parsed_values_have_exact_types() -> None:
    (c,) = parse_run_filter("attributes.start_time > 1e3")
    assert c.value == 1000 and type(c.value) is int
    (c,) = parse_run_filter("metrics.m > 1")
    assert type(c.value) is float


def test_parse_is_cached() -> None:
    text = "metrics.cached_acc > 0.5"
    assert parse_run_filter(text) is parse_run_filter(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = 'exp'", [C("attribute", "name", "=", "exp")]),
        ("attributes.name LIKE 'a%'", [C("attribute", "name", "LIKE", "a%")]),
        ("attr.Name ILIKE 'A%'", [C("attribute", "name", "ILIKE", "A%")]),
        ("experiment_id IN ('1', '2')", [C("attribute", "experiment_id", "IN", ("1", "2"))]),
        ("creation_time > 5", [C("attribute", "creation_time", ">", 5)]),
        ("last_update_time <= 7", [C("attribute", "last_update_time", "<=", 7)]),
        ("`name` = 'x'", [C("attribute", "name", "=", "x")]),
        (
            "tags.owner = 'me' and name != 'x'",
            [C("tag", "owner", "=", "me"), C("attribute", "name", "!=", "x")],
        ),
    ],
)
def test_parse_experiment_filter(text: str, expected: list[Comparison]) -> None:
    assert parse_experiment_filter(text) == tuple(expected)


def test_exact_error_message() -> None:
    with pytest.raises(SearchSyntaxError) as info:
        parse_run_filter("metrics.acc >")
    assert str(info.value) == (
        "Invalid filter 'metrics.acc >' at position 13: expected a value after '>'"
    )
    assert info.value.position == 13
    assert isinstance(info.value, InvalidParameterError)
    assert info.value.error_code == INVALID_PARAMETER_VALUE


@pytest.mark.parametrize(
    ("text", "position", "fragments"),
    [
        ("metrics.a > 1 OR metrics.b < 2", 14, ["only AND", "'OR'"]),
        ("(metrics.a > 1)", 0, ["parentheses", "only AND"]),
        ("metrics.a > 1 AND (metrics.b < 2)", 18, ["parentheses"]),
        ("metrics.a > 1 AND", 17, ["after AND", "end of filter"]),
        ("metrics.a > 1 AND AND metrics.b < 1", 18, ["expected an identifier", "'AND'"]),
        ("tags.t = 'abc", 9, ["unterminated string"]),
        ('tags.t = "abc', 9, ["unterminated string"]),
        ("metrics.`abc = 1", 8, ["unterminated back-quoted key"]),
        ("foo.bar = 'x'", 0, ["unknown entity prefix 'foo.'", "metrics."]),
        ("datasets.name = 'x'", 0, ["unknown entity prefix"]),
        ("metrics.a 1", 10, ["expected a comparison operator after 'metrics.a'", "'1'"]),
        ("metrics.a", 9, ["expected a comparison operator", "end of filter"]),
        ("metrics.a > 1 garbage", 14, ["expected AND", "'garbage'"]),
        ("metrics.a > 12abc", 12, ["invalid number '12abc'"]),
        ("metrics.a > 1.2.3", 12, ["invalid number '1.2.3'"]),
        ("metrics.a > 1e", 12, ["invalid number '1e'"]),
        ("tags.t IN ()", 11, ["empty IN list"]),
        ("tags.t NOT IN ()", 15, ["empty NOT IN list"]),
        ("metrics.a LIKE '%x'", 10, ["'LIKE'", "expected a numeric value for metric comparison"]),
        ("metrics.a IN ('1')", 10, ["'IN'", "expected a numeric value for metric comparison"]),
        ("metrics.a = 'x'", 12, ["expected a numeric value for metric comparison", "\"'x'\""]),
        ("params.p = 1", 11, ["expected a quoted string", "'1'"]),
        ("tags.t != other", 10, ["expected a quoted string", "'other'"]),
        ("params.p > 'a'", 9, ["operator '>' is not supported for params"]),
        ("attributes.start_time LIKE 'x'", 22, ["'LIKE' is not supported", "start_time"]),
        ("attributes.status IS NULL", 18, ["'IS NULL' is not supported"]),
        ("attributes.start_time = 1.5", 24, ["expected an integer", "'1.5'"]),
        ("attributes.start_time = '5'", 24, ["expected an integer"]),
        ("attributes.start_time = 1e40", 24, ["expected an integer"]),
        ("attributes.foo = 'x'", 0, ["unknown run attribute 'foo'", "run_id", "start_time"]),
        ("run_id = 'x'", 0, ["expected an entity prefix", "'run_id'"]),
        ("metrics. = 1", 0, ["expected a key after 'metrics.'"]),
        ("metrics.`` = 1", 0, ["expected a key"]),
        ("tags.t IS 'x'", 10, ["expected NULL after IS", "\"'x'\""]),
        ("tags.t IS NOT", 13, ["expected NULL after IS NOT"]),
        ("tags.t NOT LIKE 'x'", 11, ["expected IN after NOT", "'LIKE'"]),
        ("tags.t NOT", 10, ["expected IN after NOT", "end of filter"]),
        ("tags.t IN 'x'", 10, ["expected '(' after IN"]),
        ("tags.t IN ('a' 'b')", 15, ["expected ',' or ')'", "\"'b'\""]),
        ("tags.t IN ('a',)", 15, ["expected a quoted string in the IN list"]),
        ("tags.t IN ('a', 1)", 16, ["expected a quoted string in the IN list", "'1'"]),
        ("tags.t IN ('a'", 14, ["expected ',' or ')'", "end of filter"]),
        ("metrics.a ~ 1", 10, ["unexpected character '~'"]),
        ("metrics.a == 1", 11, ["expected a numeric value", "'='"]),
        ("= 1", 0, ["expected an identifier", "'='"]),
        ("'x' = tags.t", 0, ["expected an identifier"]),
        ("metrics.a - 1", 10, ["unexpected character '-'"]),
    ],
)
def test_run_filter_errors(text: str, position: int, fragments: list[str]) -> None:
    with pytest.raises(SearchSyntaxError) as info:
        parse_run_filter(text)
    message = str(info.value)
    assert message.startswith(f"Invalid filter {text!r} at position {position}: "), message
    assert info.value.position == position
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("metrics.a > 1", ["metrics cannot be used to search experiments"]),
        ("params.p = 'x'", ["params cannot be used"]),
        ("foo = 'x'", ["unknown experiment attribute 'foo'", "name", "creation_time"]),
        ("attributes.status = 'x'", ["unknown experiment attribute 'status'"]),
        ("name > 'x'", ["operator '>' is not supported for attribute 'name'"]),
        ("creation_time = 'x'", ["expected an integer"]),
        ("name = 'a' OR name = 'b'", ["only AND"]),
    ],
)
def test_experiment_filter_errors(text: str, fragments: list[str]) -> None:
    with pytest.raises(SearchSyntaxError) as info:
        parse_experiment_filter(text)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_non_string_filter_is_a_syntax_error() -> None:
    with pytest.raises(SearchSyntaxError):
        parse_run_filter(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (None, []),
        ([], []),
        (["metrics.acc"], [OrderBy("metric", "acc", True)]),
        (["metrics.acc DESC"], [OrderBy("metric", "acc", False)]),
        (
            ["params.p asc", "tags.`a b` desc"],
            [OrderBy("param", "p", True), OrderBy("tag", "a b", False)],
        ),
        (["attributes.start_time"], [OrderBy("attribute", "start_time", True)]),
        (["attr.created DESC"], [OrderBy("attribute", "start_time", False)]),
        (["attributes.`Run name`"], [OrderBy("attribute", "run_name", True)]),
        (('metrics."m/1" Desc',), [OrderBy("metric", "m/1", False)]),
        ("metrics.acc DESC", [OrderBy("metric", "acc", False)]),
    ],
)
def test_parse_run_order_by(entries: list[str] | None, expected: list[OrderBy]) -> None:
    assert parse_run_order_by(entries) == tuple(expected)


@pytest.mark.parametrize(
    ("entry", "fragments"),
    [
        ("metrics.acc DOWN", ["'metrics.acc DOWN'", "position 12", "expected ASC, DESC", "'DOWN'"]),
        ("metrics.acc ASC extra", ["position 16", "'extra'"]),
        ("attributes.lifecycle_stage", ["unknown run attribute 'lifecycle_stage'", "run_name"]),
        ("attributes.foo", ["unknown run attribute 'foo'"]),
        ("", ["expected an identifier", "end of order_by entry"]),
        ("start_time DESC", ["expected an entity prefix"]),
        ("metrics.acc > 1", ["expected ASC, DESC", "'>'"]),
    ],
)
def test_run_order_by_errors(entry: str, fragments: list[str]) -> None:
    with pytest.raises(SearchSyntaxError) as info:
        parse_run_order_by([entry])
    assert str(info.value).startswith(f"Invalid order_by entry {entry!r}")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_order_by_non_string_entry() -> None:
    with pytest.raises(SearchSyntaxError, match="order_by entry None"):
        parse_run_order_by([None])  # type: ignore[list-item]


def test_parse_experiment_order_by() -> None:
    assert parse_experiment_order_by(
        ["name", "attributes.creation_time DESC", "tags.x", "experiment_id ASC"]
    ) == (
        OrderBy("attribute", "name", True),
        OrderBy("attribute", "creation_time", False),
        OrderBy("tag", "x", True),
        OrderBy("attribute", "experiment_id", True),
    )
    with pytest.raises(SearchSyntaxError, match="metrics cannot be used"):
        parse_experiment_order_by(["metrics.a"])


# --------------------------------------------------------------------------- evaluation

RUN = RunRecord(
    "r1",
    start_time=1000,
    end_time=2000,
    run_name="train-Big_1",
    status="FINISHED",
    metrics={"acc": 0.9, "loss": NAN, "my metric": 3.0},
    params={"lr": "0.1", "model": "ResNet50"},
    tags={"team": "ml", "note": "line1\nline2"},
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc = 0.9", True),
        ("metrics.acc != 0.9", False),
        ("metrics.acc != 1", True),
        ("metrics.acc < 1", True),
        ("metrics.acc < 0.9", False),
        ("metrics.acc <= 0.9", True),
        ("metrics.acc > 0.9", False),
        ("metrics.acc >= 0.9", True),
        ("metrics.`my metric` > 2.5e0", True),
        ("metrics.acc IS NOT NULL", True),
        ("metrics.acc IS NULL", False),
        # missing metric: every comparison is false, even !=
        ("metrics.missing = 1", False),
        ("metrics.missing != 1", False),
        ("metrics.missing < 1", False),
        ("metrics.missing IS NULL", True),
        ("metrics.missing IS NOT NULL", False),
        # NaN: false except !=
        ("metrics.loss = 1", False),
        ("metrics.loss < 1", False),
        ("metrics.loss >= 1", False),
        ("metrics.loss != 1", True),
        ("metrics.loss IS NOT NULL", True),
        ("params.lr = '0.1'", True),
        ("params.lr != '0.1'", False),
        ("params.lr != '0.2'", True),
        ("params.missing != 'x'", False),
        ("params.missing IS NULL", True),
        ("params.lr IS NOT NULL", True),
        ("params.model LIKE 'Res%'", True),
        ("params.model LIKE 'res%'", False),
        ("params.model ILIKE 'res%'", True),
        ("params.model LIKE 'ResNet__'", True),
        ("params.model LIKE 'ResNet_'", False),
        ("params.model LIKE '%Net%'", True),
        ("params.model LIKE 'Res'", False),
        ("params.lr LIKE '0.1'", True),
        ("params.lr LIKE '0a1'", False),  # '.' is not a regex wildcard
        ("params.lr LIKE '0_1'", True),
        ("params.missing LIKE '%'", False),
        ("params.model IN ('ResNet50', 'VGG')", True),
        ("params.model IN ('resnet50')", False),
        ("params.model NOT IN ('VGG')", True),
        ("params.missing NOT IN ('VGG')", False),
        ("tags.team = 'ml'", True),
        ("tags.note LIKE 'line1%line2'", True),
        ("tags.note ILIKE 'LINE1_LINE2'", True),
        ("attributes.run_name = 'train-Big_1'", True),
        ("attributes.run_name LIKE 'train-%'", True),
        ("attributes.`Run name` ILIKE '%big%'", True),
        ("attributes.status = 'FINISHED'", True),
        ("attributes.status IN ('RUNNING', 'FAILED')", False),
        ("attributes.user_id != 'bob'", True),
        ("attributes.run_id = 'r1'", True),
        ("attributes.run_uuid IN ('r2', 'r1')", True),
        ("attributes.lifecycle_stage = 'active'", True),
        ("attributes.start_time = 1000", True),
        ("attributes.start_time > 999 AND attributes.end_time <= 2000", True),
        ("attributes.created < 1000", False),
        ("attributes.end_time != 2000", False),
        ("metrics.acc > 0.5 AND params.lr = '0.1' AND tags.team = 'ml'", True),
        ("metrics.acc > 0.5 AND params.lr = '0.2'", False),
        ("", True),
    ],
)
def test_run_matches(text: str, expected: bool) -> None:
    assert matches(text, RUN) is expected


def test_missing_attribute_values() -> None:
    run = RunRecord("r", start_time=None, end_time=None, run_name=None)
    assert not matches("attributes.end_time != 5", run)
    assert not matches("attributes.end_time < 5", run)
    assert not matches("attributes.run_name != 'x'", run)
    assert not matches("attributes.run_name NOT IN ('x')", run)


def test_integer_status_is_compared_by_name() -> None:
    run = RunRecord("r", status=int(RunStatus.RUNNING))
    assert matches("attributes.status = 'RUNNING'", run)
    assert matches("attributes.status LIKE 'RUN%'", run)
    assert not matches("attributes.status = 'FINISHED'", run)


def test_run_matches_reads_only_what_the_filter_needs() -> None:
    class MetricsOnly(RunRecord):
        def param(self, key: str) -> str | None:
            raise AssertionError("param() must not be called")

        def tag(self, key: str) -> str | None:
            raise AssertionError("tag() must not be called")

    run = MetricsOnly("r", metrics={"a": 1.0})
    assert run_matches(parse_run_filter("metrics.a = 1"), run)
    assert sort_runs([run], parse_run_order_by(["metrics.a"])) == [run]


# --------------------------------------------------------------------------- sorting


def test_sort_runs_default_tie_break() -> None:
    runs = [
        RunRecord("b", start_time=10),
        RunRecord("a", start_time=10),
        RunRecord("c", start_time=30),
        RunRecord("d", start_time=None),
        RunRecord("e", start_time=20),
    ]
    assert ids(sort_runs(runs, ())) == ["c", "e", "a", "b", "d"]
    assert ids(runs) == ["b", "a", "c", "d", "e"]  # input untouched


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["metrics.m"], ["r3", "r1", "r2", "r4", "r5", "r6"]),
        (["metrics.m ASC"], ["r3", "r1", "r2", "r4", "r5", "r6"]),
        (["metrics.m DESC"], ["r1", "r2", "r4", "r3", "r5", "r6"]),
    ],
)
def test_sort_runs_none_and_nan_last(order: list[str], expected: list[str]) -> None:
    runs = [
        RunRecord("r6", start_time=1, metrics={"m": NAN}),
        RunRecord("r5", start_time=2),
        RunRecord("r4", start_time=3, metrics={"m": 2.0}),
        RunRecord("r3", start_time=4, metrics={"m": -1.0}),
        RunRecord("r2", start_time=5, metrics={"m": 2.0}),
        RunRecord("r1", start_time=6, metrics={"m": 2.0}),
    ]
    # equal values (2.0) and both missing kinds fall back to start_time DESC
    assert ids(sort_runs(runs, parse_run_order_by(order))) == expected


def test_sort_runs_mixed_directions() -> None:
    runs = [
        RunRecord("a", params={"p": "x"}, metrics={"m": 1.0}),
        RunRecord("b", params={"p": "y"}, metrics={"m": 1.0}),
        RunRecord("c", params={"p": "x"}, metrics={"m": 2.0}),
        RunRecord("d", params={"p": "y"}, metrics={"m": 3.0}),
        RunRecord("e", metrics={"m": 9.0}),
    ]
    order = parse_run_order_by(["params.p DESC", "metrics.m ASC"])
    assert ids(sort_runs(runs, order)) == ["b", "d", "a", "c", "e"]
    order = parse_run_order_by(["params.p", "metrics.m DESC"])
    assert ids(sort_runs(runs, order)) == ["c", "a", "d", "b", "e"]


def test_sort_runs_by_attributes() -> None:
    runs = [
        RunRecord("a", run_name="zeta", end_time=5, status=int(RunStatus.RUNNING)),
        RunRecord("b", run_name="alpha", end_time=None, status="FAILED"),
        RunRecord("c", run_name=None, end_time=1, status="FINISHED"),
    ]
    assert ids(sort_runs(runs, parse_run_order_by(["attributes.run_name"]))) == ["b", "a", "c"]
    by_name_desc = parse_run_order_by(["attributes.`Run name` DESC"])
    assert ids(sort_runs(runs, by_name_desc)) == ["a", "b", "c"]
    assert ids(sort_runs(runs, parse_run_order_by(["attributes.end_time"]))) == ["c", "a", "b"]
    by_end_desc = parse_run_order_by(["attributes.end_time DESC"])
    assert ids(sort_runs(runs, by_end_desc)) == ["a", "c", "b"]
    assert ids(sort_runs(runs, parse_run_order_by(["attributes.status"]))) == ["b", "c", "a"]


def test_sort_runs_tie_break_on_run_id() -> None:
    runs = [RunRecord(i, start_time=5, tags={"t": "same"}) for i in ("c", "a", "b")]
    assert ids(sort_runs(runs, parse_run_order_by(["tags.t DESC"]))) == ["a", "b", "c"]


# --------------------------------------------------------------------------- experiments


def experiment(eid: str, name: str, created: int | None, **tags: str) -> Experiment:
    return Experiment(eid, name, f"file:///a/{eid}", tags=dict(tags), creation_time=created)


EXPERIMENTS = [
    experiment("10", "Default", 100, owner="me"),
    experiment("2", "fraud-model", 300, owner="you"),
    experiment("3", "Fraud-v2", None),
    experiment("1", "churn", 300),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = 'churn'", ["1"]),
        ("name LIKE 'fraud%'", ["2"]),
        ("attributes.name ILIKE 'fraud%'", ["2", "3"]),
        ("experiment_id IN ('1', '10')", ["10", "1"]),
        ("experiment_id != '1'", ["10", "2", "3"]),
        ("creation_time >= 300", ["2", "1"]),
        ("creation_time != 300", ["10"]),
        ("tags.owner = 'me'", ["10"]),
        ("tags.owner IS NULL", ["3", "1"]),
        ("tags.owner != 'me'", ["2"]),
        ("tags.owner LIKE '%' AND creation_time > 100", ["2"]),
        (None, ["10", "2", "3", "1"]),
    ],
)
def test_experiment_matches(text: str | None, expected: list[str]) -> None:
    comparisons = parse_experiment_filter(text)
    found = [e.experiment_id for e in EXPERIMENTS if experiment_matches(comparisons, e)]
    assert found == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (None, ["1", "2", "10", "3"]),  # creation_time DESC, experiment_id ASC (numeric)
        (["name"], ["10", "3", "1", "2"]),
        (["name DESC"], ["2", "1", "3", "10"]),
        (["creation_time ASC"], ["10", "1", "2", "3"]),
        (["experiment_id DESC"], ["10", "3", "2", "1"]),
        (["tags.owner DESC"], ["2", "10", "1", "3"]),
    ],
)
def test_sort_experiments(order: list[str] | None, expected: list[str]) -> None:
    result = sort_experiments(EXPERIMENTS, parse_experiment_order_by(order))
    assert [e.experiment_id for e in result] == expected


# --------------------------------------------------------------------------- properties

TOKENS = [
    "metrics.a", "params.p", "tags.t", "attributes.start_time", "attributes.run_name", "name",
    "creation_time", "metrics.`x y`", 'tags."q"', "attr.created", "foo.bar", "metrics.",
    "=", "!=", "<", "<=", ">", ">=", "==", "LIKE", "ilike", "IN", "NOT", "IS", "NULL",
    "AND", "or", "(", ")", ",", "'s'", '"d"', "'", '"', "`", "1", "-2.5e3", "1e", ".",
    "ASC", "desc", "''", "%", "\\",
]  # fmt: skip

FUZZ = settings(max_examples=500, deadline=None)
ROUND_TRIP = settings(max_examples=300, deadline=None)


def _parse_all(text: str) -> None:
    for parse in (
        parse_run_filter,
        parse_experiment_filter,
        parse_run_order_by,
        parse_experiment_order_by,
    ):
        try:
            assert isinstance(parse(text), tuple)
        except SearchSyntaxError as error:
            assert error.position is None or 0 <= error.position <= len(text)


@FUZZ
@given(st.text())
def test_arbitrary_text_parses_or_raises_syntax_error(text: str) -> None:
    _parse_all(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=8), st.sampled_from([" ", ""]))
def test_token_soup_parses_or_raises_syntax_error(tokens: list[str], sep: str) -> None:
    _parse_all(sep.join(tokens))


def _quote(text: str, quote: str) -> str:
    if quote == "`":
        return "`" + text.replace("`", "``") + "`"
    return quote + text.replace("\\", "\\\\").replace(quote, quote * 2) + quote


def _case(draw: st.DrawFn, word: str) -> str:
    return draw(st.sampled_from([word, word.lower(), word.upper(), word.title()]))


_KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:"
_UNQUOTED_KEY = st.text(alphabet=_KEY_CHARS, min_size=1, max_size=16)
_PREFIX = {
    "metric": ["metrics", "metric"],
    "param": ["params", "param", "parameters", "parameter"],
    "tag": ["tags", "tag"],
    "attribute": ["attributes", "attribute", "attr", "run"],
}
# Any text a store accepts: no NUL characters, no unpaired surrogates.
_STRINGS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12
)


@st.composite
def comparisons(draw: st.DrawFn, experiments: bool) -> tuple[str, Comparison]:
    """One comparison rendered as filter text, with the Comparison it must parse to."""
    entity = draw(st.sampled_from(["tag", "attribute"] if experiments else list(_PREFIX)))
    prefix = _case(draw, draw(st.sampled_from(_PREFIX[entity]))) + "."
    if entity == "attribute":
        if experiments:
            names = ["name", "experiment_id", "creation_time", "last_update_time"]
        else:
            names = ["run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"]
            names += ["start_time", "end_time"]
        key = draw(st.sampled_from(names))
        if experiments and draw(st.booleans()):
            prefix = ""
        ident = prefix + _case(draw, key)
    else:
        key = draw(st.one_of(_UNQUOTED_KEY, _STRINGS.filter(bool)))
        if all(c in _KEY_CHARS for c in key) and draw(st.booleans()):
            ident = prefix + key
        else:
            ident = prefix + _quote(key, draw(st.sampled_from(["`", '"'])))
    numeric = entity == "metric" or (entity == "attribute" and key.endswith("_time"))
    string_ops = ["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]
    ops = ["=", "!=", "<", "<=", ">", ">="] if numeric else string_ops
    if entity != "attribute":
        ops += ["IS NULL", "IS NOT NULL"]
    op = draw(st.sampled_from(ops))
    value: object
    if op.startswith("IS"):
        value, rendered = None, ""
    elif op.endswith("IN"):
        value = tuple(draw(st.lists(_STRINGS, min_size=1, max_size=3)))
        quotes = [draw(st.sampled_from(["'", '"'])) for _ in value]
        rendered = "(" + ", ".join(_quote(v, q) for v, q in zip(value, quotes, strict=True)) + ")"
    elif entity == "metric":
        value = draw(
            st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**9), 10**9)
        )
        rendered, value = repr(value), float(value)
    elif numeric:
        value = draw(st.integers(-(2**62), 2**62))
        rendered = str(value)
    else:
        value = draw(_STRINGS)
        rendered = _quote(value, draw(st.sampled_from(["'", '"'])))
    text = f"{ident} {_case(draw, op) if op[0].isalpha() else op} {rendered}"
    return text, Comparison(entity, key, op, value)  # type: ignore[arg-type]


@ROUND_TRIP
@given(st.lists(comparisons(experiments=False), min_size=1, max_size=4), st.data())
def test_generated_run_filters_round_trip(
    parts: list[tuple[str, Comparison]], data: st.DataObject
) -> None:
    joiner = data.draw(st.sampled_from([" AND ", " and ", "\nAnd\t"]))
    text = joiner.join(t for t, _ in parts)
    assert parse_run_filter(text) == tuple(c for _, c in parts)


@ROUND_TRIP
@given(st.lists(comparisons(experiments=True), min_size=1, max_size=4))
def test_generated_experiment_filters_round_trip(parts: list[tuple[str, Comparison]]) -> None:
    text = " AND ".join(t for t, _ in parts)
    assert parse_experiment_filter(text) == tuple(c for _, c in parts)


@ROUND_TRIP
@given(st.lists(comparisons(experiments=False), min_size=1, max_size=4))
def test_format_filter_reads_back_as_the_same_comparisons(
    parts: list[tuple[str, Comparison]],
) -> None:
    wanted = tuple(c for _, c in parts)
    assert parse_run_filter(format_filter(wanted)) == wanted


def test_format_filter_quotes_what_would_break_a_formatted_filter() -> None:
    value = "it's \\' `x` AND tags.y = 'z'"
    wanted = (
        Comparison("tag", "prefect.cache_key", "IN", (value, "b")),
        Comparison("tag", "odd `key`", "IS NULL", None),
    )
    text = format_filter(wanted)
    assert text.startswith("tags.`prefect.cache_key` IN (")
    assert parse_run_filter(text) == wanted
