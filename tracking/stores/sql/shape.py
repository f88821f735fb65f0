"""What a database's tables hold: which columns exist and how long their strings may be.

Trackflow writes to every MLflow schema from 2.9 to 3.17.2, and they differ in details: MLflow 3
added the `workspace` columns and the LoggedModel tables, and widened tag values over time
(run tags 5000 -> 8000 characters, experiment and model-version tags to unbounded text). The
store reads the shape once when it opens a database (one query) and checks values against it,
so a value the database would refuse gets an error naming it rather than the driver's message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, MetaData, String, text

from tracking.errors import InvalidParameterError
from tracking.validation import shown

_VARCHAR = re.compile(r"(?:VARCHAR|CHARACTER VARYING|CHAR)\s*\((\d+)\)", re.IGNORECASE)
_SQLITE_COLUMNS = text(
    "SELECT m.name, p.name, p.type FROM sqlite_master AS m "
    "JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'"
)
_POSTGRES_COLUMNS = text(
    "SELECT table_name, column_name, character_maximum_length FROM information_schema.columns "
    "WHERE table_schema = current_schema()"
)
_SQLITE_INDEXES = text("SELECT name FROM sqlite_master WHERE type = 'index'")
_POSTGRES_INDEXES = text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")


@dataclass(frozen=True)
class SchemaShape:
    """Columns of a database: (table, column) -> the longest string it holds (None: any),
    and the names of its indexes."""

    columns: Mapping[tuple[str, str], int | None]
    indexes: frozenset[str] = frozenset()

    @classmethod
    def of_metadata(cls, metadata: MetaData) -> SchemaShape:
        """The shape `metadata` creates (a database at Trackflow's schema head)."""
        return cls(
            {
                (table.name, column.name): (
                    column.type.length if isinstance(column.type, String) else None
                )
                for table in metadata.tables.values()
                for column in table.columns
            }
        )

    @classmethod
    def read(cls, conn: Connection) -> SchemaShape:
        """The shape of the database behind `conn`, in one query."""
        found: dict[tuple[str, str], int | None] = {}
        if conn.dialect.name == "sqlite":
            for table, column, declared in conn.execute(_SQLITE_COLUMNS):
                match = _VARCHAR.fullmatch(declared.strip())
                found[(table, column)] = int(match.group(1)) if match else None
            indexes = conn.execute(_SQLITE_INDEXES).scalars()
        else:
            for table, column, length in conn.execute(_POSTGRES_COLUMNS):
                found[(table, column)] = length
            indexes = conn.execute(_POSTGRES_INDEXES).scalars()
        return cls(found, frozenset(indexes))

    def has(self, table: str, column: str | None = None) -> bool:
        """Whether the table (and its column) exists."""
        if column is not None:
            return (table, column) in self.columns
        return any(name == table for name, _ in self.columns)

    def check(self, table: str, column: str, value: str | None, what: str) -> None:
        """Raise InvalidParameterError if `value` is longer than the column holds."""
        limit = self.columns.get((table, column))
        if value is not None and limit is not None and len(value) > limit:
            raise InvalidParameterError(
                f"{what} {shown(value, 60)} is {len(value)} characters long; MLflow's SQL "
                f"schema holds at most {limit} in {table}.{column}"
            )
