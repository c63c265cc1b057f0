"""Telegram Bot API calls: pure error classification, and the thin :class:`TelegramClient` edge.

Download is ``getFile(file_id)`` → ``file_path`` → ``GET {base}/file/bot{token}/{file_path}``.
Sends use ``sendMessage``, and by MIME type (:func:`telegram_send_method`) ``sendPhoto`` (JPEG,
PNG), ``sendVideo`` (MP4), ``sendAudio`` (MP3, M4A) or ``sendDocument`` (everything else). Bytes
are uploaded as multipart when given; otherwise Telegram fetches ``media.url`` itself where the
Bot API takes a URL — every method but ``sendDocument``, which takes URLs only for PDF, ZIP and
GIF ("In sendDocument, sending by URL will currently only work for GIF, PDF and ZIP files"). For
any other document the client fetches the URL itself (one origin, capped in size and time) and
uploads the bytes. The token is part of every URL, so no URL ever appears in an exception message.
"""

from __future__ import annotations

import json
import re
from typing import Final, TypeVar

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
from .._http import Origin, fetch_capped, fetch_for_upload, origins, send
from .._model import DownloadedMedia, MediaRef, OutboundMedia, ThreadKey, media_type
from .._text import Span, utf16_length

__all__ = [
    "TELEGRAM_CAPTION_LIMIT",
    "TelegramClient",
    "TelegramConfig",
    "classify_telegram_error",
    "telegram_accepts_url",
    "telegram_entities",
    "telegram_send_method",
]

TELEGRAM_BASE_URL: Final = "https://api.telegram.org"
TELEGRAM_CAPTION_LIMIT: Final = 1024
"""A caption's limit, in UTF-16 code units (Telegram counts its text lengths in them)."""
_URL_REFUSALS: Final = re.compile(r"HTTP URL|web page content", re.IGNORECASE)
"""What Telegram says when it could not use a file from its URL."""
_PHOTOS: Final = frozenset({"image/jpeg", "image/png"})
_VIDEOS: Final = frozenset({"video/mp4"})
_AUDIOS: Final = frozenset({"audio/mpeg", "audio/mp3", "audio/mp4", "audio/m4a", "audio/x-m4a"})
_URL_DOCUMENTS: Final = frozenset(
    {"application/pdf", "application/zip", "application/x-zip-compressed", "image/gif"}
)
"""The only files ``sendDocument`` takes by URL."""


def telegram_send_method(mime_type: str) -> tuple[str, str]:
    """The Bot API method and its file field for a MIME type (pure)."""
    kind = media_type(mime_type)
    if kind in _PHOTOS:
        return "sendPhoto", "photo"
    if kind in _VIDEOS:
        return "sendVideo", "video"
    if kind in _AUDIOS:
        return "sendAudio", "audio"
    return "sendDocument", "document"


def telegram_accepts_url(mime_type: str) -> bool:
    """Whether Telegram fetches a file of this type by URL itself (pure)."""
    method, _ = telegram_send_method(mime_type)
    return method != "sendDocument" or media_type(mime_type) in _URL_DOCUMENTS


_RECIPIENT_HINTS: Final = ("chat not found", "user not found", "blocked", "deactivated", "kicked")
_CODES: Final = ErrorCodes()
"""The Bot API's codes are HTTP statuses: 429 and 5xx need no table."""


class TelegramConfig(BaseModel):
    """Bot token and endpoint. Media is only fetched from the base URL's origin (plus
    ``media_origins`` when given).

    A document Telegram does not take by URL is fetched from its URL (that URL's origin only,
    at most ``upload_max_bytes``, within ``upload_fetch_seconds``) and uploaded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bot_token: SecretStr
    base_url: str = TELEGRAM_BASE_URL
    media_origins: tuple[str, ...] = ()
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    upload_fetch_seconds: float = Field(default=30.0, gt=0)

    def allowed_origins(self) -> frozenset[Origin]:
        return origins((self.base_url, *self.media_origins))


def classify_telegram_error(response: httpx.Response) -> ChannelError:
    """Map a failed Bot API response (``{ok:false, error_code, description, parameters}``).

    HTTP 429 → SendRateLimited with ``parameters.retry_after``; 403, or 400 "chat not found" /
    "user not found" → RecipientUnavailable; 5xx → SendTransient; else SendRejected.
    """
    status = response.status_code
    description = ""
    retry_after: float | None = None
    try:
        data = json.loads(response.content)
        if isinstance(data, dict):
            description = str(data.get("description", ""))[:200]
            params = data.get("parameters")
            if isinstance(params, dict) and isinstance(params.get("retry_after"), int | float):
                retry_after = float(params["retry_after"])
    except (ValueError, RecursionError):
        pass
    lowered = description.lower()
    recipient = status == 403 or (status == 400 and any(h in lowered for h in _RECIPIENT_HINTS))
    return classify_error(
        "telegram", response, status, description, _CODES,
        recipient=recipient, retry_after=retry_after, code_in_text=False,
    )  # fmt: skip


def telegram_entities(text: str, spans: tuple[Span, ...]) -> list[dict[str, object]]:
    """Bot API ``MessageEntity`` objects for ``spans`` (code point offsets into ``text``):
    offsets and lengths in UTF-16 code units, as Telegram counts them (pure, linear)."""
    positions = sorted({p for span in spans for p in (span.start, span.end)})
    units: dict[int, int] = {}
    count, index = 0, 0
    for position in positions:
        count += utf16_length(text[index:position])
        index = position
        units[position] = count
    return [
        {
            "type": span.kind,
            "offset": units[span.start],
            "length": units[span.end] - units[span.start],
        }
        for span in spans
        if span.end > span.start
    ]


class _Chat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_id: int
    chat: _Chat


class _File(BaseModel):
    model_config = ConfigDict(extra="ignore")

    file_path: str | None = None
    file_size: int | None = None


class _MessageResult(BaseModel):
    ok: bool
    result: _Message


class _FileResult(BaseModel):
    ok: bool
    result: _File


_M = TypeVar("_M", _MessageResult, _FileResult)


class TelegramClient:
    """Media download and sends over an injected ``httpx.AsyncClient``; no retries.

    Returned message ids have the inbound dedupe form ``"{chat_id}:{message_id}"``.
    """

    def __init__(self, http: httpx.AsyncClient, config: TelegramConfig) -> None:
        self._http = http
        base = config.base_url.rstrip("/")
        token = config.bot_token.get_secret_value()
        self._api = f"{base}/bot{token}"
        self._files = f"{base}/file/bot{token}"
        self._allowed = config.allowed_origins()
        self._config = config

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia:
        """``getFile`` then the file bytes (≤ ``max_bytes``; ``file_size`` checked first).

        Raises:
            MediaTooLarge, MediaUnavailable (unknown file_id or no file_path), SendRateLimited,
            SendTransient, SendRejected.
        """
        if media.size is not None and media.size > max_bytes:
            raise MediaTooLarge(f"telegram file is {media.size} bytes, cap is {max_bytes}")
        request = self._http.build_request(
            "POST", f"{self._api}/getFile", json={"file_id": media.ref}
        )
        response = await send(self._http, request, "telegram getFile")
        if response.status_code == 400:
            raise MediaUnavailable("telegram file_id unknown or expired", status=400)
        info = self._parse(response, _FileResult, "telegram getFile").result
        if info.file_size is not None and info.file_size > max_bytes:
            raise MediaTooLarge(f"telegram file is {info.file_size} bytes, cap is {max_bytes}")
        if not info.file_path or ".." in info.file_path.split("/"):
            raise MediaUnavailable("telegram getFile returned no usable file_path")
        content, content_type = await fetch_capped(
            self._http,
            f"{self._files}/{info.file_path}",
            allowed=self._allowed,
            max_bytes=max_bytes,
            what="telegram file download",
        )
        return DownloadedMedia(
            content=content, mime_type=media.mime_type or content_type, filename=media.filename
        )

    async def send_text(
        self,
        key: ThreadKey,
        text: str,
        *,
        reply_to: str | None = None,
        spans: tuple[Span, ...] = (),
    ) -> str:
        """``sendMessage`` to chat ``key.customer``, ``spans`` as bold/italic ``entities``
        (UTF-16 offsets; never a parse mode, so nothing needs escaping). Returns
        ``"{chat_id}:{message_id}"``. The text is sent whole: Telegram refuses one over 4,096
        UTF-16 units (split it first, channels.compose)."""
        body: dict[str, object] = {"chat_id": key.customer, "text": text}
        if spans:
            body["entities"] = telegram_entities(text, spans)
        if reply_to and (mid := reply_to.rpartition(":")[2]).isdecimal():
            body["reply_parameters"] = {"message_id": int(mid), "allow_sending_without_reply": True}
        request = self._http.build_request("POST", f"{self._api}/sendMessage", json=body)
        return await self._message_id(request, "telegram sendMessage")

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool:
        """Whether ``caption`` can go with ``media`` (every send method takes one, up to 1,024
        UTF-16 code units)."""
        return utf16_length(caption) <= TELEGRAM_CAPTION_LIMIT

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str:
        """``sendPhoto``/``sendVideo``/``sendAudio``/``sendDocument`` by MIME type: uploads
        ``media.content`` when given, passes ``media.url`` where Telegram takes a URL for the
        type, and otherwise (or when Telegram could not use the URL) fetches the URL and uploads
        its bytes. Returns
        ``"{chat_id}:{message_id}"``.

        Raises:
            MediaUnavailable, MediaTooLarge, MediaHostForbidden: the file could not be fetched
            for the upload; and the send's classified errors.
        """
        method, field = telegram_send_method(media.mime_type)
        fields = {"chat_id": key.customer}
        if caption:
            fields["caption"] = caption
        url = f"{self._api}/{method}"
        content = media.content
        if content is None and media.url is not None and not telegram_accepts_url(media.mime_type):
            content = await self._fetch_for_upload(media.url)
        if content is None and media.url is not None:
            request = self._http.build_request("POST", url, json={**fields, field: media.url})
            try:
                return await self._message_id(request, f"telegram {method}")
            except SendRejected as exc:
                # Telegram could not take the file from its URL (too large to fetch by URL:
                # 5 MB photos, 20 MB others; or not what it expected): upload it instead.
                if not _URL_REFUSALS.search(str(exc)):
                    raise
            content = await self._fetch_for_upload(media.url)
        if content is None:
            raise SendRejected("telegram media send needs content or a url")
        upload = (media.filename or field, content, media.mime_type)
        request = self._http.build_request("POST", url, data=fields, files={field: upload})
        return await self._message_id(request, f"telegram {method}")

    async def _fetch_for_upload(self, url: str) -> bytes:
        """The file at ``url`` (its own origin only, no credentials, capped in size and time)."""
        return await fetch_for_upload(
            self._http,
            url,
            max_bytes=self._config.upload_max_bytes,
            seconds=self._config.upload_fetch_seconds,
            what="attachment fetch for a telegram upload",
        )

    async def _message_id(self, request: httpx.Request, what: str) -> str:
        response = await send(self._http, request, what)
        # A 2xx is the message sent: an answer without it may have gone out (in doubt), never
        # "nothing went out", which would send it again.
        message = self._parse(response, _MessageResult, what, unreadable=SendInDoubt).result
        return f"{message.chat.id}:{message.message_id}"

    def _parse(
        self,
        response: httpx.Response,
        model: type[_M],
        what: str,
        *,
        unreadable: type[ChannelError] = SendTransient,
    ) -> _M:
        if not response.is_success:
            raise classify_telegram_error(response)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise unreadable(f"{what}: unreadable response") from exc
