"""Intercom webhooks, sans-io: verify ``X-Hub-Signature``, parse ``notification_event``s,
pick the parts the bridge forwards, and recognise the bridge's own parts (no echoes).

Signature: ``X-Hub-Signature: sha1=<hex>``, the HMAC-SHA1 of the raw request body keyed with
the app's client secret, compared in constant time before the body is parsed.

A signed body is still untrusted input: the parser (pydantic-core's, in Rust) refuses nesting
deeper than its limit of 200 and lone surrogate escapes, and every string in it — keys
included — must be UTF-8-encodable, free of NUL and at most :data:`MAX_STRING_CHARS` long, the
same gate as ``channels/_decode.py`` (this package imports no other, so it keeps its own copy).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import from_json

from ._errors import NotificationInvalid, WebhookSignatureInvalid
from ._models import Contact, Conversation, ConversationPart

__all__ = [
    "CONVERSATION_TOPICS",
    "MAX_STRING_CHARS",
    "TEAMMATE_MESSAGE_TOPICS",
    "ContactEvent",
    "ConversationDeletedEvent",
    "ConversationEvent",
    "IgnoredEvent",
    "Notification",
    "is_own_part",
    "is_teammate_message",
    "new_admin_parts",
    "parse_notification",
    "sign",
    "teammate_messages",
    "verify_signature",
]

#: Conversation topics parsed into :class:`ConversationEvent` (the item is a conversation).
CONVERSATION_TOPICS = frozenset(
    {
        "conversation.admin.replied",
        "conversation.admin.noted",
        "conversation.admin.assigned",
        "conversation.admin.open.assigned",
        "conversation.admin.closed",
        "conversation.admin.opened",
        "conversation.admin.snoozed",
        "conversation.admin.unsnoozed",
        "conversation.operator.replied",
        "conversation.user.created",
        "conversation.user.replied",
    }
)
_DELETED_TOPIC = "conversation.deleted"

#: Topics whose admin parts may hold a message for the customer: a reply, and a close, an
#: assignment, a snooze or an opening written with a message (Intercom's manage endpoint and
#: the inbox both take an optional ``body`` with each).
TEAMMATE_MESSAGE_TOPICS = frozenset(
    {
        "conversation.admin.replied",
        "conversation.admin.closed",
        "conversation.admin.assigned",
        "conversation.admin.open.assigned",
        "conversation.admin.opened",
        "conversation.admin.snoozed",
    }
)

MAX_STRING_CHARS: Final = 65_536
"""Longest string accepted anywhere in a notification (a part's HTML body is a few KiB)."""


def sign(body: bytes, client_secret: str) -> str:
    """The ``X-Hub-Signature`` value Intercom sends for ``body``: ``sha1=<hex>``."""
    digest = hmac.new(client_secret.encode(), body, hashlib.sha1).hexdigest()
    return f"sha1={digest}"


def verify_signature(body: bytes, header: str | None, client_secret: str) -> None:
    """Check ``X-Hub-Signature`` against the raw body; constant-time comparison.

    Raises:
        WebhookSignatureInvalid: header missing, not ``sha1=<40 hex>``, or not matching.
    """
    if not header:
        raise WebhookSignatureInvalid("missing X-Hub-Signature header")
    scheme, sep, given = header.strip().partition("=")
    if sep != "=" or scheme.lower() != "sha1" or len(given) != 40:
        raise WebhookSignatureInvalid("malformed X-Hub-Signature header (want sha1=<hex>)")
    expected = hmac.new(client_secret.encode(), body, hashlib.sha1).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise WebhookSignatureInvalid("X-Hub-Signature does not match the body")


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    topic: str
    app_id: str | None = None
    created_at: int | None = None


class ConversationEvent(_Event):
    """A conversation topic (replied, noted, assigned, closed, opened, …) with the
    conversation as it was at event time; its ``parts`` hold the new part(s)."""

    kind: Literal["conversation"] = "conversation"
    conversation: Conversation


class ConversationDeletedEvent(_Event):
    """``conversation.deleted``: only the id is sent."""

    kind: Literal["conversation_deleted"] = "conversation_deleted"
    conversation_id: str


class ContactEvent(_Event):
    """A contact topic with the contact item when readable. For ``contact.merged`` the item
    is the surviving contact: Intercom does not say which contact was merged into it."""

    kind: Literal["contact"] = "contact"
    contact_id: str | None
    contact: Contact | None


class IgnoredEvent(_Event):
    """A topic the bridge does not handle: acknowledge it and do nothing."""

    kind: Literal["ignored"] = "ignored"
    reason: str


Notification = ConversationEvent | ConversationDeletedEvent | ContactEvent | IgnoredEvent


def _string_fault(text: str) -> str | None:
    """Why ``text`` may not pass, or None when it may."""
    if len(text) > MAX_STRING_CHARS:
        return f"a string is over {MAX_STRING_CHARS} characters"
    if "\x00" in text:
        return "a string holds a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a string holds a lone surrogate (not UTF-8)"
    return None


def _check_strings(value: object) -> None:
    """Walk the parsed values once, without recursion, refusing the first bad string."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            fault = _string_fault(item)
            if fault is not None:
                raise NotificationInvalid(fault)
        elif isinstance(item, dict):
            pending.extend(item)  # the keys
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _envelope(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        data = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise NotificationInvalid(f"body is not valid JSON: {exc}") from exc
    # The parser refuses lone surrogates and raw control characters, so a NUL can only arrive
    # as the escape \u0000, and no string is longer than the body: otherwise skip the walk.
    if len(body) > MAX_STRING_CHARS or b"\\u0000" in body:
        _check_strings(data)
    if not isinstance(data, dict):
        raise NotificationInvalid("body is not a JSON object")
    if data.get("type") != "notification_event":
        raise NotificationInvalid(f"type is {data.get('type')!r}, not 'notification_event'")
    for field in ("id", "topic"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise NotificationInvalid(f"missing or non-string {field!r}")
    inner = data.get("data")
    item = inner.get("item") if isinstance(inner, dict) else None
    if not isinstance(item, dict):
        raise NotificationInvalid("missing data.item object")
    return data, item


def parse_notification(body: bytes) -> Notification:
    """Parse a verified webhook body into one of the :data:`Notification` variants.

    Unknown topics become :class:`IgnoredEvent`; only an unreadable envelope (not JSON, too
    deep, or a string that is not UTF-8, holds a NUL or is over :data:`MAX_STRING_CHARS`), or a
    known topic whose item is not what the topic promises, is an error.

    Raises:
        NotificationInvalid: with a one-line reason.
    """
    data, item = _envelope(body)
    topic: str = data["topic"]
    base = {
        "id": data["id"],
        "topic": topic,
        "app_id": data.get("app_id") if isinstance(data.get("app_id"), str) else None,
        "created_at": data.get("created_at") if isinstance(data.get("created_at"), int) else None,
    }
    try:
        if topic in CONVERSATION_TOPICS:
            if item.get("type") != "conversation":
                raise NotificationInvalid(f"{topic} item is not a conversation")
            return ConversationEvent(**base, conversation=Conversation.model_validate(item))
        if topic == _DELETED_TOPIC:
            if item.get("id") is None:
                raise NotificationInvalid(f"{topic} item has no id")
            return ConversationDeletedEvent(**base, conversation_id=str(item["id"]))
        if topic.startswith("contact.") or (topic.startswith("user.") and "merge" in topic):
            contact = Contact.model_validate(item) if "id" in item else None
            contact_id = str(item["id"]) if "id" in item else None
            return ContactEvent(**base, contact_id=contact_id, contact=contact)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise NotificationInvalid(f"{topic} item invalid at {where}: {first['msg']}") from exc
    return IgnoredEvent(**base, reason=f"topic {topic!r} is not handled")


#: Part types a teammate writes that carry a message for the customer or the team.
_MESSAGE_PART_TYPES = frozenset({"comment", "note", "quick_reply", "assign_and_reopen"})


def new_admin_parts(event: ConversationEvent) -> list[ConversationPart]:
    """The parts written by admins in this event, oldest first (comments and notes).

    For ``conversation.admin.replied`` these are the reply (usually exactly one part).
    """
    return [
        part
        for part in event.conversation.parts
        if part.author.type == "admin" and part.part_type in _MESSAGE_PART_TYPES
    ]


#: Part types of a teammate's state change that carry a message when they have a body.
_ACTION_PART_TYPES = frozenset({"close", "open", "assignment", "assign_and_reopen", "snoozed"})


def is_teammate_message(part: ConversationPart) -> bool:
    """Whether ``part`` is a teammate's message to the customer: a comment, or a close,
    (re)assignment, snooze or opening written with a message. Such a part with an empty body
    and no attachment (a plain close) is not; notes never are."""
    if part.author.type != "admin":
        return False
    if part.part_type == "comment":
        return True
    if part.part_type not in _ACTION_PART_TYPES:
        return False
    return bool(part.text.strip()) or bool(part.attachments)


def teammate_messages(event: ConversationEvent) -> list[ConversationPart]:
    """The teammate messages to the customer in this event (see :func:`is_teammate_message`),
    oldest first; none unless the topic is one of :data:`TEAMMATE_MESSAGE_TOPICS`."""
    if event.topic not in TEAMMATE_MESSAGE_TOPICS:
        return []
    return [part for part in event.conversation.parts if is_teammate_message(part)]


def is_own_part(
    part: ConversationPart,
    *,
    own_app_package_code: str | None = None,
    own_admin_id: str | None = None,
) -> bool:
    """Whether the bridge itself wrote ``part`` (so it must not be sent back out).

    Intercom sets ``app_package_code`` only on parts created through the API; a part a
    teammate typed in the inbox has none and is never "own". With ``own_app_package_code``
    the code must match; otherwise, with ``own_admin_id``, an API part by that admin is own;
    with neither, every API-created part is treated as own (the safe default against loops).

    The bridge can learn its own code from any part it creates: ``reply_as_admin(...)``
    returns the conversation whose ``last_part.app_package_code`` is it. Remembering the ids
    of parts it created (also in that result) is a second, independent guard.
    """
    if part.app_package_code is None:
        return False
    if own_app_package_code is not None:
        return part.app_package_code == own_app_package_code
    if own_admin_id is not None:
        return part.author.type == "admin" and part.author.id == own_admin_id
    return True
