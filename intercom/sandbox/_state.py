"""The sandbox's state: contacts with their search indexes, data attributes, conversations
with ordered parts, stored attachment files, and counters. Plain data and O(1) operations;
no I/O. Errors are raised as :class:`SandboxApiError` and rendered as Intercom's ``error.list``."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SandboxApiError",
    "SandboxState",
    "StoredAttachment",
    "StoredContact",
    "StoredConversation",
    "StoredPart",
]


class SandboxApiError(Exception):
    """A sandbox refusal in Intercom's terms: HTTP status, ``error.list`` code, message and
    extra headers. API routes render it as an ``error.list`` answer; in-process methods
    (teammates, merges, deletions) raise it, e.g. status 404 for an unknown conversation."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(message: str = "Resource Not Found") -> SandboxApiError:
    return SandboxApiError(404, "not_found", message)


def invalid(message: str) -> SandboxApiError:
    return SandboxApiError(400, "parameter_invalid", message)


@dataclass(slots=True)
class StoredContact:
    id: str
    seq: int
    role: str
    created_at: float
    updated_at: float
    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    merged_into: str | None = None


@dataclass(slots=True)
class StoredAttachment:
    id: str
    name: str
    content_type: str
    url: str
    size: int | None = None


@dataclass(slots=True)
class StoredPart:
    id: str
    seq: int  # position in the sandbox-wide part log (for "since" inspection)
    conversation_id: str
    part_type: str
    body: str | None
    created_at: float
    author_type: str
    author_id: str
    author_name: str | None
    attachments: list[StoredAttachment] = field(default_factory=list)
    app_package_code: str | None = None
    assigned_to: str | None = None  # an admin id, or "team:<id>"


@dataclass(slots=True)
class StoredConversation:
    id: str
    message_id: str
    contact_id: str
    created_at: float
    updated_at: float
    source: StoredPart
    state: str = "open"  # open, closed or snoozed
    snoozed_until: int | None = None
    admin_assignee_id: str | None = None
    team_assignee_id: str | None = None
    read: bool = False
    tags: list[dict[str, Any]] = field(default_factory=list)  # as applied, oldest first
    assignment_rules_runs: int = 0
    parts: list[StoredPart] = field(default_factory=list)
    deleted: bool = False
    teammate_ids: dict[str, None] = field(default_factory=dict)  # admins who wrote, in order


_SEARCHABLE = ("phone", "external_id", "email")


class SandboxState:
    """All of the sandbox workspace's data, with indexes for O(1) lookups."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.contacts: dict[str, StoredContact] = {}
        self.by_external_id: dict[str, str] = {}
        self.by_email: dict[str, str] = {}
        # (field, value) -> contact ids; a dict as an insertion-ordered set: O(1) removal.
        self.by_field: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
        self.data_attributes: dict[tuple[str, str], dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}  # id -> {"type": "tag", "id", "name"}
        self.conversations: dict[str, StoredConversation] = {}
        self.part_log: list[StoredPart] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # id -> (content type, bytes)

    def next_id(self) -> int:
        return next(self._ids)

    # --- contacts ---------------------------------------------------------------------------

    def _index_keys(self, contact: StoredContact) -> list[tuple[str, str]]:
        keys = [(f, v) for f in _SEARCHABLE if (v := getattr(contact, f)) is not None]
        keys.append(("role", contact.role))
        keys.extend(
            (f"custom_attributes.{k}", str(v)) for k, v in contact.custom_attributes.items()
        )
        return keys

    def _index(self, contact: StoredContact) -> None:
        for key in self._index_keys(contact):
            self.by_field[key][contact.id] = None
        if contact.external_id is not None:
            self.by_external_id.setdefault(contact.external_id, contact.id)
        if contact.email is not None:
            self.by_email.setdefault(contact.email.lower(), contact.id)

    def _unindex(self, contact: StoredContact) -> None:
        for key in self._index_keys(contact):
            ids = self.by_field.get(key)
            if ids is not None:
                ids.pop(contact.id, None)
        if (
            contact.external_id is not None
            and self.by_external_id.get(contact.external_id) == contact.id
        ):
            del self.by_external_id[contact.external_id]
        if contact.email is not None and self.by_email.get(contact.email.lower()) == contact.id:
            del self.by_email[contact.email.lower()]

    def check_attributes(self, attributes: dict[str, Any], *, strict: bool) -> None:
        if not strict:
            return
        for name in attributes:
            if ("contact", name) not in self.data_attributes:
                raise invalid(f"Custom attribute '{name}' does not exist")

    def conflict(self, external_id: str | None, email: str | None, own: str | None) -> None:
        """409 when another contact has this external id or email (never for phone)."""
        for existing in (
            self.by_external_id.get(external_id) if external_id is not None else None,
            self.by_email.get(email.lower()) if email is not None else None,
        ):
            if existing is not None and existing != own:
                raise SandboxApiError(
                    409,
                    "conflict",
                    f"A contact matching those details already exists with id={existing}",
                )

    def create_contact(
        self, fields: dict[str, Any], now: float, *, strict: bool, conflicts: bool = True
    ) -> StoredContact:
        role = fields.get("role") or "user"
        if role not in ("user", "lead"):
            raise invalid(f"role must be user or lead, not {role!r}")
        if not any(fields.get(k) for k in ("email", "external_id", "role")):
            raise invalid("One of email, external_id or role is required")
        attributes = dict(fields.get("custom_attributes") or {})
        self.check_attributes(attributes, strict=strict)
        if conflicts:
            self.conflict(fields.get("external_id"), fields.get("email"), None)
        seq = self.next_id()
        contact = StoredContact(
            id=f"6762f0dd{seq:016x}",
            seq=seq,
            role=role,
            created_at=now,
            updated_at=now,
            external_id=fields.get("external_id"),
            email=fields.get("email"),
            phone=fields.get("phone"),
            name=fields.get("name"),
            custom_attributes=attributes,
        )
        self.contacts[contact.id] = contact
        self._index(contact)
        return contact

    def live_contact(self, contact_id: str) -> StoredContact:
        """The contact, or 404 / 410 (merged, with the canonical Link header)."""
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise not_found("User Not Found")
        if contact.merged_into is not None:
            raise SandboxApiError(
                410,
                "contact_merged",
                "Contact has been merged",
                {"Link": f'</contacts/{contact.merged_into}>; rel="canonical"'},
            )
        return contact

    def update_contact(
        self, contact_id: str, fields: dict[str, Any], now: float, *, strict: bool
    ) -> StoredContact:
        contact = self.live_contact(contact_id)
        attributes = fields.get("custom_attributes") or {}
        self.check_attributes(attributes, strict=strict)
        self.conflict(fields.get("external_id"), fields.get("email"), contact.id)
        if "role" in fields and fields["role"] not in ("user", "lead"):
            raise invalid(f"role must be user or lead, not {fields['role']!r}")
        self._unindex(contact)
        for name in ("role", "external_id", "email", "phone", "name"):
            if name in fields:
                setattr(contact, name, fields[name])
        contact.custom_attributes.update(attributes)
        contact.updated_at = now
        self._index(contact)
        return contact

    def merge_contacts(self, from_id: str, into_id: str) -> StoredContact:
        source = self.live_contact(from_id)
        target = self.live_contact(into_id)
        self._unindex(source)
        source.merged_into = target.id
        return target

    # --- data attributes --------------------------------------------------------------------

    def create_data_attribute(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        name, model, data_type = body.get("name"), body.get("model"), body.get("data_type")
        if not isinstance(name, str) or not name or "." in name:
            raise invalid("Name is invalid")
        if model not in ("contact", "company"):
            raise invalid("Model must be contact or company")
        types = ("string", "integer", "float", "boolean", "datetime", "date", "options")
        if not isinstance(body.get("description"), str | None):
            raise invalid("Description must be a string")
        if data_type not in types:
            raise invalid(f"Data Type isn't an option: {data_type!r}")
        if (model, name) in self.data_attributes:
            raise invalid(
                f"You already have '{name}' in your {model} data. "
                "To save this as new data, use a different name."
            )
        attribute = {
            "type": "data_attribute",
            "id": self.next_id(),
            "model": model,
            "name": name,
            "full_name": f"custom_attributes.{name}",
            "label": name,
            "description": body.get("description") or "",
            "data_type": data_type,
            "api_writable": True,
            "ui_writable": True,
            "messenger_writable": bool(body.get("messenger_writable", False)),
            "custom": True,
            "archived": False,
            "created_at": int(now),
            "updated_at": int(now),
            "admin_id": "0",
        }
        self.data_attributes[(model, name)] = attribute
        return attribute

    # --- tags -------------------------------------------------------------------------------

    def create_tag(self, name: object) -> dict[str, str]:
        """``POST /tags`` without an id: the tag named ``name`` (names are case insensitive),
        created when there is none."""
        if not isinstance(name, str) or not name.strip():
            raise invalid("name is required")
        for tag in self.tags.values():
            if tag["name"].casefold() == name.casefold():
                return tag
        tag = {"type": "tag", "id": str(self.next_id()), "name": name}
        self.tags[tag["id"]] = tag
        return tag

    # --- conversations ----------------------------------------------------------------------

    def live_conversation(self, conversation_id: str) -> StoredConversation:
        conversation = self.conversations.get(conversation_id)
        if conversation is None or conversation.deleted:
            raise not_found()
        return conversation

    def new_part(
        self,
        conversation_id: str,
        now: float,
        *,
        part_type: str,
        body: str | None,
        author: tuple[str, str, str | None],
        attachments: list[StoredAttachment] | None = None,
        app_package_code: str | None = None,
        assigned_to: str | None = None,
    ) -> StoredPart:
        """A new part (not yet appended); ``author`` is (type, id, name)."""
        return StoredPart(
            id=str(self.next_id()),
            seq=-1,
            conversation_id=conversation_id,
            part_type=part_type,
            body=body,
            created_at=now,
            author_type=author[0],
            author_id=author[1],
            author_name=author[2],
            attachments=attachments or [],
            app_package_code=app_package_code,
            assigned_to=assigned_to,
        )

    def append(self, conversation: StoredConversation, part: StoredPart) -> StoredPart:
        part.seq = len(self.part_log)
        self.part_log.append(part)
        conversation.parts.append(part)
        conversation.updated_at = part.created_at
        if part.author_type == "admin":
            conversation.teammate_ids[part.author_id] = None
        return part

    def create_conversation(
        self, contact: StoredContact, body: str, attachments: list[StoredAttachment], now: float
    ) -> StoredConversation:
        conversation_id = str(self.next_id())
        source = self.new_part(
            conversation_id,
            now,
            part_type="source",
            body=body,
            author=(contact.role, contact.id, contact.name),
            attachments=attachments,
        )
        source.seq = len(self.part_log)
        self.part_log.append(source)
        conversation = StoredConversation(
            id=conversation_id,
            message_id=str(self.next_id()),
            contact_id=contact.id,
            created_at=now,
            updated_at=now,
            source=source,
        )
        self.conversations[conversation_id] = conversation
        return conversation

    def store_file(
        self, name: str, content_type: str, data: bytes, url_base: str
    ) -> StoredAttachment:
        file_id = f"f{self.next_id()}"
        self.files[file_id] = (content_type, data)
        return StoredAttachment(
            id=file_id,
            name=name,
            content_type=content_type,
            url=f"{url_base}/_sandbox/files/{file_id}",
            size=len(data),
        )
