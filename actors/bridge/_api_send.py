"""The send API branch (a message or template from the team, recorded in the conversation as
the admin's reply; a conversation is started first when the customer has none) and the
delivery status branch (a message the provider accepted did not arrive: an internal note)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from channels import InboundMessage
from intercom import IntercomNotFound
from runtime import Entry

from ._base import ContactGone, doubt_reason
from ._inbound import InboundBranch
from ._jobs import ApiSendJob, SentRecord, StatusJob, sent_message_key
from ._outgoing import message_content
from ._receipts import failure_note
from ._sending import SendingBranch
from ._templates import customer_phone, record_text

__all__ = ["ApiBranch"]

logger = logging.getLogger("threadline.thread")


class ApiBranch(InboundBranch, SendingBranch):
    """Messages from the send API, and delivery failures reported by the providers."""

    async def _api_send(self, entry: Entry, job: ApiSendJob) -> None:
        created = False
        if self._state.conversation_id is None:
            created = await self._start_conversation(entry, job)
        conversation_id = self._state.conversation_id
        if conversation_id is not None and self._state.opened_by_entry == entry.id:
            # Opened for this message (now, or by an earlier attempt): the account's marks.
            await self._mark_conversation(conversation_id, found=not created)
        steps = await self._work.steps()
        if job.template is not None:
            failure = await self._send_template(steps, job.template, "template")
        else:
            content = message_content(self._key, job.text)
            failure = await self._send(steps, content, job.attachments)
        if conversation_id is None:
            return
        if failure is not None:
            await self._note(steps, conversation_id, None, failure)
            return
        admin = job.admin_id or await self._assignee_or_default(conversation_id, None)
        if admin is not None:
            files_text = "".join(f"\n📎 {a.filename or a.url}" for a in job.attachments)
            text = (job.text + files_text).strip()
            if job.template is not None:
                text = record_text(job.template, job.rendered)
            await self._write_part(steps, "record", conversation_id, admin, text, "comment")
            if self._s.options.intercom_mark_read:  # delivered: Intercom need not email it
                await self._mark_read(steps, "read", conversation_id)
        doubt = doubt_reason(steps)
        if doubt is not None:
            await self._note(steps, conversation_id, None, doubt)

    async def _start_conversation(self, entry: Entry, job: ApiSendJob) -> bool:
        """The send API to a customer without a conversation: resolve (or create) the contact
        and open the conversation as the inbound path does (recorded intents, exactly once);
        the message sent is then recorded in it as the admin's reply. True when this call
        created it (False: an earlier attempt's, found)."""
        message = InboundMessage(
            key=self._key,
            provider_message_id=f"api:{entry.id}",
            phone=customer_phone(self._key),
            sent_at=datetime.fromtimestamp(job.received_at, UTC),
        )
        opening = (
            f"[Threadline: conversation started by the team on {self._key.channel.value}; the"
            " message sent to the customer follows]"
        )
        for _ in range(2):  # a second pass after re-resolving a deleted contact
            if self._state.contact_id is None:
                contact = await self._s.resolver.resolve(message)
                self._state.contact_id, self._state.contact_role = contact.id, contact.role
            try:
                _, found = await self._open_conversation(
                    entry, self._state.contact_id, opening, "api_send"
                )
                return found is None
            except ContactGone:
                await self._contact_gone(message)
        raise IntercomNotFound(
            "the contact vanished twice while starting a conversation", status=404
        )

    async def _delivery_failed(self, entry: Entry, job: StatusJob) -> bool:
        """A message the provider accepted did not arrive: a note in its conversation, as the
        assignee or the default operator. False when the bridge has no record of the message
        (sent by someone else, or past the retention), or its record is another thread's (a
        receipt naming a message another account sent)."""
        channel = self._key.channel.value
        key = sent_message_key(channel, job.provider_message_id)
        raw = await self._s.journal.get_state(key)
        record = None if raw is None else SentRecord.decode(raw)
        if record is None or record.thread != self._key_text:
            self._s.metrics.delivery_failures.labels(channel, "unknown").inc()
            return False
        admin = await self._assignee_or_default(record.conversation_id, None)
        if admin is None:
            logger.warning("cannot leave a note: no assignee and no default admin configured")
            return False
        steps = await self._work.steps()
        note = failure_note(record, job)
        await self._write_part(steps, "note", record.conversation_id, admin, note, "note")
        self._work.writes[key] = None  # noted: a later report of it has nothing to add
        self._s.metrics.delivery_failures.labels(channel, "noted").inc()
        return True
