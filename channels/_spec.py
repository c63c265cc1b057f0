"""What a channel is to the rest of the bridge: one :class:`ChannelSpec` per provider.

Each provider's subpackage (``channels/whatsapp/``, ``channels/twilio/``, ``channels/telegram/``,
``channels/messenger/``, ``channels/instagram/``, ``channels/viber/``) builds its spec from its
own pieces — its settings view, webhook verify+parse, client, limits, window rule and markup —
and ``channels/_registry.py`` lists the specs, one line each. The ingress, the gateway and the
outgoing text read a channel's rules from its spec, never from an ``if channel == …``.

A spec is generic in its settings view ``S`` (e.g. :class:`~channels.whatsapp.WhatsAppSettings`):
the application builds the view from its own settings, and the spec's rules take only that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httpx

from runtime import Request

from ._model import Channel, DownloadedMedia, MediaRef, OutboundMedia, ParsedEvent, ThreadKey
from ._text import Span, TextFormat, TextLimit

__all__ = ["BotRoutes", "ChannelClient", "ChannelSpec", "Webhook", "webhook_path"]

S = TypeVar("S")


class ChannelClient(Protocol):
    """What the bridge needs from a provider client."""

    async def download(self, media: MediaRef, *, max_bytes: int) -> DownloadedMedia: ...

    async def send_text(
        self, key: ThreadKey, text: str, *, spans: tuple[Span, ...] = ()
    ) -> str: ...

    async def send_media(
        self, key: ThreadKey, media: OutboundMedia, *, caption: str | None = None
    ) -> str: ...

    def caption_fits(self, key: ThreadKey, media: OutboundMedia, caption: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Webhook(Generic[S]):
    """A channel's webhook route: ``POST {path}`` (and a ``GET`` handshake when it has one).

    ``accept`` verifies and parses a request (raising :class:`~channels.WebhookRejected`);
    ``handshake`` answers the ``GET`` verification with the challenge, None when the view
    lacks what it needs (404), raising :class:`~channels.SignatureInvalid` (403) or
    :class:`~channels.PayloadInvalid` (400).
    """

    accept: Callable[[Request, S, int], list[ParsedEvent]]
    """(request, settings view, max body bytes) → the parsed events, in payload order."""
    reply: tuple[bytes, str] | None = None
    """The 200 answer's body and content type where the provider expects one (Twilio's
    TwiML); None: a plain ``ok``."""
    handshake: Callable[[Mapping[str, str], S], str | None] | None = None


def _any_account(view: object) -> frozenset[str] | None:
    return None


def _no_route(view: object) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class ChannelSpec(Generic[S]):
    """One channel: every rule the bridge looks up per channel.

    ``receives`` and ``sends`` are the one place that decides whether the channel is
    configured, for its webhook route (which answers 404 otherwise) and for its client (no
    client: nothing is sent). They differ where the two need different credentials (a Meta app
    secret verifies WhatsApp's webhooks, an access token sends).

    A view is one credential set (a Meta app, a Twilio account, a Telegram bot); a channel may
    have several (the accounts file). ``webhook.accept`` raises
    :class:`~channels.SignatureInvalid` when the request is not signed with the view's secret
    (the ingress then tries the next view of the route) and
    :class:`~channels.AccountMismatch` when it is, but about an account the view does not own.
    """

    channel: Channel
    webhook: Webhook[S]
    receives: Callable[[S], bool]
    """Whether the webhook route is served with this view."""
    sends: Callable[[S], bool]
    """Whether a client can be built from this view."""
    client: Callable[[httpx.AsyncClient, S], ChannelClient]
    """The provider client (call only when ``sends``)."""
    text_limit: TextLimit
    """The provider's limit on one text message."""
    text_format: Callable[[ThreadKey], TextFormat]
    """How text is marked up for a thread's customer."""
    windowed: Callable[[ThreadKey], bool]
    """Whether WhatsApp's 24-hour customer-service window rules the thread."""
    receipts: bool
    """Whether the provider reports delivery after accepting a send."""
    new_customer: re.Pattern[str]
    """Customer ids a thread may be opened with from our side (the send API): a phone number
    (wa_id, E.164), a Telegram private chat id or a Viber user id."""
    phone: Callable[[ThreadKey], str | None]
    """The customer's E.164 phone, as the inbound path identifies them by, or None."""
    templates: bool = False
    """Whether WhatsApp message templates are sent on this channel (the Cloud API's only)."""
    accounts: Callable[[S], frozenset[str] | None] = _any_account
    """The business accounts (``ThreadKey.account``) a view sends for and receives about;
    None: any (the one-account shorthand of the environment variables)."""
    account_route: Callable[[S], str | None] = _no_route
    """A webhook path of the view's own (a Telegram or Viber bot of the accounts file); None: the
    channel's :attr:`route`, shared by every view without one."""
    window_closed: str = "outside WhatsApp's 24-hour customer-service window (a template is needed)"
    """Why a send the provider refused as outside its messaging window did not go (the
    teammates' note)."""

    @property
    def name(self) -> str:
        return self.channel.value

    @property
    def route(self) -> str:
        """The webhook's path."""
        return webhook_path(self.channel)


def webhook_path(channel: Channel) -> str:
    """The path of ``channel``'s webhook route (Twilio signs it, with the public URL)."""
    return f"/webhooks/{channel.value}"


@dataclass(frozen=True, slots=True)
class BotRoutes(Generic[S]):
    """The accounts and routes of a bot channel's views (Telegram, Viber, LINE), for
    :attr:`ChannelSpec.accounts` and :attr:`ChannelSpec.account_route`: a view whose ``bot``
    is an id (a bot of the accounts file) has its own route, ``{channel's route}/{id}``, and
    sends for that account only; one whose ``bot`` is None (the shorthand) for any, on the
    channel's route."""

    channel: Channel
    bot: Callable[[S], str | None]

    def accounts(self, view: S) -> frozenset[str] | None:
        bot = self.bot(view)
        return None if bot is None else frozenset({bot})

    def route(self, view: S) -> str | None:
        bot = self.bot(view)
        return None if bot is None else f"{webhook_path(self.channel)}/{bot}"
