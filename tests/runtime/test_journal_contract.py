"""One contract suite for every journal backend (the ``journal`` fixture is parametrised)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.lowlevel

from runtime import (
    Appended,
    Erased,
    Journal,
    JournalError,
    JournalStatistics,
    JournalUnavailable,
    NewEntry,
    partition_of,
)
from tests.runtime.conftest import OpenJournal


def entry(key: str, dedupe: str, payload: bytes = b"{}") -> NewEntry:
    return NewEntry(key=key, dedupe_id=dedupe, payload=payload)


async def test_append_assigns_increasing_ids_and_reads_back_in_order(journal: Journal) -> None:
    results = await journal.append([entry("a", "1", b"one"), entry("b", "2"), entry("a", "3")])
    ids = [r.id for r in results]
    assert ids == sorted(ids)
    assert not any(r.duplicate for r in results)
    pending = await journal.read_pending(after_id=0, limit=10)
    assert [(e.key, e.dedupe_id) for e in pending] == [("a", "1"), ("b", "2"), ("a", "3")]
    assert pending[0].payload == b"one"
    assert pending[0].partition == partition_of("a", journal.partitions)
    assert pending[0].created_at > 0


async def test_duplicates_are_recognised_and_not_appended(journal: Journal) -> None:
    first = await journal.append([entry("a", "dup")])
    again = await journal.append([entry("a", "dup"), entry("a", "new")])
    assert again[0].id == first[0].id
    assert again[0].duplicate
    assert not again[1].duplicate
    pending = await journal.read_pending(after_id=0, limit=10)
    assert [e.dedupe_id for e in pending] == ["dup", "new"]


async def test_concurrent_appends_of_one_dedupe_id_yield_one_entry(journal: Journal) -> None:
    results: list[bool] = []

    async def append_one() -> None:
        (got,) = await journal.append([entry("k", "same")])
        results.append(got.duplicate)

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(append_one)
    assert sorted(results) == [False] + [True] * 9
    assert len(await journal.read_pending(after_id=0, limit=100)) == 1


async def test_concurrent_appends_all_become_durable(journal: Journal) -> None:
    async def append_many(worker: int) -> None:
        for i in range(20):
            await journal.append([entry(f"k{worker}", f"{worker}-{i}")])

    async with trio.open_nursery() as nursery:
        for worker in range(10):
            nursery.start_soon(append_many, worker)
    pending = await journal.read_pending(after_id=0, limit=1000)
    assert len(pending) == 200
    for worker in range(10):
        mine = [e.dedupe_id for e in pending if e.key == f"k{worker}"]
        assert mine == [f"{worker}-{i}" for i in range(20)]  # per-key order is append order


async def test_read_pending_pages_and_filters_by_partition(journal: Journal) -> None:
    keys = [f"key-{i}" for i in range(40)]
    await journal.append([entry(k, k) for k in keys])
    page1 = await journal.read_pending(after_id=0, limit=15)
    page2 = await journal.read_pending(after_id=page1[-1].id, limit=100)
    assert [e.key for e in page1 + page2] == keys
    wanted = {partition_of(k, journal.partitions) for k in keys[:5]}
    some = await journal.read_pending(after_id=0, limit=100, partitions=wanted)
    assert {e.partition for e in some} <= wanted
    assert [e.key for e in some] == [
        k for k in keys if partition_of(k, journal.partitions) in wanted
    ]
    assert await journal.read_pending(after_id=0, limit=100, partitions=[]) == []


async def test_complete_removes_from_pending_and_writes_state_atomically(journal: Journal) -> None:
    a1, a2, b1 = await journal.append([entry("a", "a1"), entry("a", "a2"), entry("b", "b1")])
    assert await journal.complete(a1.id, state={"thread:a": b"conv-1", "gone": None})
    assert await journal.get_state("thread:a") == b"conv-1"
    pending = await journal.read_pending(after_id=0, limit=10)
    assert [e.id for e in pending] == [a2.id, b1.id]
    assert [e.id for e in await journal.read_pending_for_key("a", after_id=0, limit=10)] == [a2.id]
    done = await journal.get(a1.id)
    assert done is not None
    assert done.status.name == "DONE"
    await journal.put_state({"thread:a": None, "x": b"1"})
    assert await journal.get_state("thread:a") is None
    assert await journal.get_state("x") == b"1"


async def test_dead_letters_are_listed_and_replayed(journal: Journal) -> None:
    a1, a2, b1 = await journal.append([entry("a", "a1"), entry("a", "a2"), entry("b", "b1")])
    assert await journal.bury(a1.id, "intercom said no")
    assert await journal.bury(b1.id, "boom")
    dead = await journal.dead_letters()
    assert [(d.entry.id, d.error) for d in dead] == [(a1.id, "intercom said no"), (b1.id, "boom")]
    assert dead[0].dead_at > 0
    stats = await journal.statistics()
    assert (stats.pending, stats.dead) == (1, 2)
    revived = await journal.replay([a1.id])
    assert [e.id for e in revived] == [a1.id]
    assert [e.id for e in await journal.read_pending(after_id=0, limit=10)] == [a1.id, a2.id]
    assert [e.id for e in await journal.replay()] == [b1.id]
    assert await journal.dead_letters() == []
    assert await journal.replay([]) == []


async def test_statistics_report_the_backlog(journal: Journal) -> None:
    empty = await journal.statistics()
    assert empty == JournalStatistics(pending=0, oldest_pending_created_at=None, dead=0)
    results = await journal.append([entry("a", "1"), entry("a", "2")])
    stats = await journal.statistics()
    assert stats.pending == 2
    first = await journal.get(results[0].id)
    assert first is not None
    assert stats.oldest_pending_created_at == first.created_at


async def test_prune_forgets_old_done_entries_only(journal: Journal) -> None:
    a1, a2 = await journal.append([entry("a", "1"), entry("a", "2")])
    await journal.complete(a1.id)
    assert await journal.prune(done_before=0.0) == 0
    assert await journal.prune(done_before=1e12) == 1
    assert await journal.get(a1.id) is None
    assert await journal.get(a2.id) is not None
    # A pruned entry's dedupe id is forgotten: the redelivery window is the retention.
    (again,) = await journal.append([entry("a", "1")])
    assert not again.duplicate


async def test_get_of_a_missing_entry_is_none(journal: Journal) -> None:
    assert await journal.get(123456) is None
    assert await journal.get_state("nothing") is None


async def test_a_cursor_walk_sees_every_append_despite_concurrent_commits(
    journal: Journal,
) -> None:
    # Ids must become visible in id order: a reader that moved its cursor past an id must never
    # see an entry with a smaller id commit later (it would be skipped for good). Several walkers
    # poll while many appenders commit, to give an out-of-order commit many chances to show.
    appended: list[int] = []
    walks: list[list[int]] = [[] for _ in range(4)]
    appenders_done = trio.Event()

    async def append_many(worker: int) -> None:
        for i in range(20):
            batch = [entry(f"k{worker}", f"{worker}-{i}-{j}") for j in range(1 + i % 3)]
            appended.extend(r.id for r in await journal.append(batch))

    async def walk(seen: list[int]) -> None:
        cursor = 0
        while True:
            last_round = appenders_done.is_set()
            page = await journal.read_pending(after_id=cursor, limit=50)
            seen.extend(e.id for e in page)
            cursor = page[-1].id if page else cursor
            if last_round and not page:
                return
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for seen in walks:
            nursery.start_soon(walk, seen)
        async with trio.open_nursery() as appenders:
            for worker in range(20):
                appenders.start_soon(append_many, worker)
        appenders_done.set()
    for seen in walks:
        assert seen == sorted(seen)
        assert seen == sorted(appended)


async def test_a_named_lock_is_exclusive_and_other_names_do_not_wait(journal: Journal) -> None:
    inside: list[str] = []
    overlaps = 0

    async def hold(name: str, tag: str) -> None:
        nonlocal overlaps
        async with journal.lock(name):
            inside.append(tag)
            overlaps = max(overlaps, sum(1 for t in inside if t.startswith(name)))
            await trio.sleep(0.05)
            inside.remove(tag)

    async with trio.open_nursery() as nursery:
        for index in range(5):
            nursery.start_soon(hold, "identity:a", f"identity:a#{index}")
        with trio.fail_after(0.2):  # another name is not queued behind the five holders
            async with journal.lock("identity:b"):
                pass
    assert overlaps == 1


async def test_waiting_for_a_named_lock_can_be_cancelled(journal: Journal) -> None:
    release = trio.Event()

    async def holder(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with journal.lock("held"):
            task_status.started()
            await release.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(holder)
        with trio.move_on_after(0.1) as waited:
            async with journal.lock("held"):
                raise AssertionError("entered a held lock")
        assert waited.cancelled_caught
        release.set()
    with trio.fail_after(2):  # released, and the cancelled waiter left nothing behind
        async with journal.lock("held"):
            pass


async def in_a_run_of_its_own(scenario: Callable[[], Awaitable[None]], seconds: float) -> None:
    """Run ``scenario`` in another thread with its own Trio run, and fail after ``seconds``.

    A journal that loses a waiter leaves it waiting shielded from cancellation, which no
    deadline in the test's own run could end: the test would hang instead of failing. Here the
    hung thread is abandoned and the test fails.
    """
    with trio.fail_after(seconds):
        await trio.to_thread.run_sync(trio.run, scenario, abandon_on_cancel=True)


async def test_a_write_that_raises_in_the_writer_fails_alone_and_the_journal_goes_on(
    open_journal: OpenJournal,
) -> None:
    # A dedupe id with a lone surrogate reaches the group-commit writer, which cannot encode it
    # (issue 15: one such webhook hung a SQLite bridge for good).
    bad = "notif_\ud800"
    outcomes: dict[str, list[Appended] | JournalError] = {}

    async def append(journal: Journal, name: str, entries: list[NewEntry]) -> None:
        try:
            outcomes[name] = await journal.append(entries)
        except JournalError as exc:
            outcomes[name] = exc

    async def scenario() -> None:
        async with open_journal() as journal:
            async with trio.open_nursery() as nursery:  # queued together: one group commit
                nursery.start_soon(append, journal, "bad", [entry("k", bad)])
                nursery.start_soon(append, journal, "good", [entry("k", "good-1")])
                mixed = [entry("k", "good-2"), entry("k", bad + "x")]
                nursery.start_soon(append, journal, "mixed", mixed)
            # The writer is still running: later writes of every kind commit.
            await append(journal, "after", [entry("k", "good-3")])
            await journal.put_state({"s": b"1"})
            assert await journal.get_state("s") == b"1"
            pending = await journal.read_pending(after_id=0, limit=10)
            assert [e.dedupe_id for e in pending] == ["good-1", "good-3"]
            with pytest.raises(JournalError):
                await journal.append([entry("k\udc00", "bad-key")])

    await in_a_run_of_its_own(scenario, seconds=30)
    for name in ("bad", "mixed"):
        failure = outcomes[name]
        assert isinstance(failure, JournalError), failure
        # Not transient: a caller must not be told to retry what can never be stored.
        assert not isinstance(failure, JournalUnavailable), failure
    for name in ("good", "after"):
        assert isinstance(outcomes[name], list), outcomes[name]


# --- operator tools: inspection, erasure, dead-letter retention ------------------------------


async def test_dead_letter_by_id_and_by_key(journal: Journal) -> None:
    a1, a2, b1 = await journal.append([entry("a", "1"), entry("a", "2"), entry("b", "3")])
    await journal.bury(a1.id, "boom a1")
    await journal.bury(b1.id, "boom b1")
    letter = await journal.dead_letter(a1.id)
    assert letter is not None
    assert (letter.entry.id, letter.entry.key, letter.error) == (a1.id, "a", "boom a1")
    assert letter.dead_at >= letter.entry.created_at > 0
    assert await journal.dead_letter(a2.id) is None  # pending, not dead
    assert await journal.dead_letter(987654) is None
    assert [d.entry.id for d in await journal.dead_letters_for_key("a")] == [a1.id]
    assert [d.error for d in await journal.dead_letters_for_key("b")] == ["boom b1"]
    assert await journal.dead_letters_for_key("c") == []


async def test_find_state_by_prefix_value_and_page(journal: Journal) -> None:
    await journal.put_state({
        "conv:1": b"t1", "conv:2": b"t2", "conv:3": b"t1", "conv": b"t1", "conw:1": b"t1",
        "con%:1": b"t1", "con_:1": b"t1", "conv:\u00e9": b"t1", "other": b"t1",
    })  # fmt: skip
    found = await journal.find_state("conv:")
    assert [k for k, _ in found] == ["conv:1", "conv:2", "conv:3", "conv:\u00e9"]
    assert dict(found)["conv:2"] == b"t2"
    assert [k for k, _ in await journal.find_state("conv:", value=b"t1")] == [
        "conv:1", "conv:3", "conv:\u00e9",
    ]  # fmt: skip
    # LIKE wildcards in the prefix are plain characters.
    assert [k for k, _ in await journal.find_state("con%")] == ["con%:1"]
    assert [k for k, _ in await journal.find_state("con_")] == ["con_:1"]
    first = await journal.find_state("conv:", limit=2)
    rest = await journal.find_state("conv:", after=first[-1][0], limit=2)
    assert [k for k, _ in first + rest] == ["conv:1", "conv:2", "conv:3", "conv:\u00e9"]
    assert await journal.find_state("nothing:") == []
    assert len(await journal.find_state("")) == 9


async def test_erase_deletes_a_keys_entries_and_named_state_only(journal: Journal) -> None:
    a1, a2, a3, b1 = await journal.append(
        [entry("a", "1"), entry("a", "2"), entry("a", "3"), entry("b", "4")]
    )
    await journal.complete(a1.id, state={"thread:a": b"sa", "thread:b": b"sb"})
    await journal.bury(a2.id, "boom")
    await journal.put_state({"conv:9": b"a"})
    erased = await journal.erase("a", state_keys=["thread:a", "conv:9", "missing", "thread:a"])
    assert erased == Erased(pending=1, done=1, dead=1, state=2)
    for gone in (a1, a2, a3):
        assert await journal.get(gone.id) is None
    assert await journal.get_state("thread:a") is None
    assert await journal.get_state("conv:9") is None
    # Another key's entries and state are untouched.
    assert [e.id for e in await journal.read_pending(after_id=0, limit=10)] == [b1.id]
    assert await journal.get_state("thread:b") == b"sb"
    assert await journal.dead_letters() == []
    # The erased key's dedupe ids are forgotten with its entries.
    (again,) = await journal.append([entry("a", "1")])
    assert not again.duplicate
    assert await journal.erase("nobody") == Erased(pending=0, done=0, dead=0, state=0)


async def test_prune_dead_forgets_old_dead_letters_only(journal: Journal) -> None:
    a1, a2, a3 = await journal.append([entry("a", "1"), entry("a", "2"), entry("a", "3")])
    await journal.bury(a1.id, "boom")
    await journal.complete(a2.id)
    assert await journal.prune_dead(dead_before=0.0) == 0
    assert await journal.prune_dead(dead_before=1e12) == 1
    assert await journal.dead_letter(a1.id) is None
    assert await journal.get(a1.id) is None
    assert await journal.get(a2.id) is not None  # done: the other retention's business
    assert await journal.get(a3.id) is not None  # pending
    assert (await journal.statistics()).dead == 0


async def test_prune_state_forgets_old_state_under_a_prefix_only(journal: Journal) -> None:
    await journal.put_state({"sent:old": b"1", "sent%:old": b"1", "thread:old": b"1"})
    await trio.sleep(0.05)
    cutoff = time.time()
    await trio.sleep(0.05)
    await journal.put_state({"sent:new": b"2"})
    await journal.append([entry("a", "1")])
    assert await journal.prune_state(prefix="sent:", updated_before=0.0) == 0
    assert await journal.prune_state(prefix="sent:", updated_before=cutoff) == 1
    assert await journal.get_state("sent:old") is None
    assert await journal.get_state("sent:new") == b"2"  # written after the cut-off
    assert await journal.get_state("sent%:old") == b"1"  # wildcards are plain characters
    assert await journal.get_state("thread:old") == b"1"  # another prefix
    # Writing a key again renews it.
    await journal.put_state({"sent:new": b"3"})
    assert await journal.prune_state(prefix="sent:", updated_before=cutoff) == 0
    assert await journal.get_state("sent:new") == b"3"
    assert len(await journal.read_pending(after_id=0, limit=10)) == 1  # entries untouched
    with pytest.raises(ValueError, match="prefix"):
        await journal.prune_state(prefix="", updated_before=1e12)


# --- media: files linked from conversations (issue 19) ----------------------------------------


async def put(journal: Journal, token: str, content: bytes, name: str = "f.bin") -> None:
    digest = hashlib.sha256(content).hexdigest()
    await journal.put_media(token, content, digest=digest, mime_type="video/mp4", filename=name)
    await trio.sleep(0.01)  # the next one is stored strictly later


async def test_media_is_kept_once_per_content_and_read_by_token(journal: Journal) -> None:
    before = time.time()
    await put(journal, "t1", b"x" * 1000, "one.mp4")
    await put(journal, "t2", b"x" * 1000, "two.mp4")
    one = await journal.get_media("t1", stored_after=0.0)
    two = await journal.get_media("t2", stored_after=0.0)
    assert one is not None
    assert two is not None
    assert (one.content, one.mime_type, one.filename) == (b"x" * 1000, "video/mp4", "one.mp4")
    assert (two.content, two.filename) == (b"x" * 1000, "two.mp4")
    assert before <= one.stored_at <= time.time()
    assert await journal.get_media("t3", stored_after=0.0) is None
    # One content under two tokens counts once against the cap.
    assert await journal.prune_media(stored_before=0.0, max_bytes=1000) == 0
    assert await journal.get_media("t1", stored_after=0.0) is not None


async def test_media_expires_and_storing_again_renews_it(journal: Journal) -> None:
    await put(journal, "old", b"o" * 100)
    await put(journal, "kept", b"k" * 100)
    stored = await journal.get_media("kept", stored_after=0.0)
    assert stored is not None
    assert await journal.get_media("kept", stored_after=stored.stored_at + 1) is None
    cutoff = time.time()
    await put(journal, "kept", b"k" * 100)  # stored again: renewed
    renewed = await journal.get_media("kept", stored_after=cutoff)
    assert renewed is not None
    assert renewed.content == b"k" * 100
    assert await journal.prune_media(stored_before=cutoff) == 2  # "old": its token and content
    assert await journal.get_media("old", stored_after=0.0) is None
    assert await journal.get_media("kept", stored_after=0.0) is not None
    assert await journal.prune_media(stored_before=cutoff) == 0


async def test_media_over_the_cap_goes_oldest_first_but_never_the_kept_one(
    journal: Journal,
) -> None:
    for i in range(4):
        await put(journal, f"t{i}", bytes([i]) * 1000)
    assert await journal.prune_media(stored_before=0.0, max_bytes=3000) == 2
    assert await journal.get_media("t0", stored_after=0.0) is None
    for i in (1, 2, 3):
        assert await journal.get_media(f"t{i}", stored_after=0.0) is not None
    # A single content over the cap stays when it is the one just stored.
    big = b"b" * 5000
    await put(journal, "big", big)
    keep = hashlib.sha256(big).hexdigest()
    assert await journal.prune_media(stored_before=0.0, max_bytes=100, keep=keep) == 6
    assert await journal.get_media("big", stored_after=0.0) is not None
    assert await journal.prune_media(stored_before=0.0, max_bytes=100) == 2
    assert await journal.get_media("big", stored_after=0.0) is None


async def test_media_that_cannot_be_stored_is_a_permanent_error(journal: Journal) -> None:
    with pytest.raises(JournalError) as failed:
        await put(journal, "bad", b"z" * 10, "name\ud800.mp4")
    assert not isinstance(failed.value, JournalUnavailable)
    assert await journal.get_media("bad", stored_after=0.0) is None
    await put(journal, "good", b"z" * 10)  # the journal goes on
    assert await journal.get_media("good", stored_after=0.0) is not None
