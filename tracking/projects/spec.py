"""Projects in MLflow's format: the MLproject file, its entry points and their parameters.

A folder with an `MLproject` file (any case) declares `name`, an environment (`python_env`;
`conda_env` and `docker_env` are refused) and `entry_points`, each with typed `parameters` and
a `command` template. Without one (or for a name it does not declare), an entry point is a
Prefect flow `path/to/file.py:flow_function`, or a `.py` / `.sh` file run as a command.
"""

from __future__ import annotations

import os
import shlex
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

from tracking.projects.errors import ExecutionError

MLPROJECT = "mlproject"
DEFAULT_PYTHON_ENV = "python_env.yaml"
PARAMETER_TYPES = ("float", "int", "string", "path", "uri")
UNSUPPORTED_ENVIRONMENTS = ("conda_env", "docker_env")
SCRIPT_COMMANDS = {".py": "python", ".sh": "bash"}


@dataclass(frozen=True)
class Parameter:
    """An entry point parameter: MLflow's types float, int, string, path and uri."""

    name: str
    type: str = "string"
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is None

    def convert(self, value: Any, entry: str, cwd: str) -> str:
        """The value to substitute into the command; ExecutionError naming the parameter,
        its expected type and the value when the value does not fit."""
        text = str(value)
        where = f"Parameter {self.name!r} of entry point {entry!r}"
        if self.type == "float":
            try:
                float(text)
            except ValueError:
                raise ExecutionError(f"{where} must be a float, got {text!r}") from None
        elif self.type == "int":
            try:
                int(text)
            except ValueError:
                raise ExecutionError(f"{where} must be an int, got {text!r}") from None
        elif self.type == "uri" and not urllib.parse.urlparse(text).scheme:
            raise ExecutionError(
                f"{where} must be a uri (such as s3://b/k or file:///x), got {text!r}"
            )
        elif self.type == "path":
            return _local_path(text, where, cwd)
        return text


def _local_path(value: str, where: str, cwd: str) -> str:
    """An existing local path, made absolute; remote URIs are downloaded by the caller."""
    parsed = urllib.parse.urlparse(value)
    if parsed.scheme not in ("", "file") and len(parsed.scheme) > 1:
        return value
    path = os.path.join(cwd, parsed.path if parsed.scheme == "file" else value)
    if not os.path.exists(path):
        raise ExecutionError(f"{where} is a path, but {value!r} does not exist")
    return os.path.abspath(path)


@dataclass(frozen=True)
class EntryPoint:
    """A runnable entry point: a shell command template, or a Prefect flow."""

    name: str
    kind: Literal["command", "flow"]
    command: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def resolve(self, given: dict[str, Any], cwd: str) -> tuple[dict[str, str], dict[str, str]]:
        """(declared parameters with defaults applied, extra ones), validated, as text."""
        missing = [p for p in self.parameters.values() if p.required and p.name not in given]
        if missing:
            names = ", ".join(f"{p.name!r} ({p.type})" for p in missing)
            raise ExecutionError(
                f"Entry point {self.name!r} needs a value for {names}: pass -P NAME=VALUE"
            )
        declared = {
            p.name: p.convert(given.get(p.name, p.default), self.name, cwd)
            for p in self.parameters.values()
        }
        extra = {k: str(v) for k, v in given.items() if k not in self.parameters}
        return declared, extra

    def command_line(self, declared: dict[str, str], extra: dict[str, str]) -> str:
        """The command with the (shell-quoted) values substituted, extra ones as --key value."""
        quoted = {k: shlex.quote(v) for k, v in declared.items()}
        try:
            line = self.command.format(**quoted)
        except (KeyError, IndexError) as e:
            raise ExecutionError(
                f"The command of entry point {self.name!r} uses {{{e.args[0]}}}, which is not "
                f"one of its parameters ({', '.join(self.parameters) or 'none'})"
            ) from None
        options = [f"--{shlex.quote(k)} {shlex.quote(v)}" for k, v in extra.items()]
        return " ".join([line, *options])


@dataclass(frozen=True)
class Project:
    """A project folder: its MLproject (when it has one) and python_env.yaml."""

    directory: str
    name: str | None
    python_env: str | None  # path of the python_env.yaml, when there is one
    entry_points: dict[str, EntryPoint]
    has_mlproject: bool

    def entry_point(self, name: str) -> EntryPoint:
        """The declared entry point, else a flow `file.py:function`, else a .py/.sh file."""
        if name in self.entry_points:
            return self.entry_points[name]
        file, _, function = name.partition(":")
        if function:
            if not file.endswith(".py") or not function.isidentifier():
                raise ExecutionError(
                    f"Entry point {name!r}: a flow entry point is path/to/file.py:flow_function"
                )
            self._existing(file, name)
            return EntryPoint(name, "flow")
        extension = os.path.splitext(name)[1]
        if extension in SCRIPT_COMMANDS:
            self._existing(name, name)
            return EntryPoint(name, "command", f"{SCRIPT_COMMANDS[extension]} {shlex.quote(name)}")
        declared = ", ".join(sorted(self.entry_points)) or "none"
        what = (
            f"its MLproject declares: {declared}"
            if self.has_mlproject
            else f"{self.directory} is not a project: it has no MLproject file"
        )
        raise ExecutionError(
            f"Unknown entry point {name!r} ({what}). Give a declared entry point, a .py or .sh "
            "file, or a Prefect flow as path/to/file.py:flow_function"
        )

    def _existing(self, file: str, entry: str) -> None:
        path = os.path.normpath(os.path.join(self.directory, file))
        if os.path.isabs(file) or not path.startswith(os.path.normpath(self.directory) + os.sep):
            raise ExecutionError(f"Entry point {entry!r} must name a file inside the project")
        if not os.path.isfile(path):
            raise ExecutionError(f"Entry point {entry!r}: no file {file!r} in {self.directory}")


def load(directory: str) -> Project:
    """Read the project in `directory` (MLproject optional); ExecutionError when malformed."""
    if not os.path.isdir(directory):
        raise ExecutionError(f"{directory} is not a project: no such folder")
    mlproject = next((f for f in os.listdir(directory) if f.lower() == MLPROJECT), None)
    content: dict[str, Any] = {}
    if mlproject is not None:
        content = _read_mlproject(os.path.join(directory, mlproject))
    for key in UNSUPPORTED_ENVIRONMENTS:
        if key in content:
            raise ExecutionError(
                f"MLproject in {directory}: {key} is not supported (Trackflow builds python_env "
                "environments with virtualenv or uv, or runs in the current one with "
                "--env-manager local); describe the environment in a python_env.yaml"
            )
    python_env = content.get("python_env")
    if python_env is not None:
        path = os.path.join(directory, str(python_env))
        if not os.path.isfile(path):
            raise ExecutionError(f"MLproject in {directory}: python_env file {path} not found")
    elif os.path.isfile(os.path.join(directory, DEFAULT_PYTHON_ENV)):
        path = os.path.join(directory, DEFAULT_PYTHON_ENV)
    else:
        path = None
    entries = content.get("entry_points") or {}
    if not isinstance(entries, dict):
        raise ExecutionError(f"MLproject in {directory}: entry_points must be a mapping")
    return Project(
        directory=directory,
        name=content.get("name"),
        python_env=path,
        entry_points={str(k): _entry_point(str(k), v, directory) for k, v in entries.items()},
        has_mlproject=mlproject is not None,
    )


def _read_mlproject(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path) as f:
            content = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ExecutionError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(content, dict):
        raise ExecutionError(f"{path} must be a YAML mapping (name, python_env, entry_points)")
    return content


def _entry_point(name: str, content: Any, directory: str) -> EntryPoint:
    where = f"MLproject in {directory}: entry point {name!r}"
    if not isinstance(content, dict) or not isinstance(content.get("command"), str):
        raise ExecutionError(f"{where} needs a command (a string)")
    parameters = content.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ExecutionError(f"{where}: parameters must be a mapping")
    return EntryPoint(
        name,
        "command",
        content["command"],
        {str(k): _parameter(str(k), v, where) for k, v in parameters.items()},
    )


def _parameter(name: str, content: Any, where: str) -> Parameter:
    if isinstance(content, str):
        kind, default = content, None
    elif isinstance(content, dict):
        kind, default = content.get("type", "string"), content.get("default")
    else:
        raise ExecutionError(f"{where}: parameter {name!r} must be a type or a mapping")
    if kind not in PARAMETER_TYPES:
        raise ExecutionError(
            f"{where}: parameter {name!r} has type {kind!r}; the types are "
            f"{', '.join(PARAMETER_TYPES)}"
        )
    return Parameter(name, kind, default)
