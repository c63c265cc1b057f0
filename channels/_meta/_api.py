"""Meta's Send API (:class:`MetaMessagingClient`), for Messenger and Instagram.

``POST {base}/{account}/messages`` with the Page (or Instagram) access token as a bearer
header; ``messaging_type: RESPONSE`` within 24 hours of the customer's last message, and when
Meta answers that the window is closed, once more with ``MESSAGE_TAG`` / ``HUMAN_AGENT`` (a
human's reply, up to 7 days) when the account allows it. Attachments go by URL (the bridge's
public ``/media`` links); media arrives as signed CDN URLs fetched without a token, from an
explicit allow-list of hosts.
"""

from __future__ import annotations

import re
from typing import Final

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .._errors import MediaUnavailable, OutsideCustomerWindow, SendInDoubt, SendRejected
from .._http import Origin, fetch_capped, origins, send
from .._model import DownloadedMedia, MediaRef, OutboundMedia, ThreadKey, media_type
from .._text import Span
from ._apps import MetaApp
from ._errors import classify_meta_error

__all__ = [
    "META_CDN_SUFFIXES",
    "MetaMessagingClient",
    "MetaMessagingConfig",
    "attachment_type",
    "message_body",
]

META_CDN_SUFFIXES: Final = ("fbcdn.net", "fbsbx.com", "cdninstagram.com")
"""The hosts Meta serves webhook attachments from (``scontent-*.xx.fbcdn.net``,
``lookaside.fbsbx.com``, Instagram's ``*.cdninstagram.com``): https only, no token sent."""

_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


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
        except ValidationError as exc:  # a 2xx: it went out, whatever the answer says
            raise SendInDoubt(f"{what}: accepted, but the answer is unreadable") from exc
