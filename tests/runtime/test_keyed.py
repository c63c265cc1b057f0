"""Keyed actors: activation, ordering, ask, passivation races, timers, metrics."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from runtime import (
    Actor,
    ActorContext,
    ActorStopped,
    AtCapacity,
    KeyedActors,
    MailboxFull,
    RuntimeMetrics,
    open_keyed_actors,
)
from runtime.testing import Recorder


async def test_one_actor_per_key_handles_messages_in_order() -> None:
    rec: Recorder[int] = Recorder()
    async with open_keyed_actors(KeyedActors(rec.factory())) as actors:
        for i in range(50):
            await actors.tell(f"k{i % 5}", i)
        await trio.testing.wait_all_tasks_blocked()
        assert actors.statistics().live_actors == 5
    assert rec.handled == {f"k{k}": list(range(k, 50, 5)) for k in range(5)}
    assert [e for e in rec.events if e[0] == "start"] == [("start", f"k{k}") for k in range(5)]


async def test_ask_returns_the_handlers_result() -> None:
    rec: Recorder[str] = Recorder()
    async with open_keyed_actors(KeyedActors(rec.factory())) as actors:
        assert await actors.ask("a", "x") == 1
        assert await actors.ref("a").ask("y") == 2
        await actors.ref("b").tell("z")
        assert await actors.ask("b", "w") == 2


async def test_try_tell_raises_mailbox_full_when_full() -> None:
    gate = trio.Event()

    class Slow(Actor[int, None]):
        async def handle(self, message: int) -> None:
            await gate.wait()

    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    system: KeyedActors[int, None] = KeyedActors(
        lambda ctx: Slow(), mailbox_capacity=2, name="slow", metrics=metrics
    )
    async with open_keyed_actors(system) as actors:
        actors.try_tell("k", 1)
        await trio.testing.wait_all_tasks_blocked()  # 1 is in flight, the mailbox is empty
        actors.try_tell("k", 2)
        actors.try_tell("k", 3)
        with pytest.raises(MailboxFull):
            actors.try_tell("k", 4)
        labels = {"actor_kind": "slow"}
        assert registry.get_sample_value("threadline_mailbox_rejected_total", labels) == 1
        assert registry.get_sample_value("threadline_mailbox_depth", labels) == 2
        gate.set()


async def test_tell_waits_while_the_mailbox_is_full() -> None:
    gate = trio.Event()
    handled: list[int] = []

    class Gated(Actor[int, None]):
        async def handle(self, message: int) -> None:
            await gate.wait()
            handled.append(message)

    system: KeyedActors[int, None] = KeyedActors(lambda ctx: Gated(), mailbox_capacity=1)
    async with open_keyed_actors(system) as actors, trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(actors.tell, "k", i)
            await trio.testing.wait_all_tasks_blocked()
        # 0 in flight, 1 buffered, 2 and 3 wait in tell (backpressure, nothing refused)
        assert actors.statistics().queued_messages == 3
        gate.set()
    assert handled == [0, 1, 2, 3]


async def test_idle_actors_are_passivated_by_the_sweeper(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec: Recorder[int] = Recorder()
    registry = CollectorRegistry()
    system: KeyedActors[int, int] = KeyedActors(
        rec.factory(), idle_timeout=10.0, metrics=RuntimeMetrics(registry), name="t"
    )
    async with open_keyed_actors(system) as actors:
        await actors.tell("a", 1)
        await trio.sleep(5)
        await actors.tell("b", 1)
        await trio.sleep(6)  # a: idle 11 s, b: idle 6 s
        await trio.testing.wait_all_tasks_blocked()
        assert ("stop", "a") in rec.events
        assert ("stop", "b") not in rec.events
        assert actors.statistics().live_actors == 1
        await trio.sleep(10)
        assert actors.statistics().live_actors == 0
        assert (
            registry.get_sample_value("threadline_actor_passivations_total", {"actor_kind": "t"})
            == 2
        )
        # A passivated key comes back on its next message, with a fresh incarnation.
        await actors.tell("a", 2)
        await trio.testing.wait_all_tasks_blocked()
    assert rec.handled["a"] == [1, 2]
    assert rec.events.count(("start", "a")) == 2


async def test_message_racing_passivation_is_neither_lost_nor_reordered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A message sent while the old incarnation is still stopping waits for it to finish."""
    order: list[str] = []
    stopping = trio.Event()
    release = trio.Event()

    class SlowStop(Actor[int, None]):
        def __init__(self, key: str) -> None:
            self.key = key

        async def on_start(self) -> None:
            order.append("start")

        async def handle(self, message: int) -> None:
            order.append(f"handle {message}")

        async def on_stop(self) -> None:
            order.append("stop begins")
            stopping.set()
            await release.wait()
            order.append("stop ends")

    system: KeyedActors[int, None] = KeyedActors(lambda ctx: SlowStop(ctx.key), idle_timeout=1.0)
    async with open_keyed_actors(system) as actors:
        await actors.tell("k", 1)
        await stopping.wait()  # passivation is under way, on_stop is blocked
        await actors.tell("k", 2)
        await actors.tell("k", 3)
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["start", "handle 1", "stop begins"]
        release.set()
        await trio.testing.wait_all_tasks_blocked()
    assert order[:7] == [
        "start",
        "handle 1",
        "stop begins",
        "stop ends",
        "start",
        "handle 2",
        "handle 3",
    ]


async def test_a_message_handed_over_at_the_sweep_instant_keeps_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The sweep runs after a message reached the waiting actor but before the actor ran:
    the sweeper must skip that actor, not close its mailbox under the message."""
    rec: Recorder[int] = Recorder()
    system: KeyedActors[int, int] = KeyedActors(rec.factory(), idle_timeout=4.0)
    async with open_keyed_actors(system) as actors:
        await actors.tell("k", 1)
        await trio.testing.wait_all_tasks_blocked()
        actors.try_tell("k", 2)  # handed to the waiting actor; it has not run yet
        # Force a sweep in the same instant, with every actor counted as expired.
        assert system._sweep_once(trio.current_time() + 100) == 0
        await actors.tell("k", 3)
        await trio.testing.wait_all_tasks_blocked()
        assert system._sweep_once(trio.current_time() + 100) == 1  # now it is really idle
        await actors.tell("k", 4)
        await trio.testing.wait_all_tasks_blocked()
    assert rec.handled["k"] == [1, 2, 3, 4]
    assert rec.events.count(("start", "k")) == 2


async def test_timers_deliver_to_the_actor_and_die_with_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[float, str]] = []

    class Ticker(Actor[str, None]):
        def __init__(self, ctx: ActorContext[str]) -> None:
            self.ctx = ctx

        async def handle(self, message: str) -> None:
            seen.append((trio.current_time(), message))
            if message == "go":
                self.ctx.send_after(5.0, "later")
                self.ctx.send_every(2.0, "tick")
            if message == "boom":
                raise RuntimeError("crash: timers must die with this incarnation")

    system: KeyedActors[str, None] = KeyedActors(Ticker, idle_timeout=1.0)
    async with open_keyed_actors(system) as actors:
        start = trio.current_time()
        await actors.tell("k", "go")
        await trio.sleep(6.5)
        # Pending timers keep the actor from being passivated despite idle_timeout=1.
        assert actors.statistics().live_actors == 1
        await actors.tell("k", "boom")
        await trio.sleep(10)
        got = [(round(t - start, 3), m) for t, m in seen]
    assert got == [
        (0.0, "go"),
        (2.0, "tick"),
        (4.0, "tick"),
        (5.0, "later"),
        (6.0, "tick"),
        (6.5, "boom"),
        (6.5, "boom"),  # redelivered to the restarted incarnation (crash -> restart)
        (6.5, "boom"),
        (6.5, "boom"),
    ]


async def test_tell_after_shutdown_raises_actor_stopped() -> None:
    rec: Recorder[int] = Recorder()
    system: KeyedActors[int, int] = KeyedActors(rec.factory())
    async with open_keyed_actors(system) as actors:
        await actors.tell("a", 1)
    with pytest.raises(ActorStopped):
        await system.tell("a", 2)
    with pytest.raises(ActorStopped):
        system.try_tell("a", 2)
    with pytest.raises(ActorStopped):
        await system.ask("a", 2)


async def test_metrics_count_messages_and_latency() -> None:
    registry = CollectorRegistry()
    rec: Recorder[int] = Recorder()
    system: KeyedActors[int, int] = KeyedActors(
        rec.factory(), name="thread", metrics=RuntimeMetrics(registry)
    )
    async with open_keyed_actors(system) as actors:
        for i in range(10):
            await actors.tell(str(i % 3), i)
        await trio.testing.wait_all_tasks_blocked()
        labels = {"actor_kind": "thread"}
        assert registry.get_sample_value("threadline_actors_live", labels) == 3
        assert registry.get_sample_value("threadline_actor_activations_total", labels) == 3
        assert (
            registry.get_sample_value(
                "threadline_actor_messages_total", {"actor_kind": "thread", "outcome": "ok"}
            )
            == 10
        )
        assert (
            registry.get_sample_value("threadline_actor_message_duration_seconds_count", labels)
            == 10
        )
        assert registry.get_sample_value("threadline_mailbox_depth", labels) == 0


async def test_the_cap_passivates_the_least_recently_idle_actor_or_refuses() -> None:
    gate = trio.Event()
    handled: list[tuple[str, int]] = []

    class Gated(Actor[int, None]):
        def __init__(self, key: str) -> None:
            self.key = key

        async def handle(self, message: int) -> None:
            if message < 0:
                await gate.wait()
            handled.append((self.key, message))

    system: KeyedActors[int, None] = KeyedActors(lambda ctx: Gated(ctx.key), max_live=2)
    async with open_keyed_actors(system) as actors:
        actors.try_tell("a", 1)
        await trio.testing.wait_all_tasks_blocked()
        actors.try_tell("b", 1)  # told after "a" went idle (Trio's scheduling order varies)
        await trio.testing.wait_all_tasks_blocked()  # both idle, "a" the longer
        actors.try_tell("c", -1)  # passivates "a", the least recently idle
        await trio.testing.wait_all_tasks_blocked()
        assert not actors.live("a")
        assert actors.live("b")
        assert actors.live("c")
        actors.try_tell("a", -1)  # passivates "b"
        await trio.testing.wait_all_tasks_blocked()
        assert actors.statistics().live_actors == 2
        assert not actors.has_room()
        with pytest.raises(AtCapacity):
            actors.try_tell("d", 1)  # both busy: refused, nothing enqueued
        actors.try_tell("c", 2)  # a key with an actor is not capped
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert actors.has_room()
        actors.try_tell("d", 1)
        await trio.testing.wait_all_tasks_blocked()
    assert sorted(handled) == sorted([("a", 1), ("b", 1), ("c", -1), ("c", 2), ("a", -1), ("d", 1)])
    assert [m for k, m in handled if k == "c"] == [-1, 2]
