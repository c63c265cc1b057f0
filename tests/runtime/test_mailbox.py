from __future__ import annotations

import pytest
import trio
import trio.testing

from runtime import ActorStopped, Mailbox, MailboxFull


async def test_messages_come_out_in_acceptance_order() -> None:
    box: Mailbox[int] = Mailbox(10)
    for i in range(10):
        box.put_nowait(i)
    assert [await box.get() for _ in range(10)] == list(range(10))


def test_put_nowait_raises_mailbox_full_when_full() -> None:
    box: Mailbox[int] = Mailbox(2)
    box.put_nowait(1)
    box.put_nowait(2)
    with pytest.raises(MailboxFull) as info:
        box.put_nowait(3)
    assert info.value.capacity == 2
    assert box.statistics().current_buffer_used == 2


async def test_blocked_senders_are_served_in_fifo_order() -> None:
    box: Mailbox[str] = Mailbox(1)
    box.put_nowait("first")
    async with trio.open_nursery() as nursery:
        for name in ("a", "b", "c"):
            nursery.start_soon(box.put, name)
            await trio.testing.wait_all_tasks_blocked()
        assert box.statistics().tasks_waiting_put == 3
        got = [await box.get() for _ in range(4)]
    assert got == ["first", "a", "b", "c"]


async def test_cancelled_put_enqueues_nothing() -> None:
    box: Mailbox[int] = Mailbox(1)
    box.put_nowait(1)
    with trio.move_on_after(0.01):
        await box.put(2)
    assert box.statistics().tasks_waiting_put == 0
    assert box.drain() == [1]


async def test_get_waits_for_a_message() -> None:
    box: Mailbox[int] = Mailbox(1)
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.testing.wait_all_tasks_blocked()
            assert box.consumer_waiting
            box.put_nowait(7)

        nursery.start_soon(later)
        assert await box.get() == 7
    assert not box.consumer_waiting


async def test_close_drains_then_ends_and_refuses_puts() -> None:
    box: Mailbox[int] = Mailbox(4)
    box.put_nowait(1)
    box.close()
    with pytest.raises(ActorStopped):
        box.put_nowait(2)
    assert await box.get() == 1
    with pytest.raises(trio.EndOfChannel):
        await box.get()
    assert box.statistics().closed


async def test_close_wakes_a_waiting_consumer_and_blocked_senders() -> None:
    box: Mailbox[int] = Mailbox(1)
    box.put_nowait(0)
    outcomes: list[str] = []

    async def sender() -> None:
        try:
            await box.put(1)
        except ActorStopped:
            outcomes.append("sender stopped")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        box.close()
    assert outcomes == ["sender stopped"]
    assert box.drain() == [0]

    empty: Mailbox[int] = Mailbox(1)
    async with trio.open_nursery() as nursery:

        async def consumer() -> None:
            with pytest.raises(trio.EndOfChannel):
                await empty.get()
            outcomes.append("consumer ended")

        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        empty.close()
    assert outcomes[-1] == "consumer ended"


async def test_a_second_consumer_is_refused() -> None:
    box: Mailbox[int] = Mailbox(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.get)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="one consumer"):
            await box.get()
        box.put_nowait(1)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Mailbox(0)
