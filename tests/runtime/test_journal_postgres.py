"""PostgreSQL-only journal behaviour: the trio-asyncio bridge, recovery, ordering, fencing.

The backend-neutral promises are in ``test_journal_contract.py``, which runs against this backend
too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from runtime import (
    Fence,
    JournalError,
    JournalUnavailable,
    NewEntry,
    PostgresJournal,
    open_postgres_journal,
    partition_of,
)
from tests.postgres import PostgresServer, throwaway_server


def entry(key: str, dedupe: str) -> NewEntry:
    return NewEntry(key=key, dedupe_id=dedupe, payload=b"{}")


def database(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own, for tests that stop and start it."""
    with throwaway_server() as server:
        yield server


# --- the trio-asyncio bridge ------------------------------------------------------------------


async def test_tasks_outside_the_loop_can_call_the_journal(
    postgres_server: PostgresServer,
) -> None:
    # The callers live in a nursery opened before (outside) the journal's trio-asyncio loop,
    # as Hypercorn's request tasks and actor tasks do.
    url = postgres_server.create_database()
    send, receive = trio.open_memory_channel[PostgresJournal](0)
    results: list[tuple[int, bool]] = []
    all_done = trio.Event()

    async def caller(number: int, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        journal = await receive.receive()
        (appended,) = await journal.append([entry(f"k{number}", f"d{number}")])
        got = await journal.get(appended.id)
        assert got is not None
        results.append((appended.id, got.dedupe_id == f"d{number}"))
        if len(results) == 8:
            all_done.set()

    async with trio.open_nursery() as callers:
        for number in range(8):
            await callers.start(caller, number)
        async with open_postgres_journal(url) as journal:
            for _ in range(8):
                await send.send(journal)
            with trio.fail_after(10):
                await all_done.wait()
    assert len({entry_id for entry_id, _ in results}) == 8
    assert all(ok for _, ok in results)


async def test_calls_after_shutdown_raise_journal_unavailable(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        await journal.append([entry("a", "1")])
    with trio.fail_after(5), pytest.raises(JournalUnavailable):
        await journal.append([entry("a", "2")])
    with trio.fail_after(5), pytest.raises(JournalUnavailable):
        await journal.read_pending(after_id=0, limit=10)


async def test_callers_busy_during_shutdown_get_journal_unavailable(
    postgres_server: PostgresServer,
) -> None:
    outcomes: list[str] = []

    async def keep_calling(journal: PostgresJournal, number: int) -> None:
        try:
            for i in range(10_000):
                if number % 2:
                    await journal.read_pending(after_id=0, limit=10)
                else:
                    await journal.append([entry("k", f"{number}-{i}")])
        except JournalUnavailable:
            outcomes.append("unavailable")

    url = postgres_server.create_database()
    with trio.fail_after(10):
        # The callers' nursery outlives the journal: they are mid-call when it stops.
        async with trio.open_nursery() as callers, open_postgres_journal(url) as journal:
            for number in range(10):
                callers.start_soon(keep_calling, journal, number)
            await trio.sleep(0.2)
    assert outcomes == ["unavailable"] * 10


async def test_cancelled_readers_leave_the_journal_usable(
    postgres_server: PostgresServer,
) -> None:
    # Cancelled before, during and after their query reaches the server; each cancellation
    # reaches asyncpg as asyncio cancellation and must leave the pooled connections sound.
    async with open_postgres_journal(postgres_server.create_database(), pool_size=2) as journal:
        await journal.append([entry(f"k{i}", f"{i}") for i in range(100)])

        async def read_for(seconds: float) -> None:
            with trio.move_on_after(seconds):
                await journal.read_pending(after_id=0, limit=100)

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(read_for, i * 0.0005)
        with trio.fail_after(5):
            await journal.append([entry("a", "after")])
            assert len(await journal.read_pending(after_id=0, limit=200)) == 101


# --- schema -----------------------------------------------------------------------------------


async def test_reopening_keeps_entries_and_refuses_another_partition_count(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    async with open_postgres_journal(url, partitions=16) as journal:
        await journal.append([entry("a", "1")])
    async with open_postgres_journal(url, partitions=16) as journal:
        assert [e.dedupe_id for e in await journal.read_pending(after_id=0, limit=10)] == ["1"]
    with pytest.raises(JournalError, match="16 partitions, not 32"):
        async with open_postgres_journal(url, partitions=32):
            pass  # pragma: no cover - refused at start


async def test_a_journal_of_schema_version_1_gets_the_media_tables_and_keeps_its_entries(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    async with open_postgres_journal(url) as journal:
        await journal.append([entry("a", "1")])
    # What a journal written by the previous version looks like: no media tables, version 1.
    await trio.to_thread.run_sync(
        postgres_server.psql_command,
        "DROP TABLE journal_media_links; DROP TABLE journal_media;"
        " UPDATE journal_meta SET value = '1' WHERE name = 'schema_version'",
        database(url),
    )
    async with open_postgres_journal(url) as journal:
        assert [e.dedupe_id for e in await journal.read_pending(after_id=0, limit=10)] == ["1"]
        await journal.put_media("tok", b"m" * 100, digest="d", mime_type="a/b", filename="f")
        stored = await journal.get_media("tok", stored_after=0.0)
        assert stored is not None
        assert stored.content == b"m" * 100
    await trio.to_thread.run_sync(
        postgres_server.psql_command,
        "DO $$ BEGIN IF (SELECT value FROM journal_meta WHERE name = 'schema_version') <> '2'"
        " THEN RAISE EXCEPTION 'not migrated'; END IF; END $$",
        database(url),
    )
    # A journal of a newer version than this program's is refused, as before.
    await trio.to_thread.run_sync(
        postgres_server.psql_command,
        "UPDATE journal_meta SET value = '3' WHERE name = 'schema_version'",
        database(url),
    )
    with pytest.raises(JournalError, match="version 3 is newer"):
        async with open_postgres_journal(url):
            pass  # pragma: no cover - refused at start


async def test_an_unreachable_database_at_start_is_journal_unavailable() -> None:
    url = "postgresql://postgres@127.0.0.1:1/none"
    with trio.fail_after(5), pytest.raises(JournalUnavailable):
        async with open_postgres_journal(url, connect_timeout=2):
            pass  # pragma: no cover - refused at start
    journal = PostgresJournal(url, connect_timeout=2)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(5), pytest.raises(JournalUnavailable):
            await nursery.start(journal.run)


# --- ordering across transactions -------------------------------------------------------------


async def test_a_slow_append_is_not_overtaken_by_a_later_one(
    postgres_server: PostgresServer,
) -> None:
    # A trigger holds the first append between drawing its id and committing. Were appends not
    # serialised, the second would commit a higher id first and a cursor would skip the first.
    url = postgres_server.create_database()
    async with open_postgres_journal(url) as journal:
        await trio.to_thread.run_sync(
            postgres_server.psql_command,
            "CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.key = 'slow' THEN PERFORM pg_sleep(0.5); END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER slow_down BEFORE INSERT ON journal_entries"
            " FOR EACH ROW EXECUTE FUNCTION slow_down()",
            database(url),
        )
        cursor = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(journal.append, [entry("slow", "s")])
            await trio.sleep(0.2)  # the slow append has drawn its id and waits in the trigger
            await journal.append([entry("fast", "f")])
            seen = await journal.read_pending(after_id=cursor, limit=10)
            cursor = max([cursor, *(e.id for e in seen)])
        seen += await journal.read_pending(after_id=cursor, limit=10)
    assert sorted(e.dedupe_id for e in seen) == ["f", "s"]


# --- recovery ---------------------------------------------------------------------------------


async def test_the_journal_recovers_when_the_server_comes_back(own_server: PostgresServer) -> None:
    async with open_postgres_journal(own_server.create_database()) as journal:
        await journal.append([entry("a", "before")])
        elsewhere = (partition_of("a", journal.partitions) + 1) % journal.partitions
        with journal.appended_hint([elsewhere]) as hint:
            await trio.to_thread.run_sync(own_server.stop)
            try:
                with trio.fail_after(5):
                    with pytest.raises(JournalUnavailable) as failed:
                        await journal.append([entry("a", "during")])
                    assert failed.value.__cause__ is not None
                    with pytest.raises(JournalUnavailable):
                        await journal.read_pending(after_id=0, limit=10)
                    with pytest.raises(JournalUnavailable):
                        await journal.complete(1)
            finally:
                await trio.to_thread.run_sync(own_server.start)
            with trio.fail_after(10):
                await journal.append([entry("a", "after")])
                pending = await journal.read_pending(after_id=0, limit=10)
                # The listener reconnects by itself and says it may have missed notices.
                await hint.wait()
    assert [e.dedupe_id for e in pending] == ["before", "after"]


# --- leases and fencing -----------------------------------------------------------------------


async def test_a_lease_is_exclusive_until_it_expires_or_is_released(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        first = await journal.acquire_lease(3, "node-a", ttl=60)
        assert first == Fence(3, "node-a", 1)
        assert await journal.acquire_lease(3, "node-b", ttl=60) is None
        assert await journal.renew_lease(first, ttl=60)
        assert await journal.release_lease(first)
        second = await journal.acquire_lease(3, "node-b", ttl=0)
        assert second == Fence(3, "node-b", 2)
        # Expired (ttl 0): anyone may take over, and every tenure has a new epoch.
        third = await journal.acquire_lease(3, "node-a", ttl=60)
        assert third == Fence(3, "node-a", 3)
        assert not await journal.renew_lease(second, ttl=60)
        assert not await journal.release_lease(first)
        # The same owner acquiring again (a restarted node) fences out its old tenure.
        fourth = await journal.acquire_lease(3, "node-a", ttl=60)
        assert fourth == Fence(3, "node-a", 4)
        assert not await journal.renew_lease(third, ttl=60)


async def test_many_leases_renew_in_one_call_and_moved_ones_are_left_out(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        held = [await journal.acquire_lease(p, "node-a", ttl=60) for p in range(4)]
        fences = [fence for fence in held if fence is not None]
        assert len(fences) == 4
        assert await journal.renew_leases(fences, ttl=60) == {0, 1, 2, 3}
        assert await journal.release_lease(fences[1])
        assert await journal.acquire_lease(1, "node-b", ttl=60) is not None
        assert await journal.renew_leases(fences, ttl=0.5) == {0, 2, 3}
        assert await journal.renew_leases([], ttl=60) == set()
        await trio.sleep(0.8)
        # Renewed with ttl 0.5 and not since: expired, so another node may take them now.
        assert await journal.acquire_lease(2, "node-b", ttl=60) is not None
        live = {lease.partition: lease.owner for lease in await journal.leases() if lease.live}
        assert live == {1: "node-b", 2: "node-b"}


async def test_writes_with_a_stale_fence_are_refused_and_write_nothing(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        a1, a2 = await journal.append([entry("a", "1"), entry("a", "2")])
        partition = partition_of("a", journal.partitions)
        old = await journal.acquire_lease(partition, "node-a", ttl=0)
        assert old is not None
        new = await journal.acquire_lease(partition, "node-b", ttl=60)
        assert new is not None
        assert not await journal.complete(a1.id, state={"s": b"old"}, fence=old)
        assert not await journal.bury(a2.id, "old owner", fence=old)
        assert await journal.get_state("s") is None
        assert [e.id for e in await journal.read_pending(after_id=0, limit=10)] == [a1.id, a2.id]
        assert await journal.complete(a1.id, state={"s": b"new"}, fence=new)
        assert await journal.bury(a2.id, "new owner", fence=new)
        assert await journal.get_state("s") == b"new"
        assert await journal.read_pending(after_id=0, limit=10) == []


async def test_a_fence_of_another_partition_does_not_hold(postgres_server: PostgresServer) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        (a1,) = await journal.append([entry("a", "1")])
        other = (partition_of("a", journal.partitions) + 1) % journal.partitions
        fence = await journal.acquire_lease(other, "node-a", ttl=60)
        assert fence is not None
        assert not await journal.complete(a1.id, fence=fence)
        assert not await journal.bury(a1.id, "x", fence=fence)
        assert await journal.get(a1.id) is not None
        assert len(await journal.read_pending(after_id=0, limit=10)) == 1


async def test_a_fence_without_any_lease_row_does_not_hold(
    postgres_server: PostgresServer,
) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        (a1,) = await journal.append([entry("a", "1")])
        fence = Fence(partition_of("a", journal.partitions), "nobody", 1)
        assert not await journal.complete(a1.id, fence=fence)


# --- group commit -----------------------------------------------------------------------------


async def test_releasing_a_pooled_connection_sends_no_reset_query(
    postgres_server: PostgresServer,
) -> None:
    # Each pooled call is its own transaction, and nothing more: asyncpg's default reset on
    # release (pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL) would be a further
    # round trip per call. The database logs every statement its sessions run.
    url = postgres_server.create_database()
    postgres_server.psql_command(f"ALTER DATABASE \"{database(url)}\" SET log_statement = 'all'")
    marker = f"reset-probe-{database(url)}"
    async with open_postgres_journal(url) as journal:
        for number in range(5):
            await journal.get_state(f"{marker}-{number}")
        await journal.complete((await journal.append([entry(marker, marker)]))[0].id)
    log = (postgres_server.datadir / "server.log").read_text(errors="replace")
    assert f"{marker}-4" in log  # the statements of this database are logged
    session = log[log.index(f"{marker}-0") :]
    assert "pg_advisory_unlock_all" not in session


async def test_concurrent_appends_share_commits(postgres_server: PostgresServer) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        async with trio.open_nursery() as nursery:
            for number in range(100):
                nursery.start_soon(journal.append, [entry(f"k{number}", f"d{number}")])
        assert journal.commits < 100
        assert len(await journal.read_pending(after_id=0, limit=200)) == 100


async def test_one_bad_append_fails_alone_in_a_shared_commit(
    postgres_server: PostgresServer,
) -> None:
    failures: list[JournalError] = []

    async def append(key: str) -> None:
        try:
            await journal.append([entry(key, key)])
        except JournalError as exc:
            failures.append(exc)

    async with open_postgres_journal(postgres_server.create_database()) as journal:
        async with trio.open_nursery() as nursery:
            for key in ["a", "b", "bad\x00key", "c"]:
                nursery.start_soon(append, key)
        pending = await journal.read_pending(after_id=0, limit=10)
    assert sorted(e.key for e in pending) == ["a", "b", "c"]
    assert len(failures) == 1
    assert failures[0].__cause__ is not None
    # A NUL can never be stored: not transient, so the ingress does not answer 503 (issue 15).
    assert not isinstance(failures[0], JournalUnavailable)


# --- wake-up hints ----------------------------------------------------------------------------


async def test_appends_by_another_node_wake_a_hint_for_their_partition(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    async with open_postgres_journal(url) as here, open_postgres_journal(url) as there:
        mine = partition_of("mine", here.partitions)
        with here.appended_hint([mine]) as hint, here.appended_hint() as everything:
            others = [k for k in (f"other{i}" for i in range(50)) if partition_of(k, 64) != mine]
            await there.append([entry(others[0], "o")])
            with trio.fail_after(5):
                await everything.wait()
            with trio.move_on_after(0.2) as idle:
                await hint.wait()
            assert idle.cancelled_caught
            await there.append([entry("mine", "m")])
            with trio.fail_after(5):
                await hint.wait()


async def test_a_hint_fired_before_waiting_is_not_lost(postgres_server: PostgresServer) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        with journal.appended_hint() as hint:
            await journal.append([entry("a", "1")])
            with trio.fail_after(5):
                await hint.wait()


async def test_leases_lists_live_and_released_tenures(postgres_server: PostgresServer) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        assert await journal.leases() == []
        first = await journal.acquire_lease(3, "node-a", ttl=30)
        second = await journal.acquire_lease(5, "node-b", ttl=30)
        assert first is not None
        assert second is not None
        await journal.release_lease(second)
        leases = await journal.leases()
        assert [(lease.partition, lease.owner, lease.live) for lease in leases] == [
            (3, "node-a", True),
            (5, "node-b", False),
        ]
        assert leases[0].epoch == first.epoch


# --- named locks across processes -------------------------------------------------------------


async def test_a_named_lock_excludes_other_processes_and_dies_with_its_session(
    postgres_server: PostgresServer,
) -> None:
    """Two journals on one database stand for two nodes: a name locked by one waits in the
    other; a journal that goes away (its sessions closed) releases what it held."""
    url = postgres_server.create_database()
    async with open_postgres_journal(url) as node_a, open_postgres_journal(url) as node_b:
        order: list[str] = []

        async def a_holds(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            async with node_a.lock("identity:+15550001111"):
                order.append("a in")
                task_status.started()
                await trio.sleep(0.3)
                order.append("a out")

        async with trio.open_nursery() as nursery:
            await nursery.start(a_holds)
            with trio.fail_after(5):
                async with node_b.lock("identity:+15550001111"):
                    order.append("b in")
            async with node_b.lock("identity:+15550009999"):  # another name: no wait
                assert order == ["a in", "a out", "b in"]
        async with open_postgres_journal(url) as node_c:
            held = trio.Event()

            async def c_holds_forever() -> None:
                async with node_c.lock("left-behind"):
                    held.set()
                    await trio.sleep_forever()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(c_holds_forever)
                await held.wait()
                nursery.cancel_scope.cancel()
        with trio.fail_after(5):
            async with node_a.lock("left-behind"):
                pass


# --- shared counters per window ---------------------------------------------------------------


async def test_a_window_counter_never_passes_its_limit(postgres_server: PostgresServer) -> None:
    async with open_postgres_journal(postgres_server.create_database()) as journal:
        assert [await journal.claim_window("x", 5, 4, limit=10) for _ in range(4)] == [4, 4, 2, 0]
        assert await journal.claim_window("y", 5, 3, limit=10) == 3  # counters are separate
        assert await journal.claim_window("x", 4, 4, limit=10) == 0  # an older window: nothing
        # A newer window starts afresh, from the floor.
        assert await journal.claim_window("x", 6, 4, limit=10, floor=8) == 2
        assert await journal.claim_window("x", 7, 0, limit=10, floor=3) == 0
        assert await journal.claim_window("x", 7, 20, limit=10) == 7
        # A floor at the limit spends the window for everyone.
        assert await journal.claim_window("x", 8, 1, limit=10) == 1
        assert await journal.claim_window("x", 8, 0, limit=10, floor=10) == 0
        assert await journal.claim_window("x", 8, 5, limit=10) == 0
        # A lower floor never lowers the count.
        assert await journal.claim_window("x", 9, 6, limit=10) == 6
        assert await journal.claim_window("x", 9, 6, limit=10, floor=2) == 4
        with pytest.raises(ValueError, match=">= 0"):
            await journal.claim_window("x", 9, -1, limit=10)


async def test_concurrent_window_claims_share_the_limit_exactly(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    taken: list[int] = []

    async def claimer() -> None:
        async with open_postgres_journal(url, pool_size=4) as journal, trio.open_nursery() as n:
            for _ in range(20):
                n.start_soon(_take, journal)

    async def _take(journal: PostgresJournal) -> None:
        taken.append(await journal.claim_window("app", 1, 3, limit=100))

    async with trio.open_nursery() as nursery:
        for _ in range(3):  # three processes' worth of pools: 60 claims of 3 for 100 slots
            nursery.start_soon(claimer)
    assert sum(taken) == 100
    assert sorted(taken)[-33:] == [3] * 33
