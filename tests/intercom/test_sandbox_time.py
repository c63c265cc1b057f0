"""Sandbox timing behaviour on Trio's MockClock (in-process ASGI transport, virtual time)."""

from __future__ import annotations

import random

import httpx
import pytest
import trio
import trio.testing

from intercom import IntercomClient, IntercomRateLimited
from intercom.sandbox import IntercomSandbox, SandboxConfig

from .conftest import TOKEN, asgi_transport

EPOCH = 1_800_000_003.0  # deliberately not on a window boundary


def wall() -> float:
    return EPOCH + trio.current_time()


def _sandbox(**config: object) -> IntercomSandbox:
    return IntercomSandbox(
        access_tokens=[TOKEN],
        config=SandboxConfig.model_validate(config),
        clock=wall,
        rng=random.Random(3),
    )


async def test_new_contacts_appear_in_search_after_the_lag(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sandbox = _sandbox(search_lag_seconds=120)
    async with httpx.AsyncClient(transport=asgi_transport(sandbox), base_url="http://sb") as http:
        client = IntercomClient(http, access_token=TOKEN, wall_clock=wall)
        created = await client.create_contact(role="lead", phone="+1")
        await trio.sleep(119)
        assert await client.find_contacts_by_phone("+1") == []
        await trio.sleep(1)
        assert [c.id for c in await client.find_contacts_by_phone("+1")] == [created.contact.id]


async def test_rate_window_refills_at_the_reset_it_announced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sandbox = _sandbox(rate_limit=3, rate_window_seconds=10)
    async with httpx.AsyncClient(transport=asgi_transport(sandbox), base_url="http://sb") as http:
        client = IntercomClient(http, access_token=TOKEN, wall_clock=wall)
        for _ in range(3):
            await client.me()
        with pytest.raises(IntercomRateLimited) as info:
            await client.me()
        # The window is epoch-aligned: 7 of its 10 seconds are left.
        assert info.value.retry_after == pytest.approx(7)
        await trio.sleep(info.value.retry_after)
        await client.me()
    assert sandbox.stats()["rate_limited"] == 1


async def test_auto_reply_waits_its_delay(autojump_clock: trio.testing.MockClock) -> None:
    sandbox = _sandbox(auto_reply_seconds=30)
    async with trio.open_nursery() as nursery:
        await nursery.start(sandbox.run_background)
        transport = asgi_transport(sandbox)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as http:
            client = IntercomClient(http, access_token=TOKEN, wall_clock=wall)
            contact = await client.create_contact(role="lead", phone="+1")
            conversation_id = await client.create_conversation(
                contact.contact.id, "Hi", role="lead"
            )
            await trio.sleep(29)
            assert (await client.get_conversation(conversation_id)).parts == ()
            await trio.sleep(2)
            (part,) = (await client.get_conversation(conversation_id)).parts
            assert part.text == "Thanks for your message: Hi"
        nursery.cancel_scope.cancel()
