"""What the bridge journals: one job per entry, JSON in the entry's payload.

Every job belongs to one thread key, so the journal orders a thread's inbound messages, its
teammates' replies and the messages sent through the API together.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from channels import InboundMessage
from intercom import ConversationPart

from ._templates import ApiTemplate

__all__ = [
    "ApiSendJob",
    "DIRECTIONS",
    "HeldReply",
    "InboundJob",
    "Job",
    "OutboundAttachment",
    "RECENT_MESSAGES",
    "ReplyJob",
    "SENT_MESSAGE_PREFIX",
    "SentRecord",
    "StatusJob",
    "ThreadState",
    "contact_intent_key",
    "conversation_index_key",
    "decode_job",
    "direction_of",
    "encode_job",
    "identity_key",
    "opening_key",
    "own_part_key",
    "reply_job",
    "sent_message_key",
    "sent_part_key",
    "thread_state_key",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InboundJob(_Frozen):
    """A customer's message to deliver into Intercom."""

    kind: Literal["inbound"] = "inbound"
    message: InboundMessage
    received_at: float


class OutboundAttachment(_Frozen):
    """A file to send to the customer, by URL."""

    url: str
    mime_type: str = "application/octet-stream"
    filename: str | None = None


class ReplyJob(_Frozen):
    """A teammate's reply in Intercom (``conversation.admin.replied``) to send to the customer."""

    kind: Literal["reply"] = "reply"
    conversation_id: str
    part_id: str
    admin_id: str | None = None
    admin_name: str | None = None
    text: str = ""
    body: str | None = None
    """The part's body as Intercom sent it (HTML): what is converted for the channel. None in
    jobs journaled before it was kept; ``text`` is then sent as plain text."""
    attachments: tuple[OutboundAttachment, ...] = ()
    app_package_code: str | None = None
    assignee_id: str | None = None
    received_at: float


def reply_job(
    conversation_id: str, part: ConversationPart, *, assignee_id: str | None, received_at: float
) -> ReplyJob:
    """The job sending a teammate's comment part to the customer."""
    return ReplyJob(
        conversation_id=conversation_id,
        part_id=part.id,
        admin_id=part.author.id,
        admin_name=part.author.name,
        text=part.text,
        body=part.body,
        attachments=tuple(
            OutboundAttachment(url=a.url, mime_type=a.content_type, filename=a.name or None)
            for a in part.attachments
        ),
        app_package_code=part.app_package_code,
        assignee_id=assignee_id,
        received_at=received_at,
    )


class ApiSendJob(_Frozen):
    """A message sent to a customer through ``POST /api/messages``."""

    kind: Literal["api_send"] = "api_send"
    text: str = ""
    attachments: tuple[OutboundAttachment, ...] = ()
    admin_id: str | None = None
    received_at: float
    template: ApiTemplate | None = None
    """A WhatsApp template to send instead of text (checked against the account's approved
    templates when journaled)."""
    rendered: str | None = None
    """The template's text as the customer reads it, when the account's templates are known."""


class StatusJob(_Frozen):
    """A provider's report that one of the messages the bridge sent failed after it was
    accepted (WhatsApp ``failed``, Twilio ``failed``/``undelivered``): the thread's actor
    leaves a note in the conversation the message belonged to."""

    kind: Literal["status"] = "status"
    provider_message_id: str
    status: str
    error_code: int | None = None
    error_title: str | None = None
    received_at: float


Job = Annotated[InboundJob | ReplyJob | ApiSendJob | StatusJob, Field(discriminator="kind")]

DIRECTIONS: Final[dict[str, str]] = {
    "inbound": "inbound",
    "reply": "outbound",
    "api_send": "api",
    "status": "status",
}
"""Each job kind's ``direction`` label in the metrics (docs/operations.md)."""


def direction_of(payload: bytes) -> str:
    """The metrics direction of a journaled job; an undecodable one counts as inbound."""
    try:
        return DIRECTIONS[decode_job(payload).kind]
    except ValueError:
        return "inbound"


_JOB: TypeAdapter[InboundJob | ReplyJob | ApiSendJob | StatusJob] = TypeAdapter(Job)


def encode_job(job: InboundJob | ReplyJob | ApiSendJob | StatusJob) -> bytes:
    """The journal payload of a job."""
    return job.model_dump_json(exclude_defaults=False).encode()


def decode_job(payload: bytes) -> InboundJob | ReplyJob | ApiSendJob | StatusJob:
    """The job in a journal payload (raises pydantic.ValidationError on a corrupt one)."""
    return _JOB.validate_json(payload)


class HeldReply(_Frozen):
    """A teammate's reply held while the customer's 24-hour WhatsApp window is closed: a
    re-engagement template went out instead, and the reply follows the customer's answer."""

    part_id: str
    conversation_id: str
    text: str = ""
    """The reply as plain text, signed (what a reply held by an older version carries)."""
    attachments: tuple[OutboundAttachment, ...] = ()
    assignee_id: str | None = None
    reply: ReplyJob | None = None
    """The reply itself (its HTML body: inline images, markup), sent as it would have been."""
    teammate: str | None = None
    """The signature fixed when it was held."""


RECENT_MESSAGES = 10
"""Messages per thread whose short text the bridge remembers for quotes and reactions (kept
in the thread's state, in memory while its actor lives: about 2 KB at most)."""


class ThreadState(BaseModel):
    """What the bridge remembers of one thread between messages (journal state)."""

    model_config = ConfigDict(extra="ignore")

    contact_id: str | None = None
    contact_role: str = "lead"
    conversation_id: str | None = None
    last_inbound_at: float | None = None
    """UNIX time the customer's latest message was sent (buffer and 24-hour window)."""
    last_outbound_at: float | None = None
    """UNIX time the bridge last sent the customer a message (a teammate's reply or a send-API
    message): activity on the thread for the buffer, never for WhatsApp's window."""
    last_part_id: str | None = None
    """The conversation part of the last message the bridge delivered (crash recovery)."""
    last_reply_part_id: str | None = None
    """The last teammate part sent to the customer: replies go out in the conversation's part
    order, whatever order their webhooks arrive in."""
    opened_by_entry: int | None = None
    """The journal entry whose message opened the current conversation (its retries must not
    open another, nor send its text again)."""
    opted_out: bool = False
    """The customer opted out of SMS on this thread (replied STOP, or Twilio's ``OptOutType``
    said so) and has not opted back in (START): nothing is sent to them."""
    reply_token: str | None = None
    """The token the customer's latest message can be answered with (LINE's ``replyToken``,
    single-use and short-lived), until a send used it."""
    reply_token_at: float | None = None
    """UNIX time that message was sent (the token's age is counted from it)."""
    conversation_intent_at: float | None = None
    """UNIX time a conversation was being created whose id is not recorded yet: it may exist
    (docs/architecture.md §5, effects in doubt)."""
    held: list[HeldReply] = []
    """Teammate replies held until the customer answers a re-engagement template, in order."""
    recent: list[tuple[str, str]] = []
    """The thread's latest messages in either direction, as (provider message id, short
    text), oldest first, at most ``RECENT_MESSAGES``: what a customer's quote or reaction
    refers to (erased with the thread's state)."""

    def recall(self, message_id: str | None) -> str | None:
        """The short text of a recent message of the thread, if it is remembered."""
        if message_id is None:
            return None
        return next((text for known, text in reversed(self.recent) if known == message_id), None)

    def remember(self, message_id: str, text: str) -> None:
        """Keep ``message_id``'s short text, dropping the oldest beyond ``RECENT_MESSAGES``."""
        if not text or self.recall(message_id) is not None:
            return
        self.recent = [*self.recent, (message_id, text)][-RECENT_MESSAGES:]

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> ThreadState:
        return cls() if raw is None else cls.model_validate_json(raw)


class SentRecord(BaseModel):
    """What the bridge remembers of one message it sent to a customer, under
    :func:`sent_message_key`, so that a later delivery failure can say what did not arrive
    and where. Kept as long as done entries (``THREADLINE_JOURNAL_RETENTION_SECONDS``)."""

    model_config = ConfigDict(extra="ignore")

    thread: str
    conversation_id: str
    part_id: str | None = None
    """The teammate's comment part it came from (None: the send API)."""
    what: str
    """A short description: the start of the text, or the attachment's name."""
    sent_at: float

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes) -> SentRecord:
        return cls.model_validate_json(raw)


SENT_MESSAGE_PREFIX = "sent:"


def sent_message_key(channel: str, provider_message_id: str) -> str:
    """The journal state key of a message the bridge sent, by the provider's id for it."""
    return f"{SENT_MESSAGE_PREFIX}{channel}:{provider_message_id}"


def thread_state_key(key: str) -> str:
    """The journal state key of a thread."""
    return f"thread:{key}"


def conversation_index_key(conversation_id: str) -> str:
    """The journal state key mapping an Intercom conversation back to its thread."""
    return f"conversation:{conversation_id}"


def opening_key(contact_id: str) -> str:
    """The journal state key saying a thread is opening a conversation for this contact (its
    value: the UNIX time the intent was committed), from its intent until its id is recorded:
    a teammate's reply notified in between is not taken for another conversation's."""
    return f"opening:{contact_id}"


def identity_key(identity: str) -> str:
    """The journal state key mapping a customer identity to its Intercom contact."""
    return f"identity:{identity}"


def contact_intent_key(identity: str) -> str:
    """The journal state key recording that a contact for ``identity`` is being created."""
    return f"contact-intent:{identity}"


def sent_part_key(part_id: str) -> str:
    """The journal state key marking a teammate part sent to the customer."""
    return f"sent-part:{part_id}"


def own_part_key(part_id: str) -> str:
    """The journal state key marking a conversation part the bridge wrote itself."""
    return f"own-part:{part_id}"
