"""The Intercom side of Threadline: API client and webhooks.

Layers: ``_requests`` builds requests and ``_responses`` classifies and parses answers, both
pure; :class:`IntercomClient` is the one awaiting edge (build, send, parse), throttled by a
process-wide :class:`RateBudget`. ``_webhooks`` verifies and parses ``notification_event``
bodies, also pure.

Client::

    budget = RateBudget(limit=1666)           # one per process, shared by every caller
    async with httpx.AsyncClient(base_url=base_url_for_region("EU"), timeout=10) as http:
        client = IntercomClient(http, access_token=token, budget=budget)
    # many concurrent callers: transport=PooledTransport(connections=64) keeps httpcore's
    # pool bookkeeping small (pools of 8 instead of one pool of 64)
        created = await client.create_contact(role="lead", phone="+14155550123")
        conversation_id = await client.create_conversation(created.contact.id, "Hi")

The client never retries or sleeps: errors are classified into the tree rooted at
:class:`IntercomError` and the caller's retry policy decides (429 carries ``retry_after``).

Webhooks::

    verify_signature(raw_body, headers.get("X-Hub-Signature"), client_secret)
    event = parse_notification(raw_body)    # ConversationEvent | ... | IgnoredEvent
    if isinstance(event, ConversationEvent):
        for part in teammate_messages(event):   # replies; close/assign/snooze/open with a body
            if not is_own_part(part, own_app_package_code=code):
                ...                                  # send part.text and part.attachments

The Intercom sandbox (a fake workspace for tests, the demo and the load test) lives in the
subpackage :mod:`intercom.sandbox`, which no product module imports.

Its product modules import none of the other Threadline packages, and never the sandbox; the
sandbox uses ``runtime``'s ASGI toolkit (import-linter contracts).
"""

from ._budget import RateBudget as RateBudget
from ._budget import SharedRateBudget as SharedRateBudget
from ._budget import WindowClaim as WindowClaim
from ._client import CLIENT_ENDPOINTS as CLIENT_ENDPOINTS
from ._client import IntercomClient as IntercomClient
from ._client import RequestObserver as RequestObserver
from ._errors import IntercomAuthError as IntercomAuthError
from ._errors import IntercomContactMerged as IntercomContactMerged
from ._errors import IntercomError as IntercomError
from ._errors import IntercomNotFound as IntercomNotFound
from ._errors import IntercomRateLimited as IntercomRateLimited
from ._errors import IntercomRejected as IntercomRejected
from ._errors import IntercomTimeout as IntercomTimeout
from ._errors import IntercomTransportError as IntercomTransportError
from ._errors import IntercomUnavailable as IntercomUnavailable
from ._errors import NotificationInvalid as NotificationInvalid
from ._errors import WebhookError as WebhookError
from ._errors import WebhookSignatureInvalid as WebhookSignatureInvalid
from ._html import RichBlock as RichBlock
from ._html import RichImage as RichImage
from ._html import RichRun as RichRun
from ._html import html_to_rich as html_to_rich
from ._models import Admin as Admin
from ._models import App as App
from ._models import Attachment as Attachment
from ._models import Contact as Contact
from ._models import ContactPage as ContactPage
from ._models import Conversation as Conversation
from ._models import ConversationPart as ConversationPart
from ._models import CreatedContact as CreatedContact
from ._models import DataAttribute as DataAttribute
from ._models import Me as Me
from ._models import PartAuthor as PartAuthor
from ._models import Tag as Tag
from ._models import html_to_text as html_to_text
from ._requests import REGION_BASE_URLS as REGION_BASE_URLS
from ._requests import ApiTarget as ApiTarget
from ._requests import AttachmentFile as AttachmentFile
from ._requests import base_url_for_region as base_url_for_region
from ._transport import PooledTransport as PooledTransport
from ._webhooks import CONVERSATION_TOPICS as CONVERSATION_TOPICS
from ._webhooks import TEAMMATE_MESSAGE_TOPICS as TEAMMATE_MESSAGE_TOPICS
from ._webhooks import ContactEvent as ContactEvent
from ._webhooks import ConversationDeletedEvent as ConversationDeletedEvent
from ._webhooks import ConversationEvent as ConversationEvent
from ._webhooks import IgnoredEvent as IgnoredEvent
from ._webhooks import Notification as Notification
from ._webhooks import is_own_part as is_own_part
from ._webhooks import is_teammate_message as is_teammate_message
from ._webhooks import new_admin_parts as new_admin_parts
from ._webhooks import parse_notification as parse_notification
from ._webhooks import sign as sign
from ._webhooks import teammate_messages as teammate_messages
from ._webhooks import verify_signature as verify_signature

__all__ = [
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
