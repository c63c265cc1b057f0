"""Viber bots (REST bot API): callbacks (``_webhook.py``), ``send_message`` and the client
(``_api.py``) and its registry entry (``_channel.py``)."""

from ._api import ViberClient as ViberClient
from ._api import ViberConfig as ViberConfig
from ._api import classify_viber_error as classify_viber_error
from ._channel import VIBER as VIBER
from ._channel import VIBER_DEFAULT_ACCOUNT as VIBER_DEFAULT_ACCOUNT
from ._channel import ViberSettings as ViberSettings
from ._webhook import parse_viber as parse_viber
from ._webhook import verify_viber_signature as verify_viber_signature

__all__ = [
    "VIBER",
    "VIBER_DEFAULT_ACCOUNT",
    "ViberClient",
    "ViberConfig",
    "ViberSettings",
    "classify_viber_error",
    "parse_viber",
    "verify_viber_signature",
]
