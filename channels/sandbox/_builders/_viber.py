"""Signed Viber REST bot API callbacks."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from channels import MediaKind

from ._common import SignedWebhook, WebhookContact, WebhookMedia

__all__ = ["viber_event_webhook", "viber_message_webhook", "viber_signed"]


def viber_message_webhook(
    auth_token: str,
    *,
    user_id: str,
    message_token: int,
    text: str | None = None,
    media: WebhookMedia | None = None,
    name: str | None = "Sandbox Customer",
    sent_at: datetime | None = None,
    location: tuple[float, float] | None = None,
    contact: WebhookContact | None = None,
    message_type: str | None = None,
) -> SignedWebhook:
    """A Viber ``message`` callback from user ``user_id``, signed with the bot's auth token.

    With ``media`` (``ref`` a URL Viber's CDN would serve) it is a ``picture`` (images, the
    caption in ``text``), ``video`` or ``file``; ``location`` is (lat, lon); ``contact`` a
    shared contact; ``message_type`` names another type (``sticker``, or one the bridge does
    not know).
    """
    message: dict[str, object] = {"type": message_type or "text"}
    if text is not None:
        message["text"] = text
    if media is not None:
        kind = {MediaKind.IMAGE: "picture", MediaKind.VIDEO: "video"}.get(media.kind, "file")
        message.update(type=message_type or kind, media=media.ref)
        if media.size is not None:
            message["size"] = media.size
        if media.filename is not None:
            message["file_name"] = media.filename
    elif location is not None:
        message.update(type="location", location={"lat": location[0], "lon": location[1]})
    elif contact is not None:
        card_name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        card: dict[str, object] = {"name": card_name}
        if contact.phones:
            card["phone_number"] = contact.phones[0]
        message.update(type="contact", contact=card)
    sender: dict[str, object] = {"id": user_id, "api_version": 10}
    if name is not None:
        sender["name"] = name
    event = {
        "event": "message",
        "timestamp": int((sent_at or datetime.now(UTC)).timestamp() * 1000),
        "message_token": message_token,
        "sender": sender,
        "message": message,
    }
    return viber_signed(auth_token, event)


def viber_event_webhook(
    auth_token: str,
    event: str,
    *,
    user_id: str | None = None,
    message_token: int | None = None,
    desc: str | None = None,
    at: datetime | None = None,
) -> SignedWebhook:
    """Another Viber callback (``subscribed``, ``unsubscribed``, ``conversation_started``,
    ``delivered``, ``seen``, ``failed`` with ``desc``, ``webhook``), signed. ``user_id`` goes
    in ``user`` for the events that carry the user, else in ``user_id``."""
    body: dict[str, object] = {
        "event": event,
        "timestamp": int((at or datetime.now(UTC)).timestamp() * 1000),
    }
    if message_token is not None:
        body["message_token"] = message_token
    if user_id is not None:
        if event in ("subscribed", "conversation_started"):
            body["user"] = {"id": user_id, "name": "Sandbox Customer", "api_version": 10}
        else:
            body["user_id"] = user_id
    if event == "conversation_started":
        body.update(type="open", subscribed=False)
    if desc is not None:
        body["desc"] = desc
    return viber_signed(auth_token, body)


def viber_signed(auth_token: str, event: dict[str, object]) -> SignedWebhook:
    """``event`` as Viber posts it: JSON (integers exact), ``X-Viber-Content-Signature`` the
    hex HMAC-SHA256 of the body with the auth token."""
    body = json.dumps(event, ensure_ascii=False).encode()
    signature = hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Viber-Content-Signature": signature}
    return SignedWebhook(body, headers, "application/json")
