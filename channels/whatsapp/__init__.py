"""WhatsApp Cloud API: webhooks (``_webhook.py``), Graph API calls and client (``_api.py``),
``*bold*``/``_italic_`` markup (``_markup.py``) and its registry entry (``_channel.py``)."""

from ._api import WhatsAppClient as WhatsAppClient
from ._api import WhatsAppConfig as WhatsAppConfig
from ._api import WhatsAppTemplate as WhatsAppTemplate
from ._api import classify_whatsapp_error as classify_whatsapp_error
from ._api import declared_digest as declared_digest
from ._api import media_message as media_message
from ._api import text_message as text_message
from ._channel import WHATSAPP as WHATSAPP
from ._channel import WhatsAppSettings as WhatsAppSettings
from ._markup import MARKERS as MARKERS
from ._markup import whatsapp_markup as whatsapp_markup
from ._webhook import parse_whatsapp as parse_whatsapp
from ._webhook import verify_whatsapp_handshake as verify_whatsapp_handshake
from ._webhook import verify_whatsapp_signature as verify_whatsapp_signature

__all__ = [
    "MARKERS",
    "WHATSAPP",
    "WhatsAppClient",
    "WhatsAppConfig",
    "WhatsAppSettings",
    "WhatsAppTemplate",
    "classify_whatsapp_error",
    "declared_digest",
    "media_message",
    "parse_whatsapp",
    "text_message",
    "verify_whatsapp_handshake",
    "verify_whatsapp_signature",
    "whatsapp_markup",
]
