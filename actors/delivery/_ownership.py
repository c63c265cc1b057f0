"""Partition ownership: who may dispatch and finish which journal entries.

The contract a delivery asks (:class:`Ownership`, answered once per entry by a :class:`Tenure`
and its :class:`Verdict`), and its single-node form: :class:`SingleNode` (SQLite, or PostgreSQL
with one process) owns every partition. The cluster form, with leases, is
:class:`~actors.delivery._cluster.Cluster`.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import trio

from runtime import Fence

__all__ = [
    "Ownership",
    "PartitionWatcher",
    "SingleNode",
    "Tenure",
    "Verdict",
]


class Verdict(enum.Enum):
    """Whether this node may deliver an entry of a partition now."""

    OWNED = "owned"
    """Certainly this node's: deliver it."""
    PENDING = "pending"
    """Held, but the lease's validity must be confirmed by the next renewal first: wait (do not
    skip the entry, or a later one of its thread could overtake it)."""
    MOVED = "moved"
    """Not this node's (any more): its owner delivers it."""


@dataclass(frozen=True, slots=True)
class Tenure:
    """What delivering one entry of a partition needs from ownership, asked once per entry
    (:meth:`Ownership.claim`)."""

    verdict: Verdict
    fence: Fence | None
    """The tenure to fence journal writes with (None on a single node)."""
    since: float
    """UNIX time this node began owning the partition."""
    margin: float
    """Seconds a delivery cut off at the end of the lease's validity gets to land before anyone
    looks for it (:attr:`Ownership.handover_margin`)."""
    guard: Callable[[], AbstractContextManager[trio.CancelScope]]
    """Opens the cancel scope the delivery runs in (:meth:`Ownership.guard`)."""

    @property
    def epoch(self) -> int | None:
        """The tenure's epoch (None on a single node): a change means the partition came back
        from elsewhere, and what the thread remembers may be stale."""
        return None if self.fence is None else self.fence.epoch


class PartitionWatcher(Protocol):
    """What the cluster tells about the partitions it moves (the dispatcher)."""

    def reset(self) -> None:
        """The owned partitions changed: read the journal again."""

    def busy(self, partition: int) -> bool:
        """Whether entries of ``partition`` are in flight here (a hand-over waits for them)."""


class Ownership(Protocol):
    """Which partitions this node serves."""

    def claim(self, partition: int) -> Tenure:
        """Everything the delivery of an entry of ``partition`` needs, in one call."""

    def owned(self) -> frozenset[int] | None:
        """The owned partitions; None means all of them (single node)."""

    def owns(self, partition: int) -> bool:
        """Whether entries of ``partition`` are certainly this node's to deliver now."""

    def may_own(self, partition: int) -> bool:
        """Whether ``partition`` is held, even if the lease's validity must be confirmed by the
        next renewal first (then wait: do not skip its entries, or a thread reorders)."""

    def fence(self, partition: int) -> Fence | None:
        """The tenure to fence journal writes with (None on a single node)."""

    def since(self, partition: int) -> float:
        """UNIX time this node began owning ``partition`` (its entries older than that may have
        been in flight on a previous owner)."""

    @property
    def handover_margin(self) -> float:
        """Seconds between the end of a lease's validity here and the earliest moment another
        node can take the partition: what a cut-off delivery gets to land before anyone looks
        for it."""

    def guard(self, partition: int) -> AbstractContextManager[trio.CancelScope]:
        """A cancel scope for work done on ``partition``'s behalf outside the journal, cancelled
        when this node can no longer be sure it holds the lease. Work it cut short may have
        reached the outside world: treat it as in doubt."""


class SingleNode:
    """Owns every partition, since the process started."""

    def __init__(self) -> None:
        self._started = time.time()
        self._tenure = Tenure(Verdict.OWNED, None, self._started, 0.0, trio.CancelScope)

    def claim(self, partition: int) -> Tenure:
        return self._tenure

    def owned(self) -> frozenset[int] | None:
        return None

    def owns(self, partition: int) -> bool:
        return True

    def may_own(self, partition: int) -> bool:
        return True

    def fence(self, partition: int) -> Fence | None:
        return None

    def since(self, partition: int) -> float:
        return self._started

    handover_margin = 0.0

    def guard(self, partition: int) -> AbstractContextManager[trio.CancelScope]:
        return trio.CancelScope()
