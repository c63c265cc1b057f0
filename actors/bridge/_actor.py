"""The thread actor: one per ``(channel, business account, customer)``, strictly in order.

::

    entry ─► inbound  : resolve contact → pick conversation (existing │ buffer expired │ gone)
                        → create, or reply as the contact (+ attachments) → complete entry
          ─► reply    : teammate comment → send on the channel as "{teammate}: {text}"
                        (+ attachments) → complete; failed for good → internal note → complete
          ─► api_send : send on the channel → record as an admin reply → complete

The actor holds the business decisions only; its :class:`actors.delivery.DeliveryMachine` owns
the plumbing around them (ownership, dedupe, in-doubt waits, recorded steps, the fenced commit
and release). Every Intercom and provider call may raise; ``actors.delivery.make_classifier``
decides what the runtime does: a transient failure (429, 5xx, timeouts, the journal being down)
is retried with backoff that honours Retry-After; a deleted conversation is retried a few times
and then replaced; anything else is given up to the dead letters (the give-up hook buries the
entry). The actor's state (contact, conversation, last activity) lives in the journal, written
with the entry's completion, so a passivated or restarted actor resumes exactly where it was.

The branches: :mod:`._inbound`, :mod:`._reply`, :mod:`._api` (send API and delivery status),
over :mod:`._sending` (recorded sends) and :mod:`._base` (state, notes, admin parts).
"""

from __future__ import annotations

from runtime import Actor, ActorContext, Entry

from ..delivery import DeliveryMachine, Done, Plumbing, Work
from ._api_send import ApiBranch
from ._base import Services
from ._jobs import DIRECTIONS, InboundJob, ReplyJob, StatusJob, decode_job, thread_state_key
from ._reply import ReplyBranch

__all__ = ["ThreadActor"]


class ThreadActor(ApiBranch, ReplyBranch, Actor[Entry, None]):
    """Delivers one thread's journal entries, in order."""

    def __init__(self, ctx: ActorContext[Entry], services: Services, plumbing: Plumbing) -> None:
        super().__init__(ctx.key, services)
        self._machine = DeliveryMachine(ctx.key, thread_state_key(ctx.key), self, plumbing)

    async def handle(self, message: Entry) -> None:
        await self._machine.deliver(message)

    async def perform(self, entry: Entry, work: Work) -> Done:
        """The business decision for one entry (its delivery machine does the rest)."""
        self._work = work
        job = decode_job(entry.payload)
        if isinstance(job, InboundJob):
            if self._bridged != entry.id:  # a retry after a held reply failed: bridged once
                await self._inbound(entry, job.message)
                self._bridged = entry.id
            if self._state.held:  # the customer answered a re-engagement template
                await self._deliver_held(entry)
            done = Done(DIRECTIONS[job.kind], "delivered")
        elif isinstance(job, ReplyJob):
            sent = await self._teammate_reply(entry, job)
            done = Done(DIRECTIONS[job.kind], "delivered" if sent else "skipped")
        elif isinstance(job, StatusJob):
            noted = await self._delivery_failed(entry, job)
            done = Done(DIRECTIONS[job.kind], "delivered" if noted else "skipped")
        else:
            await self._api_send(entry, job)
            done = Done(DIRECTIONS[job.kind], "delivered")
        self._gone_attempts.pop(entry.id, None)
        return done
