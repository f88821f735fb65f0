"""Trackflow's web UI: experiments, runs (as flow -> task trees), charts, artifacts, compare.

    trackflow ui --backend-store-uri sqlite:///mlflow.db        # http://127.0.0.1:5000

`create_ui_app(uri)` builds the standalone app and `create_ui_router(uri)` the routes alone, to
mount inside another FastAPI app. FastAPI loads only when one of them is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracking.servers.ui.app import create_ui_app, create_ui_router

__all__ = ["create_ui_app", "create_ui_router"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tracking.servers.ui import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
