"""Instagram messaging: a professional account's direct messages, on Meta's messaging platform
(webhook, Send API and errors in ``channels/_meta/``, shared with Messenger) and its registry
entry (``_channel.py``)."""

from .._meta import classify_instagram_error as classify_instagram_error
from ._channel import INSTAGRAM as INSTAGRAM
from ._channel import INSTAGRAM_BASE_URL as INSTAGRAM_BASE_URL
from ._channel import InstagramSettings as InstagramSettings

__all__ = ["INSTAGRAM", "INSTAGRAM_BASE_URL", "InstagramSettings", "classify_instagram_error"]
