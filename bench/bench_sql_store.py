"""Benchmark: our SQL store (`tracking`) against MLflow 3.x's SQL store, same workload, one run.

Both sides write to their own SQLite file (`sqlite:///...`) through their public APIs (fluent
and client); our side also runs the search on a throwaway PostgreSQL server (127.0.0.1, a free
port, stopped at the end). Printed per operation: our figure, MLflow's, the speed-up (ours/MLflow
for rates, MLflow/ours for durations) and pass/fail against the targets:

    log_metric (fluent)    >= 10x MLflow     log_batch of 1,000 metrics   >= 10x MLflow
    start_run + end_run    >= 5x MLflow      search over 10,000 runs      < 50 ms (SQLite and PG)

    python bench/bench_sql_store.py             # full run (~15 min on 2 CPUs, mostly MLflow)
    python bench/bench_sql_store.py --quick     # scaled down, ~2 min
    python bench/bench_sql_store.py --profile   # also cProfile our side of every missed target

See bench/README.md for what each line measures.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import logging
import os
import platform
import pstats
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any

from report import Line, print_table, timed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO, os.path.join(REPO, "tests")):  # tests/pg_server.py: PostgreSQL helpers
    if path not in sys.path:
        sys.path.insert(0, path)

warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)
logging.getLogger("alembic").setLevel(logging.WARNING)

SEARCH_FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"
SEARCH_ORDER_BY = ["metrics.acc DESC"]
LRS = ("0.1", "0.01", "0.001")
BATCH_SIZE = 1000  # metrics per log_batch call (MLflow's per-request maximum)
SEARCH_TARGET_S = 0.050


# --------------------------------------------------------------------------- the two sides
class Side:
    """The calls the workload makes, for one library; subclasses bind them."""

    name: str
    lib: Any
    client: Any

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def set_experiment(self, name: str) -> str:
        return self.lib.set_experiment(name).experiment_id

    def metric(self, key: str, value: float, timestamp: int, step: int) -> Any:
        raise NotImplementedError

    def log_batch(
        self,
        run_id: str,
        metrics: list[Any],
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        raise NotImplementedError

    def search(self, experiment_id: str, max_results: int) -> list[str]:
        """Run names of the matches, in order (both sides get the same names and values)."""
        runs = self.client.search_runs(
            [experiment_id], SEARCH_FILTER, max_results=max_results, order_by=SEARCH_ORDER_BY
        )
        return [r.info.run_name for r in runs]

    def populate_run(self, experiment_id: str, index: int, rng: random.Random) -> None:
        """One search-workload run: 3 params, 3 metrics x 5 steps, 1 tag, then FINISHED."""
        run_id = self.client.create_run(experiment_id, run_name=f"run-{index}").info.run_id
        now = int(time.time() * 1000)
        metrics = [
            self.metric(key, rng.random(), now + step, step)
            for key in ("acc", "loss", "f1")
            for step in range(5)
        ]
        params = {"lr": rng.choice(LRS), "batch": str(rng.choice((16, 32, 64))), "opt": "adam"}
        self.log_batch(run_id, metrics, params, {"group": f"g{index % 7}"})
        self.client.set_terminated(run_id)


class Ours(Side):
    name = "ours"

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        import tracking

        self.lib = tracking
        tracking.set_tracking_uri(uri)
        self.client = tracking.TrackingClient(uri)

    def metric(self, key: str, value: float, timestamp: int, step: int) -> Any:
        return self.lib.Metric(key, value, timestamp, step)

    def log_batch(self, run_id, metrics, params=None, tags=None) -> None:  # type: ignore[no-untyped-def]
        t = self.lib
        self.client.log_batch(
            run_id,
            metrics=metrics,
            params=[t.Param(k, v) for k, v in (params or {}).items()],
            tags=[t.RunTag(k, v) for k, v in (tags or {}).items()],
        )


class Theirs(Side):
    name = "MLflow"

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)  # mlflow sets its level on import
        self.lib = mlflow
        mlflow.set_tracking_uri(uri)
        self.client = mlflow.tracking.MlflowClient(tracking_uri=uri)

    def metric(self, key: str, value: float, timestamp: int, step: int) -> Any:
        from mlflow.entities import Metric

        return Metric(key, value, timestamp, step)

    def log_batch(self, run_id, metrics, params=None, tags=None) -> None:  # type: ignore[no-untyped-def]
        from mlflow.entities import Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()],
        )


# --------------------------------------------------------------------------- workloads
def fluent_log_metric(side: Side, n: int) -> float:
    """calls/s of `log_metric("loss", v, step=i)` inside one active run."""
    lib = side.lib
    side.set_experiment("bench-metric")
    log_metric = lib.log_metric
    with lib.start_run():
        log_metric("warmup", 0.0)

        def loop() -> None:
            for i in range(n):
                log_metric("loss", 1.0 / (i + 1), step=i)

        seconds = timed(loop)
    return n / seconds


def client_log_batch(side: Side, repeats: int) -> float:
    """Median seconds of one client log_batch of BATCH_SIZE metrics (distinct keys, one step)."""
    experiment_id = side.set_experiment("bench-batch")
    run_id = side.client.create_run(experiment_id, run_name="batch").info.run_id
    now = int(time.time() * 1000)
    batches = [
        [side.metric(f"m{k}", random.random(), now + step, step) for k in range(BATCH_SIZE)]
        for step in range(repeats + 1)
    ]
    side.log_batch(run_id, batches[0])  # warm-up: first insert of every key
    times = [timed(lambda b=batch: side.log_batch(run_id, b)) for batch in batches[1:]]
    side.client.set_terminated(run_id)
    return statistics.median(times)


def fluent_create_end_run(side: Side, n: int) -> float:
    """runs/s of `start_run()` + `end_run()` pairs (system tags, run name, status)."""
    lib = side.lib
    side.set_experiment("bench-runs")
    start_run, end_run = lib.start_run, lib.end_run
    start_run()
    end_run()

    def loop() -> None:
        for _ in range(n):
            start_run()
            end_run()

    return n / timed(loop)


def populate(side: Side, experiment_id: str, start: int, stop: int) -> float:
    """Runs start..stop of the search workload; returns runs/s.

    Run i gets the same values on every side and whatever the sizes: seeded by its index.
    """
    return (stop - start) / timed(
        lambda: [side.populate_run(experiment_id, i, random.Random(i)) for i in range(start, stop)]
    )


def warm_search(
    side: Side, experiment_id: str, repeats: int, max_results: int
) -> tuple[float, list[str]]:
    """Median seconds of the search, after one untimed search; and what it found."""
    found = side.search(experiment_id, max_results)
    times = [timed(lambda: side.search(experiment_id, max_results)) for _ in range(repeats)]
    return statistics.median(times), found


# --------------------------------------------------------------------------- PostgreSQL
def postgres_server(tmpdir: str) -> Any:
    """A private PostgreSQL cluster (tests/pg_server.py's), stopped at the end."""
    import pg_server

    return pg_server.running_postgres(tmpdir)


def postgres_version() -> str:
    try:
        import pg_server as pg

        out = subprocess.run([pg._bin("postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.strip() or "?"
    except Exception as e:  # report, never fail the header
        return f"not found ({e})"


# --------------------------------------------------------------------------- main
def machine_info(args: argparse.Namespace) -> None:
    import mlflow
    import sqlalchemy

    import tracking

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    fs = subprocess.run(
        ["df", "-T", args.tmpdir], capture_output=True, text=True
    ).stdout.splitlines()[-1:]
    print("command :", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine : {platform.platform()}; {os.cpu_count()} CPUs (nproc); {cpu}")
    print(f"python  : {platform.python_version()} ({sys.executable})")
    print(
        f"versions: mlflow {mlflow.__version__}; tracking {tracking.__version__}; "
        f"SQLAlchemy {sqlalchemy.__version__}; SQLite {sqlite3.sqlite_version}; "
        f"{postgres_version() if not args.no_postgres else 'PostgreSQL skipped'}"
    )
    print(f"load    : {_load()} (1, 5, 15 min; other processes skew every figure)")
    print(f"tmpdir  : {args.tmpdir} ({' '.join(fs[0].split()[:2]) if fs else '?'})")
    print(
        "counts  : "
        f"log_metric {args.metric_calls}, log_batch {args.batch_repeats} x {BATCH_SIZE} metrics, "
        f"start/end {args.runs}, search {args.search_runs:,} runs (MLflow "
        f"{args.mlflow_search_runs:,}) x {args.repeats} repeats, max_results "
        f"{args.max_results}/{args.page_size}"
    )
    print()


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# option -> (full default, --quick default); an option given on the command line always wins
COUNTS = {
    "metric_calls": (2000, 300),
    "batch_repeats": (20, 5),
    "runs": (300, 50),
    "search_runs": (10_000, 2_000),
    "mlflow_search_runs": (2_000, 500),
    "repeats": (5, 3),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="scale every count down (~2 min)")
    helps = {
        "metric_calls": "fluent log_metric calls",
        "batch_repeats": f"log_batch calls of {BATCH_SIZE} metrics (median reported)",
        "runs": "fluent start_run/end_run pairs",
        "search_runs": "runs in our searched experiment (SQLite and PostgreSQL)",
        "mlflow_search_runs": "runs in MLflow's searched experiment (populating costs MLflow "
        "~100 ms a run on ext4, so 10000 adds ~17 min)",
        "repeats": "warm searches (median reported)",
    }
    for name, (full, quick) in COUNTS.items():
        option = "--" + name.replace("_", "-")
        p.add_argument(option, type=int, help=f"{helps[name]} (default {full}; quick {quick})")
    p.add_argument("--max-results", type=int, default=1000, help="max_results of the search")
    p.add_argument("--page-size", type=int, default=100, help="max_results of the page search")
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL lines")
    p.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the stores are written")
    p.add_argument("--keep", action="store_true", help="keep the SQLite files")
    p.add_argument("--profile", action="store_true", help="cProfile our side of missed targets")
    args = p.parse_args(argv)
    for name, (full, quick) in COUNTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.mlflow_search_runs = min(args.mlflow_search_runs, args.search_runs)
    return args


def run_side(side: Side, args: argparse.Namespace, sizes: list[int]) -> dict[str, Any]:
    """Every workload on one side; search at each size in `sizes` (growing one experiment).

    On PostgreSQL the searches are timed twice: right after populating (planner statistics as
    autovacuum left them) and after an explicit ANALYZE (what autovacuum converges to).
    """
    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    res["log_metric"] = fluent_log_metric(side, args.metric_calls)
    res["log_batch"] = client_log_batch(side, args.batch_repeats)
    res["create_end_run"] = fluent_create_end_run(side, args.runs)
    search_id = side.client.create_experiment("bench-search")
    res["search_experiment"] = search_id
    on_pg = side.uri.startswith("postgres")
    done = 0
    for size in sizes:
        started = time.perf_counter()
        rate = populate(side, search_id, done, size)
        res.setdefault("populate", rate)
        print(f"  {side.name}: {size:,} runs populated ({time.perf_counter() - started:.0f} s)")
        done = size
        if on_pg:
            res[f"stale_{size}"], _ = warm_search(side, search_id, args.repeats, args.max_results)
            analyze(side)
        for label, max_results in (("search", args.max_results), ("page", args.page_size)):
            res[f"{label}_{size}"], res[f"found_{label}_{size}"] = warm_search(
                side, search_id, args.repeats, max_results
            )
    print(f"  {side.name} ({side.uri.split(':')[0]}): done in {time.perf_counter() - t0:.1f} s")
    return res


def analyze(side: Side) -> None:
    """Refresh PostgreSQL's planner statistics (autovacuum does it within about a minute)."""
    from sqlalchemy import text

    with side.client.store.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def profile_ours(op: str, side: Side, args: argparse.Namespace, search_id: str) -> None:
    """cProfile our side of one operation (in the store it was measured in)."""
    side.lib.set_tracking_uri(side.uri)  # the fluent calls follow the last side created
    prof = cProfile.Profile()
    if op == "log_metric":
        prof.runcall(fluent_log_metric, side, args.metric_calls)
    elif op == "log_batch":
        prof.runcall(client_log_batch, side, args.batch_repeats)
    elif op == "create_end_run":
        prof.runcall(fluent_create_end_run, side, args.runs)
    elif op.startswith(("search", "page")):
        max_results = args.max_results if op.startswith("search") else args.page_size
        side.search(search_id, max_results)
        prof.runcall(lambda: [side.search(search_id, max_results) for _ in range(args.repeats)])
    else:
        return
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(15)
    print(f"\n--- cProfile, ours ({side.uri.split(':')[0]}), {op} (top 15 by own time) ---")
    print("\n".join(ln for ln in out.getvalue().splitlines() if ln.strip())[:6000])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine_info(args)
    base = tempfile.mkdtemp(prefix="bench-sql-store-", dir=args.tmpdir)
    cwd = os.getcwd()
    os.chdir(base)  # both libraries put their default artifact roots under the cwd
    try:
        with contextlib.ExitStack() as stack:
            return _bench(args, base, stack)
    finally:
        os.chdir(cwd)
        if args.keep:
            print(f"\nSQLite files kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def _bench(args: argparse.Namespace, base: str, stack: contextlib.ExitStack) -> int:
    n, m = args.search_runs, args.mlflow_search_runs
    sizes = sorted({m, n})
    print("running workloads (ours on SQLite, MLflow on SQLite, ours on PostgreSQL) ...")
    sides: dict[str, Side] = {"sqlite": Ours(f"sqlite:///{os.path.join(base, 'ours.db')}")}
    ours = run_side(sides["sqlite"], args, sizes)

    started = time.perf_counter()
    mlflow_side = Theirs(f"sqlite:///{os.path.join(base, 'mlflow.db')}")
    mlflow_side.client.search_experiments()  # MLflow creates its tables here, untimed
    print(f"  MLflow: fresh database initialised in {time.perf_counter() - started:.1f} s")
    theirs = run_side(mlflow_side, args, [m])

    pg: dict[str, Any] | None = None
    if not args.no_postgres:
        server = stack.enter_context(postgres_server(args.tmpdir))
        sides["pg"] = Ours(server.create_database("bench"))
        pg = run_side(sides["pg"], args, [n])

    lines = [
        Line("log_metric (fluent, active run)", ours["log_metric"], theirs["log_metric"],
             "rate", 10, key="sqlite:log_metric"),
        Line(f"log_batch, {BATCH_SIZE:,} metrics (client)", ours["log_batch"],
             theirs["log_batch"], "time", 10, key="sqlite:log_batch"),
        Line("start_run + end_run (fluent)", ours["create_end_run"],
             theirs["create_end_run"], "rate", 5, "runs/s", key="sqlite:create_end_run"),
    ]  # fmt: skip
    for size in sizes:
        mine = theirs if size == m else {}
        for label, max_results in (("search", args.max_results), ("page", args.page_size)):
            lines.append(
                Line(f"search {size:,} runs, SQLite, max_results={max_results}",
                     ours[f"{label}_{size}"], mine.get(f"{label}_{size}"), "time",
                     abs_target=SEARCH_TARGET_S if size == n else None,
                     key=f"sqlite:{label}_{size}")
            )  # fmt: skip
    lines.append(
        Line("populate: create_run + log_batch + end (client)", ours["populate"],
             theirs["populate"], "rate", unit="runs/s")
    )  # fmt: skip
    if pg is not None:
        for label, max_results in (("search", args.max_results), ("page", args.page_size)):
            lines.append(
                Line(f"search {n:,} runs, PostgreSQL, max_results={max_results}",
                     pg[f"{label}_{n}"], None, "time", abs_target=SEARCH_TARGET_S,
                     key=f"pg:{label}_{n}")
            )  # fmt: skip
        lines += [
            Line(f"  same, before ANALYZE, max_results={args.max_results}", pg[f"stale_{n}"],
                 None, "time"),
            Line("PostgreSQL: log_metric (fluent)", pg["log_metric"], None, "rate"),
            Line(f"PostgreSQL: log_batch, {BATCH_SIZE:,} metrics", pg["log_batch"], None,
                 "time"),
            Line("PostgreSQL: start_run + end_run", pg["create_end_run"], None, "rate",
                 unit="runs/s"),
            Line("PostgreSQL: populate (client)", pg["populate"], None, "rate", unit="runs/s"),
        ]  # fmt: skip
    print()
    if m < n:
        print(f"MLflow's side is searched at {m:,} runs only (--mlflow-search-runs, --quick).")
    print_table(lines)
    print()
    pages = (("search", args.max_results), ("page", args.page_size))
    for label, max_results in pages:
        key = f"found_{label}_{m}"
        _compare("SQLite", ours[key], "MLflow", theirs[key], m, max_results)
    if pg is not None:
        for label, max_results in pages:
            key = f"found_{label}_{n}"
            _compare("SQLite", ours[key], "PostgreSQL", pg[key], n, max_results)
    print(f"load average at the end: {_load()} (over {os.cpu_count()} CPUs)")
    failed = [ln for ln in lines if ln.verdict == "FAIL"]
    passed = [ln for ln in lines if ln.verdict == "PASS"]
    print(f"\ntargets: {len(passed)} passed, {len(failed)} failed")
    if args.profile:
        results = {"sqlite": ours, "pg": pg}
        for ln in failed:
            backend, op = ln.key.split(":", 1)
            profile_ours(op, sides[backend], args, results[backend]["search_experiment"])
    return 1 if failed else 0


def _compare(
    a: str, found_a: list[str], b: str, found_b: list[str], size: int, max_results: int
) -> None:
    verdict = "same runs, same order" if found_a == found_b else "MISMATCH"
    print(
        f"search results, {size:,} runs, max_results={max_results}: {a} {len(found_a)} runs, "
        f"{b} {len(found_b)} runs -> {verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
