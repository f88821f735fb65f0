"""Store writes performed later, in order, by one background thread per process.

The Prefect decorators queue a nested task run's own bookkeeping here (create the run, its
params, its metrics, end it) so the task's thread does not wait on the store. Every access
through a `TrackingClient` (so the whole fluent API) and `tracking.active_run()` first waits
until the queue is empty, so code in this process never sees a queued write missing; a flow
run waits for the queue before it ends, and the interpreter waits for it at exit.

An action that fails must handle its own error (the decorators warn or record a
`TrackingFailedError`); whatever escapes is kept for `take_errors()`.

A durable action (`submit_durable`) comes with a journal line (tracking.journal) appended before
it is queued: it must return True once its record is in the store, and its journal is kept for
replay when it does not. Whenever the queue runs empty, the journals are emptied.
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from tracking import journal as journals

Action = Callable[[], Any]


BATCH_SECONDS = 1.0  # how long queued writes may wait for more to join them
MAX_BATCH = 1000  # a batch starts at once when this many writes are queued


class WriteBehind:
    """A FIFO queue of store writes and the daemon thread that performs them in batches.

    The thread sleeps until writes have been queued for `batch_seconds`, `max_batch` are
    queued, or someone flushes; it then performs every queued write. Batching keeps the
    thread off the GIL while the pipeline runs: one burst per batch instead of a wake-up
    (and GIL hand-overs for every file system call) per write.
    """

    def __init__(self, batch_seconds: float = BATCH_SECONDS, max_batch: int = MAX_BATCH) -> None:
        self.batch_seconds = batch_seconds
        self.max_batch = max_batch
        self._reset()

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._queued: collections.deque[tuple[Action, journals.Journal | None]] = (
            collections.deque()
        )
        self._journals: set[journals.Journal] = set()  # written to since they were emptied
        self._pending = 0  # queued or running
        self._flushing = 0  # threads waiting in flush()
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = []

    def submit(self, action: Action) -> None:
        """Queue `action`; it runs after every action queued before it."""
        with self._changed:
            self._enqueue(action, None)

    def submit_durable(self, journal: journals.Journal, line: bytes, action: Action) -> None:
        """Append `line` to `journal`, then queue `action` (which returns True when done);
        raises OSError, queueing nothing, when the journal cannot be written."""
        with self._changed:
            journal.append(line)
            self._journals.add(journal)
            self._enqueue(action, journal)

    def _enqueue(self, action: Action, journal: journals.Journal | None) -> None:
        """Queue one action; the caller holds the lock."""
        self._queued.append((action, journal))
        self._pending += 1
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="trackflow-write-behind", daemon=True
            )
            self._thread.start()
        if len(self._queued) in (1, self.max_batch):
            self._changed.notify_all()

    def flush(self) -> None:
        """Block until every queued action has run (no-op on the writer thread itself)."""
        if not self._pending or threading.current_thread() is self._thread:
            return
        with self._changed:
            self._flushing += 1
            self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: not self._pending)
            finally:
                self._flushing -= 1

    def take_errors(self) -> list[BaseException]:
        """Errors that escaped actions since the last call (without waiting)."""
        with self._changed:
            errors, self._errors = self._errors, []
        return errors

    def _next_batch(self) -> list[tuple[Action, journals.Journal | None]]:
        with self._changed:
            self._changed.wait_for(lambda: self._queued)
            deadline = time.monotonic() + self.batch_seconds
            while not self._flushing and len(self._queued) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            batch = list(self._queued)
            self._queued.clear()
            return batch

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            errors = []
            for action, journal in batch:
                try:
                    done = action()
                except BaseException as e:
                    errors.append(e)
                    done = False
                if journal is not None and done is not True:
                    journal.keep = True
            with self._changed:
                self._errors += errors
                self._pending -= len(batch)
                if not self._queued:
                    for journal in self._journals:
                        journal.clear()
                    self._journals.clear()
                if not self._pending:
                    self._changed.notify_all()


WRITER = WriteBehind()
# A forked child has no writer thread and must not wait for the parent's queue.
os.register_at_fork(after_in_child=WRITER._reset)


@atexit.register
def _at_exit() -> None:
    WRITER.flush()
    journals.close_all()


submit = WRITER.submit
submit_durable = WRITER.submit_durable
flush = WRITER.flush
take_errors = WRITER.take_errors
