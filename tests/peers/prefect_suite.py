"""Prefect's own flow and task tests, run plain and with Trackflow's decorators swapped in.

    python tests/peers/prefect_suite.py [SOURCE] [--ref REF] [--cache DIR] [-k EXPR]

SOURCE is a git repository of Prefect: a local git directory (bare or not), or a URL that is
cloned with --depth 1 (default: GitHub's PrefectHQ/prefect). REF defaults to the newest release
tag of the installed prefect's minor version, else to the newest version tag. What Prefect's
tests/test_flows.py and tests/test_tasks.py need (their conftest, its fixtures, the test
modules they import, and Prefect's pytest settings in pyproject.toml) is extracted into the
cache folder (default: $XDG_CACHE_HOME/trackflow/prefect-suite), never into this repository.

The pytest plugins Prefect's conftest uses (our `peers` extra) are installed into a virtual
environment in the cache folder that sees this interpreter's packages and pins them, so this
environment is left as it is. The tests then run twice: plain, and with swap_plugin.py loaded
(`-p`), which puts `flows.flow` / `tasks.task` in Prefect's place before any test imports them,
tracking into a temporary store. Prints both counts, every test that passes plain but not
swapped, and every tracked run that is unfinished or not where the README says. Exit status 1
on any of those.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from packaging.version import InvalidVersion, Version
from suite_tools import environment, extract, git, outcomes

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_SOURCE = "https://github.com/PrefectHQ/prefect.git"
TEST_FILES = ("tests/test_flows.py", "tests/test_tasks.py")
ROOTS = ("tests/__init__.py", "tests/conftest.py", *TEST_FILES)
TERMINAL = ("FINISHED", "FAILED", "KILLED")


def version_tags(names: list[str]) -> list[tuple[Version, str]]:
    tags = []
    for name in names:
        try:
            tags.append((Version(name), name))
        except InvalidVersion:  # other packages' tags, e.g. prefect-aws-0.5.0
            continue
    return sorted(tags)


def choose_ref(names: list[str], installed: Version) -> tuple[str, str]:
    """(ref, why): the newest release tag of the installed minor version, else the newest tag."""
    tags = version_tags(names)
    if not tags:
        raise SystemExit("no version tags in the repository: pass --ref")
    same = [
        name
        for v, name in tags
        if v.release[:2] == installed.release[:2] and not (v.is_prerelease or v.is_devrelease)
    ]
    if same:
        return same[-1], f"newest {installed.major}.{installed.minor}.x release tag"
    return tags[-1][1], f"no {installed.major}.{installed.minor}.x release tag: newest tag"


def repository(
    source: str, ref: str | None, cache: Path, installed: Version
) -> tuple[Path, str, str]:
    """(git dir, ref, revision to read): a local repository as it is, a URL cloned (depth 1)
    into the cache, whose HEAD is then the ref."""
    why = "given"
    if Path(source).is_dir():
        git_dir = Path(git("-C", source, "rev-parse", "--absolute-git-dir").strip())
        if ref is None:
            ref, why = choose_ref(git("tag", "--list", git_dir=git_dir).split(), installed)
        revision = ref
    else:
        if ref is None:
            listed = git("ls-remote", "--tags", "--refs", source).split()
            names = [r.removeprefix("refs/tags/") for r in listed if r.startswith("refs/tags/")]
            ref, why = choose_ref(names, installed)
        git_dir = cache / "clones" / f"{ref}.git"
        if not git_dir.exists():
            git("clone", "--bare", "--depth", "1", "--branch", ref, source, str(git_dir))
        revision = "HEAD"
    commit = git("rev-parse", f"{revision}^{{commit}}", git_dir=git_dir).strip()
    print(f"Prefect's tests: {source} at {ref} ({why}), commit {commit[:12]}")
    return git_dir, ref, revision


def run_pytest(
    python: Path, workdir: Path, junit: Path, swapped: bool, store: Path, keyword: str | None
) -> dict[str, str]:
    """Run the two test modules; {test id: passed | failed | error | skipped}."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(HERE), env.get("PYTHONPATH")]))
    env["MLFLOW_TRACKING_URI"] = str(store)
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    command += ["--junitxml", str(junit), *TEST_FILES]
    if swapped:
        command += ["-p", "swap_plugin"]
    if keyword:
        command += ["-k", keyword]
    label = "swapped" if swapped else "plain"
    log = junit.with_suffix(".log")
    print(f"running {label} ({' '.join(command[1:])}), log {log}", flush=True)
    with log.open("w") as out:
        subprocess.run(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    return outcomes(junit)


def tracked_run_problems(store: Path) -> tuple[int, list[str]]:
    """(runs, problems): every run must be finished, carry its Prefect id as run id, and sit in
    the experiment README names (a flow's own, its caller's for a subflow, its parent's for a
    task run, Default for a task run outside any flow)."""
    sys.path.insert(0, str(REPO))
    from tracking import TrackingClient
    from tracking.entities import ViewType

    client = TrackingClient(str(store))
    experiments = {e.experiment_id: e.name for e in client.search_experiments(ViewType.ALL)}
    runs = {}
    for experiment_id in experiments:
        token = None
        while True:
            page = client.search_runs(
                experiment_id, run_view_type=ViewType.ALL, max_results=5000, page_token=token
            )
            runs.update({run.info.run_id: run for run in page})
            if not (token := page.token):
                break
    problems = []
    for run_id, run in runs.items():
        tags, info = run.data.tags, run.info
        where = f"run {run_id} ({info.run_name}) in experiment {experiments[info.experiment_id]!r}"
        if info.status not in TERMINAL:
            problems.append(f"{where} is {info.status}")
        parent_id = tags.get("mlflow.parentRunId")
        parent = runs.get(parent_id) if parent_id else None
        if parent_id and parent is None:
            problems.append(f"{where}: its parent {parent_id} does not exist")
        elif parent is not None and parent.info.experiment_id != info.experiment_id:
            problems.append(f"{where}: its parent {parent_id} is in another experiment")
        prefect_id = tags.get("prefect.task_run_id") or tags.get("prefect.flow_run_id")
        if prefect_id is None or uuid.UUID(prefect_id).hex != run_id:
            problems.append(f"{where}: run id is not its Prefect run's id ({prefect_id})")
        if "prefect.task_run_id" in tags:
            if parent is None and experiments[info.experiment_id] != "Default":
                problems.append(f"{where}: a task run outside a flow belongs in 'Default'")
            elif parent is not None and parent.data.tags.get("prefect.flow_run_id") != tags.get(
                "prefect.flow_run_id"
            ):
                problems.append(f"{where}: its parent {parent_id} is of another flow run")
        elif parent is None and experiments[info.experiment_id] != tags.get("prefect.flow_name"):
            problems.append(f"{where}: a flow run belongs in the experiment named after its flow")
    return len(runs), problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE)
    parser.add_argument("--ref", help="a tag (any revision of a local repository)")
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument("--cache", type=Path, default=cache_home / "trackflow" / "prefect-suite")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression, for a subset")
    args = parser.parse_args()
    import prefect

    installed = Version(prefect.__version__)
    print(f"prefect {installed}, python {sys.version.split()[0]}, Trackflow from {REPO}")
    args.cache.mkdir(parents=True, exist_ok=True)
    git_dir, ref, revision = repository(args.source, args.ref, args.cache, installed)
    workdir = args.cache / "tests" / ref
    extract(git_dir, revision, workdir, ROOTS)
    python = environment(args.cache, "peers")
    with tempfile.TemporaryDirectory(prefix="prefect-suite-") as tmp:
        results = {}
        for swapped in (False, True):
            label = "swapped" if swapped else "plain"
            store = Path(tmp) / f"mlruns-{label}"
            junit = args.cache / f"{label}.xml"
            results[label] = run_pytest(python, workdir, junit, swapped, store, args.keyword)
            counts = Counter(results[label].values())
            print(f"{label:8} " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
        n_runs, problems = tracked_run_problems(Path(tmp) / "mlruns-swapped")
    plain, swapped_results = results["plain"], results["swapped"]
    regressions = sorted(
        t for t, o in plain.items() if o == "passed" and swapped_results.get(t) != "passed"
    )
    for test in regressions:
        print(f"REGRESSION {test}: passes plain, {swapped_results.get(test, 'missing')} swapped")
    print(f"tracked runs in the swapped run: {n_runs}, problems: {len(problems)}")
    for problem in problems:
        print(f"TRACKING {problem}")
    ok = not regressions and not problems
    print("OK: every test that passes plain passes swapped" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
