"""Finding or creating the Intercom contact behind a customer, once per customer identity.

Intercom's contact search lags behind contact creation ("a few minutes"), so search-then-create
is racy: two threads of one phone number (WhatsApp and SMS) could both miss and both create.
Resolution is therefore serialised per *identity* (``phone:+E164`` for phone channels, the
channel user id otherwise), and every resolved contact is remembered in the journal's state, so
the second thread finds the first one's contact there without asking Intercom at all.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from pydantic import BaseModel, ConfigDict

from channels import Channel, InboundMessage
from intercom import Contact, IntercomClient
from runtime import Journal

from ._jobs import identity_key
from ._metrics import BridgeMetrics

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
    """Resolves customers to Intercom contact ids, serialised per identity."""

    def __init__(self, client: IntercomClient, journal: Journal, metrics: BridgeMetrics) -> None:
        self._client = client
        self._journal = journal
        self._metrics = metrics
        self._locks: dict[str, tuple[trio.Lock, int]] = {}
        self._attributes_ready: set[str] = set()

    @asynccontextmanager
    async def _serialised(self, identity: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(identity, (None, 0))
        if lock is None:
            lock = trio.Lock()
        self._locks[identity] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock_now, users_now = self._locks[identity]
            if users_now == 1:
                del self._locks[identity]
            else:
                self._locks[identity] = (lock_now, users_now - 1)

    async def resolve(self, message: InboundMessage) -> ResolvedContact:
        """The Intercom contact for the message's customer, found or created (as a lead)."""
        identity = identity_of(message)
        async with self._serialised(identity):
            known = await self._journal.get_state(identity_key(identity))
            if known is not None:
                return ResolvedContact.model_validate_json(known)
            contact = await self._find_or_create(message)
            await self._journal.put_state(
                {identity_key(identity): contact.model_dump_json().encode()}
            )
            return contact

    async def adopt(self, message: InboundMessage, contact_id: str) -> ResolvedContact:
        """The contact was merged into ``contact_id``: remember that one from now on."""
        contact = await self._client.get_contact(contact_id)
        resolved = ResolvedContact(id=contact.id, role=contact.role)
        identity = identity_of(message)
        async with self._serialised(identity):
            await self._journal.put_state(
                {identity_key(identity): resolved.model_dump_json().encode()}
            )
        return resolved

    async def forget(self, message: InboundMessage) -> None:
        """Drop the remembered contact (it was merged or deleted): the next resolve searches."""
        identity = identity_of(message)
        async with self._serialised(identity):
            await self._journal.put_state({identity_key(identity): None})

    async def _find_or_create(self, message: InboundMessage) -> ResolvedContact:
        name = message.profile_name or None
        if message.phone:
            found = await self._client.find_contacts_by_phone(message.phone)
            if found:
                return _oldest(found)
            created = await self._client.create_contact(role="lead", phone=message.phone, name=name)
        else:
            attribute = USER_ID_ATTRIBUTE[message.key.channel]
            await self._ensure_attribute(attribute)
            found = await self._client.find_contacts_by_attribute(attribute, message.key.customer)
            if found:
                return _oldest(found)
            created = await self._client.create_contact(
                role="lead", name=name, custom_attributes={attribute: message.key.customer}
            )
        self._metrics.contacts_created.labels("existed" if created.existed else "created").inc()
        return ResolvedContact(id=created.contact.id, role=created.contact.role)

    async def _ensure_attribute(self, name: str) -> None:
        if name not in self._attributes_ready:
            await self._client.ensure_data_attribute(name, "string")
            self._attributes_ready.add(name)


def _oldest(contacts: list[Contact]) -> ResolvedContact:
    """Of several matching contacts, the oldest (the one teammates have most history with)."""
    oldest = min(contacts, key=lambda c: (c.created_at or 0, c.id))
    return ResolvedContact(id=oldest.id, role=oldest.role)
