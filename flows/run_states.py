"""Final states of flow and task runs from the Prefect API, for `trackflow runs reconcile`.

Registered in the `trackflow.run_states` entry-point group (pyproject.toml), so the tracking
layer asks Prefect without importing it. Only asked when an API URL is configured: without
one, Prefect would start a temporary server that knows no earlier runs.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tracking import system_tags
from tracking.entities import Run, RunStatus

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

_FINAL = {
    "COMPLETED": RunStatus.FINISHED.name,
    "FAILED": RunStatus.FAILED.name,
    "CRASHED": RunStatus.KILLED.name,
    "CANCELLED": RunStatus.KILLED.name,
}
_CHUNK = 200


def prefect_states(runs: list[Run]) -> dict[str, tuple[str, str]]:
    """{run id: (final status, reason)} for the runs whose Prefect run is in a final state."""
    from prefect.settings import get_current_settings

    if not runs or not get_current_settings().api.url:
        return {}
    tasks = {
        r.data.tags[system_tags.PREFECT_TASK_RUN_ID]: r.info.run_id
        for r in runs
        if system_tags.PREFECT_TASK_RUN_ID in r.data.tags
    }
    flows = {
        r.data.tags[system_tags.PREFECT_FLOW_RUN_ID]: r.info.run_id
        for r in runs
        if system_tags.PREFECT_FLOW_RUN_ID in r.data.tags
        and system_tags.PREFECT_TASK_RUN_ID not in r.data.tags
    }
    found: dict[str, tuple[str, str]] = {}
    try:
        for prefect_id, state in _states(tasks, flows):
            if state is None:
                continue
            status = _FINAL.get(state.type.value)
            if status is not None:
                run_id = tasks.get(prefect_id) or flows[prefect_id]
                found[run_id] = (status, f"Prefect reports {state.name}")
    except Exception as e:  # API unreachable: reconcile goes by processes alone
        warnings.warn(f"Prefect API not asked ({type(e).__name__}: {e})", stacklevel=2)
    return found


def _states(tasks: dict[str, str], flows: dict[str, str]) -> Iterable[tuple[str, State | None]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterId,
    )

    with get_client(sync_client=True) as api:
        task_ids = [uuid.UUID(i) for i in tasks]
        for start in range(0, len(task_ids), _CHUNK):
            ids = task_ids[start : start + _CHUNK]
            page = api.read_task_runs(task_run_filter=TaskRunFilter(id=TaskRunFilterId(any_=ids)))
            yield from ((str(t.id), t.state) for t in page)
        flow_ids = [uuid.UUID(i) for i in flows]
        for start in range(0, len(flow_ids), _CHUNK):
            ids = flow_ids[start : start + _CHUNK]
            flow_page = api.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
            )
            yield from ((str(f.id), f.state) for f in flow_page)
