"""``threadline serve --workers N`` hands every setting and flag to its workers.

Real processes on a real PostgreSQL: the parent gets its journal, ingress and metrics addresses
only as flags (nothing in the environment, nothing in a ``.env``), and the workers must use them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from pydantic import SecretStr

from actors.core import Settings
from actors.service import worker_environment
from actors.tools import SandboxApp
from runtime import hypercorn_config, open_postgres_journal, serve_asgi
from tests.actors.customers import Customers, all_delivered, assert_exactly_once_in_order
from tests.actors.processes import serve_env
from tests.postgres import PostgresServer, free_port
from tests.provider_secrets import REAL_LOOKING

THREADS = 6
MESSAGES = 5


def two_free_ports() -> int:
    """A free loopback port whose successor is free too (worker i serves metrics on port + i)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    pytest.fail("no two consecutive free loopback ports")


def journal_entries(server: PostgresServer, url: str) -> int:
    database = url.rpartition("/")[2]
    done = subprocess.run(  # noqa: S603 - fixed programs, our own SQL
        [server.psql, "-X", "-tA", "-h", server.host, "-p", str(server.port), "-U", "postgres",
         "-d", database, "-c", "SELECT count(*) FROM journal_entries"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(done.stdout.strip())


async def owners(url: str) -> set[str]:
    async with open_postgres_journal(url, pool_size=1) as journal:
        leases = await journal.leases()
    return {lease.owner for lease in leases if lease.live and lease.partition >= 0}


@pytest.mark.slow
async def test_serve_workers_use_the_database_url_bind_and_metrics_flags(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    sandbox = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        env = serve_env(address.url, url, tmp_path, node_id="flags", lease_seconds="5")
        # Only flags name the journal, the ingress and the metrics: none of it in the environment.
        bind = env.pop("THREADLINE_BIND")
        del env["THREADLINE_DATABASE_URL"], env["THREADLINE_METRICS_BIND"]
        metrics_port = two_free_ports()
        command = [
            sys.executable, "-m", "actors", "serve", "--workers", "2", "--bind", bind,
            "--metrics-bind", f"127.0.0.1:{metrics_port}", "--database-url", url,
        ]  # fmt: skip
        with (tmp_path / "workers.log").open("ab") as log:
            parent = await trio.lowlevel.open_process(
                command, env=env, cwd=cwd, stdout=log, stderr=log
            )
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                with trio.fail_after(60):
                    while True:  # separate processes: their readiness endpoint is the signal
                        try:
                            if (await client.get(f"http://{bind}/readyz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await trio.sleep(0.1)
                customers = Customers([f"http://{bind}"], THREADS, MESSAGES, run="flags")
                await customers.play()
                await all_delivered(sandbox.intercom.conversations, THREADS * MESSAGES, seconds=60)
                assert_exactly_once_in_order(customers, sandbox.intercom.conversations())
                # Journaled in PostgreSQL, by both workers as cluster nodes.
                assert journal_entries(postgres_server, url) == THREADS * MESSAGES
                with trio.fail_after(30):
                    while await owners(url) != {"flags-w0", "flags-w1"}:  # noqa: ASYNC110 - database state
                        await trio.sleep(0.2)
                for port in (metrics_port, metrics_port + 1):  # worker i: --metrics-bind port + i
                    scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
                    assert scraped.status_code == 200
                    assert "threadline_partitions_owned" in scraped.text
        finally:
            parent.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                await parent.wait()
            if parent.returncode is None:
                parent.kill()
        assert parent.returncode == 0
        nursery.cancel_scope.cancel()
    assert not (cwd / "threadline.db").exists(), "a worker opened a SQLite journal"
    assert list(cwd.iterdir()) == [], "the workers wrote into the working directory"


def test_worker_environment_resolves_to_the_parents_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("threadline_database_url", "sqlite:///./threadline.db")  # overridden
    monkeypatch.setenv("THREADLINE_PARTITIONS", "16")  # kept
    (tmp_path / ".env").write_text("THREADLINE_LEASE_SECONDS=7\n")  # resolved by the parent
    parent = Settings(
        database_url="postgresql://bridge:pw@db.example/threadline",
        metrics_bind="127.0.0.1:9500",
        intercom_access_token=SecretStr(REAL_LOOKING["THREADLINE_INTERCOM_ACCESS_TOKEN"]),
    )
    env = worker_environment(parent, node_id="n-w1", metrics_bind="127.0.0.1:9501")
    assert "threadline_database_url" not in env
    for name in list(os.environ):  # the worker's environment, exactly
        if name not in env:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".env").write_text("THREADLINE_LEASE_SECONDS=99\n")  # the environment wins
    worker = Settings()
    assert worker == parent.model_copy(update={"node_id": "n-w1", "metrics_bind": "127.0.0.1:9501"})
    assert worker.partitions == 16
    assert worker.lease_seconds == 7
