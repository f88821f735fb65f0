"""pytest plugin: Trackflow's `flow` and `task` in place of Prefect's, before any test imports.

Loaded with `-p swap_plugin` (this folder on PYTHONPATH) by tests/peers/prefect_suite.py. It
replaces `prefect.flow`, `prefect.task`, `prefect.flows.flow`, `prefect.tasks.task` and the
`prefect.main` names, so `from prefect import flow` in Prefect's own tests gets ours. Our
modules are imported first, so they keep Prefect's originals for themselves.
"""

from __future__ import annotations

import prefect
import prefect.flows
import prefect.main
import prefect.tasks

from flows import flow
from tasks import task

for _module in (prefect, prefect.main, prefect.flows):
    _module.flow = flow  # type: ignore[attr-defined]
for _module in (prefect, prefect.main, prefect.tasks):
    _module.task = task  # type: ignore[attr-defined]
