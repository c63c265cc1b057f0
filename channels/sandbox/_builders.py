"""Correctly signed provider webhooks, in the providers' real formats.

Used by the demo, the load test and the tests to play the provider's side: the output of each
builder is exactly what the provider would POST (body bytes plus headers), and it parses with
this package's own parsers. Attachments reference media by provider reference, for example an
id from :meth:`ProviderSandbox.add_media` (a Twilio ``MediaUrl`` from
:meth:`ProviderSandbox.twilio_media_url`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from channels import MediaKind, line_signature, twilio_signature

__all__ = [
    "MetaInbound",
    "SignedWebhook",
    "WebhookContact",
    "WebhookMedia",
    "WhatsAppInbound",
    "messenger_delivery_webhook",
    "meta_webhook",
    "line_event",
    "line_events_webhook",
    "line_message_webhook",
    "telegram_message_webhook",
    "telegram_update_webhook",
    "twilio_message_webhook",
    "twilio_status_webhook",
    "viber_event_webhook",
    "viber_message_webhook",
    "viber_signed",
    "whatsapp_status_webhook",
    "whatsapp_text_webhook",
    "whatsapp_webhook",
]


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """A webhook request as the provider sends it; ``headers`` include the content type."""

    body: bytes
    headers: dict[str, str]
    content_type: str


@dataclass(frozen=True, slots=True)
class WebhookMedia:
    """An attachment in a built webhook: ``ref`` is the WhatsApp media id, Twilio media URL or
    Telegram file_id."""

    ref: str
    mime_type: str
    filename: str | None = None
    size: int | None = None
    sha256: str | None = None
    voice: bool = False

    @property
    def kind(self) -> MediaKind:
        kind = MediaKind.from_mime(self.mime_type)
        return MediaKind.VOICE if kind is MediaKind.AUDIO and self.voice else kind


@dataclass(frozen=True, slots=True)
class WebhookContact:
    """A contact card a customer shares (WhatsApp ``contacts``, Telegram ``contact``)."""

    first_name: str
    last_name: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


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


def _unix(when: datetime | None) -> int:
    return int((when or datetime.now(UTC)).timestamp())


def _json(data: object) -> bytes:
    # Meta sends compact JSON with non-ASCII escaped; the signature covers these exact bytes.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode()


def _whatsapp_signed(app_secret: str, value: dict[str, object]) -> SignedWebhook:
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000001", "changes": [{"value": value, "field": "messages"}]}],
    }
    body = _json(envelope)
    signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    return SignedWebhook(body, headers, "application/json")


def _metadata(phone_number_id: str) -> dict[str, str]:
    return {"display_phone_number": "15550002222", "phone_number_id": phone_number_id}


def _whatsapp_message(message: WhatsAppInbound) -> dict[str, object]:
    data: dict[str, object] = {
        "from": message.from_phone,
        "id": message.message_id,
        "timestamp": str(_unix(message.sent_at)),
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
        "timestamp": str(_unix(at)),
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


def _twilio_signed(auth_token: str, url: str, pairs: list[tuple[str, str]]) -> SignedWebhook:
    content_type = "application/x-www-form-urlencoded"
    headers = {
        "Content-Type": content_type,
        "X-Twilio-Signature": twilio_signature(url, pairs, auth_token),
    }
    return SignedWebhook(urlencode(pairs).encode(), headers, content_type)


def twilio_message_webhook(
    auth_token: str,
    url: str,
    *,
    account_sid: str,
    to: str,
    from_: str,
    body: str = "",
    media: Sequence[WebhookMedia] = (),
    message_sid: str | None = None,
    profile_name: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
    opt_out_type: str | None = None,
) -> SignedWebhook:
    """A signed Twilio inbound-message webhook for the public ``url`` Twilio posts to.

    ``to``/``from_`` carry Twilio's ``whatsapp:`` prefix for the WhatsApp sender; ``extra``
    adds parameters (``MessageType``, ``ButtonText``, ``Latitude``, …). ``opt_out_type``
    (``STOP``/``START``/``HELP``) is the ``OptOutType`` field Twilio adds when Advanced
    Opt-Out acted on the message.
    """
    sid = message_sid or ("MM" if media else "SM") + uuid.uuid4().hex
    pairs = [("SmsMessageSid", sid), ("NumMedia", str(len(media)))]
    for index, item in enumerate(media):
        pairs += [(f"MediaContentType{index}", item.mime_type), (f"MediaUrl{index}", item.ref)]
    pairs += [("SmsSid", sid), ("SmsStatus", "received"), ("Body", body), ("To", to)]
    pairs += [("NumSegments", "1"), ("MessageSid", sid), ("AccountSid", account_sid)]
    pairs += [("From", from_), ("ApiVersion", "2010-04-01")]
    if profile_name is not None:
        pairs += [("ProfileName", profile_name), ("WaId", from_.rpartition(":")[2].lstrip("+"))]
    pairs += list(extra)
    if opt_out_type is not None:
        pairs.append(("OptOutType", opt_out_type))
    return _twilio_signed(auth_token, url, pairs)


def twilio_status_webhook(
    auth_token: str,
    url: str,
    *,
    account_sid: str,
    to: str,
    from_: str,
    message_sid: str,
    status: str,
    error_code: int | None = None,
) -> SignedWebhook:
    """A signed Twilio status callback for our outbound ``message_sid`` (``to`` = customer)."""
    pairs = [("SmsSid", message_sid), ("SmsStatus", status), ("MessageStatus", status)]
    if error_code is not None:
        pairs.append(("ErrorCode", str(error_code)))
    pairs += [("To", to), ("MessageSid", message_sid), ("AccountSid", account_sid)]
    pairs += [("From", from_), ("ApiVersion", "2010-04-01")]
    return _twilio_signed(auth_token, url, pairs)


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
        "date": _unix(sent_at),
    }
    if edited_at is not None:
        message["edit_date"] = _unix(edited_at)
    if reply_to is not None:
        replied: dict[str, object] = {"message_id": reply_to, "date": _unix(sent_at), "chat": chat}
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
    body = _json(envelope)
    signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    return SignedWebhook(body, headers, "application/json")


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
    body = _json({"object": "page", "entry": [{"id": page_id, "time": _millis(None),
                                               "messaging": [event]}]})  # fmt: skip
    signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    return SignedWebhook(body, headers, "application/json")


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
