"""The one I/O edge of the Intercom client: build (pure) → send (the only await) → parse (pure).

The client never sleeps and never retries. Only the optional shared :class:`RateBudget` waits,
before a request, when the current rate-limit window is spent. Retry decisions (429, 5xx,
timeouts, 404 of a deleted conversation) belong to the caller's retry policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import trio

from . import _requests as rq
from . import _responses as rs
from ._budget import RateBudget
from ._errors import IntercomRejected, IntercomTimeout, IntercomTransportError
from ._models import (
    Admin,
    Contact,
    ContactPage,
    Conversation,
    CreatedContact,
    DataAttribute,
    Me,
    Tag,
)

__all__ = ["CLIENT_ENDPOINTS", "IntercomClient", "RequestObserver"]

#: Called after every request with (endpoint name, HTTP status or None, seconds taken).
RequestObserver = Callable[[str, int | None, float], None]

#: Every endpoint name the observer can report: a closed set, for pre-initialised labels.
CLIENT_ENDPOINTS = (
    "assign_conversation",
    "create_contact",
    "create_conversation",
    "create_data_attribute",
    "create_tag",
    "find_contact_by_external_id",
    "get_contact",
    "get_conversation",
    "list_admins",
    "list_data_attributes",
    "me",
    "reply_conversation",
    "run_assignment_rules",
    "search_contacts",
    "search_conversations",
    "tag_conversation",
    "update_contact",
    "update_conversation",
)

_UNSET: Any = object()


class IntercomClient:
    """Async Intercom REST client over a caller-owned ``httpx.AsyncClient``.

    The ``httpx.AsyncClient`` carries the base URL (``https://api.intercom.io``, a regional
    one from :func:`base_url_for_region`, or a sandbox URL, optionally with a path prefix),
    the transport and the timeouts. Every method sends exactly one request, except the
    ``find_contacts_*`` helpers (one per result page) and :meth:`create_contact` /
    :meth:`ensure_data_attribute` (a follow-up read to resolve a conflict).

    Cancellation: a cancelled call has either not been sent or its outcome is unknown; no
    state in the client is left inconsistent (the budget slot is returned).

    Args:
        http: the HTTP client; its ``base_url`` is the Intercom API base.
        access_token: the app's access token (sent as ``Authorization: Bearer``).
        version: the ``Intercom-Version`` header; always sent explicitly.
        budget: the process-wide rate budget, shared by every client of the process.
        wall_clock: UNIX time source for ``X-RateLimit-Reset`` conversion.
        observer: optional metrics hook, called after every request.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        access_token: str,
        version: str = "2.16",
        budget: RateBudget | None = None,
        wall_clock: Callable[[], float] = time.time,
        observer: RequestObserver | None = None,
    ) -> None:
        self._http = http
        self.target = rq.ApiTarget(http.base_url, access_token, version)
        self.budget = budget
        self._wall_clock = wall_clock
        self._observer = observer

    async def _send(self, endpoint: str, request: httpx.Request) -> httpx.Response:
        ticket = None if self.budget is None else await self.budget.acquire()
        started = trio.current_time()
        status: int | None = None
        try:
            try:
                response = await self._http.send(request)
            except httpx.TimeoutException as exc:
                raise IntercomTimeout(f"no answer from Intercom to {endpoint} in time") from exc
            except httpx.TransportError as exc:
                raise IntercomTransportError(f"{endpoint}: {type(exc).__name__}: {exc}") from exc
            status = response.status_code
            if self.budget is not None:
                self.budget.observe(response.headers, status, ticket)
            return response
        finally:
            if status is None and self.budget is not None:
                self.budget.release()
            if self._observer is not None:
                self._observer(endpoint, status, trio.current_time() - started)

    def _now(self) -> float:
        return self._wall_clock()

    # --- contacts ---------------------------------------------------------------------------

    async def search_contacts(
        self, query: Mapping[str, Any], *, per_page: int = 50, starting_after: str | None = None
    ) -> ContactPage:
        """One page of ``POST /contacts/search``. New contacts can take minutes to show up."""
        request = rq.build_search_contacts(
            self.target, query, per_page=per_page, starting_after=starting_after
        )
        response = await self._send("search_contacts", request)
        return rs.parse_contact_page(response, now=self._now())

    async def find_contacts(
        self, query: Mapping[str, Any], *, per_page: int = 50, max_pages: int = 100
    ) -> list[Contact]:
        """All contacts matching ``query``, following cursor pages (at most ``max_pages``)."""
        found: list[Contact] = []
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.search_contacts(query, per_page=per_page, starting_after=cursor)
            found.extend(page.contacts)
            cursor = page.next_cursor
            if cursor is None:
                break
        return found

    async def find_contacts_by_phone(self, e164: str) -> list[Contact]:
        """Contacts whose ``phone`` is exactly ``e164`` (store and search one format)."""
        return await self.find_contacts(rq.filter_equals("phone", e164))

    async def find_contacts_by_phones(self, phones: Sequence[str]) -> list[Contact]:
        """Contacts whose ``phone`` is exactly one of ``phones`` (at most 15: one ``OR``)."""
        if not 1 <= len(phones) <= 15:
            raise ValueError("search 1 to 15 phone forms at once")
        if len(phones) == 1:
            return await self.find_contacts_by_phone(phones[0])
        query = {"operator": "OR", "value": [rq.filter_equals("phone", p) for p in phones]}
        return await self.find_contacts(query)

    async def find_contacts_by_attribute(self, name: str, value: str) -> list[Contact]:
        """Contacts whose custom data attribute ``name`` equals ``value``."""
        return await self.find_contacts(rq.filter_equals(f"custom_attributes.{name}", value))

    async def find_contacts_by_external_id(self, external_id: str) -> list[Contact]:
        """Contacts (users or leads) with this ``external_id``, through search."""
        return await self.find_contacts(rq.filter_equals("external_id", external_id))

    async def get_contact_by_external_id(self, external_id: str) -> Contact:
        """``GET /contacts/find_by_external_id``: no search lag, but finds users only.

        Raises:
            IntercomNotFound: no user has it. IntercomContactMerged: merged (410).
        """
        request = rq.build_find_contact_by_external_id(self.target, external_id)
        response = await self._send("find_contact_by_external_id", request)
        return rs.parse_contact(response, now=self._now())

    async def create_contact(
        self,
        *,
        role: str = "lead",
        external_id: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        name: str | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
    ) -> CreatedContact:
        """Create a lead or user. When Intercom answers 409 ``conflict`` (same external id or
        email), fetch the contact it names and return it with ``existed=True``."""
        request = rq.build_create_contact(
            self.target,
            role=role,
            external_id=external_id,
            email=email,
            phone=phone,
            name=name,
            custom_attributes=custom_attributes,
        )
        response = await self._send("create_contact", request)
        try:
            return CreatedContact(
                contact=rs.parse_contact(response, now=self._now()), existed=False
            )
        except IntercomRejected as exc:
            existing_id = rs.conflict_contact_id(exc)
            if existing_id is None:
                raise
        return CreatedContact(contact=await self.get_contact(existing_id), existed=True)

    async def get_contact(self, contact_id: str) -> Contact:
        """``GET /contacts/{id}``. Raises IntercomNotFound, or IntercomContactMerged (410)."""
        response = await self._send("get_contact", rq.build_get_contact(self.target, contact_id))
        return rs.parse_contact(response, now=self._now())

    async def update_contact(
        self,
        contact_id: str,
        *,
        role: str = _UNSET,
        external_id: str = _UNSET,
        email: str = _UNSET,
        phone: str | None = _UNSET,
        name: str | None = _UNSET,
        custom_attributes: Mapping[str, Any] = _UNSET,
    ) -> Contact:
        """``PUT /contacts/{id}`` with only the fields given (custom attributes are merged)."""
        given = {
            "role": role,
            "external_id": external_id,
            "email": email,
            "phone": phone,
            "name": name,
            "custom_attributes": custom_attributes,
        }
        fields = {k: v for k, v in given.items() if v is not _UNSET}
        request = rq.build_update_contact(self.target, contact_id, fields)
        response = await self._send("update_contact", request)
        return rs.parse_contact(response, now=self._now())

    async def ensure_data_attribute(
        self, name: str, data_type: str = "string", *, model: str = "contact"
    ) -> DataAttribute:
        """Create the custom data attribute ``name`` unless it exists; return it either way.

        Intercom answers 400 ``parameter_invalid`` when the name is taken; that counts as
        success and the existing attribute is read from ``GET /data_attributes``.
        """
        request = rq.build_create_data_attribute(
            self.target, name, data_type=data_type, model=model
        )
        response = await self._send("create_data_attribute", request)
        try:
            return rs.parse_data_attribute(response, now=self._now())
        except IntercomRejected as exc:
            if exc.status != 400 or not any("already" in m for m in exc.messages):
                raise
            error = exc
        for attribute in await self.list_data_attributes(model=model):
            if attribute.name == name:
                return attribute
        raise error

    async def list_data_attributes(self, *, model: str = "contact") -> list[DataAttribute]:
        """``GET /data_attributes?model=…``."""
        request = rq.build_list_data_attributes(self.target, model=model)
        response = await self._send("list_data_attributes", request)
        return rs.parse_data_attributes(response, now=self._now())

    # --- conversations ----------------------------------------------------------------------

    async def create_conversation(
        self,
        contact_id: str,
        body: str,
        *,
        role: str = "user",
        attachment_urls: Sequence[str] = (),
    ) -> str:
        """Start a conversation from the contact; returns the conversation id.

        ``role`` is the contact's role (``user`` or ``lead``), sent as ``from.type``.
        There is no ``attachment_files`` on create: send files with :meth:`reply_as_contact`.
        Raises IntercomNotFound when the contact does not exist (as that role).
        """
        request = rq.build_create_conversation(
            self.target, contact_id, body, from_type=role, attachment_urls=attachment_urls
        )
        response = await self._send("create_conversation", request)
        return rs.parse_created_conversation_id(response, now=self._now())

    async def reply_as_contact(
        self,
        conversation_id: str,
        contact_id: str,
        body: str,
        *,
        attachment_files: Sequence[rq.AttachmentFile] = (),
        attachment_urls: Sequence[str] = (),
    ) -> Conversation:
        """Append the contact's message (reopens a closed conversation). The new part is
        ``result.last_part``. Raises IntercomNotFound for a deleted conversation."""
        request = rq.build_reply_as_contact(
            self.target,
            conversation_id,
            contact_id,
            body,
            attachment_urls=attachment_urls,
            attachment_files=attachment_files,
        )
        response = await self._send("reply_conversation", request)
        return rs.parse_conversation(response, now=self._now())

    async def reply_as_admin(
        self,
        conversation_id: str,
        admin_id: str,
        body: str,
        *,
        message_type: str = "comment",
        attachment_files: Sequence[rq.AttachmentFile] = (),
        attachment_urls: Sequence[str] = (),
    ) -> Conversation:
        """Reply as a teammate: ``comment`` (customer sees it) or ``note`` (internal)."""
        request = rq.build_reply_as_admin(
            self.target,
            conversation_id,
            admin_id,
            body,
            message_type=message_type,
            attachment_urls=attachment_urls,
            attachment_files=attachment_files,
        )
        response = await self._send("reply_conversation", request)
        return rs.parse_conversation(response, now=self._now())

    async def find_conversations_of_contact(
        self, contact_id: str, *, created_since: int
    ) -> list[Conversation]:
        """Conversations of the contact created at or after ``created_since`` (UNIX seconds),
        oldest first, through ``POST /conversations/search``: new ones can take a while to
        show up. Without parts."""
        query = {
            "operator": "AND",
            "value": [
                rq.filter_equals("contact_ids", contact_id),
                {"field": "created_at", "operator": ">", "value": created_since - 1},
            ],
        }
        request = rq.build_search_conversations(self.target, query, per_page=150)
        response = await self._send("search_conversations", request)
        found = rs.parse_conversation_list(response, now=self._now())
        return sorted(found, key=lambda c: (c.created_at or 0, c.id))

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """``GET /conversations/{id}``: state, assignee (None when unassigned), parts."""
        request = rq.build_get_conversation(self.target, conversation_id)
        response = await self._send("get_conversation", request)
        return rs.parse_conversation(response, now=self._now())

    async def assign_conversation(
        self, conversation_id: str, admin_id: str, assignee_id: str, *, to: str = "admin"
    ) -> Conversation:
        """Assign the conversation to the admin or team (``to``) ``assignee_id``, as
        ``admin_id`` (an ``assignment`` part). Not idempotent: each call adds a part."""
        request = rq.build_assign_conversation(
            self.target, conversation_id, admin_id, assignee_id, to=to
        )
        response = await self._send("assign_conversation", request)
        return rs.parse_conversation(response, now=self._now())

    async def run_assignment_rules(self, conversation_id: str) -> Conversation:
        """Let the workspace's assignment rules assign the conversation (deprecated by
        Intercom since 2.12; reopens and reassigns a closed conversation)."""
        request = rq.build_run_assignment_rules(self.target, conversation_id)
        response = await self._send("run_assignment_rules", request)
        return rs.parse_conversation(response, now=self._now())

    async def mark_conversation_read(self, conversation_id: str) -> Conversation:
        """``PUT /conversations/{id}`` with ``read: true`` (idempotent)."""
        request = rq.build_update_conversation(self.target, conversation_id, {"read": True})
        response = await self._send("update_conversation", request)
        return rs.parse_conversation(response, now=self._now())

    # --- tags -------------------------------------------------------------------------------

    async def ensure_tag(self, name: str) -> Tag:
        """The tag named ``name`` (case insensitive), created when there is none
        (idempotent: ``POST /tags`` finds an existing name)."""
        response = await self._send("create_tag", rq.build_create_tag(self.target, name))
        return rs.parse_tag(response, now=self._now())

    async def tag_conversation(self, conversation_id: str, tag_id: str, admin_id: str) -> Tag:
        """Apply tag ``tag_id`` to the conversation as ``admin_id`` (idempotent)."""
        request = rq.build_tag_conversation(self.target, conversation_id, tag_id, admin_id)
        response = await self._send("tag_conversation", request)
        return rs.parse_tag(response, now=self._now())

    # --- admins -----------------------------------------------------------------------------

    async def list_admins(self) -> list[Admin]:
        """``GET /admins``."""
        response = await self._send("list_admins", rq.build_list_admins(self.target))
        return rs.parse_admins(response, now=self._now())

    async def me(self) -> Me:
        """``GET /me``: the token's admin and its app (``app.id_code``, ``app.region``)."""
        response = await self._send("me", rq.build_me(self.target))
        return rs.parse_me(response, now=self._now())
