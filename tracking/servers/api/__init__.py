"""Trackflow's tracking server: MLflow's REST API and artifact proxy over a Trackflow store.

`create_app(...)` builds the ASGI app; `app_from_env()` builds it from TRACKFLOW_SERVER_*
variables (for ``uvicorn --factory``); ``trackflow server`` (tracking/servers/api/cli.py) runs it.
FastAPI and uvicorn are imported only here, never by ``import tracking``.
"""

from tracking.servers.api.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
