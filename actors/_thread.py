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

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import httpx
import trio
from pydantic import ValidationError

from channels import (
    Channel,
    ChannelError,
    DownloadedMedia,
    InboundMessage,
    MediaRef,
    MediaTooLarge,
    OutboundMedia,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendRateLimited,
    SendRejected,
    SendTransient,
    ThreadKey,
)
from intercom import (
    AttachmentFile,
    IntercomClient,
    IntercomContactMerged,
    IntercomError,
    IntercomNotFound,
    IntercomRateLimited,
    IntercomTransportError,
    IntercomUnavailable,
)
from runtime import (
    Actor,
    ActorContext,
    Classifier,
    Decision,
    Entry,
    Journal,
    JournalUnavailable,
    RetryPolicy,
)

from ._cluster import Ownership
from ._contacts import ContactResolver
from ._gateway import ChannelClient, Gateway
from ._jobs import (
    ApiSendJob,
    InboundJob,
    OutboundAttachment,
    ReplyJob,
    ThreadState,
    conversation_index_key,
    decode_job,
    own_part_key,
    thread_state_key,
)
from ._media import MediaStore
from ._metrics import BridgeMetrics
from ._settings import Settings

__all__ = ["ConversationGone", "Services", "ThreadActor", "make_classifier"]

logger = logging.getLogger("threadline.thread")

WHATSAPP_WINDOW_SECONDS: Final = 24 * 3600.0


class ConversationGone(Exception):
    """Intercom answered 404 for the thread's conversation (deleted); retried, then replaced."""


class OwnershipUncertain(Exception):
    """The partition's lease must be renewed before its entries may be delivered: wait."""


class DeliveryInDoubt(Exception):
    """A delivery was cut off when the lease's validity ran out; what it sent may still land.
    Wait ``seconds`` (the same margin a next owner gets) before looking for it and retrying."""

    def __init__(self, entry_id: int, seconds: float) -> None:
        super().__init__(f"entry {entry_id} was cut off mid-delivery; settling for {seconds:.1f} s")
        self.seconds = seconds


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


def make_classifier(policy: RetryPolicy) -> Classifier:
    """The thread actors' ``classify(exc, attempt)``."""

    def classify(exc: Exception, attempt: int) -> Decision:
        if isinstance(exc, DeliveryInDoubt):
            return Decision.retry(exc.seconds, "delivery in doubt")
        if isinstance(exc, OwnershipUncertain):
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
        self._own_parts: deque[str] | None = None  # made on first use: most threads never do
        self._in_doubt: dict[int, float] = {}  # entry id -> when (Trio clock) it has settled

    async def _load_state(self, tenure: int | None) -> None:
        raw = await self._s.journal.get_state(thread_state_key(self._key_text))
        self._state = ThreadState.decode(raw)
        self._tenure = tenure

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
        self._extra_state = {}
        job = decode_job(entry.payload)
        with ownership.guard(entry.partition) as guard:
            if isinstance(job, InboundJob):
                await self._inbound(entry, job.message)
                direction, outcome = "inbound", "delivered"
            elif isinstance(job, ReplyJob):
                direction = "outbound"
                sent = await self._teammate_reply(entry, job)
                outcome = "delivered" if sent else "skipped"
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
                "entry %d: partition %d moved; left to its new owner", entry.id, entry.partition
            )
            self._tenure = -1  # our state may be stale: reload it if the partition comes back
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

    async def _contact_gone(self, message: InboundMessage) -> None:
        await self._s.resolver.forget(message)
        self._state.contact_id = None
        self._state.conversation_id = None

    def _new_conversation_reason(self, sent_at: float) -> str | None:
        if self._state.conversation_id is None:
            return "first_message"
        buffer = self._s.settings.conversation_buffer_seconds
        last = self._state.last_inbound_at
        if buffer > 0 and last is not None and sent_at - last > buffer:
            return "buffer_expired"
        return None

    async def _deliver_inbound(
        self, entry: Entry, sent_at: float, body: str, files: list[AttachmentFile]
    ) -> None:
        intercom = self._s.intercom
        contact_id = self._state.contact_id
        assert contact_id is not None
        reason = self._new_conversation_reason(sent_at)
        if reason is None:
            conversation_id = self._state.conversation_id
            assert conversation_id is not None
            if await self._already_delivered(entry, conversation_id, contact_id, body):
                return
            try:
                result = await intercom.reply_as_contact(
                    conversation_id, contact_id, body, attachment_files=files
                )
                part = result.last_part
                self._state.last_part_id = part.id if part is not None else None
                return
            except IntercomNotFound:
                if await self._conversation_exists(conversation_id):
                    raise _ContactGone() from None
                tries = self._gone_attempts.get(entry.id, 0) + 1
                self._gone_attempts[entry.id] = tries
                if tries <= self._s.settings.conversation_gone_retries:
                    raise ConversationGone(conversation_id) from None
                reason = "conversation_gone"
        try:
            conversation_id = await intercom.create_conversation(
                contact_id,
                body if not files else (body or _files_caption(files)),
                role=self._state.contact_role,
            )
        except IntercomNotFound:
            raise _ContactGone() from None
        self._s.metrics.conversations_created.labels(reason).inc()
        self._state.conversation_id = conversation_id
        self._state.last_part_id = None
        # Remember the new conversation at once, so that a crash before the entry's commit
        # replies in it instead of opening another one. Best effort: the commit writes it too,
        # and a retry within this incarnation knows it already.
        index = {conversation_index_key(conversation_id): self._key_text.encode()}
        self._extra_state.update(index)
        try:
            await self._s.journal.put_state(
                {thread_state_key(self._key_text): self._state.encode(), **index}
            )
        except JournalUnavailable as exc:
            logger.warning("conversation %s not recorded early: %s", conversation_id, exc)
        if files:
            result = await intercom.reply_as_contact(
                conversation_id, contact_id, _files_caption(files), attachment_files=files
            )
            part = result.last_part
            self._state.last_part_id = part.id if part is not None else None

    async def _already_delivered(
        self, entry: Entry, conversation_id: str, contact_id: str, body: str
    ) -> bool:
        """An entry older than our tenure over its partition may already have reached Intercom
        without its completion being committed: by this process before a crash, or by the
        partition's previous owner (which may have delivered several before its lease ran
        out). Its part would follow the last part recorded as delivered: look for it there
        before sending the message a second time."""
        if (
            entry.created_at >= self._s.ownership.since(entry.partition)
            and entry.id not in self._in_doubt
        ):
            return False
        try:
            conversation = await self._s.intercom.get_conversation(conversation_id)
        except IntercomNotFound:
            return False
        parts = list(conversation.parts)
        known = self._state.last_part_id
        if known is not None:
            ids = [p.id for p in parts]
            parts = parts[ids.index(known) + 1 :] if known in ids else []
        for part in parts:
            if part.author.id == contact_id and part.text.strip() == body.strip():
                self._state.last_part_id = part.id
                logger.info(
                    "entry %d was delivered before the restart; not sending again", entry.id
                )
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
        lines = [message.text] if message.text else []
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
                    logger.error("oversize attachment not stored: %s", exc)
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
        """Send a teammate's reply; False when it is not to be sent (our own part)."""
        journal = self._s.journal
        if self._own_parts is not None and job.part_id in self._own_parts:
            return False
        if await journal.get_state(own_part_key(job.part_id)) is not None:
            return False
        if self._state.conversation_id is None:
            self._state.conversation_id = job.conversation_id
        text = self._s.settings.reply_format.format(
            teammate=job.admin_name or "Support", text=job.text
        )
        failure = await self._send(text if job.text else None, job.attachments)
        if failure is not None:
            await self._note(job.conversation_id, job.assignee_id, failure)
            self._s.metrics.channel_sends.labels(self._key.channel.value, "undeliverable").inc()
        return True

    async def _api_send(self, entry: Entry, job: ApiSendJob) -> None:
        conversation_id = self._state.conversation_id
        failure = await self._send(job.text or None, job.attachments)
        if conversation_id is None:
            return
        if failure is not None:
            await self._note(conversation_id, None, failure)
            return
        admin = job.admin_id or await self._assignee_or_default(conversation_id, None)
        if admin is None:
            return
        files_text = "".join(f"\n📎 {a.filename or a.url}" for a in job.attachments)
        result = await self._s.intercom.reply_as_admin(
            conversation_id, admin, (job.text + files_text).strip(), message_type="comment"
        )
        part = result.last_part
        if part is not None:
            self._own_part(part.id)

    async def _send(
        self, text: str | None, attachments: tuple[OutboundAttachment, ...]
    ) -> str | None:
        """Send to the customer. Returns why it failed for good, or None when it was sent."""
        channel = self._key.channel
        client = self._s.gateway.client(channel)
        if client is None:
            return f"the {channel.value} channel is not configured on the bridge"
        if self._outside_whatsapp_window():
            return "outside WhatsApp's 24-hour customer-service window (a template is needed)"
        metrics = self._s.metrics
        try:
            if text:
                await client.send_text(self._key, text)
            for attachment in attachments:
                media = OutboundMedia(
                    mime_type=attachment.mime_type, filename=attachment.filename, url=attachment.url
                )
                await client.send_media(self._key, media)
        except OutsideCustomerWindow:
            return "outside WhatsApp's 24-hour customer-service window (a template is needed)"
        except RecipientUnavailable as exc:
            return f"the customer cannot be reached on {channel.value} ({_reason(exc)})"
        except SendRejected as exc:
            return f"{channel.value} refused the message ({_reason(exc)})"
        metrics.channel_sends.labels(channel.value, "sent").inc()
        return None

    def _outside_whatsapp_window(self) -> bool:
        is_whatsapp = self._key.channel is Channel.WHATSAPP or (
            self._key.channel is Channel.TWILIO and self._key.customer.startswith("whatsapp:")
        )
        last = self._state.last_inbound_at
        return is_whatsapp and last is not None and time.time() - last > WHATSAPP_WINDOW_SECONDS

    async def _note(self, conversation_id: str, assignee: str | None, why: str) -> None:
        """Leave an internal note saying why a message did not reach the customer."""
        admin = await self._assignee_or_default(conversation_id, assignee)
        if admin is None:
            logger.warning("cannot leave a note: no assignee and no default admin configured")
            return
        result = await self._s.intercom.reply_as_admin(
            conversation_id,
            admin,
            f"Threadline could not deliver this message to the customer: {why}.",
            message_type="note",
        )
        part = result.last_part
        if part is not None:
            self._own_part(part.id)

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
