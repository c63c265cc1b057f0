"""Correctly signed provider webhooks, in the providers' real formats, one module per provider
family (``_meta.py``: WhatsApp, Messenger and Instagram; ``_twilio.py``, ``_telegram.py``,
``_viber.py``, ``_line.py``; what they share in ``_common.py``).

Used by the demo, the load test and the tests to play the provider's side: the output of each
builder is exactly what the provider would POST (body bytes plus headers), and it parses with
this package's own parsers. Attachments reference media by provider reference, for example an
id from :meth:`ProviderSandbox.add_media` (a Twilio ``MediaUrl`` from
:meth:`ProviderSandbox.twilio_media_url`).
"""

from ._common import SignedWebhook as SignedWebhook
from ._common import WebhookContact as WebhookContact
from ._common import WebhookMedia as WebhookMedia
from ._line import line_event as line_event
from ._line import line_events_webhook as line_events_webhook
from ._line import line_message_webhook as line_message_webhook
from ._meta import MetaInbound as MetaInbound
from ._meta import WhatsAppInbound as WhatsAppInbound
from ._meta import messenger_delivery_webhook as messenger_delivery_webhook
from ._meta import meta_webhook as meta_webhook
from ._meta import whatsapp_status_webhook as whatsapp_status_webhook
from ._meta import whatsapp_text_webhook as whatsapp_text_webhook
from ._meta import whatsapp_webhook as whatsapp_webhook
from ._telegram import telegram_message_webhook as telegram_message_webhook
from ._telegram import telegram_update_webhook as telegram_update_webhook
from ._twilio import twilio_message_webhook as twilio_message_webhook
from ._twilio import twilio_status_webhook as twilio_status_webhook
from ._viber import viber_event_webhook as viber_event_webhook
from ._viber import viber_message_webhook as viber_message_webhook
from ._viber import viber_signed as viber_signed

__all__ = [
    "MetaInbound",
    "SignedWebhook",
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
    "viber_signed",
    "whatsapp_status_webhook",
    "whatsapp_text_webhook",
    "whatsapp_webhook",
]
