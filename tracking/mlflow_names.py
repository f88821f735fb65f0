"""MLflow's submodule names (`mlflow.sklearn`, `mlflow.pyfunc`, ...) on `tracking`, loaded lazily.

Flavors live in `tracking.models`; `import tracking.sklearn` and `tracking.sklearn` give the very
module `tracking.models.sklearn`, so MLflow code runs with `import tracking as mlflow`. Nothing
is imported until a name is first used: `import tracking` stays light.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

#: MLflow's name under `tracking.` -> the module that holds it here
ALIASES = {
    "sklearn": "tracking.models.sklearn",
    "pyfunc": "tracking.models.pyfunc",
    "lightgbm": "tracking.models.lightgbm",
    "xgboost": "tracking.models.xgboost",
}
#: subpackages reachable as attributes of `tracking` without an import statement
LAZY = {"models", "artifacts", "registry", "projects", "data", *ALIASES}


class AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `tracking.<alias>` imports to the module the alias names."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.removeprefix("tracking.") in ALIASES and fullname.startswith("tracking."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(ALIASES[spec.name.removeprefix("tracking.")])

    def exec_module(self, module: ModuleType) -> None:
        """The target module ran when it was imported."""


def install() -> None:
    if not any(isinstance(finder, AliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())


def submodule(name: str) -> ModuleType:
    """`tracking.<name>` for a lazy name; AttributeError for anything else."""
    if name not in LAZY:
        raise AttributeError(f"module 'tracking' has no attribute {name!r}")
    return importlib.import_module(f"tracking.{name}")
