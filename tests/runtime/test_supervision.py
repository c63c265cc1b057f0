"""Restarts, retries, parking, escalation and shutdown (all on trio's autojump clock)."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from runtime import (
    Actor,
    ActorContext,
    ActorStopped,
    ChildSpec,
    Decision,
    KeyedActors,
    RestartIntensity,
    RestartLimitExceeded,
    RetryPolicy,
    RuntimeMetrics,
    Supervisor,
    open_keyed_actors,
)
from runtime.testing import Recorder


class Boom(Exception):
    pass


class Transient(Exception):
    pass


def fail_on(*poison: int) -> object:
    def fail(key: str, message: int) -> Exception | None:
        return Boom(f"poison {message}") if message in poison else None

    return fail


async def test_a_crash_restarts_the_actor_and_redelivers_the_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec: Recorder[int] = Recorder()
    crashes = {"left": 2}

    def flaky(key: str, message: int) -> Exception | None:
        if message == 2 and crashes["left"]:
            crashes["left"] -= 1
            return Boom("flaky")
        return None

    registry = CollectorRegistry()
    system: KeyedActors[int, int] = KeyedActors(
        rec.factory(flaky), name="t", metrics=RuntimeMetrics(registry)
    )
    async with open_keyed_actors(system) as actors:
        for i in range(1, 5):
            await actors.tell("k", i)
        await trio.testing.wait_all_tasks_blocked()
    assert rec.handled["k"] == [1, 2, 3, 4]
    assert rec.events.count(("start", "k")) == 3  # the first start and two restarts
    assert (
        registry.get_sample_value("threadline_supervisor_restarts_total", {"actor_kind": "t"}) == 2
    )
    crash = {"actor_kind": "t", "outcome": "crash"}
    assert registry.get_sample_value("threadline_actor_messages_total", crash) == 2


async def test_exhausted_restart_budget_parks_the_key_and_gives_up_the_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec: Recorder[int] = Recorder()
    given_up: list[tuple[str, int, str]] = []

    async def on_give_up(key: str, message: object, exc: Exception, reason: str) -> None:
        assert isinstance(message, int)
        given_up.append((key, message, reason))

    registry = CollectorRegistry()
    system: KeyedActors[int, int] = KeyedActors(
        rec.factory(fail_on(2)),  # type: ignore[arg-type]
        name="t",
        restart=RestartIntensity(max_restarts=2, period=60.0),
        on_give_up=on_give_up,
        metrics=RuntimeMetrics(registry),
    )
    async with open_keyed_actors(system) as actors:
        for i in range(1, 5):
            await actors.tell("poisoned", i)
        await actors.tell("healthy", 1)
        await trio.testing.wait_all_tasks_blocked()
        assert actors.parked() == ["poisoned"]
        assert given_up == [("poisoned", 2, "restart budget exhausted (2 restarts in 60s)")]
        assert registry.get_sample_value("threadline_actors_parked", {"actor_kind": "t"}) == 1
        assert rec.handled == {"poisoned": [1], "healthy": [1]}  # 3 and 4 wait, not dropped
        assert actors.statistics().queued_messages == 2
        assert actors.resume("poisoned")
        await trio.testing.wait_all_tasks_blocked()
        assert actors.parked() == []
    assert rec.handled["poisoned"] == [1, 3, 4]


async def test_parked_keys_resume_by_themselves_after_the_cool_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec: Recorder[int] = Recorder()
    system: KeyedActors[int, int] = KeyedActors(
        rec.factory(fail_on(1)),  # type: ignore[arg-type]
        restart=RestartIntensity(max_restarts=1, period=60.0),
        resume_parked_after=30.0,
    )
    async with open_keyed_actors(system) as actors:
        await actors.tell("k", 1)
        await actors.tell("k", 2)
        await trio.testing.wait_all_tasks_blocked()
        assert actors.parked() == ["k"]
        parked_at = trio.current_time()
        await trio.sleep(29.9)
        assert actors.parked() == ["k"]
        await trio.sleep(0.2)
        assert actors.parked() == []
        assert trio.current_time() - parked_at >= 30.0
        await trio.testing.wait_all_tasks_blocked()
    assert rec.handled["k"] == [2]
    assert [m for _, m, _ in system.given_up] == [1]


async def test_system_wide_restart_budget_escalates_to_the_parent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec: Recorder[int] = Recorder()
    system: KeyedActors[int, int] = KeyedActors(
        rec.factory(fail_on(0)),  # type: ignore[arg-type]
        restart=RestartIntensity(max_restarts=100, period=60.0),
        escalate=RestartIntensity(max_restarts=5, period=10.0),
    )
    expected = pytest.RaisesExc(RestartLimitExceeded, check=lambda e: isinstance(e.__cause__, Boom))
    refused: list[str] = []

    async def send_all() -> None:
        for key in "abcdefgh":
            try:
                await system.tell(key, 0)
            except ActorStopped:
                refused.append(key)  # the system stopped taking messages when it escalated

    with pytest.RaisesGroup(expected):
        async with trio.open_nursery() as nursery:
            await nursery.start(system.run)
            nursery.start_soon(send_all)
            await trio.sleep_forever()
    assert refused
    assert not system.statistics().accepting


async def test_classifier_retries_with_backoff_then_discards(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []
    policy = RetryPolicy(max_attempts=4, base=1.0, cap=8.0)

    class AlwaysTransient(Actor[str, None]):
        async def handle(self, message: str) -> None:
            attempts.append(trio.current_time())
            if message == "bad":
                raise Transient("try later")

    def classify(exc: Exception, attempt: int) -> Decision:
        if isinstance(exc, Transient):
            return policy.decide(attempt, retry_after=2.0)
        return Decision.crash()

    registry = CollectorRegistry()
    system: KeyedActors[str, None] = KeyedActors(
        lambda ctx: AlwaysTransient(),
        name="t",
        classify=classify,
        metrics=RuntimeMetrics(registry),
    )
    async with open_keyed_actors(system) as actors:
        start = trio.current_time()
        with pytest.raises(Transient):
            await actors.ask("k", "bad")
        await actors.ask("k", "good")
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(attempts) == 5  # 4 tries of "bad" (3 retries) and then "good"
    assert all(2.0 <= gap <= 3.0 for gap in gaps[:3])  # Retry-After 2 s plus <= base jitter
    assert attempts[0] == start
    assert [k for k, _, _ in system.given_up] == ["k"]
    assert registry.get_sample_value("threadline_retry_attempts_total", {"actor_kind": "t"}) == 3
    discard = {"actor_kind": "t", "outcome": "discard"}
    assert registry.get_sample_value("threadline_actor_messages_total", discard) == 1


async def test_shutdown_drains_within_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[int] = []

    class Slow(Actor[int, None]):
        async def handle(self, message: int) -> None:
            await trio.sleep(1.0)
            handled.append(message)

    system: KeyedActors[int, None] = KeyedActors(lambda ctx: Slow())
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        for i in range(5):
            await system.tell("k", i)
        report = await system.shutdown(deadline=10.0)
    assert handled == [0, 1, 2, 3, 4]
    assert report.drained
    assert report.abandoned_messages == 0


async def test_shutdown_with_work_in_flight_fails_pending_asks_and_accounts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Slow(Actor[int, int]):
        async def handle(self, message: int) -> int:
            await trio.sleep(10.0)
            return message

    system: KeyedActors[int, int] = KeyedActors(lambda ctx: Slow())
    outcomes: list[str] = []

    async def asker(key: str, message: int) -> None:
        try:
            await system.ask(key, message)
            outcomes.append("answered")
        except ActorStopped:
            outcomes.append("stopped")

    async with trio.open_nursery() as outer:
        await outer.start(system.run)
        for key in ("a", "b"):
            for i in range(3):
                outer.start_soon(asker, key, i)
        await trio.testing.wait_all_tasks_blocked()
        report = await system.shutdown(deadline=15.0)
    # In 15 s each key finishes one message (10 s) and is cancelled in its second.
    assert sorted(outcomes) == ["answered"] * 2 + ["stopped"] * 4
    assert not report.drained
    assert report.abandoned_messages == 4
    assert report.abandoned_keys == 2


async def test_supervisor_restarts_only_the_failed_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[str] = []
    failures = {"left": 2}

    async def steady(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        starts.append("steady")
        task_status.started("steady ready")
        await trio.sleep_forever()

    async def flaky(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        starts.append("flaky")
        task_status.started("flaky ready")
        await trio.sleep(1.0)
        if failures["left"]:
            failures["left"] -= 1
            raise Boom("flaky child")
        await trio.sleep_forever()

    registry = CollectorRegistry()
    supervisor = Supervisor(
        "root",
        [ChildSpec("steady", steady), ChildSpec("flaky", flaky)],
        intensity=RestartIntensity(3, 10.0),
        metrics=RuntimeMetrics(registry),
    )
    with trio.move_on_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            assert supervisor.ready == {"steady": "steady ready", "flaky": "flaky ready"}
            await trio.sleep_forever()
    assert starts == ["steady", "flaky", "flaky", "flaky"]
    assert (
        registry.get_sample_value("threadline_supervisor_restarts_total", {"actor_kind": "flaky"})
        == 2
    )


async def test_supervisor_escalates_when_the_budget_is_spent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def crashing(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(0.5)
        raise Boom("always")

    supervisor = Supervisor(
        "root", [ChildSpec("crashing", crashing)], intensity=RestartIntensity(3, 10.0)
    )
    with pytest.raises(RestartLimitExceeded) as info:
        await supervisor.run()
    assert isinstance(info.value.__cause__, Boom)
    assert trio.current_time() == pytest.approx(2.0)  # the 4th failure in 10 s, at t=4*0.5


async def test_a_key_whose_actor_cannot_start_gives_up_its_head_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A crash in the factory (no message taken yet) still dead-letters something: the message
    whose delivery keeps activating the broken actor; the key's other messages wait."""
    attempts: list[str] = []

    def broken(ctx: ActorContext[int]) -> Actor[int, None]:
        attempts.append(ctx.key)
        raise Boom("cannot build this actor")

    system: KeyedActors[int, None] = KeyedActors(
        broken, restart=RestartIntensity(max_restarts=2, period=60.0)
    )
    async with open_keyed_actors(system) as actors:
        await actors.tell("bad", 1)
        await actors.tell("bad", 2)
        await trio.testing.wait_all_tasks_blocked()
        assert actors.parked() == ["bad"]
        assert [(k, m) for k, m, _ in system.given_up] == [("bad", 1)]
        assert actors.statistics().queued_messages == 1
    assert attempts == ["bad"] * 3
