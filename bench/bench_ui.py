"""Time the UI's pages on a big store: ``python bench/bench_ui.py [--runs 10000]``.

Fills a file store and a SQLite store (in a temp folder, or --dir) with flow-like runs: each
top-level run has a task child, a task with a nested task, and two more tasks (5 runs per tree),
with params, metric histories and tags. Then, in a fresh process per store, serves the UI with
uvicorn and reads each page's server time from its Server-Timing header: the first request
(cold caches) and the median of --repeat more (warm).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PAGES = [
    ("experiments list", "/"),
    ("runs tree, page 1", "/experiments/{id}"),
    ("runs tree, page 20", "/experiments/{id}?page=20"),
    ("tree sorted by metric", "/experiments/{id}?sort=metric%3Aaccuracy&dir=desc"),
    ("tree sorted by duration", "/experiments/{id}?sort=duration"),
    (
        "tree filtered",
        "/experiments/{id}?filter=metrics.accuracy+%3E+0.5+AND+params.lr+%3D+%270.1%27",
    ),
    ("flat, page 1", "/experiments/{id}?view=flat"),
    ("run page", "/runs/{run}"),
]


def populate(uri: str, runs: int, seed: int = 0) -> None:
    from tracking import TrackingClient
    from tracking.entities import Metric, Param, RunTag

    client = TrackingClient(uri)
    experiment_id = client.create_experiment("bench-flow")
    rng = random.Random(seed)
    trees = max(1, runs // 5)
    base = int(time.time() * 1000) - trees * 60_000
    started = time.time()
    for i in range(trees):
        start = base + i * 60_000
        top = client.create_run(
            experiment_id,
            start_time=start,
            run_name=f"flow-{i}",
            tags={"prefect.flow_name": "bench-flow", "prefect.flow_run_id": f"fr-{i}"},
        )
        top_id = top.info.run_id
        metrics = [Metric("accuracy", rng.random(), start + k, k) for k in range(5)]
        client.log_batch(
            top_id,
            [*metrics, Metric("loss", rng.random(), start, 0)],
            [Param("lr", rng.choice(["0.1", "0.01", "0.001"])), Param("depth", str(i % 9))],
            [RunTag("team", rng.choice(["a", "b"]))],
        )
        parent_of_nested = None
        for t in range(4):
            parent = parent_of_nested if t == 3 else top_id
            child = client.create_run(
                experiment_id,
                start_time=start + 1000 * (t + 1),
                run_name=f"task-{i}-{t}",
                tags={"mlflow.parentRunId": parent, "prefect.task_name": f"task{t}"},
            )
            if t == 0:
                parent_of_nested = child.info.run_id
            client.log_batch(child.info.run_id, [Metric("score", rng.random(), start, 0)])
            client.set_terminated(child.info.run_id, "FINISHED", start + 1000 * (t + 2))
        client.set_terminated(top_id, "FINISHED", start + 10_000 + rng.randint(0, 5000))
    print(f"  filled {uri}: {trees * 5} runs in {time.time() - started:.0f} s", flush=True)


def measure(uri: str, repeat: int) -> dict[str, tuple[float, float, float]]:
    """{page: (first request ms, median ms, median CPU ms)} of server time, in this (fresh)
    process. CPU time (this process: server and client) shows the cost on a busy machine,
    where wall time also counts the waits for a CPU."""
    import httpx

    from tracking import TrackingClient
    from tracking.servers.listen import bind
    from tracking.servers.ui.app import create_ui_app
    from tracking.servers.ui.cli import make_server

    client = TrackingClient(uri)
    experiment = client.get_experiment_by_name("bench-flow")
    assert experiment is not None
    sock = bind("127.0.0.1", 0)
    server = make_server(create_ui_app(uri), sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    run_id = None
    results = {}
    try:
        with httpx.Client(base_url=base, timeout=120) as http:
            for name, path in PAGES:
                if "{run}" in path and run_id is None:
                    page = http.get(f"/experiments/{experiment.experiment_id}").text
                    run_id = page.split('data-id="', 1)[1].split('"', 1)[0]
                url = path.format(id=experiment.experiment_id, run=run_id)
                times, cpu = [], []
                for _ in range(repeat + 1):
                    cpu_start = time.process_time()
                    response = http.get(url)
                    cpu.append((time.process_time() - cpu_start) * 1000)
                    response.raise_for_status()
                    timing = response.headers["server-timing"].split(",")[0]
                    times.append(float(timing.split("dur=")[1]))
                results[name] = (times[0], statistics.median(times[1:]), statistics.median(cpu[1:]))
    finally:
        server.should_exit = True
        thread.join(10)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/bench_ui.py", description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", help="keep the stores here (reused when they exist)")
    parser.add_argument("--stores", default="file,sqlite")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one store, JSON out
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeat)))
        return 0
    folder = args.dir or tempfile.mkdtemp(prefix="trackflow-ui-bench-")
    os.makedirs(folder, exist_ok=True)
    uris = {
        "file": os.path.join(folder, f"mlruns-{args.runs}"),
        "sqlite": f"sqlite:///{folder}/ui-{args.runs}.db",
    }
    print(f"UI page server times, {args.runs} runs; load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs; stores in {folder}")  # fmt: skip
    table = {}
    for kind in args.stores.split(","):
        uri = uris[kind]
        exists = os.path.isdir(uri) if kind == "file" else os.path.exists(uri[len("sqlite:///") :])
        if not exists:
            populate(uri, args.runs)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                uri,
                "--repeat",
                str(args.repeat),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        table[kind] = json.loads(out.strip().splitlines()[-1])
    kinds = list(table)
    columns = " | ".join(f"{k} first | {k} warm | {k} warm CPU" for k in kinds)
    print(f"| page | {columns} |")
    print("|" + "---|" * (1 + 3 * len(kinds)))
    for name, _ in PAGES:
        cells = []
        for kind in kinds:
            first, warm, cpu = table[kind][name]
            cells += [f"{first:.0f} ms", f"{warm:.0f} ms", f"{cpu:.0f} ms"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
