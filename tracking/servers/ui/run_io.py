"""What the run page shows of a run's MLflow 3 inputs and outputs: the datasets it used and the
LoggedModels it produced (MLflow 3 clients log models as LoggedModels, not run artifacts)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tracking.client import TrackingClient
from tracking.entities import LoggedModel, Run
from tracking.errors import TrackingError
from tracking.logged_models import DATASET_CONTEXT_TAG

MAX_MODELS = 100


@dataclass(frozen=True)
class DatasetRow:
    name: str
    digest: str
    context: str
    source_type: str
    source: str
    profile: str
    columns: str


def _summary(text: str | None, limit: int = 120) -> str:
    """A JSON field for display: its object flattened to `key: value` pairs, cut short."""
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, dict):
        shown = ", ".join(f"{k}: {v}" for k, v in value.items())
    else:
        shown = str(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _columns(schema: str | None) -> str:
    """The column names of MLflow's colspec schema ("a, b, c"), else its tensor dtype."""
    try:
        value = json.loads(schema or "null")
    except ValueError:
        return ""
    if isinstance(value, dict) and isinstance(value.get("mlflow_colspec"), list):
        names = [str(c.get("name", "")) for c in value["mlflow_colspec"] if isinstance(c, dict)]
        return _summary(json.dumps(", ".join(names)))
    if isinstance(value, dict) and "mlflow_tensorspec" in value:
        return "tensor"
    return ""


def dataset_rows(run: Run) -> list[DatasetRow]:
    return [
        DatasetRow(
            name=item.dataset.name,
            digest=item.dataset.digest,
            context=item.tags.get(DATASET_CONTEXT_TAG, ""),
            source_type=item.dataset.source_type,
            source=_summary(item.dataset.source),
            profile=_summary(item.dataset.profile),
            columns=_columns(item.dataset.schema),
        )
        for item in run.inputs.dataset_inputs
    ]


def logged_models(client: TrackingClient, run: Run) -> list[LoggedModel]:
    """The LoggedModels the run produced: those naming it as source run, and its outputs."""
    run_id = run.info.run_id
    try:
        found = {
            m.model_id: m
            for m in client.search_logged_models(
                [run.info.experiment_id], f"source_run_id = '{run_id}'", max_results=MAX_MODELS
            )
        }
    except TrackingError:
        found = {}
    for output in run.outputs.model_outputs:
        if output.model_id not in found and len(found) < MAX_MODELS:
            try:
                found[output.model_id] = client.get_logged_model(output.model_id)
            except TrackingError:
                continue
    return sorted(found.values(), key=lambda m: (m.creation_timestamp, m.model_id))
