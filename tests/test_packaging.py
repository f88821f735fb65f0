"""What `pip install trackflow` promises: declared dependencies, a light `import tracking`,
MLflow's submodule names, current releases of the storage libraries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("tracking", "tasks", "flows")


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0].split("[")[0]
        for stop in "<>=!~ ":
            name = name.split(stop)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def _imported_top_level_modules() -> set[str]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def test_every_imported_library_is_declared() -> None:
    """No import that only works because Prefect (or MLflow) happens to bring the library."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        if name != "dev":
            declared |= _requirement_names(extra)
    distributions = metadata.packages_distributions()
    missing = {
        module: distributions.get(module, ["?"])
        for module in _imported_top_level_modules()
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [])} & declared
    }
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"


def test_import_tracking_stays_light_and_serves_mlflow_names() -> None:
    script = """
import json, sys
import tracking
heavy = sorted(m for m in ("prefect", "sklearn", "pandas", "sqlalchemy", "numpy", "fastapi")
               if m in sys.modules)
print(json.dumps(heavy))
assert callable(tracking.pyfunc.load_model) and callable(tracking.sklearn.log_model)
import tracking.sklearn
assert tracking.sklearn is sys.modules["tracking.models.sklearn"]
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert json.loads(out) == []


def test_unknown_attribute_of_tracking_is_an_attribute_error() -> None:
    import tracking

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tracking.nope  # noqa: B018


def test_storage_libraries_are_current_releases() -> None:
    """s3fs 0.4 (2020, synchronous boto3) once resolved in the dev install: the S3 tests must
    test what users run."""
    assert int(metadata.version("s3fs").split(".")[0]) >= 2024
    assert int(metadata.version("fsspec").split(".")[0]) >= 2024
