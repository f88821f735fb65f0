"""The Python environment a project runs in: the current one (`local`), or a virtual
environment built with the standard library's venv + pip (`virtualenv`) or with uv (`uv`).

Built environments are cached under $TRACKFLOW_ENV_ROOT (default ~/.cache/trackflow/envs),
named by a hash of what they contain, and reused. Trackflow is linked into each one from the
very folders this process imports it from, as an editable install does, with the packages
`import tracking` needs (and Prefect, for flow entry points) at the versions installed here.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tracking import run_environment
from tracking.projects import progress
from tracking.projects.errors import ExecutionError

MANAGERS = ("local", "virtualenv", "uv")
ENV_ROOT_ENV = "TRACKFLOW_ENV_ROOT"
MARKER = ".trackflow-env.json"
TRACKFLOW_PACKAGES = ("tracking", "tasks", "flows")
#: what `import tracking` needs, and what flow entry points need on top
CORE_REQUIREMENTS = ("pyyaml", "fsspec", "psutil")
FLOW_REQUIREMENTS = ("prefect",)
_PROBE = "import platform, sys; print(platform.python_version()); print(sys.executable)"
_FREEZE = (
    "from tracking import run_environment as e; "
    "print(e.requirements_text(e.distributions()), end='')"
)


@dataclass(frozen=True)
class EnvSpec:
    """What an environment holds, in MLflow's python_env.yaml terms."""

    python: str | None = None  # "3.11" or "3.11.7"; None: this interpreter's version
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()

    @classmethod
    def from_python_env(cls, path: str) -> EnvSpec:
        """Read a python_env.yaml; `-r file` dependencies are read in (relative to it)."""
        import yaml

        try:
            with open(path) as f:
                content = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ExecutionError(f"Cannot read {path}: {e}") from None
        if not isinstance(content, dict):
            raise ExecutionError(f"{path} must be a mapping (python, build_dependencies, ...)")
        python = content.get("python")
        lists = {k: content.get(k) or [] for k in ("build_dependencies", "dependencies")}
        for key, value in lists.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ExecutionError(f"{path}: {key} must be a list of requirement strings")
        if python is not None and not isinstance(python, str):
            raise ExecutionError(
                f'{path}: python must be a quoted version such as "3.11", got {python!r} '
                "(YAML reads an unquoted 3.10 as the number 3.1)"
            )
        folder = os.path.dirname(os.path.abspath(path))
        return cls(
            python,
            tuple(_expand(lists["build_dependencies"], folder)),
            tuple(_expand(lists["dependencies"], folder)),
        )

    @classmethod
    def recorded(cls, python_env: str, requirements: str) -> EnvSpec:
        """The environment a run recorded (tracking.run_environment's two files)."""
        import yaml

        content = yaml.safe_load(python_env) or {}
        pinned = run_environment.parse_requirements(requirements)
        return cls(
            str(content.get("python")) if content.get("python") else None,
            tuple(content.get("build_dependencies") or ()),
            tuple(f"{name}=={version}" for name, version in pinned.values()),
        )


def _expand(requirements: list[str], folder: str) -> Iterator[str]:
    for line in requirements:
        line = line.split(" #", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            path = os.path.join(folder, line.split(None, 1)[1].strip())
            try:
                with open(path) as f:
                    lines = [x.strip() for x in f if x.strip() and not x.startswith("#")]
            except OSError as e:
                raise ExecutionError(f"Requirements file {path} cannot be read: {e}") from None
            yield from _expand(lines, os.path.dirname(path))
        elif line:
            yield line


@dataclass(frozen=True)
class Environment:
    """A ready environment: its interpreter and what is installed in it."""

    manager: str
    python: str  # the interpreter
    python_version: str
    requirements: str  # requirements.txt of what it holds
    directory: str | None = None  # the virtual environment, None for local
    reused: bool = False

    def variables(self) -> dict[str, str]:
        """Environment variables that activate it for a command (as `source activate`)."""
        bin_dir = os.path.dirname(self.python)
        variables = {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
        if self.directory is not None:
            variables["VIRTUAL_ENV"] = self.directory
        return variables


def check_manager(manager: str | None) -> str:
    manager = manager or "local"
    if manager not in MANAGERS:
        raise ExecutionError(
            f"Unknown environment manager {manager!r}: use one of {', '.join(MANAGERS)}"
            " (conda and docker are not supported)"
        )
    return manager


def prepare(manager: str, spec: EnvSpec, flow: bool) -> Environment:
    """The environment to run in: the current one, or a cached or newly built one."""
    if manager == "local":
        dists = run_environment.distributions()
        return Environment(
            "local",
            sys.executable,
            _current_version(),
            run_environment.requirements_text(dists),
        )
    interpreter, version = find_python(spec.python)
    extra = _trackflow_requirements(spec, flow)
    key = {
        "manager": manager,
        "python": version,
        "build": list(spec.build_dependencies),
        "dependencies": [*_installable(spec.dependencies), *extra],
        "trackflow": _trackflow_folders(),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    directory = os.path.join(env_root(), f"{manager}-{digest}")
    with _locked(directory):
        marker = os.path.join(directory, MARKER)
        if os.path.isfile(marker):
            with open(marker) as f:
                built = json.load(f)
            progress.say(f"Reusing {manager} environment {directory} (Python {version})")
            return Environment(
                manager, built["python"], version, built["requirements"], directory, reused=True
            )
        shutil.rmtree(directory, ignore_errors=True)  # a build that died halfway
        count = len(key["dependencies"]) + len(key["build"])
        message = f"Building {manager} environment (Python {version}, {count} requirements)"
        with progress.step(message):
            python = _build(manager, interpreter, directory, spec, extra)
        requirements = _run([python, "-c", _FREEZE], "listing the environment's packages")
        with open(marker + ".tmp", "w") as f:
            json.dump({"python": python, "requirements": requirements, "spec": key}, f, indent=1)
        os.replace(marker + ".tmp", marker)
    return Environment(manager, python, version, requirements, directory)


def env_root() -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get(ENV_ROOT_ENV) or os.path.join(cache, "trackflow", "envs")


@contextmanager
def _locked(directory: str) -> Iterator[None]:
    """One builder per environment at a time, across processes."""
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    with open(directory + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _current_version() -> str:
    import platform

    return platform.python_version()


def _installable(requirements: tuple[str, ...]) -> list[str]:
    """The requirements minus Trackflow itself (linked in, as it is installed here)."""
    return [r for r in requirements if _requirement_name(r) != "trackflow"]


def _requirement_name(requirement: str) -> str:
    name = requirement.strip()
    for stop in "<>=!~;[ @":
        name = name.split(stop, 1)[0]
    return run_environment.canonical_name(name)


def _trackflow_requirements(spec: EnvSpec, flow: bool) -> list[str]:
    """The packages Trackflow needs at the versions installed here, unless the spec names
    them itself."""
    named = {_requirement_name(r) for r in spec.dependencies}
    installed = run_environment.distributions()
    wanted = CORE_REQUIREMENTS + (FLOW_REQUIREMENTS if flow else ())
    return [
        f"{installed[n][0]}=={installed[n][1]}" if n in installed else n
        for n in wanted
        if n not in named
    ]


def _trackflow_folders() -> list[str]:
    """The folders of the packages tracking, tasks and flows, as imported here."""
    import importlib.util

    folders = []
    for package in TRACKFLOW_PACKAGES:
        found = importlib.util.find_spec(package)
        if found is not None and found.submodule_search_locations:
            folders.append(os.path.realpath(next(iter(found.submodule_search_locations))))
    return folders


def _build(manager: str, interpreter: str, directory: str, spec: EnvSpec, extra: list[str]) -> str:
    """Create the environment, install the spec, link Trackflow in; its interpreter."""
    python = os.path.join(directory, "bin", "python")
    requirements = [*_installable(spec.dependencies), *extra]
    if manager == "uv":
        uv = uv_executable()
        _run([uv, "venv", "-q", "--python", interpreter, directory], "uv venv")
        install = [uv, "pip", "install", "-q", "--python", python]
    else:
        _run([interpreter, "-m", "venv", directory], "python -m venv")
        install = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    try:
        if spec.build_dependencies:
            _run([*install, *spec.build_dependencies], "installing build_dependencies")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("\n".join(requirements) + "\n")
        try:
            _run([*install, "-r", f.name], "installing the dependencies")
        finally:
            os.unlink(f.name)
        _link_trackflow(python, directory)
    except ExecutionError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return python


def _link_trackflow(python: str, directory: str) -> None:
    """Make tracking, tasks and flows importable from the folders this process uses."""
    links = os.path.join(directory, "trackflow-src")
    os.makedirs(links, exist_ok=True)
    for folder in _trackflow_folders():
        os.symlink(folder, os.path.join(links, os.path.basename(folder)))
    site = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        "finding site-packages",
    ).strip()
    with open(os.path.join(site, "trackflow.pth"), "w") as f:
        f.write(links + "\n")


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-3000:]
        raise ExecutionError(f"Building the environment failed while {what}:\n{output}")
    return done.stdout


def uv_executable() -> str:
    """uv from PATH, else the one the `uv` Python package ships."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise ExecutionError(
            "--env-manager uv needs uv: put it on PATH or pip install 'trackflow[uv]' (or use "
            "--env-manager virtualenv)"
        ) from None


def find_python(requested: str | None) -> tuple[str, str]:
    """(interpreter, full version) for a version like "3.11" or "3.11.7": an exact match, else
    the same minor version with a warning; ExecutionError naming the versions there are."""
    current = _current_version()
    if requested is None:
        return sys.executable, current
    available = {current: sys.executable, **interpreters()}
    wanted = requested.split(".")
    exact = [v for v in available if v.split(".")[: len(wanted)] == wanted]
    if exact:
        best = max(exact, key=_version_key)
        return available[best], best
    minor = [v for v in available if v.split(".")[:2] == wanted[:2]]
    if minor:
        best = max(minor, key=_version_key)
        progress.say(f"Warning: Python {requested} is not installed here; using {best}")
        return available[best], best
    raise ExecutionError(
        f"Python {requested} is not available here; available: "
        f"{', '.join(sorted(available, key=_version_key))} (install it, e.g. with pyenv or "
        "`uv python install`, or change python in python_env.yaml)"
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


@lru_cache(maxsize=1)
def interpreters() -> dict[str, str]:
    """version -> interpreter of the Pythons found on PATH and in pyenv's versions folder."""
    candidates = {os.path.realpath(sys.executable)}
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if "shims" in folder.split(os.sep):  # pyenv's shims fail for versions not selected
            continue
        candidates.update(glob.glob(os.path.join(folder, "python3*")))
    pyenv = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    candidates.update(glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python3")))
    found: dict[str, str] = {}
    for path in sorted(candidates):
        if not os.access(path, os.X_OK) or path.endswith("-config"):
            continue
        version, executable = _probe(path)
        if version and version not in found:
            found[version] = executable
    return found


def _probe(path: str) -> tuple[str | None, str]:
    try:
        done = subprocess.run(
            [path, "-c", _PROBE], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, path
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None, path
    return lines[0], lines[1]


def describe(env: Environment) -> dict[str, Any]:
    """How the run's environment is recorded: python_env.yaml and requirements.txt."""
    pinned = run_environment.parse_requirements(env.requirements)
    return {
        run_environment.PYTHON_ENV_FILE: run_environment.python_env_text(
            env.python_version, pinned
        ).encode(),
        run_environment.REQUIREMENTS_FILE: env.requirements.encode(),
    }
