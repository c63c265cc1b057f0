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

A phone is searched in every form Intercom may hold it in (:mod:`._phones`: E.164, national,
spaced, bare digits; one ``OR`` search). When several contacts match, ``THREADLINE_CONTACT_MATCH``
chooses (:func:`choose`). With ``THREADLINE_CONTACT_CHANNEL_ATTRIBUTE`` set, the contact's
attribute of that name lists the channels the customer wrote from (``whatsapp,twilio``): set on
creation, added to when a found contact or a second channel of a known phone does not list it.
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
from ._phones import phone_forms

__all__ = ["ContactResolver", "ResolvedContact", "choose", "identity_of"]

logger = logging.getLogger("threadline.contacts")

USER_ID_ATTRIBUTE = {
    Channel.TELEGRAM: "telegram_user_id",
    Channel.WHATSAPP: "whatsapp_user_id",
    Channel.TWILIO: "twilio_user_id",
    Channel.MESSENGER: "messenger_user_id",
    Channel.INSTAGRAM: "instagram_user_id",
    Channel.VIBER: "viber_user_id",
    Channel.LINE: "line_user_id",
}
"""The contact custom data attribute that holds a channel's user id when there is no phone."""


class ResolvedContact(BaseModel):
    """An Intercom contact the bridge writes as: its id and role (``user`` or ``lead``), and
    the channels its channel attribute is known to name
    (``THREADLINE_CONTACT_CHANNEL_ATTRIBUTE``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: str = "lead"
    channels: tuple[str, ...] = ()


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
        match: which of several matching contacts is the customer's (:func:`choose`).
        channel_attribute: the contact attribute naming the channels the customer wrote from
            (created in the workspace once per process), or None.
    """

    def __init__(
        self,
        client: IntercomClient,
        journal: Journal,
        metrics: BridgeMetrics,
        *,
        settle_seconds: float = 120.0,
        wall_clock: Callable[[], float] = time.time,
        match: str = "recent",
        channel_attribute: str | None = None,
    ) -> None:
        self._client = client
        self._journal = journal
        self._metrics = metrics
        self._settle = settle_seconds
        self._now = wall_clock
        self._attributes_ready: set[str] = set()
        if match not in ("recent", "lead", "user"):
            raise ValueError(f"contact match must be recent, lead or user, not {match!r}")
        self._match = match
        self._channel_attribute = channel_attribute

    async def resolve(self, message: InboundMessage) -> ResolvedContact:
        """The Intercom contact for the message's customer, found or created (as a lead).

        Raises:
            InDoubt: an earlier creation for this identity may have happened and is not
                visible yet; retry after ``seconds``.
        """
        identity = identity_of(message)
        known = await self._journal.get_state(identity_key(identity))
        if known is not None:
            contact = ResolvedContact.model_validate_json(known)
            if not self._names_channel(contact, message):
                return contact
        async with self._journal.lock(identity_key(identity)):
            known = await self._journal.get_state(identity_key(identity))
            if known is not None:  # another thread (or node) resolved it meanwhile
                contact = ResolvedContact.model_validate_json(known)
                if not self._names_channel(contact, message):
                    return contact
                # Known, but not yet marked as writing from this channel (a second channel
                # of one phone number): mark it.
                contact = await self._mark_channel(contact, message, None)
                intent_done: dict[str, bytes | None] = {}
            else:
                contact = await self._find_or_create(message, identity)
                intent_done = {contact_intent_key(identity): None}
            await self._journal.put_state(
                {identity_key(identity): contact.model_dump_json().encode(), **intent_done}
            )
            return contact

    def _names_channel(self, contact: ResolvedContact, message: InboundMessage) -> bool:
        """Whether the contact's channel attribute must still be made to name the message's
        channel."""
        return (
            self._channel_attribute is not None
            and message.key.channel.value not in contact.channels
        )

    async def _mark_channel(
        self, contact: ResolvedContact, message: InboundMessage, found: Contact | None
    ) -> ResolvedContact:
        """Make the contact's channel attribute name the message's channel too (``found``: the
        contact as Intercom has it, when just read). A refusal is logged: the attribute is a
        marker, and must not hold the customer's message."""
        attribute = self._channel_attribute
        assert attribute is not None
        channel = message.key.channel.value
        try:
            await self._ensure_attribute(attribute)
            if found is None:
                found = await self._client.get_contact(contact.id)
            named = _channels_in(found.custom_attributes.get(attribute))
            if channel not in named:
                named.append(channel)
                await self._client.update_contact(
                    contact.id, custom_attributes={attribute: ",".join(named)}
                )
        except IntercomRejected as exc:
            logger.warning(
                "contact %s: channel attribute %s not set: %s", contact.id, attribute, exc
            )
            return contact
        channels = tuple(dict.fromkeys((*contact.channels, *named)))
        return contact.model_copy(update={"channels": channels})

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
            found = await self._client.find_contacts_by_phones(phone_forms(message.phone))
        else:
            attribute = USER_ID_ATTRIBUTE[message.key.channel]
            await self._ensure_attribute(attribute)
            found = await self._client.find_contacts_by_attribute(attribute, message.key.customer)
        if found:
            chosen = choose(found, self._match)
            resolved = ResolvedContact(id=chosen.id, role=chosen.role)
            if self._names_channel(resolved, message):
                resolved = await self._mark_channel(resolved, message, chosen)
            return resolved
        custom: dict[str, str] = {}
        if attribute is not None:
            custom[attribute] = message.key.customer
        channel_attribute = self._channel_attribute
        if channel_attribute is not None:
            try:
                await self._ensure_attribute(channel_attribute)
                custom[channel_attribute] = message.key.channel.value
            except IntercomRejected as exc:  # a marker: never worth holding the message
                logger.warning("channel attribute %s unusable: %s", channel_attribute, exc)
                channel_attribute = None
        await self._check_intent(identity)
        # The intent is committed before the call: if its outcome is lost, the next resolution
        # knows a contact may exist although search does not show it yet.
        intent = IntentRecord(started_at=self._now())
        await self._journal.put_state({contact_intent_key(identity): intent.encode()})
        try:
            created = await self._client.create_contact(
                role="lead",
                phone=message.phone if attribute is None else None,
                name=name,
                custom_attributes=custom or None,
            )
        except (IntercomRateLimited, IntercomRejected):
            # Refused: nothing was created, so nothing is in doubt (best effort: a stale
            # intent only makes the next attempt search before creating).
            with contextlib.suppress(JournalUnavailable):
                await self._journal.put_state({contact_intent_key(identity): None})
            raise
        self._metrics.contacts_created.labels("existed" if created.existed else "created").inc()
        contact = ResolvedContact(id=created.contact.id, role=created.contact.role)
        if channel_attribute is not None:
            if created.existed:  # a 409's contact: its attribute is as Intercom has it
                return await self._mark_channel(contact, message, created.contact)
            contact = contact.model_copy(update={"channels": (message.key.channel.value,)})
        return contact

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


def choose(contacts: list[Contact], match: str) -> Contact:
    """Of several contacts matching one customer (``THREADLINE_CONTACT_MATCH``): the most
    recently updated (``recent``: the one teammates work with now); with ``lead`` or ``user``,
    the most recently updated of that role when there is one. Ties go to the newer contact."""
    preferred = [c for c in contacts if c.role == match] if match in ("lead", "user") else []
    return max(
        preferred or contacts,
        key=lambda c: (c.updated_at or c.created_at or 0, c.created_at or 0, c.id),
    )


def _channels_in(value: object) -> list[str]:
    """The channel names a channel attribute's value lists (comma-separated)."""
    if not isinstance(value, str):
        return []
    return [name for name in (part.strip() for part in value.split(",")) if name]
