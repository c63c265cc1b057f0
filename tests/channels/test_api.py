"""Pins the public API of channels and channels.sandbox: a change here is a deliberate change of
the contract."""

from __future__ import annotations

import channels
import channels.sandbox
import channels.telegram
import channels.twilio
import channels.viber
import channels.whatsapp

EXPECTED = [
    "AccountMismatch",
    "CHANNELS",
    "Channel",
    "ChannelClient",
    "ChannelError",
    "ChannelSpec",
    "DeliveryStatus",
    "DownloadedMedia",
    "Ignored",
    "InboundMessage",
    "InlineImage",
    "InstagramSettings",
    "LineClient",
    "LineConfig",
    "LineSettings",
    "Location",
    "MediaHostForbidden",
    "MediaKind",
    "MediaRef",
    "MediaTooLarge",
    "MediaUnavailable",
    "MessengerSettings",
    "MetaMessagingClient",
    "MetaMessagingConfig",
    "OutboundMedia",
    "OutgoingText",
    "OutsideCustomerWindow",
    "ParsedEvent",
    "PayloadInvalid",
    "PayloadTooLarge",
    "REPLY_TOKEN",
    "RecipientUnavailable",
    "ReplyToken",
    "SEND_ID",
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
    "TelegramSettings",
    "TextBlock",
    "TextFormat",
    "TextLimit",
    "TextRun",
    "ThreadKey",
    "TwilioClient",
    "TwilioConfig",
    "TwilioSettings",
    "ViberClient",
    "ViberConfig",
    "ViberSettings",
    "Webhook",
    "WebhookRejected",
    "WhatsAppClient",
    "WhatsAppConfig",
    "WhatsAppSettings",
    "WhatsAppTemplate",
    "channel_spec",
    "check_json_strings",
    "classify_instagram_error",
    "classify_line_error",
    "classify_messenger_error",
    "classify_telegram_error",
    "classify_twilio_error",
    "classify_viber_error",
    "classify_whatsapp_error",
    "compose",
    "encode_text",
    "line_signature",
    "meta_message_body",
    "parse_instagram",
    "parse_line",
    "parse_messenger",
    "parse_telegram",
    "parse_twilio",
    "parse_viber",
    "parse_whatsapp",
    "provider_length",
    "render_blocks",
    "render_inbound",
    "replying_with",
    "require_json",
    "sending_as",
    "shorten",
    "split_text",
    "telegram_bot_id",
    "telegram_entities",
    "text_format",
    "text_limit",
    "twilio_form_params",
    "twilio_signature",
    "utf16_length",
    "verify_line_signature",
    "verify_meta_handshake",
    "verify_meta_signature",
    "verify_telegram_secret",
    "verify_twilio_signature",
    "verify_viber_signature",
    "verify_whatsapp_handshake",
    "verify_whatsapp_signature",
    "webhook_path",
]


def test_all_is_sorted_and_exact() -> None:
    assert channels.__all__ == sorted(channels.__all__)
    assert channels.__all__ == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in channels.__all__:
        assert getattr(channels, name) is not None, name


SANDBOX = [
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


def test_sandbox_all_is_sorted_and_exact() -> None:
    assert channels.sandbox.__all__ == sorted(channels.sandbox.__all__)
    assert channels.sandbox.__all__ == SANDBOX


def test_every_sandbox_name_exists() -> None:
    for name in channels.sandbox.__all__:
        assert getattr(channels.sandbox, name) is not None, name


def test_the_product_face_exports_no_fake() -> None:
    assert not set(channels.__all__) & set(SANDBOX)


PROVIDER_FACES = {
    channels.whatsapp: [
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
    ],
    channels.twilio: [
        "TWILIO",
        "TwilioClient",
        "TwilioConfig",
        "TwilioSettings",
        "classify_twilio_error",
        "message_form",
        "parse_twilio",
        "twilio_form_params",
        "twilio_opt_out",
        "twilio_signature",
        "verify_twilio_signature",
    ],
    channels.telegram: [
        "GroupPolicy",
        "TELEGRAM",
        "TelegramClient",
        "TelegramConfig",
        "TelegramSettings",
        "classify_telegram_error",
        "parse_telegram",
        "telegram_bot_id",
        "telegram_entities",
        "verify_telegram_secret",
    ],
    channels.viber: [
        "VIBER",
        "VIBER_DEFAULT_ACCOUNT",
        "ViberClient",
        "ViberConfig",
        "ViberSettings",
        "classify_viber_error",
        "parse_viber",
        "verify_viber_signature",
    ],
}


def test_provider_faces_are_sorted_and_exact() -> None:
    for face, expected in PROVIDER_FACES.items():
        assert face.__all__ == sorted(face.__all__), face.__name__
        assert face.__all__ == expected, face.__name__
        for name in face.__all__:
            assert getattr(face, name) is not None, name


def test_the_registry_has_every_channel_once() -> None:
    assert list(channels.CHANNELS) == list(channels.Channel)
    for channel, spec in channels.CHANNELS.items():
        assert spec.channel is channel
        assert spec.route == f"/webhooks/{channel.value}"
