"""The thread actor on its own: a fake journal, the Intercom sandbox in process, a fake
Telegram, Trio's autojump clock. Each test names one business decision and fails without it."""

from __future__ import annotations

import json

import trio.testing

from actors.delivery import steps_key
from runtime import EntryStatus

from .unit import EPOCH, Harness, harness, inbound, reply


async def _status(h: Harness, entry_id: int) -> EntryStatus:
    entry = await h.journal.get(entry_id)
    assert entry is not None
    return entry.status


async def _open_thread(h: Harness) -> str:
    """The customer wrote once: their conversation's id."""
    await h.actor().handle(await h.entry(inbound("Hello", EPOCH, seq=1)))
    (conversation,) = h.conversations()
    return str(conversation["id"])


async def test_a_first_message_opens_a_conversation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        entry = await h.entry(inbound("Hello there", EPOCH, seq=1))
        await h.actor().handle(entry)
        (conversation,) = h.conversations()
        assert "Hello there" in conversation["parts"][0]["body"]
        assert len(h.sandbox.contacts()) == 1
        assert await _status(h, entry.id) is EntryStatus.DONE
        assert h.finished == [entry.id]


async def test_a_message_within_the_buffer_is_appended_to_the_conversation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness(conversation_buffer_seconds=3600) as h:
        actor = h.actor()
        await actor.handle(await h.entry(inbound("Hello", EPOCH, seq=1)))
        await actor.handle(await h.entry(inbound("Again", EPOCH + 600, seq=2)))
        (conversation,) = h.conversations()
        bodies = [part["body"] for part in conversation["parts"]]
        assert "Hello" in bodies[0]
        assert "Again" in bodies[1]


async def test_a_message_after_the_buffer_expired_opens_a_new_conversation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness(conversation_buffer_seconds=3600) as h:
        await h.actor().handle(await h.entry(inbound("Hello", EPOCH, seq=1)))
        # A new incarnation: what it knows of the thread comes from the journal.
        await h.actor().handle(await h.entry(inbound("Much later", EPOCH + 7200, seq=2)))
        first, second = h.conversations()
        assert "Hello" in first["parts"][0]["body"]
        assert "Much later" in second["parts"][0]["body"]
        assert first["contact_id"] == second["contact_id"]


async def test_a_reply_whose_step_is_done_is_not_sent_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        conversation_id = await _open_thread(h)
        await h.actor().handle(await h.entry(reply(conversation_id, "p1", "First answer")))
        assert len(h.telegram_sends) == 1
        assert "First answer" in h.telegram_sends[0]["text"]

        # Sent by an incarnation that died before the entry's commit: its step is recorded done.
        entry = await h.entry(reply(conversation_id, "p2", "Second answer"))
        h.journal.state[steps_key(entry.id)] = json.dumps({"p2:text:0": "done"}).encode()
        await h.actor().handle(entry)
        assert len(h.telegram_sends) == 1
        assert await _status(h, entry.id) is EntryStatus.DONE
        assert steps_key(entry.id) not in h.journal.state  # the record goes with the entry


async def test_a_send_in_doubt_is_not_repeated_and_leaves_a_note(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        conversation_id = await _open_thread(h)
        # Started by an incarnation that died before its outcome was recorded.
        entry = await h.entry(reply(conversation_id, "p1", "An answer"))
        started = json.dumps({"p1:text:0": f"started@{EPOCH:.3f}"}).encode()
        h.journal.state[steps_key(entry.id)] = started
        await h.actor().handle(entry)
        assert h.telegram_sends == []
        (conversation,) = h.conversations()
        notes = [part for part in conversation["parts"] if part["part_type"] == "note"]
        assert len(notes) == 1
        assert "interrupted while sending" in notes[0]["body"]
        assert await _status(h, entry.id) is EntryStatus.DONE


async def test_an_entry_handed_over_twice_is_delivered_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with harness() as h:
        conversation_id = await _open_thread(h)
        actor = h.actor()
        entry = await h.entry(reply(conversation_id, "p1", "Once"))
        await actor.handle(entry)
        await actor.handle(entry)  # a rescan raced the completion
        assert len(h.telegram_sends) == 1
        assert h.finished.count(entry.id) == 1
