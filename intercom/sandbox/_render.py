"""JSON shapes of the sandbox: Intercom's objects (as in the OpenAPI description, checked by
the spec-validation tests), its ``error.list``, webhooks, and the inspection views."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._config import SandboxAdmin
from ._state import (
    StoredAttachment,
    StoredContact,
    StoredConversation,
    StoredPart,
)

__all__ = [
    "admin_json",
    "contact_json",
    "conversation_json",
    "conversation_view",
    "error_json",
    "message_json",
    "notification_json",
    "part_json",
    "part_view",
]

MAX_PARTS = 500  # Intercom returns at most the newest 500 parts


def error_json(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": message}],
    }


def contact_json(contact: StoredContact, workspace_id: str) -> dict[str, Any]:
    email = contact.email or ""
    return {
        "type": "contact",
        "id": contact.id,
        "workspace_id": workspace_id,
        "external_id": contact.external_id,
        "role": contact.role,
        "email": email,
        "email_domain": email.partition("@")[2],
        "phone": contact.phone,
        "name": contact.name,
        "owner_id": None,
        "has_hard_bounced": False,
        "marked_email_as_spam": False,
        "unsubscribed_from_emails": False,
        "created_at": int(contact.created_at),
        "updated_at": int(contact.updated_at),
        "signed_up_at": int(contact.created_at) if contact.role == "user" else None,
        "last_seen_at": None,
        "last_replied_at": None,
        "last_contacted_at": None,
        "custom_attributes": dict(contact.custom_attributes),
        "avatar": None,
        "tags": {"data": [], "url": f"/contacts/{contact.id}/tags", "total_count": 0},
        "notes": {"data": [], "url": f"/contacts/{contact.id}/notes", "total_count": 0},
        "companies": {"data": [], "url": f"/contacts/{contact.id}/companies", "total_count": 0},
        "location": {"type": "location", "country": None, "region": None, "city": None},
        "social_profiles": {"data": []},
    }


def _attachment_json(attachment: StoredAttachment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "upload",
        "name": attachment.name,
        "url": attachment.url,
        "content_type": attachment.content_type,
    }
    if attachment.size is not None:
        out["filesize"] = attachment.size
    return out


def _author_json(part: StoredPart, admins: dict[str, SandboxAdmin]) -> dict[str, Any]:
    author: dict[str, Any] = {"type": part.author_type, "id": part.author_id}
    author["name"] = part.author_name
    admin = admins.get(part.author_id) if part.author_type == "admin" else None
    if admin is not None:
        author["email"] = admin.email
    return author


def part_json(part: StoredPart, admins: dict[str, SandboxAdmin]) -> dict[str, Any]:
    created = int(part.created_at)
    out = {
        "type": "conversation_part",
        "id": part.id,
        "part_type": part.part_type,
        "body": part.body,
        "created_at": created,
        "updated_at": created,
        "notified_at": created,
        "author": _author_json(part, admins) | {"from_ai_agent": False, "is_ai_answer": False},
        "attachments": [_attachment_json(a) for a in part.attachments],
        "external_id": None,
        "redacted": False,
        "app_package_code": part.app_package_code,
    }
    # Intercom sends "assigned_to": null, but the spec's {$ref, nullable} cannot say so (OAS
    # 3.0 ignores siblings of $ref); leaving the key out is valid under both readings.
    if part.assigned_to:
        kind, _, assigned = part.assigned_to.rpartition(":")
        out["assigned_to"] = {"type": kind or "admin", "id": assigned}
    return out


def conversation_json(
    conversation: StoredConversation,
    contact: StoredContact | None,
    admins: dict[str, SandboxAdmin],
    *,
    version: str,
    parts: Iterable[StoredPart] | None = None,
) -> dict[str, Any]:
    """A ``conversation``; ``parts`` defaults to the newest 500. Unassigned is 0 from 2.16
    on and null before (Intercom changed it in 2.16)."""
    chosen = list(conversation.parts[-MAX_PARTS:] if parts is None else parts)
    unassigned: int | None = 0 if _at_least_2_16(version) else None
    assignee = int(conversation.admin_assignee_id) if conversation.admin_assignee_id else unassigned
    source = conversation.source
    return {
        "type": "conversation",
        "id": conversation.id,
        "created_at": int(conversation.created_at),
        "updated_at": int(conversation.updated_at),
        "waiting_since": None,
        "snoozed_until": conversation.snoozed_until,
        "open": conversation.state != "closed",  # a snoozed conversation is open
        "state": conversation.state,
        "read": conversation.read,
        "priority": "none" if _at_least_2_16(version) else "not_priority",
        "admin_assignee_id": assignee,
        "team_assignee_id": (
            int(conversation.team_assignee_id) if conversation.team_assignee_id else unassigned
        ),
        "tags": {"type": "tag.list", "tags": [dict(t) for t in conversation.tags]},
        "source": {
            "type": "conversation",
            "id": conversation.message_id,
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": source.body or "",
            "author": {
                "type": source.author_type,
                "id": source.author_id,
                "name": source.author_name,
                "email": contact.email if contact is not None and contact.email else None,
            },
            "attachments": [_attachment_json(a) for a in source.attachments],
            "url": None,
            "redacted": False,
        },
        "contacts": {
            "type": "contact.list",
            "contacts": [
                {
                    "type": "contact",
                    "id": conversation.contact_id,
                    "external_id": contact.external_id if contact is not None else None,
                }
            ],
        },
        "teammates": {
            "type": "admin.list",
            "teammates": [{"type": "admin", "id": i} for i in conversation.teammate_ids],
        },
        "custom_attributes": {},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": [part_json(p, admins) for p in chosen],
            "total_count": len(conversation.parts),
        },
    }


def _at_least_2_16(version: str) -> bool:
    major, _, minor = version.partition(".")
    try:
        return (int(major), int(minor or 0)) >= (2, 16)
    except ValueError:
        return True


def message_json(conversation: StoredConversation) -> dict[str, Any]:
    """What ``POST /conversations`` returns: the message, carrying ``conversation_id``."""
    return {
        "type": "user_message",
        "id": conversation.message_id,
        "created_at": int(conversation.created_at),
        "body": conversation.source.body or "",
        "message_type": "inapp",
        "conversation_id": conversation.id,
    }


def admin_json(admin: SandboxAdmin) -> dict[str, Any]:
    return {
        "type": "admin",
        "id": admin.id,
        "name": admin.name,
        "email": admin.email,
        "job_title": "Support",
        "away_mode_enabled": False,
        "away_mode_reassign": False,
        "away_status_reason_id": None,
        "has_inbox_seat": True,
        "team_ids": [],
        "avatar": None,
    }


def notification_json(
    notification_id: str, topic: str, app_id: str, item: dict[str, Any], now: float
) -> dict[str, Any]:
    """A ``notification_event`` envelope as Intercom delivers it."""
    return {
        "type": "notification_event",
        "app_id": app_id,
        "id": notification_id,
        "topic": topic,
        "created_at": int(now),
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": int(now),
        "self": None,
        "links": {},
        "data": {"type": "notification_event_data", "item": item},
    }


def part_view(part: StoredPart) -> dict[str, Any]:
    """Inspection view of a part (the conversation's source has ``part_type`` "source")."""
    return {
        "seq": part.seq,
        "conversation_id": part.conversation_id,
        "id": part.id,
        "part_type": part.part_type,
        "author_type": part.author_type,
        "author_id": part.author_id,
        "author_name": part.author_name,
        "body": part.body,
        "created_at": part.created_at,
        "attachments": [
            {"name": a.name, "url": a.url, "content_type": a.content_type, "size": a.size}
            for a in part.attachments
        ],
        "app_package_code": part.app_package_code,
        "assigned_to": part.assigned_to,
    }


def conversation_view(conversation: StoredConversation) -> dict[str, Any]:
    """Inspection view: state, assignee and every part in order, the source first."""
    return {
        "id": conversation.id,
        "contact_id": conversation.contact_id,
        "state": conversation.state,
        "admin_assignee_id": conversation.admin_assignee_id,
        "team_assignee_id": conversation.team_assignee_id,
        "read": conversation.read,
        "tags": [t["name"] for t in conversation.tags],
        "assignment_rules_runs": conversation.assignment_rules_runs,
        "deleted": conversation.deleted,
        "created_at": conversation.created_at,
        "parts": [part_view(conversation.source), *map(part_view, conversation.parts)],
    }
