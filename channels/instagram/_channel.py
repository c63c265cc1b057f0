"""Instagram messaging (a professional account's direct messages) as a channel: its
settings view and registry entry.

The webhook, Send API and errors are Meta's messaging platform, shared with Messenger
(``channels/_meta/``); this is what is Instagram's own: the ``instagram`` envelope, the
Instagram access token (Instagram Login, on ``graph.instagram.com``; with Facebook Login, a
Page token and ``graph.facebook.com``), 1,000-character texts, no delivery receipts and the
window's subcode (2534022).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from .._meta import INSTAGRAM as APP
from .._meta import meta_spec
from .._spec import ChannelSpec
from .._text import TextLimit

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


INSTAGRAM: ChannelSpec[InstagramSettings] = meta_spec(
    APP,
    title="Instagram",
    token=lambda s: s.access_token,
    accounts=lambda s: s.account_ids,
    account_noun="instagram account",
    # 1,000 characters (counted in UTF-16 units: never more than Meta's count).
    text_limit=TextLimit(1000, utf16=True),
    receipts=False,  # reads only (messaging_seen), no deliveries
)
"""Instagram: plain text of 1,000 characters, attachments by URL, no delivery receipts, the
24-hour window (7 days with HUMAN_AGENT) enforced by Meta."""
