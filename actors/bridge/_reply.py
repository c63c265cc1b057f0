"""The reply branch: a teammate's comment → the customer, as "{teammate}: {text}" (+ its
attachments), after any earlier comments not sent yet; failed for good, an internal note. Outside
WhatsApp's 24-hour window the reply is held behind a re-engagement template, and sent when the
customer answers."""

from __future__ import annotations

import logging

from channels import Channel, SendTransient
from intercom import IntercomNotFound, is_teammate_message
from runtime import Entry

from ..delivery import Steps
from ._base import doubt_reason
from ._jobs import HeldReply, ReplyJob, own_part_key, reply_job, sent_part_key
from ._outgoing import message_content, reply_content
from ._sending import SendingBranch
from ._templates import ApiTemplate, TemplateRefused, TemplatesUnavailable

__all__ = ["ReplyBranch"]

logger = logging.getLogger("threadline.thread")


class ReplyBranch(SendingBranch):
    """Teammates' replies, sent to the customer."""

    async def _teammate_reply(self, entry: Entry, job: ReplyJob) -> bool:
        """Send a teammate's reply, after any earlier teammate parts of the conversation not
        sent yet (Intercom's webhooks come in no guaranteed order). False when nothing was to
        be sent (our own part, or sent already ahead of its own webhook)."""
        if await self._is_own_part(job.part_id) or await self._was_sent(job.part_id):
            return False
        if self._state.conversation_id is None:
            self._state.conversation_id = job.conversation_id
        steps = await self._work.steps()
        due = await self._replies_due(job)
        for reply in due:
            await self._send_reply(steps, reply)
            self._state.last_reply_part_id = reply.part_id
            self._work.writes[sent_part_key(reply.part_id)] = b"1"
        if due and self._s.options.intercom_mark_read:
            await self._mark_read(steps, f"{job.part_id}:read", job.conversation_id)
        return bool(due)

    async def _is_own_part(self, part_id: str) -> bool:
        if self._own_parts is not None and part_id in self._own_parts:
            return True
        return await self._s.journal.get_state(own_part_key(part_id)) is not None

    async def _was_sent(self, part_id: str) -> bool:
        """Whether the part was sent already (ahead of its own webhook, in part order)."""
        key = sent_part_key(part_id)
        return key in self._work.writes or await self._s.journal.get_state(key) is not None

    async def _replies_due(self, job: ReplyJob) -> list[ReplyJob]:
        """The teammate comments to send for ``job``, in the conversation's part order: the
        unsent ones after the last one sent, up to and including ``job``'s part. Only a part
        recorded as sent is skipped, never one merely earlier in order: one whose webhook comes
        late (or the first replies of a thread, which have no "last sent" to order after) is
        sent late rather than lost."""
        last = self._state.last_reply_part_id
        if last is None:
            return [job]
        try:
            conversation = await self._s.intercom.get_conversation(job.conversation_id)
        except IntercomNotFound:
            return [job]
        ids = [part.id for part in conversation.parts]
        if job.part_id not in ids or last not in ids:
            return [job]  # beyond the newest parts Intercom returns: send it as it comes
        position, start = ids.index(job.part_id), ids.index(last) + 1
        due = []
        for part in conversation.parts[start:position]:
            if (
                is_teammate_message(part)  # a comment, or a close/assign/… with a message
                and not await self._is_own_part(part.id)
                and not await self._was_sent(part.id)
            ):
                assignee = conversation.admin_assignee_id
                due.append(reply_job(job.conversation_id, part, assignee_id=assignee,
                                     received_at=job.received_at))  # fmt: skip
        return [*due, job]

    async def _send_reply(self, steps: Steps, job: ReplyJob) -> None:
        prefix = f"{job.part_id}:"
        # The signature is fixed on the first attempt: a retry must split the text and choose
        # a caption exactly as the attempt that sent the first pieces did.
        teammate = steps.memo(f"{prefix}signature")
        if teammate is None:
            teammate = await self._s.admin_names.signature(  # actors/bridge/_admins.py: the order
                self._s.intercom, job.admin_name, job.admin_id,
                self._profile.admin_id,
            )  # fmt: skip
            steps.set_memo(f"{prefix}signature", teammate)
        # Held only when none of it went out yet: a retry that crossed the window's end after
        # sending some pieces does not hold (and later resend) what the customer has.
        sent_some = any(steps.touched(prefix + kind) for kind in ("text", "inline:", "media:"))
        if self._reengagement_due() and not sent_some:
            text = self._profile.reply_format.format(teammate=teammate, text=job.text)
            await self._hold_reply(steps, job, text if job.text else "", prefix, teammate)
            return
        content = reply_content(self._key, self._profile.reply_format, teammate, job)
        failure = await self._send(steps, content, job.attachments, prefix, job.conversation_id)
        if failure is not None:
            self._s.metrics.channel_sends.labels(self._key.channel.value, "undeliverable").inc()
        why = failure or doubt_reason(steps, prefix)
        if why is not None:
            await self._note(steps, job.conversation_id, job.assignee_id, why, prefix)

    def _reengagement_due(self) -> bool:
        """A teammate's reply must wait for a re-engagement template: WhatsApp Cloud API, the
        window closed, a template configured (else the reply fails as before, with a note)."""
        return (
            self._key.channel is Channel.WHATSAPP
            and self._s.options.whatsapp_reengagement_template is not None
            and (bool(self._state.held) or self._outside_whatsapp_window())
        )

    async def _hold_reply(
        self, steps: Steps, job: ReplyJob, text: str, prefix: str, teammate: str
    ) -> None:
        """Send the re-engagement template (once while replies are held) and hold the reply in
        the thread's state until the customer answers; a note says so."""
        settings = self._s.options
        name = settings.whatsapp_reengagement_template
        assert name is not None
        language = settings.whatsapp_reengagement_language
        if not self._state.held:
            why: str | None = None
            try:
                await self._s.templates.approved(name, language, self._key.account)
            except TemplateRefused as exc:
                why = f"the re-engagement template is not usable: {exc.reason}"
            except TemplatesUnavailable as exc:
                raise SendTransient(f"whatsapp templates unavailable: {exc}") from exc
            template = ApiTemplate.model_validate({"name": name, "language": {"code": language}})
            why = why or await self._send_template(
                steps, template, f"{prefix}reengage", job.conversation_id
            )
            if why is not None:
                self._s.metrics.channel_sends.labels(self._key.channel.value, "undeliverable").inc()
                reason = f"outside WhatsApp's 24-hour customer-service window, and {why}"
                await self._note(steps, job.conversation_id, job.assignee_id, reason, prefix)
                return
        if all(held.part_id != job.part_id for held in self._state.held):
            self._state.held.append(
                HeldReply(
                    part_id=job.part_id, conversation_id=job.conversation_id, text=text,
                    attachments=job.attachments, assignee_id=job.assignee_id, reply=job,
                    teammate=teammate,
                )
            )  # fmt: skip
        admin = await self._assignee_or_default(job.conversation_id, job.assignee_id)
        if admin is not None:
            note = (
                "The customer's 24-hour WhatsApp window has closed: Threadline sent the"
                f" re-engagement template {name} ({language}) and holds this reply; it goes out"
                " as soon as the customer answers."
            )
            await self._write_part(steps, f"{prefix}held", job.conversation_id, admin, note, "note")
        doubt = doubt_reason(steps, prefix)  # the template's send was cut off by a crash
        if doubt is not None:
            await self._note(steps, job.conversation_id, job.assignee_id, doubt, prefix)

    async def _deliver_held(self, entry: Entry) -> None:
        """The customer answered: send the replies held for them, in order, each piece a
        recorded step of this inbound entry (a crash resends nothing), then say so."""
        steps = await self._work.steps()
        held, delivered = list(self._state.held), 0
        for reply in held:
            prefix = f"held:{reply.part_id}:"
            if reply.reply is not None and reply.teammate is not None:
                reply_format = self._profile.reply_format
                content = reply_content(self._key, reply_format, reply.teammate, reply.reply)
            else:  # held by an older version: its plain text
                content = message_content(self._key, reply.text)
            if not content and not reply.attachments:
                continue  # nothing to send (an empty reply)
            failure = await self._send(
                steps, content, reply.attachments, prefix, reply.conversation_id
            )
            why = failure or doubt_reason(steps, prefix)
            if why is not None:
                await self._note(steps, reply.conversation_id, reply.assignee_id, why, prefix)
            else:
                delivered += 1
        last = held[-1]
        admin = await self._assignee_or_default(last.conversation_id, last.assignee_id)
        if admin is not None and delivered:
            note = (
                "The customer answered the re-engagement template: Threadline delivered the"
                f" {delivered} reply(ies) held for them."
            )
            await self._write_part(steps, "held-sent", last.conversation_id, admin, note, "note")
        self._state.held = []
