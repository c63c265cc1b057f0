"""Pins the intercom package's public API: a change here is a deliberate change of the contract."""

from __future__ import annotations

import intercom


def test_all_is_sorted_and_exact() -> None:
    assert intercom.__all__ == sorted(intercom.__all__)
    assert intercom.__all__ == [
        "Admin",
        "ApiTarget",
        "App",
        "Attachment",
        "AttachmentFile",
        "CONVERSATION_TOPICS",
        "Contact",
        "ContactEvent",
        "ContactPage",
        "Conversation",
        "ConversationDeletedEvent",
        "ConversationEvent",
        "ConversationPart",
        "CreatedContact",
        "DataAttribute",
        "IgnoredEvent",
        "IntercomAuthError",
        "IntercomClient",
        "IntercomContactMerged",
        "IntercomError",
        "IntercomNotFound",
        "IntercomRateLimited",
        "IntercomRejected",
        "IntercomSandbox",
        "IntercomTimeout",
        "IntercomTransportError",
        "IntercomUnavailable",
        "Me",
        "Notification",
        "NotificationInvalid",
        "PartAuthor",
        "REGION_BASE_URLS",
        "RateBudget",
        "RequestObserver",
        "SandboxAdmin",
        "SandboxApiError",
        "SandboxConfig",
        "TeammateAction",
        "Teammates",
        "WebhookDelivery",
        "WebhookError",
        "WebhookSignatureInvalid",
        "base_url_for_region",
        "html_to_text",
        "is_own_part",
        "new_admin_parts",
        "parse_notification",
        "sign",
        "verify_signature",
    ]


def test_every_exported_name_exists() -> None:
    for name in intercom.__all__:
        assert getattr(intercom, name) is not None, name
