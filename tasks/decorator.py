"""What `flows.flow` and `tasks.task` share: Prefect's options, bound the way Prefect binds them.

Both decorators take Prefect's own keyword arguments (checked against the signature of Prefect's
decorator, so a Prefect upgrade that adds an option needs no change here) plus Trackflow's
tracking options; `inspect.signature` of our decorator is Prefect's, unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

CAPTURE_OPTIONS = (
    "log_params",
    "exclude_params",
    "log_metrics",
    "log_result",
    "run_tags",
    "on_tracking_error",
    "autolog",
)


def split_options(
    what: str,
    signature: inspect.Signature,
    options: Mapping[str, Any],
    tracking: tuple[str, ...],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tracking options given, every Prefect option with Prefect's defaults applied).

    Raises TypeError naming an option that neither Prefect's decorator nor ours takes.
    """
    fn_param, *prefect_params = signature.parameters
    ours = {k: v for k, v in options.items() if k in tracking}
    theirs = {k: v for k, v in options.items() if k not in tracking}
    unknown = sorted(set(theirs) - set(prefect_params))
    if unknown:
        raise TypeError(
            f"{what}() got an unexpected keyword argument {unknown[0]!r}: it takes Prefect's "
            f"options ({', '.join(prefect_params)}) and Trackflow's ({', '.join(tracking)})"
        )
    bound = signature.bind(None, **theirs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments[fn_param]
    return ours, arguments


def logged_arguments(prefect_obj: Any, parameters: Mapping[str, Any]) -> Mapping[str, Any]:
    """The arguments of a flow or task run to log as params: not a classmethod's class
    (Prefect passes it as the first parameter)."""
    if getattr(prefect_obj, "isclassmethod", False) and parameters:
        receiver = next(iter(parameters))
        return {k: v for k, v in parameters.items() if k != receiver}
    return parameters
