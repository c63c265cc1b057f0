"""Meta's messaging platform, shared by Messenger (Facebook Pages) and Instagram, and the
webhook pieces WhatsApp's Cloud API has in common with them.

- **Webhooks** (sans-io): ``X-Hub-Signature-256`` (:func:`verify_meta_signature`), the ``GET``
  verification handshake (:func:`verify_meta_handshake`), and the ``messaging`` envelope
  ``{"object", "entry": [{"id", "messaging": [event...]}]}`` (:func:`parse_meta_messaging`):
  messages (text, quick replies, replies, attachments, story replies and mentions, unsends),
  echoes (ignored), postbacks (the button's title as the customer's text), reactions, edits,
  reads and deliveries.
- **Send API** (:class:`MetaMessagingClient`): ``POST {base}/{account}/messages`` with the
  Page (or Instagram) access token as a bearer header; ``messaging_type: RESPONSE`` within 24
  hours of the customer's last message, and when Meta answers that the window is closed,
  once more with ``MESSAGE_TAG`` / ``HUMAN_AGENT`` (a human's reply, up to 7 days) when the
  account allows it. Attachments go by URL (the bridge's public ``/media`` links); media
  arrives as signed CDN URLs fetched without a token, from an explicit allow-list of hosts.
- **Errors** (:func:`classify_meta_error`): the Graph error body's ``code`` and
  ``error_subcode`` (not the HTTP status, mostly 400) on the shared ladder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ._classify import ErrorCodes, classify_error
from ._decode import (
    MAX_WEBHOOK_BYTES,
    check_size,
    constant_time_equal,
    require_header,
    timestamp,
    validate_json,
)
from ._errors import (
    AccountMismatch,
    ChannelError,
    MediaUnavailable,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendRejected,
    SendTransient,
    SignatureInvalid,
)
from ._http import Origin, fetch_capped, origins, send
from ._model import (
    Channel,
    DeliveryStatus,
    DownloadedMedia,
    Ignored,
    InboundMessage,
    Location,
    MediaKind,
    MediaRef,
    OutboundMedia,
    ParsedEvent,
    ThreadKey,
    media_type,
)
from ._text import Span

__all__ = [
    "INSTAGRAM",
    "MESSENGER",
    "META_CDN_SUFFIXES",
    "MetaApp",
    "MetaMessagingClient",
    "MetaMessagingConfig",
    "classify_meta_error",
    "envelope_accounts",
    "message_body",
    "parse_instagram",
    "parse_messenger",
    "parse_meta_messaging",
    "verify_meta_handshake",
    "verify_meta_signature",
]

SIGNATURE_HEADER: Final = "X-Hub-Signature-256"

META_CDN_SUFFIXES: Final = ("fbcdn.net", "fbsbx.com", "cdninstagram.com")
"""The hosts Meta serves webhook attachments from (``scontent-*.xx.fbcdn.net``,
``lookaside.fbsbx.com``, Instagram's ``*.cdninstagram.com``): https only, no token sent."""

_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_MAX_ID: Final = 256


# --- signature and handshake (also WhatsApp's) ---------------------------------------------


def verify_meta_signature(body: bytes, signature: str | None, app_secret: str) -> None:
    """Check ``X-Hub-Signature-256`` (``sha256=<hex HMAC-SHA256 of the raw body>``).

    Runs over the exact bytes received (never re-serialized JSON), in constant time. The
    legacy ``X-Hub-Signature`` (SHA-1) is not read.

    Raises:
        SignatureInvalid: the header is missing, malformed or does not match.
    """
    value = require_header(signature, SIGNATURE_HEADER)
    scheme, _, given = value.partition("=")
    if scheme.strip().lower() != "sha256" or not given:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} is not of the form sha256=<hex>")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not constant_time_equal(given.strip().lower(), expected):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body")


def verify_meta_handshake(query: Mapping[str, str], verify_token: str) -> str:
    """Meta's GET verification: return ``hub.challenge`` to echo as the ``text/plain`` body.

    Raises:
        SignatureInvalid: ``hub.mode`` is not ``subscribe``, the token differs (constant-time
            compare) or the challenge is missing (the ingress answers 403, as Meta expects).
    """
    if query.get("hub.mode") != "subscribe":
        raise SignatureInvalid("hub.mode is not 'subscribe'")
    if not constant_time_equal(query.get("hub.verify_token", ""), verify_token):
        raise SignatureInvalid("hub.verify_token does not match")
    challenge = query.get("hub.challenge", "")
    if not challenge:
        raise SignatureInvalid("hub.challenge is missing")
    return challenge


# --- the messaging webhook -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetaApp:
    """What tells Messenger and Instagram apart in the shared code."""

    channel: Channel
    object: str
    """The envelope's ``object``: ``page`` or ``instagram``."""
    name: str
    """How the provider is named in messages: ``messenger``, ``instagram``."""
    window_subcodes: frozenset[int]
    """``error_subcode`` values meaning the messaging window is closed."""


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
    attachments: list[_Attachment] = []
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
    mids: list[Id] = []
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
    messaging: list[_Event] = []
    standby: list[_Event] = []
    changes: list[dict[str, object]] = []


class _Envelope(_In):
    object: str = Field(max_length=64)
    entry: list[_Entry]


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
        if entry.standby:
            events.append(
                Ignored(
                    reason=f"{app.name} standby events (another app owns the thread) "
                    "are not bridged",
                    what="standby",
                )
            )
        for change in entry.changes:
            field = str(change.get("field", ""))[:60]
            events.append(Ignored(reason=f"{app.name} field {field!r} is not bridged"))
    if not events:
        events.append(Ignored(reason=f"{app.name} webhook without messaging events"))
    return events


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


# --- errors -----------------------------------------------------------------------------------

_CODES: Final = ErrorCodes(
    window=frozenset(),  # by subcode: code 10 is also "permission denied"
    rate=frozenset({4, 17, 32, 613, 80006}),
    recipient=frozenset({551}),
    transient=frozenset({1, 2, 1200}),
)
_RECIPIENT_SUBCODES: Final = frozenset({1545041, 2018001, 2018108})
"""This person isn't available; no matching user; a user who cannot receive messages."""
_MESSENGER_WINDOW: Final = frozenset({2018278})
_INSTAGRAM_WINDOW: Final = frozenset({2534022})


def _graph_error(body: bytes) -> tuple[int | None, int | None, str]:
    try:
        error = json.loads(body)["error"]
        code, subcode = error.get("code"), error.get("error_subcode")
        return (
            code if isinstance(code, int) else None,
            subcode if isinstance(subcode, int) else None,
            str(error.get("message", ""))[:200],
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None, None, ""


def _regain_seconds(response: httpx.Response) -> float | None:
    """``estimated_time_to_regain_access`` (minutes) of the usage headers, in seconds."""
    minutes = 0.0
    for header in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        items = [usage] if isinstance(usage, dict) else []
        for value in usage.values() if isinstance(usage, dict) else ():
            items.extend(v for v in value if isinstance(v, dict)) if isinstance(value, list) else ()
        for item in items:
            wait = item.get("estimated_time_to_regain_access")
            if isinstance(wait, (int, float)) and 0 <= wait < 24 * 60:
                minutes = max(minutes, float(wait))
    return minutes * 60 if minutes else None


def classify_meta_error(
    response: httpx.Response, provider: str, window_subcodes: frozenset[int]
) -> ChannelError:
    """Map a failed Send API response to the ChannelError tree (pure).

    ``error_subcode`` in ``window_subcodes`` (Messenger 2018278, Instagram 2534022) →
    OutsideCustomerWindow; 4/17/32/613/80006 or HTTP 429 → SendRateLimited (the usage
    headers' ``estimated_time_to_regain_access`` as ``retry_after``); 551, or subcode
    1545041/2018001/2018108 → RecipientUnavailable; 5xx or 1/2/1200 → SendTransient; anything
    else (190 token, 200 permission, 100 bad parameter) → SendRejected.
    """
    code, subcode, message = _graph_error(response.content)
    status = response.status_code
    if subcode is not None and subcode in window_subcodes:
        text = f"{provider} HTTP {status} error {code}/{subcode}: {message}"
        return OutsideCustomerWindow(text, code=code, status=status)
    if subcode is not None and subcode in _RECIPIENT_SUBCODES:
        text = f"{provider} HTTP {status} error {code}/{subcode}: {message}"
        return RecipientUnavailable(text, code=code, status=status)
    retry_after = _regain_seconds(response) if code in _CODES.rate or status == 429 else None
    return classify_error(provider, response, code, message, _CODES, retry_after=retry_after)


def classify_messenger_error(response: httpx.Response) -> ChannelError:
    """:func:`classify_meta_error` for Messenger (window closed: subcode 2018278)."""
    return classify_meta_error(response, "messenger", _MESSENGER_WINDOW)


def classify_instagram_error(response: httpx.Response) -> ChannelError:
    """:func:`classify_meta_error` for Instagram (window closed: subcode 2534022)."""
    return classify_meta_error(response, "instagram", _INSTAGRAM_WINDOW)


MESSENGER: Final = MetaApp(Channel.MESSENGER, "page", "messenger", _MESSENGER_WINDOW)
INSTAGRAM: Final = MetaApp(Channel.INSTAGRAM, "instagram", "instagram", _INSTAGRAM_WINDOW)


def parse_messenger(body: bytes, *, max_bytes: int = MAX_WEBHOOK_BYTES) -> list[ParsedEvent]:
    """:func:`parse_meta_messaging` of a Messenger (``object: page``) webhook."""
    return parse_meta_messaging(body, MESSENGER, max_bytes=max_bytes)


def parse_instagram(body: bytes, *, max_bytes: int = MAX_WEBHOOK_BYTES) -> list[ParsedEvent]:
    """:func:`parse_meta_messaging` of an Instagram (``object: instagram``) webhook."""
    return parse_meta_messaging(body, INSTAGRAM, max_bytes=max_bytes)


# --- the Send API -----------------------------------------------------------------------------

_SEND_TYPES: Final = {"image": "image", "video": "video", "audio": "audio"}


def attachment_type(mime_type: str) -> str:
    """The Send API attachment ``type`` of a file: image, video, audio, else file."""
    major = media_type(mime_type).partition("/")[0]
    return _SEND_TYPES.get(major, "file")


def message_body(
    customer: str, message: dict[str, object], *, human_agent: bool = False
) -> dict[str, object]:
    """The JSON body of a send (pure): ``RESPONSE``, or tagged ``HUMAN_AGENT``."""
    body: dict[str, object] = {"recipient": {"id": customer}}
    if human_agent:
        body["messaging_type"] = "MESSAGE_TAG"
        body["tag"] = "HUMAN_AGENT"
    else:
        body["messaging_type"] = "RESPONSE"
    body["message"] = message
    return body


class MetaMessagingConfig(BaseModel):
    """Credentials and endpoints of one Messenger Page or Instagram account's Send API.

    ``media_origins``: extra origins media may be fetched from (besides the base URL's and
    the https hosts under :data:`META_CDN_SUFFIXES`); no token is ever sent to them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr
    base_url: str
    human_agent: bool = True
    media_origins: tuple[str, ...] = ()
    cdn_suffixes: tuple[str, ...] = META_CDN_SUFFIXES

    def allowed_origins(self) -> frozenset[Origin]:
        return origins((self.base_url, *self.media_origins))


class _Sent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_id: str = Field(min_length=1)


class MetaMessagingClient:
    """Sends and media downloads of one Meta messaging app (Messenger or Instagram) over an
    injected ``httpx.AsyncClient``; no retries, no sleeps (the caller's policy decides)."""

    def __init__(self, http: httpx.AsyncClient, config: MetaMessagingConfig, app: MetaApp) -> None:
        self._http = http
        self._config = config
        self._app = app
        self._base = config.base_url.rstrip("/")
        self._allowed = config.allowed_origins()
        self._auth = {"Authorization": f"Bearer {config.access_token.get_secret_value()}"}

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia:
        """Fetch an attachment's signed CDN URL (no token: it is signed), ≤ ``max_bytes``.

        Raises:
            MediaHostForbidden: the URL is not on an allowed host (not fetched).
            MediaTooLarge, MediaUnavailable (expired: 403/404/410), SendTransient, ….
        """
        try:
            content, content_type = await fetch_capped(
                self._http,
                media.ref,
                allowed=self._allowed,
                max_bytes=max_bytes,
                what=f"{self._app.name} media download",
                allowed_suffixes=self._config.cdn_suffixes,
            )
        except SendRejected as exc:
            if exc.status == 403:  # the signed URL expired (oe=…)
                raise MediaUnavailable(
                    f"{self._app.name} media URL expired or refused", status=403
                ) from exc
            raise
        return DownloadedMedia(
            content=content, mime_type=media.mime_type or content_type, filename=media.filename
        )

    async def send_text(self, key: ThreadKey, text: str, *, spans: tuple[Span, ...] = ()) -> str:
        """Send a plain text (split to the channel's limit first); returns the message id."""
        if spans:
            raise ValueError(f"{self._app.name} text is plain: no spans")
        return await self._post(key, {"text": text})

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool:
        """Never: an attachment carries no caption on Messenger or Instagram (the text goes
        as its own message)."""
        return False

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str:
        """Send an attachment by URL (``media.url``: the bridge's public link). It carries no
        caption (:meth:`caption_fits` says so: the text goes as its own message)."""
        if caption:
            raise ValueError(f"{self._app.name} attachments carry no caption: send it as text")
        if media.url is None:
            raise SendRejected(f"{self._app.name} attachments are sent by URL: none given")
        attachment = {"type": attachment_type(media.mime_type), "payload": {"url": media.url}}
        return await self._post(key, {"attachment": attachment})

    async def _post(self, key: ThreadKey, message: dict[str, object]) -> str:
        if not _SAFE_ID.match(key.account):
            raise SendRejected(f"{self._app.name} account id has unexpected characters")
        try:
            return await self._send(key, message_body(key.customer, message))
        except OutsideCustomerWindow:
            if not self._config.human_agent:
                raise
        # Past 24 hours: a human agent's reply may still go, tagged, up to 7 days.
        return await self._send(key, message_body(key.customer, message, human_agent=True))

    async def _send(self, key: ThreadKey, body: dict[str, object]) -> str:
        what = f"{self._app.name} send"
        request = self._http.build_request(
            "POST", f"{self._base}/{key.account}/messages", headers=self._auth, json=body
        )
        response = await send(self._http, request, what)
        if not response.is_success:
            raise classify_meta_error(response, self._app.name, self._app.window_subcodes)
        try:
            return _Sent.model_validate_json(response.content).message_id
        except ValidationError as exc:
            raise SendTransient(f"{what}: unreadable response") from exc
