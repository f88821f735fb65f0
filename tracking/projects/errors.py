"""The error a project run raises for anything the user can fix."""

from __future__ import annotations

from tracking.errors import INVALID_PARAMETER_VALUE, TrackingError


class ExecutionError(TrackingError):
    """The project, entry point, parameters, source or environment cannot be run as given."""

    error_code = INVALID_PARAMETER_VALUE


ExecutionException = ExecutionError  # MLflow's name
