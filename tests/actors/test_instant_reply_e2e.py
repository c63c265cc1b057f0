"""A teammate (or an Intercom workflow) answering a conversation the instant the bridge opens it:
the reply's webhook can arrive while the bridge is recording the new conversation. It must
reach the customer all the same, exactly once (the Intercom webhook's index/intent check).

The sandbox Intercom's auto-reply answers each customer message as soon as it arrives; the
race is narrow, so many threads open at once, on both stores."""

from __future__ import annotations

from pathlib import Path

import trio

from actors.tools import Stack
from tests.actors.conftest import eventually, quick_stack

THREADS = 40
FIRST_CHAT = 7_100_000


def _settled(stack: Stack) -> bool:
    return len(stack.sent()) >= THREADS and stack.node.dispatcher.inflight == 0


async def test_a_reply_the_instant_a_conversation_opens_reaches_the_customer_once(
    database_url: str, tmp_path: Path
) -> None:
    async with quick_stack(database_url, tmp_path) as stack:
        stack.sandbox.intercom.configure(auto_reply_seconds=0, auto_reply_text="On it: {body}")
        async with trio.open_nursery() as nursery:
            for n in range(THREADS):
                nursery.start_soon(stack.telegram, FIRST_CHAT + n, f"question {n}")
        await eventually(lambda: len(stack.conversations()) == THREADS, seconds=60)
        await eventually(lambda: _settled(stack), seconds=60)
        await trio.sleep(0.5)  # nothing more follows
        sent = sorted((m.to, str(m.text)) for m in stack.sent())
        wanted = sorted((str(FIRST_CHAT + n), f"On it: question {n}") for n in range(THREADS))
        assert [(to, text.partition(": ")[2]) for to, text in sent] == wanted
