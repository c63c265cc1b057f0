"""LINE Messaging API calls: pure error classification, and the thin :class:`LineClient` edge.

Sends answer with the reply API (``POST {base}/v2/bot/message/reply``: free) while the thread's
reply token (:data:`channels.REPLY_TOKEN`) is fresh, and push (``POST {base}/v2/bot/message/push``:
counted against the monthly quota) otherwise; a reply LINE refuses as ``Invalid reply token``
(expired or used: nothing was sent) goes out once by push instead. A push carries an
``X-Line-Retry-Key`` derived from the send's id (:data:`channels.SEND_ID`), so that its retry
after a 5xx or a lost answer is answered 409 (sent already) rather than sent twice; a reply
answered 5xx is in doubt (LINE has no key for replies: never pushed after it). Media goes out by URL
(LINE fetches it: it must be public HTTPS); LINE has no file message, so anything but a JPEG or
PNG image is sent as a link. Content is downloaded from ``{data_base}/v2/bot/message/{id}/content``
with the channel access token (only to that origin), or from a message's external
``originalContentUrl`` (HTTPS only, its own origin, no credentials).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Final
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from .._classify import ErrorCodes, classify_error
from .._errors import (
    ChannelError,
    MediaHostForbidden,
    MediaTooLarge,
    SendInDoubt,
    SendRejected,
    SendTransient,
)
from .._http import Origin, fetch_capped, origin_of, origins, send
from .._model import DownloadedMedia, MediaRef, OutboundMedia, ThreadKey, media_type
from .._reply import REPLY_TOKEN, SEND_ID
from .._text import Span, utf16_length

__all__ = [
    "LINE_BASE_URL",
    "LINE_DATA_BASE_URL",
    "LINE_MAX_MESSAGES",
    "LINE_REPLY_TOKEN_SECONDS",
    "LINE_TEXT_LIMIT",
    "LineClient",
    "LineConfig",
    "classify_line_error",
    "line_media_message",
]

LINE_BASE_URL: Final = "https://api.line.me"
LINE_DATA_BASE_URL: Final = "https://api-data.line.me"
LINE_TEXT_LIMIT: Final = 5000
"""A text message's limit (characters; counted here in UTF-16 code units, the stricter)."""
LINE_MAX_MESSAGES: Final = 5
"""Message objects per reply or push request."""
LINE_REPLY_TOKEN_SECONDS: Final = 50.0
"""A reply token older than this is not tried (LINE's docs: use it within about a minute);
a younger one LINE refuses is answered by a push all the same."""
_INVALID_REPLY_TOKEN: Final = "invalid reply token"  # noqa: S105 - an error message
_MONTHLY_LIMIT: Final = "monthly limit"
_IMAGES: Final = frozenset({"image/jpeg", "image/png"})
_RETRY_KEYS: Final = uuid.UUID("5f0b7d1e-3c2a-4e59-9a63-7b1c2d4e8f10")
"""The namespace of the push retry keys derived from a send's id."""
_CODES: Final = ErrorCodes()
"""LINE's errors are HTTP statuses with a message: 429 and 5xx need no table."""


class LineConfig(BaseModel):
    """Channel access token and endpoints."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel_access_token: SecretStr
    base_url: str = LINE_BASE_URL
    data_base_url: str = LINE_DATA_BASE_URL


def _message_of(response: httpx.Response) -> str:
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(data, dict):
        return ""
    message = str(data.get("message", ""))[:200]
    details = data.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        message += f" ({str(first.get('property', ''))[:60]}: {str(first.get('message', ''))[:80]})"
    return message


def classify_line_error(response: httpx.Response) -> ChannelError:
    """Map a failed Messaging API response (``{message, details?}``).

    429 "You have reached your monthly limit." → SendRejected (the push quota is spent until
    next month: no retry helps); any other 429 → SendRateLimited; 5xx → SendTransient; the rest
    (400 validation, 401 token, 403 not allowed) → SendRejected.
    """
    message = _message_of(response)
    exhausted = response.status_code == 429 and _MONTHLY_LIMIT in message.lower()
    return classify_error(
        "line", response, response.status_code, message, _CODES,
        code_in_text=False, exhausted=exhausted,
    )  # fmt: skip


def _invalid_reply_token(response: httpx.Response) -> bool:
    return response.status_code == 400 and _INVALID_REPLY_TOKEN in _message_of(response).lower()


def line_media_message(media: OutboundMedia, url: str) -> dict[str, object]:
    """The message object sending ``media`` from ``url`` (pure): an image message for a JPEG
    or PNG; otherwise a text with the link (LINE has no file message; a video needs a preview
    image and an audio its duration, which the bridge does not have)."""
    if media_type(media.mime_type) in _IMAGES:
        return {"type": "image", "originalContentUrl": url, "previewImageUrl": url}
    name = media.filename or "attachment"
    return {"type": "text", "text": f"📎 {name}: {url}"}


class _Sent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str


class _SendResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sentMessages: list[_Sent] = []  # noqa: N815 - LINE's field name


class LineClient:
    """Media download and sends over an injected ``httpx.AsyncClient``; no retries.

    Returned ids are the first sent message's id (the push's retry key when LINE names none).
    """

    def __init__(self, http: httpx.AsyncClient, config: LineConfig) -> None:
        self._http = http
        self._base = config.base_url.rstrip("/")
        self._data = config.data_base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {config.channel_access_token.get_secret_value()}"}
        self._data_origin: frozenset[Origin] = origins((self._data,))

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia:
        """The content of message ``media.ref`` (or the external URL it names), at most
        ``max_bytes``.

        Raises:
            MediaTooLarge, MediaUnavailable, MediaHostForbidden, SendRateLimited,
            SendTransient, SendRejected.
        """
        if media.size is not None and media.size > max_bytes:
            raise MediaTooLarge(f"line file is {media.size} bytes, cap is {max_bytes}")
        if media.ref.startswith("http://"):
            raise MediaHostForbidden("line external content must be served over HTTPS")
        if media.ref.startswith("https://"):
            content, content_type = await fetch_capped(
                self._http,
                media.ref,
                allowed=frozenset({origin_of(media.ref)}),
                max_bytes=max_bytes,
                what="line external content",
            )
        else:
            content, content_type = await fetch_capped(
                self._http,
                f"{self._data}/v2/bot/message/{quote(media.ref, safe='')}/content",
                allowed=self._data_origin,
                max_bytes=max_bytes,
                what="line content download",
                auth_for=dict.fromkeys(self._data_origin, self._auth),
            )
        return DownloadedMedia(
            content=content, mime_type=content_type or media.mime_type, filename=media.filename
        )

    async def send_text(self, key: ThreadKey, text: str, *, spans: tuple[Span, ...] = ()) -> str:
        """A text message (plain: LINE has no styles); sent whole, split it first
        (``channels.compose``: 5,000 characters)."""
        return await self._send(key, [{"type": "text", "text": text}])

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool:
        """Whether ``caption`` fits one text message sent with the file (one request)."""
        return 0 < utf16_length(caption) <= LINE_TEXT_LIMIT

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str:
        """The file by its URL (:func:`line_media_message`), the caption as a text message
        after it, in one request.

        Raises:
            SendRejected: the attachment has no URL (LINE fetches files itself); and the
            send's classified errors.
        """
        if media.url is None:
            raise SendRejected("line sends files by public HTTPS URL only, and this has none")
        messages = [line_media_message(media, media.url)]
        if caption:
            messages.append({"type": "text", "text": caption})
        return await self._send(key, messages)

    async def _send(self, key: ThreadKey, messages: list[dict[str, object]]) -> str:
        assert 0 < len(messages) <= LINE_MAX_MESSAGES
        token = REPLY_TOKEN.get()
        fresh = (
            token is not None
            and not token.used
            and token.customer == key.customer
            and time.time() - token.received_at < LINE_REPLY_TOKEN_SECONDS
        )
        if token is not None and fresh:
            request = self._http.build_request(
                "POST",
                f"{self._base}/v2/bot/message/reply",
                json={"replyToken": token.token, "messages": messages},
                headers=self._auth,
            )
            response = await send(self._http, request, "line reply")
            if response.is_success:
                token.used = True
                return self._first_id(response, "")
            if response.status_code >= 500:
                # It may have gone out: a retry would find the token used and push it again.
                token.used = True
                raise SendInDoubt(
                    f"line reply answered HTTP {response.status_code}: it may have been sent"
                )
            if not _invalid_reply_token(response):
                raise classify_line_error(response)
            token.used = True  # expired or used: nothing was sent, push it instead
        send_id = SEND_ID.get()
        # The same key for every retry of this send: LINE answers a repeat 409, not twice.
        retry_key = str(uuid.uuid5(_RETRY_KEYS, send_id) if send_id else uuid.uuid4())
        request = self._http.build_request(
            "POST",
            f"{self._base}/v2/bot/message/push",
            json={"to": key.customer, "messages": messages},
            headers={**self._auth, "X-Line-Retry-Key": retry_key},
        )
        try:
            response = await send(self._http, request, "line push")
        except SendInDoubt as exc:
            # Unlike a reply (or any other channel's send), a push is safe to repeat: LINE
            # answers a retry with the same key 409 if the first one went out.
            raise SendTransient(f"{exc}; retried with the same retry key") from exc
        if response.status_code == 409:  # the retry key was seen: it went out already
            return retry_key
        if not response.is_success:
            raise classify_line_error(response)
        return self._first_id(response, retry_key)

    @staticmethod
    def _first_id(response: httpx.Response, fallback: str) -> str:
        """The first sent message's id. A 2xx whose body says none (or is unreadable) went
        out all the same: never an error, which would send it again."""
        try:
            sent = _SendResult.model_validate_json(response.content).sentMessages
        except ValidationError:
            sent = []
        return sent[0].id if sent else fallback or f"reply:{uuid.uuid4()}"
