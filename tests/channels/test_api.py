"""Pins the public API of channels and channels.sandbox: a change here is a deliberate change of
the contract."""

from __future__ import annotations

import channels
import channels.sandbox

EXPECTED = [
    "Channel",
    "ChannelError",
    "DeliveryStatus",
    "DownloadedMedia",
    "Ignored",
    "InboundMessage",
    "InlineImage",
    "Location",
    "MediaHostForbidden",
    "MediaKind",
    "MediaRef",
    "MediaTooLarge",
    "MediaUnavailable",
    "OutboundMedia",
    "OutgoingText",
    "OutsideCustomerWindow",
    "ParsedEvent",
    "PayloadInvalid",
    "PayloadTooLarge",
    "RecipientUnavailable",
    "SendInDoubt",
    "SendRateLimited",
    "SendRejected",
    "SendTransient",
    "SharedContact",
    "SignatureInvalid",
    "Span",
    "StyledText",
    "TelegramClient",
    "TelegramConfig",
    "TextBlock",
    "TextFormat",
    "TextLimit",
    "TextRun",
    "ThreadKey",
    "TwilioClient",
    "TwilioConfig",
    "WebhookRejected",
    "WhatsAppClient",
    "WhatsAppConfig",
    "WhatsAppTemplate",
    "check_json_strings",
    "classify_telegram_error",
    "classify_twilio_error",
    "classify_whatsapp_error",
    "compose",
    "encode_text",
    "parse_telegram",
    "parse_twilio",
    "parse_whatsapp",
    "provider_length",
    "render_blocks",
    "render_inbound",
    "shorten",
    "split_text",
    "telegram_bot_id",
    "telegram_entities",
    "text_format",
    "text_limit",
    "twilio_form_params",
    "twilio_signature",
    "utf16_length",
    "verify_telegram_secret",
    "verify_twilio_signature",
    "verify_whatsapp_handshake",
    "verify_whatsapp_signature",
]


def test_all_is_sorted_and_exact() -> None:
    assert channels.__all__ == sorted(channels.__all__)
    assert channels.__all__ == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in channels.__all__:
        assert getattr(channels, name) is not None, name


SANDBOX = [
    "MediaFault",
    "ProviderSandbox",
    "SandboxCredentials",
    "SandboxFailure",
    "SentMessage",
    "SignedWebhook",
    "StoredMedia",
    "WebhookContact",
    "WebhookMedia",
    "WhatsAppInbound",
    "telegram_message_webhook",
    "telegram_update_webhook",
    "twilio_message_webhook",
    "twilio_status_webhook",
    "whatsapp_status_webhook",
    "whatsapp_text_webhook",
    "whatsapp_webhook",
]


def test_sandbox_all_is_sorted_and_exact() -> None:
    assert channels.sandbox.__all__ == sorted(channels.sandbox.__all__)
    assert channels.sandbox.__all__ == SANDBOX


def test_every_sandbox_name_exists() -> None:
    for name in channels.sandbox.__all__:
        assert getattr(channels.sandbox, name) is not None, name


def test_the_product_face_exports_no_fake() -> None:
    assert not set(channels.__all__) & set(SANDBOX)
