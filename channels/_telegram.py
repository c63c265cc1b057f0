"""Telegram Bot API webhooks, sans-io: secret-token check and update parsing.

An update does not name the bot it is for; the bridge serves one bot per deployment and
passes that bot's id (the part of the token before the colon) to :func:`parse_telegram`.
Telegram sends no delivery receipts, so only messages and explicit ignores come out.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from ._decode import (
    MAX_TIMESTAMP,
    MAX_WEBHOOK_BYTES,
    check_size,
    constant_time_equal,
    require_header,
    timestamp,
    validate_json,
)
from ._errors import SignatureInvalid
from ._model import (
    Channel,
    Ignored,
    InboundMessage,
    Location,
    MediaKind,
    MediaRef,
    ParsedEvent,
    ThreadKey,
)

__all__ = ["parse_telegram", "telegram_bot_id", "verify_telegram_secret"]

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


class _Replied(_In):
    message_id: Int64


class _Message(_In):
    message_id: Int64
    date: Annotated[int, Field(ge=0, le=MAX_TIMESTAMP)]
    chat: _Chat
    from_: _User | None = Field(default=None, alias="from")
    text: str | None = None
    caption: str | None = None
    photo: list[_File] = []
    document: _File | None = None
    audio: _File | None = None
    voice: _File | None = None
    video: _File | None = None
    video_note: _File | None = None
    animation: _File | None = None
    sticker: _File | None = None
    location: _Location | None = None
    venue: _Venue | None = None
    reply_to_message: _Replied | None = None


class _Update(_In):
    model_config = ConfigDict(extra="allow", frozen=True)

    update_id: Int64
    message: _Message | None = None


def parse_telegram(
    body: bytes, bot_id: str, *, max_bytes: int = MAX_WEBHOOK_BYTES
) -> list[ParsedEvent]:
    """Parse one Telegram update into at most one event.

    ``message`` updates become InboundMessage keyed by ``(telegram, bot_id, chat id)`` with
    ``provider_message_id = "{chat_id}:{message_id}"`` (message ids are unique per chat only);
    ``reply_to`` uses the same form. Other updates (edits, callback queries, membership changes,
    channel posts) and messages without bridged content are Ignored with a reason.

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: not a readable Telegram update.
    """
    check_size(body, max_bytes, "telegram")
    update = validate_json(_Update, body, "telegram")
    if update.message is None:
        extra = sorted((update.model_extra or {}).keys())
        what = ", ".join(k[:40] for k in extra[:3]) or "empty"
        return [Ignored(reason=f"telegram update {update.update_id} ({what}) is not bridged")]
    return [_message_event(update.message, bot_id)]


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


def _message_event(msg: _Message, bot_id: str) -> ParsedEvent:
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
    if text is None and attachment is None and location is None:
        return Ignored(
            reason=f"telegram message {msg.chat.id}:{msg.message_id} has no text, media or location"
        )
    sender = msg.from_
    name = None
    if sender is not None:
        name = " ".join(p for p in (sender.first_name, sender.last_name) if p) or sender.username
    chat = str(msg.chat.id)
    return InboundMessage(
        key=ThreadKey(channel=Channel.TELEGRAM, account=bot_id, customer=chat),
        provider_message_id=f"{chat}:{msg.message_id}",
        phone=None,
        profile_name=name,
        sent_at=timestamp(msg.date),
        text=text,
        attachments=(attachment,) if attachment is not None else (),
        location=location,
        reply_to=(
            f"{chat}:{msg.reply_to_message.message_id}"
            if msg.reply_to_message is not None
            else None
        ),
    )
