"""The dispatcher against a real SQLite journal and real keyed actors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from actors.delivery import Dispatcher
from runtime import (
    Actor,
    ActorContext,
    Entry,
    KeyedActors,
    NewEntry,
    SQLiteJournal,
    open_sqlite_journal,
)


class Completing(Actor[Entry, None]):
    """Records each entry and completes it in the journal, like a thread actor does."""

    def __init__(self, ctx: ActorContext[Entry], world: World) -> None:
        self.key = ctx.key
        self.world = world

    async def handle(self, message: Entry) -> None:
        await self.world.gates.setdefault(self.key, trio.Event()).wait()
        if message.payload == b"poison" and message.id not in self.world.buried:
            self.world.buried.add(message.id)  # give it up once, as the give-up hook does
            await self.world.journal.bury(message.id, "poisoned")
            self.world.dispatcher.finished(message.id)
            return
        await self.world.journal.complete(message.id)
        self.world.dispatcher.finished(message.id)
        self.world.seen.append((self.key, message.id))
        self.world.progressed()


class World:
    def __init__(self, journal: SQLiteJournal) -> None:
        self.journal = journal
        self.seen: list[tuple[str, int]] = []
        self.buried: set[int] = set()
        self.progress = trio.Event()
        self.gates: dict[str, trio.Event] = {}
        self.room = 1_000_000  # the admission's bound on entries in flight (``admitting``)
        self.actors: KeyedActors[Entry, None] = KeyedActors(
            lambda ctx: Completing(ctx, self), mailbox_capacity=2
        )
        self.dispatcher = Dispatcher(journal, self.actors, batch=4, rescan_interval=0.5)

    def progressed(self) -> None:
        self.progress.set()
        self.progress = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        with trio.fail_after(10):
            while not predicate():
                await self.progress.wait()

    def open(self, *keys: str) -> None:
        for key in keys:
            self.gates.setdefault(key, trio.Event()).set()

    def seen_for(self, key: str) -> list[int]:
        return [i for k, i in self.seen if k == key]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_sqlite_journal(tmp_path / "j.db") as journal, trio.open_nursery() as nursery:
        w = World(journal)
        await nursery.start(w.actors.run)
        await nursery.start(w.dispatcher.run)
        yield w
        nursery.cancel_scope.cancel()


async def append(world: World, key: str, n: int) -> list[int]:
    results = await world.journal.append(
        [NewEntry(key, f"{key}-{i}-{trio.current_time()}", b"") for i in range(n)]
    )
    world.dispatcher.wake()
    return [r.id for r in results]


async def test_entries_reach_each_key_in_journal_order(world: World) -> None:
    world.open("a", "b")
    ids_a = await append(world, "a", 7)
    ids_b = await append(world, "b", 5)
    await world.wait_until(lambda: len(world.seen) == 12)
    assert world.seen_for("a") == ids_a
    assert world.seen_for("b") == ids_b
    assert world.dispatcher.inflight == 0


async def test_a_full_mailbox_holds_its_key_without_blocking_others(world: World) -> None:
    world.open("free")
    stuck = await append(world, "stuck", 10)  # 1 in flight + 2 in the mailbox, 7 held back
    free = await append(world, "free", 5)
    await world.wait_until(lambda: len(world.seen_for("free")) == 5)
    assert world.dispatcher.held_keys == 1  # "stuck" was walked past, not waited on
    assert world.seen_for("free") == free
    assert world.seen_for("stuck") == []
    more = await append(world, "stuck", 3)  # arrive while the key is held
    world.open("stuck")
    await world.wait_until(lambda: len(world.seen_for("stuck")) == 13)
    assert world.seen_for("stuck") == stuck + more  # in order, none twice
    assert world.dispatcher.held_keys == 0


async def test_replayed_dead_letters_are_picked_up_by_the_rescan(world: World) -> None:
    world.open("k")
    (poison,) = await world.journal.append([NewEntry("k", "poison", b"poison")])
    world.dispatcher.wake()
    after = await append(world, "k", 2)
    await world.wait_until(lambda: world.seen_for("k") == after)
    assert world.buried == {poison.id}
    assert [d.entry.id for d in await world.journal.dead_letters()] == [poison.id]
    await world.journal.replay([poison.id])  # behind the cursor now: only the rescan finds it
    await world.wait_until(lambda: world.seen_for("k") == [*after, poison.id])
    await trio.sleep(1.2)  # two more rescans: nothing is delivered twice
    assert world.seen_for("k") == [*after, poison.id]


@pytest.fixture
async def capped(tmp_path: Path) -> AsyncIterator[World]:
    """Two live actors at most: keys beyond wait in the journal."""
    async with open_sqlite_journal(tmp_path / "j.db") as journal, trio.open_nursery() as nursery:
        w = World(journal)
        w.actors = KeyedActors(lambda ctx: Completing(ctx, w), mailbox_capacity=2, max_live=2)
        w.dispatcher = Dispatcher(journal, w.actors, batch=4, rescan_interval=0.5)
        await nursery.start(w.actors.run)
        await nursery.start(w.dispatcher.run)
        yield w
        nursery.cancel_scope.cancel()


async def test_keys_beyond_the_cap_wait_in_the_journal_and_follow_in_order(capped: World) -> None:
    world = capped
    ids = {key: await append(world, key, 3) for key in ("a", "b", "c", "d", "e")}
    more = {key: await append(world, key, 2) for key in ("e", "c", "a")}  # later, interleaved
    await trio.testing.wait_all_tasks_blocked()
    # Every actor is busy (its gate is shut): only two keys have one, the rest wait.
    assert world.actors.statistics().live_actors == 2
    assert world.dispatcher.held_keys <= 2  # only keys with an actor: none per waiting key
    world.open("a", "b", "c", "d", "e")
    await world.wait_until(lambda: len(world.seen) == 21)
    for key in ("a", "b", "c", "d", "e"):
        assert world.seen_for(key) == ids[key] + more.get(key, []), key
    assert world.actors.statistics().live_actors <= 2
    # A key passivated to make room comes back, in order, with its next entries.
    back = await append(world, "a", 2)
    await world.wait_until(lambda: len(world.seen) == 23)
    assert world.seen_for("a") == ids["a"] + more["a"] + back
    assert world.dispatcher.inflight == 0


async def test_a_held_key_beyond_the_cap_keeps_its_order(capped: World) -> None:
    world = capped
    world.open("free")
    stuck = await append(world, "stuck", 8)  # holds its mailbox full and one slot
    others = {key: await append(world, key, 2) for key in ("x", "y", "z")}
    later = await append(world, "stuck", 3)
    await world.wait_until(lambda: world.dispatcher.held_keys == 1)
    world.open("x", "y", "z")
    await world.wait_until(lambda: len(world.seen) == 6)  # x, y, z share the other slot
    world.open("stuck")
    await world.wait_until(lambda: len(world.seen_for("stuck")) == 11)
    assert world.seen_for("stuck") == stuck + later
    for key, expected in others.items():
        assert world.seen_for(key) == expected


@pytest.fixture
async def admitting(tmp_path: Path) -> AsyncIterator[World]:
    """No actor cap, but a new key gets an actor only while fewer than ``world.room`` (4)
    entries are in flight (the bridge's admission: the Intercom budget's window, connections)."""
    async with open_sqlite_journal(tmp_path / "j.db") as journal, trio.open_nursery() as nursery:
        w = World(journal)
        w.room = 4
        w.dispatcher = Dispatcher(
            journal, w.actors, admit=lambda inflight: inflight < w.room, batch=4,
            rescan_interval=0.5,
        )  # fmt: skip
        await nursery.start(w.actors.run)
        await nursery.start(w.dispatcher.run)
        yield w
        nursery.cancel_scope.cancel()


async def test_keys_not_admitted_get_no_actor_and_follow_in_order(admitting: World) -> None:
    world = admitting
    ids = {key: await append(world, key, 3) for key in ("a", "b", "c", "d", "e")}
    more = {key: await append(world, key, 2) for key in ("e", "c", "a")}  # later, interleaved
    await trio.testing.wait_all_tasks_blocked()
    # Four entries in flight shut admission: "a" and "b" (two each in the mailbox, the third
    # held) have an actor, the rest wait in the journal (no actor, no record per key).
    assert world.actors.statistics().live_actors == 2
    assert world.dispatcher.inflight == 4
    world.open("a")  # a key with an actor still gets its entries while admission is shut
    await world.wait_until(lambda: len(world.seen_for("a")) == 5)
    assert world.seen_for("a") == ids["a"] + more["a"]
    world.room = 1_000
    world.open("b", "c", "d", "e")
    world.dispatcher.wake()
    await world.wait_until(lambda: len(world.seen) == 21)
    for key in ("a", "b", "c", "d", "e"):
        assert world.seen_for(key) == ids[key] + more.get(key, []), key
    assert world.dispatcher.inflight == 0
