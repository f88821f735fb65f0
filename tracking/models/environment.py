"""A model's Python environment files, as MLflow writes them.

requirements.txt   pinned pip requirements
python_env.yaml    {python, build_dependencies, dependencies: [-r requirements.txt]}
conda.yaml         {channels, dependencies: [python=..., pip<=..., {pip: [...]}], name}
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from typing import Any

import yaml

from tracking.errors import InvalidParameterError

__all__ = ["installed", "pin", "requirements_for", "write_environment"]

Requirements = Iterable[str] | str | os.PathLike[str] | None


def installed(package: str) -> bool:
    """Whether the distribution `package` is installed."""
    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


@cache
def _distributions_of(module: str) -> tuple[str, ...]:
    return tuple(metadata.packages_distributions().get(module, ()))


def pin(package: str, op: str = "==") -> str:
    """`package==<installed version>`; for an import name the distribution that provides it
    (``xgboost`` -> ``xgboost-cpu==3.2.0`` when that wheel is installed); bare when unknown."""
    if installed(package):
        return f"{package}{op}{metadata.version(package)}"
    for dist in _distributions_of(package):
        return f"{dist}{op}{metadata.version(dist)}"
    return package


def requirements_for(
    packages: Iterable[str], pip_requirements: Requirements, extra_pip_requirements: Requirements
) -> list[str]:
    """`pip_requirements` if given, else pins of the installed `packages` plus the extras."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidParameterError(
            "Pass only one of pip_requirements (replaces the inferred list) or "
            "extra_pip_requirements (adds to it)"
        )
    if pip_requirements is not None:
        return _read(pip_requirements)
    pins = [pin(p) for p in packages if installed(p) or _distributions_of(p)]
    return list(dict.fromkeys(pins + _read(extra_pip_requirements)))


def _read(requirements: Requirements) -> list[str]:
    """A list of requirement strings, or the lines of a requirements file."""
    if requirements is None:
        return []
    if isinstance(requirements, str | os.PathLike):
        with open(requirements, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        lines = [str(r) for r in requirements]
    stripped = (line.strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def write_environment(folder: str, requirements: list[str]) -> dict[str, str]:
    """Write the three environment files; return the pyfunc flavor's ``env`` entry."""
    python_version = platform.python_version()
    _write(folder, "requirements.txt", "".join(f"{r}\n" for r in requirements))
    python_env = {
        "python": python_version,
        "build_dependencies": [pin("pip"), pin("setuptools"), pin("wheel")],
        "dependencies": ["-r requirements.txt"],
    }
    _write(folder, "python_env.yaml", dump_yaml(python_env))
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python_version}", pin("pip", "<="), {"pip": requirements}],
        "name": "mlflow-env",
    }
    _write(folder, "conda.yaml", dump_yaml(conda))
    return {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def dump_yaml(data: dict[str, Any], sort_keys: bool = False) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=sort_keys)


def _write(folder: str, name: str, text: str) -> None:
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        f.write(text)
