"""Store writes performed later, in order, by one background thread per process.

The Prefect decorators queue a nested task run's own bookkeeping here (create the run, its
params, its metrics, end it) so the task's thread does not wait on the store. Every access
through a `TrackingClient` (so the whole fluent API) and `tracking.active_run()` first waits
until the queue is empty, so code in this process never sees a queued write missing; a flow
run waits for the queue before it ends, and the interpreter waits for it at exit.

An action that fails must handle its own error (the decorators warn or record a
`TrackingFailedError`); whatever escapes is kept for `take_errors()`.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable

Action = Callable[[], None]


class WriteBehind:
    """A FIFO queue of store writes and the daemon thread that performs them."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[Action] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = []

    def submit(self, action: Action) -> None:
        """Queue `action`; it runs after every action queued before it."""
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="trackflow-write-behind", daemon=True
                )
                self._thread.start()
        self._queue.put(action)

    def flush(self) -> None:
        """Block until every queued action has run (no-op on the writer thread itself)."""
        if not self._pending or threading.current_thread() is self._thread:
            return
        with self._idle:
            self._idle.wait_for(lambda: not self._pending)

    def take_errors(self) -> list[BaseException]:
        """Errors that escaped actions since the last call (without waiting)."""
        with self._idle:
            errors, self._errors = self._errors, []
        return errors

    def _work(self) -> None:
        while True:
            action = self._queue.get()
            try:
                action()
            except BaseException as e:
                with self._idle:
                    self._errors.append(e)
            finally:
                with self._idle:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.notify_all()


WRITER = WriteBehind()
# A forked child has no writer thread and must not wait for the parent's queue.
os.register_at_fork(after_in_child=WRITER._reset)
atexit.register(WRITER.flush)

submit = WRITER.submit
flush = WRITER.flush
take_errors = WRITER.take_errors
