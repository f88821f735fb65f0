"""Tracked vs plain Prefect at Prefect's default settings, alternated in one process.

Two workloads: a flow of N trivial tasks called one after another, and a flow mapping one
trivial task over N inputs (`.map`, Prefect's default thread pool task runner). Nothing of
Prefect's is configured: its temporary API server starts by itself as it does for a user with
a fresh PREFECT_HOME, task and flow logs go to the console and to the API, the flow heartbeat
stays on. Compared is CPU time, not wall time: time.thread_time of the calling thread and
time.process_time of the whole process (so the task runner's threads and our write-behind
thread count). Each repeat runs plain, tracked and plain again; the two plain figures give the
noise of the machine in the same run.

    python bench/bench_prefect.py [--tasks 200] [--repeats 9] [--profile] 2>prefect.log

Prefect logs every task run to the console (stderr): send it to a file.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no calls home

import prefect

import tracking
from flows import flow
from tasks import task

TARGETS = {"thread": 1.15, "process": 1.30}
Sample = tuple[float, float]  # (calling-thread CPU s, process CPU s)


def step(i: int) -> int:
    return i + 1


plain_step = prefect.task(step, name="step")
tracked_step = task(step, name="step")


def sequential(step_task: Callable[[int], int], n: int) -> int:
    return sum(step_task(i) for i in range(n))


def mapped(step_task: prefect.Task, n: int) -> int:  # type: ignore[type-arg]
    return sum(step_task.map(range(n)).result())


WORKLOADS = {
    "sequential": (
        prefect.flow(lambda n: sequential(plain_step, n), name="bench-seq-plain"),
        flow(lambda n: sequential(tracked_step, n), name="bench-seq-tracked"),
    ),
    "map": (
        prefect.flow(lambda n: mapped(plain_step, n), name="bench-map-plain"),
        flow(lambda n: mapped(tracked_step, n), name="bench-map-tracked"),
    ),
}


def measure(fn: Callable[[int], int], n: int, attempts: int = 3) -> Sample:
    """CPU times of one flow run; a run that the temporary API server fails (it answers 503
    when its SQLite database is busy, as on a loaded machine) is run again."""
    for _ in range(attempts - 1):
        try:
            return measure_once(fn, n)
        except Exception as e:
            print(f"  (a run failed and was repeated: {type(e).__name__}: {str(e)[:80]})")
    return measure_once(fn, n)


def measure_once(fn: Callable[[int], int], n: int) -> Sample:
    thread0, process0 = time.thread_time(), time.process_time()
    fn(n)
    return time.thread_time() - thread0, time.process_time() - process0


def median(samples: list[Sample], i: int) -> float:
    return statistics.median(s[i] for s in samples)


def report(name: str, samples: dict[str, list[Sample]], n: int) -> bool:
    print(f"\n{name}: {n} tasks, medians of {len(samples['plain'])}")
    print(f"{'':12}{'thread CPU s':>14}{'process CPU s':>15}")
    for side in ("plain", "plain again", "tracked"):
        print(f"{side:12}{median(samples[side], 0):14.3f}{median(samples[side], 1):15.3f}")
    ok = True
    for i, what in enumerate(("thread", "process")):
        plain = median(samples["plain"], i)
        noise = median(samples["plain again"], i) / plain
        ratio = median(samples["tracked"], i) / plain
        passed = ratio <= TARGETS[what]
        ok &= passed
        print(
            f"{what:7} CPU ratio {ratio:.3f} (target <= {TARGETS[what]:.2f}) "
            f"{'PASS' if passed else 'FAIL'}; plain vs plain {noise:.3f}"
        )
    extra_ms = (median(samples["tracked"], 1) - median(samples["plain"], 1)) / n * 1000
    print(f"tracking costs {extra_ms:.3f} ms of process CPU per task")
    return ok


def profile(fn: Callable[[int], int], n: int, path: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    fn(n)
    profiler.disable()
    profiler.dump_stats(path)
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--workloads", default="sequential,map")
    parser.add_argument("--profile", action="store_true", help="cProfile one tracked run each")
    args = parser.parse_args()
    store = tempfile.mkdtemp(prefix="bench-mlruns-")
    tracking.set_tracking_uri(store)
    print(f"python {sys.version.split()[0]}, prefect {prefect.__version__}, nproc {os.cpu_count()}")
    print(f"{args.repeats} repeats of plain / tracked / plain again; store {store}")
    ok = True
    for name in args.workloads.split(","):
        plain_flow, tracked_flow = WORKLOADS[name]
        measure(plain_flow, 5)  # the first flow starts the API server; warm up both paths
        measure(tracked_flow, 5)
        samples: dict[str, list[Sample]] = {"plain": [], "tracked": [], "plain again": []}
        for _ in range(args.repeats):
            samples["plain"].append(measure(plain_flow, args.tasks))
            samples["tracked"].append(measure(tracked_flow, args.tasks))
            samples["plain again"].append(measure(plain_flow, args.tasks))
        ok &= report(name, samples, args.tasks)
        if args.profile:
            profile(tracked_flow, args.tasks, os.path.join(store, f"{name}.prof"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
