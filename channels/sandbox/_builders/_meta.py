"""Signed webhooks of Meta's platforms: WhatsApp Cloud API, Messenger and Instagram."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels import MediaKind

from ._common import SignedWebhook, WebhookContact, WebhookMedia, hub_signed, unix

__all__ = [
    "MetaInbound",
    "WhatsAppInbound",
    "messenger_delivery_webhook",
    "meta_webhook",
    "whatsapp_status_webhook",
    "whatsapp_text_webhook",
    "whatsapp_webhook",
]


@dataclass(frozen=True, slots=True)
class WhatsAppInbound:
    """One customer message in a WhatsApp webhook batch: a text (or captioned ``media``), or
    with ``reaction`` set a reaction to ``reply_to`` (``""`` removes it: the emoji field is
    left out, as WhatsApp does), with ``contacts`` a contact-card message, or with
    ``unsupported`` a message of that type as WhatsApp reports one it cannot carry."""

    from_phone: str  # wa_id, digits without "+"
    text: str | None = None
    media: WebhookMedia | None = None
    message_id: str = field(default_factory=lambda: f"wamid.{uuid.uuid4().hex}")
    name: str | None = None
    sent_at: datetime | None = None
    reply_to: str | None = None
    reaction: str | None = None
    contacts: tuple[WebhookContact, ...] = ()
    unsupported: str | None = None


def _whatsapp_signed(app_secret: str, value: dict[str, object]) -> SignedWebhook:
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000001", "changes": [{"value": value, "field": "messages"}]}],
    }
    return hub_signed(app_secret, envelope)


def _metadata(phone_number_id: str) -> dict[str, str]:
    return {"display_phone_number": "15550002222", "phone_number_id": phone_number_id}


def _whatsapp_message(message: WhatsAppInbound) -> dict[str, object]:
    data: dict[str, object] = {
        "from": message.from_phone,
        "id": message.message_id,
        "timestamp": str(unix(message.sent_at)),
    }
    if message.reaction is not None:
        reaction = {"message_id": message.reply_to or ""}
        if message.reaction:
            reaction["emoji"] = message.reaction
        data.update(type="reaction", reaction=reaction)
        return data
    if message.reply_to:
        data["context"] = {"from": "15550002222", "id": message.reply_to}
    if message.contacts:
        data.update(type="contacts", contacts=[_whatsapp_card(c) for c in message.contacts])
        return data
    if message.unsupported is not None:
        title = "Message type unknown"
        error = {"code": 131051, "title": title, "message": title}
        data.update(type="unsupported", errors=[error], unsupported={"type": message.unsupported})
        return data
    media = message.media
    if media is None:
        data.update(type="text", text={"body": message.text or ""})
        return data
    kind = {MediaKind.VOICE: "audio", MediaKind.STICKER: "sticker"}.get(
        media.kind, media.kind.value
    )
    payload: dict[str, object] = {"mime_type": media.mime_type, "id": media.ref}
    if media.sha256:
        payload["sha256"] = media.sha256
    if message.text and kind in ("image", "video", "document"):
        payload["caption"] = message.text
    if media.filename and kind == "document":
        payload["filename"] = media.filename
    if kind == "audio":
        payload["voice"] = media.voice
    data.update(type=kind, **{kind: payload})
    return data


def _whatsapp_card(card: WebhookContact) -> dict[str, object]:
    name: dict[str, str] = {"first_name": card.first_name}
    if card.last_name:
        name["last_name"] = card.last_name
    name["formatted_name"] = " ".join(p for p in (card.first_name, card.last_name) if p)
    return {
        "name": name,
        "phones": [
            {"phone": phone, "wa_id": "".join(c for c in phone if c.isdigit()), "type": "CELL"}
            for phone in card.phones
        ],
        "emails": [{"email": email, "type": "HOME"} for email in card.emails],
    }


def whatsapp_webhook(
    app_secret: str, phone_number_id: str, messages: Sequence[WhatsAppInbound]
) -> SignedWebhook:
    """A signed WhatsApp webhook carrying ``messages`` (a batch) in one change, in order."""
    contacts: dict[str, dict[str, object]] = {}
    for message in messages:
        contacts.setdefault(
            message.from_phone,
            {"profile": {"name": message.name or "Sandbox Customer"}, "wa_id": message.from_phone},
        )
    value: dict[str, object] = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(phone_number_id),
        "contacts": list(contacts.values()),
        "messages": [_whatsapp_message(m) for m in messages],
    }
    return _whatsapp_signed(app_secret, value)


def whatsapp_text_webhook(
    app_secret: str,
    phone_number_id: str,
    from_phone: str,
    text: str,
    *,
    message_id: str | None = None,
    name: str | None = None,
    media: WebhookMedia | None = None,
) -> SignedWebhook:
    """A signed WhatsApp webhook with one text (or captioned media) message."""
    inbound = WhatsAppInbound(from_phone, text=text, media=media, name=name)
    if message_id is not None:
        inbound = dataclasses.replace(inbound, message_id=message_id)
    return whatsapp_webhook(app_secret, phone_number_id, [inbound])


def whatsapp_status_webhook(
    app_secret: str,
    phone_number_id: str,
    recipient: str,
    message_id: str,
    status: str,
    *,
    error_code: int | None = None,
    error_title: str | None = None,
    at: datetime | None = None,
) -> SignedWebhook:
    """A signed WhatsApp status (receipt) webhook for one of our outbound messages."""
    entry: dict[str, object] = {
        "id": message_id,
        "status": status,
        "timestamp": str(unix(at)),
        "recipient_id": recipient,
    }
    if error_code is not None:
        title = error_title or "Error"
        entry["errors"] = [{"code": error_code, "title": title, "message": title}]
    value: dict[str, object] = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(phone_number_id),
        "statuses": [entry],
    }
    return _whatsapp_signed(app_secret, value)


# --- Messenger and Instagram (Meta's messaging platform) -----------------------------------


@dataclass(frozen=True, slots=True)
class MetaInbound:
    """One customer event in a Messenger (``object: page``) or Instagram webhook: a message
    (``text``, an attachment by ``media_url`` of ``media_type`` image/video/audio/file, a reply
    to ``reply_to``), or with ``postback_title`` a button the customer pressed."""

    sender: str  # PSID / IGSID
    text: str | None = None
    media_url: str | None = None
    media_type: str = "image"
    mid: str = field(default_factory=lambda: f"m_{uuid.uuid4().hex}")
    sent_at: datetime | None = None
    reply_to: str | None = None
    postback_title: str | None = None


def _millis(when: datetime | None) -> int:
    return int((when or datetime.now(UTC)).timestamp() * 1000)


def _meta_event(account: str, event: MetaInbound) -> dict[str, object]:
    data: dict[str, object] = {
        "sender": {"id": event.sender},
        "recipient": {"id": account},
        "timestamp": _millis(event.sent_at),
    }
    if event.postback_title is not None:
        data["postback"] = {
            "mid": event.mid, "title": event.postback_title, "payload": "SANDBOX_PAYLOAD",
        }  # fmt: skip
        return data
    message: dict[str, object] = {"mid": event.mid}
    if event.text is not None:
        message["text"] = event.text
    if event.media_url is not None:
        message["attachments"] = [{"type": event.media_type, "payload": {"url": event.media_url}}]
    if event.reply_to is not None:
        message["reply_to"] = {"mid": event.reply_to}
    data["message"] = message
    return data


def meta_webhook(
    app_secret: str,
    account: str,
    events: Sequence[MetaInbound],
    *,
    object: str = "page",
) -> SignedWebhook:
    """A signed Messenger (``object="page"``, ``account`` the Page id) or Instagram
    (``object="instagram"``, the professional account's id) webhook with ``events`` in one
    entry, as Meta posts it (compact JSON, non-ASCII escaped, ``X-Hub-Signature-256``)."""
    envelope = {
        "object": object,
        "entry": [
            {
                "id": account,
                "time": _millis(None),
                "messaging": [_meta_event(account, event) for event in events],
            }
        ],
    }
    return hub_signed(app_secret, envelope)


def messenger_delivery_webhook(
    app_secret: str, page_id: str, psid: str, mids: Sequence[str]
) -> SignedWebhook:
    """A signed Messenger ``delivery`` event for messages the Page sent to ``psid``."""
    event = {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "timestamp": _millis(None),
        "delivery": {"mids": list(mids), "watermark": _millis(None)},
    }
    envelope: dict[str, object] = {
        "object": "page",
        "entry": [{"id": page_id, "time": _millis(None), "messaging": [event]}],
    }
    return hub_signed(app_secret, envelope)
