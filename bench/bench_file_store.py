"""Benchmark: our file store (`tracking`) against MLflow 3.x's FileStore, same workload, one run.

Each side writes its own `mlruns/` in its own temp folder. Printed per operation: our figure,
MLflow's, the speed-up (ours/MLflow for rates, MLflow/ours for durations) and pass/fail against
the targets (>= 10x on log_metric and search, >= 3x on create+end run, `import tracking` < 0.3 s).

    python bench/bench_file_store.py            # full run (~10 min on 2 CPUs, mostly MLflow)
    python bench/bench_file_store.py --quick    # scaled down, ~1 min
    python bench/bench_file_store.py --profile  # also cProfile our side of every missed target

See bench/README.md for what each line measures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any

from report import Line, print_table, timed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow >= 3.13 refuses its FileStore otherwise
warnings.filterwarnings("ignore")  # MLflow's FileStore deprecation FutureWarning
logging.getLogger("mlflow").setLevel(logging.ERROR)

SEARCH_FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"
SEARCH_ORDER_BY = ["metrics.acc DESC"]
SEARCH_MAX_RESULTS = 1000
LRS = ("0.1", "0.01", "0.001")


# --------------------------------------------------------------------------- the two sides
class Side:
    """The calls the workload makes, for one library; subclasses bind them."""

    name: str
    lib: Any

    def __init__(self, root: str) -> None:
        self.root = root
        self.uri = "file://" + root

    # fluent API (module functions, called directly in the timed loops)
    def set_experiment(self, name: str) -> str:
        return self.lib.set_experiment(name).experiment_id

    # client API
    def create_run(self, experiment_id: str, name: str) -> str:
        return self.client.create_run(experiment_id, run_name=name).info.run_id

    def search(self, experiment_ids: list[str]) -> list[str]:
        """Run names of the matches, in order (both sides get the same names and values)."""
        runs = self.client.search_runs(
            experiment_ids, SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS, order_by=SEARCH_ORDER_BY
        )
        return [r.info.run_name for r in runs]

    def populate_run(self, experiment_id: str, index: int, rng: random.Random) -> None:
        """One search-workload run: 3 params, 3 metrics x 5 steps, 1 tag, then FINISHED."""
        run_id = self.create_run(experiment_id, f"run-{index}")
        now = int(time.time() * 1000)
        metrics = [
            (key, rng.random(), now + step, step)
            for key in ("acc", "loss", "f1")
            for step in range(5)
        ]
        params = {"lr": rng.choice(LRS), "batch": str(rng.choice((16, 32, 64))), "opt": "adam"}
        self.log_batch(run_id, metrics, params, {"group": f"g{index % 7}"})
        self.client.set_terminated(run_id)

    client: Any

    def log_batch(
        self,
        run_id: str,
        metrics: list[tuple[str, float, int, int]],
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        raise NotImplementedError

    def create_experiment_fast(self, name: str, index: int) -> str:
        return self.client.create_experiment(name)


class Ours(Side):
    name = "ours"

    def __init__(self, root: str) -> None:
        super().__init__(root)
        import tracking

        self.lib = tracking
        tracking.set_tracking_uri(self.uri)
        self.client = tracking.TrackingClient(self.uri)

    def log_batch(self, run_id, metrics, params, tags) -> None:  # type: ignore[no-untyped-def]
        t = self.lib
        self.client.log_batch(
            run_id,
            metrics=[t.Metric(k, v, ts, s) for k, v, ts, s in metrics],
            params=[t.Param(k, v) for k, v in params.items()],
            tags=[t.RunTag(k, v) for k, v in tags.items()],
        )


class Theirs(Side):
    name = "MLflow"

    def __init__(self, root: str) -> None:
        super().__init__(root)
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)  # mlflow sets its level on import
        self.lib = mlflow
        mlflow.set_tracking_uri(self.uri)
        self.client = mlflow.tracking.MlflowClient(tracking_uri=self.uri)
        self._store: Any = None

    def log_batch(self, run_id, metrics, params, tags) -> None:  # type: ignore[no-untyped-def]
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, s) for k, v, ts, s in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )

    def create_experiment_fast(self, name: str, index: int) -> str:
        """Setup only: MLflow's public create_experiment re-reads every experiment's meta.yaml
        on each call (about 230 s for 500), so write them through its store's id-based path."""
        if self._store is None:
            from mlflow.store.tracking.file_store import FileStore

            self._store = FileStore(self.root)
        if not hasattr(self._store, "_create_experiment_with_id"):
            return self.client.create_experiment(name)
        experiment_id = str(10**17 + index)
        self._store._create_experiment_with_id(name, experiment_id, None, [])
        return experiment_id


SIDES: dict[str, type[Side]] = {"ours": Ours, "mlflow": Theirs}


# --------------------------------------------------------------------------- workloads
def fluent_log_metric(side: Side, n: int, experiment: str = "bench-metric") -> float:
    lib = side.lib
    side.set_experiment(experiment)
    log_metric = lib.log_metric
    with lib.start_run():
        log_metric("warmup", 0.0)

        def loop() -> None:
            for i in range(n):
                log_metric("loss", 1.0 / (i + 1), step=i)

        seconds = timed(loop)
    return n / seconds


def fluent_log_param(side: Side, n: int) -> float:
    lib = side.lib
    side.set_experiment("bench-param")
    log_param = lib.log_param
    with lib.start_run():
        log_param("warmup", "0")

        def loop() -> None:
            for i in range(n):
                log_param(f"p{i}", i)

        seconds = timed(loop)
    return n / seconds


def fluent_create_end_run(side: Side, n: int) -> float:
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


def create_experiments(side: Side, n: int, prefix: str = "exp") -> float:
    create = side.client.create_experiment
    return n / timed(lambda: [create(f"{prefix}-{i}") for i in range(n)])


def populate(side: Side, experiment_id: str, start: int, stop: int, seed: int) -> float:
    rng = random.Random(seed)
    return (stop - start) / timed(
        lambda: [side.populate_run(experiment_id, i, rng) for i in range(start, stop)]
    )


def warm_search(side: Side, experiment_id: str, repeats: int) -> tuple[float, list[str]]:
    found = side.search([experiment_id])
    times = [timed(lambda: side.search([experiment_id])) for _ in range(repeats)]
    return statistics.median(times), found


def cold_search(side_key: str, root: str, experiment_id: str) -> tuple[float, list[str]]:
    """One search in a fresh interpreter: no in-process caches (the OS page cache stays warm)."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_cold", side_key, root, experiment_id],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["found"]


def _cold_child(side_key: str, root: str, experiment_id: str) -> None:
    side = SIDES[side_key](root)
    side.client.get_experiment(experiment_id)  # open the store, untimed; reads no run files
    start = time.perf_counter()
    found = side.search([experiment_id])
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "found": found}))


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def import_time(module: str, repeats: int) -> float:
    """Median wall time of `python -c "import <module>"` minus that of `python -c pass`."""

    def run(code: str) -> float:
        return timed(
            lambda: subprocess.run([sys.executable, "-c", code], check=True, env=_clean_env())
        )

    base = statistics.median(run("pass") for _ in range(repeats))
    return statistics.median(run(f"import {module}") for _ in range(repeats)) - base


# --------------------------------------------------------------------------- main
def machine_info(args: argparse.Namespace) -> None:
    import mlflow

    import tracking

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    print("command :", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine : {platform.platform()}; {os.cpu_count()} CPUs (nproc); {cpu}")
    print(f"python  : {platform.python_version()} ({sys.executable})")
    print(f"versions: mlflow {mlflow.__version__}; tracking {tracking.__version__}")
    print(f"tmpdir  : {args.tmpdir}")
    print(
        "counts  : "
        f"log_metric {args.metric_calls}, log_param {args.param_calls}, runs {args.runs}, "
        f"search {args.search_small}/{args.search_large} runs x {args.repeats} repeats, "
        f"{args.experiments} experiments x {args.many_exp_calls} log_metric, "
        f"create_experiment {args.create_experiments}, import x {args.import_repeats}"
    )
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="scale every count down (~30 s)")
    p.add_argument("--metric-calls", type=int, default=5000, help="fluent log_metric calls")
    p.add_argument("--param-calls", type=int, default=1000, help="fluent log_param calls")
    p.add_argument("--runs", type=int, default=300, help="fluent start_run/end_run pairs")
    p.add_argument("--search-small", type=int, default=300, help="runs in the first search")
    p.add_argument("--search-large", type=int, default=3000, help="runs in the second search")
    p.add_argument("--repeats", type=int, default=5, help="warm searches (median reported)")
    p.add_argument("--experiments", type=int, default=500, help="experiments for many-exp case")
    p.add_argument("--many-exp-calls", type=int, default=1000, help="log_metric calls, many-exp")
    p.add_argument("--create-experiments", type=int, default=100, help="create_experiment calls")
    p.add_argument("--import-repeats", type=int, default=5, help="interpreter starts per import")
    p.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the stores are written")
    p.add_argument("--keep", action="store_true", help="keep the temp stores")
    p.add_argument("--profile", action="store_true", help="cProfile our side of missed targets")
    p.add_argument("--_cold", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.metric_calls, args.param_calls, args.runs = 1000, 200, 50
        args.search_small, args.search_large, args.repeats = 100, 500, 3
        args.experiments, args.many_exp_calls, args.create_experiments = 100, 200, 30
        args.import_repeats = 3
    return args


def run_side(side_key: str, base: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every workload on one side; returns its figures (each store in its own folder)."""
    res: dict[str, Any] = {}
    side = SIDES[side_key](os.path.join(base, "main"))
    t0 = time.perf_counter()
    res["log_metric"] = fluent_log_metric(side, args.metric_calls)
    res["log_param"] = fluent_log_param(side, args.param_calls)
    res["create_end_run"] = fluent_create_end_run(side, args.runs)
    res["create_experiment"] = create_experiments(side, args.create_experiments)

    search_id = side.client.create_experiment("bench-search")
    res["populate"] = populate(side, search_id, 0, args.search_small, seed=1)
    res["search_small_cold"], cold = cold_search(side_key, side.root, search_id)
    res["search_small"], res["found_small"] = warm_search(side, search_id, args.repeats)
    assert cold == res["found_small"], "cold and warm searches disagree"
    populate(side, search_id, args.search_small, args.search_large, seed=2)
    res["search_large_cold"], cold = cold_search(side_key, side.root, search_id)
    res["search_large"], res["found_large"] = warm_search(side, search_id, args.repeats)
    assert cold == res["found_large"], "cold and warm searches disagree"

    many = SIDES[side_key](os.path.join(base, "many"))
    for i in range(args.experiments):
        many.create_experiment_fast(f"exp-{i}", i)
    res["log_metric_many"] = fluent_log_metric(many, args.many_exp_calls, experiment=f"exp-{i}")
    print(f"  {side.name}: done in {time.perf_counter() - t0:.1f} s", flush=True)
    return res


def profile_ours(op: str, args: argparse.Namespace, base: str) -> None:
    """cProfile our side of one operation; prints the top hot spots."""
    side = Ours(os.path.join(base, f"profile-{op}"))
    prof = cProfile.Profile()
    if op == "log_metric":
        prof.runcall(fluent_log_metric, side, args.metric_calls)
    elif op == "log_metric_many":
        for i in range(args.experiments):
            side.create_experiment_fast(f"exp-{i}", i)
        prof.runcall(fluent_log_metric, side, args.many_exp_calls, f"exp-{i}")
    elif op == "create_end_run":
        prof.runcall(fluent_create_end_run, side, args.runs)
    elif op.startswith("search"):
        search_id = side.client.create_experiment("bench-search")
        size = args.search_large if "large" in op else args.search_small
        populate(side, search_id, 0, size, seed=1)
        if op.endswith("_cold"):
            from tracking.state import STATE

            STATE.stores.clear()  # a fresh store instance: empty caches, like a new process
            side = Ours(side.root)
            prof.runcall(side.search, [search_id])
        else:
            side.search([search_id])
            prof.runcall(lambda: [side.search([search_id]) for _ in range(args.repeats)])
    else:
        return
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(15)
    print(f"\n--- cProfile, ours, {op} (top 15 by own time) ---")
    print("\n".join(ln for ln in out.getvalue().splitlines() if ln.strip())[:6000])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._cold:
        _cold_child(*args._cold)
        return 0
    machine_info(args)
    base = tempfile.mkdtemp(prefix="bench-file-store-", dir=args.tmpdir)
    try:
        print("running workloads (ours first, then MLflow) ...", flush=True)
        ours = run_side("ours", os.path.join(base, "ours"), args)
        theirs = run_side("mlflow", os.path.join(base, "mlflow"), args)
        print("timing imports ...", flush=True)
        imp_ours = import_time("tracking", args.import_repeats)
        imp_theirs = import_time("mlflow", args.import_repeats)

        s, l_, e = args.search_small, args.search_large, args.experiments
        specs: list[tuple[str, str, str, float | None, str]] = [
            # (result key, label, kind, minimum speed-up, unit)
            ("log_metric", "log_metric (fluent, active run)", "rate", 10, "calls/s"),
            ("log_metric_many", f"log_metric, {e} experiments", "rate", 10, "calls/s"),
            ("log_param", "log_param (fluent)", "rate", None, "calls/s"),
            ("create_end_run", "start_run + end_run (fluent)", "rate", 3, "runs/s"),
            ("search_small", f"search, {s} runs (median warm)", "time", 10, ""),
            ("search_small_cold", f"search, {s} runs (cold, new process)", "time", 10, ""),
            ("search_large", f"search, {l_} runs (median warm)", "time", 10, ""),
            ("search_large_cold", f"search, {l_} runs (cold, new process)", "time", 10, ""),
            ("populate", "create run + log_batch + end (client)", "rate", None, "runs/s"),
            ("create_experiment", "create_experiment (client)", "rate", None, "exps/s"),
        ]
        lines = [
            Line(label, ours[key], theirs[key], kind, target, unit, key=key)
            for key, label, kind, target, unit in specs
        ]
        lines.append(
            Line("import (fresh interpreter)", imp_ours, imp_theirs, "time", abs_target=0.3)
        )
        print()
        print_table(lines)
        print()
        for key in ("found_small", "found_large"):
            same = ours[key] == theirs[key]
            print(
                f"search results ({key[6:]}): ours {len(ours[key])} runs, MLflow "
                f"{len(theirs[key])} runs -> {'same runs, same order' if same else 'MISMATCH'}"
            )
        failed = [ln for ln in lines if ln.verdict == "FAIL"]
        passed = [ln for ln in lines if ln.verdict == "PASS"]
        print(f"\ntargets: {len(passed)} passed, {len(failed)} failed")
        if args.profile:
            for ln in failed:
                if ln.key:
                    profile_ours(ln.key, args, base)
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"\nstores kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
