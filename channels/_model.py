"""The normalized events every provider's webhook parses into, and the media records."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "Channel",
    "DeliveryStatus",
    "DownloadedMedia",
    "Ignored",
    "InboundMessage",
    "Location",
    "MediaKind",
    "MediaRef",
    "OutboundMedia",
    "ParsedEvent",
    "SharedContact",
    "ThreadKey",
    "media_type",
    "render_inbound",
]


class Channel(enum.StrEnum):
    """The provider a thread lives on. Twilio carries both SMS and WhatsApp."""

    WHATSAPP = "whatsapp"
    TWILIO = "twilio"
    TELEGRAM = "telegram"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    VIBER = "viber"
    LINE = "line"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_utc)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ThreadKey(_Frozen):
    """Identity of one customer thread: ``(channel, business account, customer)``.

    ``account`` is the WhatsApp phone_number_id, the Twilio business number (E.164, without
    Twilio's ``whatsapp:`` channel prefix), the Telegram bot id, the Viber bot's account id or
    the LINE bot's user id (the webhook's ``destination``); it never contains ``:``.
    ``customer`` is the WhatsApp wa_id (or business-scoped user id), the Twilio ``From``
    address *with* its channel prefix (so SMS and Twilio-WhatsApp threads differ), the
    Telegram chat id, the LINE user id, or the Viber user id (base64: may hold ``/``, ``+`` and
    ``=``; escape it in a URL); on Messenger the Page id and the customer's page-scoped id
    (PSID), on Instagram the professional account's id and the Instagram-scoped id (IGSID).
    ``str(key)`` is the stable form ``"{channel}:{account}:{customer}"``.
    """

    channel: Channel
    account: str = Field(min_length=1, pattern=r"^[^:]+$")
    customer: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.channel.value}:{self.account}:{self.customer}"

    @classmethod
    def parse(cls, text: str) -> ThreadKey:
        """Inverse of ``str(key)``. Raises ValueError on a malformed string."""
        channel, sep1, rest = text.partition(":")
        account, sep2, customer = rest.partition(":")
        if not (sep1 and sep2):
            raise ValueError(f"not a thread key: {text[:80]!r}")
        return cls(channel=Channel(channel), account=account, customer=customer)


def media_type(mime_type: str | None) -> str:
    """The bare ``type/subtype`` of a MIME type, lower-case, without parameters ("" if none)."""
    return (mime_type or "").split(";", 1)[0].strip().lower()


class MediaKind(enum.StrEnum):
    """What kind of attachment a media reference points to."""

    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VOICE = "voice"
    VIDEO = "video"
    STICKER = "sticker"

    @classmethod
    def from_mime(cls, mime_type: str | None) -> MediaKind:
        """Best guess from a MIME type; unknown types are documents."""
        major = (mime_type or "").split("/", 1)[0].strip().lower()
        return {"image": cls.IMAGE, "audio": cls.AUDIO, "video": cls.VIDEO}.get(major, cls.DOCUMENT)


class MediaRef(_Frozen):
    """A provider's reference to an attachment, to download later.

    ``ref`` is the WhatsApp media id, the Twilio ``MediaUrlN`` or the Telegram ``file_id``.
    Metadata fields are None when the provider did not send them.
    """

    kind: MediaKind
    ref: str
    mime_type: str | None = None
    size: int | None = None
    filename: str | None = None
    sha256: str | None = None


class Location(_Frozen):
    """A shared location (WhatsApp, Twilio-WhatsApp, Telegram location or venue)."""

    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class SharedContact(_Frozen):
    """A contact card the customer shared (WhatsApp ``contacts``, Telegram ``contact``)."""

    name: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    company: str | None = None


class InboundMessage(_Frozen):
    """One customer message, normalized.

    ``provider_message_id`` is the dedupe key, stable across redeliveries: the WhatsApp
    ``wamid``, the Twilio ``MessageSid``, or ``"{chat_id}:{message_id}"`` for Telegram (message
    ids are only unique per chat; ``update_id`` would also be stable but jumps after a week).
    ``text`` holds the body, or the caption for media. ``phone`` is E.164 when the channel
    identifies the customer by phone number, else None.

    What is not plain content is kept apart and rendered by :func:`render_inbound`, the one
    place that turns a message into the text Intercom shows: ``reply_to`` is the provider id of
    the message quoted (or reacted to), ``quoted_text`` what that message said when the
    provider tells (Telegram does), ``reaction`` the emoji of a reaction to ``reply_to`` (empty:
    the reaction was removed), ``edited`` marks ``text`` as the new text of an earlier message,
    ``contacts`` the shared contact cards, ``unsupported`` names a message type the bridge
    cannot carry ("" for a message with no content at all), and ``group`` is the title of the
    group chat a member wrote in.
    """

    kind: Literal["message"] = "message"
    key: ThreadKey
    provider_message_id: str
    phone: str | None = None
    profile_name: str | None = None
    sent_at: AwareDatetime
    text: str | None = None
    attachments: tuple[MediaRef, ...] = ()
    location: Location | None = None
    reply_to: str | None = None
    quoted_text: str | None = None
    reaction: str | None = None
    edited: bool = False
    contacts: tuple[SharedContact, ...] = ()
    unsupported: str | None = None
    group: str | None = None
    opt_out: Literal["stop", "start", "help"] | None = None
    """An SMS opt-out keyword the provider acted on: ``stop`` (the customer unsubscribed: the
    provider refuses our messages to them), ``start`` (subscribed again), ``help``; on LINE,
    ``stop`` is an ``unfollow`` (the customer blocked the account) and ``start`` a ``follow``
    that unblocked it."""
    reply_token: str | None = None
    """A token to answer this message with, valid a short time from ``sent_at`` (LINE's
    ``replyToken``: a reply with it is free, a push counts against the monthly quota)."""


class DeliveryStatus(_Frozen):
    """A receipt for one of OUR outbound messages (sent, delivered, read, failed, …).

    ``provider_message_id`` is the id the provider returned when we sent. ``key`` is None
    when the receipt does not name both ends of the thread.
    """

    kind: Literal["status"] = "status"
    key: ThreadKey | None
    provider_message_id: str
    status: str
    error_code: int | None = None
    error_title: str | None = None
    at: AwareDatetime | None = None


class Ignored(_Frozen):
    """An event we acknowledge but do not bridge; ``reason`` is one line. ``what`` is a short
    fixed word per kind of event (a metric label: parsers only ever put constants in it)."""

    kind: Literal["ignored"] = "ignored"
    reason: str
    what: str = "other"


ParsedEvent = InboundMessage | DeliveryStatus | Ignored
"""What a webhook parser yields, in payload order."""


class DownloadedMedia(_Frozen):
    """The bytes of a downloaded attachment and what we know about them."""

    content: bytes
    mime_type: str | None = None
    filename: str | None = None


class OutboundMedia(_Frozen):
    """An attachment to send to a customer.

    Give ``url`` (a public URL the provider can fetch, for example the Intercom attachment
    URL), ``content`` (bytes we upload), or both; each provider uses what it supports best:
    WhatsApp sends ``link`` when there is a URL and uploads otherwise, Telegram uploads bytes
    when given and passes the URL otherwise, Twilio only accepts a URL (``MediaUrl``).
    """

    mime_type: str
    filename: str | None = None
    url: str | None = None
    content: bytes | None = None


QUOTE_CHARS = 100
"""How much of a quoted message a quote shows (longer texts end with "…")."""


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _contact_line(card: SharedContact) -> str:
    details = [*card.phones, *card.emails]
    if card.company:
        details.append(card.company)
    name = card.name or "(no name)"
    return f"👤 Contact card: {name}" + (f" — {', '.join(details)}" if details else "")


def render_inbound(message: InboundMessage, known: str | None = None) -> list[str]:
    """The lines Intercom shows for ``message`` (attachments and location aside).

    ``known`` is the short text of the message ``reply_to`` names, when the bridge remembers it
    (it bridged it, in either direction); the provider's own ``quoted_text`` comes first.
    """
    lines: list[str] = []
    if message.group:
        provider = "LINE" if message.key.channel is Channel.LINE else "Telegram"
        lines.append(f"(in the {provider} group “{shorten(message.group, 80)}”)")
    quoted = message.quoted_text if message.quoted_text else known
    if message.reaction is not None:
        target = f"“{shorten(quoted)}”" if quoted else f"message {message.reply_to or '?'}"
        if message.reaction:
            lines.append(f"reacted {message.reaction} to: {target}")
        else:
            lines.append(f"removed their reaction to: {target}")
    elif message.reply_to is not None or message.quoted_text:
        if quoted:
            lines.append(f"> {shorten(quoted)}")
        else:
            lines.append("(replying to an earlier message)")
    if message.text:
        lines.append(f"edited: {message.text}" if message.edited else message.text)
    lines.extend(_contact_line(card) for card in message.contacts)
    if message.unsupported == "":
        lines.append("[empty message: no text or media]")
    elif message.unsupported is not None:
        lines.append(f"[unsupported message type: {message.unsupported}]")
    return lines
