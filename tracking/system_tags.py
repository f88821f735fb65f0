"""System tags written on every new run (MLflow's reserved `mlflow.*` names) and run names."""

from __future__ import annotations

import getpass
import os
import random
import sys
from functools import lru_cache

RUN_NAME = "mlflow.runName"
PARENT_RUN_ID = "mlflow.parentRunId"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
NOTE = "mlflow.note.content"

# What the Prefect decorators record on flow runs and task runs (tracking reads them to link
# runs to Prefect: the UI, `runs reconcile`, `runs reproduce`).
PREFECT_FLOW_NAME = "prefect.flow_name"
PREFECT_FLOW_RUN_ID = "prefect.flow_run_id"
PREFECT_FLOW_RUN_NAME = "prefect.flow_run_name"
PREFECT_TASK_NAME = "prefect.task_name"
PREFECT_TASK_RUN_ID = "prefect.task_run_id"
PREFECT_TAGS = "prefect.tags"
PREFECT_DEPLOYMENT_NAME = "prefect.deployment_name"
PREFECT_SCHEDULED_START = "prefect.scheduled_start_time"
PREFECT_UI_URL = "prefect.ui_url"

_ADJECTIVES = (
    "able amazing bald bemused bold brave bright calm capable carefree casual clean clever "
    "colorful crawling dapper debonair delicate enchanting fearless funny gaudy gentle "
    "glamorous grandiose honorable illustrious industrious intelligent judicious kindly "
    "learned legendary likeable loud luminous mercurial nebulous omniscient orderly "
    "peaceful polite puzzled redolent resilient rogue rumbling salty secretive selective "
    "sedate serious shivering skillful sneaky spiffy stately suave tasteful thoughtful "
    "traveling trusting unequaled upbeat valuable victorious vaunted wise youthful zealous"
).split()
_NOUNS = (
    "ant ape asp auk bass bat bear bee bird boar carp cat cod colt conch cow crab crane "
    "croc crow cub deer doe dog dolphin donkey dove duck eel elk fawn finch fish fly foal "
    "fowl fox frog gnat gnu goat goose grouse gull hare hawk hen hog horse hound jay kit "
    "kite koi lamb lark loon lynx mare midge mink mole moose moth mouse mule newt owl ox "
    "panda penguin perch pig pug quail ram rat ray robin roo seal shad shark sheep shoat "
    "shrew skink skunk sloth slug smelt snail snake snipe sow sponge squid stag steed "
    "stoat swan tern toad trout turtle vole wasp whale wolf worm wren yak zebra"
).split()


def random_run_name() -> str:
    """A readable name like MLflow's: adjective-noun-NNN."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"


@lru_cache(maxsize=1)
def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def source_name() -> str:
    return sys.argv[0] if sys.argv and sys.argv[0] else "<console>"


@lru_cache(maxsize=64)
def git_commit(start: str) -> str | None:
    """The HEAD commit of the git work tree containing `start`, read without running git."""
    directory = os.path.abspath(start)
    while True:
        git = os.path.join(directory, ".git")
        if os.path.isfile(git):  # a worktree or submodule: "gitdir: <path>"
            with open(git) as f:
                content = f.read().strip()
            if content.startswith("gitdir:"):
                git = os.path.join(directory, content.split(":", 1)[1].strip())
        if os.path.isdir(git):
            return _resolve_head(git)
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _resolve_head(git_dir: str) -> str | None:
    try:
        with open(os.path.join(git_dir, "HEAD")) as f:
            head = f.read().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    common = git_dir
    commondir = os.path.join(git_dir, "commondir")
    if os.path.isfile(commondir):
        with open(commondir) as f:
            common = os.path.join(git_dir, f.read().strip())
    for base in (git_dir, common):
        try:
            with open(os.path.join(base, ref)) as f:
                return f.read().strip()
        except OSError:
            pass
    try:
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        pass
    return None


def default_tags(source: str | None = None) -> dict[str, str]:
    """mlflow.user, mlflow.source.name/type and, inside a git work tree, the commit."""
    source = source or source_name()
    tags = {USER: current_user(), SOURCE_NAME: source, SOURCE_TYPE: "LOCAL"}
    start = os.path.dirname(os.path.abspath(source)) if os.path.exists(source) else os.getcwd()
    commit = git_commit(start)
    if commit:
        tags[GIT_COMMIT] = commit
    return tags
