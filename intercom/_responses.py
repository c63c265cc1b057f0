"""Pure response handling: classify errors into the exception tree, parse bodies into models.

Every function takes an ``httpx.Response`` that has been read and either returns a model or
raises an :class:`~intercom.IntercomError` subclass carrying the status, Intercom's
``request_id`` and the ``error.list`` codes. Nothing here awaits, sleeps or retries.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ._errors import (
    IntercomAuthError,
    IntercomContactMerged,
    IntercomError,
    IntercomNotFound,
    IntercomRateLimited,
    IntercomRejected,
    IntercomUnavailable,
)
from ._models import Admin, Contact, ContactPage, Conversation, DataAttribute, Me, Tag

__all__ = [
    "conflict_contact_id",
    "parse_admins",
    "parse_contact",
    "parse_contact_page",
    "parse_conversation",
    "parse_created_conversation_id",
    "parse_data_attribute",
    "parse_data_attributes",
    "parse_me",
    "parse_tag",
    "raise_for_error",
    "retry_after_seconds",
]

M = TypeVar("M", bound=BaseModel)

_CONFLICT_ID = re.compile(r"\bid=([0-9A-Za-z]+)")


def _error_body(response: httpx.Response) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """(codes, messages, request_id) from an ``error.list`` body; empty when unreadable."""
    request_id = response.headers.get("x-request-id")
    try:
        body = json.loads(response.content)
    except ValueError:
        return (), (), request_id
    if not isinstance(body, dict):
        return (), (), request_id
    if isinstance(body.get("request_id"), str):
        request_id = body["request_id"]
    codes: list[str] = []
    messages: list[str] = []
    for entry in body.get("errors") or ():
        if isinstance(entry, dict):
            codes.append(str(entry.get("code", "")))
            messages.append(str(entry.get("message") or ""))
    return tuple(codes), tuple(messages), request_id


def retry_after_seconds(headers: httpx.Headers, now: float) -> float:
    """Seconds until Intercom will accept requests again, from ``Retry-After`` (seconds) or
    else ``X-RateLimit-Reset`` (UNIX time) against the wall-clock ``now``; 0 if neither."""
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return 0.0


def _canonical_id(response: httpx.Response) -> str | None:
    link = response.links.get("canonical")
    if link is None or not link.get("url"):
        return None
    return link["url"].rstrip("/").rsplit("/", 1)[-1] or None


def raise_for_error(response: httpx.Response, *, now: float) -> None:
    """Raise the classified error for a non-2xx response; return for a 2xx.

    Args:
        response: a read response.
        now: the wall-clock UNIX time, to turn ``X-RateLimit-Reset`` into a delay.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    codes, messages, request_id = _error_body(response)
    summary = "; ".join(f"{c}: {m}" if m else c for c, m in zip(codes, messages, strict=True))
    text = f"Intercom answered {status} to {response.request.method} {response.request.url.path}"
    if summary:
        text = f"{text} ({summary})"
    if status == 429:
        raise IntercomRateLimited(
            text,
            retry_after=retry_after_seconds(response.headers, now),
            codes=codes,
            request_id=request_id,
        )
    if status >= 500:
        raise IntercomUnavailable(text, status=status, request_id=request_id)
    kwargs: dict[str, Any] = {
        "codes": codes,
        "messages": messages,
        "status": status,
        "request_id": request_id,
    }
    if status in (401, 403):
        raise IntercomAuthError(text, **kwargs)
    if status == 404:
        raise IntercomNotFound(text, **kwargs)
    if status == 410:
        raise IntercomContactMerged(text, canonical_id=_canonical_id(response), **kwargs)
    if 400 <= status < 500:
        raise IntercomRejected(text, **kwargs)
    raise IntercomError(text, status=status, request_id=request_id)


def conflict_contact_id(error: IntercomRejected) -> str | None:
    """The existing contact's id from a 409 ``conflict`` ("… already exists with id=…")."""
    if error.status != 409 or "conflict" not in error.codes:
        return None
    for message in error.messages:
        match = _CONFLICT_ID.search(message)
        if match is not None:
            return match.group(1)
    return None


def _parse(response: httpx.Response, model: type[M], *, now: float) -> M:
    raise_for_error(response, now=now)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise IntercomUnavailable(
            f"unreadable {model.__name__} in Intercom's {response.status_code} answer to "
            f"{response.request.method} {response.request.url.path}",
            status=response.status_code,
        ) from exc


def parse_contact(response: httpx.Response, *, now: float) -> Contact:
    """A ``contact`` body (create, get, update, find_by_external_id)."""
    return _parse(response, Contact, now=now)


def parse_contact_page(response: httpx.Response, *, now: float) -> ContactPage:
    """A ``contact_list`` body from a search."""
    return _parse(response, ContactPage, now=now)


def parse_conversation(response: httpx.Response, *, now: float) -> Conversation:
    """A ``conversation`` body (get, reply, manage)."""
    return _parse(response, Conversation, now=now)


class _ConversationList(BaseModel):
    conversations: list[Conversation]


def parse_conversation_list(response: httpx.Response, *, now: float) -> list[Conversation]:
    """A ``conversation.list`` (search results carry no parts)."""
    return _parse(response, _ConversationList, now=now).conversations


class _CreatedMessage(BaseModel):
    conversation_id: str


def parse_created_conversation_id(response: httpx.Response, *, now: float) -> str:
    """The ``conversation_id`` of the message ``POST /conversations`` returns (its ``id`` is
    the message's, not the conversation's)."""
    return _parse(response, _CreatedMessage, now=now).conversation_id


def parse_tag(response: httpx.Response, *, now: float) -> Tag:
    """A ``tag`` body (create, or applied to a conversation)."""
    return _parse(response, Tag, now=now)


def parse_data_attribute(response: httpx.Response, *, now: float) -> DataAttribute:
    """A ``data_attribute`` body."""
    return _parse(response, DataAttribute, now=now)


class _DataAttributeList(BaseModel):
    data: list[DataAttribute]


def parse_data_attributes(response: httpx.Response, *, now: float) -> list[DataAttribute]:
    """A ``data_attribute_list`` body."""
    return _parse(response, _DataAttributeList, now=now).data


class _AdminList(BaseModel):
    admins: list[Admin | None]


def parse_admins(response: httpx.Response, *, now: float) -> list[Admin]:
    """An ``admin.list`` body."""
    return [a for a in _parse(response, _AdminList, now=now).admins if a is not None]


def parse_me(response: httpx.Response, *, now: float) -> Me:
    """An ``admin_with_app`` body (``GET /me``)."""
    return _parse(response, Me, now=now)
