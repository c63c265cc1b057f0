"""The bridge's view of the channel providers: one client per configured channel, built by
each channel's registry entry (``channels.CHANNELS``: ``sends`` and ``client``) from its
settings view.

A channel without credentials has no client: its webhook route answers 404 and nothing is sent
to it. All clients share one ``httpx.AsyncClient`` owned by the composition root.

Every send call (text, or one attachment) is timed and reported to ``observe`` with its channel
and outcome (``threadline_channel_send_duration_seconds``); media downloads are not sends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from channels import (
    CHANNELS,
    Channel,
    ChannelClient,
    DownloadedMedia,
    MediaRef,
    OutboundMedia,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendInDoubt,
    SendRateLimited,
    SendRejected,
    SendTransient,
    Span,
    ThreadKey,
    WhatsAppClient,
)

__all__ = ["ChannelClient", "Gateway"]


SendObserver = Callable[[str, str, float], None]
"""Called with (channel, outcome, seconds) after each send call."""


class Gateway:
    """The configured channel clients; ``observe`` times their sends (metrics)."""

    def __init__(
        self,
        views: Mapping[Channel, Any],
        http: httpx.AsyncClient,
        *,
        observe: SendObserver | None = None,
    ) -> None:
        """``views``: each channel's settings view (``Settings.channel_views()``)."""
        self._clients: dict[Channel, ChannelClient] = {}
        for channel, spec in CHANNELS.items():
            view = views.get(channel)
            if view is not None and spec.sends(view):
                self._clients[channel] = spec.client(http, view)
        whatsapp = self._clients.get(Channel.WHATSAPP)
        self.whatsapp = whatsapp if isinstance(whatsapp, WhatsAppClient) else None
        """The WhatsApp Cloud API client (templates), when configured."""
        if observe is not None:
            self._clients = {c: _Timed(c.value, k, observe) for c, k in self._clients.items()}

    def client(self, channel: Channel) -> ChannelClient | None:
        """The client for ``channel``, or None when it is not configured."""
        return self._clients.get(channel)

    @property
    def channels(self) -> frozenset[Channel]:
        """The configured channels."""
        return frozenset(self._clients)


def _outcome(exc: Exception) -> str:
    if isinstance(exc, SendRateLimited):
        return "rate_limited"
    if isinstance(exc, SendInDoubt):
        return "in_doubt"
    if isinstance(exc, SendTransient):
        return "transient"
    if isinstance(exc, (SendRejected, RecipientUnavailable, OutsideCustomerWindow)):
        return "rejected"
    return "error"


class _Timed:
    """A channel client whose sends report their duration and outcome."""

    def __init__(self, channel: str, client: ChannelClient, observe: SendObserver) -> None:
        self._channel = channel
        self._client = client
        self._observe = observe

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia:
        return await self._client.download(media, max_bytes=max_bytes)

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool:
        return self._client.caption_fits(key, media, caption)

    async def send_text(self, key: ThreadKey, text: str, *, spans: tuple[Span, ...] = ()) -> str:
        return await self._timed(self._client.send_text(key, text, spans=spans))

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str:
        return await self._timed(self._client.send_media(key, media, caption=caption))

    async def _timed(self, call: Awaitable[str]) -> str:
        started = time.perf_counter()
        try:
            message_id = await call
        except Exception as exc:  # counted, then re-raised unchanged
            self._observe(self._channel, _outcome(exc), time.perf_counter() - started)
            raise
        # A cancellation (shutdown) is not the provider's answer: it is not observed.
        self._observe(self._channel, "sent", time.perf_counter() - started)
        return message_id
