"""The bridge's view of the channel providers: one client per configured channel.

A channel without credentials has no client: its webhook route answers 404 and nothing is sent
to it. All clients share one ``httpx.AsyncClient`` owned by the composition root.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from channels import (
    Channel,
    DownloadedMedia,
    MediaRef,
    OutboundMedia,
    Span,
    TelegramClient,
    TelegramConfig,
    ThreadKey,
    TwilioClient,
    TwilioConfig,
    WhatsAppClient,
    WhatsAppConfig,
)

from ._settings import Settings

__all__ = ["ChannelClient", "Gateway"]


class ChannelClient(Protocol):
    """What the thread actor needs from a provider client."""

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia: ...

    async def send_text(
        self, key: ThreadKey, text: str, *, spans: tuple[Span, ...] = ()
    ) -> str: ...

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str: ...


class Gateway:
    """The configured channel clients."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._clients: dict[Channel, ChannelClient] = {}
        if settings.whatsapp_access_token is not None:
            self._clients[Channel.WHATSAPP] = WhatsAppClient(
                http,
                WhatsAppConfig(
                    access_token=settings.whatsapp_access_token,
                    base_url=settings.whatsapp_base_url,
                ),
            )
        if settings.twilio_account_sid and settings.twilio_auth_token is not None:
            self._clients[Channel.TWILIO] = TwilioClient(
                http,
                TwilioConfig(
                    account_sid=settings.twilio_account_sid,
                    auth_token=settings.twilio_auth_token,
                    base_url=settings.twilio_base_url,
                    status_callback_url=settings.public_url.rstrip("/") + "/webhooks/twilio",
                ),
            )
        if settings.telegram_bot_token is not None:
            self._clients[Channel.TELEGRAM] = TelegramClient(
                http,
                TelegramConfig(
                    bot_token=settings.telegram_bot_token, base_url=settings.telegram_base_url
                ),
            )

    def client(self, channel: Channel) -> ChannelClient | None:
        """The client for ``channel``, or None when it is not configured."""
        return self._clients.get(channel)

    @property
    def channels(self) -> frozenset[Channel]:
        """The configured channels."""
        return frozenset(self._clients)
