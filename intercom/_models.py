"""Pydantic models of the Intercom objects the bridge reads.

They keep only the fields the bridge uses and ignore the rest, so Intercom adding fields never
breaks parsing. Version differences are normalised here: an unassigned conversation has
``admin_assignee_id`` 0 in 2.16 and null in 2.15; both become None.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._html import html_to_text

__all__ = [
    "Admin",
    "App",
    "Attachment",
    "Contact",
    "ContactPage",
    "Conversation",
    "ConversationPart",
    "CreatedContact",
    "DataAttribute",
    "Me",
    "PartAuthor",
    "Tag",
    "html_to_text",
]


class _Model(BaseModel):
    # The lists of what Intercom sends (a webhook's parts, their attachments, a conversation's
    # contacts) are ``fail_fast``: validation ends at the first bad item, so a signed 1 MB
    # notification of 500,000 bad parts costs one error, not seconds and 800 MB.
    # Ids are strings in the spec, yet some of Intercom's own examples send numbers.
    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)


def _id_or_none(value: object) -> str | None:
    """Assignee ids: 0, "0", null and "" all mean unassigned."""
    if value is None or value in (0, "0", ""):
        return None
    return str(value)


class Contact(_Model):
    """An Intercom contact (a user or a lead)."""

    id: str
    role: str = "user"
    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    custom_attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: int | None = None
    updated_at: int | None = None

    @field_validator("email", "phone", "external_id", "name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class ContactPage(_Model):
    """One page of a contact search; ``next_cursor`` is None on the last page."""

    contacts: tuple[Contact, ...]
    total_count: int
    next_cursor: str | None

    @model_validator(mode="before")
    @classmethod
    def _from_contact_list(cls, data: object) -> object:
        if isinstance(data, dict) and "data" in data:
            pages = data.get("pages")
            nxt = pages.get("next") if isinstance(pages, dict) else None
            contacts = data["data"]
            total = data.get("total_count", len(contacts) if isinstance(contacts, list) else 0)
            return {
                "contacts": contacts,
                "total_count": total,
                "next_cursor": (nxt.get("starting_after") if isinstance(nxt, dict) else None)
                or None,
            }
        return data


class CreatedContact(_Model):
    """Result of creating a contact: ``existed`` is True when Intercom answered 409 and this
    is the contact that already matched (its id came from the conflict message)."""

    contact: Contact
    existed: bool


class DataAttribute(_Model):
    """A data attribute (``custom_attributes.<name>`` for custom ones)."""

    id: int | None = None
    name: str
    full_name: str | None = None
    model: str = "contact"
    data_type: str
    custom: bool = True
    archived: bool = False


class Tag(_Model):
    """A tag (of conversations, contacts or companies)."""

    id: str
    name: str


class Attachment(_Model):
    """An attachment of a conversation part (URLs from Intercom expire: fetch promptly)."""

    name: str = ""
    url: str
    content_type: str = "application/octet-stream"
    filesize: int | None = None


class PartAuthor(_Model):
    """Who wrote a part: ``type`` is admin, user, lead, bot or team."""

    type: str
    id: str | None = None
    name: str | None = None
    email: str | None = None


class ConversationPart(_Model):
    """One part of a conversation (comment, note, open, close, assignment, …)."""

    id: str
    part_type: str
    body: str | None = None
    created_at: int | None = None
    author: PartAuthor
    attachments: tuple[Attachment, ...] = Field(default=(), fail_fast=True)
    assigned_to_id: str | None = None
    app_package_code: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten_assigned_to(cls, data: object) -> object:
        if isinstance(data, dict) and "assigned_to" in data:
            data = dict(data)
            assigned = data.pop("assigned_to")
            if isinstance(assigned, dict):
                data["assigned_to_id"] = _id_or_none(assigned.get("id"))
        return data

    @property
    def text(self) -> str:
        """The body as plain text (HTML stripped when Intercom sent HTML)."""
        return html_to_text(self.body)


class Conversation(_Model):
    """A conversation with the parts Intercom returned (at most the newest 500).

    ``admin_assignee_id`` / ``team_assignee_id`` are None when unassigned, whatever the API
    version said (0 in 2.16, null in 2.15). ``contact_ids`` lists the attached contacts.
    """

    id: str
    state: str = "open"
    open: bool = True
    created_at: int | None = None
    updated_at: int | None = None
    admin_assignee_id: str | None = None
    team_assignee_id: str | None = None
    contact_ids: tuple[str, ...] = Field(default=(), fail_fast=True)
    source_author: PartAuthor | None = None
    source_body: str | None = None
    parts: tuple[ConversationPart, ...] = Field(default=(), fail_fast=True)

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        # Reshape only what has the documented shape; anything else is left for pydantic to
        # reject with a ValidationError (never a KeyError or TypeError from here).
        data = dict(data)
        contacts = data.pop("contacts", None)
        if isinstance(contacts, dict):
            listed = contacts.get("contacts") or []
            data["contact_ids"] = (
                [c.get("id") if isinstance(c, dict) else c for c in listed]
                if isinstance(listed, list)
                else listed
            )
        parts = data.pop("conversation_parts", None)
        if isinstance(parts, dict):
            data["parts"] = parts.get("conversation_parts") or []
        source = data.pop("source", None)
        if isinstance(source, dict) and isinstance(source.get("author"), dict):
            data["source_author"] = source["author"]
        if isinstance(source, dict) and isinstance(source.get("body"), str):
            data["source_body"] = source["body"]
        return data

    @field_validator("admin_assignee_id", "team_assignee_id", mode="before")
    @classmethod
    def _unassigned_is_none(cls, value: object) -> str | None:
        return _id_or_none(value)

    @property
    def source_text(self) -> str:
        """The first message's body as plain text."""
        return html_to_text(self.source_body)

    @property
    def last_part(self) -> ConversationPart | None:
        """The newest part (after a reply: the part the reply created)."""
        return self.parts[-1] if self.parts else None


class Admin(_Model):
    """A teammate (admin) of the workspace."""

    id: str
    name: str = ""
    email: str | None = None
    away_mode_enabled: bool = False


class App(_Model):
    """The workspace (``app``) the access token belongs to."""

    id_code: str
    name: str = ""
    region: str | None = None


class Me(Admin):
    """The admin that owns the access token, with its workspace (``GET /me``)."""

    app: App | None = None
