"""Pins the public API of intercom and intercom.sandbox: a change here is a deliberate change of
the contract."""

from __future__ import annotations

import intercom
import intercom.sandbox


def test_all_is_sorted_and_exact() -> None:
    assert intercom.__all__ == sorted(intercom.__all__)
    assert intercom.__all__ == [
        "Admin",
        "ApiTarget",
        "App",
        "Attachment",
        "AttachmentFile",
        "CLIENT_ENDPOINTS",
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
        "IntercomTimeout",
        "IntercomTransportError",
        "IntercomUnavailable",
        "Me",
        "Notification",
        "NotificationInvalid",
        "PartAuthor",
        "PooledTransport",
        "REGION_BASE_URLS",
        "RateBudget",
        "RequestObserver",
        "RichBlock",
        "RichImage",
        "RichRun",
        "SharedRateBudget",
        "TEAMMATE_MESSAGE_TOPICS",
        "Tag",
        "WebhookError",
        "WebhookSignatureInvalid",
        "WindowClaim",
        "base_url_for_region",
        "html_to_rich",
        "html_to_text",
        "is_own_part",
        "is_teammate_message",
        "new_admin_parts",
        "parse_notification",
        "sign",
        "teammate_messages",
        "verify_signature",
    ]


def test_every_exported_name_exists() -> None:
    for name in intercom.__all__:
        assert getattr(intercom, name) is not None, name


def test_client_endpoints_are_the_ones_the_client_reports() -> None:
    import inspect
    import re

    from intercom import _client

    reported = set(re.findall(r'_send\(\s*"([a-z_]+)"', inspect.getsource(_client)))
    assert reported == set(intercom.CLIENT_ENDPOINTS)


def test_sandbox_all_is_sorted_and_exact() -> None:
    assert intercom.sandbox.__all__ == sorted(intercom.sandbox.__all__)
    assert intercom.sandbox.__all__ == [
        "IntercomSandbox",
        "SandboxAdmin",
        "SandboxApiError",
        "SandboxConfig",
        "SandboxState",
        "TeammateAction",
        "Teammates",
        "WebhookDelivery",
        "search_contacts",
    ]
    for name in intercom.sandbox.__all__:
        assert getattr(intercom.sandbox, name) is not None, name


def test_the_product_face_exports_no_sandbox_name() -> None:
    assert not set(intercom.__all__) & set(intercom.sandbox.__all__)
