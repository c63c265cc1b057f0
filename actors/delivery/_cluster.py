"""Cluster ownership (PostgreSQL): :class:`Cluster` answers :class:`Ownership` with leases.

Each node holds *leases* on partitions, each tenure with a new epoch.
Every ``lease_seconds / 3`` a node renews its leases and its membership row, counts the live
nodes, and moves towards a fair share (``ceil(partitions / nodes)``) a few partitions at a time:
it takes free or expired partitions (in an order hashed from its own id, so nodes rarely
contend), and gives back surplus ones when nodes join. A dead node's leases expire after
``lease_seconds`` and others take its partitions over; their pending entries are then read and
delivered in order. A node that *dies* is noticed sooner: each node writes its leases on a
session of its own, holding a lock that ends with it, and the others watch those locks every
``takeover_poll`` seconds and take a dead node's partitions at once, before its leases expire
(the process's socket closes as it dies; a lost host or network is noticed after a lease term,
no sooner than expiry). Journal writes that finish an entry carry the tenure's :class:`Fence`, so
a paused node that lost a partition cannot mark anything done behind the new owner.

The Intercom rate budget is per app, not per node: the nodes share one counter per Intercom
window in the journal (:class:`intercom.SharedRateBudget`), not a fixed share each.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import trio

from runtime import Fence, JournalUnavailable, Lease

from ..core import LogLimiter
from ._ownership import PartitionWatcher, Tenure, Verdict

__all__ = [
    "Cluster",
    "LeaseStore",
]

logger = logging.getLogger("threadline.cluster")


class LeaseStore(Protocol):
    """The lease operations of the PostgreSQL journal."""

    async def acquire_lease(
        self, partition: int, owner: str, *, ttl: float, dead: Sequence[str] = ()
    ) -> Fence | None: ...

    async def acquire_leases(
        self, partitions: Sequence[int], owner: str, *, ttl: float, dead: Sequence[str] = ()
    ) -> dict[int, Fence]: ...

    async def renew_lease(self, fence: Fence, *, ttl: float) -> bool: ...

    async def renew_leases(self, fences: Sequence[Fence], *, ttl: float) -> set[int]: ...

    async def release_lease(self, fence: Fence) -> bool: ...

    async def leases(self) -> list[Lease]: ...

    async def lease_owners(self) -> dict[str, bool]: ...

    def session_holds(self, owner: str) -> bool: ...


def _membership_partition(node_id: str) -> int:
    """Membership rows live at negative "partitions", one per node id."""
    return -1 - zlib.crc32(node_id.encode()) % 1_000_000_000


class Cluster:
    """Lease-based ownership of ``partitions`` for node ``node_id``.

    Args:
        store: the journal's lease operations.
        node_id: unique per process (a restarted process should use a new one).
        partitions: the journal's partition count.
        lease_seconds: a dead node's partitions move after this long.
        step: partitions taken or given back per tick at most.
        on_change: called when owned partitions change (the dispatcher rereads the journal);
            :meth:`follow` sets it, and ``busy``, to a :class:`PartitionWatcher`'s.
        busy: whether a partition has entries in flight here (a hand-over waits for them).
        takeover_poll: seconds between looks for nodes whose lease session ended (a dead node:
            its partitions are taken at once); 0 waits for their leases to expire.
    """

    def __init__(
        self,
        store: LeaseStore,
        *,
        node_id: str,
        partitions: int,
        lease_seconds: float = 15.0,
        step: int = 8,
        on_change: Callable[[], None] = lambda: None,
        busy: Callable[[int], bool] = lambda partition: False,
        takeover_poll: float = 0.25,
    ) -> None:
        self.node_id = node_id
        self._store = store
        self._partitions = partitions
        self._ttl = lease_seconds
        self._step = step
        self._renewal_seconds = 0.0
        self._on_change = on_change
        self._busy = busy
        self._fences: dict[int, Fence] = {}
        self._draining: dict[int, float] = {}  # partition -> when draining began
        self._valid_until: dict[int, float] = {}  # partition -> monotonic time
        self._since: dict[int, float] = {}
        self._guards: dict[int, set[trio.CancelScope]] = {}  # partition -> open guards
        self._owned: frozenset[int] = frozenset()
        self._membership: Fence | None = None
        self.nodes = 1
        self.unowned = 0
        """Partitions without a live lease at the last tick (before this node took any)."""
        self._repeats = LogLimiter()
        self._poll = takeover_poll
        self._seen_up: set[str] = set()  # owners seen holding their session lock
        self._owners: dict[str, bool] = {}  # live lease owners: is each one's session up?
        self._woken_for: set[str] = set()  # dead owners a tick was asked for already
        self._wake = trio.Event()  # a tick is due now (a dead node seen, our session lost)
        self.takeovers = 0
        """Partitions taken from nodes whose session ended, before their leases expired."""

    def follow(self, watcher: PartitionWatcher) -> None:
        """Tell ``watcher`` (the dispatcher) of changes, and ask it what is in flight."""
        self._on_change = watcher.reset
        self._busy = watcher.busy

    # --- Ownership ------------------------------------------------------------------------

    def claim(self, partition: int) -> Tenure:
        if partition not in self._fences or partition in self._draining:
            verdict = Verdict.MOVED
        elif time.monotonic() < self._valid_until.get(partition, 0.0):
            verdict = Verdict.OWNED
        else:
            verdict = Verdict.PENDING
        return Tenure(
            verdict,
            self._fences.get(partition),
            self.since(partition),
            self.handover_margin,
            lambda: self.guard(partition),
        )

    def owned(self) -> frozenset[int] | None:
        return self._owned

    def owns(self, partition: int) -> bool:
        # Only while the lease is certainly still ours: a node starved past its renewals stops
        # delivering a third of a lease before anyone else can take the partition over.
        return (
            partition in self._fences
            and partition not in self._draining
            and time.monotonic() < self._valid_until.get(partition, 0.0)
        )

    def fence(self, partition: int) -> Fence | None:
        return self._fences.get(partition)

    def may_own(self, partition: int) -> bool:
        return partition in self._fences and partition not in self._draining

    def since(self, partition: int) -> float:
        return self._since.get(partition, math.inf)

    @property
    def handover_margin(self) -> float:
        return self._ttl / 3  # validity is two thirds of the lease: see _trust

    @contextmanager
    def guard(self, partition: int) -> Iterator[trio.CancelScope]:
        # A delivery outlasting the lease's validity would race the next owner, which may take
        # the partition a third of a lease later and, not seeing the part yet, send it again.
        # Cut it off at the validity's end instead; renewals push the deadline on.
        scope = trio.CancelScope(deadline=self._deadline(partition))
        scopes = self._guards.setdefault(partition, set())
        scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            scopes.discard(scope)
            if not scopes and self._guards.get(partition) is scopes:
                del self._guards[partition]

    def _deadline(self, partition: int) -> float:
        """The end of ``partition``'s validity on Trio's clock (-inf when not held)."""
        valid_until = self._valid_until.get(partition)
        if valid_until is None:
            return -math.inf
        return trio.current_time() + (valid_until - time.monotonic())

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold and balance leases until cancelled; releases them on the way out."""
        try:
            await self._tick_safely()
            task_status.started()
            async with trio.open_nursery() as nursery:
                if self._poll > 0:
                    nursery.start_soon(self._watch)
                next_tick = trio.current_time() + self._ttl / 3
                while True:
                    with trio.move_on_at(next_tick):
                        await self._wake.wait()  # or earlier, when the watch asks
                    self._wake = trio.Event()
                    woke = trio.current_time()
                    late = max(0.0, woke - next_tick)
                    # Start to start, so a slow tick does not stretch the renewals; an early
                    # tick (asked for by the watch) counts from itself: the schedule never moves
                    # further out than a tick from the last one.
                    next_tick = min(next_tick, woke) + self._ttl / 3
                    await self._tick_safely()
                    took = trio.current_time() - woke
                    next_tick = max(next_tick, trio.current_time())
                    if late + took > self._ttl / 6:
                        logger.warning(
                            "cluster: lease tick %.2f s late, took %.2f s (renewal %.2f s)",
                            late, took, self._renewal_seconds,
                        )  # fmt: skip
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self._release_all()

    async def _watch(self) -> None:
        """Every ``takeover_poll`` seconds: is our own session still up (if not, others may take
        our partitions now: stop delivering), and has any other node's ended (take its
        partitions now: tick)?"""
        while True:
            await trio.sleep(self._poll)
            if self._fences and not self._store.session_holds(self.node_id):
                if any(time.monotonic() < until for until in self._valid_until.values()):
                    # The same kind as the tick's outage warning: one outage, one warning.
                    self._repeats.log(
                        logger, logging.WARNING, "journal",
                        "cluster: lease session lost; deliveries wait for a renewal",
                    )  # fmt: skip
                for partition in self._fences:
                    self._valid_until[partition] = 0.0
                    for scope in self._guards.get(partition, ()):
                        scope.deadline = -math.inf
                self._wake.set()
                continue
            try:
                owners = await self._store.lease_owners()
            except JournalUnavailable:
                continue  # the tick logs it
            self._seen_up.update(owner for owner, up in owners.items() if up)
            self._owners = owners
            gone = self._gone(owners)
            if gone - self._woken_for:  # once per dead node (a tick every 0.25 s is no use)
                self._wake.set()
            self._woken_for = gone

    def _gone(self, owners: dict[str, bool]) -> set[str]:
        """Owners with live leases whose session ended, after it was seen up (an owner that
        never held a session lock, such as an older release, is left to lease expiry)."""
        return {
            owner
            for owner, up in owners.items()
            if not up and owner in self._seen_up and owner != self.node_id
        }

    async def _tick_safely(self) -> None:
        try:
            await self.tick()
        except JournalUnavailable as exc:
            # Keep what we hold: if others can reach the database, our leases expire there and
            # our fenced writes fail; if nobody can, nobody takes over.
            self._repeats.log(
                logger, logging.WARNING, "journal",
                "cluster: journal unavailable, leases not renewed: %s", exc,
            )  # fmt: skip

    def _trust(self, partition: int, asked_at: float) -> None:
        """The lease was granted or renewed by a request sent at ``asked_at`` (monotonic): the
        database's expiry is at least ``asked_at + ttl``; act on it for two thirds of that."""
        self._valid_until[partition] = asked_at + self._ttl * 2 / 3
        for scope in self._guards.get(partition, ()):
            scope.deadline = self._deadline(partition)

    async def tick(self) -> None:
        """One round: renewals, membership, hand-overs, then towards the fair share."""
        # Renewals first, all in one round trip: in a process kept busy by thousands of live
        # actors, 64 sequential renewals (or a renewal queued behind the other calls of the
        # tick) came later than the leases' validity, and deliveries were cut off.
        # The membership row goes along (one round trip fewer per tick).
        asked_at = time.monotonic()
        member = [] if self._membership is None else [self._membership]
        renewed = await self._store.renew_leases([*self._fences.values(), *member], ttl=self._ttl)
        self._renewal_seconds = time.monotonic() - asked_at
        if self._membership is not None and self._membership.partition not in renewed:
            self._membership = None
        lost = []
        for partition in list(self._fences):
            if partition in renewed:
                self._trust(partition, asked_at)
            else:
                lost.append(partition)
        for partition in lost:
            logger.warning("cluster: lost partition %d to another node", partition)
            self._drop(partition)
        await self._heartbeat()
        now = time.monotonic()
        for partition, began in sorted(self._draining.items()):
            # Hand over only once nothing of it is in flight here: the new owner must not
            # deliver an entry this node is still delivering. A stuck delivery does not hold
            # the partition past a lease time (its fenced commit then fails harmlessly).
            stuck = self._busy(partition)
            if stuck and now - began < self._ttl:
                continue
            held = self._fences[partition]
            self._drop(partition)  # cuts off whatever is still in flight on it
            if stuck:
                # Let the lease run out instead of releasing it: what was cut off then has the
                # rest of its term to land before the next owner looks for it.
                logger.warning("cluster: partition %d handed over with work stuck", partition)
                continue
            await self._store.release_lease(held)
        # Whose session ended, as the watch last saw it (acquire_leases checks it again).
        gone = self._gone(self._owners) if self._poll > 0 else set()
        # A dead node's leases count as free (taken below with ``dead=``).
        every = await self._store.leases()
        orphaned = {
            lease.partition
            for lease in every
            if lease.live and lease.owner in gone and lease.partition >= 0
        }
        leases = [lease for lease in every if lease.owner not in gone]
        leased = {lease.partition for lease in leases if lease.live and lease.partition >= 0}
        self.unowned = self._partitions - len(leased | set(self._fences))
        live_nodes = {lease.owner for lease in leases if lease.live} | {self.node_id}
        self.nodes = len(live_nodes)
        fair = math.ceil(self._partitions / self.nodes)
        changed = bool(lost)
        if len(self._fences) < fair or orphaned:
            # Live leases under our own id but not in our hands belong to a previous
            # incarnation of this node (restarted): take them back, a new epoch fences it out.
            taken = {
                lease.partition
                for lease in leases
                if lease.live and lease.partition >= 0 and lease.owner != self.node_id
            }
            taken.update(self._fences)
            free = [p for p in range(self._partitions) if p not in taken]
            free.sort(key=lambda p: zlib.crc32(f"{self.node_id}:{p}".encode()))
            # Free partitions (never owned, released, or left by a dead node) are taken at once,
            # up to the fair share; only moving partitions between live nodes goes step by step.
            # All in one round trip: taken one by one, the first ones' validity could run out
            # before the last ones were asked for.
            wanted = free[: max(0, fair - len(self._fences))]
            # A dead node's partitions go to whichever node looks first, past its fair share:
            # its threads wait for the quickest survivor, not the slowest; rebalancing then
            # evens the shares out step by step.
            wanted += sorted(orphaned - set(wanted) - self._fences.keys())
            asked_at = time.monotonic()
            got = await self._store.acquire_leases(
                wanted, self.node_id, ttl=self._ttl, dead=sorted(gone)
            )
            for partition, fence in sorted(got.items()):
                self._trust(partition, asked_at)
                self._fences[partition] = fence
                self._since[partition] = time.time()
                changed = True
            if taken_over := sorted(orphaned & got.keys()):
                self.takeovers += len(taken_over)
                logger.info("cluster: took partitions %s from a dead node", taken_over)
        elif len(self._fences) > fair + 1 or (len(self._fences) > fair and self._surplus(leases)):
            # Stop dispatching a few; entries in flight still finish under their fence, and the
            # leases go at the next tick.
            surplus = sorted(self._fences, key=lambda p: zlib.crc32(f"{self.node_id}:{p}".encode()))
            moving = surplus[-min(self._step, len(self._fences) - fair) :]
            for partition in moving:
                self._draining.setdefault(partition, time.monotonic())
            changed = True
        if changed:
            self._owned = frozenset(self._fences) - self._draining.keys()
            self._on_change()

    def _surplus(self, leases: list[Lease]) -> bool:
        """Another live node owns fewer than the fair share minus one: give it room."""
        counts: dict[str, int] = {}
        for lease in leases:
            if lease.live and lease.partition >= 0:
                counts[lease.owner] = counts.get(lease.owner, 0) + 1
        fair = math.ceil(self._partitions / self.nodes)
        members = {lease.owner for lease in leases if lease.live}
        return any(counts.get(node, 0) < fair - 1 for node in members if node != self.node_id)

    async def _heartbeat(self) -> None:
        if self._membership is not None:
            return  # renewed with the partitions
        partition = _membership_partition(self.node_id)
        self._membership = await self._store.acquire_lease(partition, self.node_id, ttl=self._ttl)

    def _drop(self, partition: int) -> None:
        self._fences.pop(partition, None)
        self._since.pop(partition, None)
        self._draining.pop(partition, None)
        self._valid_until.pop(partition, None)
        for scope in self._guards.get(partition, ()):
            scope.cancel()
        self._owned = frozenset(self._fences) - self._draining.keys()

    async def _release_all(self) -> None:
        for partition, fence in list(self._fences.items()):
            self._drop(partition)
            try:
                await self._store.release_lease(fence)
            except JournalUnavailable:
                return
        if self._membership is not None:
            try:
                await self._store.release_lease(self._membership)
            except JournalUnavailable:
                return
