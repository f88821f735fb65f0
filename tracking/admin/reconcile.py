"""`trackflow runs reconcile`: end the runs that processes which died left RUNNING.

A RUNNING run is ended when
- the orchestrator that ran it reports a final state (plugins in the `trackflow.run_states`
  entry-point group; Trackflow's own asks the Prefect API for the flow or task run): Completed
  -> FINISHED, Failed -> FAILED, Crashed or Cancelled -> KILLED; or
- the process recorded in its `trackflow.process` tag is gone from this host -> KILLED.
A run whose process is alive is never touched. The end time is the last time the run was
written. Journals of dead processes are replayed first (opening the store does that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points

from tracking import processes
from tracking.entities import Run, RunStatus, ViewType
from tracking.stores.base import TrackingStore, all_pages

STATES_GROUP = "trackflow.run_states"

#: runs -> {run id: final status name (FINISHED, FAILED, KILLED) and where it comes from}
StateSource = Callable[[list[Run]], dict[str, tuple[str, str]]]


@dataclass(frozen=True)
class Decision:
    """What reconcile does with one RUNNING run (new_status None: leave it)."""

    run: Run
    new_status: str | None
    reason: str
    end_time: int | None = None


def running_runs(store: TrackingStore, experiment_ids: list[str]) -> Iterator[Run]:
    """Every RUNNING run (not deleted) of these experiments."""
    status = f"attributes.status = '{RunStatus.RUNNING.name}'"
    return all_pages(
        lambda token: store.search_runs(
            experiment_ids, status, ViewType.ACTIVE_ONLY, 1000, None, token
        )
    )


def state_sources() -> list[tuple[str, StateSource]]:
    """The installed orchestrator plugins that report final run states."""
    return [(ep.name, ep.load()) for ep in entry_points(group=STATES_GROUP)]


def decide(
    store: TrackingStore, runs: Iterable[Run], sources: list[tuple[str, StateSource]]
) -> list[Decision]:
    """A decision per run; sources are asked only about runs whose process is not alive."""
    candidates: list[Run] = []
    decisions: list[Decision] = []
    for run in runs:
        if processes.run_liveness(run.data.tags) is processes.Liveness.ALIVE:
            decisions.append(Decision(run, None, "its process is alive"))
        else:
            candidates.append(run)
    reported: dict[str, tuple[str, str]] = {}
    for _, source in sources:
        reported.update(source([r for r in candidates if r.info.run_id not in reported]))
    for run in candidates:
        decisions.append(_decide(store, run, reported.get(run.info.run_id)))
    return decisions


def _decide(store: TrackingStore, run: Run, reported: tuple[str, str] | None) -> Decision:
    if reported is not None:
        status, why = reported
        return Decision(run, status, why, store.last_write_time(run.info.run_id))
    process = processes.ProcessId.parse(run.data.tags.get(processes.PROCESS_TAG))
    state = processes.liveness(process)
    if state is processes.Liveness.GONE:
        assert process is not None
        why = f"process {process.pid} on {process.host} is gone"
        return Decision(run, RunStatus.KILLED.name, why, store.last_write_time(run.info.run_id))
    if process is None:
        return Decision(run, None, "no process recorded and no orchestrator state")
    return Decision(run, None, f"process {process.pid} on host {process.host}: cannot tell")


def apply(store: TrackingStore, decisions: Iterable[Decision]) -> None:
    """End the runs the decisions say to end."""
    for d in decisions:
        if d.new_status is not None:
            store.update_run_info(d.run.info.run_id, d.new_status, d.end_time)
