"""Property: per-key order survives random interleavings, failures, restarts and passivation."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from runtime import (
    Actor,
    ActorContext,
    Decision,
    KeyedActors,
    RestartIntensity,
    open_keyed_actors,
)


class Transient(Exception):
    pass


class Crash(Exception):
    pass


@dataclass
class Scenario:
    sends: list[tuple[str, int, float]]  # (key, seq, pause before sending)
    failures: dict[tuple[str, int], list[str]]  # per message, what its attempts raise
    attempts: dict[str, list[int]] = field(default_factory=dict)
    succeeded: dict[str, list[int]] = field(default_factory=dict)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n_keys = draw(st.integers(1, 12))
    keys = draw(st.lists(st.integers(0, n_keys - 1), min_size=1, max_size=150))
    seqs: dict[str, int] = {}
    sends: list[tuple[str, int, float]] = []
    failures: dict[tuple[str, int], list[str]] = {}
    for k in keys:
        key = f"key-{k}"
        seq = seqs.get(key, 0)
        seqs[key] = seq + 1
        pause = draw(st.sampled_from([0.0, 0.0, 0.0, 0.3, 2.5]))  # 2.5 s > idle timeout
        sends.append((key, seq, pause))
        plan = draw(st.lists(st.sampled_from(["retry", "crash"]), max_size=3))
        if plan:
            failures[(key, seq)] = plan
    return Scenario(sends, failures)


class Flaky(Actor[int, None]):
    def __init__(self, ctx: ActorContext[int], scenario: Scenario) -> None:
        self.key = ctx.key
        self.scenario = scenario

    async def handle(self, message: int) -> None:
        self.scenario.attempts.setdefault(self.key, []).append(message)
        await trio.sleep(0.01)
        plan = self.scenario.failures.get((self.key, message))
        if plan:
            kind = plan.pop(0)
            raise Transient() if kind == "retry" else Crash()
        self.scenario.succeeded.setdefault(self.key, []).append(message)


def classify(exc: Exception, attempt: int) -> Decision:
    if isinstance(exc, Transient):
        return Decision.retry(0.05 * attempt)
    return Decision.crash()


async def play(scenario: Scenario) -> None:
    system: KeyedActors[int, None] = KeyedActors(
        lambda ctx: Flaky(ctx, scenario),
        mailbox_capacity=4,
        idle_timeout=1.0,
        classify=classify,
        restart=RestartIntensity(max_restarts=1000, period=1.0),
        escalate=None,
    )
    async with open_keyed_actors(system, shutdown_deadline=1e6) as actors:
        for key, seq, pause in scenario.sends:
            if pause:
                await trio.sleep(pause)
            await actors.tell(key, seq)


@given(scenarios())
def test_every_key_is_handled_in_send_order_with_nothing_lost(scenario: Scenario) -> None:
    trio.run(play, scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    expected: dict[str, list[int]] = {}
    for key, seq, _ in scenario.sends:
        expected.setdefault(key, []).append(seq)
    # Nothing lost, nothing doubled, in send order.
    assert scenario.succeeded == expected
    # A message is never handled again after a later message of its key succeeded:
    # the attempt log per key never goes backwards.
    for key, tried in scenario.attempts.items():
        assert tried == sorted(tried), key
