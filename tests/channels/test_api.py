"""Pins the public API of channels: a change here is a deliberate change of the contract."""

from __future__ import annotations

import channels

EXPECTED = [
    "Channel",
    "ChannelError",
    "DeliveryStatus",
    "DownloadedMedia",
    "Ignored",
    "InboundMessage",
    "Location",
    "MediaFault",
    "MediaHostForbidden",
    "MediaKind",
    "MediaRef",
    "MediaTooLarge",
    "MediaUnavailable",
    "OutboundMedia",
    "OutsideCustomerWindow",
    "ParsedEvent",
    "PayloadInvalid",
    "PayloadTooLarge",
    "ProviderSandbox",
    "RecipientUnavailable",
    "SandboxCredentials",
    "SandboxFailure",
    "SendInDoubt",
    "SendRateLimited",
    "SendRejected",
    "SendTransient",
    "SentMessage",
    "SharedContact",
    "SignatureInvalid",
    "SignedWebhook",
    "StoredMedia",
    "TelegramClient",
    "TelegramConfig",
    "ThreadKey",
    "TwilioClient",
    "TwilioConfig",
    "WebhookContact",
    "WebhookMedia",
    "WebhookRejected",
    "WhatsAppClient",
    "WhatsAppConfig",
    "WhatsAppInbound",
    "WhatsAppTemplate",
    "check_json_strings",
    "classify_telegram_error",
    "classify_twilio_error",
    "classify_whatsapp_error",
    "parse_telegram",
    "parse_twilio",
    "parse_whatsapp",
    "render_inbound",
    "shorten",
    "telegram_bot_id",
    "telegram_message_webhook",
    "telegram_update_webhook",
    "twilio_form_params",
    "twilio_message_webhook",
    "twilio_signature",
    "twilio_status_webhook",
    "verify_telegram_secret",
    "verify_twilio_signature",
    "verify_whatsapp_handshake",
    "verify_whatsapp_signature",
    "whatsapp_status_webhook",
    "whatsapp_text_webhook",
    "whatsapp_webhook",
]


def test_all_is_sorted_and_exact() -> None:
    assert channels.__all__ == sorted(channels.__all__)
    assert channels.__all__ == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in channels.__all__:
        assert getattr(channels, name) is not None, name
