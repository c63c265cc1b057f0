"""Viber REST bot API callbacks, sans-io: the signature check and event parsing.

Viber signs every callback with ``X-Viber-Content-Signature``: the lowercase hex HMAC-SHA256
of the raw body, keyed with the bot's auth token. A callback does not name the bot it is for;
the bridge passes the account id of the view whose token verified it (:func:`parse_viber`).

``message_token`` values exceed 2**53: they are read as exact integers (a JSON float is
refused) and kept as their decimal digits.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from .._decode import MAX_TIMESTAMP, MAX_WEBHOOK_BYTES, check_size, require_header, validate_json
from .._errors import PayloadInvalid, SignatureInvalid
from .._model import (
    Channel,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    Location,
    MediaKind,
    MediaRef,
    ParsedEvent,
    SharedContact,
    ThreadKey,
)

__all__ = ["SIGNATURE_HEADER", "VIBER_USER_ID", "parse_viber", "verify_viber_signature"]

SIGNATURE_HEADER: Final = "X-Viber-Content-Signature"
VIBER_USER_ID: Final = r"[A-Za-z0-9+/=_-]{1,128}"
"""A Viber user id: base64-looking (``01234567890A=``, ``xy5/5y6O81+/kbWHpLhBoA==``)."""

Token = Annotated[StrictInt, Field(ge=0, le=2**64 - 1)]
"""A message token: an exact integer (never a float), up to 64 bits."""
UserId = Annotated[str, Field(pattern=f"^{VIBER_USER_ID}$")]
Size = Annotated[int, Field(ge=0, le=2**53)]
_MAX_MS: Final = MAX_TIMESTAMP * 1000


def verify_viber_signature(body: bytes, header: str | None, auth_token: str) -> None:
    """Check ``X-Viber-Content-Signature`` (hex HMAC-SHA256 of ``body`` with the auth token),
    in constant time.

    Raises:
        SignatureInvalid: the header is missing or does not match.
    """
    given = require_header(header, SIGNATURE_HEADER).strip().lower()
    expected = hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode()):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match")


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_In):
    id: UserId
    name: str | None = Field(default=None, max_length=1000)


class _Location(_In):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class _Contact(_In):
    name: str | None = None
    phone_number: str | None = None


class _Message(_In):
    type: str = Field(min_length=1, max_length=100)
    text: str | None = None
    media: str | None = Field(default=None, max_length=4096)
    file_name: str | None = Field(default=None, max_length=1000)
    size: Size | None = None
    sticker_id: StrictInt | str | None = None
    contact: _Contact | None = None
    location: _Location | None = None


class _Event(_In):
    event: str = Field(min_length=1, max_length=100)
    timestamp: Token | None = None
    message_token: Token | None = None
    sender: _User | None = None
    user: _User | None = None
    user_id: UserId | None = None
    message: _Message | None = None
    desc: str | None = Field(default=None, max_length=1000)


_MEDIA: Final = {
    "picture": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "file": MediaKind.DOCUMENT,
    "sticker": MediaKind.STICKER,
}
_RECEIPTS: Final = {"delivered": "delivered", "seen": "read", "failed": "failed"}
_CHAT_EVENTS: Final = frozenset({"subscribed", "unsubscribed", "conversation_started", "webhook"})


def _sent_at(event: _Event) -> datetime:
    ms = event.timestamp
    if ms is None or ms > _MAX_MS:
        raise PayloadInvalid("viber message has no usable timestamp (milliseconds)")
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _at(event: _Event) -> datetime | None:
    ms = event.timestamp
    return None if ms is None or ms > _MAX_MS else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _token(event: _Event) -> str:
    if event.message_token is None:
        raise PayloadInvalid(f"viber {event.event} event has no message_token")
    return str(event.message_token)


def parse_viber(
    body: bytes, account: str, *, max_bytes: int = MAX_WEBHOOK_BYTES
) -> list[ParsedEvent]:
    """Parse one Viber callback into at most one event, for the bot ``account``.

    ``message`` becomes an InboundMessage keyed ``(viber, account, sender.id)`` with
    ``provider_message_id`` the ``message_token`` (digits); ``delivered``/``seen``/``failed``
    a DeliveryStatus (``delivered``/``read``/``failed``, ``desc`` as the error title) of the
    message ``message_token`` the bridge sent; ``subscribed``, ``unsubscribed``,
    ``conversation_started`` and the ``webhook`` check of ``set_webhook`` are Ignored
    (``what="system"``): the check is answered 200 like every accepted callback, and a send
    to a customer who unsubscribed is refused by Viber (status 6), which leaves a note.

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: not a readable Viber callback.
    """
    check_size(body, max_bytes, "viber")
    event = validate_json(_Event, body, "viber")
    kind = event.event
    if kind == "message":
        if event.sender is None or event.message is None:
            raise PayloadInvalid("viber message event without sender or message")
        return [_message(event, event.sender, event.message, account)]
    if kind in _RECEIPTS:
        user = event.user_id
        return [
            DeliveryStatus(
                key=ThreadKey(channel=Channel.VIBER, account=account, customer=user)
                if user is not None
                else None,
                provider_message_id=_token(event),
                status=_RECEIPTS[kind],
                error_title=(event.desc or None) if kind == "failed" else None,
                at=_at(event),
            )
        ]
    who = event.user.id if event.user is not None else event.user_id
    if kind in _CHAT_EVENTS:
        reason = f"viber {kind} event" + (f" of user {who}" if who else "") + " is not bridged"
        return [Ignored(reason=reason, what="system")]
    return [Ignored(reason=f"viber event {kind[:40]!r} is not bridged", what="other")]


def _message(event: _Event, sender: _User, msg: _Message, account: str) -> InboundMessage:
    attachments: tuple[MediaRef, ...] = ()
    location = None
    contacts: tuple[SharedContact, ...] = ()
    text = msg.text or None
    media_kind = _MEDIA.get(msg.type)
    if media_kind is not None and msg.media:
        ref = MediaRef(kind=media_kind, ref=msg.media, size=msg.size, filename=msg.file_name)
        attachments = (ref,)
    elif msg.type == "location" and msg.location is not None:
        location = Location(latitude=msg.location.lat, longitude=msg.location.lon)
    elif msg.type == "contact" and msg.contact is not None:
        card = msg.contact
        phones = (card.phone_number,) if card.phone_number else ()
        contacts = (SharedContact(name=card.name or None, phones=phones),)
    elif msg.type == "url" and msg.media:
        # A shared link: the URL is the content (Viber may send a text beside it).
        text = msg.media if text is None or text == msg.media else f"{text}\n{msg.media}"
    unsupported = None
    if not (text or attachments or location or contacts):
        unsupported = msg.type[:40]
    return InboundMessage(
        key=ThreadKey(channel=Channel.VIBER, account=account, customer=sender.id),
        provider_message_id=_token(event),
        phone=None,
        profile_name=sender.name or None,
        sent_at=_sent_at(event),
        text=text,
        attachments=attachments,
        location=location,
        contacts=contacts,
        unsupported=unsupported,
    )
