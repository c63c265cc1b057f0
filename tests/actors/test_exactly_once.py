"""Exactly once while contacts and conversations are being created: ``kill -9`` of ``threadline
serve`` again and again while *new* customers write their first messages, with Intercom's
contact search lagging creation by 3 s and every Intercom call taking 15 ms → no duplicate
contact, no split conversation, no doubled or lost part. For SQLite and PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from actors._sandbox import SandboxApp
from runtime import hypercorn_config, serve_asgi
from tests.actors.customers import (
    Customers,
    all_delivered,
    assert_exactly_once_in_order,
    assert_one_contact_and_conversation_each,
)
from tests.actors.processes import ServeProcess, serve_env
from tests.quirks import HTTPX_3686

CUSTOMERS = 40
MESSAGES = 4
KILLS = 5


@pytest.mark.slow
@HTTPX_3686  # requests die with the killed process, mid-upload
async def test_kill_9_while_new_customers_arrive_creates_each_contact_and_conversation_once(
    database_url: str, tmp_path: Path
) -> None:
    sandbox = SandboxApp()
    sandbox.intercom.configure(search_lag_seconds=3.0, latency_seconds=0.015)
    rng = random.Random(14)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        env = serve_env(
            address.url,
            database_url,
            tmp_path,
            node_id="exactly-once-node",
            intercom_search_settle_seconds="8",
        )
        bridge = ServeProcess(env, tmp_path / "serve.log")
        await bridge.start()
        customers = Customers(
            [bridge.url], CUSTOMERS, MESSAGES, interval=0.05, run="once", stagger=0.12
        )

        async def killer() -> None:
            for _ in range(KILLS):  # each kill lands while new customers are being created
                await trio.sleep(rng.uniform(0.3, 0.9))
                await bridge.kill()
                await trio.sleep(0.1)
                await bridge.start()

        async with trio.open_nursery() as load:
            load.start_soon(killer)
            load.start_soon(customers.play)
        assert bridge.starts == KILLS + 1
        await all_delivered(sandbox.intercom.conversations, CUSTOMERS * MESSAGES, seconds=90)
        await bridge.stop()
        nursery.cancel_scope.cancel()
    conversations = sandbox.intercom.conversations()
    assert_one_contact_and_conversation_each(customers, sandbox.intercom.contacts(), conversations)
    assert_exactly_once_in_order(customers, conversations)
