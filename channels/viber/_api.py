"""Viber REST bot API calls: pure error classification, and the thin :class:`ViberClient` edge.

Sends are ``POST {base}/pa/send_message`` with the ``X-Viber-Auth-Token`` header and a JSON body
``{receiver, type, sender: {name}, text | media …}``. Viber answers HTTP 200 whether or not it
accepted the message: the JSON ``status`` says (0 ok; anything else an error, classified by the
number, never by ``status_message``). The answer's ``message_token`` (above 2**53: read as an
exact integer) is the id ``delivered``/``seen``/``failed`` callbacks name.

Viber takes media by public URL only (it fetches it): ``picture`` (JPEG, PNG, GIF; the caption
in ``text``), ``video`` (MP4) and ``file`` (anything else); the last two need the ``size`` in
bytes, so a URL without bytes is fetched once to learn it. Downloads fetch ``message.media``
(Viber's CDN, no credentials) from the allowed origins only.
"""

from __future__ import annotations

import json
from typing import Annotated, Final
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, ValidationError

from .._classify import ErrorCodes, classify_error
from .._errors import ChannelError, SendInDoubt, SendRejected
from .._http import Origin, fetch_capped, fetch_for_upload, origins, send
from .._model import DownloadedMedia, MediaRef, OutboundMedia, ThreadKey, media_type
from .._text import Span

__all__ = [
    "VIBER_BASE_URL",
    "VIBER_CAPTION_LIMIT",
    "VIBER_MEDIA_ORIGIN",
    "VIBER_NAME_LIMIT",
    "VIBER_TEXT_LIMIT",
    "ViberClient",
    "ViberConfig",
    "classify_viber_error",
    "viber_message_type",
]

VIBER_BASE_URL: Final = "https://chatapi.viber.com"
VIBER_MEDIA_ORIGIN: Final = "https://dl-media.viber.com"
"""Where the media of customers' messages is served (``message.media``)."""
VIBER_TEXT_LIMIT: Final = 7000
VIBER_CAPTION_LIMIT: Final = 768
"""A picture's description (``text``), in characters."""
VIBER_NAME_LIMIT: Final = 28
"""``sender.name``: at most 28 characters."""
_PICTURES: Final = frozenset({"image/jpeg", "image/png", "image/gif"})
_VIDEOS: Final = frozenset({"video/mp4"})

VIBER_CODES: Final = ErrorCodes(
    rate=frozenset({12}),  # tooManyRequests
    # receiverNotRegistered, notSubscribed, noSuitableDevice
    recipient=frozenset({5, 6, 11}),
    transient=frozenset({99}),  # general error
)
"""Viber's ``status`` numbers by meaning; every other one (2 invalidAuthToken, 3 badData,
4 missingData, 7-10 the bot's account, 13/14 API version, 23/24 billing) is refused for good."""


_MEANINGS: Final = {
    2: "the auth token is invalid (THREADLINE_VIBER_AUTH_TOKEN or the account's auth_token)",
    5: "the receiver is not a Viber user",
    6: "the customer is not subscribed to the bot (they unsubscribed, or never subscribed)",
    7: "the bot's account is blocked",
    8: "the bot's account was not found",
    9: "the bot's account is suspended",
    10: "the bot's webhook is not set",
    11: "the customer has no device that can receive it",
    12: "too many requests",
}
"""What a ``status`` means, said to the team before Viber's own terse ``status_message``."""


def viber_message_type(mime_type: str) -> str:
    """The ``send_message`` type for a MIME type (pure): picture, video or file."""
    kind = media_type(mime_type)
    if kind in _PICTURES:
        return "picture"
    if kind in _VIDEOS:
        return "video"
    return "file"


def _status_of(content: bytes) -> tuple[int | None, str]:
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    status = data.get("status")
    code = status if isinstance(status, int) and not isinstance(status, bool) else None
    return code, str(data.get("status_message", ""))[:200]


def classify_viber_error(response: httpx.Response) -> ChannelError:
    """Map a refused send: the JSON ``status`` (on HTTP 200) or the HTTP status.

    12 or HTTP 429 → SendRateLimited; 5, 6 (the customer unsubscribed), 11 →
    RecipientUnavailable; 99 or 5xx → SendTransient; anything else → SendRejected.
    """
    code, message = _status_of(response.content)
    meaning = _MEANINGS.get(code) if code is not None else None
    if meaning is not None:
        message = f"{meaning} ({message})" if message else meaning
    return classify_error("viber", response, code, message, VIBER_CODES)


class ViberConfig(BaseModel):
    """Auth token, the sender name and the endpoint. Media is downloaded only from the base
    URL's origin and ``media_origins``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth_token: SecretStr
    bot_name: str = Field(min_length=1, max_length=VIBER_NAME_LIMIT)
    base_url: str = VIBER_BASE_URL
    media_origins: tuple[str, ...] = (VIBER_MEDIA_ORIGIN,)
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    """The largest file whose size is learnt by fetching it (Viber's own limit is 50 MB)."""
    upload_fetch_seconds: float = Field(default=30.0, gt=0)

    def allowed_origins(self) -> frozenset[Origin]:
        return origins((self.base_url, *self.media_origins))


class _Sent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: StrictInt
    message_token: Annotated[StrictInt, Field(ge=0)] | None = None


class ViberClient:
    """Media download and sends over an injected ``httpx.AsyncClient``; no retries.

    Returned message ids are the ``message_token`` digits, as the callbacks name them."""

    def __init__(self, http: httpx.AsyncClient, config: ViberConfig) -> None:
        self._http = http
        self._config = config
        self._url = config.base_url.rstrip("/") + "/pa/send_message"
        self._allowed = config.allowed_origins()

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia:
        """The bytes of a customer's ``message.media`` URL (≤ ``max_bytes``; no credentials).

        Raises:
            MediaHostForbidden: the URL is not on an allowed origin.
            MediaTooLarge, MediaUnavailable (expired), SendRateLimited, SendTransient,
            SendRejected.
        """
        content, content_type = await fetch_capped(
            self._http,
            media.ref,
            allowed=self._allowed,
            max_bytes=max_bytes,
            what="viber media download",
        )
        return DownloadedMedia(
            content=content, mime_type=media.mime_type or content_type, filename=media.filename
        )

    async def send_text(self, key: ThreadKey, text: str, *, spans: tuple[Span, ...] = ()) -> str:
        """A ``text`` message to user ``key.customer``; returns the message token. Sent
        whole: split it to 7,000 characters first (channels.compose). Plain text only."""
        if spans:
            raise ValueError("viber text is plain: no spans")
        return await self._send(key, {"type": "text", "text": text})

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool:
        """Only a picture carries a text (its description, up to 768 characters)."""
        picture = viber_message_type(media.mime_type) == "picture"
        return picture and len(caption) <= VIBER_CAPTION_LIMIT

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str:
        """A ``picture`` (with ``caption``), ``video`` or ``file`` by ``media.url``; returns
        the message token.

        Raises:
            SendRejected: no URL (Viber takes no uploads), or a caption on a video or file.
            MediaUnavailable, MediaTooLarge, MediaHostForbidden: fetching the file for its
            size failed; and the send's classified errors.
        """
        if media.url is None:
            raise SendRejected("viber sends media by public URL only (no url given)")
        kind = viber_message_type(media.mime_type)
        body: dict[str, object] = {"type": kind, "media": media.url}
        if kind == "picture":
            body["text"] = caption or ""
        else:
            if caption:
                raise SendRejected(f"viber {kind} messages carry no text")
            size = len(media.content) if media.content is not None else None
            body["size"] = size if size is not None else await self._size_of(media.url)
        if kind == "file":
            body["file_name"] = media.filename or _name_of(media.url)
        return await self._send(key, body)

    async def _size_of(self, url: str) -> int:
        """The size of the file at ``url`` (its own origin only, capped in size and time)."""
        content = await fetch_for_upload(
            self._http,
            url,
            max_bytes=self._config.upload_max_bytes,
            seconds=self._config.upload_fetch_seconds,
            what="attachment fetch for a viber send (its size)",
        )
        return len(content)

    async def _send(self, key: ThreadKey, body: dict[str, object]) -> str:
        payload = {
            "receiver": key.customer,
            "min_api_version": 1,
            "sender": {"name": self._config.bot_name},
            **body,
        }
        request = self._http.build_request(
            "POST",
            self._url,
            json=payload,
            headers={"X-Viber-Auth-Token": self._config.auth_token.get_secret_value()},
        )
        response = await send(self._http, request, "viber send_message")
        if not response.is_success:
            raise classify_viber_error(response)
        # HTTP 200 answers an accepted message too: one we cannot read may have gone out.
        try:
            answer = _Sent.model_validate_json(response.content)
        except ValidationError as exc:
            raise SendInDoubt(
                "viber send_message: unreadable answer, it may have been sent"
            ) from exc
        if answer.status != 0:
            raise classify_viber_error(response)
        if answer.message_token is None:
            raise SendInDoubt("viber send_message: accepted without a message_token")
        return str(answer.message_token)


def _name_of(url: str) -> str:
    """The last path segment of ``url`` (a file needs a name), or ``file``."""
    name = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    return name[:255] or "file"
