"""What every branch of the thread actor shares: its services, its state, the internal notes
and admin parts it writes in Intercom, and the helpers the branches have in common."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Final

from channels import SendRateLimited, SendTransient, ThreadKey
from intercom import (
    IntercomClient,
    IntercomNotFound,
    IntercomRateLimited,
    IntercomRejected,
    IntercomTransportError,
    IntercomUnavailable,
)
from runtime import Journal

from ..core import AccountProfile, BridgeMetrics, Settings, log_fields, thread_hash
from ..delivery import Steps, Work
from ._admins import AdminNames
from ._contacts import ContactResolver
from ._gateway import Gateway
from ._jobs import ThreadState, own_part_key
from ._marks import TagIds
from ._media import MediaStore
from ._templates import TemplateCatalog, outside_window

__all__ = [
    "CLOCK_SKEW",
    "INTERCOM_RETRYABLE",
    "OUTCOME_UNKNOWN",
    "SEND_RETRYABLE",
    "ContactGone",
    "ConversationGone",
    "Services",
    "ThreadBase",
    "again",
    "doubt_reason",
    "same_text",
]

logger = logging.getLogger("threadline.thread")

CLOCK_SKEW: Final = 60.0
"""Seconds by which this host's clock and Intercom's may differ, when comparing times."""


class ConversationGone(Exception):
    """Intercom answered 404 for the thread's conversation (deleted); retried, then replaced."""

    transient = True


#: Intercom errors after which a write may or may not have happened.
OUTCOME_UNKNOWN = (IntercomTransportError, IntercomUnavailable)


@dataclass(frozen=True, slots=True)
class ThreadOptions:
    """The settings a thread actor reads (``THREADLINE_*``; README), and nothing else."""

    conversation_buffer_seconds: float
    conversation_gone_retries: int
    intercom_default_admin_id: str | None
    intercom_timeout_seconds: float
    intercom_search_settle_seconds: float
    intercom_max_attachment_bytes: int
    max_attachments_per_message: int
    max_media_bytes: int
    media_download_timeout_seconds: float
    public_url: str
    reply_format: str
    whatsapp_reengagement_template: str | None
    whatsapp_reengagement_language: str
    intercom_run_assignment_rules: bool
    intercom_mark_read: bool

    @classmethod
    def of(cls, settings: Settings) -> ThreadOptions:
        """The thread actors' part of ``settings``."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


@dataclass
class Services:
    """What every thread actor shares."""

    options: ThreadOptions
    journal: Journal
    intercom: IntercomClient
    gateway: Gateway
    resolver: ContactResolver
    media: MediaStore
    metrics: BridgeMetrics
    profiles: Callable[[ThreadKey], AccountProfile]
    """The business account's profile (default operator, buffer, reply format, assignment,
    tags) of a thread: :meth:`Settings.account_profile`, looked up once per actor."""
    templates: TemplateCatalog = field(default_factory=lambda: TemplateCatalog(None, None))
    """The WhatsApp Business Account's templates (re-engagement)."""
    admin_names: AdminNames = field(default_factory=AdminNames)
    """Teammates' names for signatures (fetched once, cached)."""
    tag_ids: TagIds = field(default_factory=TagIds)
    """Intercom tag ids by name (asked once per name)."""


class ContactGone(Exception):
    """The thread's contact no longer exists in Intercom (deleted or merged)."""


SEND_RETRYABLE = (SendRateLimited, SendTransient)
"""Provider errors after which the send did not happen: the step may be sent again in the same
incarnation. Except :class:`SendInDoubt` (no answer in time: it may have been sent), which is
not repeated."""
INTERCOM_RETRYABLE = (IntercomRateLimited, IntercomRejected)
"""Intercom errors after which nothing was written."""


async def again(started_at: float) -> bool:
    """The lookup of an idempotent step found in doubt: do it again."""
    return False


def doubt_reason(steps: Steps, prefix: str = "") -> str | None:
    """The note for sends in doubt (their outcome was lost, and they are not repeated)."""
    if not any(name.startswith(prefix) for name in steps.in_doubt):
        return None
    return (
        "Threadline was interrupted while sending it and does not send it again, to avoid a"
        " duplicate; it may not have reached the customer"
    )


def same_text(stored: str, sent: str) -> bool:
    """Whether a part Intercom stored is the text the bridge sent (Intercom wraps it in HTML,
    which changes line breaks and spacing)."""
    return " ".join(stored.split()) == " ".join(sent.split())


class ThreadBase:
    """One thread's business state, and the parts every branch writes with it."""

    def __init__(self, key: str, services: Services) -> None:
        self._key_text = key
        self._key = ThreadKey.parse(key)
        self._s = services
        self._profile = services.profiles(self._key)
        self._state = ThreadState()
        self._gone_attempts: dict[int, int] = {}
        self._own_parts: deque[str] | None = None  # made on first use: most threads never do
        self._bridged: int | None = None  # the inbound entry whose message reached Intercom
        self._work: Work  # the entry at hand (set by perform before any branch runs)

    def restore(self, raw: bytes | None) -> None:
        """Take the thread's state as the journal has it (first entry, or a new tenure)."""
        self._state = ThreadState.decode(raw)
        self._bridged = None  # and the state read may predate it: bridge (or find) it again

    def snapshot(self) -> bytes:
        """The thread's state, committed with each entry."""
        return self._state.encode()

    def _own_part(self, part_id: str) -> None:
        """Remember a part the bridge wrote, so its webhook is never sent back out."""
        if self._own_parts is None:
            self._own_parts = deque(maxlen=256)
        self._own_parts.append(part_id)
        self._work.writes[own_part_key(part_id)] = b"1"

    def _outside_whatsapp_window(self) -> bool:
        """WhatsApp refuses free-form messages: the customer's latest message is over 24 hours
        old, or they never wrote (a conversation the send API started with a template)."""
        return outside_window(self._key, self._state.last_inbound_at)

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
                    and same_text(part.text, text)
                ):
                    self._own_part(part.id)
                    return True
            return False

        async def effect() -> str | None:
            await write()
            return None

        await steps.run(step, effect, retryable=INTERCOM_RETRYABLE, lookup=written)

    def _marking(
        self, conversation_id: str, what: str, call: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[str | None]]:
        """A recorded step's effect for a mark on the conversation (:mod:`._marks`): a refusal
        for good (4xx but 429) is logged and recorded as the step's failure, never the
        entry's: the message it marks went through."""

        async def effect() -> str | None:
            try:
                await call()
            except IntercomRejected as exc:
                logger.warning(
                    "thread %s: conversation %s not marked (%s): %s",
                    thread_hash(self._key_text), conversation_id, what, exc,
                    extra=log_fields(key=self._key_text),
                )  # fmt: skip
                return str(exc)
            return None

        return effect

    async def _mark_read(self, steps: Steps, step: str, conversation_id: str) -> None:
        """Mark the conversation read (``THREADLINE_INTERCOM_MARK_READ``), so that Intercom does
        not email the customer what the bridge delivered: idempotent, a recorded step."""

        async def read() -> None:
            await self._s.intercom.mark_conversation_read(conversation_id)

        effect = self._marking(conversation_id, "read", read)
        await steps.run(step, effect, retryable=(IntercomRateLimited,), lookup=again)

    async def _assignee_or_default(self, conversation_id: str, known: str | None) -> str | None:
        if known:
            return known
        try:
            conversation = await self._s.intercom.get_conversation(conversation_id)
        except IntercomNotFound:
            conversation = None
        if conversation is not None and conversation.admin_assignee_id:
            return conversation.admin_assignee_id
        return self._profile.admin_id
