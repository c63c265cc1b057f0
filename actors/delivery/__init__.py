"""Delivery: how a journal entry reaches its thread actor and is finished, exactly once.

::

    journal ─► Dispatcher ─► thread actor ─► DeliveryMachine ─► Business.perform (the thread)
                 ▲  reset / busy      │ claim (one call)  │ commit (fenced), release
                 └──── Cluster ◄──────┘                   └─► Plumbing ─► dispatcher.finished

- :class:`Dispatcher` reads pending entries in journal order and hands them to the actors.
- :class:`Cluster` / :class:`SingleNode` decide which partitions this node serves
  (:class:`Ownership`); :meth:`Ownership.claim` answers, once per entry, all a delivery needs.
- :class:`DeliveryMachine` owns an entry's life around the business handler: ownership, dedupe,
  in-doubt waits, :class:`Steps` (each external effect at most once), the fenced commit and
  its retry, the release. :func:`make_classifier` decides what a failure costs.
"""

from ._classify import make_classifier as make_classifier
from ._cluster import Cluster as Cluster
from ._cluster import LeaseStore as LeaseStore
from ._dispatch import Dispatcher as Dispatcher
from ._doubt import InDoubt as InDoubt
from ._doubt import IntentRecord as IntentRecord
from ._machine import Business as Business
from ._machine import DeliveryInDoubt as DeliveryInDoubt
from ._machine import DeliveryMachine as DeliveryMachine
from ._machine import Done as Done
from ._machine import OwnershipUncertain as OwnershipUncertain
from ._machine import Plumbing as Plumbing
from ._machine import Work as Work
from ._ownership import Ownership as Ownership
from ._ownership import PartitionWatcher as PartitionWatcher
from ._ownership import SingleNode as SingleNode
from ._ownership import Tenure as Tenure
from ._ownership import Verdict as Verdict
from ._steps import Outcome as Outcome
from ._steps import StepResult as StepResult
from ._steps import Steps as Steps
from ._steps import steps_key as steps_key

__all__ = [
    "Business",
    "Cluster",
    "DeliveryInDoubt",
    "DeliveryMachine",
    "Dispatcher",
    "Done",
    "InDoubt",
    "IntentRecord",
    "LeaseStore",
    "Outcome",
    "Ownership",
    "OwnershipUncertain",
    "PartitionWatcher",
    "Plumbing",
    "SingleNode",
    "StepResult",
    "Steps",
    "Tenure",
    "Verdict",
    "Work",
    "make_classifier",
    "steps_key",
]
