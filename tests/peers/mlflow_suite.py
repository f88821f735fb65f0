"""MLflow's own REST tests, run against `mlflow server` and against `trackflow server`.

    python tests/peers/mlflow_suite.py [SOURCE] [--ref REF] [--tests-dir DIR] [--cache DIR]
                                       [-k EXPR] [--reuse-mlflow]

The tests are MLflow's tests/tracking/test_rest_tracking.py, test_model_registry.py and
test_mlflow_artifacts.py with the conftest and helper modules they import, for the installed
MLflow client's version. They come from `--tests-dir` (a folder holding MLflow's `tests/` and
`pyproject.toml`, used as it is), else from SOURCE, a git repository of MLflow: a local git
directory (bare or not), or a URL cloned shallow and blob-less (only the files needed are
fetched); default GitHub's mlflow/mlflow at tag v<installed version> (`--ref`). Extracted files
go to the cache folder (default $XDG_CACHE_HOME/trackflow/mlflow-suite), never into this
repository. MLflow's pytest plugins (our `peers-mlflow` extra) are installed into a virtual
environment in the cache folder that sees this interpreter's packages, pinned.

Two runs: MLflow's tests as they are (their fixtures serve MLflow's own server app), and with
mlflow_swap.py loaded, which makes the same fixtures start `trackflow server` on the file store
and on SQLite (MLflow skips its FileStore; both of our backends run every test). A test that
passes against MLflow must pass against ours on each backend, unless it exercises an MLflow 3
GenAI feature Trackflow leaves out or MLflow's GraphQL endpoint (`OUT_OF_SCOPE`: traces,
GenAI evaluation datasets, prompts, the AI gateway and its secrets, scorers, webhooks, issues,
jobs, the assistant), or differs on purpose (`DELIBERATE`, with the reason). Prints both counts
per backend and every test that passes against MLflow but not against ours; exit status 1 if
one is none of those.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from suite_tools import environment, extract, git, outcomes

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_SOURCE = "https://github.com/mlflow/mlflow.git"
TEST_FILES = (
    "tests/tracking/test_rest_tracking.py",
    "tests/tracking/test_model_registry.py",
    "tests/tracking/test_mlflow_artifacts.py",
)
ROOTS = ("tests/__init__.py", "tests/conftest.py", "tests/tracking/conftest.py", *TEST_FILES)
PER_TEST_TIMEOUT = 300
#: MLflow 3 GenAI features Trackflow does not implement (README, "Out of scope"), and MLflow's
#: GraphQL endpoint (only MLflow's own web UI uses it): tests whose names mention them are
#: counted apart. Our server answers their endpoints with MLflow's ENDPOINT_NOT_FOUND.
OUT_OF_SCOPE = re.compile(
    r"trace|span|otel|assessment|evaluation_dataset|genai|dataset_record|prompt|gateway|"
    r"secret|endpoint|model_definition|provider|budget|guardrail|scorer|webhook|issue|"
    r"[^a-z]job|assistant|online_scoring|judge|add_experiments|remove_experiments|"
    r"dataset_experiment|add_multiple_experiments|dataset_(to|from)_experiments|graphql",
    re.IGNORECASE,
)
#: Tests whose difference is deliberate, with the reason (README, development section).
DELIBERATE = {
    "test_create_model_version_with_file_uri": (
        "expects HTTP 500 for a file:// source naming a remote host; ours answers 400 with "
        "MLflow's message (bad input never gets a 5xx, which clients retry)"
    ),
    **dict.fromkeys(
        ("test_get_logged_model_artifact", "test_list_logged_model_artifacts"),
        "on SQLite, MLflow's conftest hands the server a database made earlier whose default "
        "experiment keeps artifacts in another temporary folder; our server reads artifacts "
        "only under its artifact roots (README, Artifact roots), MLflow's anywhere",
    ),
}
BACKENDS = {"file": "file", "sqlalchemy": "SQLite"}


def repository(source: str, ref: str, cache: Path) -> Path:
    """The git dir holding `ref`: a local repository as it is, a URL cloned into the cache
    (depth 1, no blobs until `git show` needs them)."""
    if Path(source).is_dir():
        return Path(git("-C", source, "rev-parse", "--absolute-git-dir").strip())
    git_dir = cache / "clones" / f"{ref}.git"
    if not git_dir.exists():
        git("clone", "--bare", "--depth", "1", "--filter=blob:none", "--branch", ref, source,
            str(git_dir))  # fmt: skip
    return git_dir


def run_pytest(
    python: Path, workdir: Path, junit: Path, swapped: bool, keyword: str | None
) -> dict[str, str]:
    """Run the three test modules; {test id: passed | failed | error | skipped}."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(HERE)
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts="]
    command += ["-p", "no:legacypath", "--timeout", str(PER_TEST_TIMEOUT)]
    command += ["--junitxml", str(junit), *TEST_FILES]
    if swapped:
        command += ["-p", "mlflow_swap"]
    if keyword:
        command += ["-k", keyword]
    label = "trackflow server" if swapped else "mlflow server"
    log = junit.with_suffix(".log")
    print(f"running against {label} ({' '.join(command[1:])}), log {log}", flush=True)
    with log.open("w") as out:
        subprocess.run(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    return outcomes(junit)


def backend_of(test: str) -> str | None:
    """'file' or 'sqlalchemy' for a test parametrized by MLflow's backend fixtures."""
    params = test.partition("[")[2].rstrip("]").split("-")
    return next((p for p in params if p in BACKENDS), None)


def on_backend(test: str, backend: str) -> str:
    """The id of `test` (run on MLflow's SQL store) for another backend."""
    name, _, params = test.partition("[")
    swapped = ["file" if p == "sqlalchemy" else p for p in params.rstrip("]").split("-")]
    return f"{name}[{'-'.join(swapped)}]" if backend == "file" else test


def compare(mlflow: dict[str, str], ours: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(regressions, out of scope, deliberate): tests passing against MLflow that fail against
    ours. A file-store variant our run skipped is the test's own skip (a feature it does not
    run on a file store), not a failure."""
    regressions, out_of_scope, deliberate = [], [], []
    for test, outcome in sorted(mlflow.items()):
        if outcome != "passed":
            continue
        backends = ["file", "sqlalchemy"] if backend_of(test) == "sqlalchemy" else [None]
        for backend in backends:
            ours_id = on_backend(test, backend) if backend else test
            result = ours.get(ours_id, "missing")
            if result == "passed" or (backend == "file" and result == "skipped"):
                continue
            name = test.partition("[")[0].rpartition("::")[2]
            line = f"{ours_id}: {result}"
            if name in DELIBERATE:
                deliberate.append(f"{line} ({DELIBERATE[name]})")
            elif OUT_OF_SCOPE.search(name):
                out_of_scope.append(line)
            else:
                regressions.append(line)
    return regressions, out_of_scope, deliberate


def counts(results: dict[str, str], backend: str) -> str:
    """Outcome counts of the tests run on `backend` (and those without a backend)."""
    found = Counter(o for t, o in results.items() if backend_of(t) in (backend, None))
    return ", ".join(f"{n} {kind}" for kind, n in sorted(found.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE)
    parser.add_argument("--ref", help="tag or commit (default: v<installed mlflow version>)")
    parser.add_argument("--tests-dir", type=Path, help="MLflow's tests, already extracted")
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument("--cache", type=Path, default=cache_home / "trackflow" / "mlflow-suite")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression, for a subset")
    parser.add_argument(
        "--reuse-mlflow",
        action="store_true",
        help="use the results of the last run against mlflow server (same tests) if present",
    )
    args = parser.parse_args()
    import mlflow

    ref = args.ref or f"v{mlflow.__version__}"
    print(f"mlflow {mlflow.__version__}, python {sys.version.split()[0]}, Trackflow from {REPO}")
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.tests_dir is not None:
        workdir = args.tests_dir.resolve()
        if not (workdir / TEST_FILES[0]).is_file():
            raise SystemExit(f"{workdir} holds no {TEST_FILES[0]}")
        print(f"MLflow's tests: {workdir} (given)")
    else:
        git_dir = repository(args.source, ref, args.cache)
        commit = git("rev-parse", f"{ref}^{{commit}}", git_dir=git_dir).strip()
        print(f"MLflow's tests: {args.source} at {ref}, commit {commit[:12]}")
        workdir = args.cache / "tests" / ref.replace("/", "_")
        extract(git_dir, ref, workdir, ROOTS)
    python = environment(args.cache, "peers-mlflow")
    results = {}
    for swapped in (False, True):
        label = "trackflow" if swapped else "mlflow"
        junit = workdir / f".results-{label}.xml"
        if not swapped and args.reuse_mlflow and junit.exists() and not args.keyword:
            print(f"reusing {junit}")
            results[label] = outcomes(junit)
        else:
            results[label] = run_pytest(python, workdir, junit, swapped, args.keyword)
    print(f"mlflow server (SQLite):      {counts(results['mlflow'], 'sqlalchemy')}")
    for backend, name in BACKENDS.items():
        print(f"trackflow server ({name}): {counts(results['trackflow'], backend):>6}")
    regressions, out_of_scope, deliberate = compare(results["mlflow"], results["trackflow"])
    print(
        f"passing against mlflow server, not against ours: {len(regressions)} (+ "
        f"{len(out_of_scope)} of features out of scope, {len(deliberate)} deliberate)"
    )
    for line in out_of_scope:
        print(f"OUT OF SCOPE {line}")
    for line in deliberate:
        print(f"DELIBERATE {line}")
    for line in regressions:
        print(f"REGRESSION {line}")
    print("OK" if not regressions else "FAILED")
    return 0 if not regressions else 1


if __name__ == "__main__":
    sys.exit(main())
