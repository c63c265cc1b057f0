"""Recorded steps: each external effect of an outbound entry happens at most once.

An outbound entry (a teammate's reply, a message from the send API) makes several effects: a
text sent to the customer, each attachment sent, an internal note or an admin reply written in
Intercom. Each is a named *step*, and the journal keeps their states under ``steps:<entry id>``
until the entry is done::

    (none) ──commit "started"──► call ──► "done" │ "failed: <why>"
                                   ├─ 429 / 5xx / transport ─► retryable in this incarnation
                                   └─ no answer in time ─► stays "started": in doubt

A retry of the entry (after a later step failed) skips what is done. A step found "started"
by a *new* incarnation (the process died, or the partition moved, between the call and its
recorded outcome) is in doubt: a step that can be looked up (an Intercom part) is looked for
and done again only when absent; one that cannot (a provider send: no provider offers a lookup)
is not repeated, and the caller leaves a note that it may not have arrived. A send whose
answer did not come in time (the provider may have acted on it) is left "started" the same way,
so the entry's next attempt finds it in doubt. States are held in
memory between commits; the "started" of each step carries the outcomes before it, and the
entry's completion deletes the record.
"""

from __future__ import annotations

import contextlib
import enum
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runtime import Journal, JournalUnavailable

__all__ = ["Outcome", "StepResult", "Steps", "steps_key"]

_STARTED, _DONE, _DOUBT, _FAILED, _MEMO = "started", "done", "doubt", "failed: ", "memo: "


def steps_key(entry_id: int) -> str:
    """The journal state key of an entry's recorded steps."""
    return f"steps:{entry_id}"


class Outcome(enum.Enum):
    DONE = "done"
    """Done now, or found done (recorded, or looked up)."""
    FAILED = "failed"
    """Refused for good; ``reason`` says why."""
    IN_DOUBT = "in doubt"
    """Started by an earlier incarnation with its outcome lost, and not repeated."""


@dataclass(frozen=True, slots=True)
class StepResult:
    outcome: Outcome
    reason: str | None = None


class Steps:
    """The recorded steps of one journal entry."""

    def __init__(self, journal: Journal, entry_id: int, recorded: dict[str, str]) -> None:
        self._journal = journal
        self.entry_id = entry_id
        self.key = steps_key(entry_id)
        self._states = recorded
        self._retryable: set[str] = set()
        self.in_doubt: list[str] = []
        """Steps found in doubt (not repeated) while delivering this entry."""

    @classmethod
    async def load(cls, journal: Journal, entry_id: int) -> Steps:
        raw = await journal.get_state(steps_key(entry_id))
        recorded = json.loads(raw) if raw is not None else {}
        return cls(journal, entry_id, recorded if isinstance(recorded, dict) else {})

    def memo(self, name: str) -> str | None:
        """A value the entry fixed on an earlier attempt (see :meth:`set_memo`), or None."""
        return _memo_of(self._states.get(name))

    def set_memo(self, name: str, value: str) -> None:
        """Fix a value for the entry's later attempts (e.g. the signature a reply is sent
        with, so that a retry splits and captions it as the first attempt did). Kept with the
        next step's record: until a step starts nothing was sent, so nothing depends on it."""
        self._states[name] = _MEMO + value

    def touched(self, prefix: str) -> bool:
        """Whether any step named with ``prefix`` has started, in this or an earlier attempt."""
        return any(
            name.startswith(prefix) and not state.startswith(_MEMO)
            for name, state in self._states.items()
        )

    async def run(
        self,
        name: str,
        effect: Callable[[], Awaitable[str | None]],
        *,
        retryable: tuple[type[Exception], ...],
        doubtful: tuple[type[Exception], ...] = (),
        lookup: Callable[[float], Awaitable[bool]] | None = None,
    ) -> StepResult:
        """Run ``effect`` (which returns why it failed for good, or None) unless the step is
        done or in doubt. ``retryable`` errors mean the effect did not happen: the step is
        recorded as not started again and may run again. ``doubtful`` errors (checked first)
        mean it may have happened: the step stays started, so the entry's next attempt finds
        it in doubt, as after a crash. ``lookup(started_at)`` tells whether an effect in doubt,
        started at that UNIX time, happened."""
        state = self._states.get(name, self._states.get(_legacy_name(name) or name))
        if state == _DONE:
            return StepResult(Outcome.DONE)
        if state is not None and state.startswith(_FAILED):
            return StepResult(Outcome.FAILED, state.removeprefix(_FAILED))
        if state == _DOUBT:
            if name not in self.in_doubt:  # found so by an earlier incarnation
                self.in_doubt.append(name)
            return StepResult(Outcome.IN_DOUBT)
        if state is not None and state.startswith(_STARTED) and name not in self._retryable:
            if lookup is None:
                self._states[name] = _DOUBT
                self.in_doubt.append(name)
                return StepResult(Outcome.IN_DOUBT)
            if await lookup(_started_at(state)):
                self._states[name] = _DONE
                return StepResult(Outcome.DONE)
        # Recorded before the call; in memory only once the record is durable, so a failed
        # write leaves the step not started (a retry then runs it, rather than doubting it).
        started = {**self._states, name: f"{_STARTED}@{time.time():.3f}"}
        await self._journal.put_state({self.key: json.dumps(started).encode()})
        self._states = started
        # This run's outcome alone decides now: an earlier retryable failure of the step must
        # not make a later attempt take a send cut off in doubt for one that never happened.
        self._retryable.discard(name)
        try:
            failure = await effect()
        except doubtful:
            raise
        except retryable:
            # It did not happen: say so durably too, so that a restart sends it rather than
            # doubting it (best effort: in this incarnation the set below is enough).
            self._retryable.add(name)
            self._states.pop(name, None)
            with contextlib.suppress(JournalUnavailable):
                await self._journal.put_state({self.key: json.dumps(self._states).encode()})
            raise
        if failure is not None:
            self._states[name] = _FAILED + failure
            return StepResult(Outcome.FAILED, failure)
        self._states[name] = _DONE
        return StepResult(Outcome.DONE)


def _legacy_name(name: str) -> str | None:
    """The step an older version recorded for ``name``: before texts were split, the whole
    text was one step, ``{prefix}text``, which now stands for every ``{prefix}text:{i}``."""
    stem, colon, index = name.rpartition(":")
    if colon and index.isdecimal() and (stem == "text" or stem.endswith(":text")):
        return stem
    return None


def _memo_of(state: str | None) -> str | None:
    return state.removeprefix(_MEMO) if state is not None and state.startswith(_MEMO) else None


def _started_at(state: str) -> float:
    """When a recorded step started (0 for a record without a time)."""
    _, _, when = state.partition("@")
    try:
        return float(when)
    except ValueError:
        return 0.0
