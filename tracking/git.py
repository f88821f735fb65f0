"""Git, run as the `git` program: a work tree's state, clones, checkouts and patches.

Reads never change the user's repository (no index refresh, no checkout); clones and patches
only ever touch a temporary clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from tracking.errors import TrackingError

#: git never asks for a password on the terminal, and never refreshes the user's index
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


class GitError(TrackingError):
    """git is missing, or a git command failed (the message says which and why)."""


@dataclass(frozen=True)
class GitState:
    """Where a work tree stands: what `git status` and `git diff` say, read once."""

    root: str
    commit: str | None
    branch: str | None
    remote_url: str | None
    dirty: bool
    diff: bytes  # tracked changes against HEAD plus untracked files, as one patch


def available() -> bool:
    return shutil.which("git") is not None


def run(args: list[str], cwd: str, what: str | None = None, text: bool = True) -> str | bytes:
    """Run `git ARGS` in `cwd`; GitError naming the step and git's own message on failure."""
    if not available():
        raise GitError("git is not installed (or not on PATH): install git to use git projects")
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        env={**os.environ, **_ENV},
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit code {done.returncode}"
        raise GitError(f"{what or 'git ' + ' '.join(args)} failed: {message}")
    return done.stdout.decode("utf-8", "replace") if text else done.stdout


def root_of(path: str) -> str | None:
    """The top folder of the work tree holding `path`, or None (not in one, or no git)."""
    start = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not available() or not os.path.isdir(start):
        return None
    try:
        return str(run(["rev-parse", "--show-toplevel"], start)).strip() or None
    except GitError:
        return None


def state(root: str) -> GitState:
    """The work tree's commit, branch, origin URL, dirty flag and diff against HEAD."""
    commit = _quiet(["rev-parse", "--verify", "-q", "HEAD"], root)
    branch = _quiet(["symbolic-ref", "-q", "--short", "HEAD"], root)
    remote = _quiet(["config", "--get", "remote.origin.url"], root)
    status = _quiet(["status", "--porcelain", "--untracked-files=all"], root) or ""
    diff = b""
    if status and commit:
        diff = bytes(run(["diff", "--binary", "HEAD"], root, text=False))
        untracked = str(run(["ls-files", "-z", "--others", "--exclude-standard"], root))
        for path in filter(None, untracked.split("\0")):
            diff += _new_file_patch(root, path)
    return GitState(root, commit, branch, remote, bool(status), diff)


def _new_file_patch(root: str, path: str) -> bytes:
    """A patch creating an untracked file (`git diff --no-index` exits 1 when files differ)."""
    done = subprocess.run(
        ["git", "diff", "--binary", "--no-index", "--", os.devnull, path],
        cwd=root,
        capture_output=True,
        env={**os.environ, **_ENV},
        check=False,
    )
    return done.stdout if done.returncode in (0, 1) else b""


def _quiet(args: list[str], cwd: str) -> str | None:
    try:
        return str(run(args, cwd)).strip() or None
    except GitError:
        return None


def clone(url: str, version: str | None, destination: str) -> tuple[str, str | None]:
    """Clone `url` into `destination` at `version` (commit, branch or tag; default: the
    remote's HEAD); returns (commit, branch or None). Errors name the URL and version."""
    run(["init", "-q", destination], os.path.dirname(destination) or ".", "git init")
    run(["remote", "add", "origin", url], destination, "git remote add")
    try:
        run(["fetch", "-q", "--tags", "origin"], destination, f"Fetching {url}")
    except GitError as e:
        raise GitError(f"Could not fetch the git repository {url!r}: {e}") from None
    branch = None
    if version is None:  # the remote's HEAD: its default branch
        head = _quiet(["ls-remote", "--symref", "origin", "HEAD"], destination) or ""
        lines = [line.split("\t")[0] for line in head.splitlines()]
        symbolic = [line for line in lines if line.startswith("ref: refs/heads/")]
        branch = symbolic[0].removeprefix("ref: refs/heads/") if symbolic else None
        target = ([line for line in lines if not line.startswith("ref:")] or ["HEAD"])[0]
    elif str(run(["branch", "-r", "--list", f"origin/{version}"], destination)).strip():
        target, branch = f"origin/{version}", version
    else:
        target = version
    commit = _quiet(["rev-parse", "--verify", "-q", f"{target}^{{commit}}"], destination)
    if commit is None:
        raise GitError(
            f"Version {version!r} not found in the git repository {url!r}: give a commit, "
            "branch or tag that exists there"
        )
    run(["checkout", "-q", "--detach", commit], destination, f"Checking out {commit}")
    run(["submodule", "update", "-q", "--init", "--recursive"], destination, "git submodule")
    return commit, branch


def apply(root: str, patch: bytes) -> None:
    """Apply a patch (as `state` recorded it) to the work tree at `root`."""
    done = subprocess.run(
        ["git", "apply", "--whitespace=nowarn", "-"],
        cwd=root,
        input=patch,
        capture_output=True,
        env={**os.environ, **_ENV},
        check=False,
    )
    if done.returncode != 0:
        raise GitError(f"The recorded diff does not apply: {done.stderr.decode().strip()}")
