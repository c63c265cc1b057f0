"""Facebook Messenger: a Page's conversations, on Meta's messaging platform (webhook, Send API
and errors in ``channels/_meta/``, shared with Instagram) and its registry entry
(``_channel.py``)."""

from .._meta import classify_messenger_error as classify_messenger_error
from ._channel import MESSENGER as MESSENGER
from ._channel import MESSENGER_BASE_URL as MESSENGER_BASE_URL
from ._channel import MessengerSettings as MessengerSettings

__all__ = ["MESSENGER", "MESSENGER_BASE_URL", "MessengerSettings", "classify_messenger_error"]
