"""What Trackflow keeps per process, in one place, and `reset()` to forget it in tests.

Per process (`STATE`): the URIs set in code (`set_tracking_uri`, `set_registry_uri`), the
experiment chosen by `set_experiment`, and the caches of open stores and clients, one per URI.
Per context (thread or asyncio task, like MLflow's): the runs `start_run` opened and the last
one ended. The queue of writes waiting for the background writer is `tracking.write_behind`'s
(one thread per process); `reset()` waits for it.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracking.client import TrackingClient
    from tracking.fluent import ActiveRun
    from tracking.registry.base import RegistryStore
    from tracking.stores.base import TrackingStore


@dataclass
class ProcessState:
    """Everything this process remembers between calls."""

    #: set_tracking_uri's value (None: $MLFLOW_TRACKING_URI or ./mlruns)
    tracking_uri: str | None = None
    #: set_registry_uri's value (None: $MLFLOW_REGISTRY_URI or the tracking URI)
    registry_uri: str | None = None
    #: set_experiment's choice: (tracking URI, experiment id)
    active_experiment: tuple[str, str] | None = None
    #: open tracking stores by (URI, artifact root); registry stores by URI; fluent's clients
    stores: dict[tuple[str, str | None], TrackingStore] = field(default_factory=dict)
    registry_stores: dict[str, RegistryStore] = field(default_factory=dict)
    clients: dict[str, TrackingClient] = field(default_factory=dict)
    #: held while a cache entry is created (reentrant: a registry store opens a tracking store)
    lock: threading.RLock = field(default_factory=threading.RLock)


STATE = ProcessState()

#: The runs start_run opened in this context, innermost last.
active_runs: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "trackflow_active_runs", default=()
)
#: The id of the last run ended in this context (tracking.last_active_run).
last_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "trackflow_last_run_id", default=None
)


def reset() -> None:
    """Back to a fresh process's choices (for tests): queued writes are performed, then the
    URIs set in code, the active experiment and this context's runs are forgotten (environment
    variables, such as the MLFLOW_TRACKING_URI set_tracking_uri exports, stay). Open stores
    and clients stay cached: they are keyed by URI, so the next user of a URI gets the same
    store, as it would in one process."""
    from tracking import write_behind

    write_behind.flush()
    STATE.tracking_uri = STATE.registry_uri = STATE.active_experiment = None
    active_runs.set(())
    last_run_id.set(None)
