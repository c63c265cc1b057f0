"""Facebook Messenger (a Page's inbox) as a channel: its settings view and registry entry.

The webhook, Send API and errors are Meta's messaging platform, shared with Instagram
(``channels/_meta.py``); this is what is Messenger's own: the ``page`` envelope, the Page
access token, 2,000-character texts, delivery receipts and the window's subcode (2018278).
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
    MESSENGER as APP,
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

__all__ = ["MESSENGER", "MESSENGER_BASE_URL", "MessengerSettings"]

MESSENGER_BASE_URL: Final = "https://graph.facebook.com/v21.0"


@dataclass(frozen=True, slots=True)
class MessengerSettings:
    """What the Messenger channel is configured with (``THREADLINE_MESSENGER_*``)."""

    app_secret: SecretStr | None = None
    """The Meta app's secret: verifies the webhooks' ``X-Hub-Signature-256``."""
    verify_token: SecretStr | None = None
    """Answers Meta's ``GET`` verification handshake."""
    page_access_token: SecretStr | None = None
    """The Page access token (``pages_messaging``): sends as the Page."""
    base_url: str = MESSENGER_BASE_URL
    human_agent: bool = True
    """Past 24 hours, a teammate's reply goes tagged ``HUMAN_AGENT`` (up to 7 days)."""
    account_id: str | None = None
    """The app's id in the accounts file; None: the ``THREADLINE_MESSENGER_*`` shorthand."""
    page_ids: frozenset[str] | None = None
    """The Pages of this app (``entry[].id``, ``ThreadKey.account``): it sends for them, and a
    webhook it signed may be about them only. None (the shorthand): any."""


def _receives(s: MessengerSettings) -> bool:
    return s.app_secret is not None


def _sends(s: MessengerSettings) -> bool:
    return s.page_access_token is not None


def _accept(request: Request, s: MessengerSettings, max_bytes: int) -> list[ParsedEvent]:
    assert s.app_secret is not None  # _receives
    verify_meta_signature(
        request.body, request.headers.get("x-hub-signature-256"), s.app_secret.get_secret_value()
    )
    require_json(request.content_type)
    events = parse_meta_messaging(request.body, APP, max_bytes=max_bytes)
    check_accounts(request.body, s.page_ids, "page")
    return events


def _handshake(query: Mapping[str, str], s: MessengerSettings) -> str | None:
    if s.verify_token is None:
        return None
    return verify_meta_handshake(query, s.verify_token.get_secret_value())


def _client(http: httpx.AsyncClient, s: MessengerSettings) -> MetaMessagingClient:
    assert s.page_access_token is not None  # _sends
    config = MetaMessagingConfig(
        access_token=s.page_access_token, base_url=s.base_url, human_agent=s.human_agent
    )
    return MetaMessagingClient(http, config, APP)


MESSENGER: ChannelSpec[MessengerSettings] = ChannelSpec(
    channel=Channel.MESSENGER,
    webhook=Webhook(accept=_accept, handshake=_handshake),
    receives=_receives,
    sends=_sends,
    client=_client,
    # 2,000 characters (counted in UTF-16 units: never more than Meta's count).
    text_limit=TextLimit(2000, utf16=True),
    text_format=lambda key: TextFormat.PLAIN,
    # The window is Meta's to enforce: the client answers a closed one with HUMAN_AGENT.
    windowed=lambda key: False,
    receipts=True,
    # A Page cannot start a conversation: the customer writes first.
    new_customer=re.compile(r"(?!)"),
    phone=lambda key: None,
    accounts=lambda s: s.page_ids,
    window_closed=(
        "outside Messenger's messaging window (24 hours after the customer's last message, 7"
        " days for a teammate's reply tagged HUMAN_AGENT): the customer has to write first"
    ),
)
"""Messenger: plain text of 2,000 characters, attachments by URL, delivery receipts, the 24-hour
window (7 days with HUMAN_AGENT) enforced by Meta."""
