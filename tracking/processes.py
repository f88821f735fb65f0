"""Which process opened a run, and whether that process is still alive.

Every run the Prefect decorators open carries the tag `trackflow.process`: the host, pid and
start time of the process that opened it. A RUNNING run whose process is gone on this host was
left behind by a crash; `trackflow runs reconcile` ends such runs, and the UI and `runs list`
show them as "RUNNING (process gone)" until then. The start time tells a reused pid apart.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import psutil

PROCESS_TAG = "trackflow.process"
_START_TOLERANCE_S = 1.0  # create_time is derived from clock ticks since boot


class Liveness(Enum):
    ALIVE = "alive"
    GONE = "gone"
    UNKNOWN = "unknown"  # another host, or no process tag


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    started: float  # seconds since the epoch

    def tag_value(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "started": self.started})

    @classmethod
    def parse(cls, value: str | None) -> ProcessId | None:
        """The process of a `trackflow.process` tag value; None when absent or malformed."""
        if not value:
            return None
        try:
            data = json.loads(value)
            return cls(str(data["host"]), int(data["pid"]), float(data["started"]))
        except (ValueError, KeyError, TypeError):
            return None


@lru_cache(maxsize=1)
def hostname() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _current(pid: int) -> ProcessId:
    return ProcessId(hostname(), pid, round(psutil.Process(pid).create_time(), 2))


def current() -> ProcessId:
    """This process (recomputed in a forked child, whose pid differs)."""
    return _current(os.getpid())


def liveness(process: ProcessId | None) -> Liveness:
    """ALIVE or GONE for a process of this host; UNKNOWN for other hosts or no process."""
    if process is None or process.host != hostname():
        return Liveness.UNKNOWN
    try:
        found = psutil.Process(process.pid)
        started = found.create_time()
        if found.status() == psutil.STATUS_ZOMBIE:  # dead, not yet reaped by its parent
            return Liveness.GONE
    except psutil.NoSuchProcess:
        return Liveness.GONE
    except psutil.Error:
        return Liveness.UNKNOWN
    if abs(started - process.started) > _START_TOLERANCE_S:
        return Liveness.GONE  # the pid was reused by a later process
    return Liveness.ALIVE


def run_liveness(tags: dict[str, str]) -> Liveness:
    """Liveness of the process recorded in a run's tags."""
    return liveness(ProcessId.parse(tags.get(PROCESS_TAG)))


def shown_status(status: str, tags: dict[str, str]) -> str:
    """A run's status for people: "RUNNING (process gone)" for a run left behind by a dead
    process of this host, until `trackflow runs reconcile` ends it."""
    if status == "RUNNING" and run_liveness(tags) is Liveness.GONE:
        return "RUNNING (process gone)"
    return status
