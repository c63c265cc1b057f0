"""Telegram bots as a channel: its settings view and its registry entry."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from runtime import Request

from .._decode import require_json
from .._model import Channel, ParsedEvent
from .._spec import BotRoutes, ChannelSpec, Webhook
from .._text import TextFormat, TextLimit
from ._api import TELEGRAM_BASE_URL, TelegramClient, TelegramConfig
from ._webhook import GroupPolicy, parse_telegram, verify_telegram_secret

__all__ = ["TELEGRAM", "TelegramSettings"]


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """What the Telegram channel is configured with (``THREADLINE_TELEGRAM_*``)."""

    bot_token: SecretStr | None = None
    """Sends and downloads; its bot id (before the colon) is every thread's account."""
    secret_token: SecretStr | None = None
    """Checks the webhooks' ``X-Telegram-Bot-Api-Secret-Token``."""
    base_url: str = TELEGRAM_BASE_URL
    groups: GroupPolicy = "ignore"
    upload_max_bytes: int = 50 * 1024 * 1024
    """A document Telegram does not take by URL is fetched and uploaded: at most this large."""
    upload_fetch_seconds: float = 30.0
    account_id: str | None = None
    """The bot's id in the accounts file; None: the ``THREADLINE_TELEGRAM_*`` shorthand, on
    ``/webhooks/telegram``. A bot of the file has its own route,
    ``/webhooks/telegram/<bot id>``, and sends for its own bot id only."""

    @property
    def bot_id(self) -> str | None:
        """The bot's numeric id: the part of the token before the colon."""
        if self.bot_token is None:
            return None
        return self.bot_token.get_secret_value().split(":", 1)[0]


def _receives(s: TelegramSettings) -> bool:
    return s.secret_token is not None and s.bot_token is not None


def _sends(s: TelegramSettings) -> bool:
    return s.bot_token is not None


def _accept(request: Request, s: TelegramSettings, max_bytes: int) -> list[ParsedEvent]:
    bot_id = s.bot_id
    assert s.secret_token is not None
    assert bot_id is not None
    verify_telegram_secret(
        request.headers.get("x-telegram-bot-api-secret-token"), s.secret_token.get_secret_value()
    )
    require_json(request.content_type)
    return parse_telegram(request.body, bot_id, max_bytes=max_bytes, groups=s.groups)


def _client(http: httpx.AsyncClient, s: TelegramSettings) -> TelegramClient:
    assert s.bot_token is not None  # _sends
    return TelegramClient(
        http,
        TelegramConfig(
            bot_token=s.bot_token,
            base_url=s.base_url,
            upload_max_bytes=s.upload_max_bytes,
            upload_fetch_seconds=s.upload_fetch_seconds,
        ),
    )


_BOT: BotRoutes[TelegramSettings] = BotRoutes(
    Channel.TELEGRAM, lambda s: s.bot_id if s.account_id is not None else None
)
"""A bot of the accounts file: its own route and account, its id."""


TELEGRAM: ChannelSpec[TelegramSettings] = ChannelSpec(
    channel=Channel.TELEGRAM,
    webhook=Webhook(accept=_accept),
    receives=_receives,
    sends=_sends,
    client=_client,
    # 4,096 UTF-16 code units of the text after entity parsing (our text is sent as is).
    text_limit=TextLimit(4096, utf16=True),
    text_format=lambda key: TextFormat.TELEGRAM,
    windowed=lambda key: False,
    receipts=False,
    new_customer=re.compile(r"[0-9]{1,20}"),
    phone=lambda key: None,
    accounts=_BOT.accounts,
    account_route=_BOT.route,
)
"""Telegram: styles as message entities, no window, no delivery receipts."""
