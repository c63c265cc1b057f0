"""Instagram messaging (a professional account's direct messages) as a channel: its
settings view and registry entry.

The webhook, Send API and errors are Meta's messaging platform, shared with Messenger
(``channels/_meta.py``); this is what is Instagram's own: the ``instagram`` envelope, the
Instagram access token (Instagram Login, on ``graph.instagram.com``; with Facebook Login, a
Page token and ``graph.facebook.com``), 1,000-character texts, no delivery receipts and the
window's subcode (2534022).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import httpx
from pydantic import SecretStr

from runtime import Request

from .._decode import require_json
from .._meta import (
    INSTAGRAM as APP,
)
from .._meta import (
    MetaMessagingClient,
    MetaMessagingConfig,
    check_accounts,
    parse_meta_messaging,
    verify_meta_handshake,
    verify_meta_signature,
)
from .._model import Channel, ParsedEvent
from .._spec import ChannelSpec, Webhook
from .._text import TextFormat, TextLimit

__all__ = ["INSTAGRAM", "INSTAGRAM_BASE_URL", "InstagramSettings"]

INSTAGRAM_BASE_URL: Final = "https://graph.instagram.com/v21.0"


@dataclass(frozen=True, slots=True)
class InstagramSettings:
    """What the Instagram channel is configured with (``THREADLINE_INSTAGRAM_*``)."""

    app_secret: SecretStr | None = None
    """The Meta app's secret: verifies the webhooks' ``X-Hub-Signature-256``."""
    verify_token: SecretStr | None = None
    """Answers Meta's ``GET`` verification handshake."""
    access_token: SecretStr | None = None
    """The Instagram user access token (``instagram_business_manage_messages``), or with
    Facebook Login the Page's token: sends as the professional account."""
    base_url: str = INSTAGRAM_BASE_URL
    human_agent: bool = True
    """Past 24 hours, a teammate's reply goes tagged ``HUMAN_AGENT`` (up to 7 days)."""
    account_id: str | None = None
    """The app's id in the accounts file; None: the ``THREADLINE_INSTAGRAM_*`` shorthand."""
    account_ids: frozenset[str] | None = None
    """The professional accounts of this app (``entry[].id``, ``ThreadKey.account``): it sends
    for them, and a webhook it signed may be about them only. None (the shorthand): any."""


def _receives(s: InstagramSettings) -> bool:
    return s.app_secret is not None


def _sends(s: InstagramSettings) -> bool:
    return s.access_token is not None


def _accept(request: Request, s: InstagramSettings, max_bytes: int) -> list[ParsedEvent]:
    assert s.app_secret is not None  # _receives
    verify_meta_signature(
        request.body, request.headers.get("x-hub-signature-256"), s.app_secret.get_secret_value()
    )
    require_json(request.content_type)
    events = parse_meta_messaging(request.body, APP, max_bytes=max_bytes)
    check_accounts(request.body, s.account_ids, "instagram account")
    return events


def _handshake(query: Mapping[str, str], s: InstagramSettings) -> str | None:
    if s.verify_token is None:
        return None
    return verify_meta_handshake(query, s.verify_token.get_secret_value())


def _client(http: httpx.AsyncClient, s: InstagramSettings) -> MetaMessagingClient:
    assert s.access_token is not None  # _sends
    config = MetaMessagingConfig(
        access_token=s.access_token, base_url=s.base_url, human_agent=s.human_agent
    )
    return MetaMessagingClient(http, config, APP)


INSTAGRAM: ChannelSpec[InstagramSettings] = ChannelSpec(
    channel=Channel.INSTAGRAM,
    webhook=Webhook(accept=_accept, handshake=_handshake),
    receives=_receives,
    sends=_sends,
    client=_client,
    # 1,000 characters (counted in UTF-16 units: never more than Meta's count).
    text_limit=TextLimit(1000, utf16=True),
    text_format=lambda key: TextFormat.PLAIN,
    # The window is Meta's to enforce: the client answers a closed one with HUMAN_AGENT.
    windowed=lambda key: False,
    receipts=False,  # reads only (messaging_seen), no deliveries
    # A business cannot start a conversation: the customer writes first.
    new_customer=re.compile(r"(?!)"),
    phone=lambda key: None,
    accounts=lambda s: s.account_ids,
    window_closed=(
        "outside Instagram's messaging window (24 hours after the customer's last message, 7"
        " days for a teammate's reply tagged HUMAN_AGENT): the customer has to write first"
    ),
)
"""Instagram: plain text of 1,000 characters, attachments by URL, no delivery receipts, the
24-hour window (7 days with HUMAN_AGENT) enforced by Meta."""
