"""Signed LINE Messaging API webhooks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from channels import MediaKind, line_signature

from ._common import SignedWebhook, WebhookMedia

__all__ = ["line_event", "line_events_webhook", "line_message_webhook"]


def line_events_webhook(
    channel_secret: str, destination: str, events: Sequence[dict[str, object]]
) -> SignedWebhook:
    """A LINE webhook body ``{destination, events}`` with its ``x-line-signature`` (base64
    HMAC-SHA256 keyed by the channel secret): ``events`` as given (a ``follow``, an
    ``unfollow``, a group's message...)."""
    body = json.dumps({"destination": destination, "events": list(events)}, separators=(",", ":"))
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        "x-line-signature": line_signature(raw, channel_secret),
    }
    return SignedWebhook(raw, headers, "application/json")


def line_event(
    kind: str,
    user_id: str,
    *,
    sent_at: datetime | None = None,
    reply_token: str | None = None,
    **fields: object,
) -> dict[str, object]:
    """One LINE event of ``kind`` from user ``user_id``'s 1:1 chat, with ``fields``."""
    when = sent_at or datetime.now(UTC)
    event: dict[str, object] = {
        "type": kind,
        "mode": "active",
        "timestamp": int(when.timestamp() * 1000),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False},
    }
    if reply_token is not None:
        event["replyToken"] = reply_token
    event.update(fields)
    return event


def line_message_webhook(
    channel_secret: str,
    *,
    destination: str,
    user_id: str,
    message_id: str,
    text: str | None = None,
    media: WebhookMedia | None = None,
    reply_token: str | None = None,
    sent_at: datetime | None = None,
) -> SignedWebhook:
    """A customer's LINE ``message`` event: a text, or with ``media`` (its ``ref`` the id of
    content the sandbox serves) an image, video, audio or file message (``text`` is then not
    sent: LINE has no captions)."""
    message: dict[str, object] = {"id": message_id, "quoteToken": f"q{message_id}"}
    if media is None:
        message.update({"type": "text", "text": text or ""})
    else:
        kind = {
            MediaKind.IMAGE: "image",
            MediaKind.VIDEO: "video",
            MediaKind.AUDIO: "audio",
            MediaKind.VOICE: "audio",
        }.get(media.kind, "file")
        message["type"] = kind
        message["id"] = media.ref
        if kind == "file":
            message["fileName"] = media.filename or "file"
            message["fileSize"] = media.size or 0
        else:
            message["contentProvider"] = {"type": "line"}
    event = line_event(
        "message", user_id, sent_at=sent_at, reply_token=reply_token, message=message
    )
    return line_events_webhook(channel_secret, destination, [event])
