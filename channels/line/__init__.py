"""LINE official accounts (Messaging API): webhooks (``_webhook.py``), API calls and client
(``_api.py``) and its registry entry (``_channel.py``)."""

from ._api import LineClient as LineClient
from ._api import LineConfig as LineConfig
from ._api import classify_line_error as classify_line_error
from ._channel import LINE as LINE
from ._channel import LineSettings as LineSettings
from ._webhook import LineGroupPolicy as LineGroupPolicy
from ._webhook import line_signature as line_signature
from ._webhook import parse_line as parse_line
from ._webhook import verify_line_signature as verify_line_signature

__all__ = [
    "LINE",
    "LineClient",
    "LineConfig",
    "LineGroupPolicy",
    "LineSettings",
    "classify_line_error",
    "line_signature",
    "parse_line",
    "verify_line_signature",
]
