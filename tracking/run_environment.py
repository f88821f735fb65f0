"""The environment a run ran in, recorded on the run so that it can be run again.

Artifacts `environment/python_env.yaml` (MLflow's format), `environment/requirements.txt`
(every installed distribution as name==version) and, for a dirty git work tree,
`environment/git.diff`; tags for the Python version, platform, entry point and git state.
Everything is computed once per process (the code a process runs is the code it imported);
recording it on a run writes one batch of tags and two or three small files.
"""

from __future__ import annotations

import os
import platform
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tracking import git, system_tags
from tracking.entities import Run, RunTag

PYTHON_VERSION_TAG = "trackflow.python_version"
PLATFORM_TAG = "trackflow.platform"
ENTRYPOINT_TAG = "trackflow.entrypoint"
GIT_BRANCH_TAG = "mlflow.source.git.branch"
GIT_REPO_URL_TAG = "mlflow.source.git.repoURL"
GIT_DIRTY_TAG = "trackflow.git.dirty"
GIT_ROOT_TAG = "trackflow.git.root"
DIFF_TRUNCATED_TAG = "trackflow.git.diff_truncated"

ARTIFACT_DIR = "environment"
PYTHON_ENV_FILE = "python_env.yaml"
REQUIREMENTS_FILE = "requirements.txt"
DIFF_FILE = "git.diff"
MAX_DIFF_ENV = "TRACKFLOW_GIT_DIFF_MAX_BYTES"
MAX_DIFF_BYTES = 1_000_000
BUILD_PACKAGES = ("pip", "setuptools", "wheel")


@dataclass(frozen=True)
class Snapshot:
    """What `record` writes on a run: tags, and artifacts under environment/."""

    tags: dict[str, str]
    artifacts: dict[str, bytes] = field(default_factory=dict)


def canonical_name(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return "-".join(name.lower().replace("_", "-").replace(".", "-").split("-"))


@lru_cache(maxsize=1)
def distributions() -> dict[str, tuple[str, str]]:
    """canonical name -> (name, version) of every distribution this interpreter imports from
    (the first one on sys.path wins, as for imports)."""
    from importlib import metadata

    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and canonical_name(name) not in found:
            found[canonical_name(name)] = (name, dist.version)
    return found


def requirements_text(dists: dict[str, tuple[str, str]]) -> str:
    """requirements.txt: one `name==version` line per distribution, sorted by name."""
    return "".join(f"{name}=={version}\n" for _, (name, version) in sorted(dists.items()))


def parse_requirements(text: str) -> dict[str, tuple[str, str]]:
    """canonical name -> (name, version) of the `name==version` lines of a requirements.txt."""
    pinned: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep and name and version:
            pinned[canonical_name(name)] = (name.strip(), version.strip())
    return pinned


def python_env_text(python: str, dists: dict[str, tuple[str, str]]) -> str:
    """python_env.yaml in MLflow's format: python version, pinned build packages, and the
    requirements file as the dependencies."""
    import yaml

    build = [f"{dists[p][0]}=={dists[p][1]}" for p in BUILD_PACKAGES if p in dists]
    content: dict[str, Any] = {"python": python}
    if build:
        content["build_dependencies"] = build
    content["dependencies"] = [f"-r {REQUIREMENTS_FILE}"]
    return yaml.safe_dump(content, sort_keys=False, default_flow_style=False)


@lru_cache(maxsize=1)
def _interpreter() -> Snapshot:
    dists = distributions()
    python = platform.python_version()
    return Snapshot(
        {PYTHON_VERSION_TAG: python, PLATFORM_TAG: platform.platform()},
        {
            PYTHON_ENV_FILE: python_env_text(python, dists).encode(),
            REQUIREMENTS_FILE: requirements_text(dists).encode(),
        },
    )


@lru_cache(maxsize=64)
def _git_root(folder: str) -> str | None:
    return git.root_of(folder)


@lru_cache(maxsize=16)
def _git_state(root: str) -> git.GitState | None:
    try:
        return git.state(root)
    except git.GitError:
        return None


def git_snapshot(state: git.GitState) -> Snapshot:
    """Tags (commit, branch, origin URL, dirty flag, work tree) and the capped diff."""
    tags = {GIT_DIRTY_TAG: str(state.dirty).lower(), GIT_ROOT_TAG: state.root}
    if state.commit:
        tags[system_tags.GIT_COMMIT] = state.commit
    if state.branch:
        tags[GIT_BRANCH_TAG] = state.branch
    if state.remote_url:
        tags[GIT_REPO_URL_TAG] = state.remote_url
    artifacts = {}
    if state.diff:
        limit = int(os.environ.get(MAX_DIFF_ENV) or MAX_DIFF_BYTES)
        diff = state.diff
        if len(diff) > limit:
            tags[DIFF_TRUNCATED_TAG] = "true"
            note = f"\n# trackflow: diff truncated to {limit} of {len(diff)} bytes\n"
            diff = diff[:limit] + note.encode()
        artifacts[DIFF_FILE] = diff
    return Snapshot(tags, artifacts)


@lru_cache(maxsize=64)
def snapshot(source: str | None, function: str | None = None) -> Snapshot:
    """The environment of this process for code in `source` (a file; default sys.argv[0]),
    computed once per process and source."""
    source = source or system_tags.source_name()
    interpreter = _interpreter()
    tags = dict(interpreter.tags)
    artifacts = dict(interpreter.artifacts)
    if not os.path.exists(source):
        return Snapshot(tags, artifacts)
    path = os.path.abspath(source)
    root = _git_root(os.path.dirname(path))
    state = _git_state(root) if root else None
    entry = os.path.relpath(path, root) if state is not None and root else path
    tags[ENTRYPOINT_TAG] = f"{entry}:{function}" if function else entry
    if state is not None:
        extra = git_snapshot(state)
        tags.update(extra.tags)
        artifacts.update(extra.artifacts)
    return Snapshot(tags, artifacts)


def record(client: Any, run: Run, source: str | None, function: str | None = None) -> None:
    """Write the environment on `run` (tags and artifacts); a failure only warns."""
    if PYTHON_VERSION_TAG in run.data.tags:  # recorded already (a retry of the same run)
        return
    try:
        captured = snapshot(source, function)
        client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in captured.tags.items()])
        artifacts = client.artifact_repo_at(run.info.artifact_uri)
        for name, content in captured.artifacts.items():
            artifacts.write_bytes(f"{ARTIFACT_DIR}/{name}", content)
    except Exception as e:
        warnings.warn(
            f"The environment of run {run.info.run_id} was not recorded: {e}", stacklevel=2
        )
