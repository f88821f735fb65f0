"""Compile parsed search filters and orderings (tracking.search) to SQL for the SQL store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, exists, false, func, literal, not_, select, true
from sqlalchemy.sql.elements import ColumnElement

from tracking.search import Comparison, OrderBy
from tracking.stores.sql.schema import latest_metrics, params, runs, tags

ATTRIBUTE_COLUMNS = {
    "run_id": runs.c.run_uuid,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
    "artifact_uri": runs.c.artifact_uri,
    "lifecycle_stage": runs.c.lifecycle_stage,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}


def _string_test(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return func.lower(column).like(func.lower(literal(value)))
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise ValueError(f"operator {op} is not supported on strings")


def _number_test(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    return {
        "=": column == value,
        "!=": column != value,
        "<": column < value,
        "<=": column <= value,
        ">": column > value,
        ">=": column >= value,
    }[op]


def condition(comparison: Comparison) -> ColumnElement[bool]:
    """A WHERE clause over `runs` for one comparison (same semantics as search.run_matches)."""
    entity, key, op, value = (
        comparison.entity,
        comparison.key,
        comparison.op,
        comparison.value,
    )
    if entity == "attribute":
        column = ATTRIBUTE_COLUMNS[key]
        if key in ("start_time", "end_time"):
            return and_(column.is_not(None), _number_test(column, op, value))
        return _string_test(column, op, value)
    if entity == "metric":
        lm = latest_metrics
        present = and_(lm.c.run_uuid == runs.c.run_uuid, lm.c.key == key)
        if op in ("IS NULL", "IS NOT NULL"):
            found = exists(select(lm.c.run_uuid).where(present))
            return not_(found) if op == "IS NULL" else found
        if value != value:  # comparing with NaN: only != holds
            return exists(select(lm.c.run_uuid).where(present)) if op == "!=" else false()
        test = _number_test(lm.c.value, op, value)
        nan_case = true() if op == "!=" else false()
        return exists(
            select(lm.c.run_uuid).where(present, case((lm.c.is_nan, nan_case), else_=test))
        )
    table = params if entity == "param" else tags
    present = and_(table.c.run_uuid == runs.c.run_uuid, table.c.key == key)
    if op in ("IS NULL", "IS NOT NULL"):
        found = exists(select(table.c.run_uuid).where(present))
        return not_(found) if op == "IS NULL" else found
    return exists(select(table.c.run_uuid).where(present, _string_test(table.c.value, op, value)))


_KEY_TABLES = {"metric": latest_metrics, "param": params, "tag": tags}


def search_source(
    comparisons: tuple[Comparison, ...], ordering: tuple[OrderBy, ...]
) -> tuple[Any, list[ColumnElement[bool]], list[Any]]:
    """FROM, WHERE and ORDER BY of a run search, each metric/param/tag key joined ONCE.

    Same semantics as `condition` and `order_terms`, which test every comparison with its own
    EXISTS and evaluate every ordered key with scalar subqueries (three per metric key). Here a
    key the filter needs is an inner join (every comparison but IS NULL needs the value to exist),
    any other key a left outer join; (run_uuid, key) is the primary key, so no row is duplicated.
    """
    needed: dict[tuple[str, str], bool] = {}  # (entity, key) -> must exist (inner join)
    for c in comparisons:
        if c.entity != "attribute":
            pair = (c.entity, c.key)
            needed[pair] = needed.get(pair, False) or c.op != "IS NULL"
    for o in ordering:
        if o.entity != "attribute":
            needed.setdefault((o.entity, o.key), False)
    source: Any = runs
    aliases: dict[tuple[str, str], Any] = {}
    for n, ((entity, key), inner) in enumerate(needed.items()):
        alias = aliases[(entity, key)] = _KEY_TABLES[entity].alias(f"k{n}")
        on = and_(alias.c.run_uuid == runs.c.run_uuid, alias.c.key == key)
        source = source.join(alias, on) if inner else source.outerjoin(alias, on)

    where: list[ColumnElement[bool]] = []
    for c in comparisons:
        if c.entity == "attribute":
            where.append(condition(c))
            continue
        alias = aliases[(c.entity, c.key)]
        if c.op in ("IS NULL", "IS NOT NULL"):
            where.append(alias.c.run_uuid.is_(None) if c.op == "IS NULL" else true())
        elif c.entity != "metric":
            where.append(_string_test(alias.c.value, c.op, c.value))
        elif c.value != c.value:  # comparing with NaN: only != holds
            where.append(true() if c.op == "!=" else false())
        else:
            nan_case = true() if c.op == "!=" else false()
            test = _number_test(alias.c.value, c.op, c.value)
            where.append(case((alias.c.is_nan, nan_case), else_=test))

    terms: list[Any] = []
    for order in ordering:
        if order.entity == "attribute":
            value: Any = ATTRIBUTE_COLUMNS[order.key]
            missing: Any = value.is_(None)
        else:
            alias = aliases[(order.entity, order.key)]
            value = alias.c.value
            missing = value.is_(None)
            if order.entity == "metric":
                missing = case((value.is_(None), 1), (alias.c.is_nan == true(), 1), else_=0)
        terms += [missing, value.asc() if order.ascending else value.desc()]
    terms += [runs.c.start_time.is_(None), runs.c.start_time.desc(), runs.c.run_uuid.asc()]
    return source, where, terms


def order_terms(ordering: tuple[OrderBy, ...]) -> list[Any]:
    """ORDER BY terms: each key with missing (and NaN) values last, then MLflow's tie-breaks."""
    terms: list[Any] = []
    for order in ordering:
        if order.entity == "attribute":
            value: Any = ATTRIBUTE_COLUMNS[order.key]
            missing: Any = value.is_(None)
        elif order.entity == "metric":
            lm = latest_metrics
            where = and_(lm.c.run_uuid == runs.c.run_uuid, lm.c.key == order.key)
            value = select(lm.c.value).where(where).scalar_subquery()
            nan = select(lm.c.is_nan).where(where).scalar_subquery()
            missing = case((value.is_(None), 1), (nan == true(), 1), else_=0)
        else:
            table = params if order.entity == "param" else tags
            where = and_(table.c.run_uuid == runs.c.run_uuid, table.c.key == order.key)
            value = select(table.c.value).where(where).scalar_subquery()
            missing = value.is_(None)
        terms += [missing, value.asc() if order.ascending else value.desc()]
    return [*terms, runs.c.start_time.is_(None), runs.c.start_time.desc(), runs.c.run_uuid.asc()]
