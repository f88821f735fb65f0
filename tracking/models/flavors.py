"""The flavor registry: every model flavor Trackflow knows, found in one place.

A flavor is a module with

    FLAVOR_NAME               its key under ``flavors`` in the MLmodel file
    PYFUNC_LOADER_MODULES     the ``python_function`` loader_module values it loads
                              (MLflow's name first: the one its save_model writes)
    load_pyfunc(path, model)  the model folder at local `path` (MLmodel content `model`) as an
                              object with ``predict(data, params)`` and ``get_raw_model()``
    save_model, log_model, load_model

and, when it autologs a library, ``AUTOLOG_LIBRARY`` (the library's top-level module) and
``scoped_autolog(run_id)`` (a context manager turning autologging on for that run in this
context). Trackflow's own flavors are listed in BUILTIN; other packages add theirs through the
``trackflow.flavors`` entry-point group (name = module). The pyfunc loader, the scoring server
and ``@task(autolog=True)`` find flavors only here.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import threading
import warnings
from collections.abc import Iterator
from importlib import metadata
from types import ModuleType
from typing import Any

from tracking.errors import InvalidParameterError

__all__ = [
    "ENTRY_POINT_GROUP",
    "MethodPredictor",
    "MissingExtraError",
    "autolog_libraries",
    "flavor_modules",
    "for_loader_module",
    "require",
    "scoped_autolog",
]

ENTRY_POINT_GROUP = "trackflow.flavors"
BUILTIN = {
    "sklearn": "tracking.models.sklearn",
    "lightgbm": "tracking.models.lightgbm",
    "xgboost": "tracking.models.xgboost",
    "python_function": "tracking.models.pyfunc.model",
}

_lock = threading.Lock()
_modules: dict[str, ModuleType] | None = None


class FlavorWarning(UserWarning):
    """A flavor registered through an entry point could not be used."""


class MissingExtraError(ImportError):
    """A flavor's library is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise MissingExtraError naming ``trackflow[<extra>]``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{extra} models need the {module.partition('.')[0]} package, which is not "
            f"installed: pip install 'trackflow[{extra}]' ({e})"
        ) from None


def flavor_modules() -> dict[str, ModuleType]:
    """Flavor name -> module: Trackflow's, then those registered through entry points."""
    global _modules
    with _lock:
        if _modules is None:
            found = {name: importlib.import_module(module) for name, module in BUILTIN.items()}
            for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
                if entry.name in found:
                    continue
                try:
                    module = entry.load()
                    _check(entry.name, module)
                except Exception as e:
                    warnings.warn(
                        f"Flavor {entry.name!r} from entry point {entry.value!r} is not used: {e}",
                        FlavorWarning,
                        stacklevel=2,
                    )
                    continue
                found[entry.name] = module
            _modules = found
        return dict(_modules)


def reset() -> None:
    """Forget the modules found so far (entry points are read again on next use)."""
    global _modules
    with _lock:
        _modules = None


def _check(name: str, module: Any) -> None:
    missing = [
        attr
        for attr in ("FLAVOR_NAME", "PYFUNC_LOADER_MODULES", "load_pyfunc")
        if not hasattr(module, attr)
    ]
    if missing:
        raise InvalidParameterError(f"module {name!r} lacks {', '.join(missing)}")


def for_loader_module(loader_module: Any, uri: str) -> ModuleType:
    """The flavor loading pyfunc models whose MLmodel names `loader_module`."""
    known: list[str] = []
    for module in flavor_modules().values():
        if loader_module in module.PYFUNC_LOADER_MODULES:
            return module
        known += module.PYFUNC_LOADER_MODULES
    raise InvalidParameterError(
        f"The model at {uri} needs loader module {loader_module!r}; Trackflow can load: "
        f"{', '.join(sorted(known))}"
    )


def autolog_libraries() -> dict[str, str]:
    """Library module -> flavor name, for every flavor that autologs a library."""
    return {
        module.AUTOLOG_LIBRARY: name
        for name, module in flavor_modules().items()
        if getattr(module, "AUTOLOG_LIBRARY", None)
    }


@contextlib.contextmanager
def scoped_autolog(run_id: str) -> Iterator[None]:
    """Autologging of every flavor whose library is installed, into `run_id`, in this context
    only (the ``autolog=True`` option of ``tasks.task`` and ``flows.flow``)."""
    modules = flavor_modules()
    with contextlib.ExitStack() as stack:
        for library, name in autolog_libraries().items():
            if importlib.util.find_spec(library) is not None:
                stack.enter_context(modules[name].scoped_autolog(run_id))
        yield


class MethodPredictor:
    """A flavor's pyfunc for a model object: ``predict`` calls one of its methods."""

    def __init__(self, raw_model: Any, predict_fn: str = "predict") -> None:
        self.raw_model = raw_model
        self.predict_fn = predict_fn

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return getattr(self.raw_model, self.predict_fn)(data)

    def get_raw_model(self) -> Any:
        return self.raw_model
