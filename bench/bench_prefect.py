"""Tracked vs plain Prefect: a flow of N trivial tasks, alternated in one process.

Compares CPU time, not wall time (the temporary Prefect API server stalls at random):
time.thread_time of the calling thread and time.process_time of the whole process (so work
pushed to background threads counts). Prints medians, ratios and best-of-N wall times.

    python bench/bench_prefect.py [--tasks 200] [--repeats 9]

The CPU time of identical plain flows varies by up to 40% between runs here (the temporary
Prefect API server stalls), so take at least 9 runs each; 15 settle the medians better.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

import prefect
import prefect.settings as ps
from prefect.settings import temporary_settings
from prefect.testing.utilities import prefect_test_harness

import tracking
from flows import flow
from tasks import task


def plain_step(i: int) -> int:
    return i + 1


plain_task = prefect.task(plain_step, name="step")
tracked_task = task(plain_step, name="step")


def body(step_task, n: int) -> int:
    return sum(step_task(i) for i in range(n))


plain_flow = prefect.flow(lambda n: body(plain_task, n), name="bench-plain")
tracked_flow = flow(lambda n: body(tracked_task, n), name="bench-tracked")


def measure(fn, n: int) -> tuple[float, float, float]:
    thread0, proc0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    fn(n)
    return (
        time.thread_time() - thread0,
        time.process_time() - proc0,
        time.perf_counter() - wall0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    store = tempfile.mkdtemp(prefix="bench-mlruns-")
    tracking.set_tracking_uri(store)
    print(f"python {sys.version.split()[0]}, prefect {prefect.__version__}, nproc {os.cpu_count()}")
    print(f"{args.tasks} trivial tasks per flow, {args.repeats} runs each, store {store}")
    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={ps.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        measure(plain_flow, 5)  # warm up both paths
        measure(tracked_flow, 5)
        results: dict[str, list[tuple[float, float, float]]] = {"plain": [], "tracked": []}
        for _ in range(args.repeats):
            results["plain"].append(measure(plain_flow, args.tasks))
            results["tracked"].append(measure(tracked_flow, args.tasks))
    med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in results.items()}
    best_wall = {k: min(r[2] for r in v) for k, v in results.items()}
    print(f"{'':10}{'thread CPU s':>14}{'process CPU s':>15}{'best wall s':>13}")
    for k in ("plain", "tracked"):
        print(f"{k:10}{med[k][0]:14.3f}{med[k][1]:15.3f}{best_wall[k]:13.3f}")
    thread_ratio = med["tracked"][0] / med["plain"][0]
    process_ratio = med["tracked"][1] / med["plain"][1]
    per_task_ms = (med["tracked"][1] - med["plain"][1]) / args.tasks * 1000
    print(
        f"thread CPU ratio  {thread_ratio:.3f}  (target <= 1.15) "
        f"{'PASS' if thread_ratio <= 1.15 else 'FAIL'}"
    )
    print(
        f"process CPU ratio {process_ratio:.3f}  (target <= 1.30) "
        f"{'PASS' if process_ratio <= 1.30 else 'FAIL'}"
    )
    print(f"tracking cost per task: {per_task_ms:.3f} ms of process CPU")
    print(f"best wall: plain {best_wall['plain']:.3f} s, tracked {best_wall['tracked']:.3f} s")


if __name__ == "__main__":
    main()
