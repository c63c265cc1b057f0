"""PooledTransport: requests spread over small pools, least busy first, bodies intact."""

from __future__ import annotations

import httpx
import pytest
import trio

from intercom import IntercomClient, PooledTransport
from intercom.sandbox import IntercomSandbox


async def test_pooled_transport_serves_concurrent_requests(
    sandbox_url: str, sandbox: IntercomSandbox
) -> None:
    transport = PooledTransport(connections=4, per_pool=2)
    async with httpx.AsyncClient(base_url=sandbox_url, transport=transport) as http:
        client = IntercomClient(http, access_token="sandbox-token")
        contact = await client.create_contact(role="lead", phone="+14155550100")
        conversation = await client.create_conversation(contact.contact.id, "m0", role="lead")

        async def reply(n: int) -> None:
            await client.reply_as_contact(conversation, contact.contact.id, f"m{n}")

        async with trio.open_nursery() as nursery:
            for n in range(1, 21):
                nursery.start_soon(reply, n)
        assert transport._busy == [0, 0]  # every body closed: nothing counted as in flight
    parts, _ = sandbox.parts_since(0)
    assert sorted(str(p["body"]) for p in parts) == sorted(f"m{n}" for n in range(21))


async def test_a_failed_request_frees_its_slot() -> None:
    transport = PooledTransport(connections=2, per_pool=1)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9", transport=transport) as http:
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                await http.get("/")
    assert transport._busy == [0, 0]
