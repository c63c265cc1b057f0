"""The delivery machine: one thread's journal entries, from the dispatcher to their commit.

It owns an entry's life the way a job runner's executor does, while the business handler
(:class:`Business`, the thread actor) only does the work::

    entry ─► claim (one call into ownership) ─► moved: release │ pending: wait
          ─► dedupe (done already, in doubt, only its commit failed)
          ─► tenure changed? restore the business state from the journal
          ─► perform(entry, work) under the lease's guard ─► cut off: in doubt, wait
          ─► commit (fenced) with the state and the work's writes ─► fence lost: release
          ─► finished

Failures of ``perform`` propagate to the runtime's classifier (:mod:`._classify`), which
decides whether the entry is retried, waited for or given up; the retries come back here, and
what the earlier attempts achieved (recorded steps, writes, the business's own memory) carries
over.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from runtime import Entry, Fence, Journal

from ..core import log_fields
from ._doubt import InDoubt
from ._ownership import Ownership, Verdict
from ._steps import Steps

__all__ = [
    "Business",
    "DeliveryInDoubt",
    "DeliveryMachine",
    "Done",
    "OwnershipUncertain",
    "Plumbing",
    "Work",
]

logger = logging.getLogger("threadline.thread")


class OwnershipUncertain(Exception):
    """The partition's lease must be renewed before its entries may be delivered: wait."""


class DeliveryInDoubt(InDoubt):
    """A delivery was cut off when the lease's validity ran out; what it sent may still land.
    Wait ``seconds`` (the same margin a next owner gets) before looking for it and retrying."""

    wait_reason = "delivery in doubt"

    def __init__(self, entry_id: int, seconds: float) -> None:
        super().__init__(f"entry {entry_id}, cut off mid-delivery,", seconds)


@dataclass(frozen=True, slots=True)
class Done:
    """How an entry ended, for the metrics: ``direction`` (inbound, outbound, api, status) and
    ``outcome`` (delivered, skipped)."""

    direction: str
    outcome: str


class Completions(Protocol):
    """Who is told that an entry is no longer in flight here (the dispatcher)."""

    def finished(self, entry_id: int) -> None: ...


class Plumbing:
    """What every thread's delivery machine shares: the journal, ownership, and whom to tell
    when an entry is finished.

    Args:
        observe: told ``(entry, direction, outcome)`` of every entry finished here (metrics).
    """

    def __init__(
        self,
        journal: Journal,
        ownership: Ownership,
        *,
        observe: Callable[[Entry, str, str], None] = lambda entry, direction, outcome: None,
    ) -> None:
        self.journal = journal
        self.ownership = ownership
        self._observe = observe
        self._completions: Completions | None = None

    def report_to(self, completions: Completions) -> None:
        """Tell ``completions`` (the dispatcher, made after the actors it feeds) of every entry
        finished, released or buried from now on."""
        self._completions = completions

    def finished(self, entry: Entry, direction: str, outcome: str) -> None:
        """The entry was committed here."""
        self.released(entry)
        self._observe(entry, direction, outcome)

    def released(self, entry: Entry) -> None:
        """The entry is no longer in flight here (finished, buried, or left to another node)."""
        if self._completions is not None:
            self._completions.finished(entry.id)

    async def bury(self, entry: Entry, error: str) -> bool:
        """Give the entry up to the dead letters, under its partition's fence. False when the
        partition moved: the entry is its new owner's now."""
        fence = self.ownership.fence(entry.partition)
        buried = await self.journal.bury(entry.id, error, fence=fence)
        self.released(entry)
        return buried


class Work:
    """One entry's delivery as the business handler sees it: its recorded steps, the state
    written with its commit, and whether it may already have reached the outside world."""

    def __init__(self, machine: DeliveryMachine, entry: Entry, since: float) -> None:
        self._machine = machine
        self.entry = entry
        self.since = since
        """UNIX time this node began owning the entry's partition: an entry older than that may
        have been delivered by a previous owner (or this process before a crash)."""

    @property
    def writes(self) -> dict[str, bytes | None]:
        """Journal state committed with the entry (None deletes); kept across its retries."""
        return self._machine._writes

    @property
    def doubted(self) -> bool:
        """Whether an earlier attempt of the entry may have reached the outside world."""
        return self.entry.id in self._machine._in_doubt

    def doubt(self, settle: float) -> None:
        """What this attempt did may have happened: the entry's next attempt waits ``settle``
        seconds (unless already waiting) and looks before doing it again."""
        self._machine._in_doubt.setdefault(self.entry.id, trio.current_time() + settle)

    async def steps(self) -> Steps:
        """The entry's recorded steps (loaded once per incarnation, deleted at completion)."""
        return await self._machine._steps_of(self.entry)

    async def save_early(self) -> None:
        """Commit the business state and the writes so far, before the entry is done."""
        await self._machine.save_early()


class Business(Protocol):
    """The business side of a thread, as its delivery machine drives it."""

    def restore(self, raw: bytes | None) -> None:
        """Take the thread's state as the journal has it (first entry, or a new tenure)."""

    def snapshot(self) -> bytes:
        """The thread's state, committed with each entry."""

    async def perform(self, entry: Entry, work: Work) -> Done:
        """Do what the entry asks (raises for the classifier to decide)."""


class DeliveryMachine:
    """Delivers one thread's entries, in order, around its :class:`Business` handler."""

    def __init__(self, key: str, state_key: str, business: Business, plumbing: Plumbing) -> None:
        self._key = key
        self._state_key = state_key
        self._business = business
        self._p = plumbing
        self._recent: deque[int] = deque(maxlen=64)
        self._tenure: int | None = -1  # the partition tenure the state was loaded under
        self._uncommitted: tuple[int, Done] | None = None
        self._writes: dict[str, bytes | None] = {}
        self._writes_for: int | None = None  # the entry _writes belong to
        self._in_doubt: dict[int, float] = {}  # entry id -> when (Trio clock) it has settled
        self._steps: Steps | None = None  # the recorded steps of the entry at hand

    async def deliver(self, entry: Entry) -> None:
        """Deliver ``entry``; raises what the classifier decides about."""
        tenure = self._p.ownership.claim(entry.partition)
        if tenure.verdict is not Verdict.OWNED:
            if tenure.verdict is Verdict.PENDING:
                # Our lease awaits its renewal: wait for the verdict rather than skip this
                # entry (a later one of the thread could then overtake it).
                raise OwnershipUncertain(entry.partition)
            self._p.released(entry)  # the partition moved: its new owner delivers this entry
            return
        if entry.id in self._recent:
            return  # delivered twice (a rescan raced a completion): already done
        settled = self._in_doubt.get(entry.id)
        if settled is not None and trio.current_time() < settled:
            raise DeliveryInDoubt(entry.id, settled - trio.current_time())
        if self._uncommitted is not None and self._uncommitted[0] == entry.id:
            # Delivered already; only the journal commit failed. Retry just the commit.
            await self._complete(entry, self._uncommitted[1], tenure.fence)
            return
        if tenure.epoch != self._tenure:  # first entry, or the partition came back from elsewhere
            self._business.restore(await self._p.journal.get_state(self._state_key))
            self._tenure = tenure.epoch
            self._steps = None  # recorded steps may have moved on elsewhere: read them again
        if self._writes_for != entry.id:  # kept across retries of one entry: all of it commits
            self._writes, self._writes_for = {}, entry.id
        with tenure.guard() as guard:
            done = await self._business.perform(entry, Work(self, entry, tenure.since))
        if guard.cancelled_caught:
            # The lease's validity ran out mid-delivery (renewals starved or failing). What was
            # sent may still land: whoever delivers this entry next must look for it first, and
            # only once it had time to land (a next owner gets that margin from the lease).
            margin = tenure.margin
            self._in_doubt[entry.id] = trio.current_time() + margin
            logger.warning(
                "entry %d of partition %d: delivery cut off as the lease's validity ran out;"
                " checking for it again in %.1f s", entry.id, entry.partition, margin,
                extra=log_fields(key=self._key, entry_id=entry.id),
            )  # fmt: skip
            raise DeliveryInDoubt(entry.id, margin)
        self._in_doubt.pop(entry.id, None)
        self._uncommitted = (entry.id, done)
        await self._complete(entry, done, tenure.fence)

    async def _complete(self, entry: Entry, done: Done, fence: Fence | None) -> None:
        """Mark the entry done with the thread's state, under the partition's fence."""
        state: dict[str, bytes | None] = {self._state_key: self._business.snapshot()}
        state.update(self._writes)
        committed = await self._p.journal.complete(entry.id, state=state, fence=fence)
        self._uncommitted = None
        self._writes = {}
        if not committed:
            # Another node took the partition over while we worked: it owns the entry now.
            logger.warning(
                "entry %d: partition %d moved; left to its new owner", entry.id, entry.partition,
                extra=log_fields(key=self._key, entry_id=entry.id),
            )  # fmt: skip
            self._tenure = -1  # our state may be stale: reload it if the partition comes back
            self._steps = None
            self._p.released(entry)
            return
        self._recent.append(entry.id)
        self._p.finished(entry, done.direction, done.outcome)

    async def _steps_of(self, entry: Entry) -> Steps:
        if self._steps is None or self._steps.entry_id != entry.id:
            self._steps = await Steps.load(self._p.journal, entry.id)
        self._writes[self._steps.key] = None
        return self._steps

    async def save_early(self) -> None:
        state = {self._state_key: self._business.snapshot(), **self._writes}
        await self._p.journal.put_state(state)
