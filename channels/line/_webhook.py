"""LINE Messaging API webhooks, sans-io: ``x-line-signature`` check and event parsing.

The body is ``{"destination": <bot user id>, "events": [...]}``, signed with the channel
secret (base64 HMAC-SHA256 of the raw body). The console's "Verify" button posts a signed body
with no events: nothing to do, answered 200. Each event becomes at most one parsed event, in
payload order; LINE sends no delivery receipts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._decode import (
    MAX_TIMESTAMP,
    MAX_WEBHOOK_BYTES,
    bounded_list,
    check_size,
    constant_time_equal,
    require_header,
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
    ThreadKey,
)

__all__ = ["LineGroupPolicy", "line_signature", "parse_line", "verify_line_signature"]

LineGroupPolicy = Literal["ignore", "per-member"]
"""What to do with messages from group chats and rooms: acknowledge and count them
(``ignore``), or bridge each member's messages as that member's thread (``per-member``: only
when the event names the member, which LINE leaves out for a user who has not agreed to share
it)."""

SIGNATURE_HEADER: Final = "x-line-signature"

_Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
"""A LINE id (user, group, room, bot, message): ``U`` + 32 hex digits and the like; never a
``:`` (a thread key's separator)."""
_Millis = Annotated[int, Field(ge=0, le=MAX_TIMESTAMP * 1000)]


def line_signature(body: bytes, channel_secret: str) -> str:
    """The ``x-line-signature`` of ``body``: base64 of HMAC-SHA256 keyed by the channel secret."""
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_line_signature(body: bytes, header: str | None, channel_secret: str) -> None:
    """Check ``x-line-signature`` over the exact bytes received (constant time).

    Raises:
        SignatureInvalid: the header is missing or does not match.
    """
    given = require_header(header, SIGNATURE_HEADER)
    if not constant_time_equal(given, line_signature(body, channel_secret)):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match")


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Source(_In):
    type: str = Field(max_length=40)
    userId: _Id | None = None  # noqa: N815 - LINE's field names
    groupId: _Id | None = None  # noqa: N815
    roomId: _Id | None = None  # noqa: N815


class _ContentProvider(_In):
    type: str = "line"
    originalContentUrl: str | None = Field(default=None, max_length=2000)  # noqa: N815


class _Message(_In):
    id: _Id
    type: str = Field(max_length=40)
    text: str | None = None
    fileName: str | None = Field(default=None, max_length=1000)  # noqa: N815
    fileSize: Annotated[int, Field(ge=0, le=2**53)] | None = None  # noqa: N815
    contentProvider: _ContentProvider | None = None  # noqa: N815
    title: str | None = None
    address: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    quotedMessageId: _Id | None = None  # noqa: N815


class _Follow(_In):
    isUnblocked: bool = False  # noqa: N815


class _Unsend(_In):
    messageId: _Id  # noqa: N815


class _Event(_In):
    type: str = Field(max_length=40)
    mode: str = Field(default="active", max_length=40)
    timestamp: _Millis
    source: _Source | None = None
    webhookEventId: str | None = Field(default=None, max_length=100)  # noqa: N815
    replyToken: str | None = Field(default=None, max_length=200)  # noqa: N815
    message: _Message | None = None
    follow: _Follow | None = None
    unsend: _Unsend | None = None


class _Body(_In):
    destination: _Id
    events: list[_Event] = bounded_list(required=True)


_MEDIA: Final = {
    "image": (MediaKind.IMAGE, "image/jpeg"),
    "video": (MediaKind.VIDEO, "video/mp4"),
    "audio": (MediaKind.AUDIO, "audio/m4a"),
    "file": (MediaKind.DOCUMENT, None),
}
"""Message types with content, their kind and the MIME type LINE stores them in (a file's is
guessed from its name; the download's Content-Type wins)."""


def _sent_at(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def parse_line(
    body: bytes,
    *,
    max_bytes: int = MAX_WEBHOOK_BYTES,
    groups: LineGroupPolicy = "ignore",
) -> list[ParsedEvent]:
    """Parse a (verified) LINE webhook body into one event per LINE event, in order.

    Messages (and ``messageEdited``) from a user's 1:1 chat become InboundMessage keyed by
    ``(line, destination, userId)`` with ``provider_message_id`` the message id (stable across
    redeliveries; an edit adds ``":edited:{timestamp}"``) and the event's ``replyToken``.
    ``unfollow`` (the customer blocked the account) is ``opt_out="stop"``, a ``follow`` that
    unblocked it ``opt_out="start"``. Group and room messages are Ignored (``what="group"``)
    unless ``groups="per-member"`` and the event names the member. Everything else (postback,
    join/leave, unsend, a first follow, standby mode) is Ignored with a reason.

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: not a readable LINE webhook body.
    """
    check_size(body, max_bytes, "line")
    parsed = validate_json(_Body, body, "line")
    return [_event(parsed.destination, event, groups) for event in parsed.events]


def _event(bot: str, event: _Event, groups: LineGroupPolicy) -> ParsedEvent:
    kind = event.type
    source = event.source
    if source is None or source.type not in ("user", "group", "room"):
        return Ignored(reason=f"line {kind[:40]} event without a user source", what="event")
    if event.mode != "active":
        return Ignored(
            reason=f"line {kind[:40]} event in {event.mode[:20]} mode (another module answers)",
            what="event",
        )
    group: str | None = None
    if source.type != "user":
        chat = source.groupId or source.roomId or "?"
        if kind not in ("message", "messageEdited", "unsend"):
            return Ignored(reason=f"line {kind[:40]} event in {source.type} {chat}", what="group")
        if groups != "per-member" or source.userId is None:
            why = (
                "bridged only per member, who is not named"
                if groups == "per-member"
                else ("not bridged")
            )
            return Ignored(
                reason=f"line {source.type} {chat}: {kind[:40]} {why} "
                f"(THREADLINE_LINE_GROUPS={groups})",
                what="group",
            )
        group = f"{source.type} {chat}"
    if source.userId is None:
        return Ignored(reason=f"line {kind[:40]} event without a userId", what="event")
    key = ThreadKey(channel=Channel.LINE, account=bot, customer=source.userId)
    # A reply token answers into the chat the event came from: a group's must not carry a
    # teammate's reply to one member.
    token = event.replyToken if group is None else None
    if kind in ("message", "messageEdited") and event.message is not None:
        return _message(key, event, event.message, token, group)
    if kind == "unfollow":
        return _opt_out(key, event, "stop", "(blocked the LINE account)")
    if kind == "follow" and event.follow is not None and event.follow.isUnblocked:
        return _opt_out(key, event, "start", "(unblocked the LINE account)")
    if kind == "follow":
        return Ignored(reason=f"line user {source.userId} added the account", what="follow")
    if kind == "unsend" and event.unsend is not None:
        return Ignored(
            reason=f"line user {source.userId} unsent message {event.unsend.messageId}",
            what="unsend",
        )
    return Ignored(reason=f"line {kind[:40]} event is not bridged", what="event")


def _opt_out(
    key: ThreadKey, event: _Event, action: Literal["stop", "start"], text: str
) -> InboundMessage:
    stamp = event.webhookEventId or str(event.timestamp)
    return InboundMessage(
        key=key,
        provider_message_id=f"{'unfollow' if action == 'stop' else 'unblock'}:{stamp}",
        sent_at=_sent_at(event.timestamp),
        text=text,
        opt_out=action,
    )


def _message(
    key: ThreadKey, event: _Event, msg: _Message, token: str | None, group: str | None
) -> InboundMessage:
    text: str | None = None
    attachments: tuple[MediaRef, ...] = ()
    location: Location | None = None
    unsupported: str | None = None
    if msg.type == "text":
        text = msg.text
        unsupported = None if text else ""
    elif msg.type in _MEDIA:
        kind, mime = _MEDIA[msg.type]
        provider = msg.contentProvider
        ref = msg.id
        if provider is not None and provider.type == "external" and provider.originalContentUrl:
            ref = provider.originalContentUrl
        if msg.type == "file" and msg.fileName:
            mime = mimetypes.guess_type(msg.fileName)[0]
        attachments = (
            MediaRef(kind=kind, ref=ref, mime_type=mime, size=msg.fileSize, filename=msg.fileName),
        )
    elif msg.type == "location" and msg.latitude is not None and msg.longitude is not None:
        location = Location(
            latitude=msg.latitude, longitude=msg.longitude, name=msg.title, address=msg.address
        )
    else:
        unsupported = msg.type[:40] or "unknown"
    edited = event.type == "messageEdited"
    message_id = msg.id + (f":edited:{event.timestamp}" if edited else "")
    return InboundMessage(
        key=key,
        provider_message_id=message_id,
        sent_at=_sent_at(event.timestamp),
        text=text,
        attachments=attachments,
        location=location,
        reply_to=msg.quotedMessageId,
        edited=edited,
        unsupported=unsupported,
        group=group,
        reply_token=token,
    )
