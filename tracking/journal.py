"""A durable record of the task-run writes that tracking.write_behind performs later.

When a queued task run's body returns, everything it still has to write (the run itself, its
params, tags, metrics and end status) is appended to this process's journal for that store as
one JSON line, with one `write()` on a file opened with O_APPEND, before the body's return is
handed back to Prefect. The writer thread then applies the record to the store. So a finished
task run is always either in the store or in a journal, whatever happens to the process.

- One journal file per process and store, in `$TRACKFLOW_JOURNAL_DIR` (default
  `~/.local/state/trackflow/journal`), folder named after a hash of the store URI. The owning
  process holds an exclusive `flock` on it for its whole life; the kernel drops the lock when
  the process dies, however it dies.
- When everything queued has been applied, the writer empties the journal; at a clean exit the
  file is removed. A record whose write failed (store unreachable) stays in the file.
- Opening a store (`tracking.stores.open_store`) replays the journals of dead processes: any
  file in the store's folder that can be locked belongs to no live process. Replay is
  idempotent: a record whose run already ended as recorded is skipped, params already present
  are not logged again and metric points already in a history are not appended twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracking.entities import Metric, Param, RunTag
from tracking.errors import INTERNAL_ERROR, NotFoundError, TrackingError
from tracking.stores.base import TrackingStore

JOURNAL_DIR_ENV = "TRACKFLOW_JOURNAL_DIR"
SUFFIX = ".journal"


@dataclass
class RunCreation:
    """What creating the run needs (absent when logging into an existing run)."""

    experiment_id: str
    run_name: str
    user_id: str
    start_time: int
    tags: dict[str, str]


@dataclass
class RunRecord:
    """Everything one task run writes once its body has returned."""

    run_id: str
    create: RunCreation | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    status: str | None = None
    end_time: int | None = None

    def to_line(self) -> bytes:
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "params": self.params,
            "tags": self.tags,
            "metrics": [[m.key, m.value, m.timestamp, m.step] for m in self.metrics],
            "status": self.status,
            "end_time": self.end_time,
        }
        if self.create is not None:
            data["create"] = vars(self.create)
        return json.dumps(data, separators=(",", ":")).encode("utf-8") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> RunRecord:
        data = json.loads(line)
        create = data.get("create")
        return cls(
            run_id=data["run_id"],
            create=RunCreation(**create) if create else None,
            params=data["params"],
            tags=data["tags"],
            metrics=[Metric(k, v, ts, step) for k, v, ts, step in data["metrics"]],
            status=data["status"],
            end_time=data["end_time"],
        )

    def apply(self, store: TrackingStore, created: bool) -> None:
        """Write the record. `created`: this process already created the run with its params
        (the queued start of the task run), so only the rest is written; otherwise every part
        is written idempotently."""
        metrics, params = self.metrics, {}
        if not created:
            existing = self._existing_run(store)
            if existing is None:
                return  # fully applied before
            metrics = _new_points(store, self.run_id, metrics)
            params = {k: v for k, v in self.params.items() if k not in existing}
        store.log_all(
            self.run_id,
            metrics,
            [Param(k, v) for k, v in params.items()],
            [RunTag(k, v) for k, v in self.tags.items()],
        )
        if self.status is not None:
            store.update_run_info(self.run_id, self.status, self.end_time)

    def create_ended(self, store: TrackingStore) -> None:
        """Write the whole run at once: a planned run that has ended and of which nothing was
        written yet."""
        c = self.create
        assert c is not None and self.status is not None
        store.create_ended_run(
            c.experiment_id,
            c.user_id,
            c.start_time,
            [RunTag(k, v) for k, v in {**c.tags, **self.tags}.items()],
            c.run_name,
            self.run_id,
            [Param(k, v) for k, v in self.params.items()],
            self.metrics,
            self.status,
            self.end_time,
        )

    def _existing_run(self, store: TrackingStore) -> dict[str, str] | None:
        """Create the run if missing (whole, when the record holds its end); its params, or None
        when nothing is left to write."""
        try:
            run = store.get_run(self.run_id)
        except NotFoundError:
            if self.create is None:
                raise
            if self.status is not None:
                self.create_ended(store)
                return None
            c = self.create
            tags = [RunTag(k, v) for k, v in c.tags.items()]
            store.create_run(
                c.experiment_id, c.user_id, c.start_time, tags, c.run_name, self.run_id
            )
            return {}
        info = run.info
        if self.status is not None and (info.status, info.end_time) == (self.status, self.end_time):
            return None
        return run.data.params


def _new_points(store: TrackingStore, run_id: str, metrics: list[Metric]) -> list[Metric]:
    logged: set[Metric] = set()
    for key in {m.key for m in metrics}:
        logged.update(store.get_metric_history(run_id, key))
    return [m for m in metrics if m not in logged]


def journal_root() -> Path:
    configured = os.environ.get(JOURNAL_DIR_ENV)
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "trackflow" / "journal"


def journal_dir(uri: str) -> Path:
    """The folder holding the journals of every process writing to the store `uri`."""
    import hashlib  # not at import time: `import tracking` stays light

    from tracking.uris import store_identity

    key = repr(store_identity(uri)).encode()
    return journal_root() / hashlib.sha256(key).hexdigest()[:24]


class Journal:
    """This process's append-only journal for one store, locked for the process's lifetime."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{os.urandom(4).hex()}{SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self.fd = os.open(self.path, flags, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.size = 0
        self.keep = False  # a record failed to apply: the file must outlive the process

    def append(self, line: bytes) -> None:
        """Append one record with one write; raise OSError (and leave no partial line) when
        the write is refused or short (full disk)."""
        try:
            written = os.write(self.fd, line)
        except OSError:
            os.ftruncate(self.fd, self.size)
            raise
        if written != len(line):
            os.ftruncate(self.fd, self.size)
            raise OSError(f"journal {self.path}: short write ({written} of {len(line)} bytes)")
        self.size += written

    def clear(self) -> None:
        """Every record has been applied: start the file over (unless one failed)."""
        if self.size and not self.keep:
            os.ftruncate(self.fd, 0)
            self.size = 0

    def close(self) -> None:
        """At exit: remove the file when nothing in it still needs applying."""
        if not self.keep:
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)


_journals: dict[str, Journal | None] = {}
_lock = threading.Lock()


def journal_for(uri: str) -> Journal | None:
    """This process's journal for the store `uri`; None when none can be kept (the caller
    then writes synchronously)."""
    journal = _journals.get(uri, _MISSING)
    if journal is _MISSING:
        with _lock:
            journal = _journals.get(uri, _MISSING)
            if journal is _MISSING:
                try:
                    journal = Journal(journal_dir(uri))
                except OSError as e:
                    warnings.warn(
                        f"Trackflow cannot keep a write journal in {journal_root()} ({e}); "
                        f"task runs are written synchronously. Set {JOURNAL_DIR_ENV} to a "
                        "writable folder.",
                        stacklevel=2,
                    )
                    journal = None
                _journals[uri] = journal
    return journal


_MISSING: Any = object()


def close_all() -> None:
    """Close this process's journals (at exit, once the queue is empty)."""
    with _lock:
        for journal in _journals.values():
            if journal is not None:
                journal.close()
        _journals.clear()


def _forget_in_child() -> None:
    """A forked child must not hold (or later remove) its parent's journals."""
    for journal in _journals.values():
        if journal is not None:
            with contextlib.suppress(OSError):
                os.close(journal.fd)
    _journals.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def replay_orphans(uri: str, store: TrackingStore) -> int:
    """Apply the journals that dead processes left for this store; the number of records."""
    try:
        paths = sorted(journal_dir(uri).glob(f"*{SUFFIX}"))
    except OSError:
        return 0
    replayed = 0
    for path in paths:
        with _locked(path) as fd:
            if fd is not None:
                replayed += _replay(path, fd, store)
    return replayed


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int | None]:
    """The journal's fd, locked; None when a live process holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield None if os.fstat(fd).st_nlink == 0 else fd  # removed by another replayer
    finally:
        os.close(fd)


def _replay(path: Path, fd: int, store: TrackingStore) -> int:
    with open(fd, "rb", closefd=False) as f:
        lines = f.read().split(b"\n")
    records = []
    for line in lines[:-1]:  # the part after the last newline is an unfinished write
        try:
            records.append(RunRecord.from_line(line))
        except (ValueError, KeyError, TypeError):
            warnings.warn(f"Skipping a damaged record in the journal {path}", stacklevel=3)
    for record in records:
        try:
            record.apply(store, created=False)
        except Exception as e:
            if isinstance(e, TrackingError) and e.error_code != INTERNAL_ERROR:
                warnings.warn(f"Journal {path}: run {record.run_id} refused: {e}", stacklevel=3)
                continue  # refused for good (invalid, deleted experiment, ...)
            warnings.warn(f"Journal {path}: replay stopped, kept for later: {e}", stacklevel=3)
            return 0
    path.unlink()
    if records:
        warnings.warn(
            f"Trackflow replayed {len(records)} task run(s) that a stopped process had not "
            f"written yet (journal {path.name})",
            stacklevel=3,
        )
    return len(records)
