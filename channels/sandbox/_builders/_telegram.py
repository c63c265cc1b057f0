"""Telegram Bot API updates, with the webhook's secret token."""

from __future__ import annotations

import json
from datetime import datetime

from channels import MediaKind

from ._common import SignedWebhook, WebhookContact, WebhookMedia, unix

__all__ = ["telegram_message_webhook", "telegram_update_webhook"]


def telegram_message_webhook(
    secret_token: str,
    *,
    chat_id: int,
    message_id: int,
    text: str | None = None,
    media: WebhookMedia | None = None,
    update_id: int | None = None,
    first_name: str = "Sandbox",
    last_name: str | None = "Customer",
    sent_at: datetime | None = None,
    reply_to: int | None = None,
    reply_to_text: str | None = None,
    edited_at: datetime | None = None,
    contact: WebhookContact | None = None,
    group_title: str | None = None,
    sender_id: int | None = None,
    content: dict[str, object] | None = None,
) -> SignedWebhook:
    """A Telegram ``message`` update, with the secret-token header: from a private chat, or
    from the group ``chat_id`` titled ``group_title`` written by the user ``sender_id``.

    With ``media``, ``text`` becomes the caption; images arrive as ``photo`` sizes. With
    ``edited_at`` it is an ``edited_message`` update (``text`` the new text). ``reply_to``
    quotes message ``reply_to`` of the chat (its text ``reply_to_text``, as Telegram includes
    it); ``contact`` shares a contact card; ``content`` replaces the text by other message
    fields (``{"poll": {...}}``, ``{"dice": {...}}``) the bridge cannot carry.
    """
    user: dict[str, object] = {
        "id": sender_id if sender_id is not None else chat_id,
        "is_bot": False,
        "first_name": first_name,
    }
    if last_name is not None:
        user["last_name"] = last_name
    chat: dict[str, object] = {**user, "type": "private"}
    if group_title is not None:
        chat = {"id": chat_id, "title": group_title, "type": "supergroup"}
    message: dict[str, object] = {
        "message_id": message_id,
        "from": user,
        "chat": chat,
        "date": unix(sent_at),
    }
    if edited_at is not None:
        message["edit_date"] = unix(edited_at)
    if reply_to is not None:
        replied: dict[str, object] = {"message_id": reply_to, "date": unix(sent_at), "chat": chat}
        if reply_to_text is not None:
            replied["text"] = reply_to_text
        message["reply_to_message"] = replied
    if contact is not None:
        card: dict[str, object] = {
            "phone_number": contact.phones[0] if contact.phones else "",
            "first_name": contact.first_name,
        }
        if contact.last_name:
            card["last_name"] = contact.last_name
        message["contact"] = card
    elif content is not None:
        message.update(content)
    elif media is None:
        message["text"] = text or ""
    else:
        message.update(_telegram_media(media))
        if text:
            message["caption"] = text
    kind = "message" if edited_at is None else "edited_message"
    update = {"update_id": update_id if update_id is not None else message_id, kind: message}
    return _telegram_signed(secret_token, update)


def telegram_update_webhook(
    secret_token: str, update_id: int, kind: str, payload: dict[str, object]
) -> SignedWebhook:
    """A Telegram update of another ``kind`` (``callback_query``, ``my_chat_member``,
    ``channel_post``, …) carrying ``payload``, with the secret-token header."""
    return _telegram_signed(secret_token, {"update_id": update_id, kind: payload})


def _telegram_signed(secret_token: str, update: dict[str, object]) -> SignedWebhook:
    body = json.dumps(update, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret_token}
    return SignedWebhook(body, headers, "application/json")


def _telegram_media(media: WebhookMedia) -> dict[str, object]:
    file: dict[str, object] = {"file_id": media.ref, "file_unique_id": f"U{media.ref[:24]}"}
    if media.size is not None:
        file["file_size"] = media.size
    if media.kind is MediaKind.IMAGE:
        return {"photo": [{**file, "width": 320, "height": 240}]}
    file["mime_type"] = media.mime_type
    name = {
        MediaKind.AUDIO: "audio",
        MediaKind.VOICE: "voice",
        MediaKind.VIDEO: "video",
        MediaKind.STICKER: "sticker",
    }.get(media.kind, "document")
    if media.filename is not None and name in ("document", "audio", "video"):
        file["file_name"] = media.filename
    return {name: file}
