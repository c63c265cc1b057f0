"""Fake providers and signed webhooks for the demo, the load test and the tests (like
``trio.testing``: channels' product modules never import this package).

- :class:`ProviderSandbox` is one ASGI app serving fake WhatsApp Graph, Twilio Messaging,
  Telegram Bot, Messenger and Instagram Send, Viber REST bot and LINE Messaging APIs: it
  checks credentials (:class:`SandboxCredentials`) and the real providers' limits, records
  accepted sends (:class:`SentMessage`), stores media (:class:`StoredMedia`) and fails as
  scripted (:class:`SandboxFailure`, :class:`MediaFault`).
- The ``*_webhook`` builders produce correctly signed provider webhooks
  (:class:`SignedWebhook`), in the providers' real formats.

Imports ``channels`` (its public face, and two private helpers) and ``runtime`` (the ASGI
toolkit).
"""

from ._app import ProviderSandbox as ProviderSandbox
from ._builders import MetaInbound as MetaInbound
from ._builders import SignedWebhook as SignedWebhook
from ._builders import WebhookContact as WebhookContact
from ._builders import WebhookMedia as WebhookMedia
from ._builders import WhatsAppInbound as WhatsAppInbound
from ._builders import line_event as line_event
from ._builders import line_events_webhook as line_events_webhook
from ._builders import line_message_webhook as line_message_webhook
from ._builders import messenger_delivery_webhook as messenger_delivery_webhook
from ._builders import meta_webhook as meta_webhook
from ._builders import telegram_message_webhook as telegram_message_webhook
from ._builders import telegram_update_webhook as telegram_update_webhook
from ._builders import twilio_message_webhook as twilio_message_webhook
from ._builders import twilio_status_webhook as twilio_status_webhook
from ._builders import viber_event_webhook as viber_event_webhook
from ._builders import viber_message_webhook as viber_message_webhook
from ._builders import whatsapp_status_webhook as whatsapp_status_webhook
from ._builders import whatsapp_text_webhook as whatsapp_text_webhook
from ._builders import whatsapp_webhook as whatsapp_webhook
from ._state import MediaFault as MediaFault
from ._state import SandboxCredentials as SandboxCredentials
from ._state import SandboxFailure as SandboxFailure
from ._state import SentMessage as SentMessage
from ._state import StoredMedia as StoredMedia

__all__ = [
    "MediaFault",
    "MetaInbound",
    "ProviderSandbox",
    "SandboxCredentials",
    "SandboxFailure",
    "SentMessage",
    "SignedWebhook",
    "StoredMedia",
    "WebhookContact",
    "WebhookMedia",
    "WhatsAppInbound",
    "line_event",
    "line_events_webhook",
    "line_message_webhook",
    "messenger_delivery_webhook",
    "meta_webhook",
    "telegram_message_webhook",
    "telegram_update_webhook",
    "twilio_message_webhook",
    "twilio_status_webhook",
    "viber_event_webhook",
    "viber_message_webhook",
    "whatsapp_status_webhook",
    "whatsapp_text_webhook",
    "whatsapp_webhook",
]
