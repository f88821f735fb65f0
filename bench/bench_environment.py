"""What recording a run's environment costs (tracking.run_environment), on the file store.

1. Once per process: computing the snapshot (every installed distribution, python_env.yaml,
   the git state and diff of the code's work tree), from cold caches.
2. Per run: `record` on a new run with warm caches (one batch of tags, two or three small
   artifact files): what every flow run pays.
3. Per flow run, end to end: a flow of one task with capture_environment=True vs False,
   alternated in one process against a temporary Prefect API; medians of process CPU time.

    python bench/bench_environment.py [--runs 300] [--flows 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-env-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

import tracking
from tracking import run_environment

CACHES = (
    run_environment.distributions,
    run_environment._interpreter,
    run_environment._git_root,
    run_environment._git_state,
    run_environment.snapshot,
)


def cold_snapshot(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        for cache in CACHES:
            cache.cache_clear()
        started = time.perf_counter()
        run_environment.snapshot(__file__, "main")
        times.append(time.perf_counter() - started)
    return times


def per_run(runs: int) -> tuple[list[float], list[float]]:
    """(wall, thread CPU) of record() on `runs` new runs."""
    client = tracking.TrackingClient()
    experiment = client.store.get_or_create_experiment("bench-environment").experiment_id
    walls, cpus = [], []
    for _ in range(runs):
        run = client.create_run(experiment)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        run_environment.record(client, run, __file__, "main")
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.thread_time() - cpu0)
    return walls, cpus


def flows(repeats: int) -> dict[str, list[float]]:
    """Process CPU time per flow run, capture on and off, alternated."""
    import prefect.settings as ps
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from flows import flow
    from tasks import task

    step = task(lambda x: x + 1, name="step")
    on = flow(lambda: step(1), name="bench-capture-on")
    off = flow(lambda: step(1), name="bench-capture-off", capture_environment=False)
    results: dict[str, list[float]] = {"on": [], "off": []}
    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={ps.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        on(), off()  # warm up (the first capture computes the snapshot)
        for _ in range(repeats):
            for name, fn in (("on", on), ("off", off)):
                cpu0 = time.process_time()
                fn()
                results[name].append(time.process_time() - cpu0)
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--flows", type=int, default=30, help="0 skips the flow comparison")
    args = parser.parse_args()
    tracking.set_tracking_uri(tempfile.mkdtemp(prefix="bench-env-mlruns-"))
    print(f"python {sys.version.split()[0]}, nproc {os.cpu_count()}")
    count = len(run_environment.distributions())
    cold = cold_snapshot(5)
    print(
        f"once per process (cold, {count} distributions, git state): {ms(statistics.median(cold))}"
    )
    walls, cpus = per_run(args.runs)
    print(
        f"per run, record() with warm caches ({args.runs} runs): median wall "
        f"{ms(statistics.median(walls))}, thread CPU {ms(statistics.median(cpus))}"
    )
    if args.flows:
        results = flows(args.flows)
        on, off = statistics.median(results["on"]), statistics.median(results["off"])
        print(
            f"flow of one task, process CPU per flow run (median of {args.flows}): "
            f"capture on {ms(on)}, off {ms(off)}, difference {ms(on - off)}, ratio {on / off:.3f}"
        )


if __name__ == "__main__":
    main()
