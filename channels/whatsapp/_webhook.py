"""WhatsApp Cloud API webhooks, sans-io: signature, verification handshake, parsing.

One POST may batch several entries, changes, messages and statuses; :func:`parse_whatsapp`
walks all of them and keeps payload order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from .._decode import (
    MAX_TIMESTAMP,
    MAX_WEBHOOK_BYTES,
    bounded_list,
    check_size,
    timestamp,
    validate_json,
)
from .._meta import verify_meta_handshake, verify_meta_signature
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

__all__ = ["parse_whatsapp", "verify_whatsapp_handshake", "verify_whatsapp_signature"]

SIGNATURE_HEADER: Final = "X-Hub-Signature-256"

Timestamp = Annotated[int, Field(ge=0, le=MAX_TIMESTAMP)]
Code = Annotated[int, Field(ge=-(2**53), le=2**53)]


def verify_whatsapp_signature(body: bytes, signature: str | None, app_secret: str) -> None:
    """Check ``X-Hub-Signature-256`` (``sha256=<hex HMAC-SHA256 of the raw body>``): Meta's
    scheme, shared with Messenger and Instagram (:func:`channels._meta.verify_meta_signature`).

    Raises:
        SignatureInvalid: the header is missing, malformed or does not match.
    """
    verify_meta_signature(body, signature, app_secret)


def verify_whatsapp_handshake(query: Mapping[str, str], verify_token: str) -> str:
    """Meta's GET verification: return ``hub.challenge`` to echo as the ``text/plain`` body
    (:func:`channels._meta.verify_meta_handshake`).

    Raises:
        SignatureInvalid: ``hub.mode`` is not ``subscribe``, the token differs (constant-time
            compare) or the challenge is missing.
    """
    return verify_meta_handshake(query, verify_token)


# --- payload models (only the fields we read; everything else is ignored) ----------------


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Metadata(_In):
    phone_number_id: str = Field(min_length=1, pattern=r"^[^:]+$")
    display_phone_number: str | None = None


class _Profile(_In):
    name: str | None = None


class _Contact(_In):
    wa_id: str | None = None
    user_id: str | None = None
    profile: _Profile | None = None


class _Text(_In):
    body: str


class _Media(_In):
    id: str = Field(min_length=1)
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False


class _Location(_In):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = None
    address: str | None = None
    url: str | None = None


class _Context(_In):
    id: str | None = None


class _System(_In):
    type: str | None = None
    wa_id: str | None = None
    body: str | None = None


class _Button(_In):
    text: str | None = None


class _Reply(_In):
    id: str | None = None
    title: str | None = None


class _Interactive(_In):
    type: str | None = None
    button_reply: _Reply | None = None
    list_reply: _Reply | None = None


class _Error(_In):
    code: Code | None = None
    title: str | None = None


class _Reaction(_In):
    message_id: str | None = None
    emoji: str | None = None  # absent or empty when the customer removed their reaction


class _CardName(_In):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class _CardPhone(_In):
    phone: str | None = None
    wa_id: str | None = None


class _CardEmail(_In):
    email: str | None = None


class _CardOrg(_In):
    company: str | None = None


class _Card(_In):
    name: _CardName | None = None
    phones: list[_CardPhone] = bounded_list()
    emails: list[_CardEmail] = bounded_list()
    org: _CardOrg | None = None


class _UnsupportedInfo(_In):
    type: str | None = None


class _Message(_In):
    id: str = Field(min_length=1)
    from_: str = Field(alias="from", min_length=1)
    timestamp: Timestamp
    type: str
    text: _Text | None = None
    image: _Media | None = None
    video: _Media | None = None
    audio: _Media | None = None
    document: _Media | None = None
    sticker: _Media | None = None
    location: _Location | None = None
    context: _Context | None = None
    system: _System | None = None
    button: _Button | None = None
    interactive: _Interactive | None = None
    reaction: _Reaction | None = None
    contacts: list[_Card] = bounded_list()
    unsupported: _UnsupportedInfo | None = None
    errors: list[_Error] = bounded_list()


class _Status(_In):
    id: str = Field(min_length=1)
    status: str = Field(min_length=1)
    timestamp: Timestamp | None = None
    recipient_id: str | None = None
    errors: list[_Error] = bounded_list()


class _Value(_In):
    metadata: _Metadata | None = None
    contacts: list[_Contact] = bounded_list()
    messages: list[_Message] = bounded_list()
    statuses: list[_Status] = bounded_list()
    errors: list[_Error] = bounded_list()


class _Change(_In):
    field: str
    value: _Value


class _Entry(_In):
    id: str | None = None
    changes: list[_Change] = bounded_list()


class _Envelope(_In):
    object: str
    entry: list[_Entry] = bounded_list(required=True)


# --- normalization -----------------------------------------------------------------------


def parse_whatsapp(body: bytes, *, max_bytes: int = MAX_WEBHOOK_BYTES) -> list[ParsedEvent]:
    """Parse a WhatsApp Cloud API webhook body into normalized events, in payload order.

    Messages of every type become InboundMessage (reactions, contact cards and types the bridge
    cannot carry included: :func:`render_inbound` says what they were), ``statuses[]`` become
    DeliveryStatus, and what is not a customer's message (system events, other fields)
    becomes Ignored with a one-line reason.

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: anything that is not a readable WhatsApp webhook.
    """
    check_size(body, max_bytes, "whatsapp")
    envelope = validate_json(_Envelope, body, "whatsapp")
    if envelope.object != "whatsapp_business_account":
        return [Ignored(reason=f"whatsapp object {envelope.object[:60]!r} is not bridged")]
    events: list[ParsedEvent] = []
    for entry in envelope.entry:
        for change in entry.changes:
            events.extend(_change_events(change))
    if not events:
        events.append(Ignored(reason="whatsapp webhook without messages or statuses"))
    return events


def _change_events(change: _Change) -> list[ParsedEvent]:
    if change.field != "messages":
        return [Ignored(reason=f"whatsapp field {change.field[:60]!r} is not bridged")]
    value = change.value
    events: list[ParsedEvent] = [
        Ignored(reason=f"whatsapp webhook error {error.code}: {error.title or 'no title'}")
        for error in value.errors
    ]
    if value.metadata is None:
        if value.messages or value.statuses:
            events.append(Ignored(reason="whatsapp change without metadata.phone_number_id"))
        return events
    account = value.metadata.phone_number_id
    names: dict[str | None, str | None] = {}
    for contact in value.contacts:
        if contact.profile is not None:
            # Senders are phone numbers (wa_id) or, increasingly, business-scoped user ids.
            names.update(dict.fromkeys((contact.wa_id, contact.user_id), contact.profile.name))
    events.extend(_message_event(account, m, names) for m in value.messages)
    events.extend(_status_event(account, s) for s in value.statuses)
    return events


def _status_event(account: str, status: _Status) -> DeliveryStatus:
    error = status.errors[0] if status.errors else None
    return DeliveryStatus(
        key=(
            ThreadKey(channel=Channel.WHATSAPP, account=account, customer=status.recipient_id)
            if status.recipient_id
            else None
        ),
        provider_message_id=status.id,
        status=status.status,
        error_code=error.code if error else None,
        error_title=error.title if error else None,
        at=timestamp(status.timestamp) if status.timestamp is not None else None,
    )


_MEDIA_KINDS: Final = {
    "image": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "audio": MediaKind.AUDIO,
    "document": MediaKind.DOCUMENT,
    "sticker": MediaKind.STICKER,
}


_NOT_MESSAGES: Final = frozenset({"system", "request_welcome"})
"""Types that are events about the chat, not something the customer wrote."""


def _card(card: _Card) -> SharedContact:
    name = card.name
    full = None
    if name is not None:
        full = name.formatted_name or " ".join(p for p in (name.first_name, name.last_name) if p)
    phones = tuple(p.phone or f"+{p.wa_id}" for p in card.phones if p.phone or p.wa_id)
    return SharedContact(
        name=full or None,
        phones=phones,
        emails=tuple(e.email for e in card.emails if e.email),
        company=card.org.company if card.org is not None else None,
    )


def _unsupported_name(msg: _Message) -> str:
    """The type as WhatsApp names it, with its error's title and code when it gives them:
    ``"poll_creation (Message type unknown, error 131051)"``."""
    what = msg.type[:40] or "unknown"
    if msg.type == "unsupported":
        info = msg.unsupported
        what = info.type[:40] if info is not None and info.type else "unknown"
    if msg.type == "interactive" and msg.interactive is not None and msg.interactive.type:
        what = f"interactive {msg.interactive.type[:40]}"
    error = msg.errors[0] if msg.errors else None
    if error is not None:
        details = [(error.title or "")[:80]] if error.title else []
        if error.code is not None:
            details.append(f"error {error.code}")
        if details:
            what = f"{what} ({', '.join(details)})"
    return what


def _message_event(
    account: str, msg: _Message, names: Mapping[str | None, str | None]
) -> ParsedEvent:
    text: str | None = None
    attachments: tuple[MediaRef, ...] = ()
    location: Location | None = None
    reply_to = msg.context.id if msg.context is not None else None
    reaction: str | None = None
    contacts: tuple[SharedContact, ...] = ()
    unsupported: str | None = None
    if msg.type == "text" and msg.text is not None:
        text = msg.text.body
    elif msg.type in _MEDIA_KINDS and (media := getattr(msg, msg.type)) is not None:
        assert isinstance(media, _Media)
        kind = MediaKind.VOICE if msg.type == "audio" and media.voice else _MEDIA_KINDS[msg.type]
        text = media.caption
        attachments = (
            MediaRef(
                kind=kind,
                ref=media.id,
                mime_type=media.mime_type,
                filename=media.filename,
                sha256=media.sha256,
            ),
        )
    elif msg.type == "location" and msg.location is not None:
        loc = msg.location
        location = Location(
            latitude=loc.latitude,
            longitude=loc.longitude,
            name=loc.name,
            address=loc.address,
            url=loc.url,
        )
    elif msg.type == "button" and msg.button is not None and msg.button.text:
        text = msg.button.text
    elif (
        msg.type == "interactive"
        and msg.interactive is not None
        and (reply := msg.interactive.button_reply or msg.interactive.list_reply) is not None
        and reply.title
    ):
        text = reply.title
    elif msg.type == "reaction" and msg.reaction is not None and msg.reaction.message_id:
        reaction = msg.reaction.emoji or ""
        reply_to = msg.reaction.message_id
    elif msg.type == "contacts" and msg.contacts:
        contacts = tuple(_card(card) for card in msg.contacts)
    elif msg.type in _NOT_MESSAGES:
        return _ignored(msg)
    else:
        unsupported = _unsupported_name(msg)
    return InboundMessage(
        key=ThreadKey(channel=Channel.WHATSAPP, account=account, customer=msg.from_),
        provider_message_id=msg.id,
        phone=f"+{msg.from_}" if msg.from_.isdecimal() and msg.from_.isascii() else None,
        profile_name=names.get(msg.from_),
        sent_at=timestamp(msg.timestamp),
        text=text,
        attachments=attachments,
        location=location,
        reply_to=reply_to,
        reaction=reaction,
        contacts=contacts,
        unsupported=unsupported,
    )


def _ignored(msg: _Message) -> Ignored:
    if msg.type == "system" and msg.system is not None:
        if msg.system.type == "user_changed_number":
            return Ignored(
                reason=f"whatsapp system event: customer {msg.from_} changed number to "
                f"{msg.system.wa_id}; the thread is not re-keyed automatically",
                what="system",
            )
        return Ignored(
            reason=f"whatsapp system event {msg.system.type!r} is not bridged", what="system"
        )
    return Ignored(reason=f"whatsapp event {msg.type[:40]!r} is not bridged", what="system")
