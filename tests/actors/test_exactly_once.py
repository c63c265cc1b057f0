"""Exactly once while contacts and conversations are being created: ``kill -9`` of ``threadline
serve`` again and again while *new* customers write their first messages, with Intercom's
contact search lagging creation by 3 s and every Intercom call taking 15 ms → no duplicate
contact, no split conversation, no doubled or lost part. For SQLite, PostgreSQL and a
three-node cluster; and one phone on two channels owned by two nodes gets one contact."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
import trio

from actors.tools import PUBLIC_URL, SANDBOX_SECRETS, SandboxApp
from channels.sandbox import (
    SignedWebhook,
    WhatsAppInbound,
    twilio_message_webhook,
    whatsapp_webhook,
)
from runtime import hypercorn_config, open_postgres_journal, partition_of, serve_asgi
from tests.actors.customers import (
    Customers,
    all_delivered,
    assert_exactly_once_in_order,
    assert_one_contact_and_conversation_each,
)
from tests.actors.processes import ServeProcess, serve_env
from tests.postgres import PostgresServer
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


LEASE = 5.0


async def owners(url: str) -> dict[int, str]:
    async with open_postgres_journal(url, pool_size=1) as journal:
        leases = await journal.leases()
    return {lease.partition: lease.owner for lease in leases if lease.live and lease.partition >= 0}


@pytest.mark.slow
@HTTPX_3686  # requests die with the killed processes, mid-upload
async def test_three_nodes_killed_while_new_customers_arrive_create_each_contact_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    sandbox = SandboxApp()
    sandbox.intercom.configure(search_lag_seconds=3.0, latency_seconds=0.015)
    rng = random.Random(3)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        nodes = [
            ServeProcess(
                serve_env(
                    address.url,
                    url,
                    tmp_path,
                    node_id=f"node-{i}",
                    lease_seconds=str(LEASE),
                    intercom_search_settle_seconds="8",
                ),
                tmp_path / f"node-{i}.log",
            )
            for i in range(3)
        ]
        for node in nodes:
            await node.start()
        customers = Customers(
            [n.url for n in nodes], 45, 3, interval=0.05, run="cluster-once", stagger=0.1
        )

        async def chaos() -> None:
            for _ in range(KILLS):  # a random node each time, while new customers arrive
                await trio.sleep(rng.uniform(0.4, 1.0))
                victim = nodes[rng.randrange(3)]
                await victim.kill()
                await trio.sleep(0.1)
                await victim.start()  # same node id: it takes its partitions straight back

        async with trio.open_nursery() as load:
            load.start_soon(chaos)
            load.start_soon(customers.play)
        await all_delivered(sandbox.intercom.conversations, 45 * 3, seconds=120)
        for node in nodes:
            await node.stop()
        nursery.cancel_scope.cancel()
    conversations = sandbox.intercom.conversations()
    assert_one_contact_and_conversation_each(customers, sandbox.intercom.contacts(), conversations)
    assert_exactly_once_in_order(customers, conversations)


@pytest.mark.slow
async def test_one_phone_on_two_channels_owned_by_two_nodes_yields_one_contact(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """The contact lock holds across nodes: WhatsApp and SMS threads of one phone, owned by
    different nodes, written at the same moment while search sees no new contact."""
    url = postgres_server.create_database()
    sandbox = SandboxApp()
    sandbox.intercom.configure(search_lag_seconds=3600.0, latency_seconds=0.02)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        nodes = [
            ServeProcess(
                serve_env(
                    address.url, url, tmp_path, node_id=f"node-{i}", lease_seconds=str(LEASE)
                ),
                tmp_path / f"node-{i}.log",
            )
            for i in range(2)
        ]
        for node in nodes:
            await node.start()
        with trio.fail_after(60):  # every partition owned, by both nodes
            while len(held := await owners(url)) != 64 or len(set(held.values())) != 2:  # noqa: ASYNC110 - database state
                await trio.sleep(0.2)
        await trio.sleep(2 * LEASE)  # let the rebalancing settle
        held = await owners(url)
        phones = []
        for n in range(10_000):  # phones whose two threads are owned by different nodes
            phone = f"1777{n:07d}"
            whatsapp = f"whatsapp:{SANDBOX_SECRETS.whatsapp_phone_number_id}:{phone}"
            sms = f"twilio:{SANDBOX_SECRETS.twilio_number}:+{phone}"
            if held[partition_of(whatsapp, 64)] != held[partition_of(sms, 64)]:
                phones.append((phone, whatsapp, sms))
            if len(phones) == 5:
                break
        async with httpx.AsyncClient(timeout=10) as http:

            async def post(node: ServeProcess, path: str, hook: SignedWebhook) -> None:
                response = await http.post(node.url + path, content=hook.body,
                                            headers=hook.headers)  # fmt: skip
                assert response.status_code == 200, response.text

            for phone, whatsapp_key, _sms_key in phones:
                on_whatsapp = nodes[int(held[partition_of(whatsapp_key, 64)][-1])]
                on_sms = nodes[1 - nodes.index(on_whatsapp)]
                wa = whatsapp_webhook(
                    SANDBOX_SECRETS.whatsapp_app_secret, SANDBOX_SECRETS.whatsapp_phone_number_id,
                    [WhatsAppInbound(from_phone=phone, text="on whatsapp",
                                     message_id=f"wamid.two-{phone}")],
                )  # fmt: skip
                text = twilio_message_webhook(
                    sandbox.providers.credentials.twilio_auth_token,
                    f"{PUBLIC_URL}/webhooks/twilio",
                    account_sid=sandbox.providers.credentials.twilio_account_sid,
                    to=SANDBOX_SECRETS.twilio_number, from_=f"+{phone}", body="on sms",
                    message_sid=f"SM{phone:0>32}",
                )  # fmt: skip
                async with trio.open_nursery() as both:  # at the same moment, to two nodes
                    both.start_soon(post, on_whatsapp, "/webhooks/whatsapp", wa)
                    both.start_soon(post, on_sms, "/webhooks/twilio", text)
        await all_delivered(sandbox.intercom.conversations, 2 * len(phones), seconds=60)
        for node in nodes:
            await node.stop()
        nursery.cancel_scope.cancel()
    by_phone: dict[str, int] = {}
    for contact in sandbox.intercom.contacts():
        by_phone[str(contact["phone"])] = by_phone.get(str(contact["phone"]), 0) + 1
    assert by_phone == {f"+{phone}": 1 for phone, _, _ in phones}
