"""Benchmark: our tracking server against `mlflow server`, same backend, same clients, one run.

Each server runs for real in a subprocess on a free 127.0.0.1 port with the same backend kind
(SQLite; PostgreSQL with --postgres) and the same number of uvicorn workers, and is driven over
HTTP by N client processes (spawned) with MLflow's own client (`MlflowClient`) and with ours
(`tracking.TrackingClient`, REST store), so four figures per workload and N:

    log_metric          one MlflowClient/TrackingClient.log_metric call per point, one run
    create + end run    create_run + set_terminated, one pair per "run"

Printed per line: MLflow's server, ours, the speed-up (ours / MLflow, aggregate calls/s of the
N clients) and PASS/FAIL against the target (ours >= 5x MLflow's server, same client, same N).
Under the table: each client alone against a stub server that answers at once, for scale.

    python bench/bench_server.py                  # SQLite, workers 1 and 2, 1 and 4 clients
    python bench/bench_server.py --quick          # fewer calls, workers 1 only (~3 min)
    python bench/bench_server.py --postgres       # also PostgreSQL (--backends postgresql: only)
    python bench/bench_server.py --profile-only   # just cProfile our server in-process

--profile (also on by default when a target is missed, unless --no-profile) runs our server
in-process (uvicorn in a thread, every thread under cProfile) and prints its hot spots for the
same two workloads. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.server
import json
import multiprocessing
import os
import platform
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (REPO, os.path.join(REPO, "tests")):  # tests/pg_server.py: PostgreSQL helpers
    if _path not in sys.path:
        sys.path.insert(0, _path)

TARGET = 5.0
STARTUP_TIMEOUT = 240.0
CLIENT_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # an error fails the line instead of hiding in a retry
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # no "View run ..." line per set_terminated
}
CLEARED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
    "MLFLOW_ARTIFACT_ROOT",
)
SERVERS = ("mlflow", "trackflow")
CLIENTS = ("mlflow", "trackflow")
WORKLOADS = ("log_metric", "create + end run")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKFLOW_SERVER_")}
    for name in CLEARED_ENV:
        env.pop(name, None)
    env.update(CLIENT_ENV)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- servers
@dataclass
class Server:
    kind: str
    url: str
    process: subprocess.Popen[bytes]
    log: str
    boot_seconds: float = 0.0


def start_server(kind: str, backend_uri: str, workdir: str, workers: int) -> Server:
    os.makedirs(workdir, exist_ok=True)
    port = free_port()
    artifacts = os.path.join(workdir, "artifacts")
    module = "tracking.servers.api" if kind == "trackflow" else "mlflow"
    if kind == "mlflow" and backend_uri.startswith("postgresql://"):
        # MLflow's SQLAlchemy would pick psycopg2 (not installed); we both use psycopg 3.
        backend_uri = "postgresql+psycopg://" + backend_uri.split("://", 1)[1]
    command = [sys.executable, "-m", module] + ([] if kind == "trackflow" else ["server"])
    command += ["--backend-store-uri", backend_uri, "--artifacts-destination", artifacts]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log = os.path.join(workdir, "server.log")
    started = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = Server(kind, f"http://127.0.0.1:{port}", process, log)
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/health", timeout=2).text.strip() == "OK":
                server.boot_seconds = time.perf_counter() - started
                return server
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"{kind} server not up in {STARTUP_TIMEOUT} s:\n{_tail(log)}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGINT)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


# --------------------------------------------------------------------------- clients
def make_client(kind: str, url: str) -> Any:
    """MlflowClient or TrackingClient: both have create_run, log_metric, set_terminated."""
    if kind == "mlflow":
        import logging

        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        return MlflowClient(tracking_uri=url)
    from tracking import TrackingClient

    return TrackingClient(url)


def client_process(
    kind: str,
    url: str,
    experiment_id: str,
    metric_calls: int,
    runs: int,
    barriers: list[Any],
    results: Any,
) -> None:
    """Warm up, then phase 1 (log_metric) and phase 2 (create + end run), each started
    together with the other clients behind a barrier; reports per-call latencies."""
    report: dict[str, Any] = {"error": None, "latencies": {w: [] for w in WORKLOADS}}
    try:
        client = make_client(kind, url)
        run_id = client.create_run(experiment_id).info.run_id
        for i in range(5):  # connection pool, imports, caches
            client.log_metric(run_id, "warm", float(i), step=i)
        client.set_terminated(client.create_run(experiment_id).info.run_id)
    except BaseException:
        report["error"] = traceback.format_exc()
    for workload, barrier in zip(WORKLOADS, barriers[:2], strict=True):
        barrier.wait(timeout=STARTUP_TIMEOUT * 4)
        if report["error"]:
            continue
        latencies = report["latencies"][workload]
        try:
            if workload == "log_metric":
                for i in range(metric_calls):
                    t = time.perf_counter()
                    client.log_metric(run_id, "m", float(i), step=i)
                    latencies.append(time.perf_counter() - t)
            else:
                for _ in range(runs):
                    t = time.perf_counter()
                    client.set_terminated(client.create_run(experiment_id).info.run_id)
                    latencies.append(time.perf_counter() - t)
        except BaseException:
            report["error"] = traceback.format_exc()
    barriers[2].wait(timeout=STARTUP_TIMEOUT * 4)
    results.put(report)


@dataclass
class Measure:
    """One workload, one server, one client kind, N clients."""

    rate: float  # aggregate calls (or runs) per second of the N clients
    median_ms: float
    error: str | None = None


def drive(url: str, kind: str, clients: int, metric_calls: int, runs: int) -> dict[str, Measure]:
    """Run both workloads with `clients` processes of `kind`; aggregate rates per workload."""
    experiment = make_client("trackflow", url).create_experiment(
        f"bench-{kind}-{clients}-{time.time_ns()}"
    )
    ctx = multiprocessing.get_context("spawn")
    barriers = [ctx.Barrier(clients + 1) for _ in range(3)]
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=client_process,
            args=(kind, url, experiment, metric_calls, runs, barriers, results),
            daemon=True,
        )
        for _ in range(clients)
    ]
    for p in processes:
        p.start()
    walls = {}
    try:
        timeout = STARTUP_TIMEOUT * 4
        barriers[0].wait(timeout=timeout)
        t = time.perf_counter()
        barriers[1].wait(timeout=timeout)
        walls["log_metric"] = time.perf_counter() - t
        t = time.perf_counter()
        barriers[2].wait(timeout=timeout)
        walls["create + end run"] = time.perf_counter() - t
        reports = [results.get(timeout=timeout) for _ in processes]
        for p in processes:
            p.join(timeout=30)
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
    error = next((r["error"] for r in reports if r["error"]), None)
    out = {}
    for workload in WORKLOADS:
        latencies = [x for r in reports for x in r["latencies"][workload]]
        count = metric_calls if workload == "log_metric" else runs
        out[workload] = Measure(
            rate=clients * count / walls[workload] if not error else 0.0,
            median_ms=statistics.median(latencies) * 1000 if latencies else float("nan"),
            error=error,
        )
    return out


# --------------------------------------------------------------------------- the table
@dataclass
class Line:
    backend: str
    workers: int
    workload: str
    client: str
    clients: int
    figures: dict[str, Measure] = field(default_factory=dict)  # server kind -> measure

    @property
    def speedup(self) -> float:
        mlflow, ours = self.figures.get("mlflow"), self.figures.get("trackflow")
        if not mlflow or not ours or not mlflow.rate:
            return float("nan")
        return ours.rate / mlflow.rate

    @property
    def verdict(self) -> str:
        if any(m.error for m in self.figures.values()):
            return "ERROR"
        return "PASS" if self.speedup >= TARGET else "FAIL"


def fmt(measure: Measure | None) -> str:
    if measure is None:
        return "-"
    if measure.error:
        return "error"
    return f"{measure.rate:8.1f}/s {measure.median_ms:6.1f}ms"


def print_table(lines: list[Line]) -> None:
    head = (
        f"{'backend':10} {'wrk':>3} {'workload':17} {'client':9} {'N':>2}  "
        f"{'mlflow server':>18}  {'trackflow server':>18}  {'speed-up':>8}  {'target':>6}  result"
    )
    print(head)
    print("-" * len(head))
    for ln in lines:
        print(
            f"{ln.backend:10} {ln.workers:>3} {ln.workload:17} {ln.client:9} {ln.clients:>2}  "
            f"{fmt(ln.figures.get('mlflow')):>18}  {fmt(ln.figures.get('trackflow')):>18}  "
            f"{ln.speedup:7.2f}x  {'>=' + format(TARGET, 'g') + 'x':>6}  {ln.verdict}"
        )
    print(
        "\nRates: aggregate calls/s (runs/s for create + end) of the N client processes; "
        "ms: median latency of one call (one create+end pair).\nspeed-up = trackflow server / "
        "mlflow server, same client, same N, same workers, same backend kind."
    )
    for ln in lines:
        for kind, m in ln.figures.items():
            if m.error:
                print(f"\nerror, {kind} server, {ln.workload}, {ln.client} client:\n{m.error}")


# --------------------------------------------------------------------------- client alone
_STUB_INFO = {
    "run_id": "a" * 32, "run_uuid": "a" * 32, "run_name": "stub", "experiment_id": "1",
    "user_id": "", "status": "RUNNING", "start_time": 1, "artifact_uri": "file:///stub",
    "lifecycle_stage": "active",
}  # fmt: skip
_STUB_ANSWERS = {
    "/experiments/create": {"experiment_id": "1"},
    "/runs/create": {"run": {"info": _STUB_INFO, "data": {}}},
    "/runs/update": {"run_info": _STUB_INFO},
}


class _StubHandler(http.server.BaseHTTPRequestHandler):
    """Answers every API call at once with a canned body: no store, no validation."""

    protocol_version = "HTTP/1.1"  # keep-alive, like both servers

    def setup(self) -> None:
        super().setup()  # headers and body are two writes: no 40 ms Nagle wait between them
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0].removeprefix("/api/2.0/mlflow")
        body = json.dumps(_STUB_ANSWERS.get(path, {})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


def client_alone(
    client_kinds: list[str], metric_calls: int, runs: int
) -> dict[str, dict[str, Measure]]:
    """Each client against a stub server (in this process) that answers at once, one client
    process: the fastest any server could be measured with that client."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        return {kind: drive(url, kind, 1, metric_calls, runs) for kind in client_kinds}
    finally:
        server.shutdown()
        server.server_close()


def print_client_alone(alone: dict[str, dict[str, Measure]]) -> None:
    print(
        "\nClient alone: one client process against a stub server in this process that answers "
        "at once\n(no store, no checks): about the fastest any server can be measured with that "
        "client (N=1) under the current load."
    )
    for kind, measured in alone.items():
        figures = "   ".join(f"{w} {fmt(m).strip()}" for w, m in measured.items())
        print(f"  {kind:9} client: {figures}")


# --------------------------------------------------------------------------- profiling
def profile_driver(url: str, metric_calls: int, runs: int, results: Any) -> None:
    """The profiled workload, from a client process: (log_metric s, create+end s, error)."""
    try:
        from tracking import TrackingClient

        client = TrackingClient(url)
        experiment = client.create_experiment(f"profile-{time.time_ns()}")
        run_id = client.create_run(experiment).info.run_id
        t = time.perf_counter()
        for i in range(metric_calls):
            client.log_metric(run_id, "m", float(i), step=i)
        metric_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(runs):
            client.set_terminated(client.create_run(experiment).info.run_id)
        results.put((metric_s, time.perf_counter() - t, None))
    except BaseException:
        results.put((1.0, 1.0, traceback.format_exc()))


def profile_our_server(backend_uri: str, workdir: str, metric_calls: int, runs: int) -> None:
    """Our app in-process: uvicorn in a thread, every thread (event loop and the worker
    threads that run the handlers) under its own cProfile; driven by our client."""
    import uvicorn

    from tracking.servers.api.app import create_app

    app = create_app(
        backend_uri,
        artifacts_destination=os.path.join(workdir, "artifacts"),
        allowed_hosts=["127.0.0.1", "localhost"],
    )
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    profiling = threading.Event()

    def per_thread(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        if profiling.is_set():
            profile = cProfile.Profile()
            with lock:
                profiles.append(profile)
            profile.enable()

    def serve() -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()
        server.run()
        profile.disable()

    profiling.set()
    threading.setprofile(per_thread)  # threads started from now on (uvicorn, anyio workers)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    # The client runs in another process: in this one it would hold the GIL while the
    # server's threads wait for it, and that wait would show up as server time.
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    driver = ctx.Process(
        target=profile_driver,
        args=(f"http://127.0.0.1:{port}", metric_calls, runs, results),
        daemon=True,
    )
    driver.start()
    metric_s, runs_s, error = results.get(timeout=STARTUP_TIMEOUT * 4)
    driver.join(timeout=30)
    if error:
        print(f"profile driver failed:\n{error}")
    threading.setprofile(None)  # type: ignore[arg-type]
    server.should_exit = True
    thread.join(timeout=30)
    profiling.clear()
    stats = None
    for profile in profiles:
        with contextlib.suppress(TypeError):
            profile.disable()
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
    print(
        f"\nProfile of our server in-process ({backend_uri.split(':')[0]}, one client, no "
        f"workers): {metric_calls} log_metric in {metric_s:.2f} s "
        f"({metric_calls / metric_s:.0f}/s), {runs} create+end in {runs_s:.2f} s "
        f"({runs / runs_s:.0f}/s). Server threads only; client time is not in it."
    )
    if stats is None:
        return
    print_hot_spots(stats, requests=metric_calls + 2 * runs + 2)


#: Time spent waiting, not working: left out of the hot-spot lists.
IDLE = (
    "<method 'poll' of 'select.epoll' objects>",
    "<method 'acquire' of '_thread.lock' objects>",
    "<method 'enable' of '_lsprof.Profiler' objects>",
)
#: Where one request's server time goes (cumulative, so nested lines overlap).
STAGES = (
    ("uvicorn httptools: parse the request", "httptools_impl.py", "data_received"),
    ("uvicorn httptools: write the response", "httptools_impl.py", "send"),
    ("whole ASGI app (middleware + routing + endpoint)", "fastapi/applications.py", "__call__"),
    ("API dispatch (lookup, body, handler, answer)", "api/dispatch.py", "__call__"),
    ("our 5 middleware layers, outermost (includes the rest)", "security.py", "__call__"),
    ("endpoint: read + parse the JSON body", "tracking/servers/api/dispatch.py", "request_fields"),
    ("endpoint: threadpool hop (handlers not run inline)", "anyio/to_thread.py", "run_sync"),
    ("store.log_metric (SQL)", "tracking/stores/sql/store.py", "log_metric"),
    ("store.create_run (SQL)", "tracking/stores/sql/store.py", "create_run"),
    ("store.update_run_info (SQL)", "tracking/stores/sql/store.py", "update_run_info"),
    ("store.get_latest_metrics (SQL, runs/create answer)", "tracking/stores/sql/store.py",
     "get_latest_metrics"),
    ("answer: messages.dumps", "tracking/servers/api/messages.py", "dumps"),
)  # fmt: skip


def print_hot_spots(stats: pstats.Stats, requests: int, top: int = 20) -> None:
    """Per request: the stages above, then the functions with the most own time."""
    entries = stats.stats  # type: ignore[attr-defined]
    print(f"\n--- where a request's server time goes (us per request, {requests} requests) ---")
    for label, path, function in STAGES:
        found = [
            ct
            for (filename, _, name), (_, _, _, ct, _) in entries.items()
            if name == function and filename.endswith(path)
        ]
        # Nested layers of one class each hold the time of those inside: take the outermost.
        cumulative = max(found, default=0.0) if path == "security.py" else sum(found)
        print(f"{cumulative / requests * 1e6:9.0f}  {label}")
    print(f"\n--- top {top} by own time, idle waits left out (us per request) ---")
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in entries.items():
        where = name if filename == "~" else f"{filename}:{line}({name})"
        if where in IDLE:
            continue
        short = where.split("site-packages/")[-1].replace(REPO + "/", "")
        rows.append((tottime, cumtime, calls, short))
    for tottime, cumtime, calls, where in sorted(rows, reverse=True)[:top]:
        print(
            f"{tottime / requests * 1e6:8.0f} own {cumtime / requests * 1e6:8.0f} cum "
            f"{calls:7d} calls  {where}"
        )


# --------------------------------------------------------------------------- PostgreSQL
def postgres_server(tmpdir: str) -> Any:
    """A private PostgreSQL cluster (tests/pg_server.py's), stopped at the end."""
    import pg_server

    return pg_server.running_postgres(tmpdir)


# --------------------------------------------------------------------------- main
def machine_info(args: argparse.Namespace) -> None:
    import mlflow
    import uvicorn

    import tracking

    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    print("command :", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine : {platform.platform()}; {os.cpu_count()} CPUs (nproc); {cpu}")
    print(f"python  : {platform.python_version()} ({sys.executable})")
    print(
        f"versions: mlflow {mlflow.__version__}; tracking {tracking.__version__}; "
        f"uvicorn {uvicorn.__version__}"
    )
    print(f"load    : {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(
        f"counts  : {args.metric_calls} log_metric calls and {args.runs} create+end runs per "
        f"client; clients {args.clients}; workers {args.workers}; backends {args.backends}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer calls, workers 1 only")
    p.add_argument("--metric-calls", type=int, default=None, help="log_metric calls per client")
    p.add_argument("--runs", type=int, default=None, help="create+end runs per client")
    p.add_argument("--clients", default="1,4", help="client process counts (default 1,4)")
    p.add_argument("--workers", default=None, help="uvicorn workers of both servers (1,2)")
    p.add_argument("--client-kinds", default="mlflow,trackflow", help="which clients to use")
    p.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    p.add_argument("--backends", default=None, help="sqlite,postgresql (default: sqlite)")
    p.add_argument("--profile", action="store_true", help="always profile our server")
    p.add_argument("--no-profile", action="store_true", help="never profile")
    p.add_argument("--profile-only", action="store_true", help="only the in-process profile")
    p.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the stores go")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = p.parse_args(argv)
    if args.metric_calls is None:
        args.metric_calls = 100 if args.quick else 300
    if args.runs is None:
        args.runs = 30 if args.quick else 60
    args.workers = [int(w) for w in (args.workers or ("1" if args.quick else "1,2")).split(",")]
    args.clients = [int(n) for n in args.clients.split(",")]
    args.client_kinds = [k.strip() for k in args.client_kinds.split(",")]
    backends = args.backends or ("sqlite,postgresql" if args.postgres else "sqlite")
    args.backends = [b.strip() for b in backends.split(",")]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        p.error(f"unknown backends {sorted(unknown)}: use sqlite and/or postgresql")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in CLEARED_ENV:
        os.environ.pop(name, None)
    os.environ.update(CLIENT_ENV)
    machine_info(args)
    root = tempfile.mkdtemp(prefix="bench-server-", dir=args.tmpdir)
    lines: list[Line] = []
    try:
        with contextlib.ExitStack() as stack:
            uses_pg = "postgresql" in args.backends
            # Not under `root`: mkdtemp makes it 0700, and the cluster runs as user postgres.
            pg = stack.enter_context(postgres_server(args.tmpdir)) if uses_pg else None

            def backend_uri(backend: str, name: str) -> str:
                if backend == "sqlite":
                    return f"sqlite:///{os.path.join(root, name, 'store.db')}"
                return pg.create_database(name.replace("-", "_"))  # type: ignore[union-attr]

            if not args.profile_only:
                for backend in args.backends:
                    for workers in args.workers:
                        group = {
                            (w, k, n): Line(backend, workers, w, k, n)
                            for w in WORKLOADS
                            for k in args.client_kinds
                            for n in args.clients
                        }
                        # Both servers up at once, measured alternately per (client, N):
                        # the machine's load drifts, so neighbours in time compare fairest.
                        servers: dict[str, Server] = {}
                        try:
                            for kind in SERVERS:
                                name = f"{kind}-{backend}-w{workers}"
                                uri = backend_uri(backend, name)
                                servers[kind] = start_server(
                                    kind, uri, os.path.join(root, name), workers
                                )
                                boot = servers[kind].boot_seconds
                                print(f"... {name}: up in {boot:.1f} s", flush=True)
                            for client_kind in args.client_kinds:
                                for n in args.clients:
                                    for kind, server in servers.items():
                                        measured = drive(
                                            server.url, client_kind, n, args.metric_calls, args.runs
                                        )
                                        for workload, measure in measured.items():
                                            group[(workload, client_kind, n)].figures[kind] = (
                                                measure
                                            )
                                    print(
                                        f"... {backend} w{workers} {client_kind} client x{n}: "
                                        + ", ".join(
                                            f"{w} {group[(w, client_kind, n)].speedup:.2f}x"
                                            for w in WORKLOADS
                                        ),
                                        flush=True,
                                    )
                        finally:
                            for server in servers.values():
                                stop_server(server)
                        lines += list(group.values())
                alone = client_alone(args.client_kinds, args.metric_calls, args.runs)
                print()
                print_table(lines)
                print_client_alone(alone)
            missed = any(ln.verdict != "PASS" for ln in lines)
            if args.profile_only or args.profile or (missed and not args.no_profile):
                for backend in args.backends:
                    uri = backend_uri(backend, f"profile-{backend}")
                    profile_our_server(
                        uri, os.path.join(root, f"profile-{backend}"), args.metric_calls, args.runs
                    )
    finally:
        if args.keep:
            print(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if any(ln.verdict != "PASS" for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
