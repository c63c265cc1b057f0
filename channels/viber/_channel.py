"""Viber bots as a channel: its settings view and its registry entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import httpx
from pydantic import SecretStr

from runtime import Request

from .._decode import require_json
from .._model import Channel, ParsedEvent
from .._spec import BotRoutes, ChannelSpec, Webhook
from .._text import TextFormat, TextLimit
from ._api import VIBER_BASE_URL, VIBER_TEXT_LIMIT, ViberClient, ViberConfig
from ._webhook import VIBER_USER_ID, parse_viber, verify_viber_signature

__all__ = ["VIBER", "VIBER_DEFAULT_ACCOUNT", "ViberSettings"]

VIBER_DEFAULT_ACCOUNT: Final = "default"
"""The account (``ThreadKey.account``) of the ``THREADLINE_VIBER_*`` bot. A Viber callback does
not name its bot: an account of the accounts file is its ``id`` (name one ``default`` to keep
the threads of a bot moved from the variables to the file)."""


@dataclass(frozen=True, slots=True)
class ViberSettings:
    """What the Viber channel is configured with (``THREADLINE_VIBER_*``)."""

    auth_token: SecretStr | None = None
    """Sends (``X-Viber-Auth-Token``) and checks the callbacks' signatures."""
    base_url: str = VIBER_BASE_URL
    bot_name: str | None = None
    """``sender.name`` of every send (1-28 characters): the bot's name as customers see it."""
    upload_max_bytes: int = 50 * 1024 * 1024
    upload_fetch_seconds: float = 30.0
    account_id: str | None = None
    """The bot's id in the accounts file; None: the ``THREADLINE_VIBER_*`` shorthand, on
    ``/webhooks/viber``. A bot of the file has its own route, ``/webhooks/viber/<id>``, and
    sends for its own account only."""

    @property
    def account(self) -> str:
        """The bot's account: its accounts-file id, or :data:`VIBER_DEFAULT_ACCOUNT`."""
        return self.account_id or VIBER_DEFAULT_ACCOUNT


def _receives(s: ViberSettings) -> bool:
    return s.auth_token is not None


def _sends(s: ViberSettings) -> bool:
    return s.auth_token is not None and bool(s.bot_name)


def _accept(request: Request, s: ViberSettings, max_bytes: int) -> list[ParsedEvent]:
    assert s.auth_token is not None  # _receives
    verify_viber_signature(
        request.body,
        request.headers.get("x-viber-content-signature"),
        s.auth_token.get_secret_value(),
    )
    require_json(request.content_type)
    return parse_viber(request.body, s.account, max_bytes=max_bytes)


def _client(http: httpx.AsyncClient, s: ViberSettings) -> ViberClient:
    assert s.auth_token is not None  # _sends
    assert s.bot_name
    return ViberClient(
        http,
        ViberConfig(
            auth_token=s.auth_token,
            bot_name=s.bot_name,
            base_url=s.base_url,
            upload_max_bytes=s.upload_max_bytes,
            upload_fetch_seconds=s.upload_fetch_seconds,
        ),
    )


_BOT: BotRoutes[ViberSettings] = BotRoutes(Channel.VIBER, lambda s: s.account_id)
"""A bot of the accounts file: its own route and account, its accounts-file id."""


VIBER: ChannelSpec[ViberSettings] = ChannelSpec(
    channel=Channel.VIBER,
    webhook=Webhook(accept=_accept),
    receives=_receives,
    sends=_sends,
    client=_client,
    # 7,000 characters (courier's maxMsgLength); counted in UTF-16 units to be safe.
    text_limit=TextLimit(VIBER_TEXT_LIMIT, utf16=True),
    text_format=lambda key: TextFormat.PLAIN,
    windowed=lambda key: False,
    receipts=True,
    new_customer=re.compile(VIBER_USER_ID),
    phone=lambda key: None,
    accounts=_BOT.accounts,
    account_route=_BOT.route,
)
"""Viber: plain text, no window (a customer must be subscribed), delivery receipts."""
