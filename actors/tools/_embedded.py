"""An embedded stack: the sandboxes and a bridge in one process, talking real HTTP on loopback.

Used by ``threadline demo``, ``threadline loadtest`` (embedded mode) and the end-to-end tests.
The provider side is played with the signed webhook builders, exactly as the providers send.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import trio
from prometheus_client import CollectorRegistry

from channels import Channel
from channels.sandbox import (
    MetaInbound,
    ProviderSandbox,
    SandboxCredentials,
    SentMessage,
    SignedWebhook,
    WebhookMedia,
    WhatsAppInbound,
    meta_webhook,
    telegram_message_webhook,
    twilio_message_webhook,
    viber_event_webhook,
    viber_message_webhook,
    whatsapp_webhook,
)
from runtime import BoundAddress, hypercorn_config, serve_asgi

from ..core import Settings
from ..service import Node, run_bridge
from ._sandbox import SANDBOX_SECRETS, SandboxApp, sandbox_settings_env

__all__ = ["Stack", "open_stack"]

PUBLIC_URL = "https://bridge.example"
"""The public URL the embedded bridge believes it has (Twilio signs webhooks against it)."""


@dataclass
class Stack:
    """A running sandbox + bridge, and helpers to play the providers' side."""

    sandbox: SandboxApp
    sandbox_url: str
    node: Node
    http: httpx.AsyncClient
    """A client for the bridge's ingress (base URL set)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def settings(self) -> Settings:
        return self.node.settings

    async def post(self, path: str, webhook: SignedWebhook) -> httpx.Response:
        """POST a signed webhook to the bridge."""
        return await self.http.post(path, content=webhook.body, headers=webhook.headers)

    async def whatsapp(
        self,
        from_phone: str,
        text: str | None = None,
        *,
        media: WebhookMedia | None = None,
        message_id: str | None = None,
        name: str | None = "Sandbox Customer",
        sent_at: datetime | None = None,
        batch: Sequence[WhatsAppInbound] = (),
        app_secret: str = SANDBOX_SECRETS.whatsapp_app_secret,
        phone_number_id: str = SANDBOX_SECRETS.whatsapp_phone_number_id,
    ) -> httpx.Response:
        """A customer's WhatsApp message (or a whole batch) as Meta would deliver it, to the
        business number ``phone_number_id``, signed with its app's ``app_secret``."""
        messages = list(batch) or [
            WhatsAppInbound(
                from_phone=from_phone,
                text=text,
                media=media,
                message_id=message_id or f"wamid.sandbox{next(self._ids):012d}",
                name=name,
                sent_at=sent_at,
            )
        ]
        webhook = whatsapp_webhook(app_secret, phone_number_id, messages)
        for message in messages:  # the fake WhatsApp keeps the 24-hour window as Meta does
            at = (message.sent_at or datetime.now(UTC)).timestamp()
            self.sandbox.providers.customer_wrote(message.from_phone, at)
        return await self.post("/webhooks/whatsapp", webhook)

    async def sms(
        self,
        from_phone: str,
        body: str = "",
        *,
        media: Sequence[WebhookMedia] = (),
        message_sid: str | None = None,
        whatsapp: bool = False,
        opt_out_type: str | None = None,
    ) -> httpx.Response:
        """A customer's SMS (or Twilio-WhatsApp message) as Twilio would deliver it: the
        sandbox Twilio receives it first (and applies the opt-out keywords, as Twilio does);
        ``opt_out_type`` is Advanced Opt-Out's ``OptOutType`` field."""
        prefix = "whatsapp:" if whatsapp else ""
        self.sandbox.providers.receive_sms(
            prefix + from_phone, prefix + SANDBOX_SECRETS.twilio_number, body,
            opt_out_type=opt_out_type,
        )  # fmt: skip
        webhook = twilio_message_webhook(
            self.sandbox.providers.credentials.twilio_auth_token,
            f"{PUBLIC_URL}/webhooks/twilio",
            account_sid=self.sandbox.providers.credentials.twilio_account_sid,
            to=prefix + SANDBOX_SECRETS.twilio_number,
            from_=prefix + from_phone,
            body=body,
            media=media,
            message_sid=message_sid or f"SM{next(self._ids):032d}",
            opt_out_type=opt_out_type,
        )
        return await self.post("/webhooks/twilio", webhook)

    async def telegram(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        media: WebhookMedia | None = None,
        message_id: int | None = None,
        sent_at: datetime | None = None,
        first_name: str = "Sandbox",
        path: str = "/webhooks/telegram",
        secret_token: str = SANDBOX_SECRETS.telegram_secret_token,
    ) -> httpx.Response:
        """A customer's Telegram message as the Bot API would deliver it, to the bot whose
        route is ``path`` and webhook secret ``secret_token``."""
        webhook = telegram_message_webhook(
            secret_token,
            chat_id=chat_id,
            message_id=message_id or next(self._ids),
            text=text,
            media=media,
            sent_at=sent_at,
            first_name=first_name,
        )
        return await self.post(path, webhook)

    async def meta(
        self,
        channel: Channel,
        sender: str,
        text: str | None = None,
        *,
        media_url: str | None = None,
        media_type: str = "image",
        mid: str | None = None,
        sent_at: datetime | None = None,
        postback_title: str | None = None,
    ) -> httpx.Response:
        """A customer's Messenger (to the sandbox Page) or Instagram (to the sandbox account)
        message as Meta would deliver it; the fake Send API learns that they wrote (its
        window)."""
        messenger = channel is Channel.MESSENGER
        account = (
            SANDBOX_SECRETS.messenger_page_id if messenger else SANDBOX_SECRETS.instagram_account_id
        )
        secret = (
            SANDBOX_SECRETS.messenger_app_secret
            if messenger
            else SANDBOX_SECRETS.instagram_app_secret
        )
        event = MetaInbound(
            sender=sender,
            text=text,
            media_url=media_url,
            media_type=media_type,
            mid=mid or f"m_sandbox{next(self._ids):012d}",
            sent_at=sent_at,
            postback_title=postback_title,
        )
        webhook = meta_webhook(
            secret, account, [event], object="page" if messenger else "instagram"
        )
        at = (sent_at or datetime.now(UTC)).timestamp()
        self.sandbox.providers.meta_customer_wrote(channel, account, sender, at)
        return await self.post(f"/webhooks/{channel.value}", webhook)

    async def viber(
        self,
        user_id: str,
        text: str | None = None,
        *,
        media: WebhookMedia | None = None,
        message_token: int | None = None,
        name: str | None = "Sandbox Customer",
        sent_at: datetime | None = None,
        path: str = "/webhooks/viber",
        auth_token: str | None = None,
    ) -> httpx.Response:
        """A Viber user's message as Viber would call back, signed with the auth token of the
        bot whose route is ``path`` (default: the sandbox bot's)."""
        token = auth_token or self.sandbox.providers.credentials.viber_auth_token
        webhook = viber_message_webhook(
            token,
            user_id=user_id,
            message_token=message_token or 4_900_000_000_000_000_000 + next(self._ids),
            text=text,
            media=media,
            name=name,
            sent_at=sent_at,
        )
        return await self.post(path, webhook)

    async def viber_event(
        self,
        event: str,
        user_id: str,
        *,
        path: str = "/webhooks/viber",
        auth_token: str | None = None,
    ) -> httpx.Response:
        """A Viber ``subscribed``/``unsubscribed``/``conversation_started`` callback of
        ``user_id``; the sandbox Viber applies the subscription first, as Viber does."""
        if event == "unsubscribed":
            self.sandbox.providers.viber_unsubscribe(user_id)
        elif event == "subscribed":
            self.sandbox.providers.viber_subscribe(user_id)
        token = auth_token or self.sandbox.providers.credentials.viber_auth_token
        webhook = viber_event_webhook(
            token, event, user_id=user_id, message_token=4_800_000_000_000_000_000 + next(self._ids)
        )
        return await self.post(path, webhook)

    async def line(
        self,
        user_id: str,
        text: str | None = None,
        *,
        media: WebhookMedia | None = None,
        message_id: str | None = None,
        reply_token_seconds: float | None = None,
        path: str = "/webhooks/line",
        channel_secret: str = SANDBOX_SECRETS.line_channel_secret,
    ) -> httpx.Response:
        """A customer's LINE message as the Messaging API would deliver it, signed with
        ``channel_secret``, with a reply token the sandbox LINE accepts once within
        ``reply_token_seconds`` (default: its own limit; 0: expired at once)."""
        webhook = self.sandbox.providers.line_message(
            channel_secret,
            user_id=user_id,
            message_id=message_id or str(500000000000 + next(self._ids)),
            text=text,
            media=media,
            reply_token_seconds=reply_token_seconds,
        )
        return await self.post(path, webhook)

    def conversations(self) -> list[dict[str, Any]]:
        """Every Intercom conversation with its parts, in order."""
        return self.sandbox.intercom.conversations()

    def contacts(self) -> list[dict[str, Any]]:
        """Every Intercom contact."""
        return self.sandbox.intercom.contacts()

    def sent(self) -> list[SentMessage]:
        """Everything the bridge sent to customers through the sandbox providers."""
        return self.sandbox.providers.sent()


@asynccontextmanager
async def open_stack(
    *,
    database_url: str,
    registry: CollectorRegistry | None = None,
    providers: SandboxCredentials | None = None,
    **overrides: Any,  # noqa: ANN401 - Settings fields, validated by pydantic
) -> AsyncIterator[Stack]:
    """Start the sandboxes and a bridge on free loopback ports; stop both on exit.

    ``providers``: what the fake providers accept (further apps, accounts and bots)."""
    sandbox = SandboxApp(providers=ProviderSandbox(providers) if providers else None)
    async with trio.open_nursery() as nursery:
        address: BoundAddress = await nursery.start(
            serve_asgi, sandbox, hypercorn_config("127.0.0.1:0")
        )
        sandbox.intercom.public_url = address.url + "/intercom"
        env = sandbox_settings_env(address.url, PUBLIC_URL)
        values: dict[str, Any] = {k.removeprefix("THREADLINE_").lower(): v for k, v in env.items()}
        values.update(
            bind="127.0.0.1:0",
            metrics_bind="127.0.0.1:0",
            database_url=database_url,
            api_token="sandbox-api-token",  # noqa: S106 - a public fake for the sandbox
        )
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        stop = trio.Event()
        async with trio.open_nursery() as bridge_nursery:
            node: Node = await bridge_nursery.start(
                functools.partial(run_bridge, settings, stop=stop, registry=registry)
            )
            sandbox.intercom.configure(webhook_url=node.ingress.url + "/webhooks/intercom")
            sandbox.providers.configure_webhooks(
                node.ingress.url,
                whatsapp_app_secret=SANDBOX_SECRETS.whatsapp_app_secret,
                messenger_app_secret=SANDBOX_SECRETS.messenger_app_secret,
            )
            async with httpx.AsyncClient(base_url=node.ingress.url, timeout=30.0) as http:
                try:
                    yield Stack(sandbox, address.url, node, http)
                finally:
                    stop.set()  # run_bridge drains and returns; then this nursery exits
        nursery.cancel_scope.cancel()
