"""Pure response classification and parsing over hand-made responses (no network)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from intercom import (
    IntercomAuthError,
    IntercomContactMerged,
    IntercomError,
    IntercomNotFound,
    IntercomRateLimited,
    IntercomRejected,
    IntercomUnavailable,
)
from intercom import _responses as rs

NOW = 1_800_000_000.0


def _response(
    status: int,
    body: object = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    request = httpx.Request("POST", "https://api.intercom.io/contacts")
    return httpx.Response(status, content=content, headers=headers or {}, request=request)


def _errors(code: str, message: str = "m", request_id: str | None = "req-1") -> dict[str, Any]:
    return {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": message}],
    }


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, IntercomRejected),
        (401, IntercomAuthError),
        (403, IntercomAuthError),
        (404, IntercomNotFound),
        (409, IntercomRejected),
        (410, IntercomContactMerged),
        (422, IntercomRejected),
        (429, IntercomRateLimited),
        (500, IntercomUnavailable),
        (502, IntercomUnavailable),
        (503, IntercomUnavailable),
    ],
)
def test_statuses_map_to_the_exception_tree(status: int, kind: type[IntercomError]) -> None:
    with pytest.raises(kind) as info:
        rs.raise_for_error(_response(status, _errors("some_code")), now=NOW)
    assert type(info.value) is kind
    assert info.value.status == status
    assert info.value.request_id == "req-1"
    assert "some_code" in str(info.value)


def test_success_passes() -> None:
    rs.raise_for_error(_response(200, {}), now=NOW)


def test_rejected_carries_every_code_and_message() -> None:
    body = {
        "type": "error.list",
        "request_id": None,
        "errors": [{"code": "parameter_invalid", "message": "a"}, {"code": "missing_parameter"}],
    }
    with pytest.raises(IntercomRejected) as info:
        rs.raise_for_error(_response(400, body, {"X-Request-Id": "hdr"}), now=NOW)
    assert info.value.codes == ("parameter_invalid", "missing_parameter")
    assert info.value.messages == ("a", "")
    assert info.value.request_id == "hdr"


def test_unreadable_error_body_still_classifies() -> None:
    with pytest.raises(IntercomUnavailable):
        rs.raise_for_error(_response(502, raw=b"<html>Bad gateway</html>"), now=NOW)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Reset": str(int(NOW) + 7)}, 7.0),
        ({"Retry-After": "3", "X-RateLimit-Reset": str(int(NOW) + 7)}, 3.0),
        ({"X-RateLimit-Reset": str(int(NOW) - 5)}, 0.0),
        ({"X-RateLimit-Reset": "soon"}, 0.0),
        ({}, 0.0),
    ],
)
def test_rate_limited_retry_after(headers: dict[str, str], expected: float) -> None:
    with pytest.raises(IntercomRateLimited) as info:
        rs.raise_for_error(_response(429, _errors("rate_limit_exceeded"), headers), now=NOW)
    assert info.value.retry_after == pytest.approx(expected)
    assert info.value.codes == ("rate_limit_exceeded",)


def test_merged_contact_reads_the_canonical_link() -> None:
    link = {"Link": '</contacts/6762f0dd1bb69f9f2193bb99>; rel="canonical"'}
    with pytest.raises(IntercomContactMerged) as info:
        rs.raise_for_error(_response(410, _errors("contact_merged"), link), now=NOW)
    assert info.value.canonical_id == "6762f0dd1bb69f9f2193bb99"
    with pytest.raises(IntercomContactMerged) as bare:
        rs.raise_for_error(_response(410, _errors("contact_merged")), now=NOW)
    assert bare.value.canonical_id is None


@pytest.mark.parametrize(
    "message",
    [
        "A contact matching those details already exists with id=6762f0dd1bb69f9f2193bb83",
        "An archived contact matching those details already exists"
        " with id=6762f0dd1bb69f9f2193bb83",
    ],
)
def test_conflict_names_the_existing_contact(message: str) -> None:
    with pytest.raises(IntercomRejected) as info:
        rs.raise_for_error(_response(409, _errors("conflict", message)), now=NOW)
    assert rs.conflict_contact_id(info.value) == "6762f0dd1bb69f9f2193bb83"


def test_other_rejections_name_no_contact() -> None:
    with pytest.raises(IntercomRejected) as info:
        rs.raise_for_error(_response(400, _errors("parameter_invalid", "id=123")), now=NOW)
    assert rs.conflict_contact_id(info.value) is None


def test_unreadable_success_body_is_unavailable() -> None:
    with pytest.raises(IntercomUnavailable) as info:
        rs.parse_contact(_response(200, {"type": "contact"}), now=NOW)
    assert info.value.status == 200


def test_created_conversation_uses_conversation_id_not_message_id() -> None:
    body = {
        "type": "user_message",
        "id": "403918330",
        "created_at": 1,
        "body": "Hi",
        "message_type": "inapp",
        "conversation_id": "499",
    }
    assert rs.parse_created_conversation_id(_response(200, body), now=NOW) == "499"


def test_contact_page_cursor() -> None:
    contact = {"type": "contact", "id": "c1", "role": "lead", "email": "", "phone": "+1"}
    body = {
        "type": "list",
        "data": [contact],
        "total_count": 2,
        "pages": {"type": "pages", "next": {"per_page": 1, "starting_after": "abc"}},
    }
    page = rs.parse_contact_page(_response(200, body), now=NOW)
    assert page.next_cursor == "abc"
    assert page.contacts[0].email is None
    last = rs.parse_contact_page(_response(200, body | {"pages": {"type": "pages"}}), now=NOW)
    assert last.next_cursor is None
