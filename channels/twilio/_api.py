"""Twilio Messages API calls: pure request building and error classification, and the thin
:class:`TwilioClient` edge for media download and sends.

``MediaUrlN`` answers with a redirect to Twilio's CDN; redirects are followed only to allowed
origins and HTTP Basic credentials go to the API origin only. Twilio fetches outbound media
itself, so :meth:`TwilioClient.send_media` needs a public URL (``MediaUrl``); the bridge passes
the Intercom attachment URL. Bytes alone cannot be sent through Twilio.
"""

from __future__ import annotations

import base64
import json
from typing import Final

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from .._classify import ErrorCodes, classify_error
from .._errors import (
    ChannelError,
    SendInDoubt,
    SendRejected,
)
from .._http import Origin, fetch_capped, origin_of, origins, send
from .._model import DownloadedMedia, MediaRef, OutboundMedia, ThreadKey, media_type
from .._text import Span

__all__ = ["TwilioClient", "TwilioConfig", "classify_twilio_error"]

TWILIO_BASE_URL: Final = "https://api.twilio.com"
TWILIO_BODY_LIMIT: Final = 1600
_TWILIO_CDN_ORIGINS: Final = ("https://mms.twiliocdn.com", "https://s3-external-1.amazonaws.com")

_CODES: Final = ErrorCodes(
    window=frozenset({63016}),
    rate=frozenset({20429, 63018, 14107}),
    recipient=frozenset(
        {21211, 21408, 21610, 21612, 21614, 30003, 30004, 30005, 30006, 63003, 63024}
    ),
)


class TwilioConfig(BaseModel):
    """Credentials and endpoints for Twilio.

    ``media_origins`` is the explicit allow-list of origins media (and its redirects) may be
    fetched from. When None it is the base URL's origin, plus Twilio's media CDNs when the
    base is ``api.twilio.com``. Basic auth is only ever sent to the base URL's origin.

    ``status_callback_url`` is sent as ``StatusCallback`` with every message, so delivery
    receipts come back (for example ``THREADLINE_PUBLIC_URL + "/webhooks/twilio"``, which
    :func:`parse_twilio` reads as DeliveryStatus); None leaves it to the number's settings.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_sid: str
    auth_token: SecretStr
    base_url: str = TWILIO_BASE_URL
    subaccount_sid: str | None = None
    """Messages are created under this subaccount of ``account_sid`` (with its credentials)."""
    media_origins: tuple[str, ...] | None = None
    status_callback_url: str | None = None

    def allowed_origins(self) -> frozenset[Origin]:
        if self.media_origins is not None:
            return origins((self.base_url, *self.media_origins))
        extra = _TWILIO_CDN_ORIGINS if "api.twilio.com" in self.base_url else ()
        return origins((self.base_url, *extra))


def classify_twilio_error(response: httpx.Response) -> ChannelError:
    """Map a failed Twilio REST response (``{code, message, more_info, status}``) (pure).

    63016 → OutsideCustomerWindow; 20429/63018 or HTTP 429 → SendRateLimited;
    21211/21610/21614/21408/21612/63003/63024/3000x → RecipientUnavailable; 5xx →
    SendTransient; anything else → SendRejected.
    """
    code: int | None = None
    message = ""
    try:
        data = json.loads(response.content)
        if isinstance(data, dict):
            raw = data.get("code")
            code = raw if isinstance(raw, int) else None
            message = str(data.get("message", ""))[:200]
    except (ValueError, RecursionError):
        pass
    return classify_error("twilio", response, code, message, _CODES)


def message_form(
    key: ThreadKey, body: str | None, media_url: str | None, status_callback: str | None = None
) -> list[tuple[str, str]]:
    """Form fields of a Messages.json POST (pure). ``From`` reuses the customer's channel
    prefix (``whatsapp:``) so a Twilio-WhatsApp thread answers from the WhatsApp sender."""
    prefix, sep, _ = key.customer.rpartition(":")
    sender = f"{prefix}{sep}{key.account}"
    fields = [("To", key.customer), ("From", sender)]
    if body:
        fields.append(("Body", body))
    if media_url:
        fields.append(("MediaUrl", media_url))
    if status_callback:
        fields.append(("StatusCallback", status_callback))
    return fields


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sid: str


class TwilioClient:
    """Media download and sends over an injected ``httpx.AsyncClient``; no retries."""

    def __init__(self, http: httpx.AsyncClient, config: TwilioConfig) -> None:
        self._http = http
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._allowed = config.allowed_origins()
        credentials = f"{config.account_sid}:{config.auth_token.get_secret_value()}"
        self._auth = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
        self._api_origin = origin_of(self._base)

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia:
        """Fetch a ``MediaUrlN`` (following redirects within the allow-list, ≤ ``max_bytes``).

        Raises:
            MediaHostForbidden: the URL or a redirect leaves the allow-list (not fetched).
            MediaTooLarge, MediaUnavailable, SendRateLimited, SendTransient, SendRejected.
        """
        content, content_type = await fetch_capped(
            self._http,
            media.ref,
            allowed=self._allowed,
            max_bytes=max_bytes,
            what="twilio media download",
            auth_for={self._api_origin: self._auth},
        )
        return DownloadedMedia(
            content=content, mime_type=media.mime_type or content_type, filename=media.filename
        )

    async def send_text(self, key: ThreadKey, text: str, *, spans: tuple[Span, ...] = ()) -> str:
        """Send an SMS / WhatsApp text to ``key.customer``; returns the MessageSid. The text is
        sent whole: Twilio refuses one over 1,600 characters (error 21617; split it first,
        channels.compose). Styles travel in the text (``*bold*`` on WhatsApp), so ``spans``
        must be empty."""
        if spans:
            raise ValueError("twilio text carries its styles in the text, not as spans")
        return await self._create(message_form(key, text, None, self._config.status_callback_url))

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool:
        """Whether ``caption`` can be the ``Body`` beside ``media`` (up to 1,600 characters):
        always on SMS/MMS; on WhatsApp only for images and videos (Twilio sets no caption on
        WhatsApp documents or audio)."""
        if len(caption) > TWILIO_BODY_LIMIT:
            return False
        major = media_type(media.mime_type).partition("/")[0]
        return not key.customer.startswith("whatsapp:") or major in ("image", "video")

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str:
        """Send an attachment by public URL (Twilio fetches it); returns the MessageSid.

        Raises:
            SendRejected: ``media.url`` is None (Twilio cannot take uploaded bytes).
        """
        if media.url is None:
            raise SendRejected("twilio media sends need a public media URL")
        form = message_form(key, caption, media.url, self._config.status_callback_url)
        return await self._create(form)

    async def _create(self, fields: list[tuple[str, str]]) -> str:
        sid = self._config.subaccount_sid or self._config.account_sid
        request = self._http.build_request(
            "POST",
            f"{self._base}/2010-04-01/Accounts/{sid}/Messages.json",
            headers=self._auth,
            data=dict(fields),
        )
        response = await send(self._http, request, "twilio send")
        if not response.is_success:
            raise classify_twilio_error(response)
        try:
            return _Message.model_validate_json(response.content).sid
        except ValidationError as exc:
            # Accepted (2xx) without a readable SID: it may have gone out; not sent again.
            raise SendInDoubt("twilio send: unreadable response") from exc
