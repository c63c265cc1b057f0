"""Meta's messaging webhooks, sans-io: the ``messaging`` envelope
``{"object", "entry": [{"id", "messaging": [event...]}]}`` (:func:`parse_meta_messaging`):
messages (text, quick replies, replies, attachments, story replies and mentions, unsends),
echoes (ignored), postbacks (the button's title as the customer's text), reactions, edits,
reads and deliveries. The signature and handshake are in ``_signature.py``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from .._decode import (
    MAX_WEBHOOK_BYTES,
    bounded_list,
    check_size,
    timestamp,
    validate_json,
)
from .._errors import AccountMismatch, PayloadInvalid
from .._model import (
    DeliveryStatus,
    Ignored,
    InboundMessage,
    Location,
    MediaKind,
    MediaRef,
    ParsedEvent,
    ThreadKey,
)
from ._apps import INSTAGRAM, MESSENGER, MetaApp

__all__ = [
    "check_accounts",
    "envelope_accounts",
    "parse_instagram",
    "parse_messenger",
    "parse_meta_messaging",
]

_MAX_ID: Final = 256
MAX_EVENTS: Final = 10_000
"""Most parsed events one body may yield (a delivery names several messages): over it the
body is refused (400) before more are built, so a body of tiny items cannot cost memory far
beyond its size."""


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


Id = Annotated[str, Field(min_length=1, max_length=_MAX_ID)]
AccountId = Annotated[str, Field(min_length=1, max_length=_MAX_ID, pattern=r"^[^:]+$")]
Millis = Annotated[int, Field(ge=0, le=99_999_999_999_999)]


class _Party(_In):
    id: Id


class _Coordinates(_In):
    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)


class _Payload(_In):
    url: str | None = Field(default=None, max_length=8192)
    title: str | None = None
    sticker_id: int | None = None
    coordinates: _Coordinates | None = None


class _Attachment(_In):
    type: str = Field(max_length=64)
    payload: _Payload | None = None


class _QuickReply(_In):
    payload: str | None = None


class _Story(_In):
    id: str | None = None
    url: str | None = Field(default=None, max_length=8192)


class _ReplyTo(_In):
    mid: str | None = Field(default=None, max_length=_MAX_ID)
    story: _Story | None = None


class _Message(_In):
    mid: Id
    text: str | None = None
    quick_reply: _QuickReply | None = None
    reply_to: _ReplyTo | None = None
    attachments: list[_Attachment] = bounded_list()
    is_echo: bool = False
    is_deleted: bool = False
    is_unsupported: bool = False


class _Postback(_In):
    mid: str | None = Field(default=None, max_length=_MAX_ID)
    title: str | None = None
    payload: str | None = None


class _Reaction(_In):
    mid: Id
    action: str = "react"
    emoji: str | None = None
    reaction: str | None = None


class _Read(_In):
    watermark: Millis | None = None
    mid: str | None = None


class _Delivery(_In):
    mids: list[Id] = bounded_list()
    watermark: Millis | None = None


class _Edit(_In):
    mid: Id
    text: str | None = None
    num_edit: int = Field(default=0, ge=0, le=1000)


class _Event(_In):
    sender: _Party
    recipient: _Party
    timestamp: Millis | None = None
    message: _Message | None = None
    postback: _Postback | None = None
    reaction: _Reaction | None = None
    read: _Read | None = None
    delivery: _Delivery | None = None
    message_edit: _Edit | None = None


class _Entry(_In):
    id: AccountId
    time: Millis | None = None
    messaging: list[_Event] = bounded_list()
    standby: list[_Event] = bounded_list()
    changes: list[dict[str, object]] = bounded_list()


class _Envelope(_In):
    object: str = Field(max_length=64)
    entry: list[_Entry] = bounded_list(required=True)


def envelope_accounts(body: bytes) -> list[str]:
    """``entry[].id`` of a (verified, parsed) envelope: the pages or Instagram accounts it is
    about."""
    payload = json.loads(body)
    entries = payload.get("entry") if isinstance(payload, dict) else None
    return [
        str(entry["id"])
        for entry in entries or ()
        if isinstance(entry, dict) and entry.get("id") is not None
    ]


def check_accounts(body: bytes, owned: frozenset[str] | None, what: str) -> None:
    """Raise AccountMismatch when the envelope names an account outside ``owned``."""
    if owned is None:
        return
    for account in envelope_accounts(body):
        if account not in owned:
            raise AccountMismatch(
                f"{what} {account[:40]} is not an account of the app that signed the webhook"
            )


def _when(millis: int | None) -> int:
    """Epoch milliseconds as seconds; a value too small to be milliseconds (Meta sends
    seconds in some events) is taken as seconds."""
    if millis is None:
        return 0
    return millis if millis < 100_000_000_000 else millis // 1000


def parse_meta_messaging(
    body: bytes, app: MetaApp, *, max_bytes: int = MAX_WEBHOOK_BYTES
) -> list[ParsedEvent]:
    """Parse a Messenger or Instagram webhook body into normalized events, in payload order.

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: anything that is not a readable webhook of this kind.
    """
    check_size(body, max_bytes, app.name)
    envelope = validate_json(_Envelope, body, app.name)
    if envelope.object != app.object:
        return [Ignored(reason=f"{app.name} object {envelope.object[:60]!r} is not bridged")]
    events: list[ParsedEvent] = []
    for entry in envelope.entry:
        for event in entry.messaging:
            events.extend(_event(app, entry.id, event, entry.time))
            _check_count(events, app)
        if entry.standby:
            events.append(
                Ignored(
                    reason=f"{app.name} standby events (another app owns the thread) "
                    "are not bridged",
                    what="standby",
                )
            )
        if entry.changes:  # one for the entry: each would only be counted
            field = str(entry.changes[0].get("field", ""))[:60]
            more = f" (and {len(entry.changes) - 1} more)" if len(entry.changes) > 1 else ""
            events.append(Ignored(reason=f"{app.name} field {field!r}{more} is not bridged"))
        _check_count(events, app)
    if not events:
        events.append(Ignored(reason=f"{app.name} webhook without messaging events"))
    return events


def _check_count(events: list[ParsedEvent], app: MetaApp) -> None:
    if len(events) > MAX_EVENTS:
        raise PayloadInvalid(f"{app.name} webhook has over {MAX_EVENTS} events")


def _event(app: MetaApp, account: str, event: _Event, entry_time: int | None) -> list[ParsedEvent]:
    name = app.name
    stamp = event.timestamp if event.timestamp is not None else entry_time
    sent = timestamp(_when(stamp))
    if event.message is not None and event.message.is_echo:
        return [Ignored(reason=f"{name} echo of the account's own message", what="echo")]
    if event.sender.id == account:
        return [Ignored(reason=f"{name} event sent by the account itself", what="echo")]
    key = ThreadKey(channel=app.channel, account=account, customer=event.sender.id)
    if event.message is not None:
        return [_message(app, key, event.message, sent)]
    if event.postback is not None:
        postback = event.postback
        text = postback.title or postback.payload
        return [
            InboundMessage(
                key=key,
                provider_message_id=postback.mid or f"postback:{event.sender.id}:{stamp or 0}",
                sent_at=sent,
                text=text or None,
                unsupported=None if text else "postback without a title",
            )
        ]
    if event.reaction is not None:
        reaction = event.reaction
        emoji = reaction.emoji or reaction.reaction or "?"
        removed = reaction.action == "unreact"
        return [
            InboundMessage(
                key=key,
                provider_message_id=f"reaction:{reaction.mid}:{reaction.action[:16]}:{stamp or 0}",
                sent_at=sent,
                reply_to=reaction.mid,
                reaction="" if removed else emoji,
            )
        ]
    if event.message_edit is not None:
        edit = event.message_edit
        return [
            InboundMessage(
                key=key,
                provider_message_id=f"{edit.mid}:edited:{edit.num_edit}",
                sent_at=sent,
                text=edit.text or None,
                edited=True,
                unsupported=None if edit.text else "",
            )
        ]
    if event.delivery is not None:
        if not event.delivery.mids:  # "may not be present": nothing to match a send with
            return [Ignored(reason=f"{name} delivery up to a watermark", what="receipt")]
        at = sent if stamp is not None else None
        return [
            DeliveryStatus(key=key, provider_message_id=mid, status="delivered", at=at)
            for mid in event.delivery.mids
        ]
    if event.read is not None:
        return [Ignored(reason=f"{name} read receipt (counted only)", what="receipt")]
    return [Ignored(reason=f"{name} messaging event of another kind is not bridged")]


_MEDIA: Final = {
    "image": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "audio": MediaKind.AUDIO,
    "file": MediaKind.DOCUMENT,
}
_LINKS: Final = {
    "fallback": "shared a link",
    "share": "shared a post",
    "reel": "shared a reel",
    "ig_reel": "shared a reel",
    "story_mention": "mentioned you in their story",
    "template": "shared a card",
}


def _message(app: MetaApp, key: ThreadKey, msg: _Message, sent: datetime) -> InboundMessage:
    if msg.is_deleted:
        return InboundMessage(
            key=key,
            sent_at=sent,
            provider_message_id=f"{msg.mid}:deleted",
            reply_to=msg.mid,
            text="(the customer unsent this message)",
        )
    lines: list[str] = []
    reply_to = msg.reply_to.mid if msg.reply_to is not None else None
    story = msg.reply_to.story if msg.reply_to is not None else None
    if story is not None:
        where = f": {story.url}" if story.url else ""
        lines.append(f"(replying to your story{where})")
    attachments: list[MediaRef] = []
    location: Location | None = None
    unknown: list[str] = []
    for attachment in msg.attachments:
        payload = attachment.payload
        url = payload.url if payload is not None else None
        kind = attachment.type
        if kind in _MEDIA and url:
            sticker = kind == "image" and payload is not None and payload.sticker_id is not None
            attachments.append(
                MediaRef(kind=MediaKind.STICKER if sticker else _MEDIA[kind], ref=url)
            )
        elif kind == "location" and payload is not None and payload.coordinates is not None:
            point = payload.coordinates
            location = Location(
                latitude=point.lat, longitude=point.long, name=payload.title, url=url
            )
        elif kind in _LINKS:
            title = payload.title if payload is not None and payload.title else None
            detail = ", ".join(part for part in (title, url) if part)
            lines.append(f"({_LINKS[kind]}{': ' + detail if detail else ''})")
        elif kind == "like_heart":
            lines.append("❤️")
        else:
            unknown.append(kind[:40] or "unknown")
    text = msg.text
    if text:
        lines.append(text)
    unsupported: str | None = None
    if unknown:
        unsupported = ", ".join(f"{app.name} {kind} attachment" for kind in unknown)
    elif msg.is_unsupported:
        unsupported = f"{app.name} message the platform does not show to apps"
    elif not lines and not attachments and location is None:
        unsupported = ""
    return InboundMessage(
        key=key,
        sent_at=sent,
        provider_message_id=msg.mid,
        text="\n".join(lines) or None,
        attachments=tuple(attachments),
        location=location,
        reply_to=reply_to,
        unsupported=unsupported,
    )


def parse_messenger(body: bytes, *, max_bytes: int = MAX_WEBHOOK_BYTES) -> list[ParsedEvent]:
    """:func:`parse_meta_messaging` of a Messenger (``object: page``) webhook."""
    return parse_meta_messaging(body, MESSENGER, max_bytes=max_bytes)


def parse_instagram(body: bytes, *, max_bytes: int = MAX_WEBHOOK_BYTES) -> list[ParsedEvent]:
    """:func:`parse_meta_messaging` of an Instagram (``object: instagram``) webhook."""
    return parse_meta_messaging(body, INSTAGRAM, max_bytes=max_bytes)
