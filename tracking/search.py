"""Filter and order_by grammar for search_runs / search_experiments.

Strings are parsed once (cached) into plain data (`Comparison`, `OrderBy`) that the file store
evaluates in Python and a SQL store can compile to SQL. The grammar is MLflow's:

    filter     := comparison ("AND" comparison)*            -- no OR, no parentheses
    comparison := ident op value | ident ["NOT"] "IN" "(" string ("," string)* ")"
                | ident "IS" ["NOT"] "NULL"
    ident      := prefix "." key                            -- e.g. metrics.acc, tags.`a b`
    order_by   := ident ["ASC" | "DESC"]

Extensions: IN / NOT IN for params, tags and every string attribute; IS [NOT] NULL for metrics;
attribute names, prefixes and keywords are case-insensitive. Keys may be back-quoted or
double-quoted; strings are single- or double-quoted, with the quote doubled (or backslash-escaped)
inside. LIKE is case-sensitive with SQL wildcards `%` and `_` (no escape character); ILIKE ignores
case. A comparison against a missing value is false (`!=` included); only IS NULL matches it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from tracking import validation
from tracking.entities import Experiment, RunStatus
from tracking.errors import InvalidParameterError

METRIC, PARAM, TAG, ATTRIBUTE = "metric", "param", "tag", "attribute"
#: Limits that keep a search within what SQLite and PostgreSQL can run (a SQL store joins one
#: table per metric, param or tag key; SQLite allows 64 tables in a join).
MAX_FILTER_COMPARISONS = 50
MAX_IN_VALUES = 10_000
MAX_ORDER_BY_ENTRIES = 10

_PREFIXES = {
    **dict.fromkeys(("metrics", "metric"), METRIC),
    **dict.fromkeys(("params", "param", "parameters", "parameter"), PARAM),
    **dict.fromkeys(("tags", "tag"), TAG),
    **dict.fromkeys(("attributes", "attribute", "attr", "run"), ATTRIBUTE),
}
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class SearchSyntaxError(InvalidParameterError):
    """A filter or order_by string does not follow the search grammar."""

    def __init__(self, message: str, *, position: int | None = None, text: str | None = None):
        super().__init__(message)
        self.position = position
        self.text = text


@dataclass(frozen=True)
class Comparison:
    """One `entity.key op value` clause.

    `value` is a float for metrics, an int for time attributes, a str for params, tags and string
    attributes, a tuple of str for IN / NOT IN, and None for IS [NOT] NULL.
    """

    entity: str
    key: str
    op: str
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True)
class OrderBy:
    """One order_by entry; None and NaN values sort last whatever the direction."""

    entity: str
    key: str
    ascending: bool


@dataclass(frozen=True)
class QuerySchema:
    """What one kind of search accepts: entities, attributes (string / numeric / orderable)."""

    what: str
    entities: tuple[str, ...]
    string_attrs: tuple[str, ...]
    numeric_attrs: tuple[str, ...]
    orderable: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    bare_attributes: bool


_SCHEMAS = {
    "run": QuerySchema(
        what="run",
        entities=(METRIC, PARAM, TAG, ATTRIBUTE),
        string_attrs=("run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"),
        numeric_attrs=("start_time", "end_time"),
        orderable=(
            "start_time",
            "end_time",
            "run_name",
            "run_id",
            "status",
            "user_id",
            "artifact_uri",
        ),
        aliases=(("created", "start_time"), ("run name", "run_name"), ("run_uuid", "run_id")),
        bare_attributes=False,
    ),
    "experiment": QuerySchema(
        what="experiment",
        entities=(TAG, ATTRIBUTE),
        string_attrs=("name", "experiment_id"),
        numeric_attrs=("creation_time", "last_update_time"),
        orderable=("name", "experiment_id", "creation_time", "last_update_time"),
        aliases=(),
        bare_attributes=True,
    ),
    "logged_model": QuerySchema(
        what="logged model",
        entities=(METRIC, PARAM, TAG, ATTRIBUTE),
        string_attrs=("name", "model_id", "model_type", "status", "source_run_id"),
        numeric_attrs=("creation_timestamp", "last_updated_timestamp"),
        orderable=(
            "name",
            "model_id",
            "model_type",
            "status",
            "source_run_id",
            "creation_timestamp",
            "last_updated_timestamp",
        ),
        aliases=(
            ("creation_time", "creation_timestamp"),
            ("last_updated_time", "last_updated_timestamp"),
        ),
        bare_attributes=True,
    ),
}


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "ident", "string", "number", "op", "(", ")", ",", "end"
    pos: int
    text: str  # source text
    value: str = ""  # decoded string, number text, operator, or identifier key
    prefix: str | None = None  # identifiers only: the part before the first "."
    quoted: bool = False


_WORD = re.compile(r"[^\W\d][\w.\-/:]*")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRAILING = re.compile(r"[\w.\-+]*")
_OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
_NO_PARENS = "parentheses are not supported; only AND is supported"
_RUN_PREFIXES = "metrics., params., tags. or attributes."


class QueryText:
    """The text being parsed, and how to report an error in it."""

    def __init__(self, text: str, label: str) -> None:
        self.text = text
        self.label = label

    def error(self, pos: int, message: str) -> SearchSyntaxError:
        return SearchSyntaxError(
            f"Invalid {self.label} {validation.shown(self.text, 300)} at position {pos}: {message}",
            position=pos,
            text=self.text,
        )

    def describe(self, tok: _Token) -> str:
        if tok.kind == "end":
            return f"end of {self.label}"
        return repr(tok.text if len(tok.text) <= 40 else tok.text[:37] + "...")


def _scan_quoted(src: QueryText, start: int) -> tuple[str, int]:
    """Decode the quoted text at `start`; return it and the index after the closing quote."""
    text, quote = src.text, src.text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c == quote and nxt == quote:
            out.append(quote)
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        elif c == "\\" and quote != "`" and nxt in (quote, "\\"):
            out.append(nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    what = "back-quoted key" if quote == "`" else "string"
    raise src.error(start, f"unterminated {what} starting with {quote}")


def _tokenize(src: QueryText) -> list[_Token]:
    text, i, tokens = src.text, 0, []
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            tokens.append(_Token(c, i, c))
            i += 1
        elif op := next((o for o in _OPERATORS if text.startswith(o, i)), None):
            tokens.append(_Token("op", i, op, op))
            i += len(op)
        elif m := _WORD.match(text, i):
            word, end = m.group(), m.end()
            prefix, dot, key = word.partition(".")
            if dot and not key and end < len(text) and text[end] in '`"':
                key, end = _scan_quoted(src, end)
                tokens.append(_Token("ident", i, text[i:end], key, prefix, quoted=True))
            else:
                tokens.append(
                    _Token("ident", i, word, key if dot else word, prefix if dot else None)
                )
            i = end
        elif c == "`":
            key, end = _scan_quoted(src, i)
            tokens.append(_Token("ident", i, text[i:end], key, quoted=True))
            i = end
        elif c in "'\"":
            value, end = _scan_quoted(src, i)
            tokens.append(_Token("string", i, text[i:end], value))
            i = end
        elif m := _NUMBER.match(text, i):
            end = _TRAILING.match(text, m.end()).end()  # type: ignore[union-attr]  # `*`: always matches
            if end != m.end():
                raise src.error(i, f"invalid number {text[i:end]!r}")
            tokens.append(_Token("number", i, m.group(), m.group()))
            i = end
        else:
            raise src.error(i, f"unexpected character {c!r}")
    tokens.append(_Token("end", len(text), ""))
    return tokens


def _is_keyword(tok: _Token, *words: str) -> bool:
    return (
        tok.kind == "ident" and tok.prefix is None and not tok.quoted and tok.value.upper() in words
    )


# --------------------------------------------------------------------------- parser


class Parser:
    """A recursive-descent parser of one filter or order_by text against a QuerySchema."""

    def __init__(self, src: QueryText, schema: QuerySchema) -> None:
        self.src, self.schema = src, schema
        self.tokens = _tokenize(src)
        self.i = 0

    def next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += tok.kind != "end"
        return tok

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def fail(self, tok: _Token, message: str) -> SearchSyntaxError:
        return self.src.error(tok.pos, f"{message}, found {self.src.describe(tok)}")

    def identifier(self, attributes: tuple[str, ...]) -> tuple[str, str]:
        """Read `prefix.key` (or a bare attribute where allowed); return (entity, key)."""
        tok, schema = self.next(), self.schema
        if tok.kind == "(":
            raise self.src.error(tok.pos, _NO_PARENS)
        if tok.kind != "ident" or _is_keyword(tok, "AND", "OR"):
            raise self.fail(tok, "expected an identifier such as metrics.<key> or tags.<key>")
        if tok.prefix is None:
            if not schema.bare_attributes:
                raise self.fail(tok, f"expected an entity prefix ({_RUN_PREFIXES}) before the key")
            return ATTRIBUTE, self.attribute(tok, attributes)
        entity = _PREFIXES.get(tok.prefix.lower())
        if entity is None:
            allowed = ", ".join(f"{p}." for p in _PREFIXES if _PREFIXES[p] in schema.entities)
            message = f"unknown entity prefix {tok.prefix + '.'!r}; expected one of {allowed}"
            raise self.src.error(tok.pos, message)
        if entity not in schema.entities:
            raise self.src.error(tok.pos, f"{entity}s cannot be used to search {schema.what}s")
        if not tok.value:
            raise self.src.error(tok.pos, f"expected a key after {tok.prefix + '.'!r}")
        if entity == ATTRIBUTE:
            return entity, self.attribute(tok, attributes)
        return entity, tok.value

    def attribute(self, tok: _Token, allowed: tuple[str, ...]) -> str:
        key = tok.value.lower()
        key = dict(self.schema.aliases).get(key, key)
        if key not in allowed:
            message = f"unknown {self.schema.what} attribute {tok.value!r}"
            raise self.src.error(tok.pos, f"{message}; allowed: {', '.join(allowed)}")
        return key

    def operator(self, after: _Token) -> str:
        tok = self.next()
        if tok.kind == "op":
            return tok.value
        if _is_keyword(tok, "LIKE", "ILIKE", "IN"):
            return tok.value.upper()
        if _is_keyword(tok, "NOT"):
            if not _is_keyword(nxt := self.next(), "IN"):
                raise self.fail(nxt, "expected IN after NOT")
            return "NOT IN"
        if _is_keyword(tok, "IS"):
            negated = _is_keyword(self.peek(), "NOT")
            self.i += negated
            if not _is_keyword(nxt := self.next(), "NULL"):
                raise self.fail(nxt, "expected NULL after IS" + " NOT" * negated)
            return "IS NOT NULL" if negated else "IS NULL"
        raise self.fail(tok, f"expected a comparison operator after {after.text!r}")

    def comparison(self) -> Comparison:
        ident = self.peek()
        schema = self.schema
        entity, key = self.identifier(schema.string_attrs + schema.numeric_attrs)
        op_tok = self.peek()
        op = self.operator(ident)
        numeric = entity == METRIC or (entity == ATTRIBUTE and key in schema.numeric_attrs)
        allowed: tuple[str, ...] = _NUMERIC_OPS if numeric else _STRING_OPS
        allowed += _NULL_OPS if entity != ATTRIBUTE else ()
        if op not in allowed:
            what = f"{entity}s" if entity != ATTRIBUTE else f"attribute {key!r}"
            message = f"operator {op!r} is not supported for {what} (allowed: {', '.join(allowed)})"
            if entity == METRIC:
                message += "; expected a numeric value for metric comparison"
            raise self.src.error(op_tok.pos, message)
        if op in _NULL_OPS:
            return Comparison(entity, key, op, None)
        if op in ("IN", "NOT IN"):
            return Comparison(entity, key, op, self.string_list(op))
        tok = self.next()
        if tok.kind == "end":
            raise self.src.error(tok.pos, f"expected a value after {op!r}")
        if entity == METRIC:
            if tok.kind != "number":
                raise self.fail(tok, "expected a numeric value for metric comparison")
            return Comparison(entity, key, op, float(tok.value))
        if numeric:
            return Comparison(entity, key, op, self.integer(tok, key))
        if tok.kind != "string":
            raise self.fail(tok, f"expected a quoted string after {op!r}")
        return Comparison(entity, key, op, tok.value)

    def integer(self, tok: _Token, key: str) -> int:
        message = f"expected an integer (milliseconds since the epoch) for {key!r}"
        if tok.kind != "number":
            raise self.fail(tok, message)
        try:
            number = Decimal(tok.value)
        except InvalidOperation:  # pragma: no cover - the tokenizer only yields valid numbers
            raise self.fail(tok, message) from None
        if number != number.to_integral_value():
            raise self.fail(tok, message)
        if not validation.INT64_MIN <= number <= validation.INT64_MAX:
            raise self.fail(tok, f"{message} within the 64-bit range")
        return int(number)

    def string_list(self, op: str) -> tuple[str, ...]:
        tok = self.next()
        if tok.kind != "(":
            raise self.fail(tok, f"expected '(' after {op}")
        values: list[str] = []
        while True:
            tok = self.next()
            if tok.kind == ")" and not values:
                raise self.src.error(tok.pos, f"empty {op} list; expected a quoted string")
            if tok.kind != "string":
                raise self.fail(tok, f"expected a quoted string in the {op} list")
            values.append(tok.value)
            if len(values) > MAX_IN_VALUES:
                raise self.src.error(
                    tok.pos, f"an {op} list may hold at most {MAX_IN_VALUES} values"
                )
            tok = self.next()
            if tok.kind == ")":
                return tuple(values)
            if tok.kind != ",":
                raise self.fail(tok, f"expected ',' or ')' in the {op} list")

    def filter(self) -> tuple[Comparison, ...]:
        comparisons = [self.comparison()]
        while (tok := self.next()).kind != "end":
            if _is_keyword(tok, "OR"):
                raise self.src.error(tok.pos, "only AND is supported, found 'OR'")
            if tok.kind in "()":
                raise self.src.error(tok.pos, _NO_PARENS)
            if not _is_keyword(tok, "AND"):
                raise self.fail(tok, "expected AND or the end of the filter")
            if self.peek().kind == "end":
                raise self.fail(self.peek(), "expected a comparison after AND")
            comparisons.append(self.comparison())
            if len(comparisons) > MAX_FILTER_COMPARISONS:
                raise self.src.error(
                    tok.pos,
                    f"a filter may have at most {MAX_FILTER_COMPARISONS} comparisons joined by AND",
                )
        return tuple(comparisons)

    def order_by(self) -> OrderBy:
        entity, key = self.identifier(self.schema.orderable)
        tok = self.next()
        ascending = True
        if _is_keyword(tok, "ASC", "DESC"):
            ascending = tok.value.upper() == "ASC"
            tok = self.next()
        if tok.kind != "end":
            raise self.fail(tok, "expected ASC, DESC or the end of the entry")
        return OrderBy(entity, key, ascending)


@lru_cache(maxsize=1024)
def _parse_filter(text: str, schema: str) -> tuple[Comparison, ...]:
    if not text.strip():
        return ()
    return Parser(QueryText(text, "filter"), _SCHEMAS[schema]).filter()


@lru_cache(maxsize=1024)
def _parse_order_entry(text: str, schema: str) -> OrderBy:
    return Parser(QueryText(text, "order_by entry"), _SCHEMAS[schema]).order_by()


def checked_text(what: str, text: str) -> str:
    """`text` unless it holds a NUL character or an unpaired surrogate (no store takes them)."""
    try:
        return validation.text(what, text)
    except InvalidParameterError as e:
        raise SearchSyntaxError(e.message) from None


def _filter(filter_string: str | None, schema: str) -> tuple[Comparison, ...]:
    if filter_string is None:
        return ()
    if not isinstance(filter_string, str):
        raise SearchSyntaxError(f"Invalid filter {filter_string!r}: expected a string")
    return _parse_filter(checked_text("Filter", filter_string), schema)


def _order_by(order_by: Sequence[str] | None, schema: str) -> tuple[OrderBy, ...]:
    if order_by is None:
        return ()
    entries = [order_by] if isinstance(order_by, str) else order_by
    if len(entries) > MAX_ORDER_BY_ENTRIES:
        raise SearchSyntaxError(
            f"order_by has {len(entries)} entries; at most {MAX_ORDER_BY_ENTRIES} are allowed"
        )
    for entry in entries:
        if not isinstance(entry, str):
            raise SearchSyntaxError(f"Invalid order_by entry {entry!r}: expected a string")
        checked_text("order_by entry", entry)
    return tuple(_parse_order_entry(entry, schema) for entry in entries)


def parse_run_filter(filter_string: str | None) -> tuple[Comparison, ...]:
    """Parse a search_runs filter; None or blank gives ()."""
    return _filter(filter_string, "run")


def parse_experiment_filter(filter_string: str | None) -> tuple[Comparison, ...]:
    """Parse a search_experiments filter; bare `name`, `creation_time`, ... are accepted."""
    return _filter(filter_string, "experiment")


def parse_logged_model_filter(filter_string: str | None) -> tuple[Comparison, ...]:
    """Parse a search_logged_models filter (bare `name`, `creation_timestamp`, ... accepted)."""
    return _filter(filter_string, "logged_model")


def parse_logged_model_order_field(field_name: str) -> OrderBy:
    """The field of one search_logged_models order_by entry: an attribute or metrics.<key>."""
    checked_text("order_by field_name", field_name)
    return _parse_order_entry(field_name, "logged_model")


def parse_run_order_by(order_by: Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse search_runs order_by entries (a single string counts as one entry)."""
    return _order_by(order_by, "run")


def parse_experiment_order_by(order_by: Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse search_experiments order_by entries (a single string counts as one entry)."""
    return _order_by(order_by, "experiment")


_ENTITY_PREFIX = {METRIC: "metrics", PARAM: "params", TAG: "tags", ATTRIBUTE: "attributes"}


def quote_key(key: str) -> str:
    """A key as the search grammar reads it: back-quoted, inner back-quotes doubled."""
    return "`" + key.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    """A string literal the search grammar reads back unchanged (quotes and backslashes
    escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _format_value(value: float | str | tuple[str, ...] | None) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(quote_string(v) for v in value) + ")"
    if isinstance(value, str):
        return quote_string(value)
    return repr(value)


def format_filter(comparisons: Sequence[Comparison]) -> str:
    """The filter text of `comparisons` (AND-ed), which the parsers read back unchanged: keys
    back-quoted, strings quoted and escaped. Build filters holding values from elsewhere
    with this, never by formatting the values into text."""
    clauses = []
    for c in comparisons:
        clause = f"{_ENTITY_PREFIX[c.entity]}.{quote_key(c.key)} {c.op}"
        clauses.append(clause if c.value is None else f"{clause} {_format_value(c.value)}")
    return " AND ".join(clauses)


# --------------------------------------------------------------------------- evaluation


class RunView(Protocol):
    """Lazy access to one run, so a store reads only what a filter or ordering needs."""

    def attribute(self, key: str) -> str | int | None: ...

    def metric(self, key: str) -> float | None:
        """The run's latest value of that metric, or None."""
        ...

    def param(self, key: str) -> str | None: ...

    def tag(self, key: str) -> str | None: ...


V = TypeVar("V", bound=RunView)

_EXPERIMENT_TIE_BREAK = (
    OrderBy(ATTRIBUTE, "creation_time", False),
    OrderBy(ATTRIBUTE, "experiment_id", True),
)


@lru_cache(maxsize=1024)
def _like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def run_value(view: RunView, entity: str, key: str) -> Any:
    """The value a filter or ordering on `entity`.`key` sees (status as its name)."""
    if entity == METRIC:
        return view.metric(key)
    if entity == PARAM:
        return view.param(key)
    if entity == TAG:
        return view.tag(key)
    value = view.attribute(key)
    if key == "status" and isinstance(value, int):
        try:
            return RunStatus(value).name
        except ValueError:
            return str(value)
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _compare(c: Comparison, actual: Any) -> bool:
    if c.op == "IS NULL":
        return actual is None
    if c.op == "IS NOT NULL":
        return actual is not None
    if _missing(actual):
        return actual is not None and c.op == "!="  # NaN != x; a missing value matches nothing
    if isinstance(c.value, tuple):  # IN / NOT IN
        return (str(actual) in c.value) == (c.op == "IN")
    if isinstance(c.value, str):
        actual = str(actual)
        if c.op in ("LIKE", "ILIKE"):
            return _like_regex(c.value, c.op == "ILIKE").fullmatch(actual) is not None
    elif isinstance(actual, str):
        try:
            actual = float(actual)
        except ValueError:
            return False
    return _COMPARE[c.op](actual, c.value)


def run_matches(comparisons: tuple[Comparison, ...], run: RunView) -> bool:
    """True if `run` satisfies every comparison (an empty filter matches everything)."""
    return all(_compare(c, run_value(run, c.entity, c.key)) for c in comparisons)


class _ExperimentView:
    """An Experiment seen through the RunView accessors."""

    __slots__ = ("experiment",)

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment

    def attribute(self, key: str) -> str | int | None:
        return getattr(self.experiment, key, None)

    def metric(self, key: str) -> float | None:
        return None

    def param(self, key: str) -> str | None:
        return None

    def tag(self, key: str) -> str | None:
        return self.experiment.tags.get(key)


def experiment_matches(comparisons: tuple[Comparison, ...], experiment: Experiment) -> bool:
    """True if `experiment` satisfies every comparison."""
    return run_matches(comparisons, _ExperimentView(experiment))


def _sort_key(value: Any, key: str) -> tuple[int, Any]:
    """Numbers before strings, so one odd value cannot break the sort; numeric ids as numbers."""
    if isinstance(value, (int, float)):
        return 0, value
    value = str(value)
    if key == "experiment_id" and value.isdigit():
        return 0, int(value)
    return 1, value


T = TypeVar("T")


def sort_by_values(items: Sequence[T], values: Iterable[Any], order: OrderBy) -> list[T]:
    """`items` stably sorted by their `values` (one each) as `order` sorts: numbers before
    strings, missing values (None, NaN) last whatever the direction."""
    present: list[tuple[tuple[int, Any], T]] = []
    missing: list[T] = []
    for item, value in zip(items, values, strict=True):
        if _missing(value):
            missing.append(item)
        else:
            present.append((_sort_key(value, order.key), item))
    present.sort(key=lambda pair: pair[0], reverse=not order.ascending)
    return [item for _, item in present] + missing


def sort_items(items: list[T], order: Sequence[OrderBy], view: Callable[[T], RunView]) -> list[T]:
    """`items` stably sorted by `order`, each seen through `view`; None and NaN last."""
    result = list(items)
    for ob in reversed(order):  # stable sorts from the least significant key up
        values = [run_value(view(item), ob.entity, ob.key) for item in result]
        result = sort_by_values(result, values, ob)
    return result


def run_tie_break(start_time: object, run_id: object) -> tuple[bool, float, str]:
    """The sort key of search_runs' order among runs its order_by leaves tied: newest first
    (runs without a start time last), then by run id."""
    start = start_time if isinstance(start_time, int | float) else None
    return (start is None, -(start or 0), str(run_id))


def sort_runs(runs: list[V], order_by: tuple[OrderBy, ...]) -> list[V]:
    """Sort by `order_by`, then start_time DESC, run_id ASC; None and NaN always sort last."""
    tied = sorted(
        runs, key=lambda run: run_tie_break(run.attribute("start_time"), run.attribute("run_id"))
    )
    return sort_items(tied, order_by, lambda run: run)


def sort_experiments(
    experiments: list[Experiment], order_by: tuple[OrderBy, ...]
) -> list[Experiment]:
    """Sort by `order_by`, then creation_time DESC, experiment_id ASC; None sorts last."""
    return sort_items(experiments, (*order_by, *_EXPERIMENT_TIE_BREAK), _ExperimentView)
