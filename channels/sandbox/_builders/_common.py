"""What every provider's webhook builder shares: the built request (:class:`SignedWebhook`),
the attachments and contact cards it may carry, and Meta's signing."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from channels import MediaKind

__all__ = ["SignedWebhook", "WebhookContact", "WebhookMedia", "compact_json", "hub_signed", "unix"]


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


def unix(when: datetime | None) -> int:
    return int((when or datetime.now(UTC)).timestamp())


def compact_json(data: object) -> bytes:
    # Meta sends compact JSON with non-ASCII escaped; the signature covers these exact bytes.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode()


def hub_signed(app_secret: str, envelope: Mapping[str, object]) -> SignedWebhook:
    """``envelope`` as Meta posts it (WhatsApp, Messenger, Instagram): compact JSON, non-ASCII
    escaped, ``X-Hub-Signature-256`` the HMAC-SHA256 of those exact bytes."""
    body = compact_json(envelope)
    signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    return SignedWebhook(body, headers, "application/json")
