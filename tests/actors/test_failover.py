"""Fast failover on a real PostgreSQL journal: a node whose lease session ends (its process died)
has its partitions taken at once, not when its leases expire; a node that loses its own session
stops delivering at once; and renewals keep up while the process is busy with deliveries."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import trio

from actors.delivery import Cluster
from runtime import NewEntry, PostgresJournal, open_postgres_journal
from tests.postgres import PostgresServer

PARTITIONS = 8
LONG = 30.0  # leases that would not expire during a test


async def owned_by(journal: PostgresJournal, owner: str) -> set[int]:
    return {
        lease.partition
        for lease in await journal.leases()
        if lease.live and lease.owner == owner and lease.partition >= 0
    }


async def test_a_dead_nodes_partitions_are_taken_before_its_leases_expire(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    async with open_postgres_journal(url, partitions=PARTITIONS) as survivor:
        b = Cluster(
            survivor, node_id="b", partitions=PARTITIONS, lease_seconds=LONG, takeover_poll=0.1
        )
        async with open_postgres_journal(url, partitions=PARTITIONS) as doomed:
            a = Cluster(doomed, node_id="a", partitions=PARTITIONS, lease_seconds=LONG)
            await a.tick()  # takes every partition; no release follows (a dies below)
            assert await owned_by(survivor, "a") == set(range(PARTITIONS))
            async with trio.open_nursery() as nursery:
                await nursery.start(b.run)
                await trio.sleep(0.5)  # b sees a alive: its session lock is held
                assert b.owned() == frozenset()
                nursery.cancel_scope.cancel()
        # a's journal closed without releasing a lease, as a killed process's would: its
        # session, and the lock in it, ended with its connection.
        died = time.monotonic()
        async with trio.open_nursery() as nursery:
            await nursery.start(b.run)
            with trio.fail_after(LONG / 3):
                while b.owned() != frozenset(range(PARTITIONS)):  # noqa: ASYNC110 - cluster state
                    await trio.sleep(0.05)
            took = time.monotonic() - died
            nursery.cancel_scope.cancel()
        assert took < 3.0, took
        assert b.takeovers == PARTITIONS


async def test_renewals_keep_their_pace_after_taking_over_from_a_dead_node(
    postgres_server: PostgresServer,
) -> None:
    # While the dead node's membership row lives on, the watch sees it dead at every look; the
    # early ticks it asked for once pushed the next scheduled tick a term further out each, so
    # the survivor stopped renewing for minutes and its deliveries were cut off.
    url = postgres_server.create_database()
    lease = 3.0
    async with open_postgres_journal(url, partitions=PARTITIONS) as survivor:
        b = Cluster(
            survivor, node_id="b", partitions=PARTITIONS, lease_seconds=lease, takeover_poll=0.1
        )
        async with trio.open_nursery() as nursery:
            async with open_postgres_journal(url, partitions=PARTITIONS) as doomed:
                a = Cluster(doomed, node_id="a", partitions=PARTITIONS, lease_seconds=lease)
                await a.tick()  # takes every partition
                await nursery.start(b.run)
                await trio.sleep(0.5)  # b sees a alive
            # a dies (its journal closed without a release); its membership lives on a while.
            with trio.fail_after(lease):
                while b.owned() != frozenset(range(PARTITIONS)):  # noqa: ASYNC110 - cluster state
                    await trio.sleep(0.05)
            with b.guard(0) as guard:
                await trio.sleep(lease * 3)  # a's membership expires meanwhile
            assert not guard.cancelled_caught
            assert b.owns(0)
            nursery.cancel_scope.cancel()


async def test_a_node_that_loses_its_lease_session_stops_delivering_at_once(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    database = urlsplit(url).path.lstrip("/")
    async with open_postgres_journal(url, partitions=PARTITIONS) as journal:
        a = Cluster(journal, node_id="a", partitions=PARTITIONS, lease_seconds=LONG)
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            assert a.owns(0)
            ended = 0.0
            with a.guard(0) as guard:
                # The server ends the session (as a restart or an operator would): others may
                # now take a's partitions, so a must not go on delivering under its leases.
                await trio.to_thread.run_sync(
                    postgres_server.psql_command,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'threadline leases'",
                    database,
                )
                ended = time.monotonic()
                await trio.sleep(LONG)
            assert guard.cancelled_caught
            assert time.monotonic() - ended < 2.0
            with trio.fail_after(5):  # then a new session renews what nobody took meanwhile
                while not a.owns(0):  # noqa: ASYNC110 - cluster state
                    await trio.sleep(0.05)
            assert journal.session_holds("a")
            nursery.cancel_scope.cancel()


async def test_an_owner_never_seen_with_a_session_is_left_to_lease_expiry(
    postgres_server: PostgresServer,
) -> None:
    # A node of an older release holds no session lock: its leases only move when they expire.
    url = postgres_server.create_database()
    async with open_postgres_journal(url, partitions=PARTITIONS) as journal:
        async with open_postgres_journal(url, partitions=PARTITIONS) as old:
            await old.acquire_leases(list(range(PARTITIONS)), "old", ttl=LONG)
        b = Cluster(
            journal, node_id="b", partitions=PARTITIONS, lease_seconds=LONG, takeover_poll=0.1
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(b.run)
            await trio.sleep(1.0)  # ten looks: "old" has no session, and never had one
            assert b.owned() == frozenset()
            nursery.cancel_scope.cancel()
        assert b.takeovers == 0


@pytest.mark.slow
async def test_a_node_busy_with_a_thousand_deliveries_keeps_its_leases(
    postgres_server: PostgresServer,
) -> None:
    # Thousands of live actors keep the process and its journal pool busy (appends queued for
    # the group commit, state reads waiting for a connection, CPU between them). The lease
    # renewals have their own session: none comes later than the leases' validity.
    url = postgres_server.create_database()
    lease = 3.0  # validity 2 s, renewed every second: a renewal queued behind the load misses it
    async with open_postgres_journal(url, partitions=PARTITIONS, pool_size=4) as journal:
        a = Cluster(journal, node_id="a", partitions=PARTITIONS, lease_seconds=lease)
        done = 0

        async def actor(number: int) -> None:
            nonlocal done
            key = f"thread-{number}"
            for turn in range(1_000):  # bounded; cancelled after the measured time
                await journal.append([NewEntry(key, f"{number}-{turn}", b"x" * 200)])
                await journal.get_state(key)
                sum(range(1_000))  # a delivery's own work
                done += 1

        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            held = a.owned()
            assert held == frozenset(range(PARTITIONS))
            async with trio.open_nursery() as load:
                for number in range(1_000):
                    load.start_soon(actor, number)
                with a.guard(0) as guard:
                    await trio.sleep(lease * 4)
                load.cancel_scope.cancel()
            assert not guard.cancelled_caught, f"cut off after {done} deliveries"
            assert a.owned() == held
            assert done > 100  # the load was real (its pace depends on the machine)
            nursery.cancel_scope.cancel()
