"""Facebook Messenger (a Page's inbox) as a channel: its settings view and registry entry.

The webhook, Send API and errors are Meta's messaging platform, shared with Instagram
(``channels/_meta/``); this is what is Messenger's own: the ``page`` envelope, the Page
access token, 2,000-character texts, delivery receipts and the window's subcode (2018278).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from .._meta import MESSENGER as APP
from .._meta import meta_spec
from .._spec import ChannelSpec
from .._text import TextLimit

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


MESSENGER: ChannelSpec[MessengerSettings] = meta_spec(
    APP,
    title="Messenger",
    token=lambda s: s.page_access_token,
    accounts=lambda s: s.page_ids,
    account_noun="page",
    # 2,000 characters (counted in UTF-16 units: never more than Meta's count).
    text_limit=TextLimit(2000, utf16=True),
    receipts=True,
)
"""Messenger: plain text of 2,000 characters, attachments by URL, delivery receipts, the 24-hour
window (7 days with HUMAN_AGENT) enforced by Meta."""
