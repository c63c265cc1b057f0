"""Telegram Bot API webhooks, sans-io: secret-token check and update parsing.

An update does not name the bot it is for; the bridge serves one bot per deployment and
passes that bot's id (the part of the token before the colon) to :func:`parse_telegram`.
Telegram sends no delivery receipts, so only messages and explicit ignores come out.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._decode import (
    MAX_TIMESTAMP,
    MAX_WEBHOOK_BYTES,
    bounded_list,
    check_size,
    constant_time_equal,
    require_header,
    timestamp,
    validate_json,
)
from .._errors import SignatureInvalid
from .._model import (
    Channel,
    Ignored,
    InboundMessage,
    Location,
    MediaKind,
    MediaRef,
    ParsedEvent,
    SharedContact,
    ThreadKey,
)

__all__ = ["GroupPolicy", "parse_telegram", "telegram_bot_id", "verify_telegram_secret"]

GroupPolicy = Literal["ignore", "per-member"]
"""What to do with messages from group, supergroup and channel chats: acknowledge and count
them (``ignore``), or bridge each member's messages as that member's thread (``per-member``)."""

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Size = Annotated[int, Field(ge=0, le=2**53)]


def verify_telegram_secret(header: str | None, secret_token: str) -> None:
    """Check ``X-Telegram-Bot-Api-Secret-Token`` against the configured secret (constant time).

    Raises:
        SignatureInvalid: the header is missing or differs.
    """
    given = require_header(header, SECRET_HEADER)
    if not constant_time_equal(given, secret_token):
        raise SignatureInvalid(f"{SECRET_HEADER} does not match")


def telegram_bot_id(bot_token: str) -> str:
    """The bot id in a bot token (``"123456:ABC…"`` → ``"123456"``), the thread's account.

    Raises:
        ValueError: the token does not start with a numeric id and a colon.
    """
    bot_id, sep, _ = bot_token.partition(":")
    if not (sep and bot_id.isdecimal() and bot_id.isascii()):
        raise ValueError("a Telegram bot token looks like '<numeric bot id>:<secret>'")
    return bot_id


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_In):
    id: Int64
    is_bot: bool = False
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None


class _Chat(_In):
    id: Int64
    type: str | None = None
    title: str | None = None


class _File(_In):
    file_id: str = Field(min_length=1)
    file_unique_id: str | None = None
    file_size: Size | None = None
    file_name: str | None = None
    mime_type: str | None = None


class _Location(_In):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class _Venue(_In):
    location: _Location
    title: str | None = None
    address: str | None = None


class _Contact(_In):
    phone_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class _Replied(_In):
    message_id: Int64
    text: str | None = None
    caption: str | None = None


class _Quote(_In):
    text: str | None = None


class _Message(_In):
    model_config = ConfigDict(extra="allow", frozen=True)

    message_id: Int64
    date: Annotated[int, Field(ge=0, le=MAX_TIMESTAMP)]
    chat: _Chat
    from_: _User | None = Field(default=None, alias="from")
    text: str | None = None
    caption: str | None = None
    photo: list[_File] = bounded_list()
    document: _File | None = None
    audio: _File | None = None
    voice: _File | None = None
    video: _File | None = None
    video_note: _File | None = None
    animation: _File | None = None
    sticker: _File | None = None
    location: _Location | None = None
    venue: _Venue | None = None
    contact: _Contact | None = None
    reply_to_message: _Replied | None = None
    quote: _Quote | None = None
    edit_date: Annotated[int, Field(ge=0, le=MAX_TIMESTAMP)] | None = None


class _Update(_In):
    model_config = ConfigDict(extra="allow", frozen=True)

    update_id: Int64
    message: _Message | None = None
    edited_message: _Message | None = None


_PRIVATE: Final = "private"
_METADATA: Final = frozenset({
    "entities", "caption_entities", "forward_origin", "forward_from", "forward_from_chat",
    "forward_from_message_id", "forward_signature", "forward_sender_name", "forward_date",
    "is_automatic_forward", "is_topic_message", "message_thread_id", "has_protected_content",
    "has_media_spoiler", "show_caption_above_media", "reply_markup", "author_signature",
    "sender_chat", "sender_boost_count", "sender_business_bot", "business_connection_id",
    "via_bot", "media_group_id", "link_preview_options", "effect_id", "external_reply",
    "is_from_offline", "paid_star_count", "reply_to_story", "chat_background_set",
})  # fmt: skip
"""Message fields that say something about a message, not what it is (for naming the type of
a message the bridge cannot carry)."""


def parse_telegram(
    body: bytes,
    bot_id: str,
    *,
    max_bytes: int = MAX_WEBHOOK_BYTES,
    groups: GroupPolicy = "ignore",
) -> list[ParsedEvent]:
    """Parse one Telegram update into at most one event.

    ``message`` and ``edited_message`` updates from private chats become InboundMessage keyed
    by ``(telegram, bot_id, chat id)`` with ``provider_message_id = "{chat_id}:{message_id}"``
    (message ids are unique per chat only; an edit adds ``":edited:{edit_date}"``);
    ``reply_to`` uses the same form. Messages from group, supergroup and channel chats are
    Ignored (``what="group"``) unless ``groups="per-member"``: then each member is their own
    thread (customer = the sender's user id) and the group's title goes with the message.
    Other updates (callback queries, membership changes, channel posts) are Ignored with a
    reason (``what="update"``).

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: not a readable Telegram update.
    """
    check_size(body, max_bytes, "telegram")
    update = validate_json(_Update, body, "telegram")
    msg = update.message or update.edited_message
    if msg is None:
        extra = sorted((update.model_extra or {}).keys())
        what = ", ".join(k[:40] for k in extra[:3]) or "empty"
        return [
            Ignored(
                reason=f"telegram update {update.update_id} ({what}) is not bridged", what="update"
            )
        ]
    edited = update.message is None
    customer = str(msg.chat.id)
    group: str | None = None
    if msg.chat.type != _PRIVATE:
        kind = (msg.chat.type or "unknown")[:20]
        sender = msg.from_
        if groups != "per-member" or sender is None or sender.is_bot:
            why = "bridged only per member" if groups == "per-member" else "not bridged"
            return [
                Ignored(
                    reason=f"telegram {kind} chat {msg.chat.id}: message {msg.message_id}"
                    f" {why} (THREADLINE_TELEGRAM_GROUPS={groups})",
                    what="group",
                )
            ]
        customer = str(sender.id)
        group = msg.chat.title or f"{kind} {msg.chat.id}"
    return [_message_event(msg, bot_id, customer=customer, edited=edited, group=group)]


def _attachment(msg: _Message) -> MediaRef | None:
    if msg.photo:
        largest = msg.photo[-1]
        # Telegram re-encodes photos as JPEG.
        return _ref(MediaKind.IMAGE, largest, mime="image/jpeg")
    candidates = (
        (MediaKind.DOCUMENT, msg.document),
        (MediaKind.AUDIO, msg.audio),
        (MediaKind.VOICE, msg.voice),
        (MediaKind.VIDEO, msg.video),
        (MediaKind.VIDEO, msg.video_note),
        (MediaKind.VIDEO, msg.animation),
        (MediaKind.STICKER, msg.sticker),
    )
    for kind, file in candidates:
        if file is not None:
            return _ref(kind, file, mime=file.mime_type)
    return None


def _ref(kind: MediaKind, file: _File, *, mime: str | None) -> MediaRef:
    return MediaRef(
        kind=kind, ref=file.file_id, mime_type=mime, size=file.file_size, filename=file.file_name
    )


def _unsupported(msg: _Message) -> str:
    """The name of what a message holds that the bridge cannot carry (a poll, a dice, …)."""
    kinds = sorted(k for k in (msg.model_extra or {}) if k not in _METADATA)
    return kinds[0][:40] if kinds else "unknown"


def _message_event(
    msg: _Message, bot_id: str, *, customer: str, edited: bool, group: str | None
) -> ParsedEvent:
    attachment = _attachment(msg)
    location = None
    if msg.venue is not None:
        location = Location(
            latitude=msg.venue.location.latitude,
            longitude=msg.venue.location.longitude,
            name=msg.venue.title,
            address=msg.venue.address,
        )
    elif msg.location is not None:
        location = Location(latitude=msg.location.latitude, longitude=msg.location.longitude)
    text = msg.text if msg.text is not None else msg.caption
    contacts: tuple[SharedContact, ...] = ()
    if msg.contact is not None:
        card = msg.contact
        card_name = " ".join(p for p in (card.first_name, card.last_name) if p)
        phones = (card.phone_number,) if card.phone_number else ()
        contacts = (SharedContact(name=card_name or None, phones=phones),)
    unsupported = None
    if not (text or attachment or location or contacts):
        unsupported = _unsupported(msg)
    sender = msg.from_
    name: str | None = None
    if sender is not None:
        name = " ".join(p for p in (sender.first_name, sender.last_name) if p) or sender.username
    chat = str(msg.chat.id)
    message_id = f"{chat}:{msg.message_id}"
    if edited:
        message_id += f":edited:{msg.edit_date if msg.edit_date is not None else msg.date}"
    replied = msg.reply_to_message
    quoted = None
    if msg.quote is not None and msg.quote.text:
        quoted = msg.quote.text  # the part of the message the customer chose to quote
    elif replied is not None:
        quoted = replied.text or replied.caption
    return InboundMessage(
        key=ThreadKey(channel=Channel.TELEGRAM, account=bot_id, customer=customer),
        provider_message_id=message_id,
        phone=None,
        profile_name=name,
        sent_at=timestamp(msg.edit_date if edited and msg.edit_date is not None else msg.date),
        text=text,
        attachments=(attachment,) if attachment is not None else (),
        location=location,
        reply_to=f"{chat}:{replied.message_id}" if replied is not None else None,
        quoted_text=quoted or None,
        edited=edited,
        contacts=contacts,
        unsupported=unsupported,
        group=group,
    )
