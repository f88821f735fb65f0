"""The SQL registry: registry tables next to the tracking tables, in the SqlStore's database.

`SqlStore.open_registry()` gives a `SqlRegistryStore` using the tracking store's public
connections and transactions (SQLite: WAL, BEGIN IMMEDIATE for writers; PostgreSQL: the
registered model's row is locked while a version number is chosen), so concurrent
register_model calls get distinct version numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tracking.entities import now_ms
from tracking.errors import InvalidParameterError
from tracking.registry import validation as check
from tracking.registry.base import (
    RegistryStore,
    model_exists,
    model_not_found,
    version_not_found,
)
from tracking.registry.entities import (
    ACTIVE_STAGES,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    STAGE_NONE,
    STATUS_READY,
    ModelVersion,
    RegisteredModel,
    canonical_stage,
    latest_per_stage,
)
from tracking.stores.sql import registry_schema as t
from tracking.stores.sql.shape import SchemaShape

T = TypeVar("T")
_LIVE = t.model_versions.c.current_stage != STAGE_DELETED_INTERNAL
# The columns every supported MLflow schema has (MLflow 3 added `workspace`).
_MODEL_COLUMNS = [c for c in t.registered_models.c if c.name != "workspace"]
_VERSION_COLUMNS = [c for c in t.model_versions.c if c.name != "workspace"]


class Database(Protocol):
    """What the registry uses of the SQL tracking store (tracking.stores.sql.store.SqlStore)."""

    #: The database's columns and their sizes (MLflow's schemas differ by version).
    shape: SchemaShape

    def connection(self) -> AbstractContextManager[Connection]: ...

    def transaction(self, work: Callable[[Connection], T]) -> T: ...


class SqlRegistryStore(RegistryStore):
    """Registered models in the tracking database of `database` (sqlite, postgresql), read
    and written through that store's connections and transactions."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _fits(self, table: str, column: str, value: str | None, what: str) -> None:
        """Values longer than the database's column holds are refused, naming them."""
        self.database.shape.check(table, column, value, what)

    def _fit_tags(self, table: str, tags: dict[str, str], what: str) -> None:
        for key, value in tags.items():
            self._fits(table, "value", value, f"{what} tag {key!r} value")

    # --- reads ---------------------------------------------------------------------------------
    @staticmethod
    def _model_exists(conn: Connection, name: str, lock: bool = False) -> bool:
        query = select(t.registered_models.c.name).where(t.registered_models.c.name == name)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first() is not None

    def _require_model(self, conn: Connection, name: str, lock: bool = False) -> None:
        if not self._model_exists(conn, check.model_name(name), lock):
            raise model_not_found(name)

    @staticmethod
    def _aliases_of(conn: Connection, names: Iterable[str]) -> dict[str, dict[str, int]]:
        a = t.registered_model_aliases
        found: dict[str, dict[str, int]] = {}
        for name, alias, version in conn.execute(
            select(a.c.name, a.c.alias, a.c.version).where(a.c.name.in_(list(names)))
        ):
            found.setdefault(name, {})[alias] = version
        return found

    def _versions(self, conn: Connection, *where: Any) -> list[ModelVersion]:
        mv, mvt = t.model_versions, t.model_version_tags
        query = select(*_VERSION_COLUMNS).where(_LIVE, *where)
        rows = conn.execute(query.order_by(mv.c.name, mv.c.version)).all()
        if not rows:
            return []
        names = {row.name for row in rows}
        tags: dict[tuple[str, int], dict[str, str]] = {}
        for name, version, key, value in conn.execute(
            select(mvt.c.name, mvt.c.version, mvt.c.key, mvt.c.value).where(
                mvt.c.name.in_(list(names))
            )
        ):
            tags.setdefault((name, version), {})[key] = value
        aliases = self._aliases_of(conn, names)
        return [
            ModelVersion(
                name=row.name,
                version=row.version,
                creation_timestamp=row.creation_time,
                last_updated_timestamp=row.last_updated_time,
                current_stage=row.current_stage,
                description=row.description,
                source=row.source,
                run_id=row.run_id,
                run_link=row.run_link,
                status=row.status,
                status_message=row.status_message,
                user_id=row.user_id,
                tags=tags.get((row.name, row.version), {}),
                aliases=sorted(a for a, v in aliases.get(row.name, {}).items() if v == row.version),
            )
            for row in rows
        ]

    def _models(self, conn: Connection, name: str | None = None) -> list[RegisteredModel]:
        rm, rmt = t.registered_models, t.registered_model_tags
        query = select(*_MODEL_COLUMNS).order_by(rm.c.name)
        if name is not None:
            query = query.where(rm.c.name == name)
        rows = conn.execute(query).all()
        if not rows:
            return []
        names = [row.name for row in rows]
        tags: dict[str, dict[str, str]] = {}
        tag_query = select(rmt.c.name, rmt.c.key, rmt.c.value)
        if name is not None:
            tag_query = tag_query.where(rmt.c.name == name)
        for model, key, value in conn.execute(tag_query):
            tags.setdefault(model, {})[key] = value
        aliases = self._aliases_of(conn, names)
        where = [t.model_versions.c.name == name] if name is not None else []
        versions: dict[str, list[ModelVersion]] = {}
        for version in self._versions(conn, *where):
            versions.setdefault(version.name, []).append(version)
        return [
            RegisteredModel(
                name=row.name,
                creation_timestamp=row.creation_time,
                last_updated_timestamp=row.last_updated_time,
                description=row.description,
                tags=tags.get(row.name, {}),
                aliases=aliases.get(row.name, {}),
                latest_versions=latest_per_stage(versions.get(row.name, []), None),
            )
            for row in rows
        ]

    def _live_version_row(self, conn: Connection, name: str, number: int) -> Any:
        """The version's row; NotFoundError naming the model's live versions otherwise."""
        mv = t.model_versions
        self._require_model(conn, name)
        row = conn.execute(
            select(*_VERSION_COLUMNS).where(mv.c.name == name, mv.c.version == number, _LIVE)
        ).first()
        if row is None:
            live = conn.execute(select(mv.c.version).where(mv.c.name == name, _LIVE)).scalars()
            raise version_not_found(name, number, list(live))
        return row

    def _touch(self, conn: Connection, name: str, now: int) -> None:
        rm = t.registered_models
        conn.execute(update(rm).where(rm.c.name == name).values(last_updated_time=now))

    # --- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        check.model_name(name)
        checked = check.tags(tags, "Registered model")
        self._fit_tags("registered_model_tags", checked, "Registered model")
        description = check.description(description)
        self._fits("registered_models", "description", description, "Description")

        def work(conn: Connection) -> None:
            now = now_ms()
            conn.execute(
                insert(t.registered_models).values(
                    name=name, creation_time=now, last_updated_time=now, description=description
                )
            )
            if checked:
                conn.execute(
                    insert(t.registered_model_tags),
                    [{"name": name, "key": k, "value": v} for k, v in checked.items()],
                )

        try:
            self.database.transaction(work)
        except IntegrityError:
            raise model_exists(name) from None
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        check.model_name(name)
        with self.database.connection() as conn:
            found = self._models(conn, name)
        if not found:
            raise model_not_found(name)
        return found[0]

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        description = check.description(description)
        self._fits("registered_models", "description", description, "Description")
        rm = t.registered_models

        def work(conn: Connection) -> None:
            self._require_model(conn, name)
            conn.execute(
                update(rm)
                .where(rm.c.name == name)
                .values(description=description, last_updated_time=now_ms())
            )

        self.database.transaction(work)
        return self.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        check.model_name(new_name)
        rm, mv = t.registered_models, t.model_versions

        def work(conn: Connection) -> None:
            self._require_model(conn, name)
            if new_name == name:
                return
            if self._model_exists(conn, new_name):
                raise model_exists(new_name)
            now = now_ms()
            # ON UPDATE CASCADE carries the new name to versions, tags and aliases.
            conn.execute(
                update(rm).where(rm.c.name == name).values(name=new_name, last_updated_time=now)
            )
            conn.execute(update(mv).where(mv.c.name == new_name).values(last_updated_time=now))

        try:
            self.database.transaction(work)
        except IntegrityError:
            raise model_exists(new_name) from None
        return self.get_registered_model(new_name)

    def delete_registered_model(self, name: str) -> None:
        def work(conn: Connection) -> None:
            self._require_model(conn, name)
            for table in (
                t.model_version_tags,
                t.registered_model_aliases,
                t.registered_model_tags,
                t.model_versions,
                t.registered_models,
            ):
                conn.execute(delete(table).where(table.c.name == name))

        self.database.transaction(work)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        key, value = check.tag(key, value, "Registered model")
        self._fit_tags("registered_model_tags", {key: value}, "Registered model")
        rmt = t.registered_model_tags

        def work(conn: Connection) -> None:
            self._require_model(conn, name)
            conn.execute(delete(rmt).where(rmt.c.name == name, rmt.c.key == key))
            conn.execute(insert(rmt).values(name=name, key=key, value=value))
            self._touch(conn, name, now_ms())

        self.database.transaction(work)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        check.tag(key, "", "Registered model")
        rmt = t.registered_model_tags

        def work(conn: Connection) -> None:
            self._require_model(conn, name)
            if conn.execute(delete(rmt).where(rmt.c.name == name, rmt.c.key == key)).rowcount:
                self._touch(conn, name, now_ms())

        self.database.transaction(work)

    def _list_models(self, name: str | None = None) -> list[RegisteredModel]:
        with self.database.connection() as conn:
            return self._models(conn, name)

    # --- model versions ------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        check.model_name(name)
        checked = check.tags(tags, "Model version")
        self._fit_tags("model_version_tags", checked, "Model version")
        description = check.description(description)
        self._fits("model_versions", "description", description, "Description")
        check.source(source)
        self._fits("model_versions", "source", source, "Model version source")
        check.optional_text("Model version run_id", run_id)
        self._fits("model_versions", "run_id", run_id, "Model version run_id")
        check.optional_text("Model version run_link", run_link)
        self._fits("model_versions", "run_link", run_link, "Model version run_link")
        mv = t.model_versions

        def work(conn: Connection) -> int:
            self._require_model(conn, name, lock=True)  # PostgreSQL: one writer per model
            highest = conn.execute(select(func.max(mv.c.version)).where(mv.c.name == name))
            number = (highest.scalar() or 0) + 1
            now = now_ms()
            conn.execute(
                insert(mv).values(
                    name=name,
                    version=number,
                    creation_time=now,
                    last_updated_time=now,
                    description=description,
                    user_id=None,
                    current_stage=STAGE_NONE,
                    source=source,
                    storage_location=source,
                    run_id=run_id,
                    run_link=run_link,
                    status=STATUS_READY,
                    status_message=None,
                )
            )
            if checked:
                conn.execute(
                    insert(t.model_version_tags),
                    [
                        {"name": name, "version": number, "key": k, "value": v}
                        for k, v in checked.items()
                    ],
                )
            self._touch(conn, name, now)
            return number

        for attempt in range(5):
            try:
                number = self.database.transaction(work)
                break
            except IntegrityError:  # a racing writer took the number: choose again
                if attempt == 4:
                    raise
        return self.get_model_version(name, number)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        number = check.version(version)
        check.model_name(name)
        mv = t.model_versions
        with self.database.connection() as conn:
            found = self._versions(conn, mv.c.name == name, mv.c.version == number)
            if not found:
                self._live_version_row(conn, name, number)  # raises, naming what exists
        return found[0]

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        number = check.version(version)
        description = check.description(description)
        self._fits("model_versions", "description", description, "Description")
        mv = t.model_versions

        def work(conn: Connection) -> None:
            self._live_version_row(conn, name, number)
            conn.execute(
                update(mv)
                .where(mv.c.name == name, mv.c.version == number)
                .values(description=description, last_updated_time=now_ms())
            )

        self.database.transaction(work)
        return self.get_model_version(name, number)

    def delete_model_version(self, name: str, version: int | str) -> None:
        number = check.version(version)
        mv, a = t.model_versions, t.registered_model_aliases

        def work(conn: Connection) -> None:
            self._live_version_row(conn, name, number)
            now = now_ms()
            conn.execute(
                update(mv)
                .where(mv.c.name == name, mv.c.version == number)
                .values(current_stage=STAGE_DELETED_INTERNAL, last_updated_time=now)
            )
            conn.execute(delete(a).where(a.c.name == name, a.c.version == number))
            self._touch(conn, name, now)

        self.database.transaction(work)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        number = check.version(version)
        key, value = check.tag(key, value, "Model version")
        self._fit_tags("model_version_tags", {key: value}, "Model version")
        mvt = t.model_version_tags

        def work(conn: Connection) -> None:
            self._live_version_row(conn, name, number)
            where = (mvt.c.name == name, mvt.c.version == number, mvt.c.key == key)
            conn.execute(delete(mvt).where(*where))
            conn.execute(insert(mvt).values(name=name, version=number, key=key, value=value))
            self._touch(conn, name, now_ms())

        self.database.transaction(work)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        number = check.version(version)
        check.tag(key, "", "Model version")
        mvt = t.model_version_tags

        def work(conn: Connection) -> None:
            self._live_version_row(conn, name, number)
            where = (mvt.c.name == name, mvt.c.version == number, mvt.c.key == key)
            if conn.execute(delete(mvt).where(*where)).rowcount:
                self._touch(conn, name, now_ms())

        self.database.transaction(work)

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        stage = canonical_stage(stage)
        number = check.version(version)
        if archive_existing_versions and stage not in ACTIVE_STAGES:
            raise InvalidParameterError(
                f"archive_existing_versions=True needs stage Staging or Production, not {stage!r}"
            )
        mv = t.model_versions

        def work(conn: Connection) -> None:
            self._require_model(conn, name, lock=True)
            self._live_version_row(conn, name, number)
            now = now_ms()
            if archive_existing_versions:
                conn.execute(
                    update(mv)
                    .where(mv.c.name == name, mv.c.version != number, mv.c.current_stage == stage)
                    .values(current_stage=STAGE_ARCHIVED, last_updated_time=now)
                )
            conn.execute(
                update(mv)
                .where(mv.c.name == name, mv.c.version == number)
                .values(current_stage=stage, last_updated_time=now)
            )
            self._touch(conn, name, now)

        self.database.transaction(work)
        return self.get_model_version(name, number)

    def _list_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        mv = t.model_versions
        where = []
        if run_id is not None:
            where.append(mv.c.run_id == run_id)
        with self.database.connection() as conn:
            if name is not None:
                self._require_model(conn, name)
                where.append(mv.c.name == name)
            return self._versions(conn, *where)

    # --- aliases -------------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        check.alias(alias, for_setting=True)
        number = check.version(version)
        a = t.registered_model_aliases

        def work(conn: Connection) -> None:
            self._live_version_row(conn, name, number)
            conn.execute(delete(a).where(a.c.name == name, a.c.alias == alias))
            conn.execute(insert(a).values(name=name, alias=alias, version=number))
            self._touch(conn, name, now_ms())

        self.database.transaction(work)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        check.alias(alias)
        a = t.registered_model_aliases

        def work(conn: Connection) -> None:
            self._require_model(conn, name)
            if conn.execute(delete(a).where(a.c.name == name, a.c.alias == alias)).rowcount:
                self._touch(conn, name, now_ms())

        self.database.transaction(work)

    def _aliases(self, name: str) -> dict[str, int]:
        with self.database.connection() as conn:
            self._require_model(conn, name)
            return self._aliases_of(conn, [name]).get(name, {})
