"""Importing the scripts in examples/ as modules, for the tests that run their flows."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def import_example(name: str) -> ModuleType:
    """examples/<name>.py as the module `name`, without keeping the environment defaults it
    sets at import (Prefect settings for a temporary API)."""
    before = set(os.environ)
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        for variable in set(os.environ) - before:
            del os.environ[variable]
    return module
