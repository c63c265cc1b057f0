"""Lease ownership's guard on a real PostgreSQL journal: work done for a partition is cut off when
the node can no longer be sure of its lease, before any other node could take the partition."""

from __future__ import annotations

import time

import trio

from actors.delivery import Cluster, SingleNode
from runtime import PostgresJournal, open_postgres_journal
from tests.postgres import PostgresServer

TTL = 1.5
PARTITIONS = 4


async def test_a_guard_ends_with_the_lease_validity_when_renewals_stop(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(
        postgres_server.create_database(), partitions=PARTITIONS
    ) as journal:
        lease = 3.0  # a longer lease: a second between validity's end and the lease's
        cluster = Cluster(journal, node_id="a", partitions=PARTITIONS, lease_seconds=lease)
        await cluster.tick()  # takes every partition; no further ticks: renewals stop
        assert cluster.owns(0)
        began = time.monotonic()
        with cluster.guard(0) as guard:
            await trio.sleep(lease * 3)
        cut_after = time.monotonic() - began
        assert guard.cancelled_caught
        assert not cluster.owns(0)
        assert cluster.may_own(0)  # held still, until a renewal says otherwise
        # Cut off at two thirds of the lease, before the database lets another node in.
        assert cut_after < lease, cut_after
        assert await journal.acquire_lease(0, "b", ttl=lease) is None  # not yet free


async def test_renewals_carry_a_guard_past_the_first_validity(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(
        postgres_server.create_database(), partitions=PARTITIONS
    ) as journal:
        cluster = Cluster(journal, node_id="a", partitions=PARTITIONS, lease_seconds=TTL)
        async with trio.open_nursery() as nursery:
            await nursery.start(cluster.run)
            with cluster.guard(1) as guard:
                await trio.sleep(TTL * 2.5)  # several renewals
            assert not guard.cancelled_caught
            nursery.cancel_scope.cancel()


async def test_losing_the_partition_cancels_its_guards_only(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(
        postgres_server.create_database(), partitions=PARTITIONS
    ) as journal:
        a = Cluster(journal, node_id="a", partitions=PARTITIONS, lease_seconds=TTL)
        await a.tick()
        held = a.fence(2)
        assert held is not None
        # Another node takes partition 2 behind a's back once a's lease lapsed (a was paused).
        await journal.release_lease(held)
        assert await journal.acquire_lease(2, "b", ttl=30.0) is not None
        entered = trio.Event()
        outcomes: dict[int, bool] = {}

        async def work(partition: int) -> None:
            with a.guard(partition) as guard:
                entered.set()
                await trio.sleep(TTL / 2)
            outcomes[partition] = guard.cancelled_caught

        async with trio.open_nursery() as nursery:
            nursery.start_soon(work, 2)
            nursery.start_soon(work, 3)
            await entered.wait()
            await a.tick()  # the renewal of 2 fails: a drops it, and cancels its guard at once
        assert outcomes == {2: True, 3: False}
        assert not a.may_own(2)


async def test_a_single_node_never_cuts_work_off() -> None:
    node = SingleNode()
    with node.guard(0) as guard:
        await trio.sleep(0.01)
    assert not guard.cancelled_caught
    assert guard.deadline == float("inf")


async def _draining(journal: PostgresJournal, *, stuck: bool) -> tuple[Cluster, Cluster, list[int]]:
    """Node a holds every partition, node b joins: a starts handing half of them over."""
    a = Cluster(
        journal, node_id="a", partitions=PARTITIONS, lease_seconds=TTL, busy=lambda p: stuck
    )
    b = Cluster(journal, node_id="b", partitions=PARTITIONS, lease_seconds=TTL)
    await a.tick()
    await b.tick()  # its membership row; nothing is free for it yet
    await a.tick()  # two nodes now: a drains its surplus
    draining = [p for p in range(PARTITIONS) if a.fence(p) is not None and not a.may_own(p)]
    assert len(draining) == PARTITIONS // 2
    return a, b, draining


async def test_a_finished_handover_releases_the_lease_at_once(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(
        postgres_server.create_database(), partitions=PARTITIONS
    ) as journal:
        a, b, draining = await _draining(journal, stuck=False)
        await b.tick()  # b stays alive
        await a.tick()  # nothing in flight on them: released
        for partition in draining:
            assert await journal.acquire_lease(partition, "b", ttl=TTL) is not None


async def test_a_handover_stuck_past_a_lease_cuts_off_and_lets_the_lease_run_out(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(
        postgres_server.create_database(), partitions=PARTITIONS
    ) as journal:
        a, b, draining = await _draining(journal, stuck=True)
        partition = draining[0]
        cut: list[bool] = []

        async def stuck_delivery(task_status: trio.TaskStatus[None]) -> None:
            with a.guard(partition) as guard:
                task_status.started()
                await trio.sleep(TTL * 10)
            cut.append(guard.cancelled_caught)

        ticks = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(stuck_delivery)
            with trio.fail_after(TTL * 4):
                while a.fence(partition) is not None:  # ticks at the nodes' own pace
                    await trio.sleep(TTL / 3)
                    await b.tick()
                    await a.tick()  # renews; gives up once stuck for a lease
                    ticks += 1
        assert ticks >= 3  # it waited about a lease for the work to finish
        assert cut == [True]  # then cut it off
        assert a.fence(partition) is None
        # Not released: the cut-off delivery has the rest of the term to land first.
        assert await journal.acquire_lease(partition, "b", ttl=TTL) is None
        with trio.fail_after(TTL * 4):
            while await journal.acquire_lease(partition, "b", ttl=TTL) is None:  # noqa: ASYNC110 - expiry in the database
                await trio.sleep(0.1)
