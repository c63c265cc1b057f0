"""A throwaway PostgreSQL server for the test suite, started with initdb/pg_ctl.

Session-scoped: one server per test run on a free loopback port, data in a temporary directory,
stopped at the end. As root, the server runs as the ``postgres`` user (PostgreSQL refuses root).
Each test that needs a database gets a fresh one from :meth:`PostgresServer.create_database`.
Where PostgreSQL is missing the tests skip locally but FAIL under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def find_bin(name: str) -> str | None:
    """The path of a PostgreSQL server program, on PATH or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running throwaway server."""

    host: str
    port: int
    datadir: Path
    pg_ctl: str
    psql: str
    as_user: list[str]
    durable: bool = False
    """fsync on (PostgreSQL's default): what a benchmark against SQLite's ``synchronous=FULL``
    needs; the suite runs with fsync off."""
    cpus: str | None = None
    """Pin the server's processes to these CPUs (``taskset -c``), for benchmarks."""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def psql_command(self, sql: str, database: str = "postgres") -> None:
        subprocess.run(  # noqa: S603 - fixed programs, our own SQL
            [self.psql, "-X", "-q", "-h", self.host, "-p", str(self.port), "-U", "postgres",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql_command(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(  # noqa: S603
            [*self.as_user, self.pg_ctl, "-D", str(self.datadir), "-m", mode, "-w", "stop"],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -k {self.datadir}"
            f"{'' if self.durable else ' -c fsync=off'} -c max_connections=200"
        )
        pin = [] if self.cpus is None else ["taskset", "-c", self.cpus]
        subprocess.run(  # noqa: S603
            [*pin, *self.as_user, self.pg_ctl, "-D", str(self.datadir), "-o", options,
             "-l", str(self.datadir / "server.log"), "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip


@contextlib.contextmanager
def throwaway_server(*, durable: bool = False, cpus: str | None = None) -> Iterator[PostgresServer]:
    """A server for the duration of the block; ``durable`` and ``cpus`` as on
    :class:`PostgresServer` (benchmarks; the suite uses neither)."""
    initdb, pg_ctl, psql = find_bin("initdb"), find_bin("pg_ctl"), shutil.which("psql")
    if not (initdb and pg_ctl and psql):
        message = "PostgreSQL server programs (initdb, pg_ctl, psql) not found"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must have them (tests/ensure-postgres.sh installs them)")
        pytest.skip(f"{message}; install PostgreSQL to run these tests")
    root = Path(tempfile.mkdtemp(prefix="threadline-pg-"))
    datadir = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        root.chmod(0o755)
        datadir.mkdir()
        shutil.chown(datadir, "postgres", "postgres")
    subprocess.run(  # noqa: S603
        [*as_user, initdb, "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--no-sync"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = PostgresServer(
        "127.0.0.1", free_port(), datadir, pg_ctl, psql, as_user, durable=durable, cpus=cpus
    )
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's throwaway PostgreSQL server."""
    with throwaway_server() as server:
        yield server
