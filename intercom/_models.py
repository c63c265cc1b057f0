"""Pydantic models of the Intercom objects the bridge reads.

They keep only the fields the bridge uses and ignore the rest, so Intercom adding fields never
breaks parsing. Version differences are normalised here: an unassigned conversation has
``admin_assignee_id`` 0 in 2.16 and null in 2.15; both become None.
"""

from __future__ import annotations

import html
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    "html_to_text",
]


class _Model(BaseModel):
    # Ids are strings in the spec, yet some of Intercom's own examples send numbers.
    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)


# html_to_text is fed bodies from signed webhooks, so it is total (it accepts any string) and
# linear: each pattern below is a character class, a literal or bounded, it is matched or searched
# forward from a position that only grows, and an unclosed construct runs to the end of the
# body instead of being retried from the next "<". (The stdlib's HTMLParser is neither: it raises
# on "<![foo[" and goes quadratic on unclosed tags in Python 3.11.)
_TAG_START = re.compile(r"</?[A-Za-z]")
_MARKUP = re.compile(r"<[A-Za-z/!?]")
_LETTER = re.compile(r"[A-Za-z]")
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_NOT_GT_OR_EQ = re.compile(r"[^>=]*")
_SPACE = re.compile(r"[\t\n\f\r ]*")
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")  # html's
_BLOCK_TAGS = frozenset({"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr"})


def _skip(pattern: re.Pattern[str], text: str, i: int) -> int:
    """The end of ``pattern``'s match at ``i`` (the patterns given always match)."""
    match = pattern.match(text, i)
    assert match is not None
    return match.end()


def _decode_charref(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref[0] != "#":
        return html.unescape(match.group(0))  # named: looked up, never re-scanned
    hexadecimal = ref[1] in "xX"
    digits = ref[2 if hexadecimal else 1 :].rstrip(";").lstrip("0") or "0"
    # More digits than any code point has: html.unescape would give U+FFFD, or raise
    # ValueError past Python's 4300-digit limit on int().
    if len(digits) > (6 if hexadecimal else 7):
        return "\ufffd"
    return html.unescape(f"&#{'x' if hexadecimal else ''}{digits};")


def _tag_end(body: str, i: int) -> int:
    """Just past the ``>`` that closes a tag whose attributes start at ``i`` (a quoted value
    may hold ``>``), or -1 when the tag is never closed."""
    while True:
        i = _skip(_NOT_GT_OR_EQ, body, i)
        if i == len(body):
            return -1
        if body[i] == ">":
            return i + 1
        i = _skip(_SPACE, body, i + 1)  # past "="
        if body[i : i + 1] in ("'", '"'):
            i = body.find(body[i], i + 1)
            if i < 0:
                return -1
            i += 1


def _markup_end(body: str, start: int) -> tuple[int, str]:
    """Where the markup at ``start`` (a ``<`` that _MARKUP matched) ends (``len(body)`` if it
    is never closed), and the text it stands for: a newline for ``<br>`` and after a block
    element, else nothing. Comments, ``<!…>`` (``<![CDATA[…]]>`` among them), ``<?…>`` and
    ``</…>`` not naming a tag are dropped up to their ``>``, as a browser drops them."""
    end = len(body)
    after = body[start + 1]
    if body.startswith("!--", start + 1):
        for abrupt in (">", "->"):  # "<!-->" and "<!--->" are empty comments
            if body.startswith(abrupt, start + 4):
                return start + 4 + len(abrupt), ""
        close = body.find("-->", start + 4)
        return (end if close < 0 else close + 3), ""
    closing = after == "/"
    if after in "!?" or (closing and _LETTER.match(body, start + 2) is None):
        close = body.find(">", start + 2)
        return (end if close < 0 else close + 1), ""
    name_start = start + 2 if closing else start + 1
    name_end = _skip(_TAG_NAME, body, name_start)
    tag_end = _tag_end(body, name_end)
    if tag_end < 0:
        return end, ""
    name = body[name_start:name_end].lower()
    self_closing = body[tag_end - 2] == "/"
    if name == "br" or (name in _BLOCK_TAGS and (closing or self_closing)):
        return tag_end, "\n"
    return tag_end, ""


def html_to_text(body: str | None) -> str:
    """Plain text of a part body: unchanged when it is already plain (webhooks since 2.15),
    tags stripped and entities decoded when it is HTML (the REST API's default).

    Total and linear in the body's length, whatever the body (see _markup_end)."""
    if not body:
        return ""
    first_tag = _TAG_START.search(body)
    if first_tag is None or body.rfind(">") < first_tag.start():
        return body
    chunks: list[str] = []
    i = 0
    while i < len(body):
        markup = _MARKUP.search(body, i)
        text_end = len(body) if markup is None else markup.start()
        chunks.append(_CHARREF.sub(_decode_charref, body[i:text_end]))
        if markup is None:
            break
        i, text = _markup_end(body, text_end)
        chunks.append(text)
    lines = [line.strip() for line in "".join(chunks).split("\n")]
    return "\n".join(line for line in lines if line)


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
    attachments: tuple[Attachment, ...] = ()
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
    contact_ids: tuple[str, ...] = ()
    source_author: PartAuthor | None = None
    source_body: str | None = None
    parts: tuple[ConversationPart, ...] = ()

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
