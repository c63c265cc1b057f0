"""The inbound branch: customer → Intercom.

::

    inbound : resolve contact → pick conversation (existing │ buffer expired │ gone)
              → create, or reply as the contact (+ attachments)

Creating a conversation is a recorded intent (exactly once); an entry that may already have
reached Intercom (older than this node's tenure, or in doubt) is looked for before it is sent
again."""

from __future__ import annotations

import functools
import logging
import time

from channels import Channel, InboundMessage, shorten
from intercom import (
    AttachmentFile,
    Conversation,
    IntercomContactMerged,
    IntercomError,
    IntercomNotFound,
    IntercomRateLimited,
    IntercomRejected,
    IntercomTransportError,
)
from runtime import Entry, JournalUnavailable

from ..core import log_fields, thread_hash
from ..delivery import InDoubt
from ._attachments import prepare
from ._base import (
    CLOCK_SKEW,
    OUTCOME_UNKNOWN,
    ContactGone,
    ConversationGone,
    ThreadBase,
    again,
    same_text,
)
from ._jobs import conversation_index_key, opening_key, thread_state_key

__all__ = ["InboundBranch"]

logger = logging.getLogger("threadline.thread")


class InboundBranch(ThreadBase):
    """A customer's message, bridged into their Intercom conversation."""

    async def _inbound(self, entry: Entry, message: InboundMessage) -> None:
        body, files = await prepare(message, self._state, self._s, self._key_text)
        sent_at = message.sent_at.timestamp()
        for _ in range(2):  # a second pass after re-resolving a merged or deleted contact
            if self._state.contact_id is None:
                contact = await self._s.resolver.resolve(message)
                self._state.contact_id, self._state.contact_role = contact.id, contact.role
            try:
                await self._deliver_inbound(entry, sent_at, body, files)
            except IntercomContactMerged as merged:
                if merged.canonical_id is None:
                    await self._contact_gone(message)
                else:  # Intercom moved the conversations too: carry on as the merged contact
                    contact = await self._s.resolver.adopt(message, merged.canonical_id)
                    self._state.contact_id, self._state.contact_role = contact.id, contact.role
                continue
            except ContactGone:
                await self._contact_gone(message)
                continue
            break
        else:
            raise IntercomNotFound("the contact vanished twice while delivering", status=404)
        self._state.last_inbound_at = max(sent_at, self._state.last_inbound_at or 0.0)
        self._state.remember(message.provider_message_id, _summary(message))
        if message.reply_token and sent_at >= (self._state.reply_token_at or 0.0):
            self._state.reply_token, self._state.reply_token_at = message.reply_token, sent_at
        if message.opt_out in ("stop", "start"):
            await self._opt_out_changed(entry, message.opt_out == "stop", message.text or "")

    async def _opt_out_changed(self, entry: Entry, opted_out: bool, keyword: str) -> None:
        """Record an SMS opt-out (or opt-in) and say so in the conversation, after the
        customer's message itself. The note is best effort: the message is delivered already,
        and a retry of the entry must not deliver it again."""
        self._state.opted_out = opted_out
        conversation_id = self._state.conversation_id
        if conversation_id is None:
            return
        said = f'they replied "{keyword.strip()[:40]}"'
        text = (
            f"The customer opted out of SMS ({said}): Threadline sends them nothing on this"
            " number until they reply START; replies leave a note instead."
            if opted_out
            else f"The customer opted back in to SMS ({said}): replies reach them again."
        )
        if self._key.channel is Channel.LINE:  # an unfollow, or a follow that unblocked
            text = (
                "The customer blocked the LINE account: Threadline sends them nothing until"
                " they unblock it; replies leave a note instead."
                if opted_out
                else "The customer unblocked the LINE account: replies reach them again."
            )
        try:
            admin = await self._assignee_or_default(conversation_id, None)
            if admin is None:
                logger.warning("cannot leave a note: no assignee and no default admin configured")
                return
            steps = await self._work.steps()
            await self._write_part(steps, "opt-out-note", conversation_id, admin, text, "note")
        except (IntercomError, JournalUnavailable) as exc:
            logger.warning("thread %s: opt-out note not written: %s", self._key_text, exc)

    async def _contact_gone(self, message: InboundMessage) -> None:
        await self._s.resolver.forget(message)
        self._state.contact_id = None
        self._state.conversation_id = None

    def _new_conversation_reason(self, sent_at: float) -> str | None:
        if self._state.conversation_id is None:
            return "first_message"
        buffer = self._profile.buffer_seconds
        # Silence in both directions: the customer's last message or our last send to them.
        state = self._state
        last = max((t for t in (state.last_inbound_at, state.last_outbound_at) if t), default=None)
        if buffer > 0 and last is not None and sent_at - last > buffer:
            return "buffer_expired"
        return None

    async def _deliver_inbound(
        self, entry: Entry, sent_at: float, body: str, files: list[AttachmentFile]
    ) -> None:
        contact_id = self._state.contact_id
        assert contact_id is not None
        opened = self._state.conversation_id
        if opened is not None and self._state.opened_by_entry == entry.id:
            # An earlier attempt of this entry opened the conversation with its text: only its
            # marks and files may be missing (never a second conversation, never the text).
            await self._mark_conversation(opened, found=True)
            caption = _files_caption(files)
            if files and not await self._already_delivered(
                entry, opened, contact_id, caption, force=True
            ):
                await self._reply_as_contact(entry, opened, contact_id, caption, files)
            return
        reason = self._new_conversation_reason(sent_at)
        if reason is None:
            conversation_id = self._state.conversation_id
            assert conversation_id is not None
            if await self._already_delivered(entry, conversation_id, contact_id, body):
                return
            try:
                await self._reply_as_contact(entry, conversation_id, contact_id, body, files)
                return
            except IntercomNotFound:
                if await self._conversation_exists(conversation_id):
                    raise ContactGone() from None
                tries = self._gone_attempts.get(entry.id, 0) + 1
                self._gone_attempts[entry.id] = tries
                if tries <= self._s.options.conversation_gone_retries:
                    raise ConversationGone(conversation_id) from None
                reason = "conversation_gone"
        first_body = body if not files else (body or _files_caption(files))
        conversation_id, adopted = await self._open_conversation(
            entry, contact_id, first_body, reason
        )
        await self._mark_conversation(conversation_id, found=adopted is not None)
        if adopted is not None and not same_text(adopted.source_text, first_body):
            # Opened by an earlier message whose entry did not finish: this one follows it.
            if not await self._already_delivered(
                entry, conversation_id, contact_id, body, force=True
            ):
                await self._reply_as_contact(entry, conversation_id, contact_id, body, files)
            return
        caption = _files_caption(files)
        if files and not (
            adopted is not None
            and await self._already_delivered(
                entry, conversation_id, contact_id, caption, force=True
            )
        ):
            await self._reply_as_contact(entry, conversation_id, contact_id, caption, files)

    async def _reply_as_contact(
        self,
        entry: Entry,
        conversation_id: str,
        contact_id: str,
        body: str,
        files: list[AttachmentFile],
    ) -> None:
        try:
            result = await self._s.intercom.reply_as_contact(
                conversation_id, contact_id, body, attachment_files=files
            )
        except OUTCOME_UNKNOWN as exc:
            # Intercom may have stored the part: the next attempt looks for it first — after a
            # lost connection or a timeout, once the request had time to finish there.
            settle = 0.0
            if isinstance(exc, IntercomTransportError):
                settle = min(self._s.options.intercom_timeout_seconds, 10.0)
            self._work.doubt(settle)
            raise
        part = result.last_part
        self._state.last_part_id = part.id if part is not None else None

    async def _open_conversation(
        self, entry: Entry, contact_id: str, first_body: str, reason: str
    ) -> tuple[str, Conversation | None]:
        """A new conversation from the contact, starting with ``first_body``, as a recorded
        step: its intent is committed before ``POST /conversations`` and replaced by its id
        after. An intent found here means an earlier attempt's outcome was lost: that
        conversation is looked for (Intercom's search lags) before another is created.
        Returns the conversation's id, and the conversation when it was found, not created."""
        intercom, state = self._s.intercom, self._state
        if state.conversation_intent_at is not None:
            found = await intercom.find_conversations_of_contact(
                contact_id, created_since=int(state.conversation_intent_at - CLOCK_SKEW)
            )
            adopted = await self._adoptable(found, contact_id, first_body)
            if adopted is not None:
                logger.info(
                    "thread %s: conversation %s was created before an interruption; using it",
                    thread_hash(self._key_text), adopted.id,
                    extra=log_fields(key=self._key_text, entry_id=entry.id),
                )  # fmt: skip
                opened_here = same_text(adopted.source_text, first_body)
                self._record_conversation(adopted.id, entry if opened_here else None)
                self._work.writes[opening_key(contact_id)] = None
                await self._work.save_early()
                return adopted.id, adopted
            settles_at = (
                state.conversation_intent_at + self._s.options.intercom_search_settle_seconds
            )
            now = time.time()
            if now < settles_at:
                raise InDoubt(f"the conversation of {self._key_text}", min(settles_at - now, 5.0))
        # In memory only once durable: a failed write leaves no intent to doubt.
        intent = state.model_copy(update={"conversation_intent_at": time.time()})
        await self._s.journal.put_state(
            {
                thread_state_key(self._key_text): intent.encode(),
                opening_key(contact_id): f"{intent.conversation_intent_at:.3f}".encode(),
            }
        )
        state.conversation_intent_at = intent.conversation_intent_at
        try:
            conversation_id = await intercom.create_conversation(
                contact_id, first_body, role=state.contact_role
            )
        except IntercomNotFound:
            state.conversation_intent_at = None
            raise ContactGone() from None
        except (IntercomRateLimited, IntercomRejected):
            state.conversation_intent_at = None  # refused: nothing was created
            raise
        self._s.metrics.conversations_created.labels(reason).inc()
        self._record_conversation(conversation_id, entry)
        self._work.writes[opening_key(contact_id)] = None  # recorded with the index
        # Record the new conversation at once, so that a crash before the entry's commit
        # replies in it instead of opening another one. Should this write fail, the commit
        # writes it too; a crash before either leaves the intent, which finds it.
        try:
            await self._work.save_early()
        except JournalUnavailable as exc:
            logger.warning(
                "conversation %s not recorded early: %s", conversation_id, exc,
                extra=log_fields(key=self._key_text, entry_id=entry.id),
            )  # fmt: skip
        return conversation_id, None

    async def _mark_conversation(self, conversation_id: str, *, found: bool) -> None:
        """The account's marks on the conversation this entry opened (:mod:`._marks`): its
        tags, the assignment rules, its team and teammate, its read state; each a recorded
        step. ``found``: an earlier attempt (or entry) may have assigned it already, so an
        assignment first looks at the conversation's assignees."""
        profile, options = self._profile, self._s.options
        if not (
            profile.tags
            or profile.team_id
            or profile.assignee_id
            or options.intercom_run_assignment_rules
            or options.intercom_mark_read
        ):
            return
        intercom = self._s.intercom
        steps = await self._work.steps()
        admin = profile.admin_id

        async def assigned(to: str, assignee: str) -> bool:
            conversation = await intercom.get_conversation(conversation_id)
            if to == "team":
                return conversation.team_assignee_id == assignee
            return conversation.admin_assignee_id == assignee

        mark = functools.partial(self._marking, conversation_id)
        retryable = (IntercomRateLimited,)
        needs_admin = bool(profile.tags or profile.team_id or profile.assignee_id)
        if admin is None and needs_admin:
            logger.warning(
                "thread %s: conversation %s not tagged nor assigned: no default admin"
                " (THREADLINE_INTERCOM_DEFAULT_ADMIN_ID) to do it as",
                thread_hash(self._key_text), conversation_id,
                extra=log_fields(key=self._key_text),
            )  # fmt: skip
        if admin is not None:
            for tag in profile.tags:

                async def apply(tag: str = tag, admin: str = admin) -> None:
                    tag_id = await self._s.tag_ids.id_of(intercom, tag)
                    await intercom.tag_conversation(conversation_id, tag_id, admin)

                await steps.run(f"mark:tag:{tag}", mark(f"tag {tag}", apply),
                                retryable=retryable, lookup=again)  # fmt: skip
        if options.intercom_run_assignment_rules:

            async def rules() -> None:
                await intercom.run_assignment_rules(conversation_id)

            async def ruled(started_at: float) -> bool:
                conversation = await intercom.get_conversation(conversation_id)
                return bool(conversation.team_assignee_id or conversation.admin_assignee_id)

            await steps.run("mark:rules", mark("assignment rules", rules),
                            retryable=retryable, lookup=ruled)  # fmt: skip
        if admin is not None:
            for to, assignee in (("team", profile.team_id), ("admin", profile.assignee_id)):
                if assignee is None:
                    continue

                async def assign(
                    to: str = to, assignee: str = assignee, admin: str = admin
                ) -> None:
                    if found and await assigned(to, assignee):
                        return  # an earlier attempt's assignment, not recorded
                    await intercom.assign_conversation(conversation_id, admin, assignee, to=to)

                async def was_assigned(
                    started_at: float, to: str = to, assignee: str = assignee
                ) -> bool:
                    return await assigned(to, assignee)

                name = "team" if to == "team" else "assignee"
                await steps.run(f"mark:{name}", mark(f"assignment to {to} {assignee}", assign),
                                retryable=retryable, lookup=was_assigned)  # fmt: skip
        if options.intercom_mark_read:
            await self._mark_read(steps, "mark:read", conversation_id)

    async def _adoptable(
        self, found: list[Conversation], contact_id: str, first_body: str
    ) -> Conversation | None:
        """Of the contact's conversations created since an intent, the one that intent
        created: opened by the contact, bridged to no other thread (the contact may write on
        another channel too), preferably with this message as its first."""
        candidates = []
        for conversation in found:
            author = conversation.source_author
            if author is None or author.id != contact_id:
                continue  # a teammate's outbound conversation
            owner = await self._s.journal.get_state(conversation_index_key(conversation.id))
            if owner is not None and owner != self._key_text.encode():
                continue
            candidates.append(conversation)
        matching = [c for c in candidates if same_text(c.source_text, first_body)]
        best = matching or candidates
        return best[-1] if best else None

    def _record_conversation(self, conversation_id: str, entry: Entry | None) -> None:
        self._state.conversation_id = conversation_id
        self._state.opened_by_entry = None if entry is None else entry.id
        self._state.conversation_intent_at = None
        self._state.last_part_id = None
        self._work.writes[conversation_index_key(conversation_id)] = self._key_text.encode()

    async def _save_state_early(self) -> None:
        """Commit the thread's state (and the conversation index) before the entry is done."""
        state = {thread_state_key(self._key_text): self._state.encode(), **self._work.writes}
        await self._s.journal.put_state(state)

    async def _already_delivered(
        self, entry: Entry, conversation_id: str, contact_id: str, body: str, *, force: bool = False
    ) -> bool:
        """An entry older than our tenure over its partition may already have reached Intercom
        without its completion being committed: by this process before a crash, or by the
        partition's previous owner (which may have delivered several before its lease ran
        out). Its part would follow the last part recorded as delivered: look for it there
        before sending the message a second time."""
        if not force and entry.created_at >= self._work.since and not self._work.doubted:
            return False
        try:
            conversation = await self._s.intercom.get_conversation(conversation_id)
        except IntercomNotFound:
            return False
        parts = list(conversation.parts)
        known = self._state.last_part_id
        source = conversation.source_author
        if (
            known is None
            and source is not None
            and source.id == contact_id
            and same_text(conversation.source_text, body)
        ):
            # The conversation was opened with this message (it is the source, not a part):
            # its creation was recorded, its entry's completion was not.
            logger.info(
                "entry %d opened its conversation before the restart", entry.id,
                extra=log_fields(key=self._key_text, entry_id=entry.id),
            )  # fmt: skip
            return True
        if known is not None:
            ids = [p.id for p in parts]
            parts = parts[ids.index(known) + 1 :] if known in ids else []
        for part in parts:
            if part.author.id == contact_id and same_text(part.text, body):
                self._state.last_part_id = part.id
                logger.info(
                    "entry %d was delivered before the restart; not sending again", entry.id,
                    extra=log_fields(key=self._key_text, entry_id=entry.id),
                )  # fmt: skip
                return True
        return False

    async def _conversation_exists(self, conversation_id: str) -> bool:
        try:
            await self._s.intercom.get_conversation(conversation_id)
        except IntercomNotFound:
            return False
        return True


def _summary(message: InboundMessage) -> str:
    """What a quote of ``message`` shows (nothing for reactions and unsupported types)."""
    if message.text:
        return shorten(message.text)
    if message.attachments:
        return f"[{message.attachments[0].kind.value}]"
    if message.location is not None:
        return "📍 location"
    if message.contacts:
        return shorten(f"👤 contact card: {message.contacts[0].name or ''}")
    return ""


def _files_caption(files: list[AttachmentFile]) -> str:
    return ", ".join(f"📎 {name}" for name, _, _ in files)
