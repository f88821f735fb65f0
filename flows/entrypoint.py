"""A Prefect flow entry point run as a project's run: `python -m flows.entrypoint JOB.json`.

Started by tracking.projects in the project's folder and environment. It loads the flow from
`path/file.py:flow_function`, converts and validates the parameters with the flow's own
signature (as Prefect does for a deployment's), creates the flow run, creates its run (the
flow run's id, the project's tags, the chosen experiment), then runs the flow: the decorator
finds its run and resumes it, so the flow run is the project's run and its task runs nest
under it as usual. The run id (or a clear error) goes to the job's result file.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
from typing import Any

from flows import _flow_run_tags
from tracking import fluent, system_tags

USAGE_ERROR = 2
TEXT = (str, "str")  # a `str` annotation, also as a string (from __future__ import annotations)


def main(argv: list[str]) -> int:
    with open(argv[0]) as f:
        job = json.load(f)
    try:
        flow_obj = load_flow(job["entry_point"])
        given = job["parameters"]
        if job.get("ignore_unknown"):  # a reproduction: params the body logged are not inputs
            given = known(flow_obj, given)
        parameters = validate(flow_obj, job["entry_point"], given)
    except EntryPointError as e:
        _write(job["result"], {"error": str(e)})
        return USAGE_ERROR
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    with get_client(sync_client=True) as api:
        flow_run = api.create_flow_run(
            flow_obj, name=job["run_name"], parameters=flow_obj.serialize_parameters(parameters)
        )
    client = fluent.current_client()
    experiment_id = job["experiment_id"]
    if experiment_id is None:
        experiment_id = client.store.get_or_create_experiment(flow_obj.name).experiment_id
    tags = {
        **_flow_run_tags(flow_obj, flow_run),
        **job["tags"],
        system_tags.RUN_NAME: flow_run.name,
    }
    client.create_run(experiment_id, tags=tags, run_name=flow_run.name, run_id=flow_run.id.hex)
    _write(job["result"], {"run_id": flow_run.id.hex})
    state = run_flow(flow_obj, flow_run=flow_run, parameters=parameters, return_type="state")
    return 0 if state.is_completed() else 1


class EntryPointError(Exception):
    """The entry point or its parameters cannot be used as given."""


def load_flow(entry_point: str) -> Any:
    """The Prefect flow `function` of `path/file.py:function`, the project folder importable."""
    from prefect import Flow

    path, _, name = entry_point.partition(":")
    # As Prefect loads a deployment's entry point: the script's folder, then the working dir.
    sys.path[:0] = [os.path.dirname(os.path.abspath(path)), os.getcwd()]
    module_name = os.path.splitext(path)[0].replace(os.sep, ".")
    spec = importlib.util.spec_from_file_location(module_name, os.path.abspath(path))
    if spec is None or spec.loader is None:
        raise EntryPointError(f"Entry point {entry_point!r}: {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise EntryPointError(
            f"Entry point {entry_point!r}: importing {path} failed: {type(e).__name__}: {e}"
        ) from e
    flow_obj = getattr(module, name, None)
    if not isinstance(flow_obj, Flow):
        flows = sorted(k for k, v in vars(module).items() if isinstance(v, Flow))
        found = "not defined" if flow_obj is None else f"a {type(flow_obj).__name__}"
        raise EntryPointError(
            f"Entry point {entry_point!r}: {name} is {found} in {path}, not a Prefect flow "
            f"(flows there: {', '.join(flows) or 'none'})"
        )
    return flow_obj


def validate(flow_obj: Any, entry_point: str, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters converted by the flow's signature; errors name each parameter and the
    type it expects. Text values are read as JSON first (as `prefect deployment run -p`
    does), except for parameters annotated `str`."""
    from prefect.exceptions import ParameterTypeError, SignatureMismatchError

    signature = inspect.signature(flow_obj.fn)
    unknown = sorted(set(_nest(given, signature)) - set(signature.parameters))
    if unknown:
        raise EntryPointError(
            f"Flow {entry_point!r} has no parameter {', '.join(map(repr, unknown))}; its "
            f"parameters: {_describe(signature)}"
        )
    values = {
        k: _decode(v)
        if isinstance(v, str) and signature.parameters[k].annotation not in TEXT
        else v
        for k, v in _nest(given, signature).items()
    }
    try:
        return flow_obj.validate_parameters(values)
    except (ParameterTypeError, SignatureMismatchError) as e:
        problems = "; ".join(line.strip(" -") for line in str(e).splitlines()[1:] if line.strip())
        raise EntryPointError(
            f"Invalid parameters for flow {entry_point!r}: {problems or e}. Its parameters: "
            f"{_describe(signature)}"
        ) from None


def known(flow_obj: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The entries of `given` that are parameters of the flow (dotted keys of one too)."""
    names = inspect.signature(flow_obj.fn).parameters
    return {k: v for k, v in given.items() if k.partition(".")[0] in names}


def _nest(given: dict[str, Any], signature: inspect.Signature) -> dict[str, Any]:
    """Dotted keys `cfg.lr` of a parameter `cfg` (a mapping logged flattened) nested back."""
    nested: dict[str, Any] = {}
    for key, value in given.items():
        head, _, rest = key.partition(".")
        if key in signature.parameters or not rest or head not in signature.parameters:
            nested[key] = value
            continue
        target = nested.setdefault(head, {})
        *path, last = rest.split(".")
        for part in path:
            target = target.setdefault(part, {})
        target[last] = _decode(value) if isinstance(value, str) else value
    return nested


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _describe(signature: inspect.Signature) -> str:
    """`name: type (required)` / `name: type = default` for each parameter."""
    parts = []
    for p in signature.parameters.values():
        kind = "" if p.annotation is inspect.Parameter.empty else f": {_type_name(p.annotation)}"
        default = " (required)" if p.default is inspect.Parameter.empty else f" = {p.default!r}"
        parts.append(f"{p.name}{kind}{default}")
    return ", ".join(parts) or "none"


def _type_name(annotation: Any) -> str:
    return (
        annotation
        if isinstance(annotation, str)
        else getattr(annotation, "__name__", str(annotation))
    )


def _write(path: str, content: dict[str, Any]) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(content, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
