"""Finding or creating the Intercom contact behind a customer, once per customer identity.

Intercom's contact search lags behind contact creation ("a few minutes"), so search-then-create
is racy: two threads of one phone number (WhatsApp and SMS) could both miss and both create.
Resolution is therefore serialised per *identity* (``phone:+E164`` for phone channels, the
channel user id otherwise) by a lock in the journal, which holds across every node of a
cluster, and every resolved contact is remembered in the journal's state, so the second thread
finds the first one's contact there without asking Intercom at all.

Creating a contact is a recorded step: its intent (``contact-intent:<identity>``, with the time)
is committed before ``POST /contacts`` and removed with the contact it produced. A resolution
that finds an intent but no contact (the process died, or the call timed out, between Intercom
creating it and the journal recording it) searches for it, and while the search is younger
than ``THREADLINE_INTERCOM_SEARCH_SETTLE_SECONDS`` and finds nothing it waits (the entry is
retried later) instead of creating a second contact.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from channels import Channel, InboundMessage
from intercom import Contact, IntercomClient, IntercomRateLimited, IntercomRejected
from runtime import Journal, JournalUnavailable

from ..core import BridgeMetrics, thread_hash
from ..delivery import InDoubt, IntentRecord
from ._jobs import contact_intent_key, identity_key

__all__ = ["ContactResolver", "ResolvedContact", "identity_of"]

logger = logging.getLogger("threadline.contacts")

USER_ID_ATTRIBUTE = {
    Channel.TELEGRAM: "telegram_user_id",
    Channel.WHATSAPP: "whatsapp_user_id",
    Channel.TWILIO: "twilio_user_id",
}
"""The contact custom data attribute that holds a channel's user id when there is no phone."""


class ResolvedContact(BaseModel):
    """An Intercom contact the bridge writes as: its id and role (``user`` or ``lead``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: str = "lead"


def identity_of(message: InboundMessage) -> str:
    """The customer identity contacts are resolved by."""
    if message.phone:
        return f"phone:{message.phone}"
    key = message.key
    return f"{key.channel.value}:{key.account}:{key.customer}"


class ContactResolver:
    """Resolves customers to Intercom contact ids, serialised per identity.

    Args:
        settle_seconds: how long a creation in doubt is looked for before creating again.
        wall_clock: UNIX time, for intents that outlive the process.
    """

    def __init__(
        self,
        client: IntercomClient,
        journal: Journal,
        metrics: BridgeMetrics,
        *,
        settle_seconds: float = 120.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._journal = journal
        self._metrics = metrics
        self._settle = settle_seconds
        self._now = wall_clock
        self._attributes_ready: set[str] = set()

    async def resolve(self, message: InboundMessage) -> ResolvedContact:
        """The Intercom contact for the message's customer, found or created (as a lead).

        Raises:
            InDoubt: an earlier creation for this identity may have happened and is not
                visible yet; retry after ``seconds``.
        """
        identity = identity_of(message)
        known = await self._journal.get_state(identity_key(identity))
        if known is not None:
            return ResolvedContact.model_validate_json(known)
        async with self._journal.lock(identity_key(identity)):
            known = await self._journal.get_state(identity_key(identity))
            if known is not None:  # another thread (or node) resolved it meanwhile
                return ResolvedContact.model_validate_json(known)
            contact = await self._find_or_create(message, identity)
            await self._journal.put_state(
                {
                    identity_key(identity): contact.model_dump_json().encode(),
                    contact_intent_key(identity): None,
                }
            )
            return contact

    async def adopt(self, message: InboundMessage, contact_id: str) -> ResolvedContact:
        """The contact was merged into ``contact_id``: remember that one from now on."""
        contact = await self._client.get_contact(contact_id)
        resolved = ResolvedContact(id=contact.id, role=contact.role)
        identity = identity_of(message)
        async with self._journal.lock(identity_key(identity)):
            await self._journal.put_state(
                {identity_key(identity): resolved.model_dump_json().encode()}
            )
        return resolved

    async def forget(self, message: InboundMessage) -> None:
        """Drop the remembered contact (it was merged or deleted): the next resolve searches."""
        identity = identity_of(message)
        async with self._journal.lock(identity_key(identity)):
            await self._journal.put_state({identity_key(identity): None})

    async def _find_or_create(self, message: InboundMessage, identity: str) -> ResolvedContact:
        name = message.profile_name or None
        attribute: str | None = None
        if message.phone:
            found = await self._client.find_contacts_by_phone(message.phone)
        else:
            attribute = USER_ID_ATTRIBUTE[message.key.channel]
            await self._ensure_attribute(attribute)
            found = await self._client.find_contacts_by_attribute(attribute, message.key.customer)
        if found:
            return _oldest(found)
        await self._check_intent(identity)
        # The intent is committed before the call: if its outcome is lost, the next resolution
        # knows a contact may exist although search does not show it yet.
        intent = IntentRecord(started_at=self._now())
        await self._journal.put_state({contact_intent_key(identity): intent.encode()})
        try:
            if attribute is None:
                created = await self._client.create_contact(
                    role="lead", phone=message.phone, name=name
                )
            else:
                created = await self._client.create_contact(
                    role="lead", name=name, custom_attributes={attribute: message.key.customer}
                )
        except (IntercomRateLimited, IntercomRejected):
            # Refused: nothing was created, so nothing is in doubt (best effort: a stale
            # intent only makes the next attempt search before creating).
            with contextlib.suppress(JournalUnavailable):
                await self._journal.put_state({contact_intent_key(identity): None})
            raise
        self._metrics.contacts_created.labels("existed" if created.existed else "created").inc()
        return ResolvedContact(id=created.contact.id, role=created.contact.role)

    async def _check_intent(self, identity: str) -> None:
        """Raise InDoubt while an earlier, unrecorded creation may still appear in search."""
        raw = await self._journal.get_state(contact_intent_key(identity))
        if raw is None:
            return
        settles_at = IntentRecord.decode(raw).started_at + self._settle
        now = self._now()
        if now < settles_at:
            logger.info(
                "contact of identity %s may have been created before an interruption; "
                "searching again", thread_hash(identity),
                extra={"identity_hash": thread_hash(identity)},
            )  # fmt: skip
            raise InDoubt(f"the contact of {identity}", min(settles_at - now, 5.0))
        logger.warning(
            "contact of identity %s: creation was in doubt and search never showed it; "
            "creating it", thread_hash(identity),
            extra={"identity_hash": thread_hash(identity)},
        )  # fmt: skip

    async def _ensure_attribute(self, name: str) -> None:
        if name not in self._attributes_ready:
            await self._client.ensure_data_attribute(name, "string")
            self._attributes_ready.add(name)


def _oldest(contacts: list[Contact]) -> ResolvedContact:
    """Of several matching contacts, the oldest (the one teammates have most history with)."""
    oldest = min(contacts, key=lambda c: (c.created_at or 0, c.id))
    return ResolvedContact(id=oldest.id, role=oldest.role)
