"""WhatsApp Cloud API (Graph) calls: pure request building and error classification, and the
thin :class:`WhatsAppClient` edge for media download and sends.

Media download is two steps: ``GET {base}/{media_id}`` returns a short-lived ``url`` (Meta
serves it from ``lookaside.fbsbx.com``), then ``GET url`` with the same bearer token. The
second URL is fetched only when its origin is in the allow-list. Media sends use ``link``
when the caller has a public URL and upload the bytes (``POST /{phone_number_id}/media``)
otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Annotated, Final, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .._classify import ErrorCodes, classify_error
from .._errors import (
    ChannelError,
    MediaTooLarge,
    MediaUnavailable,
    SendInDoubt,
    SendRejected,
    SendTransient,
)
from .._http import Origin, fetch_capped, origins, send
from .._model import DownloadedMedia, MediaRef, OutboundMedia, ThreadKey, media_type
from .._text import Span

__all__ = [
    "WHATSAPP_CAPTION_LIMIT",
    "WhatsAppClient",
    "WhatsAppConfig",
    "WhatsAppTemplate",
    "classify_whatsapp_error",
    "declared_digest",
    "template_message",
    "whatsapp_media_kind",
]

GRAPH_BASE_URL: Final = "https://graph.facebook.com/v21.0"
_META_MEDIA_ORIGIN: Final = "https://lookaside.fbsbx.com"
_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

_CODES: Final = ErrorCodes(
    window=frozenset({131047}),
    rate=frozenset({4, 80007, 130429, 131048, 131056}),
    recipient=frozenset({131026, 131030, 131021, 131045, 131050}),
    transient=frozenset({1, 2, 131000, 131016, 133004}),
)


class WhatsAppConfig(BaseModel):
    """Credentials and endpoints for the WhatsApp Cloud API.

    ``media_origins`` is the explicit allow-list of origins media is fetched from (and the
    bearer token sent to). When None it is the base URL's origin, plus
    ``https://lookaside.fbsbx.com`` when the base is Meta's Graph API.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr
    base_url: str = GRAPH_BASE_URL
    media_origins: tuple[str, ...] | None = None

    def allowed_origins(self) -> frozenset[Origin]:
        if self.media_origins is not None:
            return origins((self.base_url, *self.media_origins))
        extra = (_META_MEDIA_ORIGIN,) if "graph.facebook.com" in self.base_url else ()
        return origins((self.base_url, *extra))


def _graph_error(body: bytes) -> tuple[int | None, str]:
    try:
        data = json.loads(body)
        error = data["error"]
        code = error.get("code")
        return (code if isinstance(code, int) else None), str(error.get("message", ""))[:200]
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None, ""


def classify_whatsapp_error(response: httpx.Response) -> ChannelError:
    """Map a failed Graph API response to the ChannelError tree (pure).

    131047 → OutsideCustomerWindow; 130429/131056/131048/80007/4 or HTTP 429 →
    SendRateLimited; 131026/131030/131021/131045/131050 → RecipientUnavailable; 5xx or
    131000/131016/133004/1/2 → SendTransient; anything else → SendRejected.
    """
    code, message = _graph_error(response.content)
    return classify_error("whatsapp", response, code, message, _CODES)


WHATSAPP_CAPTION_LIMIT: Final = 1024
_SEND_KINDS: Final = {
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "sticker",
    "video/mp4": "video",
    "video/3gpp": "video",
    "video/3gp": "video",
    "audio/aac": "audio",
    "audio/amr": "audio",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/ogg": "audio",
}
"""The Cloud API's supported media types; anything else goes as a document."""
_CAPTIONED: Final = frozenset({"image", "video", "document"})


def whatsapp_media_kind(mime_type: str) -> str:
    """The message type a file goes as (pure): ``image`` (JPEG, PNG only), ``sticker`` (WebP),
    ``video`` (MP4, 3GPP), ``audio`` (AAC, AMR, MP3, M4A, OGG), else ``document``."""
    return _SEND_KINDS.get(media_type(mime_type), "document")


def media_message(
    to: str, media: OutboundMedia, media_id: str | None, caption: str | None
) -> dict[str, object]:
    """The JSON body of a media send (pure). Only images, videos and documents take a caption;
    documents keep a filename."""
    kind = whatsapp_media_kind(media.mime_type)
    body: dict[str, object] = {"link": media.url} if media_id is None else {"id": media_id}
    if caption and kind in _CAPTIONED:
        body["caption"] = caption
    if kind == "document" and media.filename:
        body["filename"] = media.filename
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: body,
    }


def text_message(to: str, text: str, reply_to: str | None) -> dict[str, object]:
    """The JSON body of a text send (pure)."""
    message: dict[str, object] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": text, "preview_url": False},
    }
    if reply_to:
        message["context"] = {"message_id": reply_to}
    return message


def template_message(
    to: str, name: str, language: str, components: list[dict[str, object]]
) -> dict[str, object]:
    """The JSON body of a template send (pure): ``type: "template"`` with the template's name,
    its language code and the components' parameters, as the Cloud API takes them."""
    template: dict[str, object] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = components
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    }


class WhatsAppTemplate(BaseModel):
    """One message template of a WhatsApp Business Account
    (``GET /{waba-id}/message_templates``): ``status`` is APPROVED, PENDING, REJECTED, …;
    ``components`` as Meta returns them (``type`` HEADER/BODY/FOOTER/BUTTONS, ``text``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    language: str
    status: str
    category: str | None = None
    components: tuple[dict[str, object], ...] = ()


class _TemplatePage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[WhatsAppTemplate]
    paging: dict[str, object] | None = None


MAX_TEMPLATE_PAGES: Final = 50
"""Pages of 100 templates read at most (a WABA holds at most a few thousand templates)."""


_HEX_DIGEST: Final = re.compile(r"^[0-9a-fA-F]{64}$")


def declared_digest(value: str) -> bytes | None:
    """The SHA-256 a media lookup declares, read as hex or as base64 (standard or URL-safe,
    padded or not): Meta documents neither, webhooks carry base64 and some clients see hex.
    None when it is neither (then it cannot be checked; the file is kept)."""
    text = value.strip()
    if _HEX_DIGEST.match(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == hashlib.sha256().digest_size else None


class _MediaInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    mime_type: str | None = None
    sha256: str | None = None
    file_size: int | None = None


class WhatsAppClient:
    """Media download and sends over an injected ``httpx.AsyncClient``.

    No retries and no sleeps: failures raise the ChannelError tree and the caller's policy
    decides. Cancellation simply abandons the request.
    """

    def __init__(self, http: httpx.AsyncClient, config: WhatsAppConfig) -> None:
        self._http = http
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._allowed = config.allowed_origins()
        self._auth = {"Authorization": f"Bearer {config.access_token.get_secret_value()}"}

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia:
        """Fetch a webhook's media id: metadata, then the bytes (≤ ``max_bytes``).

        Raises:
            MediaHostForbidden: the returned URL is outside the allow-list (not fetched).
            MediaTooLarge: ``file_size`` or the streamed body is over the cap.
            MediaUnavailable: unknown/expired id, or the bytes differ from the declared
                ``sha256`` (hex or base64) in two downloads.
            SendRateLimited, SendTransient, SendRejected: as classified.
        """
        if not _SAFE_ID.match(media.ref):
            raise MediaUnavailable("whatsapp media id has unexpected characters")
        request = self._http.build_request("GET", f"{self._base}/{media.ref}", headers=self._auth)
        response = await send(self._http, request, "whatsapp media lookup")
        if not response.is_success:
            error = classify_whatsapp_error(response)
            if type(error) is SendRejected and response.status_code in (400, 404):
                raise MediaUnavailable(
                    "whatsapp media id unknown or expired", code=error.code, status=error.status
                )
            raise error
        try:
            info = _MediaInfo.model_validate_json(response.content)
        except ValidationError as exc:
            raise SendTransient("whatsapp media lookup returned an unreadable body") from exc
        if info.file_size is not None and info.file_size > max_bytes:
            raise MediaTooLarge(f"whatsapp media is {info.file_size} bytes, cap is {max_bytes}")
        content, content_type = await self._fetch(info.url, max_bytes)
        expected = None if info.sha256 is None else declared_digest(info.sha256)
        if expected is not None and hashlib.sha256(content).digest() != expected:
            # A download damaged on the way: fetch it once more before giving up on it.
            content, content_type = await self._fetch(info.url, max_bytes)
            if hashlib.sha256(content).digest() != expected:
                raise MediaUnavailable("whatsapp media failed its sha256 check twice")
        return DownloadedMedia(
            content=content,
            mime_type=info.mime_type or media.mime_type or content_type,
            filename=media.filename,
        )

    async def _fetch(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        return await fetch_capped(
            self._http,
            url,
            allowed=self._allowed,
            max_bytes=max_bytes,
            what="whatsapp media download",
            auth_for=dict.fromkeys(self._allowed, self._auth),
        )

    async def send_text(
        self,
        key: ThreadKey,
        text: str,
        *,
        reply_to: str | None = None,
        spans: tuple[Span, ...] = (),
    ) -> str:
        """Send a text message from ``key.account`` to ``key.customer``; returns the wamid.
        The Cloud API refuses a body over 4,096 characters (split it first, channels.compose).
        Styles travel in the text (``*bold*``), so ``spans`` must be empty."""
        if spans:
            raise ValueError("whatsapp text carries its styles in the text, not as spans")
        return await self._post_message(key, text_message(key.customer, text, reply_to))

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool:
        """Whether ``caption`` can go with ``media``: an image, video or document, and at most
        1,024 characters."""
        kind = whatsapp_media_kind(media.mime_type)
        return kind in _CAPTIONED and len(caption) <= WHATSAPP_CAPTION_LIMIT

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str:
        """Send an attachment (by ``link`` when ``media.url`` is set, else uploaded first).

        Returns the wamid. Raises the classified ChannelError tree.
        """
        media_id = None
        if media.url is None:
            media_id = await self._upload(key, media)
        return await self._post_message(key, media_message(key.customer, media, media_id, caption))

    async def send_template(
        self, key: ThreadKey, name: str, language: str, components: list[dict[str, object]]
    ) -> str:
        """Send an approved message template (allowed outside the 24-hour window); returns the
        wamid. An unknown name or language is refused by WhatsApp (132001, SendRejected)."""
        return await self._post_message(
            key, template_message(key.customer, name, language, components)
        )

    async def message_templates(self, waba_id: str) -> list[WhatsAppTemplate]:
        """Every message template of the WhatsApp Business Account, all pages
        (``GET /{waba-id}/message_templates``). Raises the classified ChannelError tree."""
        if not _SAFE_ID.match(waba_id):
            raise SendRejected("whatsapp business account id has unexpected characters")
        params: dict[str, str] = {
            "fields": "name,language,status,category,components",
            "limit": "100",
        }
        templates: list[WhatsAppTemplate] = []
        for _ in range(MAX_TEMPLATE_PAGES):
            request = self._http.build_request(
                "GET", f"{self._base}/{waba_id}/message_templates", headers=self._auth,
                params=params,
            )  # fmt: skip
            page = await self._call(request, _TemplatePage, "whatsapp message templates")
            templates.extend(page.data)
            paging = page.paging or {}
            cursors = paging.get("cursors")
            after = cursors.get("after") if isinstance(cursors, dict) else None
            if not page.data or not paging.get("next") or not isinstance(after, str):
                break
            params = {**params, "after": after}
        return templates

    async def _upload(self, key: ThreadKey, media: OutboundMedia) -> str:
        _check_account(key)
        if media.content is None:
            raise SendRejected("whatsapp media send needs a url or content")
        request = self._http.build_request(
            "POST",
            f"{self._base}/{key.account}/media",
            headers=self._auth,
            data={"messaging_product": "whatsapp", "type": media.mime_type},
            files={"file": (media.filename or "file", media.content, media.mime_type)},
        )
        return (await self._call(request, _Uploaded, "whatsapp media upload")).id

    async def _post_message(self, key: ThreadKey, body: dict[str, object]) -> str:
        _check_account(key)
        request = self._http.build_request(
            "POST", f"{self._base}/{key.account}/messages", headers=self._auth, json=body
        )
        # A 2xx is the message accepted: without its wamid it may have gone out (in doubt),
        # never "nothing went out", which would send it again.
        sent = await self._call(request, _Sent, "whatsapp send", unreadable=SendInDoubt)
        return sent.messages[0].id

    async def _call(
        self,
        request: httpx.Request,
        model: type[_R],
        what: str,
        *,
        unreadable: type[ChannelError] = SendTransient,
    ) -> _R:
        response = await send(self._http, request, what)
        if not response.is_success:
            raise classify_whatsapp_error(response)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise unreadable(f"{what}: unreadable response") from exc


def _check_account(key: ThreadKey) -> None:
    # The phone_number_id goes into the URL path: refuse anything that could change the path.
    if not _SAFE_ID.match(key.account):
        raise SendRejected("whatsapp phone_number_id has unexpected characters")


class _Uploaded(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str


class _Sent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: Annotated[list[_Uploaded], Field(min_length=1)]


_R = TypeVar("_R", bound=BaseModel)
