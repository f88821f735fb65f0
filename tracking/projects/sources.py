"""Where a project's code comes from: a local folder, or a git URL checked out in a temporary
clone (`URL#subdirectory`, at `--version`). The user's own work tree is never changed."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tracking import git
from tracking.projects import progress
from tracking.projects.errors import ExecutionError

GIT_URL = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class Source:
    """A project checked out and ready to run."""

    uri: str  # as the user gave it
    directory: str  # the project folder (subdirectory applied)
    root: str  # the top of the work tree (or the folder itself, outside git)
    subdirectory: str  # the project folder inside the repository ("" for its top)
    commit: str | None
    branch: str | None
    repo_url: str | None
    state: git.GitState | None  # the user's own work tree, when run in place

    @property
    def source_name(self) -> str:
        """mlflow.source.name as MLflow sets it: the git URL (#subdirectory) when known."""
        if self.state is None:
            return self.uri
        base = self.repo_url or self.state.root
        return f"{base}#{self.subdirectory}" if self.subdirectory else base


def split_uri(uri: str) -> tuple[str, str]:
    """(location, subdirectory) of `location#subdirectory`; the subdirectory stays inside."""
    location, _, subdirectory = uri.partition("#")
    subdirectory = subdirectory.strip("/")
    if subdirectory and (
        os.path.isabs(subdirectory) or ".." in subdirectory.split("/") or "\\" in subdirectory
    ):
        raise ExecutionError(
            f"Project subdirectory {subdirectory!r} must be a relative path inside the project"
        )
    return location, subdirectory


def is_git_url(location: str) -> bool:
    return bool(GIT_URL.match(location))


@contextmanager
def checkout(uri: str, version: str | None) -> Iterator[Source]:
    """The project at `uri`: a temporary clone for git URLs and for any --version (removed on
    exit), else the local folder itself."""
    location, subdirectory = split_uri(uri)
    if is_git_url(location):
        with cloned(location, version, subdirectory, uri) as source:
            yield source
        return
    folder = os.path.abspath(os.path.join(location, subdirectory))
    if not os.path.isdir(folder):
        raise ExecutionError(
            f"{uri} is not a project: no such folder (give a folder, or a git URL such as "
            "https://..., ssh://..., file:///path/to/repo, with an optional #subdirectory)"
        )
    root = git.root_of(folder)
    if version is not None:
        if root is None:
            raise ExecutionError(
                f"--version {version!r} needs a git repository, and {folder} is not in one"
            )
        inner = os.path.relpath(folder, root)
        with cloned(root, version, "" if inner == "." else inner, uri) as source:
            yield source
        return
    state = git.state(root) if root else None
    inner = os.path.relpath(folder, root) if root else ""
    yield Source(
        uri=uri,
        directory=folder,
        root=state.root if state else folder,
        subdirectory="" if inner == "." else inner,
        commit=state.commit if state else None,
        branch=state.branch if state else None,
        repo_url=state.remote_url if state else None,
        state=state,
    )


@contextmanager
def cloned(url: str, version: str | None, subdirectory: str, uri: str) -> Iterator[Source]:
    """A temporary clone of `url` at `version`, removed on exit."""
    temporary = tempfile.mkdtemp(prefix="trackflow-project-")
    try:
        where = f" at {version}" if version else ""
        with progress.step(f"Cloning {url}{where}"):
            commit, branch = git.clone(url, version, os.path.join(temporary, "repo"))
        root = os.path.join(temporary, "repo")
        directory = os.path.join(root, subdirectory)
        if not os.path.isdir(directory):
            raise ExecutionError(
                f"{uri} is not a project: the repository has no folder {subdirectory!r}"
                + (f" at {version}" if version else "")
            )
        yield Source(uri, directory, root, subdirectory, commit, branch, url, None)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
