"""LINE official accounts as a channel: its settings view and its registry entry."""

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
from ._api import LINE_BASE_URL, LINE_DATA_BASE_URL, LINE_TEXT_LIMIT, LineClient, LineConfig
from ._webhook import SIGNATURE_HEADER, LineGroupPolicy, parse_line, verify_line_signature

__all__ = ["LINE", "LineSettings"]


@dataclass(frozen=True, slots=True)
class LineSettings:
    """What the LINE channel is configured with (``THREADLINE_LINE_*``)."""

    channel_secret: SecretStr | None = None
    """Checks the webhooks' ``x-line-signature``."""
    channel_access_token: SecretStr | None = None
    """Sends (reply and push) and downloads content."""
    base_url: str = LINE_BASE_URL
    data_base_url: str = LINE_DATA_BASE_URL
    groups: LineGroupPolicy = "ignore"
    account_id: str | None = None
    """The account's id in the accounts file; None: the ``THREADLINE_LINE_*`` shorthand, on
    ``/webhooks/line``, for any bot. An account of the file has its own route,
    ``/webhooks/line/<bot user id>``, and sends for its own bot only."""
    bot_user_id: str | None = None
    """The bot's user id (the webhooks' ``destination``), of an account of the file."""


def _receives(s: LineSettings) -> bool:
    return s.channel_secret is not None and s.channel_access_token is not None


def _sends(s: LineSettings) -> bool:
    return s.channel_access_token is not None


def _accept(request: Request, s: LineSettings, max_bytes: int) -> list[ParsedEvent]:
    assert s.channel_secret is not None  # _receives
    verify_line_signature(
        request.body, request.headers.get(SIGNATURE_HEADER), s.channel_secret.get_secret_value()
    )
    require_json(request.content_type)
    return parse_line(request.body, max_bytes=max_bytes, groups=s.groups)


def _client(http: httpx.AsyncClient, s: LineSettings) -> LineClient:
    assert s.channel_access_token is not None  # _sends
    return LineClient(
        http,
        LineConfig(
            channel_access_token=s.channel_access_token,
            base_url=s.base_url,
            data_base_url=s.data_base_url,
        ),
    )


_BOT: BotRoutes[LineSettings] = BotRoutes(
    Channel.LINE, lambda s: s.bot_user_id if s.account_id is not None else None
)
"""An account of the accounts file: its own route and account, its bot user id."""


LINE: ChannelSpec[LineSettings] = ChannelSpec(
    channel=Channel.LINE,
    webhook=Webhook(accept=_accept),
    receives=_receives,
    sends=_sends,
    client=_client,
    text_limit=TextLimit(LINE_TEXT_LIMIT, utf16=True),
    text_format=lambda key: TextFormat.PLAIN,
    windowed=lambda key: False,
    receipts=False,
    new_customer=re.compile(r"U[0-9a-f]{32}"),
    phone=lambda key: None,
    accounts=_BOT.accounts,
    account_route=_BOT.route,
)
"""LINE: plain text, no window, no delivery receipts; reply tokens used while fresh."""
