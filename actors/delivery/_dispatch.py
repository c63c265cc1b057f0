"""The dispatcher: feeds pending journal entries to the thread actors, in journal order.

::

    ingress ── append+commit ──► journal ◄── read_pending(after cursor) ── dispatcher
                  │ wake()                                                   │ try_tell(key, entry)
                  └──────────────────────────────────────────────────────────►  thread actors

Per key, entries reach the actor in id order. A full mailbox never blocks other keys: that key is
*held* at its first undelivered entry, the main walk skips it, and it is topped up from the
journal (``read_pending_for_key``) as its actor drains — the journal is the overflow, so memory
stays bounded and nothing is refused. Likewise for keys that cannot get an actor because
``max_live`` actors are busy (:class:`AtCapacity`), or that ``admit`` keeps out (the Intercom
budget is spent: a new actor could only wait for it): the dispatcher remembers only the id of the
first such entry, the *overflow* mark. From there on it hands entries only to keys that have an
actor, and as actors finish it walks the journal again from the mark (``_catch_up``), activating
keys in id order until the cap stops it again; so its bookkeeping for keys waiting for an actor
is one integer, however many they are, and a key's entries still go out in id order. A periodic
rescan picks up entries made pending behind the
cursor (replayed dead letters, partitions taken over from another node); entries in flight or
finished since the rescan began are never delivered twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

import trio

from runtime import (
    ActorStopped,
    AtCapacity,
    Entry,
    Journal,
    JournalUnavailable,
    KeyedActors,
    MailboxFull,
)

from ..core import LogLimiter

__all__ = ["Dispatcher"]

logger = logging.getLogger("threadline.dispatch")


class Dispatcher:
    """Reads the journal and hands entries to ``actors``.

    Args:
        journal: where entries wait.
        actors: the thread actors (keyed by the entry's key).
        owned: the partitions this node serves (None: all of them); called on every read.
        admit: whether a key without an actor may get one now, given the entries in flight
            here; called before each activation. While it says no, the key waits in the journal
            behind the overflow mark, exactly as beyond the actor cap: a thread that could only
            wait (for the Intercom budget) costs no actor. Keys with an actor are not affected.
        batch: entries read per query of the main walk.
        top_up: entries read per held key when it is topped up (about a mailbox's worth: more
            would be read again and again while the key stays full).
        poll_interval: seconds between reads when nothing woke the dispatcher.
        rescan_interval: seconds between rescans behind the cursor.
    """

    def __init__(
        self,
        journal: Journal,
        actors: KeyedActors[Entry, None],
        *,
        owned: Callable[[], Collection[int] | None] = lambda: None,
        admit: Callable[[int], bool] = lambda inflight: True,
        batch: int = 512,
        top_up: int = 64,
        poll_interval: float = 0.5,
        rescan_interval: float = 10.0,
    ) -> None:
        self._journal = journal
        self._actors = actors
        self._owned = owned
        self._admit = admit
        self._batch = batch
        self._top_up = top_up
        self._poll = poll_interval
        self._repeats = LogLimiter()  # an outage would log every poll otherwise
        self._rescan_interval = rescan_interval
        self._wakeup = trio.Event()
        self._cursor = 0
        self._generation = 0
        self._inflight: dict[int, tuple[str, int]] = {}  # entry id -> (key, partition)
        self._busy: dict[int, int] = {}  # partition -> entries in flight
        self._finished_since_scan: set[int] = set()
        self._held: dict[str, int] = {}  # key -> id of its first undelivered entry
        self._room: dict[str, int] = {}  # held key -> its entries finished since it was held
        self._skip_upto: dict[str, int] = {}  # key -> delivered beyond the cursor up to this id
        # The first entry left in the journal because its key could not get an actor (the cap):
        # from here on only keys with an actor get entries until _catch_up has walked past it.
        self._overflow: int | None = None
        self.delivered = 0
        self.running = False

    # --- called by others -------------------------------------------------------------------

    def wake(self) -> None:
        """New entries were committed: read now instead of at the next poll. Not a checkpoint."""
        self._wakeup.set()

    def finished(self, entry_id: int) -> None:
        """An entry was completed or buried: it is no longer in flight. Not a checkpoint."""
        found = self._inflight.pop(entry_id, None)
        key = None
        if found is not None:
            key, partition = found
            left = self._busy[partition] - 1
            if left:
                self._busy[partition] = left
            else:
                del self._busy[partition]
        self._finished_since_scan.add(entry_id)
        if self._overflow is not None:
            self._wakeup.set()  # an actor may be idle now: room for a waiting key
        if key is not None and key in self._held:
            self._room[key] = self._room.get(key, 0) + 1
            self._wakeup.set()  # that held key has room now

    @property
    def inflight(self) -> int:
        """Entries handed to actors and not yet finished."""
        return len(self._inflight)

    def busy(self, partition: int) -> bool:
        """Whether entries of ``partition`` are in flight here (a hand-over waits for them)."""
        return partition in self._busy

    @property
    def held_keys(self) -> int:
        """Keys whose mailbox was full at the last attempt."""
        return len(self._held)

    def reset(self) -> None:
        """Start the walk over (owned partitions changed) and read now. Not a checkpoint.

        Entries in flight, or finished since, are not delivered again."""
        self._cursor = 0
        self._generation += 1  # a read under way now answers for the old partitions: drop it
        self._held.clear()
        self._room.clear()
        self._skip_upto.clear()
        self._overflow = None
        self._finished_since_scan = set()
        self._wakeup.set()

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Dispatch until cancelled. Journal outages are waited out, not fatal."""
        self.running = True
        task_status.started()
        next_rescan = trio.current_time() + self._rescan_interval
        try:
            while True:
                self._wakeup = trio.Event()
                try:
                    progressed = await self._walk()
                    await self._top_up_held()
                    if self._overflow is not None and self._has_room():
                        await self._catch_up()
                    if trio.current_time() >= next_rescan:
                        for key in self._held:  # probe every held key now and then
                            self._room.setdefault(key, 1)
                        await self._rescan()
                        next_rescan = trio.current_time() + self._rescan_interval
                except JournalUnavailable as exc:
                    self._repeats.log(
                        logger, logging.WARNING, "journal",
                        "journal unavailable, dispatch paused: %s", exc,
                    )  # fmt: skip
                    progressed = False
                except ActorStopped:
                    return  # the actors are shutting down
                if not progressed:
                    with trio.move_on_after(self._poll):
                        await self._wakeup.wait()
        finally:
            self.running = False

    async def _walk(self) -> bool:
        """One page of entries past the cursor. True if there may be more right away."""
        generation = self._generation
        entries = await self._journal.read_pending(
            after_id=self._cursor, limit=self._batch, partitions=self._owned()
        )
        if generation != self._generation:
            return True  # ownership changed during the read: walk again from the new cursor
        finished = self._finished_since_scan
        for entry in entries:
            key = entry.key
            if key in self._held or entry.id <= self._skip_upto.get(key, 0) or entry.id in finished:
                continue
            if self._overflow is not None and not self._actors.live(key):
                continue  # behind the overflow mark: _catch_up delivers it, in order
            try:
                self._deliver(entry)
            except AtCapacity:
                self._overflow = entry.id
        if entries:
            self._cursor = entries[-1].id
            if self._skip_upto:
                self._skip_upto = {k: v for k, v in self._skip_upto.items() if v > self._cursor}
        return len(entries) == self._batch

    def _deliver(self, entry: Entry) -> bool:
        """Hand ``entry`` to its actor; False when its mailbox was full (the key is held).

        Raises:
            AtCapacity: the key has no actor and none can be activated now.
        """
        if entry.id in self._inflight:
            return True
        if not self._admit(len(self._inflight)) and not self._actors.live(entry.key):
            raise AtCapacity(len(self._inflight))
        try:
            self._actors.try_tell(entry.key, entry)
        except AtCapacity:
            raise
        except MailboxFull:
            self._held.setdefault(entry.key, entry.id)
            return False
        self._inflight[entry.id] = (entry.key, entry.partition)
        self._busy[entry.partition] = self._busy.get(entry.partition, 0) + 1
        self.delivered += 1
        return True

    def _has_room(self) -> bool:
        """Whether a key without an actor may get one now (the cap and ``admit``)."""
        return self._actors.has_room() and self._admit(len(self._inflight))

    async def _top_up_held(self) -> None:
        # Only keys whose actor finished something since they were held can take more; reading
        # every held key after every completion made deep backlogs cost O(held keys) queries
        # per delivered message.
        for key, room in list(self._room.items()):
            del self._room[key]
            first = self._held.get(key)
            if first is None or room <= 0:
                continue
            generation = self._generation
            entries = await self._journal.read_pending_for_key(
                key, after_id=first - 1, limit=min(self._top_up, max(room, 1) + 1)
            )
            if generation != self._generation:
                return  # ownership changed: the next walk starts over
            del self._held[key]
            last = first - 1
            for entry in entries:
                try:
                    if not self._deliver(entry):
                        break  # still full: _deliver held it again at this entry
                except AtCapacity:
                    # Its actor was passivated and none can be activated now: the key waits
                    # behind the overflow mark like any other (its entries from here are
                    # undelivered, so nothing of it can overtake them).
                    self._overflow = min(entry.id, self._overflow or entry.id)
                    break
                last = entry.id
            else:
                if entries and len(entries) == min(self._top_up, max(room, 1) + 1):
                    self._held[key] = entries[-1].id + 1  # more beyond this page
                    self._room[key] = 1  # try again: the mailbox may have more room
                    self._wakeup.set()
            if last > self._cursor:
                self._skip_upto[key] = max(last, self._skip_upto.get(key, 0))

    async def _catch_up(self) -> None:
        """Walk from the overflow mark to the cursor, activating keys in id order until the cap
        stops it again (the new mark) or nothing is left behind (no mark)."""
        assert self._overflow is not None
        blocked: int | None = None
        activated: set[str] = set()  # keys this walk gave an actor (at most the cap)
        after = self._overflow - 1
        while after < self._cursor:
            generation = self._generation
            try:
                entries = await self._journal.read_pending(
                    after_id=after, limit=self._batch, partitions=self._owned()
                )
            except JournalUnavailable:
                self._hold_from(activated, after + 1)
                raise
            if generation != self._generation:
                return  # ownership changed: the walk starts over anyway
            for entry in entries:
                if entry.id > self._cursor:
                    break
                key = entry.key
                if (
                    key in self._held
                    or entry.id in self._inflight
                    or entry.id in self._finished_since_scan
                    or entry.id <= self._skip_upto.get(key, 0)
                    or (blocked is not None and not self._actors.live(key))
                ):
                    continue
                new = not self._actors.live(key)
                try:
                    self._deliver(entry)
                except AtCapacity:
                    blocked = entry.id
                else:
                    if new:
                        activated.add(key)
            if len(entries) < self._batch or entries[-1].id >= self._cursor:
                break  # the cursor is reached: nothing is left behind it
            after = entries[-1].id
            if blocked is not None:
                # Stop at the end of this page rather than read the rest of the backlog again
                # for every few actors that free up.
                self._hold_from(activated, after + 1)
                break
        self._overflow = blocked

    def _hold_from(self, keys: Collection[str], first: int) -> None:
        """Keys a catch-up gave an actor may have entries after ``first`` it did not read: hold
        them there, so that the main walk cannot hand them a later entry first; their top-up
        reads them in order (at most one query per key, for keys that got an actor)."""
        for key in keys:
            if key not in self._held:
                self._held[key] = first
                self._room[key] = 1
                self._wakeup.set()

    async def _rescan(self) -> None:
        """Deliver pending entries behind the cursor that nobody holds (replays, take-overs)."""
        self._finished_since_scan = set()
        after = 0
        while after < self._cursor:
            generation = self._generation
            entries = await self._journal.read_pending(
                after_id=after, limit=self._batch, partitions=self._owned()
            )
            if generation != self._generation:
                return  # ownership changed: the walk starts over anyway
            for entry in entries:
                if entry.id > self._cursor:
                    return
                if (
                    entry.key in self._held
                    or entry.id in self._inflight
                    or entry.id in self._finished_since_scan
                ):
                    continue
                if (
                    self._overflow is not None
                    and entry.id >= self._overflow
                    and not self._actors.live(entry.key)
                ):
                    continue  # behind the overflow mark: _catch_up delivers it, in order
                try:
                    self._deliver(entry)
                except AtCapacity:
                    self._overflow = min(entry.id, self._overflow or entry.id)
            if len(entries) < self._batch:
                return
            after = entries[-1].id
