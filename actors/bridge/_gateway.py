"""The bridge's view of the channel providers: one client per credential set of each
configured channel (a Meta app, a Twilio account, a Telegram bot), built by the channel's
registry entry (``channels.CHANNELS``: ``sends`` and ``client``) from its settings view.

A thread is sent to with the client of the credential set that owns its business account
(``ThreadKey.account``: ``ChannelSpec.accounts``); the environment variables' one account owns
any. A channel without credentials has no client: its webhook route answers 404 and nothing is
sent to it; an account no credential set owns has none either (a note says so). All
clients share one ``httpx.AsyncClient`` owned by the composition root.

Every send call (text, or one attachment) is timed and reported to ``observe`` with its channel
and outcome (``threadline_channel_send_duration_seconds``); media downloads are not sends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

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
        views: Mapping[Channel, Sequence[Any]],
        http: httpx.AsyncClient,
        *,
        observe: SendObserver | None = None,
    ) -> None:
        """``views``: each channel's settings views (``Settings.channel_views()``)."""
        self._clients: dict[Channel, list[tuple[frozenset[str] | None, ChannelClient]]] = {}
        self.whatsapp_apps: list[tuple[frozenset[str] | None, WhatsAppClient, str | None]] = []
        """Each WhatsApp Cloud API app: the phone_number_ids it owns (None: any), its client
        and its WhatsApp Business Account id (its template catalog), when set."""
        for channel, spec in CHANNELS.items():
            for view in views.get(channel, ()):
                if not spec.sends(view):
                    continue
                client = spec.client(http, view)
                owned = spec.accounts(view)
                if isinstance(client, WhatsAppClient):
                    waba = getattr(view, "business_account_id", None)
                    self.whatsapp_apps.append((owned, client, waba))
                if observe is not None:
                    client = _Timed(channel.value, client, observe)
                self._clients.setdefault(channel, []).append((owned, client))

    def client(self, channel: Channel, account: str | None = None) -> ChannelClient | None:
        """The client for business ``account`` on ``channel`` (None: the channel's first), or
        None when no credential set of the channel owns it."""
        return _owner(self._clients.get(channel, []), account)

    def whatsapp_for(self, account: str) -> WhatsAppClient | None:
        """The WhatsApp Cloud API client of the app that owns phone_number_id ``account``."""
        return _owner([(owned, client) for owned, client, _ in self.whatsapp_apps], account)

    @property
    def channels(self) -> frozenset[Channel]:
        """The configured channels."""
        return frozenset(self._clients)


_C = TypeVar("_C")


def _owner(clients: Sequence[tuple[frozenset[str] | None, _C]], account: str | None) -> _C | None:
    """The client whose credential set owns ``account``: the one listing it, else one that
    owns any (the environment variables' account)."""
    if not clients:
        return None
    if account is None:
        return clients[0][1]
    for owned, client in clients:
        if owned is not None and account in owned:
            return client
    for owned, client in clients:
        if owned is None:
            return client
    return None


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
