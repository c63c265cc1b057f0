"""Pure request building: every Intercom call the bridge makes, as an ``httpx.Request``.

Nothing here sends anything. Each builder takes an :class:`ApiTarget` (base URL, token,
version) and returns a request with method, URL, ``Authorization: Bearer``,
``Intercom-Version``, ``Accept`` and, when there is a body, a compact JSON body.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import quote

import httpx

__all__ = [
    "REGION_BASE_URLS",
    "ApiTarget",
    "AttachmentFile",
    "base_url_for_region",
    "build_create_contact",
    "build_create_conversation",
    "build_assign_conversation",
    "build_create_data_attribute",
    "build_create_tag",
    "build_find_contact_by_external_id",
    "build_get_contact",
    "build_get_conversation",
    "build_list_admins",
    "build_list_data_attributes",
    "build_me",
    "build_reply_as_admin",
    "build_reply_as_contact",
    "build_run_assignment_rules",
    "build_search_contacts",
    "build_tag_conversation",
    "build_update_contact",
    "build_update_conversation",
    "filter_equals",
]

REGION_BASE_URLS: Mapping[str, str] = {
    "US": "https://api.intercom.io",
    "EU": "https://api.eu.intercom.io",
    "AU": "https://api.au.intercom.io",
}

#: An attachment to upload inline: (file name, content type, raw bytes).
AttachmentFile: TypeAlias = tuple[str, str, bytes]


def base_url_for_region(region: str) -> str:
    """The API base URL for a workspace region (``US``, ``EU`` or ``AU``, any case).

    Raises:
        ValueError: for an unknown region.
    """
    try:
        return REGION_BASE_URLS[region.upper()]
    except KeyError:
        raise ValueError(f"unknown Intercom region {region!r}; expected US, EU or AU") from None


@dataclass(frozen=True, slots=True)
class ApiTarget:
    """Where and as whom requests go: base URL (may carry a path prefix), token, version."""

    base_url: httpx.URL
    access_token: str
    version: str = "2.16"

    def url(self, path: str, params: Mapping[str, str] | None = None) -> httpx.URL:
        # Same joining rule as httpx's base_url: the base path always ends with "/".
        raw = self.base_url.raw_path.split(b"?", 1)[0]
        if not raw.endswith(b"/"):
            raw += b"/"
        url = self.base_url.copy_with(raw_path=raw + path.lstrip("/").encode("ascii"))
        return url.copy_merge_params(params) if params else url

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        headers = {
            "Authorization": f"Bearer {self.access_token}",
            "Intercom-Version": self.version,
            "Accept": "application/json",
        }
        content: bytes | None = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
        return httpx.Request(method, self.url(path, params), headers=headers, content=content)


def _segment(value: str) -> str:
    return quote(value, safe="")


def filter_equals(field: str, value: str) -> dict[str, Any]:
    """A single ``=`` search filter (``phone``, ``external_id``, ``custom_attributes.<name>``)."""
    return {"field": field, "operator": "=", "value": value}


def build_search_contacts(
    target: ApiTarget,
    query: Mapping[str, Any],
    *,
    per_page: int = 50,
    starting_after: str | None = None,
) -> httpx.Request:
    """``POST /contacts/search`` with a filter (single or AND/OR) and cursor paging."""
    pagination: dict[str, Any] = {"per_page": per_page}
    if starting_after is not None:
        pagination["starting_after"] = starting_after
    body = {
        "query": dict(query),
        "pagination": pagination,
        "sort": {"field": "created_at", "order": "ascending"},
    }
    return target.request("POST", "/contacts/search", json_body=body)


def build_search_conversations(
    target: ApiTarget, query: Mapping[str, Any], *, per_page: int = 20
) -> httpx.Request:
    """``POST /conversations/search`` with a filter (single or AND/OR): the first page."""
    body = {"query": dict(query), "pagination": {"per_page": per_page}}
    return target.request("POST", "/conversations/search", json_body=body)


def build_create_contact(
    target: ApiTarget,
    *,
    role: str = "lead",
    external_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    custom_attributes: Mapping[str, Any] | None = None,
) -> httpx.Request:
    """``POST /contacts`` for a lead or a user; absent fields are left out of the body."""
    if role not in ("lead", "user"):
        raise ValueError(f"role must be 'lead' or 'user', not {role!r}")
    body: dict[str, Any] = {"role": role}
    optional = {"external_id": external_id, "email": email, "phone": phone, "name": name}
    body.update({k: v for k, v in optional.items() if v is not None})
    if custom_attributes:
        body["custom_attributes"] = dict(custom_attributes)
    return target.request("POST", "/contacts", json_body=body)


def build_get_contact(target: ApiTarget, contact_id: str) -> httpx.Request:
    """``GET /contacts/{id}``."""
    return target.request("GET", f"/contacts/{_segment(contact_id)}")


def build_update_contact(
    target: ApiTarget, contact_id: str, fields: Mapping[str, Any]
) -> httpx.Request:
    """``PUT /contacts/{id}`` with the given fields (e.g. phone, name, custom_attributes)."""
    return target.request("PUT", f"/contacts/{_segment(contact_id)}", json_body=dict(fields))


def build_find_contact_by_external_id(target: ApiTarget, external_id: str) -> httpx.Request:
    """``GET /contacts/find_by_external_id/{external_id}`` (finds users only, not leads)."""
    return target.request("GET", f"/contacts/find_by_external_id/{_segment(external_id)}")


def build_create_data_attribute(
    target: ApiTarget,
    name: str,
    *,
    data_type: str = "string",
    model: str = "contact",
    description: str | None = None,
) -> httpx.Request:
    """``POST /data_attributes`` for a custom attribute of contacts (or companies)."""
    body: dict[str, Any] = {"name": name, "model": model, "data_type": data_type}
    if description is not None:
        body["description"] = description
    return target.request("POST", "/data_attributes", json_body=body)


def build_list_data_attributes(target: ApiTarget, *, model: str = "contact") -> httpx.Request:
    """``GET /data_attributes?model=…``."""
    return target.request("GET", "/data_attributes", params={"model": model})


def build_create_conversation(
    target: ApiTarget,
    contact_id: str,
    body: str,
    *,
    from_type: str = "user",
    attachment_urls: Sequence[str] = (),
) -> httpx.Request:
    """``POST /conversations`` from a contact. There is no ``attachment_files`` on create:
    send files as a follow-up contact reply."""
    payload: dict[str, Any] = {"from": {"type": from_type, "id": contact_id}, "body": body}
    if attachment_urls:
        payload["attachment_urls"] = list(attachment_urls)
    return target.request("POST", "/conversations", json_body=payload)


def _files(files: Iterable[AttachmentFile]) -> list[dict[str, str]]:
    return [
        {"content_type": ctype, "data": base64.b64encode(data).decode("ascii"), "name": name}
        for name, ctype, data in files
    ]


def _reply(
    target: ApiTarget,
    conversation_id: str,
    payload: dict[str, Any],
    attachment_urls: Sequence[str],
    attachment_files: Sequence[AttachmentFile],
) -> httpx.Request:
    """``POST /conversations/{id}/reply`` with ``payload`` and the attachments, if any."""
    if attachment_urls:
        payload["attachment_urls"] = list(attachment_urls)
    if attachment_files:
        payload["attachment_files"] = _files(attachment_files)
    return target.request(
        "POST", f"/conversations/{_segment(conversation_id)}/reply", json_body=payload
    )


def build_reply_as_contact(
    target: ApiTarget,
    conversation_id: str,
    contact_id: str,
    body: str,
    *,
    attachment_urls: Sequence[str] = (),
    attachment_files: Sequence[AttachmentFile] = (),
) -> httpx.Request:
    """``POST /conversations/{id}/reply`` as the contact (``intercom_user_id``)."""
    payload: dict[str, Any] = {
        "type": "user",
        "message_type": "comment",
        "intercom_user_id": contact_id,
        "body": body,
    }
    return _reply(target, conversation_id, payload, attachment_urls, attachment_files)


def build_reply_as_admin(
    target: ApiTarget,
    conversation_id: str,
    admin_id: str,
    body: str,
    *,
    message_type: str = "comment",
    attachment_urls: Sequence[str] = (),
    attachment_files: Sequence[AttachmentFile] = (),
) -> httpx.Request:
    """``POST /conversations/{id}/reply`` as an admin: a ``comment`` or an internal ``note``."""
    if message_type not in ("comment", "note"):
        raise ValueError(f"message_type must be 'comment' or 'note', not {message_type!r}")
    payload: dict[str, Any] = {
        "type": "admin",
        "message_type": message_type,
        "admin_id": admin_id,
        "body": body,
    }
    return _reply(target, conversation_id, payload, attachment_urls, attachment_files)


def build_get_conversation(target: ApiTarget, conversation_id: str) -> httpx.Request:
    """``GET /conversations/{id}``."""
    return target.request("GET", f"/conversations/{_segment(conversation_id)}")


def build_assign_conversation(
    target: ApiTarget, conversation_id: str, admin_id: str, assignee_id: str, *, to: str = "admin"
) -> httpx.Request:
    """``POST /conversations/{id}/parts`` with ``message_type: assignment``: ``admin_id``
    assigns the conversation to the admin or team (``to``) ``assignee_id``."""
    if to not in ("admin", "team"):
        raise ValueError(f"to must be 'admin' or 'team', not {to!r}")
    payload = {
        "message_type": "assignment",
        "type": to,
        "admin_id": admin_id,
        "assignee_id": assignee_id,
    }
    return target.request(
        "POST", f"/conversations/{_segment(conversation_id)}/parts", json_body=payload
    )


def build_run_assignment_rules(target: ApiTarget, conversation_id: str) -> httpx.Request:
    """``POST /conversations/{id}/run_assignment_rules`` (no body; deprecated since 2.12)."""
    return target.request(
        "POST", f"/conversations/{_segment(conversation_id)}/run_assignment_rules"
    )


def build_update_conversation(
    target: ApiTarget, conversation_id: str, fields: Mapping[str, Any]
) -> httpx.Request:
    """``PUT /conversations/{id}`` with the given fields (``read``, ``title``, …)."""
    return target.request(
        "PUT", f"/conversations/{_segment(conversation_id)}", json_body=dict(fields)
    )


def build_create_tag(target: ApiTarget, name: str) -> httpx.Request:
    """``POST /tags`` with a name: the tag of that name, created when there is none."""
    return target.request("POST", "/tags", json_body={"name": name})


def build_tag_conversation(
    target: ApiTarget, conversation_id: str, tag_id: str, admin_id: str
) -> httpx.Request:
    """``POST /conversations/{id}/tags``: ``admin_id`` applies the tag ``tag_id``."""
    return target.request(
        "POST",
        f"/conversations/{_segment(conversation_id)}/tags",
        json_body={"id": tag_id, "admin_id": admin_id},
    )


def build_list_admins(target: ApiTarget) -> httpx.Request:
    """``GET /admins``."""
    return target.request("GET", "/admins")


def build_me(target: ApiTarget) -> httpx.Request:
    """``GET /me``: the admin owning the token, with its app (workspace id, region)."""
    return target.request("GET", "/me")
