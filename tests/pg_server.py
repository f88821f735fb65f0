"""A throwaway PostgreSQL server for the tests (pytest plugin).

initdb refuses to run as root, so the cluster runs as the `postgres` user in a temp dir, on a
free port on 127.0.0.1, and is stopped at the end of the session.
"""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found: install the Debian package 'postgresql' "
            "(.ci/run does this on a fresh machine)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if getpass.getuser() == "root" else args


@dataclass
class PostgresServer:
    port: int
    user: str

    def uri(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its tracking URI."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        subprocess.run(
            _as_postgres([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), name]),
            check=True,
            capture_output=True,
        )
        return self.uri(name)


@contextmanager
def running_postgres(parent_dir: str | None = None) -> Iterator[PostgresServer]:
    """Start a private PostgreSQL cluster in a temp dir (under parent_dir); stop and remove it
    at the end. Used by the `postgres` fixture and by the benchmarks."""
    data = tempfile.mkdtemp(prefix="trackflow-pg-", dir=parent_dir)
    try:
        if getpass.getuser() == "root":
            shutil.chown(data, "postgres", "postgres")
        cluster = os.path.join(data, "cluster")
        port = _free_port()
        subprocess.run(
            _as_postgres([_bin("initdb"), "-D", cluster, "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--no-instructions"]),
            check=True,
            capture_output=True,
        )  # fmt: skip
        log = os.path.join(data, "server.log")
        options = f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c max_connections=200"
        started = subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", cluster, "-l", log, "-o", options, "-w", "start"]),
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            with open(log) as f:
                raise RuntimeError(
                    f"PostgreSQL did not start: {started.stderr}\n{f.read()[-2000:]}"
                )
        try:
            yield PostgresServer(port=port, user="postgres")
        finally:
            subprocess.run(
                _as_postgres([_bin("pg_ctl"), "-D", cluster, "-m", "immediate", "stop"]),
                capture_output=True,
            )
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Start a private PostgreSQL cluster; yields a handle that creates databases."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_uri(postgres: PostgresServer) -> Callable[[], str]:
    """A factory of fresh database URIs on the session's server."""
    return postgres.create_database
