"""search_registered_models / search_model_versions: MLflow's registry filter grammar.

The grammar and evaluation are tracking.search's (AND of comparisons, LIKE/ILIKE, IN), over
registry attributes:

    registered models: name, creation_timestamp, last_updated_timestamp, tags.<key>
    model versions:    name, run_id, source_path, version_number, creation_timestamp,
                       last_updated_timestamp, tags.<key>

Filters look like ``name LIKE 'iris%'``, ``name = 'iris' AND tags.team = 'a'`` or
``run_id IN ('a1...', 'b2...')``; order_by entries like ``last_updated_timestamp DESC``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from tracking import search as _search
from tracking.errors import InvalidParameterError
from tracking.registry.entities import ModelVersion, RegisteredModel
from tracking.search import ATTRIBUTE, TAG, Comparison, OrderBy

SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT = 100
SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD = 1000
SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT = 10_000
SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD = 200_000

_SCHEMAS = {
    "registered model": _search.QuerySchema(
        what="registered model",
        entities=(TAG, ATTRIBUTE),
        string_attrs=("name",),
        numeric_attrs=("creation_timestamp", "last_updated_timestamp"),
        orderable=("name", "creation_timestamp", "last_updated_timestamp"),
        aliases=(("timestamp", "creation_timestamp"),),
        bare_attributes=True,
    ),
    "model version": _search.QuerySchema(
        what="model version",
        entities=(TAG, ATTRIBUTE),
        string_attrs=("name", "run_id", "source_path"),
        numeric_attrs=("version_number", "creation_timestamp", "last_updated_timestamp"),
        orderable=("name", "version_number", "creation_timestamp", "last_updated_timestamp"),
        aliases=(
            ("version", "version_number"),
            ("source", "source_path"),
            ("timestamp", "creation_timestamp"),
        ),
        bare_attributes=True,
    ),
}
_RM_TIE_BREAK = (OrderBy(ATTRIBUTE, "name", True),)
#: MLflow's order when none is given; name ASC, version DESC always break ties.
_MV_DEFAULT_ORDER = (OrderBy(ATTRIBUTE, "last_updated_timestamp", False),)
_MV_TIE_BREAK = (OrderBy(ATTRIBUTE, "name", True), OrderBy(ATTRIBUTE, "version_number", False))


@lru_cache(maxsize=512)
def _parse_filter(text: str, what: str) -> tuple[Comparison, ...]:
    if not text.strip():
        return ()
    return _search.Parser(_search.QueryText(text, "filter"), _SCHEMAS[what]).filter()


@lru_cache(maxsize=512)
def _parse_order(text: str, what: str) -> OrderBy:
    return _search.Parser(_search.QueryText(text, "order_by entry"), _SCHEMAS[what]).order_by()


def parse_filter(filter_string: str | None, what: str) -> tuple[Comparison, ...]:
    if filter_string is None:
        return ()
    if not isinstance(filter_string, str):
        raise InvalidParameterError(f"Invalid filter {filter_string!r}: expected a string")
    return _parse_filter(_search.checked_text("Filter", filter_string), what)


def parse_order_by(order_by: Sequence[str] | str | None, what: str) -> tuple[OrderBy, ...]:
    if not order_by:
        return ()
    entries = [order_by] if isinstance(order_by, str) else list(order_by)
    if len(entries) > _search.MAX_ORDER_BY_ENTRIES:
        raise InvalidParameterError(
            f"order_by has {len(entries)} entries; at most {_search.MAX_ORDER_BY_ENTRIES} "
            "are allowed"
        )
    for entry in entries:
        if not isinstance(entry, str):
            raise InvalidParameterError(f"Invalid order_by entry {entry!r}: expected a string")
        _search.checked_text("order_by entry", entry)
    return tuple(_parse_order(entry, what) for entry in entries)


def check_max_results(max_results: object, threshold: int) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidParameterError(f"max_results must be an integer, got {max_results!r}")
    if not 0 < max_results <= threshold:
        raise InvalidParameterError(f"max_results must be in 1..{threshold}, got {max_results}")
    return max_results


def equality_value(comparisons: tuple[Comparison, ...], key: str) -> str | None:
    """The value of an `<key> = '...'` attribute comparison, which a store may look up
    directly before the full filter runs."""
    for c in comparisons:
        if c.entity == ATTRIBUTE and c.key == key and c.op == "=" and isinstance(c.value, str):
            return c.value
    return None


class _View:
    """An entity seen through tracking.search's RunView accessors."""

    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item

    def metric(self, key: str) -> float | None:
        return None

    def param(self, key: str) -> str | None:
        return None

    def tag(self, key: str) -> str | None:
        return self.item.tags.get(key)


class _ModelView(_View):
    def attribute(self, key: str) -> str | int | None:
        return getattr(self.item, key, None)


class _VersionView(_View):
    def attribute(self, key: str) -> str | int | None:
        mv: ModelVersion = self.item
        if key == "version_number":
            return mv.version
        if key == "source_path":
            return mv.source
        return getattr(mv, key, None)


PROMPT_TAG = "mlflow.prompt.is_prompt"


def _matches(comparisons: tuple[Comparison, ...], view: _ModelView | _VersionView) -> bool:
    """search.run_matches, plus MLflow's rule that an item without the prompt tag is not a
    prompt (MLflow's client adds `tag.mlflow.prompt.is_prompt != 'true'` to every search)."""
    for c in comparisons:
        if c.entity == "tag" and c.key == PROMPT_TAG and view.tag(PROMPT_TAG) is None:
            wanted = str(c.value).lower()
            if not ((c.op == "=" and wanted == "false") or (c.op == "!=" and wanted == "true")):
                return False
        elif not _search.run_matches((c,), view):
            return False
    return True


def filter_models(
    models: list[RegisteredModel], comparisons: tuple[Comparison, ...], order: tuple[OrderBy, ...]
) -> list[RegisteredModel]:
    found = [m for m in models if _matches(comparisons, _ModelView(m))]
    return _search.sort_items(found, (*order, *_RM_TIE_BREAK), _ModelView)


def filter_versions(
    versions: list[ModelVersion], comparisons: tuple[Comparison, ...], order: tuple[OrderBy, ...]
) -> list[ModelVersion]:
    found = [v for v in versions if _matches(comparisons, _VersionView(v))]
    return _search.sort_items(found, (*(order or _MV_DEFAULT_ORDER), *_MV_TIE_BREAK), _VersionView)
