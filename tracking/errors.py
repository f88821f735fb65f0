"""One error hierarchy carrying MLflow's error codes."""

from __future__ import annotations

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID_STATE = "INVALID_STATE"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL_ERROR = "INTERNAL_ERROR"

HTTP_STATUS = {
    INVALID_PARAMETER_VALUE: 400,
    BAD_REQUEST: 400,
    INVALID_STATE: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    RESOURCE_ALREADY_EXISTS: 400,
    INTERNAL_ERROR: 500,
}


class TrackingError(Exception):
    """Base of every error Trackflow raises on purpose; `error_code` is MLflow's code."""

    error_code = INTERNAL_ERROR

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code


class InvalidParameterError(TrackingError, ValueError):
    """A key, value or argument breaks the documented rules."""

    error_code = INVALID_PARAMETER_VALUE


class NotFoundError(TrackingError, LookupError):
    """The experiment, run or artifact does not exist."""

    error_code = RESOURCE_DOES_NOT_EXIST


class AlreadyExistsError(TrackingError):
    """An experiment (or other named resource) of that name exists already."""

    error_code = RESOURCE_ALREADY_EXISTS


class InvalidStateError(TrackingError):
    """The resource is in a state that forbids the call (e.g. logging to a deleted run)."""

    error_code = INVALID_STATE


class StorageError(TrackingError):
    """The store or artifact location could not be reached or written."""


class UnsupportedSchemaError(StorageError):
    """A database at a schema Trackflow does not read or write (a newer MLflow's, say)."""


class RegistryUnavailableError(TrackingError, NotImplementedError):
    """The tracking URI's backend has no model registry in Trackflow."""


MlflowException = TrackingError
