"""The Intercom API routes of the sandbox: one small handler per operation the bridge uses.

Handlers take the shared core, the parsed call and the path parameters, and return a JSON
object (200) or raise :class:`SandboxApiError`. They are synchronous: a request's effect on the
state is atomic with respect to every other request.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ._core import SandboxCore, check
from ._render import admin_json, contact_json, conversation_json, message_json
from ._search import search_contacts, search_conversations
from ._state import SandboxApiError, StoredAttachment, StoredContact, StoredPart, not_found

__all__ = ["Call", "Reply", "Route", "match_route"]


@dataclass(frozen=True, slots=True)
class Call:
    """One API request as the handlers see it."""

    version: str
    url_base: str  # scheme://host[:port] + root_path, for URLs the sandbox serves
    query: dict[str, str]
    body: Any


@dataclass(slots=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[SandboxCore, Call, dict[str, str]], Any]
#: A matched API route: (endpoint name, handler, path parameters).
Route = tuple[str, Handler, dict[str, str]]


def _object(call: Call) -> dict[str, Any]:
    check(isinstance(call.body, dict), "request body must be a JSON object")
    body: dict[str, Any] = call.body
    return body


def _contact(core: SandboxCore, contact: StoredContact) -> dict[str, Any]:
    return contact_json(contact, core.app_id)


def search(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    page, total, cursor, per_page = search_contacts(
        core.state, _object(call), now=core.now(), lag=core.config.search_lag_seconds
    )
    pages: dict[str, Any] = {
        "type": "pages",
        "page": 1,
        "per_page": per_page,
        "total_pages": -(-total // per_page),
    }
    if cursor is not None:
        pages["next"] = {"per_page": per_page, "starting_after": cursor}
    return {
        "type": "list",
        "data": [_contact(core, c) for c in page],
        "total_count": total,
        "pages": pages,
    }


def search_conversations_route(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    page, total, per_page = search_conversations(
        core.state, _object(call), now=core.now(), lag=core.config.search_lag_seconds
    )
    items = []
    for conversation in page:
        contact = core.state.contacts.get(conversation.contact_id)
        item = conversation_json(conversation, contact, core.admins, version=call.version, parts=[])
        del item["conversation_parts"]  # list items carry no parts
        items.append(item)
    return {
        "type": "conversation.list",
        "conversations": items,
        "total_count": total,
        "pages": {
            "type": "pages",
            "page": 1,
            "per_page": per_page,
            "total_pages": -(-total // per_page),
        },
    }


_STRING_FIELDS = ("role", "external_id", "email", "phone", "name")
_SCALARS = (str, int, float, bool, type(None))


def _contact_fields(body: dict[str, Any], *, keep_nulls: bool) -> dict[str, Any]:
    """The contact fields of a create/update body, type-checked (400 otherwise)."""
    fields: dict[str, Any] = {}
    for name in _STRING_FIELDS:
        if name in body and (body[name] is not None or keep_nulls):
            value = body[name]
            nullable = name in ("phone", "name")
            check(isinstance(value, str) or (nullable and value is None), f"{name} is invalid")
            fields[name] = value
    attributes = body.get("custom_attributes")
    if attributes is not None:
        check(isinstance(attributes, dict), "custom_attributes must be an object")
        for value in attributes.values():
            check(isinstance(value, _SCALARS), "custom attribute values must be scalars")
        fields["custom_attributes"] = attributes
    return fields


def create_contact(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    fields = _contact_fields(_object(call), keep_nulls=False)
    config = core.config
    contact = core.state.create_contact(
        fields, core.now(), strict=config.strict_custom_attributes, conflicts=config.conflicts
    )
    return _contact(core, contact)


def get_contact(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    return _contact(core, core.state.live_contact(p["id"]))


def update_contact(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    fields = _contact_fields(_object(call), keep_nulls=True)
    strict = core.config.strict_custom_attributes
    return _contact(core, core.state.update_contact(p["id"], fields, core.now(), strict=strict))


def find_by_external_id(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    contact_id = core.state.by_external_id.get(p["external_id"])
    contact = core.state.contacts.get(contact_id) if contact_id else None
    if contact is None or contact.role != "user":  # leads are not found this way
        raise not_found("User Not Found")
    return _contact(core, core.state.live_contact(contact.id))


def merge(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    body = _object(call)
    check(isinstance(body.get("from"), str) and isinstance(body.get("into"), str), "from/into")
    return _contact(core, core.merge_contacts(body["from"], body["into"]))


def create_data_attribute(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    return core.state.create_data_attribute(_object(call), core.now())


def list_data_attributes(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    model = call.query.get("model")
    if model not in (None, "contact", "company"):
        raise SandboxApiError(422, "parameter_invalid", f"model {model!r} is not supported")
    data = [a for (m, _name), a in core.state.data_attributes.items() if model in (None, m)]
    return {"type": "list", "data": data}


def _attachments(core: SandboxCore, call: Call, body: dict[str, Any]) -> list[StoredAttachment]:
    urls = body.get("attachment_urls") or []
    files = body.get("attachment_files") or []
    check(isinstance(urls, list) and isinstance(files, list), "attachments must be arrays")
    check(len(urls) <= 10 and len(files) <= 10, "at most 10 attachments")
    stored: list[StoredAttachment] = []
    for url in urls:
        check(isinstance(url, str) and urlsplit(url).scheme in ("http", "https"), "bad URL")
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "attachment"
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        attachment_id = f"u{core.state.next_id()}"
        stored.append(StoredAttachment(id=attachment_id, name=name, content_type=ctype, url=url))
    for item in files:
        check(isinstance(item, dict) and isinstance(item.get("data"), str), "file needs data")
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise SandboxApiError(
                400, "parameter_invalid", "attachment data is not base64"
            ) from None
        name = str(item.get("name") or "attachment")
        ctype = str(item.get("content_type") or "application/octet-stream")
        stored.append(core.state.store_file(name, ctype, data, call.url_base))
    return stored


def create_conversation(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    body = _object(call)
    sender = body.get("from")
    if not isinstance(sender, dict) or not isinstance(sender.get("id"), str):
        raise SandboxApiError(400, "parameter_invalid", "from.id is required")
    check(sender.get("type") in ("user", "lead", "contact"), "from.type is invalid")
    check(isinstance(body.get("body"), str), "body is required")
    check("attachment_files" not in body, "attachment_files is not supported on create")
    contact = core.state.live_contact(sender["id"])
    if sender["type"] != "contact" and sender["type"] != contact.role:
        raise not_found("User Not Found")  # inferred: Intercom looks the id up as that role
    attachments = _attachments(core, call, body)
    conversation = core.state.create_conversation(contact, body["body"], attachments, core.now())
    core.emit("conversation.user.created", conversation, [])
    core.customer_wrote(conversation, body["body"])
    return message_json(conversation)


def _conversation(
    core: SandboxCore, call: Call, conversation_id: str, parts: list[StoredPart] | None = None
) -> dict[str, Any]:
    conversation = core.state.live_conversation(conversation_id)
    contact = core.state.contacts.get(conversation.contact_id)
    return conversation_json(conversation, contact, core.admins, version=call.version, parts=parts)


def get_conversation(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    return _conversation(core, call, p["id"])


def delete_conversation(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    core.delete_conversation(p["id"])
    return {"id": p["id"], "object": "conversation", "deleted": True}


def reply(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    """Contact or admin reply. The answer carries the new part only (Intercom's examples do
    the same), which keeps replies O(1) however long the conversation grows."""
    body = _object(call)
    check(isinstance(body.get("body"), str), "body is required")
    if body.get("type") == "user":
        check(body.get("message_type") == "comment", "message_type must be comment")
        contact_id = body.get("intercom_user_id")
        if contact_id is None and body.get("user_id") is not None:
            contact_id = core.state.by_external_id.get(str(body["user_id"]))
        check(isinstance(contact_id, str), "intercom_user_id is required")
        core.state.live_conversation(p["id"])
        conversation, part = core.contact_reply(
            p["id"], str(contact_id), body["body"], _attachments(core, call, body)
        )
    elif body.get("type") == "admin":
        check(body.get("message_type") in ("comment", "note"), "message_type is invalid")
        core.state.live_conversation(p["id"])
        conversation, part, _topic = core.admin_action(
            p["id"],
            body.get("admin_id"),
            body["message_type"],
            body["body"],
            files=_attachments(core, call, body),
            via_api=True,
        )
    else:
        raise SandboxApiError(400, "parameter_invalid", "type must be user or admin")
    return _conversation(core, call, conversation.id, [part])


def manage(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    body = _object(call)
    kind = body.get("message_type")
    check(
        kind in ("close", "open", "snoozed", "assignment"),
        "message_type must be close/open/snoozed/assignment",
    )
    check(isinstance(body.get("body"), str | None), "body must be a string")
    until = body.get("snoozed_until")
    if kind == "snoozed":
        check(type(until) is int, "snoozed_until is required (a UNIX time)")
    assignee_type = body.get("type", "admin")
    if kind == "assignment":
        check(assignee_type in ("admin", "team"), "type must be admin or team")
    core.state.live_conversation(p["id"])
    assignee = body.get("assignee_id")
    conversation, part, _topic = core.admin_action(
        p["id"],
        body.get("admin_id"),
        str(kind),
        body.get("body"),
        via_api=True,
        assignee_id=None if assignee is None else str(assignee),
        assignee_type=str(assignee_type),
        snoozed_until=until if kind == "snoozed" else None,
    )
    return _conversation(core, call, conversation.id, [part])


def update_conversation(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    """``PUT /conversations/{id}``: ``read`` is kept; ``title`` and ``custom_attributes`` are
    checked and otherwise ignored (the bridge does not use them)."""
    body = _object(call)
    check(isinstance(body.get("read", False), bool), "read must be a boolean")
    check(isinstance(body.get("title", ""), str), "title must be a string")
    check(isinstance(body.get("custom_attributes", {}), dict), "custom_attributes is invalid")
    conversation = core.state.live_conversation(p["id"])
    if "read" in body:
        conversation.read = body["read"]
    return _conversation(core, call, conversation.id)


def run_assignment_rules(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    return _conversation(core, call, core.run_assignment_rules(p["id"]).id)


def create_tag(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    """``POST /tags`` with a name: the tag, created unless one has that name already."""
    body = _object(call)
    check("id" not in body, "renaming tags is not supported by the sandbox")
    check(set(body) <= {"name"}, "only tags by name are supported by the sandbox")
    return dict(core.state.create_tag(body.get("name")))


def tag_conversation(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    """``POST /conversations/{id}/tags``: apply a tag (once: applying it again is a no-op
    answered with the tag as first applied)."""
    body = _object(call)
    check(isinstance(body.get("id"), str), "id is required")
    conversation = core.state.live_conversation(p["id"])
    admin = core.admin(body.get("admin_id"))
    tag = core.state.tags.get(body["id"])
    if tag is None:
        raise not_found("Tag not found")
    for applied in conversation.tags:
        if applied["id"] == tag["id"]:
            return dict(applied)
    applied = tag | {"applied_at": int(core.now()), "applied_by": {"type": "admin", "id": admin.id}}
    conversation.tags.append(applied)
    return dict(applied)


def list_admins(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    return {"type": "admin.list", "admins": [admin_json(a) for a in core.admins.values()]}


def get_admin(core: SandboxCore, call: Call, p: dict[str, str]) -> dict[str, Any]:
    admin = core.admins.get(p["id"])
    if admin is None:
        raise SandboxApiError(404, "admin_not_found", "Admin not found")
    return admin_json(admin)


def me(core: SandboxCore, call: Call, _: dict[str, str]) -> dict[str, Any]:
    admin = next(iter(core.admins.values()))
    body = admin_json(admin)
    del body["avatar"], body["away_status_reason_id"]
    return body | {
        "type": "admin",
        "avatar": {"type": "avatar", "image_url": None},
        "email_verified": True,
        "app": {
            "type": "app",
            "id_code": core.app_id,
            "name": "Threadline Sandbox",
            "region": "US",
            "timezone": "Etc/UTC",
            "created_at": 1700000000,
            "identity_verification": False,
        },
    }


_ID = r"(?P<id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = [
    (m, re.compile(f"^{path}$"), name, handler)
    for m, path, name, handler in [
        ("POST", "/contacts/search", "search_contacts", search),
        ("POST", "/contacts/merge", "merge_contacts", merge),
        ("GET", "/contacts/find_by_external_id/(?P<external_id>.+)", "find_by_external_id",
         find_by_external_id),
        ("POST", "/contacts", "create_contact", create_contact),
        ("GET", f"/contacts/{_ID}", "get_contact", get_contact),
        ("PUT", f"/contacts/{_ID}", "update_contact", update_contact),
        ("GET", "/data_attributes", "list_data_attributes", list_data_attributes),
        ("POST", "/data_attributes", "create_data_attribute", create_data_attribute),
        ("POST", "/conversations/search", "search_conversations", search_conversations_route),
        ("POST", "/conversations", "create_conversation", create_conversation),
        ("GET", f"/conversations/{_ID}", "get_conversation", get_conversation),
        ("DELETE", f"/conversations/{_ID}", "delete_conversation", delete_conversation),
        ("POST", f"/conversations/{_ID}/reply", "reply_conversation", reply),
        ("POST", f"/conversations/{_ID}/parts", "manage_conversation", manage),
        ("PUT", f"/conversations/{_ID}", "update_conversation", update_conversation),
        ("POST", f"/conversations/{_ID}/tags", "tag_conversation", tag_conversation),
        ("POST", f"/conversations/{_ID}/run_assignment_rules", "run_assignment_rules",
         run_assignment_rules),
        ("POST", "/tags", "create_tag", create_tag),
        ("GET", "/admins", "list_admins", list_admins),
        ("GET", f"/admins/{_ID}", "get_admin", get_admin),
        ("GET", "/me", "me", me),
    ]
]  # fmt: skip


def match_route(method: str, path: str) -> Route | None:
    """(endpoint name, handler, path parameters) for an API request, or None."""
    for route_method, pattern, name, handler in ROUTES:
        if route_method == method:
            found = pattern.match(path)
            if found is not None:
                return name, handler, found.groupdict()
    return None
