"""The thread actor: one per ``(channel, business account, customer)``, strictly in order.

::

    entry ─► inbound  : resolve contact → pick conversation (existing │ buffer expired │ gone)
                        → create, or reply as the contact (+ attachments) → complete entry
          ─► reply    : teammate comment → send on the channel as "{teammate}: {text}"
                        (+ attachments) → complete; failed for good → internal note → complete
          ─► api_send : send on the channel → record as an admin reply → complete

Every Intercom and provider call may raise; :func:`classify` decides what the runtime does: a
transient failure (429, 5xx, timeouts, the journal being down) is retried with backoff that
honours Retry-After; a deleted conversation is retried a few times and then replaced; anything
else is given up to the dead letters (the give-up hook buries the entry). The actor's state
(contact, conversation, last activity) lives in the journal, written with the entry's
completion, so a passivated or restarted actor resumes exactly where it was.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import httpx
import trio
from pydantic import ValidationError

from channels import (
    Channel,
    ChannelError,
    DownloadedMedia,
    InboundMessage,
    InlineImage,
    MediaHostForbidden,
    MediaRef,
    MediaTooLarge,
    MediaUnavailable,
    OutboundMedia,
    OutgoingText,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendInDoubt,
    SendRateLimited,
    SendRejected,
    SendTransient,
    ThreadKey,
    render_inbound,
    shorten,
)
from intercom import (
    AttachmentFile,
    Conversation,
    IntercomClient,
    IntercomContactMerged,
    IntercomError,
    IntercomNotFound,
    IntercomRateLimited,
    IntercomRejected,
    IntercomTransportError,
    IntercomUnavailable,
    is_teammate_message,
)
from runtime import (
    Actor,
    ActorContext,
    Classifier,
    Decision,
    DecisionKind,
    Entry,
    Journal,
    JournalUnavailable,
    RetryPolicy,
)

from ._admins import AdminNames
from ._cluster import Ownership
from ._contacts import ContactResolver
from ._doubt import InDoubt
from ._gateway import ChannelClient, Gateway
from ._jobs import (
    ApiSendJob,
    HeldReply,
    InboundJob,
    OutboundAttachment,
    ReplyJob,
    SentRecord,
    StatusJob,
    ThreadState,
    conversation_index_key,
    decode_job,
    opening_key,
    own_part_key,
    reply_job,
    sent_message_key,
    sent_part_key,
    thread_state_key,
)
from ._logging import LogLimiter, log_fields, thread_hash
from ._media import MediaStore
from ._metrics import BridgeMetrics
from ._outgoing import message_content, reply_content, send_steps
from ._receipts import describe_attachment, describe_text, failure_note, tracks_delivery
from ._settings import Settings
from ._steps import Outcome, Steps
from ._templates import (
    ApiTemplate,
    TemplateCatalog,
    TemplateRefused,
    TemplatesUnavailable,
    customer_phone,
    outside_window,
    record_text,
)

__all__ = ["ConversationGone", "Services", "ThreadActor", "make_classifier"]

logger = logging.getLogger("threadline.thread")

CLOCK_SKEW: Final = 60.0
"""Seconds by which this host's clock and Intercom's may differ, when comparing times."""


class ConversationGone(Exception):
    """Intercom answered 404 for the thread's conversation (deleted); retried, then replaced."""


class OwnershipUncertain(Exception):
    """The partition's lease must be renewed before its entries may be delivered: wait."""


class DeliveryInDoubt(InDoubt):
    """A delivery was cut off when the lease's validity ran out; what it sent may still land.
    Wait ``seconds`` (the same margin a next owner gets) before looking for it and retrying."""

    def __init__(self, entry_id: int, seconds: float) -> None:
        super().__init__(f"entry {entry_id}, cut off mid-delivery,", seconds)


#: Intercom errors after which a write may or may not have happened.
OUTCOME_UNKNOWN = (IntercomTransportError, IntercomUnavailable)


@dataclass
class Services:
    """What every thread actor shares."""

    settings: Settings
    journal: Journal
    intercom: IntercomClient
    gateway: Gateway
    resolver: ContactResolver
    media: MediaStore
    metrics: BridgeMetrics
    finish: Callable[[Entry, str, str], None]
    """Told ``(entry, direction, outcome)`` when an entry is finished (dispatcher, metrics)."""
    release: Callable[[Entry], None]
    """Told when an entry is left for another node (its partition moved)."""
    ownership: Ownership
    templates: TemplateCatalog = field(default_factory=lambda: TemplateCatalog(None, None))
    """The WhatsApp Business Account's templates (re-engagement)."""
    admin_names: AdminNames = field(default_factory=AdminNames)
    """Teammates' names for signatures (fetched once, cached)."""


def make_classifier(policy: RetryPolicy, limiter: LogLimiter | None = None) -> Classifier:
    """The thread actors' ``classify(exc, attempt)``. Transient failures (Intercom or a
    provider down, 429s, the journal) are logged through ``limiter``: one warning per kind
    every ``LOG_REPEAT_SECONDS``, with the count of those left out, however many threads
    retry."""
    limiter = limiter or LogLimiter()

    def classify(exc: Exception, attempt: int) -> Decision:
        decision = _classify(exc, attempt)
        if (
            decision.kind is DecisionKind.RETRY
            and decision.counts
            and not isinstance(exc, OwnershipUncertain)
        ):
            status = getattr(exc, "status", None)
            limiter.log(
                logger, logging.WARNING, f"retry:{decision.reason}",
                "delivery failed (%s%s); retrying with backoff",
                decision.reason, f", status {status}" if status else "",
                extra={"request_id": getattr(exc, "request_id", None)},
            )  # fmt: skip
        return decision

    def _classify(exc: Exception, attempt: int) -> Decision:
        # Waits, not failures: they do not spend the retry budget of a later real failure.
        if isinstance(exc, DeliveryInDoubt):
            return Decision.wait(exc.seconds, "delivery in doubt")
        if isinstance(exc, InDoubt):
            return Decision.wait(exc.seconds, "creation in doubt")
        if isinstance(exc, SendInDoubt):
            # Not a failure to count: the next attempt finds the send in doubt, leaves the
            # note and goes on (a last counted attempt would bury the entry without it).
            return Decision.wait(0.1, "send in doubt")
        if isinstance(exc, OwnershipUncertain):
            # Counted, so the pause grows to a second: thousands of live actors polling every
            # 0.1 s starved the very lease renewal they wait for.
            return Decision.retry(min(1.0, 0.1 * attempt), "lease renewal pending")
        if isinstance(exc, IntercomRateLimited):
            return policy.decide(
                attempt, retry_after=exc.retry_after or None, reason="intercom 429"
            )
        if isinstance(exc, SendRateLimited):
            return policy.decide(attempt, retry_after=exc.retry_after, reason="channel 429")
        if isinstance(exc, IntercomUnavailable | IntercomTransportError):
            return policy.decide(attempt, reason=f"intercom {type(exc).__name__}")
        if isinstance(exc, SendTransient | JournalUnavailable | ConversationGone):
            return policy.decide(attempt, reason=type(exc).__name__)
        if isinstance(exc, IntercomError | ChannelError | ValidationError):
            return Decision.discard(f"{type(exc).__name__}: {exc}"[:500])
        return Decision.crash(type(exc).__name__)

    return classify


class ThreadActor(Actor[Entry, None]):
    """Delivers one thread's journal entries, in order."""

    def __init__(self, ctx: ActorContext[Entry], services: Services) -> None:
        self._key_text = ctx.key
        self._key = ThreadKey.parse(ctx.key)
        self._s = services
        self._state = ThreadState()
        self._recent: deque[int] = deque(maxlen=64)
        self._gone_attempts: dict[int, int] = {}
        self._tenure: int | None = -1  # the partition tenure our state was loaded under
        self._uncommitted: tuple[int, str, str] | None = None
        self._extra_state: dict[str, bytes | None] = {}
        self._extra_for: int | None = None  # the entry _extra_state belongs to
        self._own_parts: deque[str] | None = None  # made on first use: most threads never do
        self._in_doubt: dict[int, float] = {}  # entry id -> when (Trio clock) it has settled
        self._steps: Steps | None = None  # the recorded steps of the outbound entry at hand
        self._bridged: int | None = None  # the inbound entry whose message reached Intercom

    async def _load_state(self, tenure: int | None) -> None:
        raw = await self._s.journal.get_state(thread_state_key(self._key_text))
        self._state = ThreadState.decode(raw)
        self._tenure = tenure
        self._steps = None  # recorded steps may have moved on elsewhere: read them again
        self._bridged = None  # and the state read may predate it: bridge (or find) it again

    async def handle(self, message: Entry) -> None:
        entry = message
        ownership = self._s.ownership
        if not ownership.owns(entry.partition):
            if ownership.may_own(entry.partition):
                # Our lease awaits its renewal: wait for the verdict rather than skip this
                # entry (a later one of the thread could then overtake it).
                raise OwnershipUncertain(entry.partition)
            self._s.release(entry)  # the partition moved: its new owner delivers this entry
            return
        if entry.id in self._recent:
            return  # delivered twice (a rescan raced a completion): already done
        settled = self._in_doubt.get(entry.id)
        if settled is not None and trio.current_time() < settled:
            raise DeliveryInDoubt(entry.id, settled - trio.current_time())
        if self._uncommitted is not None and self._uncommitted[0] == entry.id:
            # Delivered already; only the journal commit failed. Retry just the commit.
            _, direction, outcome = self._uncommitted
            await self._complete(entry, direction, outcome)
            return
        fence = ownership.fence(entry.partition)
        tenure = None if fence is None else fence.epoch
        if tenure != self._tenure:  # first entry, or the partition came back from elsewhere
            await self._load_state(tenure)
        if self._extra_for != entry.id:  # kept across retries of one entry: all of it commits
            self._extra_state, self._extra_for = {}, entry.id
        job = decode_job(entry.payload)
        with ownership.guard(entry.partition) as guard:
            if isinstance(job, InboundJob):
                if self._bridged != entry.id:  # a retry after a held reply failed: bridged once
                    await self._inbound(entry, job.message)
                    self._bridged = entry.id
                if self._state.held:  # the customer answered a re-engagement template
                    await self._deliver_held(entry)
                direction, outcome = "inbound", "delivered"
            elif isinstance(job, ReplyJob):
                direction = "outbound"
                sent = await self._teammate_reply(entry, job)
                outcome = "delivered" if sent else "skipped"
            elif isinstance(job, StatusJob):
                noted = await self._delivery_failed(entry, job)
                direction, outcome = "status", "delivered" if noted else "skipped"
            else:
                await self._api_send(entry, job)
                direction, outcome = "api", "delivered"
        if guard.cancelled_caught:
            # The lease's validity ran out mid-delivery (renewals starved or failing). What was
            # sent may still land: whoever delivers this entry next must look for it first, and
            # only once it had time to land (a next owner gets that margin from the lease).
            margin = ownership.handover_margin
            self._in_doubt[entry.id] = trio.current_time() + margin
            logger.warning(
                "entry %d of partition %d: delivery cut off as the lease's validity ran out;"
                " checking for it again in %.1f s", entry.id, entry.partition, margin,
                extra=log_fields(key=self._key_text, entry_id=entry.id),
            )  # fmt: skip
            raise DeliveryInDoubt(entry.id, margin)
        self._in_doubt.pop(entry.id, None)
        self._gone_attempts.pop(entry.id, None)
        self._uncommitted = (entry.id, direction, outcome)
        await self._complete(entry, direction, outcome)

    async def _complete(self, entry: Entry, direction: str, outcome: str) -> None:
        """Mark the entry done with the thread's state, under the partition's fence."""
        state: dict[str, bytes | None] = {thread_state_key(self._key_text): self._state.encode()}
        state.update(self._extra_state)
        fence = self._s.ownership.fence(entry.partition)
        committed = await self._s.journal.complete(entry.id, state=state, fence=fence)
        self._uncommitted = None
        self._extra_state = {}
        if not committed:
            # Another node took the partition over while we worked: it owns the entry now.
            logger.warning(
                "entry %d: partition %d moved; left to its new owner", entry.id, entry.partition,
                extra=log_fields(key=self._key_text, entry_id=entry.id),
            )  # fmt: skip
            self._tenure = -1  # our state may be stale: reload it if the partition comes back
            self._steps = None
            self._s.release(entry)
            return
        self._recent.append(entry.id)
        self._s.finish(entry, direction, outcome)

    def _own_part(self, part_id: str) -> None:
        """Remember a part the bridge wrote, so its webhook is never sent back out."""
        if self._own_parts is None:
            self._own_parts = deque(maxlen=256)
        self._own_parts.append(part_id)
        self._extra_state[own_part_key(part_id)] = b"1"

    # --- inbound: customer → Intercom ---------------------------------------------------------

    async def _inbound(self, entry: Entry, message: InboundMessage) -> None:
        body, files = await self._prepare(message)
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
            except _ContactGone:
                await self._contact_gone(message)
                continue
            break
        else:
            raise IntercomNotFound("the contact vanished twice while delivering", status=404)
        self._state.last_inbound_at = max(sent_at, self._state.last_inbound_at or 0.0)
        self._state.remember(message.provider_message_id, _summary(message))
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
        try:
            admin = await self._assignee_or_default(conversation_id, None)
            if admin is None:
                logger.warning("cannot leave a note: no assignee and no default admin configured")
                return
            steps = await self._steps_of(entry)
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
        buffer = self._s.settings.conversation_buffer_seconds
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
            # files may be missing (never a second conversation, never the text again).
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
                    raise _ContactGone() from None
                tries = self._gone_attempts.get(entry.id, 0) + 1
                self._gone_attempts[entry.id] = tries
                if tries <= self._s.settings.conversation_gone_retries:
                    raise ConversationGone(conversation_id) from None
                reason = "conversation_gone"
        first_body = body if not files else (body or _files_caption(files))
        conversation_id, adopted = await self._open_conversation(
            entry, contact_id, first_body, reason
        )
        if adopted is not None and not _same_text(adopted.source_text, first_body):
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
                settle = min(self._s.settings.intercom_timeout_seconds, 10.0)
            self._in_doubt.setdefault(entry.id, trio.current_time() + settle)
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
                opened_here = _same_text(adopted.source_text, first_body)
                self._record_conversation(adopted.id, entry if opened_here else None)
                self._extra_state[opening_key(contact_id)] = None
                await self._save_state_early()
                return adopted.id, adopted
            settles_at = (
                state.conversation_intent_at + self._s.settings.intercom_search_settle_seconds
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
            raise _ContactGone() from None
        except (IntercomRateLimited, IntercomRejected):
            state.conversation_intent_at = None  # refused: nothing was created
            raise
        self._s.metrics.conversations_created.labels(reason).inc()
        self._record_conversation(conversation_id, entry)
        self._extra_state[opening_key(contact_id)] = None  # recorded with the index
        # Record the new conversation at once, so that a crash before the entry's commit
        # replies in it instead of opening another one. Should this write fail, the commit
        # writes it too; a crash before either leaves the intent, which finds it.
        try:
            await self._save_state_early()
        except JournalUnavailable as exc:
            logger.warning(
                "conversation %s not recorded early: %s", conversation_id, exc,
                extra=log_fields(key=self._key_text, entry_id=entry.id),
            )  # fmt: skip
        return conversation_id, None

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
        matching = [c for c in candidates if _same_text(c.source_text, first_body)]
        best = matching or candidates
        return best[-1] if best else None

    def _record_conversation(self, conversation_id: str, entry: Entry | None) -> None:
        self._state.conversation_id = conversation_id
        self._state.opened_by_entry = None if entry is None else entry.id
        self._state.conversation_intent_at = None
        self._state.last_part_id = None
        self._extra_state[conversation_index_key(conversation_id)] = self._key_text.encode()

    async def _save_state_early(self) -> None:
        """Commit the thread's state (and the conversation index) before the entry is done."""
        state = {thread_state_key(self._key_text): self._state.encode(), **self._extra_state}
        await self._s.journal.put_state(state)

    async def _already_delivered(
        self, entry: Entry, conversation_id: str, contact_id: str, body: str, *, force: bool = False
    ) -> bool:
        """An entry older than our tenure over its partition may already have reached Intercom
        without its completion being committed: by this process before a crash, or by the
        partition's previous owner (which may have delivered several before its lease ran
        out). Its part would follow the last part recorded as delivered: look for it there
        before sending the message a second time."""
        if (
            not force
            and entry.created_at >= self._s.ownership.since(entry.partition)
            and entry.id not in self._in_doubt
        ):
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
            and _same_text(conversation.source_text, body)
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
            if part.author.id == contact_id and _same_text(part.text, body):
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

    async def _prepare(self, message: InboundMessage) -> tuple[str, list[AttachmentFile]]:
        """The message's text for Intercom and the files to upload (downloaded now)."""
        settings = self._s.settings
        lines = render_inbound(message, self._state.recall(message.reply_to))
        if message.location is not None:
            loc = message.location
            label = " ".join(part for part in (loc.name, loc.address) if part)
            link = f"https://maps.google.com/?q={loc.latitude},{loc.longitude}"
            lines.append(f"📍 {label} {link}".replace("  ", " "))
        files: list[AttachmentFile] = []
        client = self._s.gateway.client(self._key.channel)
        attachments = message.attachments[: settings.max_attachments_per_message]
        if len(message.attachments) > len(attachments):
            skipped = len(message.attachments) - len(attachments)
            lines.append(f"[{skipped} more attachment(s) not bridged: limit reached]")
        for index, ref in enumerate(attachments):
            name = ref.filename or f"{ref.kind.value}-{index + 1}{_extension(ref.mime_type)}"
            if client is None:
                lines.append(f"[{ref.kind.value} not downloaded: channel not configured]")
                continue
            media = await _download(client, ref, name, settings)
            if isinstance(media, str):  # a placeholder: the message goes on without the file
                lines.append(media)
                continue
            mime = media.mime_type or ref.mime_type or "application/octet-stream"
            name = media.filename or name
            if len(media.content) > settings.intercom_max_attachment_bytes:
                try:
                    token = await self._s.media.save(media.content, mime, name)
                except OSError as exc:
                    logger.error(
                        "oversize attachment not stored: %s",
                        exc,
                        extra=log_fields(key=self._key_text),
                    )
                    lines.append(f"[{name}: too large to attach and could not be kept]")
                    continue
                url = f"{settings.public_url.rstrip('/')}/media/{token}"
                size = len(media.content) / (1024 * 1024)
                lines.append(f"📎 {name} ({size:.1f} MB, too large to attach): {url}")
                continue
            files.append((name, mime, media.content))
        return "\n".join(lines), files

    # --- outbound: teammate → customer --------------------------------------------------------

    async def _teammate_reply(self, entry: Entry, job: ReplyJob) -> bool:
        """Send a teammate's reply, after any earlier teammate parts of the conversation not
        sent yet (Intercom's webhooks come in no guaranteed order). False when nothing was to
        be sent (our own part, or sent already ahead of its own webhook)."""
        if await self._is_own_part(job.part_id) or await self._was_sent(job.part_id):
            return False
        if self._state.conversation_id is None:
            self._state.conversation_id = job.conversation_id
        steps = await self._steps_of(entry)
        due = await self._replies_due(job)
        for reply in due:
            await self._send_reply(steps, reply)
            self._state.last_reply_part_id = reply.part_id
            self._extra_state[sent_part_key(reply.part_id)] = b"1"
        return bool(due)

    async def _is_own_part(self, part_id: str) -> bool:
        if self._own_parts is not None and part_id in self._own_parts:
            return True
        return await self._s.journal.get_state(own_part_key(part_id)) is not None

    async def _was_sent(self, part_id: str) -> bool:
        """Whether the part was sent already (ahead of its own webhook, in part order)."""
        key = sent_part_key(part_id)
        return key in self._extra_state or await self._s.journal.get_state(key) is not None

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
            teammate = await self._s.admin_names.signature(  # actors/_admins.py: the order
                self._s.intercom, job.admin_name, job.admin_id,
                self._s.settings.intercom_default_admin_id,
            )  # fmt: skip
            steps.set_memo(f"{prefix}signature", teammate)
        # Held only when none of it went out yet: a retry that crossed the window's end after
        # sending some pieces does not hold (and later resend) what the customer has.
        sent_some = any(steps.touched(prefix + kind) for kind in ("text", "inline:", "media:"))
        if self._reengagement_due() and not sent_some:
            text = self._s.settings.reply_format.format(teammate=teammate, text=job.text)
            await self._hold_reply(steps, job, text if job.text else "", prefix, teammate)
            return
        content = reply_content(self._key, self._s.settings.reply_format, teammate, job)
        failure = await self._send(steps, content, job.attachments, prefix, job.conversation_id)
        if failure is not None:
            self._s.metrics.channel_sends.labels(self._key.channel.value, "undeliverable").inc()
        why = failure or _doubt_reason(steps, prefix)
        if why is not None:
            await self._note(steps, job.conversation_id, job.assignee_id, why, prefix)

    async def _api_send(self, entry: Entry, job: ApiSendJob) -> None:
        if self._state.conversation_id is None:
            await self._start_conversation(entry, job)
        conversation_id = self._state.conversation_id
        steps = await self._steps_of(entry)
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
        doubt = _doubt_reason(steps)
        if doubt is not None:
            await self._note(steps, conversation_id, None, doubt)

    async def _steps_of(self, entry: Entry) -> Steps:
        """The entry's recorded steps (loaded once per incarnation, deleted at completion)."""
        if self._steps is None or self._steps.entry_id != entry.id:
            self._steps = await Steps.load(self._s.journal, entry.id)
        self._extra_state[self._steps.key] = None
        return self._steps

    async def _send(
        self,
        steps: Steps,
        content: Sequence[OutgoingText | InlineImage],
        attachments: tuple[OutboundAttachment, ...],
        prefix: str = "",
        conversation_id: str | None = None,
    ) -> str | None:
        """Send to the customer, each piece a recorded step: ``content`` (text split to the
        channel's limit, inline images) then the attachments. Returns why it failed for good,
        or None when it was sent (or is in doubt and not sent again). What each piece was is
        remembered under its provider id, for a delivery failure reported later."""
        channel = self._key.channel
        client = self._s.gateway.client(channel)
        if client is None:
            return f"the {channel.value} channel is not configured on the bridge"
        if self._state.opted_out:
            return "the customer opted out of SMS (they replied STOP) and has not replied START"
        if self._outside_whatsapp_window():
            return "outside WhatsApp's 24-hour customer-service window (a template is needed)"
        media = [_outbound_media(attachment) for attachment in attachments]
        caption = _caption(client, self._key, content, media)
        pieces: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        described: dict[str, str] = {}  # what each piece is, for a failure reported later
        if caption is None:
            steps_of_content = send_steps(client, self._key, content, prefix)
            for (name, call), item in zip(steps_of_content, content, strict=True):
                if isinstance(item, OutgoingText):  # remembered: a customer may quote it
                    call = functools.partial(self._remembered, item.text, call)
                    described[name] = describe_text(item.text)
                else:
                    described[name] = f"the image {item.url}"
                pieces.append((name, call))
        for index, medium in enumerate(media):
            send: Callable[[], Awaitable[object]] = functools.partial(
                client.send_media, self._key, medium, caption=caption
            )
            what = describe_attachment(attachments[index])
            if caption is not None:
                send = functools.partial(self._remembered, caption, send)
                what += f" with the text {describe_text(caption)}"
            pieces.append((f"{prefix}media:{index}", send))
            described[f"{prefix}media:{index}"] = what
        conversation_id = conversation_id or self._state.conversation_id

        def sent(name: str, what: str | None = None) -> SentRecord | None:
            if conversation_id is None or not tracks_delivery(channel):
                return None
            return SentRecord(
                thread=self._key_text, conversation_id=conversation_id,
                part_id=prefix[:-1] or None, what=what or described.get(name, "a message"),
                sent_at=time.time(),
            )  # fmt: skip

        for name, call in pieces:
            result = await steps.run(
                name,
                functools.partial(self._deliver, call, sent(name)),
                retryable=_SEND_RETRYABLE,
                doubtful=(SendInDoubt,),
            )
            if result.outcome is Outcome.FAILED:
                if caption is not None:  # the text rode on the file that did not go: alone, then
                    call = functools.partial(client.send_text, self._key, caption)
                    await steps.run(
                        f"{prefix}text:0",
                        functools.partial(self._deliver, call, sent("", describe_text(caption))),
                        retryable=_SEND_RETRYABLE,
                        doubtful=(SendInDoubt,),
                    )
                return result.reason
        self._s.metrics.channel_sends.labels(channel.value, "sent").inc()
        self._state.last_outbound_at = time.time()  # activity on the thread (the buffer)
        return None

    async def _remembered(self, text: str, send: Callable[[], Awaitable[object]]) -> object:
        """Send, and remember the sent message's id and text (a customer may quote it)."""
        message_id = await send()
        self._state.remember(str(message_id), shorten(text))
        return message_id

    async def _deliver(
        self, call: Callable[[], Awaitable[object]], record: SentRecord | None = None
    ) -> str | None:
        """One provider send; why it was refused for good, or None. ``record`` is kept under
        the provider's id for the message, committed with the entry."""
        channel = self._key.channel.value
        try:
            provider_id = await call()
        except OutsideCustomerWindow:
            return "outside WhatsApp's 24-hour customer-service window (a template is needed)"
        except RecipientUnavailable as exc:
            return f"the customer cannot be reached on {channel} ({_reason(exc)})"
        except SendRejected as exc:
            return f"{channel} refused the message ({_reason(exc)})"
        except (MediaUnavailable, MediaTooLarge, MediaHostForbidden) as exc:
            return f"the attachment could not be fetched to upload it to {channel} ({exc})"
        if record is not None and isinstance(provider_id, str):
            # At once, for a status callback that names no thread and comes before the entry
            # commits (best effort: the entry's commit carries it too).
            sent = {sent_message_key(channel, provider_id): record.encode()}
            self._extra_state.update(sent)
            with contextlib.suppress(JournalUnavailable):
                await self._s.journal.put_state(sent)
        return None

    async def _delivery_failed(self, entry: Entry, job: StatusJob) -> bool:
        """A message the provider accepted did not arrive: a note in its conversation, as the
        assignee or the default operator. False when the bridge has no record of the message
        (sent by someone else, or past the retention)."""
        channel = self._key.channel.value
        key = sent_message_key(channel, job.provider_message_id)
        raw = await self._s.journal.get_state(key)
        if raw is None:
            self._s.metrics.delivery_failures.labels(channel, "unknown").inc()
            return False
        record = SentRecord.decode(raw)
        admin = await self._assignee_or_default(record.conversation_id, None)
        if admin is None:
            logger.warning("cannot leave a note: no assignee and no default admin configured")
            return False
        steps = await self._steps_of(entry)
        note = failure_note(record, job)
        await self._write_part(steps, "note", record.conversation_id, admin, note, "note")
        self._extra_state[key] = None  # noted: a later report of it has nothing to add
        self._s.metrics.delivery_failures.labels(channel, "noted").inc()
        return True

    def _outside_whatsapp_window(self) -> bool:
        """WhatsApp refuses free-form messages: the customer's latest message is over 24 hours
        old, or they never wrote (a conversation the send API started with a template)."""
        return outside_window(self._key, self._state.last_inbound_at)

    # --- templates: the send API, re-engagement (actors/_templates.py) ------------------------

    async def _send_template(
        self, steps: Steps, template: ApiTemplate, step: str, conversation_id: str | None = None
    ) -> str | None:
        """Send a WhatsApp template as a recorded step; why it failed for good, or None."""
        client = self._s.gateway.whatsapp
        if self._key.channel is not Channel.WHATSAPP or client is None:
            return "templates are sent on the whatsapp channel only"
        call = functools.partial(
            client.send_template, self._key, template.name, template.language.code,
            template.payload_components(),
        )  # fmt: skip
        conversation_id = conversation_id or self._state.conversation_id
        record = None  # kept under the wamid: a later "failed" status leaves a note
        if conversation_id is not None:
            record = SentRecord(
                thread=self._key_text, conversation_id=conversation_id,
                what=f"the WhatsApp template {template.name} ({template.language.code})",
                sent_at=time.time(),
            )  # fmt: skip
        result = await steps.run(
            step,
            functools.partial(self._deliver, call, record),
            retryable=_SEND_RETRYABLE,
            doubtful=(SendInDoubt,),  # no answer in time: it may have gone out, not resent
        )
        if result.outcome is Outcome.FAILED:
            return result.reason
        self._s.metrics.channel_sends.labels(self._key.channel.value, "sent").inc()
        self._state.last_outbound_at = time.time()  # activity on the thread (the buffer)
        return None

    async def _start_conversation(self, entry: Entry, job: ApiSendJob) -> None:
        """The send API to a customer without a conversation: resolve (or create) the contact
        and open the conversation as the inbound path does (recorded intents, exactly once);
        the message sent is then recorded in it as the admin's reply."""
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
                await self._open_conversation(entry, self._state.contact_id, opening, "api_send")
                return
            except _ContactGone:
                await self._contact_gone(message)
        raise IntercomNotFound(
            "the contact vanished twice while starting a conversation", status=404
        )

    def _reengagement_due(self) -> bool:
        """A teammate's reply must wait for a re-engagement template: WhatsApp Cloud API, the
        window closed, a template configured (else the reply fails as before, with a note)."""
        return (
            self._key.channel is Channel.WHATSAPP
            and self._s.settings.whatsapp_reengagement_template is not None
            and (bool(self._state.held) or self._outside_whatsapp_window())
        )

    async def _hold_reply(
        self, steps: Steps, job: ReplyJob, text: str, prefix: str, teammate: str
    ) -> None:
        """Send the re-engagement template (once while replies are held) and hold the reply in
        the thread's state until the customer answers; a note says so."""
        settings = self._s.settings
        name = settings.whatsapp_reengagement_template
        assert name is not None
        language = settings.whatsapp_reengagement_language
        if not self._state.held:
            why: str | None = None
            try:
                await self._s.templates.approved(name, language)
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
        doubt = _doubt_reason(steps, prefix)  # the template's send was cut off by a crash
        if doubt is not None:
            await self._note(steps, job.conversation_id, job.assignee_id, doubt, prefix)

    async def _deliver_held(self, entry: Entry) -> None:
        """The customer answered: send the replies held for them, in order, each piece a
        recorded step of this inbound entry (a crash resends nothing), then say so."""
        steps = await self._steps_of(entry)
        held, delivered = list(self._state.held), 0
        for reply in held:
            prefix = f"held:{reply.part_id}:"
            if reply.reply is not None and reply.teammate is not None:
                reply_format = self._s.settings.reply_format
                content = reply_content(self._key, reply_format, reply.teammate, reply.reply)
            else:  # held by an older version: its plain text
                content = message_content(self._key, reply.text)
            if not content and not reply.attachments:
                continue  # nothing to send (an empty reply)
            failure = await self._send(
                steps, content, reply.attachments, prefix, reply.conversation_id
            )
            why = failure or _doubt_reason(steps, prefix)
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

    async def _note(
        self, steps: Steps, conversation_id: str, assignee: str | None, why: str, prefix: str = ""
    ) -> None:
        """Leave an internal note saying why a message did not reach the customer."""
        admin = await self._assignee_or_default(conversation_id, assignee)
        if admin is None:
            logger.warning(
                "cannot leave a note: no assignee and no default admin configured",
                extra=log_fields(key=self._key_text),
            )
            return
        text = f"Threadline could not deliver this message to the customer: {why}."
        await self._write_part(steps, f"{prefix}note", conversation_id, admin, text, "note")

    async def _write_part(
        self, steps: Steps, step: str, conversation_id: str, admin: str, text: str, kind: str
    ) -> None:
        """Write an admin part (``comment`` or ``note``) as a recorded step: in doubt, it is
        looked for among the conversation's newest parts before being written again."""

        async def write() -> None:
            result = await self._s.intercom.reply_as_admin(
                conversation_id, admin, text, message_type=kind
            )
            part = result.last_part
            if part is not None:
                self._own_part(part.id)

        async def written(started_at: float) -> bool:
            conversation = await self._s.intercom.get_conversation(conversation_id)
            for part in reversed(conversation.parts):
                if (
                    part.author.id == admin
                    and part.part_type == kind
                    and (part.created_at is None or part.created_at >= started_at - CLOCK_SKEW)
                    and _same_text(part.text, text)
                ):
                    self._own_part(part.id)
                    return True
            return False

        async def effect() -> str | None:
            await write()
            return None

        await steps.run(step, effect, retryable=_INTERCOM_RETRYABLE, lookup=written)

    async def _assignee_or_default(self, conversation_id: str, known: str | None) -> str | None:
        if known:
            return known
        try:
            conversation = await self._s.intercom.get_conversation(conversation_id)
        except IntercomNotFound:
            conversation = None
        if conversation is not None and conversation.admin_assignee_id:
            return conversation.admin_assignee_id
        return self._s.settings.intercom_default_admin_id


MEDIA_DOWNLOAD_ATTEMPTS: Final = 3
"""Tries of one attachment failing transiently (5xx, 429, timeouts, transport), all within
``THREADLINE_MEDIA_DOWNLOAD_TIMEOUT_SECONDS``; then it becomes a placeholder."""


async def _download(
    client: ChannelClient, ref: MediaRef, name: str, settings: Settings
) -> DownloadedMedia | str:
    """The attachment, or the placeholder line saying why not: a failed or slow attachment never
    holds up or dead-letters its message. The whole download — the provider's lookup, connect,
    headers, body and the retries of transient failures — runs under one deadline."""
    timeout = settings.media_download_timeout_seconds
    failure: Exception | None = None
    with trio.move_on_after(timeout) as deadline:
        for attempt in range(1, MEDIA_DOWNLOAD_ATTEMPTS + 1):
            try:
                return await client.download(ref, max_bytes=settings.max_media_bytes)
            except MediaTooLarge:
                limit = settings.max_media_bytes // (1024 * 1024)
                return f"[{name}: larger than the {limit} MB download limit, not bridged]"
            except (SendTransient, SendRateLimited) as exc:
                failure = exc
                wait = getattr(exc, "retry_after", None) or 0.5 * 2 ** (attempt - 1)
                if attempt == MEDIA_DOWNLOAD_ATTEMPTS or trio.current_time() + wait >= (
                    deadline.deadline
                ):
                    break
                await trio.sleep(wait)
            except (ChannelError, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                failure = exc
                break
            except Exception as exc:  # a bug of ours must not cost the customer's text either
                logger.exception("attachment download failed unexpectedly")
                failure = exc
                break
    if deadline.cancelled_caught or failure is None:
        why = f"timed out after {timeout:g} s"
    elif isinstance(failure, ChannelError):
        text = str(failure)
        why = text.partition(": ")[2] or text  # without the "whatsapp media download: " prefix
    else:
        why = type(failure).__name__
    logger.warning("attachment not downloaded: %s", why[:120])
    return f"[{name}: could not be downloaded ({why[:120]})]"


class _ContactGone(Exception):
    """The thread's contact no longer exists in Intercom (deleted or merged)."""


_SEND_RETRYABLE = (SendRateLimited, SendTransient)
"""Provider errors after which the send did not happen: the step may be sent again in the same
incarnation. Except :class:`SendInDoubt` (no answer in time: it may have been sent), which is
not repeated."""
_INTERCOM_RETRYABLE = (IntercomRateLimited, IntercomRejected)
"""Intercom errors after which nothing was written."""


def _doubt_reason(steps: Steps, prefix: str = "") -> str | None:
    """The note for sends in doubt (their outcome was lost, and they are not repeated)."""
    if not any(name.startswith(prefix) for name in steps.in_doubt):
        return None
    return (
        "Threadline was interrupted while sending it and does not send it again, to avoid a"
        " duplicate; it may not have reached the customer"
    )


def _outbound_media(attachment: OutboundAttachment) -> OutboundMedia:
    return OutboundMedia(
        mime_type=attachment.mime_type, filename=attachment.filename, url=attachment.url
    )


def _caption(
    client: ChannelClient,
    key: ThreadKey,
    content: Sequence[OutgoingText | InlineImage],
    media: list[OutboundMedia],
) -> str | None:
    """The text as the caption of the only attachment, when it is one unstyled piece with no
    inline image and the channel takes a caption that long on that type of file (one message);
    None: the text goes first, on its own."""
    if len(media) != 1 or len(content) != 1:
        return None
    (only,) = content
    if not isinstance(only, OutgoingText) or only.spans or not only.text:
        return None
    return only.text if client.caption_fits(key, media[0], only.text) else None


def _same_text(stored: str, sent: str) -> bool:
    """Whether a part Intercom stored is the text the bridge sent (Intercom wraps it in HTML,
    which changes line breaks and spacing)."""
    return " ".join(stored.split()) == " ".join(sent.split())


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


def _extension(mime: str | None) -> str:
    known = {
        "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
        "application/pdf": ".pdf", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "video/mp4": ".mp4",
    }  # fmt: skip
    return known.get((mime or "").split(";", 1)[0].strip(), "")


def _reason(exc: ChannelError) -> str:
    return type(exc).__name__ if exc.code is None else f"code {exc.code}"
