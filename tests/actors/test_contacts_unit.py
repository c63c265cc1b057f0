"""The contact resolver on its own: a fake journal, the Intercom sandbox in process (its
search lagging as Intercom's does), Trio's autojump clock."""

from __future__ import annotations

from datetime import UTC, datetime

import trio
import trio.testing

from actors.bridge import ContactResolver
from channels import InboundMessage, ThreadKey

from .unit import EPOCH, harness


def _message(key: str, seq: int) -> InboundMessage:
    return InboundMessage(
        key=ThreadKey.parse(key),
        provider_message_id=f"m{seq}",
        phone="+14155550123",
        sent_at=datetime.fromtimestamp(EPOCH, UTC),
        text="Hi",
    )


async def test_one_identity_resolved_twice_makes_one_contact(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        h.sandbox.configure(search_lag_seconds=600)  # Intercom's search does not see it yet
        resolver = h.services.resolver
        assert isinstance(resolver, ContactResolver)
        found: list[str] = []

        async def resolve(key: str, seq: int) -> None:
            found.append((await resolver.resolve(_message(key, seq))).id)

        # Two threads of one phone number (two channels) at once, then once more later.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(resolve, "telegram:bot1:4242", 1)
            nursery.start_soon(resolve, "whatsapp:15550001:14155550123", 2)
        await trio.sleep(60)
        await resolve("telegram:bot1:4242", 3)
        assert len(h.sandbox.contacts()) == 1
        assert len(set(found)) == 1
