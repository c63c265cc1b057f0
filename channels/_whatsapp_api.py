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
import hashlib
import json
import re
from typing import Annotated, Final, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ._errors import (
    ChannelError,
    MediaTooLarge,
    MediaUnavailable,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendRateLimited,
    SendRejected,
    SendTransient,
)
from ._http import Origin, fetch_capped, origins, retry_after_seconds, send
from ._markup import Span
from ._model import DownloadedMedia, MediaKind, MediaRef, OutboundMedia, ThreadKey

__all__ = ["WhatsAppClient", "WhatsAppConfig", "classify_whatsapp_error"]

GRAPH_BASE_URL: Final = "https://graph.facebook.com/v21.0"
_META_MEDIA_ORIGIN: Final = "https://lookaside.fbsbx.com"
_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

_WINDOW_CODES: Final = frozenset({131047})
_RATE_CODES: Final = frozenset({4, 80007, 130429, 131048, 131056})
_RECIPIENT_CODES: Final = frozenset({131026, 131030, 131021, 131045, 131050})
_TRANSIENT_CODES: Final = frozenset({1, 2, 131000, 131016, 133004})


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
    status = response.status_code
    code, message = _graph_error(response.content)
    text = f"whatsapp HTTP {status}" + (f" error {code}" if code is not None else "")
    text += f": {message}" if message else ""
    if code in _WINDOW_CODES:
        return OutsideCustomerWindow(text, code=code, status=status)
    if code in _RATE_CODES or status == 429:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return SendRateLimited(text, code=code, status=status, retry_after=retry_after)
    if code in _RECIPIENT_CODES:
        return RecipientUnavailable(text, code=code, status=status)
    if status >= 500 or code in _TRANSIENT_CODES:
        return SendTransient(text, code=code, status=status)
    return SendRejected(text, code=code, status=status)


_SEND_KINDS: Final = {
    MediaKind.IMAGE: "image",
    MediaKind.STICKER: "image",
    MediaKind.VIDEO: "video",
    MediaKind.AUDIO: "audio",
    MediaKind.VOICE: "audio",
    MediaKind.DOCUMENT: "document",
}


def media_message(
    to: str, media: OutboundMedia, media_id: str | None, caption: str | None
) -> dict[str, object]:
    """The JSON body of a media send (pure). Audio takes no caption; documents keep a filename."""
    kind = _SEND_KINDS[MediaKind.from_mime(media.mime_type)]
    body: dict[str, object] = {"link": media.url} if media_id is None else {"id": media_id}
    if caption and kind != "audio":
        body["caption"] = caption[:1024]
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
            MediaUnavailable: unknown/expired id or a sha256 mismatch.
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
        auth = dict.fromkeys(self._allowed, self._auth)
        content, content_type = await fetch_capped(
            self._http,
            info.url,
            allowed=self._allowed,
            max_bytes=max_bytes,
            what="whatsapp media download",
            auth_for=auth,
        )
        if info.sha256 is not None:
            digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
            if digest != info.sha256:
                raise MediaUnavailable("whatsapp media failed its sha256 check")
        return DownloadedMedia(
            content=content,
            mime_type=info.mime_type or media.mime_type or content_type,
            filename=media.filename,
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
        sent = await self._call(request, _Sent, "whatsapp send")
        return sent.messages[0].id

    async def _call(self, request: httpx.Request, model: type[_R], what: str) -> _R:
        response = await send(self._http, request, what)
        if not response.is_success:
            raise classify_whatsapp_error(response)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise SendTransient(f"{what}: unreadable response") from exc


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
