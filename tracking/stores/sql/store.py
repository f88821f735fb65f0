"""The SQL store: SQLite and PostgreSQL through SQLAlchemy 2, versioned with Alembic.

Behaves exactly like the file store (one test suite runs against both). Search filters and
orderings are compiled to SQL; SQLite runs in WAL mode with a busy timeout and takes the write
lock at the start of each writing transaction, so writers queue instead of failing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from tracking import search, system_tags, validation
from tracking.config import redact_uri
from tracking.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
    new_run_info,
    now_ms,
)
from tracking.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    StorageError,
)
from tracking.stores.base import (
    SEARCH_MAX_RESULTS_DEFAULT,
    ExperimentRuns,
    PagedList,
    RunStats,
    TrackingStore,
    check_max_results,
    decode_page_token,
    encode_page_token,
    latest_order,
    paginate,
)
from tracking.stores.sql import hard_delete
from tracking.stores.sql import schema as schema
from tracking.stores.sql.experiment_runs import SqlExperimentRuns, count_runs
from tracking.stores.sql.logged_models import LoggedModelTables
from tracking.stores.sql.search import search_source
from tracking.uris import sqlite_path, uri_scheme

if TYPE_CHECKING:
    from tracking.registry.base import RegistryStore

T = TypeVar("T")
Cursor = Any  # a DB-API cursor of the driver (sqlite3 or psycopg)
DEFAULT_EXPERIMENT_ID = "0"


def _refused_value(error: DataError) -> InvalidParameterError:
    """A value the database refused (out of range, not storable), without the SQL text."""
    reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "refused"
    return InvalidParameterError(f"The database refused a value: {reason}")


def engine_url(uri: str) -> str:
    """SQLAlchemy URL for a tracking URI; plain postgresql:// uses the psycopg (3) driver."""
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    return uri


def _writable(path: str) -> bool:
    """Whether this process may write the SQLite file `path` and create its -wal and -shm."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)


def _read_only_url(path: str) -> str:
    """SQLAlchemy URL opening `path` read-only. Without a -wal file (no writer, nothing left to
    replay) the file is opened as immutable: a read-only folder holds no -shm to coordinate
    readers through, and SQLite could not read it otherwise."""
    query = "mode=ro" if os.path.exists(path + "-wal") else "mode=ro&immutable=1"
    return f"sqlite:///file:{quote(os.path.abspath(path))}?{query}&uri=true"


def _configure_sqlite(engine: Engine, read_only: bool) -> None:
    writer_pragmas = () if read_only else ("journal_mode=WAL", "synchronous=NORMAL")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in (
            "busy_timeout=60000",  # first: switching to WAL waits for other openers' locks
            *writer_pragmas,
            "foreign_keys=ON",
            "case_sensitive_like=ON",
            "cache_size=-65536",  # 64 MiB of page cache (default 2 MiB): searches re-read less
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get("trackflow_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


class SqlStore(LoggedModelTables, TrackingStore):
    """Experiments and runs in a relational database (sqlite:///..., postgresql://...)."""

    mlflow_store_type = "SqlStore"

    def __init__(
        self, uri: str, artifact_root: str | None = None, for_reading: bool = False
    ) -> None:
        self.uri = uri
        self.artifact_root = (artifact_root or "file://" + os.path.abspath("mlruns")).rstrip("/")
        url = engine_url(uri)
        self.is_sqlite = url.startswith("sqlite")
        #: Opened to be read only (for_reading), or a SQLite file this process may read but not
        #: write: reads work, writes say why not, and the schema is never changed.
        self.read_only = for_reading
        path = sqlite_path(uri) if self.is_sqlite else None
        if path is not None:
            if for_reading and not os.path.exists(path):
                raise StorageError(f"SQLite database {path} does not exist")
            if os.path.exists(path) and not _writable(path):
                self.read_only = True
                url = _read_only_url(path)
            elif for_reading:
                url = f"sqlite:///file:{quote(os.path.abspath(path))}?mode=ro&uri=true"
            else:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        read_only_sessions = {"options": "-c default_transaction_read_only=on"}
        try:
            self.engine = create_engine(
                url,
                pool_pre_ping=not self.is_sqlite,
                connect_args=read_only_sessions if for_reading and not self.is_sqlite else {},
            )
        except Exception as e:
            raise StorageError(f"Cannot use tracking URI {redact_uri(uri)!r}: {e}") from e
        if self.is_sqlite:
            _configure_sqlite(self.engine, self.read_only)
        from tracking.stores.sql.migrations import prepare

        try:
            #: The database's columns and their sizes (MLflow's schemas differ by version).
            self.shape = prepare(self.engine, uri, self.read_only, any_revision=for_reading)
            self._ensure_default_experiment()
        except OperationalError as e:
            raise StorageError(
                f"Cannot reach the database of tracking URI {redact_uri(uri)!r}: {e.orig}"
            ) from e

    @classmethod
    def open_for_reading(cls, uri: str) -> SqlStore:
        """Read-only (SQLite: mode=ro; PostgreSQL: read-only transactions), and a database at a
        revision Trackflow does not know is read if its tracking tables are as expected."""
        return cls(uri, for_reading=True)

    # --- transactions -------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for reading (the registry's and this store's reads)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except DataError as e:
            raise _refused_value(e) from e

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one writing transaction and return its result; retried briefly while
        the database is busy, so `work` must only touch the database. SQLite takes the write
        lock at its start; PostgreSQL rows are locked as `work` asks (FOR UPDATE)."""

        def attempt() -> T:
            with self.engine.connect() as conn:
                conn = conn.execution_options(trackflow_write=True)
                with conn.begin():
                    return work(conn)

        return self._retry_busy(attempt)

    def _driver_write(self, work: Callable[[Cursor], T]) -> T:
        """`transaction` for the hot one-row writes: `work` gets a cursor of the driver's own
        connection, past SQLAlchemy's statement and transaction layers (a quarter of the CPU
        time). Its statements are `_Sql`s; errors are SQLAlchemy's, as from `transaction`."""
        dbapi = self.engine.dialect.loaded_dbapi

        def attempt() -> T:
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                if self.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                result = work(cursor)
                raw.commit()
                return result
            except dbapi.IntegrityError as e:
                raise IntegrityError(None, None, e) from e
            except dbapi.DataError as e:
                raise DataError(None, None, e) from e
            except dbapi.OperationalError as e:
                raise OperationalError(None, None, e) from e
            finally:
                raw.close()  # back to the pool, which rolls back a transaction left open

        return self._retry_busy(attempt)

    def _execute(self, cursor: Cursor, statement: _Sql, params: Any) -> Cursor:
        cursor.execute(statement.sqlite if self.is_sqlite else statement.postgres, params)
        return cursor

    def _retry_busy(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, again after a pause while the database is busy (up to 8 tries)."""
        for tries in range(8):
            try:
                return attempt()
            except DataError as e:
                raise _refused_value(e) from e
            except OperationalError as e:
                text = str(e.orig).lower()
                busy = any(
                    word in text for word in ("locked", "busy", "could not serialize", "deadlock")
                )
                if not busy or tries == 7:
                    hint = ""
                    if "readonly" in text:
                        hint = " (this process may not write it: read-only file or folder)"
                    elif "full" in text or "disk i/o" in text:
                        hint = " (is the disk full? free some space and retry)"
                    raise StorageError(
                        f"Database error on {redact_uri(self.uri)}: {e.orig}{hint}"
                    ) from e
                time.sleep(0.05 * 2**tries)
        raise AssertionError("unreachable")

    def _ensure_default_experiment(self) -> None:
        e = schema.experiments
        with self.connection() as conn:
            query = select(e.c.experiment_id).where(e.c.experiment_id == 0)
            if conn.execute(query).first() is not None or self.read_only:
                return

        def create(conn: Connection) -> None:
            found = conn.execute(
                select(schema.experiments.c.experiment_id).where(
                    schema.experiments.c.experiment_id == 0
                )
            ).first()
            if found is None:
                self._insert_experiment(conn, "Default", None, {}, experiment_id=0)

        with contextlib.suppress(IntegrityError):  # another process created it first
            self.transaction(create)

    # --- experiments --------------------------------------------------------------------------
    def _insert_experiment(
        self,
        conn: Connection,
        name: str,
        artifact_location: str | None,
        tags: dict[str, str],
        experiment_id: int | None = None,
    ) -> str:
        now = now_ms()
        values: dict[str, Any] = {
            "name": name,
            "artifact_location": artifact_location or "",
            "lifecycle_stage": LifecycleStage.ACTIVE,
            "creation_time": now,
            "last_update_time": now,
        }
        if experiment_id is not None:
            values["experiment_id"] = experiment_id
        new_id = conn.execute(
            insert(schema.experiments)
            .values(**values)
            .returning(schema.experiments.c.experiment_id)
        ).scalar_one()
        if not artifact_location:
            location = f"{self.artifact_root}/{new_id}"
            self.shape.check("experiments", "artifact_location", location, "Artifact location")
            conn.execute(
                update(schema.experiments)
                .where(schema.experiments.c.experiment_id == new_id)
                .values(artifact_location=location)
            )
        if tags:
            conn.execute(
                insert(schema.experiment_tags),
                [{"experiment_id": new_id, "key": k, "value": v} for k, v in tags.items()],
            )
        return str(new_id)

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        validation.experiment_name(name)
        self.shape.check("experiments", "name", name, "Experiment name")
        if artifact_location is not None:
            artifact_location = validation.absolute_location(
                validation.artifact_location(artifact_location)
            )
            self.shape.check("experiments", "artifact_location", artifact_location, "Location")
        checked = {k: validation.experiment_tag_value(k, v) for k, v in (tags or {}).items()}
        validation.no_key_clash("Experiment tag", checked)
        for key, value in checked.items():
            self.shape.check("experiment_tags", "value", value, f"Experiment tag {key!r} value")
        try:
            return self.transaction(
                lambda conn: self._insert_experiment(conn, name, artifact_location, checked)
            )
        except IntegrityError:
            existing = self.get_experiment_by_name(name)
            hint = ""
            if existing is not None and existing.lifecycle_stage == LifecycleStage.DELETED:
                hint = " (in deleted state: restore it, or delete it permanently)"
            raise AlreadyExistsError(f"Experiment {name!r} already exists{hint}") from None

    @staticmethod
    def _experiment_key(experiment_id: str) -> int:
        validation.experiment_id(experiment_id)
        try:
            key = int(experiment_id)
        except ValueError:
            key = -1
        if not 0 <= key <= validation.INT64_MAX:  # ids are non-negative 64-bit integers here
            raise NotFoundError(f"Experiment with id {experiment_id!r} does not exist")
        return key

    def _experiments(self, where: Any = None) -> list[Experiment]:
        t = schema.experiment_tags
        with self.connection() as conn:
            query = select(*_EXPERIMENT_COLUMNS)
            if where is not None:
                query = query.where(where)
            rows = conn.execute(query).all()
            ids = [row.experiment_id for row in rows]
            tag_rows = (
                conn.execute(select(t).where(t.c.experiment_id.in_(ids))).all() if ids else []
            )
        tags: dict[int, dict[str, str]] = {}
        for row in tag_rows:
            tags.setdefault(row.experiment_id, {})[row.key] = row.value
        return [
            Experiment(
                experiment_id=str(row.experiment_id),
                name=row.name,
                artifact_location=row.artifact_location or "",
                lifecycle_stage=row.lifecycle_stage,
                tags=tags.get(row.experiment_id, {}),
                creation_time=row.creation_time,
                last_update_time=row.last_update_time,
            )
            for row in rows
        ]

    def get_experiment(self, experiment_id: str) -> Experiment:
        key = self._experiment_key(str(experiment_id))
        found = self._experiments(schema.experiments.c.experiment_id == key)
        if not found:
            raise NotFoundError(f"Experiment with id {experiment_id!r} does not exist")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if not validation.is_text(name):  # PostgreSQL could not even compare it
            return None
        found = self._experiments(schema.experiments.c.name == name)
        return found[0] if found else None

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        view_type = ViewType.parse(view_type)
        comparisons = search.parse_experiment_filter(filter_string)
        ordering = search.parse_experiment_order_by(order_by)
        found = [
            e
            for e in self._experiments()
            if view_type.matches(e.lifecycle_stage) and search.experiment_matches(comparisons, e)
        ]
        return paginate(search.sort_experiments(found, ordering), max_results, page_token)

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        key = self._experiment_key(str(experiment_id))
        e, r = schema.experiments, schema.runs
        now = now_ms()
        current = self.get_experiment(experiment_id)
        if current.lifecycle_stage == stage:
            raise InvalidStateError(f"Experiment {experiment_id!r} is already {stage}")

        def work(conn: Connection) -> None:
            conn.execute(
                update(e)
                .where(e.c.experiment_id == key)
                .values(lifecycle_stage=stage, last_update_time=now)
            )
            if stage == LifecycleStage.DELETED:
                conn.execute(
                    update(r)
                    .where(r.c.experiment_id == key, r.c.lifecycle_stage == LifecycleStage.ACTIVE)
                    .values(lifecycle_stage=LifecycleStage.DELETED, deleted_time=now)
                )
            else:
                conn.execute(
                    update(r)
                    .where(r.c.experiment_id == key, r.c.deleted_time == current.last_update_time)
                    .values(lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
                )

        self.transaction(work)

    def delete_experiment(self, experiment_id: str) -> None:
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise InvalidParameterError("The Default experiment (id 0) cannot be deleted")
        self._set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validation.experiment_name(new_name)
        self.shape.check("experiments", "name", new_name, "Experiment name")
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidStateError(f"Cannot rename deleted experiment {experiment_id!r}")
        e = schema.experiments
        try:
            self.transaction(
                lambda conn: conn.execute(
                    update(e)
                    .where(e.c.experiment_id == int(experiment.experiment_id))
                    .values(name=new_name, last_update_time=now_ms())
                )
            )
        except IntegrityError:
            raise AlreadyExistsError(f"Experiment {new_name!r} already exists") from None

    def set_experiment_tag(self, experiment_id: str, tag: RunTag) -> None:
        value = validation.experiment_tag_value(tag.key, tag.value)
        self.shape.check("experiment_tags", "value", value, f"Experiment tag {tag.key!r} value")
        key = int(self.get_experiment(experiment_id).experiment_id)

        def work(conn: Connection) -> None:
            self._check_stored_keys(conn, "experiment_tags", key, [tag.key], "Experiment tag")
            conn.execute(
                _UPSERT_EXPERIMENT_TAG, {"experiment_id": key, "key": tag.key, "value": value}
            )

        self.transaction(work)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        validation.validate_key(key, "Experiment tag key")
        exp = int(self.get_experiment(experiment_id).experiment_id)
        t = schema.experiment_tags
        deleted = self.transaction(
            lambda conn: (
                conn.execute(delete(t).where(t.c.experiment_id == exp, t.c.key == key)).rowcount
            )
        )
        if not deleted:
            raise NotFoundError(f"No tag {key!r} on experiment {experiment_id!r}")

    # --- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: list[RunTag],
        run_name: str,
        run_id: str | None = None,
    ) -> Run:
        checked = validation.new_run_tags(user_id, start_time, run_name, tags)
        self._check_tag_values(checked)
        new_id = validation.run_id(run_id) if run_id else uuid.uuid4().hex
        self.shape.check("runs", "run_uuid", new_id, "Run id")
        experiment_id = str(experiment_id)
        key = self._experiment_key(experiment_id)
        duplicate = self.engine.dialect.loaded_dbapi.IntegrityError

        def work(cursor: Cursor) -> Run:
            found = self._execute(cursor, _EXPERIMENT_FOR_RUN, {"id": key}).fetchone()
            if found is None:
                raise NotFoundError(f"Experiment with id {experiment_id!r} does not exist")
            location, stage = found
            if stage != LifecycleStage.ACTIVE:
                raise InvalidStateError(
                    f"Cannot create a run in deleted experiment {experiment_id!r}; restore it first"
                )
            info = new_run_info(new_id, str(key), run_name, user_id, start_time, location)
            self.shape.check("runs", "artifact_uri", info.artifact_uri, "The run's artifact URI")
            row = {
                **_NEW_RUN_SOURCE,
                "run_uuid": new_id,
                "name": run_name,
                "experiment_id": key,
                "user_id": user_id,
                "status": info.status,
                "start_time": start_time,
                "artifact_uri": info.artifact_uri,
                "lifecycle_stage": LifecycleStage.ACTIVE,
            }
            try:
                self._execute(cursor, _INSERT_RUN, row)
            except duplicate:
                raise AlreadyExistsError(f"Run {new_id!r} already exists") from None
            if checked:
                cursor.executemany(
                    _INSERT_TAG.sqlite if self.is_sqlite else _INSERT_TAG.postgres,
                    [{"run_uuid": new_id, "key": k, "value": v} for k, v in checked.items()],
                )
            return Run(info, RunData(tags=dict(checked)))

        return self._driver_write(work)

    def _check_tag_values(self, tags: dict[str, str]) -> None:
        """Tag values must fit the database's column (5000 characters before MLflow 2.17)."""
        for key, value in tags.items():
            self.shape.check("tags", "value", value, f"Tag {key!r} value")

    def _run_infos(self, conn: Connection, run_ids: list[str]) -> dict[str, RunInfo]:
        r = schema.runs
        rows = conn.execute(select(r).where(r.c.run_uuid.in_(run_ids))).all()
        return {
            row.run_uuid: RunInfo(
                run_id=row.run_uuid,
                experiment_id=str(row.experiment_id),
                run_name=row.name,
                user_id=row.user_id,
                status=row.status,
                start_time=row.start_time,
                end_time=row.end_time,
                artifact_uri=row.artifact_uri,
                lifecycle_stage=row.lifecycle_stage,
            )
            for row in rows
        }

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Full runs for ids (kept in the given order), in two bulk queries."""
        if not run_ids:
            return []
        with self.connection() as conn:
            rows = conn.execute(
                _RUNS_BY_IDS_SQLITE if self.is_sqlite else _RUNS_BY_IDS_POSTGRES,
                {"ids": self._ids_parameter(list(run_ids))},
            ).all()
            by_id = {row.run_uuid: row for row in rows}
            return self._runs_from_rows(conn, [by_id[i] for i in run_ids if i in by_id])

    def _ids_parameter(self, run_ids: list[str]) -> Any:
        """Many run ids as ONE bound value: no 1,000-placeholder statement to build and plan."""
        return json.dumps(run_ids) if self.is_sqlite else list(run_ids)

    def _runs_from_rows(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        """Runs from `runs` rows: params, tags and latest metrics come in one UNION ALL query."""
        if not rows:
            return []
        data = {row.run_uuid: RunData() for row in rows}
        values = conn.execute(
            _RUN_DATA_SQLITE if self.is_sqlite else _RUN_DATA_POSTGRES,
            {"ids": self._ids_parameter(list(data))},
        )
        for run_uuid, kind, key, text_value, number, is_nan in values:
            if kind == 0:
                data[run_uuid].params[key] = text_value
            elif kind == 1:
                data[run_uuid].tags[key] = text_value
            else:
                data[run_uuid].metrics[key] = math.nan if is_nan else number
        runs = [
            Run(
                RunInfo(
                    run_id=row.run_uuid,
                    experiment_id=str(row.experiment_id),
                    run_name=row.name,
                    user_id=row.user_id,
                    status=row.status,
                    start_time=row.start_time,
                    end_time=row.end_time,
                    artifact_uri=row.artifact_uri,
                    lifecycle_stage=row.lifecycle_stage,
                ),
                data[row.run_uuid],
            )
            for row in rows
        ]
        self._attach_inputs_outputs(conn, runs)
        return runs

    def get_run(self, run_id: str) -> Run:
        validation.run_id(run_id)
        found = self.get_runs([run_id])
        if not found:
            raise NotFoundError(f"Run {run_id!r} not found")
        return found[0]

    def _check_active(self, conn: Connection, run_id: str) -> None:
        """Raise unless the run exists and is active (read in the writing transaction)."""
        _raise_unless_active(run_id, conn.execute(_RUN_STAGE, {"run_id": run_id}).scalar())

    def _driver_check_active(self, cursor: Cursor, run_id: str) -> None:
        """`_check_active` in a `_driver_write` transaction."""
        row = self._execute(cursor, _RUN_STAGE_FOR_UPDATE, {"run_id": run_id}).fetchone()
        _raise_unless_active(run_id, row[0] if row else None)

    def update_run_info(
        self,
        run_id: str,
        run_status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        validation.run_id(run_id)
        values: dict[str, Any] = {}
        if run_status is not None:
            values["status"] = RunStatus.parse(run_status).name
        if end_time is not None:
            values["end_time"] = validation.time_ms("Run end_time", end_time)
        if run_name:
            values["name"] = validation.run_name(run_name)

        def work(cursor: Cursor) -> RunInfo:
            if values:  # one statement changes an active run and reads it back
                statement = _update_active_run(tuple(values))
                row = self._execute(cursor, statement, {**values, "run_id": run_id}).fetchone()
                if row is None:
                    self._driver_check_active(cursor, run_id)
            else:
                row = self._execute(cursor, _RUN_FOR_UPDATE, {"run_id": run_id}).fetchone()
                _raise_unless_active(run_id, row[-1] if row else None)
            if run_name:
                tag = {"run_uuid": run_id, "key": "mlflow.runName", "value": run_name}
                self._execute(cursor, _UPSERT_TAG_DRIVER, tag)
            return _run_info(row)

        return self._driver_write(work)

    def _set_run_stage(self, run_id: str, stage: str, deleted_time: int | None) -> None:
        validation.run_id(run_id)
        r = schema.runs
        changed = self.transaction(
            lambda conn: (
                conn.execute(
                    update(r)
                    .where(r.c.run_uuid == run_id)
                    .values(lifecycle_stage=stage, deleted_time=deleted_time)
                ).rowcount
            )
        )
        if not changed:
            raise NotFoundError(f"Run {run_id!r} not found")

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.DELETED, now_ms())

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE, None)

    # --- logging ------------------------------------------------------------------------------
    def _metric_rows(self, run_id: str, metrics: Iterable[Metric]) -> list[dict[str, Any]]:
        rows = []
        for m in metrics:
            value = validation.metric_value(m.key, m.value)
            is_nan = math.isnan(value)
            rows.append(
                {
                    "run_uuid": run_id,
                    "key": m.key,
                    "value": 0.0 if is_nan else value,
                    "is_nan": is_nan,
                    "timestamp": validation.metric_timestamp(m.key, m.timestamp),
                    "step": validation.metric_step(m.key, m.step),
                }
            )
        return rows

    def _clash_parameters(self, key: str) -> dict[str, Any]:
        """What the metric insert binds to refuse a key clashing with a stored one."""
        parameters = {"below": key + "/", "below_end": key + "0"}  # '0' follows '/'
        if "/" in key:
            parameters["folders"] = self._ids_parameter(_folders(key))
        return parameters

    def _write_metrics(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            best = latest.get(row["key"])
            if best is None or _order(row) >= _order(best):
                latest[row["key"]] = row
        newest = [latest[key] for key in sorted(latest)]  # one lock order for every writer
        # Driver-level statements: SQLAlchemy's per-row parameter processing cost about as much
        # as SQLite's own work, and psycopg sends an executemany as one statement per row.
        if self.is_sqlite:
            conn.exec_driver_sql(_INSERT_METRICS_SQLITE, [_metric_tuple(r) for r in rows])
            conn.exec_driver_sql(_UPSERT_LATEST_SQLITE, [_metric_tuple(r) for r in newest])
        else:
            conn.exec_driver_sql(_INSERT_METRICS_POSTGRES, _metric_arrays(rows))
            conn.exec_driver_sql(_UPSERT_LATEST_POSTGRES, _metric_arrays(newest))

    def log_metric(self, run_id: str, metric: Metric) -> None:
        if metric.model_id is not None:  # the model's metrics too: the general path
            self.log_batch(run_id, [metric], [], [])
            return
        (row,) = self._metric_rows(run_id, [metric])
        parameters = {**row, **self._clash_parameters(metric.key)}
        insert = _INSERT_NESTED_METRIC if "/" in metric.key else _INSERT_FLAT_METRIC

        def work(cursor: Cursor) -> None:
            # One statement inserts the point only if the run is active and the key clashes
            # with no other ('a' and 'a/b'): the hot path.
            if self._execute(cursor, insert, parameters).rowcount != 1:
                self._driver_check_active(cursor, run_id)
                found = self._stored_clash(cursor, "latest_metrics", run_id, [metric.key])
                if found is not None:
                    raise validation.clash_error("Metric", metric.key, *found)
            self._execute(cursor, _UPSERT_LATEST_METRIC, row)

        self._driver_write(work)

    def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag]
    ) -> None:
        validation.batch_sizes(len(metrics), len(params), len(tags))
        metric_rows = self._metric_rows(run_id, metrics)
        new_params: dict[str, str] = {}
        for p in params:
            value = validation.param_value(p.key, p.value)
            if new_params.setdefault(p.key, value) != value:
                raise validation.param_conflict(run_id, p.key, new_params[p.key], value)
        checked_tags = {t.key: validation.tag_value(t.key, t.value) for t in tags}
        self._check_tag_values(checked_tags)
        if "mlflow.runName" in checked_tags:
            validation.run_name(checked_tags["mlflow.runName"])
        metric_keys = {row["key"] for row in metric_rows}
        for kind, keys in (("Param", new_params), ("Tag", checked_tags), ("Metric", metric_keys)):
            validation.no_key_clash(kind, keys)

        def work(conn: Connection) -> None:
            self._check_active(conn, run_id)
            self._check_stored_keys(conn, "params", run_id, list(new_params), "Param")
            self._check_stored_keys(conn, "tags", run_id, list(checked_tags), "Tag")
            self._check_stored_keys(conn, "latest_metrics", run_id, list(metric_keys), "Metric")
            if new_params:
                self._write_params(conn, run_id, new_params)
            if checked_tags:
                conn.execute(
                    _UPSERT_TAG,
                    [{"run_uuid": run_id, "key": k, "value": v} for k, v in checked_tags.items()],
                )
            if checked_tags.get(system_tags.RUN_NAME):  # the run is renamed, as by set_tag
                conn.execute(
                    update(schema.runs)
                    .where(schema.runs.c.run_uuid == run_id)
                    .values(name=checked_tags[system_tags.RUN_NAME])
                )
            if metric_rows:
                self._write_metrics(conn, metric_rows)
                self._write_model_metrics(conn, run_id, metrics)

        self.transaction(work)

    def _write_params(self, conn: Connection, run_id: str, new: dict[str, str]) -> None:
        p = schema.params
        existing = dict(
            conn.execute(
                select(p.c.key, p.c.value).where(p.c.run_uuid == run_id, p.c.key.in_(list(new)))
            ).all()
        )
        for key, value in new.items():
            if key in existing and existing[key] != value:
                raise validation.param_conflict(run_id, key, existing[key], value)
        missing = [
            {"run_uuid": run_id, "key": k, "value": v} for k, v in new.items() if k not in existing
        ]
        if missing:
            conn.execute(insert(p), missing)

    def _stored_clash(
        self, cursor: Cursor, table: str, owner: str | int, keys: list[str]
    ) -> tuple[str, str] | None:
        """(folder key, key below it) of a clash between `keys` and the keys stored in `table`
        for `owner` (a run id, or an experiment id for experiment_tags); None if none."""
        folders = {folder: key for key in keys for folder in _folders(key)}
        parameters = {
            "owner": owner,
            "folders": self._ids_parameter(list(folders)),
            "keys": self._ids_parameter(keys),
        }
        found = self._execute(cursor, _stored_clash_sql(table), parameters).fetchone()
        if found is None:
            return None
        folder, below = found
        return (folder, below) if below is not None else (folder, folders[folder])

    def _check_stored_keys(
        self, conn: Connection, table: str, owner: str | int, keys: list[str], kind: str
    ) -> None:
        """Raise if one of `keys` clashes with a key stored in `table` ('a' and 'a/b')."""
        if not keys:
            return
        driver = conn.connection.driver_connection
        assert driver is not None  # a connection checked out of the pool
        cursor = driver.cursor()
        try:
            found = self._stored_clash(cursor, table, owner, keys)
        finally:
            cursor.close()
        if found is not None:
            key = found[1] if found[1] in keys else found[0]
            raise validation.clash_error(kind, key, *found)

    def delete_tag(self, run_id: str, key: str) -> None:
        validation.validate_key(key, "Tag key")
        t = schema.tags

        def work(conn: Connection) -> int:
            self._check_active(conn, run_id)
            return conn.execute(delete(t).where(t.c.run_uuid == run_id, t.c.key == key)).rowcount

        if not self.transaction(work):
            raise NotFoundError(f"No tag with name: {key} in run with id {run_id}")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        validation.validate_key(key, "Metric key")
        m = schema.metrics
        with self.connection() as conn:
            if not self._run_infos(conn, [run_id]):
                raise NotFoundError(f"Run {run_id!r} not found")
            rows = conn.execute(
                select(m.c.value, m.c.is_nan, m.c.timestamp, m.c.step)
                .where(m.c.run_uuid == run_id, m.c.key == key)
                .order_by(m.c.timestamp, m.c.step, m.c.value)
            ).all()
        return [
            Metric(key, math.nan if is_nan else value, timestamp, step)
            for value, is_nan, timestamp, step in rows
        ]

    def get_latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, Metric]]:
        lm = schema.latest_metrics
        found: dict[str, dict[str, Metric]] = {run_id: {} for run_id in run_ids}
        columns = (lm.c.run_uuid, lm.c.key, lm.c.value, lm.c.is_nan, lm.c.timestamp, lm.c.step)
        with self.connection() as conn:
            for start in range(0, len(run_ids), 500):
                chunk = run_ids[start : start + 500]
                rows = conn.execute(select(*columns).where(lm.c.run_uuid.in_(chunk)))
                for run_uuid, key, value, is_nan, timestamp, step in rows:
                    point = Metric(key, math.nan if is_nan else value, timestamp, step)
                    found[run_uuid][key] = point
        return found

    # --- search -------------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        view_type = ViewType.parse(run_view_type)
        comparisons = search.parse_run_filter(filter_string)
        ordering = search.parse_run_order_by(order_by)
        check_max_results(max_results)
        offset = decode_page_token(page_token)
        ids = []
        for experiment_id in experiment_ids:
            try:
                ids.append(self._experiment_key(str(experiment_id)))
            except (NotFoundError, InvalidParameterError):
                continue
        if not ids:
            return PagedList([], None)
        r = schema.runs
        source, conditions, terms = search_source(comparisons, ordering)
        where = [r.c.experiment_id.in_(ids), *conditions]
        if view_type is ViewType.ACTIVE_ONLY:
            where.append(r.c.lifecycle_stage == LifecycleStage.ACTIVE)
        elif view_type is ViewType.DELETED_ONLY:
            where.append(r.c.lifecycle_stage == LifecycleStage.DELETED)
        query = (
            select(r)
            .select_from(source)
            .where(and_(*where))
            .order_by(*terms)
            .offset(offset)
            .limit(max_results + 1)
        )
        with self.connection() as conn:
            rows = conn.execute(query).all()
            token = encode_page_token(offset + max_results) if len(rows) > max_results else None
            return PagedList(self._runs_from_rows(conn, rows[:max_results]), token)

    # --- capabilities (tracking.stores.base) ----------------------------------------------------
    @classmethod
    def check_holds_store(cls, uri: str) -> None:
        """A SQLite file or a database with the tracking tables (one connection to look)."""
        if uri_scheme(uri) == "sqlite":
            path = sqlite_path(uri)
            if path is None:
                raise NotFoundError(f"{uri!r} is an in-memory database: it holds nothing")
            if not os.path.isfile(path):
                raise NotFoundError(f"{uri!r} does not exist (no file {path})")
        try:
            engine = create_engine(engine_url(uri))
            try:
                with engine.connect() as conn:
                    found = inspect(conn).has_table("experiments")
            finally:
                engine.dispose()
        except Exception as e:
            reason = getattr(e, "orig", None) or e
            raise StorageError(f"Cannot read {redact_uri(uri)!r}: {reason}") from e
        if not found:
            raise NotFoundError(f"{redact_uri(uri)!r} has no tracking tables")

    @property
    def quick_writes(self) -> bool:
        return self.is_sqlite

    def close(self) -> None:
        self.engine.dispose()

    def run_stats(
        self, experiment_ids: Sequence[str], view_type: ViewType = ViewType.ACTIVE_ONLY
    ) -> dict[str, RunStats]:
        """One GROUP BY query."""
        keys: dict[str, int] = {}
        for experiment_id in experiment_ids:
            with contextlib.suppress(NotFoundError, InvalidParameterError):
                keys[experiment_id] = self._experiment_key(str(experiment_id))
        with self.connection() as conn:
            found = count_runs(conn, list(keys.values()), ViewType.parse(view_type))
        return {i: found.get(keys.get(i, -1), RunStats(0, None)) for i in experiment_ids}

    def experiment_runs(self, experiment_id: str) -> ExperimentRuns:
        return SqlExperimentRuns(self, experiment_id, self.connection)

    def deleted_time(self, run_id: str) -> int | None:
        with self.connection() as conn:
            return hard_delete.deleted_time(conn, run_id)

    @property
    def can_hard_delete(self) -> bool:
        return True

    def hard_delete_run(self, run_id: str) -> bool:
        return self.transaction(lambda conn: hard_delete.run(conn, run_id, self.shape))

    def hard_delete_experiment(self, experiment_id: str) -> bool:
        try:
            key = self._experiment_key(str(experiment_id))
        except NotFoundError:
            return False
        return self.transaction(lambda conn: hard_delete.experiment(conn, key, self.shape))

    def open_registry(self) -> RegistryStore:
        """The registry's tables in this database, written in this store's transactions."""
        from tracking.stores.sql.registry import SqlRegistryStore

        return SqlRegistryStore(self)


class _Sql(NamedTuple):
    """One statement in each driver's parameter style, for `SqlStore._driver_write`."""

    sqlite: str  # :name
    postgres: str  # %(name)s


def _sql(statement: str, postgres_suffix: str = "") -> _Sql:
    """`statement` written with :name placeholders (no '%', no '::' casts) for both drivers."""
    postgres = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", statement) + postgres_suffix
    return _Sql(statement, postgres)


def _folders(key: str) -> list[str]:
    """The '/'-folders of a key: "a/b/c" -> ["a", "a/b"]."""
    parts = key.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


# Key clashes ('a' and 'a/b'): a stored key that is a folder of a new key (:folders, a JSON
# array or an array), or a stored key below a new key. SQLite compares keys bytewise, so the
# keys below "k/" are those in ["k/", "k0"); PostgreSQL may sort by a locale: starts_with.
_BELOW_SQLITE = "key > :below AND key < :below_end"
# In SQLite a unary + keeps a column's index out of the plan: the run's (or experiment's) rows
# are then found through the (key, owner) primary key and the key range, instead of through
# MLflow's index on the owner alone, which scans every key of the run for each key asked about.
_OF_RUN_SQLITE = "+run_uuid = :run_uuid"
_OF_RUN_POSTGRES = "run_uuid = :run_uuid"
_BELOW_POSTGRES = "starts_with(key, CAST(:below AS TEXT))"
_IN_FOLDERS_SQLITE = "key IN (SELECT value FROM json_each(:folders))"
_IN_FOLDERS_POSTGRES = "key = ANY(CAST(:folders AS TEXT[]))"


@functools.cache
def _stored_clash_sql(table: str) -> _Sql:
    """(folder, key below it or NULL) of the first stored key of :owner clashing with :keys."""
    owner = "experiment_id" if table == "experiment_tags" else "run_uuid"
    sqlite = (
        f"SELECT key, NULL FROM {table} WHERE {owner} = :owner AND {_IN_FOLDERS_SQLITE} "
        f"UNION ALL SELECT k.value, t.key FROM json_each(:keys) AS k CROSS JOIN {table} AS t "
        f"ON +t.{owner} = :owner AND t.key > k.value || '/' AND t.key < k.value || '0' LIMIT 1"
    )
    postgres = (
        f"SELECT key, NULL FROM {table} WHERE {owner} = :owner AND {_IN_FOLDERS_POSTGRES} "
        f"UNION ALL SELECT k, t.key FROM unnest(CAST(:keys AS TEXT[])) AS k JOIN {table} AS t "
        f"ON t.{owner} = :owner AND starts_with(t.key, k || '/') LIMIT 1"
    )
    return _Sql(sqlite, _sql(postgres).postgres)


# Hot statements, built once. ON CONFLICT ... DO UPDATE is the same SQL in SQLite and PostgreSQL.
_INSERT_METRIC = (
    "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step) "
    "SELECT CAST(:run_uuid AS VARCHAR(256)), CAST(:key AS VARCHAR(250)), "
    "CAST(:value AS DOUBLE PRECISION), CAST(:is_nan AS BOOLEAN), CAST(:timestamp AS BIGINT), "
    "CAST(:step AS BIGINT) WHERE EXISTS "
    "(SELECT 1 FROM runs WHERE run_uuid = :run_uuid AND lifecycle_stage = 'active') "
    "AND NOT EXISTS (SELECT 1 FROM latest_metrics WHERE {} AND ({})) "
    "ON CONFLICT DO NOTHING"
)
# A key without '/' has no folder to clash with: the statement skips that test.
_INSERT_FLAT_METRIC = _Sql(
    _INSERT_METRIC.format(_OF_RUN_SQLITE, _BELOW_SQLITE),
    _sql(_INSERT_METRIC.format(_OF_RUN_POSTGRES, _BELOW_POSTGRES)).postgres,
)
_INSERT_NESTED_METRIC = _Sql(
    _INSERT_METRIC.format(_OF_RUN_SQLITE, f"{_IN_FOLDERS_SQLITE} OR {_BELOW_SQLITE}"),
    _sql(
        _INSERT_METRIC.format(_OF_RUN_POSTGRES, f"{_IN_FOLDERS_POSTGRES} OR {_BELOW_POSTGRES}")
    ).postgres,
)
_UPSERT_LATEST_METRIC = _sql(
    "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) "
    "VALUES (:run_uuid, :key, :value, :is_nan, :timestamp, :step) "
    "ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, "
    "is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step "
    "WHERE (excluded.step, excluded.timestamp, NOT excluded.is_nan, excluded.value) >= "
    "(latest_metrics.step, latest_metrics.timestamp, NOT latest_metrics.is_nan, "
    "latest_metrics.value)"
)
_UPSERT_TAG_SQL = (
    "INSERT INTO tags (run_uuid, key, value) VALUES (:run_uuid, :key, :value) "
    "ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value"
)
_UPSERT_TAG = text(_UPSERT_TAG_SQL)
_UPSERT_TAG_DRIVER = _sql(_UPSERT_TAG_SQL)
_INSERT_TAG = _sql("INSERT INTO tags (run_uuid, key, value) VALUES (:run_uuid, :key, :value)")
_EXPERIMENT_FOR_RUN = _sql(
    "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = :id"
)
_INSERT_RUN = _sql(
    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
    "status, start_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES "
    "(:run_uuid, :name, :source_type, :source_name, :entry_point_name, :user_id, :status, "
    ":start_time, :source_version, :lifecycle_stage, :artifact_uri, :experiment_id)"
)
#: What MLflow writes into the run columns of its old project tracking, which runs keep as tags.
_NEW_RUN_SOURCE = {
    "source_type": "UNKNOWN",
    "source_name": "",
    "entry_point_name": "",
    "source_version": "",
}
#: The experiment columns every supported MLflow schema has (MLflow 3 added `workspace`).
_EXPERIMENT_COLUMNS = tuple(
    schema.experiments.c[name]
    for name in (
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
        "creation_time",
        "last_update_time",
    )
)
#: What `_run_info` reads, in its order.
_RUN_INFO_COLUMNS = (
    "run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, "
    "lifecycle_stage"
)
_RUN_FOR_UPDATE = _sql(
    f"SELECT {_RUN_INFO_COLUMNS} FROM runs WHERE run_uuid = :run_id", " FOR NO KEY UPDATE"
)
_RUN_STAGE_FOR_UPDATE = _sql(
    "SELECT lifecycle_stage FROM runs WHERE run_uuid = :run_id", " FOR NO KEY UPDATE"
)


@functools.cache
def _update_active_run(columns: tuple[str, ...]) -> _Sql:
    """UPDATE of `columns` (bound by name) of an active run, returning `_run_info`'s row."""
    assignments = ", ".join(f"{column} = :{column}" for column in columns)
    return _sql(
        f"UPDATE runs SET {assignments} WHERE run_uuid = :run_id AND lifecycle_stage = 'active' "
        f"RETURNING {_RUN_INFO_COLUMNS}"
    )


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    run_id, experiment_id, name, user_id, status, start, end, artifact_uri, stage = row
    return RunInfo(
        run_id=run_id,
        experiment_id=str(experiment_id),
        run_name=name,
        user_id=user_id,
        status=status,
        start_time=start,
        end_time=end,
        artifact_uri=artifact_uri,
        lifecycle_stage=stage,
    )


def _raise_unless_active(run_id: str, stage: str | None) -> None:
    if stage is None:
        raise NotFoundError(f"Run {run_id!r} not found")
    if stage != LifecycleStage.ACTIVE:
        raise InvalidStateError(
            f"The run {run_id} must be in the 'active' state. Current state is deleted: "
            "restore it before logging to it"
        )


_UPSERT_EXPERIMENT_TAG = text(
    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (:experiment_id, :key, :value) "
    "ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value"
)
# Writers lock the run's row (FOR NO KEY UPDATE on PostgreSQL; SQLite renders no clause, its
# BEGIN IMMEDIATE already serialises writers): concurrent log_batch calls into one run then queue
# instead of failing on params_pkey or deadlocking on latest_metrics rows.
_RUN_STAGE = (
    select(schema.runs.c.lifecycle_stage)
    .where(schema.runs.c.run_uuid == bindparam("run_id"))
    .with_for_update(key_share=True)
)
# Many run ids bound as one value: a JSON array (SQLite) or an array (PostgreSQL).
_IDS_SQLITE = "run_uuid IN (SELECT value FROM json_each(:ids))"
_IDS_POSTGRES = "run_uuid = ANY(:ids)"
_RUNS_BY_IDS = "SELECT * FROM runs WHERE {ids}"
_RUNS_BY_IDS_SQLITE = text(_RUNS_BY_IDS.format(ids=_IDS_SQLITE))
_RUNS_BY_IDS_POSTGRES = text(_RUNS_BY_IDS.format(ids=_IDS_POSTGRES))
# (run, kind, key, text value, number, is_nan): kind 0 = param, 1 = tag, 2 = latest metric.
_RUN_DATA = (
    "SELECT run_uuid, 0, key, value, CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS BOOLEAN) "
    "FROM params WHERE {ids} "
    "UNION ALL SELECT run_uuid, 1, key, value, NULL, NULL FROM tags WHERE {ids} "
    "UNION ALL SELECT run_uuid, 2, key, CAST(NULL AS TEXT), value, is_nan FROM latest_metrics "
    "WHERE {ids}"
)
_RUN_DATA_SQLITE = text(_RUN_DATA.format(ids=_IDS_SQLITE))
_RUN_DATA_POSTGRES = text(_RUN_DATA.format(ids=_IDS_POSTGRES))


_METRIC_COLUMNS = ("run_uuid", "key", "value", "is_nan", "timestamp", "step")
_INSERT_METRICS_INTO = "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step) "
_UPSERT_LATEST_INTO = "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) "
_UPSERT_LATEST_CONFLICT = (
    " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, "
    "is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step "
    "WHERE (excluded.step, excluded.timestamp, NOT excluded.is_nan, excluded.value) >= "
    "(latest_metrics.step, latest_metrics.timestamp, NOT latest_metrics.is_nan, "
    "latest_metrics.value)"
)
_QMARKS = "VALUES (?, ?, ?, ?, ?, ?)"
_UNNEST = (
    "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::float8[], %s::boolean[], "
    "%s::bigint[], %s::bigint[])"
)
# A point logged twice (same key, value, timestamp and step) is stored once, as MLflow does.
_SKIP_DUPLICATE = " ON CONFLICT DO NOTHING"
_INSERT_METRICS_SQLITE = _INSERT_METRICS_INTO + _QMARKS + _SKIP_DUPLICATE
_UPSERT_LATEST_SQLITE = _UPSERT_LATEST_INTO + _QMARKS + _UPSERT_LATEST_CONFLICT
_INSERT_METRICS_POSTGRES = _INSERT_METRICS_INTO + _UNNEST + _SKIP_DUPLICATE
_UPSERT_LATEST_POSTGRES = _UPSERT_LATEST_INTO + _UNNEST + _UPSERT_LATEST_CONFLICT


def _metric_tuple(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in _METRIC_COLUMNS)


def _metric_arrays(rows: list[dict[str, Any]]) -> tuple[list[Any], ...]:
    """One array per column: PostgreSQL inserts them all in one statement (unnest)."""
    return tuple([row[c] for row in rows] for c in _METRIC_COLUMNS)


def _order(row: dict[str, Any]) -> tuple[int, int, float]:
    """latest_order of a metrics row (MLflow stores NaN as is_nan with value 0)."""
    return latest_order(row["step"], row["timestamp"], math.nan if row["is_nan"] else row["value"])
