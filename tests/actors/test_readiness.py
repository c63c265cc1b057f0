"""Readiness tells the truth: a ``threadline serve`` process whose journal cannot commit answers
``/readyz`` 503 with its reason and reports ``threadline_journal_up 0`` and
``threadline_ready 0`` within about one lease tick, without any traffic, and recovers by itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.actors.processes import ServeProcess, serve_env
from tests.postgres import PostgresServer, throwaway_server

LEASE_SECONDS = 6.0
TICK = LEASE_SECONDS / 3
"""The journal probe's interval, as the lease renewals'."""
MARGIN = 4.0
"""For a loaded CI machine."""
NO_SANDBOX = "http://127.0.0.1:9"
"""No traffic flows in these tests: nothing calls the sandbox."""


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own, stopped and started by the test."""
    with throwaway_server() as server:
        yield server


async def gauges(bridge: ServeProcess) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        scrape = (await client.get(bridge.metrics_url)).text
    values = {}
    for line in scrape.splitlines():
        name, _, value = line.partition(" ")
        if name in ("threadline_journal_up", "threadline_ready"):
            values[name] = float(value)
    return values


async def readyz_becomes(bridge: ServeProcess, status: int, seconds: float) -> str:
    """Poll ``/readyz`` until it answers ``status``; its body. Fails after ``seconds``."""
    async with httpx.AsyncClient(base_url=bridge.url, timeout=2.0) as client:
        with trio.fail_after(seconds):
            while True:
                answer = await client.get("/readyz")
                if answer.status_code == status:
                    return answer.text
                await trio.sleep(0.1)


def assert_down(body: str, values: dict[str, float], reason: str) -> None:
    assert body.startswith("not ready: "), body
    assert reason in body, body
    assert body.count("\n") == 1, body  # one line
    assert values == {"threadline_journal_up": 0.0, "threadline_ready": 0.0}


async def test_readyz_follows_postgresql_going_down_and_coming_back(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    env = serve_env(
        NO_SANDBOX, own_server.create_database(), tmp_path, lease_seconds=str(LEASE_SECONDS)
    )
    bridge = ServeProcess(env, tmp_path / "serve.log")
    await bridge.start()
    try:
        assert await gauges(bridge) == {"threadline_journal_up": 1.0, "threadline_ready": 1.0}
        await trio.to_thread.run_sync(own_server.stop)
        try:
            # The lease connection's loss may show first (the leases lapse within a poll); the
            # journal's own probe names the cause within a tick, and the node stays down.
            body = await readyz_becomes(bridge, 503, TICK + MARGIN)
            with trio.fail_after(TICK + MARGIN):
                while "the journal cannot commit" not in body:
                    assert body.startswith("not ready: "), body
                    await trio.sleep(0.1)
                    body = await readyz_becomes(bridge, 503, 1.0)
            assert_down(body, await gauges(bridge), "the journal cannot commit")
        finally:
            await trio.to_thread.run_sync(own_server.start)
        await readyz_becomes(bridge, 200, 30)
        assert await gauges(bridge) == {"threadline_journal_up": 1.0, "threadline_ready": 1.0}
    finally:
        await bridge.stop()


async def test_readyz_follows_a_sqlite_journal_that_cannot_commit(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    env = serve_env(NO_SANDBOX, f"sqlite:///{path}", tmp_path, lease_seconds=str(LEASE_SECONDS))
    bridge = ServeProcess(env, tmp_path / "serve.log")
    await bridge.start()
    try:
        assert await gauges(bridge) == {"threadline_journal_up": 1.0, "threadline_ready": 1.0}
        # Another process holds the write lock (a backup tool, an operator's sqlite3 shell):
        # the bridge's commits wait out SQLite's busy timeout, then fail.
        blocker = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            # A probe blocked for two ticks counts as down; one that fails says so at once.
            body = await readyz_becomes(bridge, 503, 2 * TICK + MARGIN)
            assert_down(body, await gauges(bridge), "the journal ")
        finally:
            blocker.rollback()
            blocker.close()
        await readyz_becomes(bridge, 200, 30)
        assert await gauges(bridge) == {"threadline_journal_up": 1.0, "threadline_ready": 1.0}
    finally:
        await bridge.stop()
