"""Crash: kill -9 ``threadline serve`` while webhooks stream in, restart it on the same database,
re-send what was not answered 200 (as providers do) → every acknowledged message is in
Intercom exactly once, in order per thread. For SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.tools import SandboxApp
from runtime import hypercorn_config, serve_asgi
from tests.actors.customers import Customers, all_delivered, assert_exactly_once_in_order
from tests.actors.processes import ServeProcess, serve_env
from tests.quirks import HTTPX_3686

THREADS = 12
MESSAGES = 25


@pytest.mark.slow
@HTTPX_3686  # requests die with the killed process, mid-upload
async def test_kill_9_loses_and_doubles_nothing_acknowledged(
    database_url: str, tmp_path: Path
) -> None:
    sandbox = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        # A restart under the same node id takes its partitions back at once (a new epoch
        # fences out the killed process); an unknown id would wait for the leases to expire.
        env = serve_env(address.url, database_url, tmp_path, node_id="crash-test-node")
        bridge = ServeProcess(env, tmp_path / "serve.log")
        await bridge.start()
        customers = Customers([bridge.url], THREADS, MESSAGES, interval=0.01, run="crash")

        async def killer() -> None:
            for threshold in (THREADS * MESSAGES // 4, THREADS * MESSAGES // 2):
                while customers.total_acked < threshold:  # noqa: ASYNC110 - counting acks
                    await trio.sleep(0.01)
                await bridge.kill()
                await trio.sleep(0.2)
                await bridge.start()

        async with trio.open_nursery() as load:
            load.start_soon(killer)
            load.start_soon(customers.play)
        assert bridge.starts == 3
        await all_delivered(sandbox.intercom.conversations, THREADS * MESSAGES, seconds=60)
        await bridge.stop()
        nursery.cancel_scope.cancel()
    assert_exactly_once_in_order(customers, sandbox.intercom.conversations())
