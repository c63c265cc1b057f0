"""Intercom's own examples (from the OpenAPI description) as recorded payloads: our parsers
read every success example and classify every error example of the operations we use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from intercom import (
    IntercomAuthError,
    IntercomContactMerged,
    IntercomError,
    IntercomNotFound,
    IntercomRejected,
)
from intercom import _responses as rs

from .spec import Spec

Parser = Callable[..., object]

OPERATIONS: list[tuple[str, str, Parser]] = [
    ("/contacts/search", "post", rs.parse_contact_page),
    ("/contacts", "post", rs.parse_contact),
    ("/contacts/{contact_id}", "get", rs.parse_contact),
    ("/contacts/{contact_id}", "put", rs.parse_contact),
    ("/contacts/find_by_external_id/{external_id}", "get", rs.parse_contact),
    ("/data_attributes", "post", rs.parse_data_attribute),
    ("/data_attributes", "get", rs.parse_data_attributes),
    ("/conversations", "post", rs.parse_created_conversation_id),
    ("/conversations/{conversation_id}/reply", "post", rs.parse_conversation),
    ("/conversations/{conversation_id}", "get", rs.parse_conversation),
    ("/conversations/{conversation_id}/parts", "post", rs.parse_conversation),
    ("/admins", "get", rs.parse_admins),
    ("/me", "get", rs.parse_me),
]

ERRORS: dict[int, type[IntercomError]] = {
    400: IntercomRejected,
    401: IntercomAuthError,
    403: IntercomAuthError,
    404: IntercomNotFound,
    410: IntercomContactMerged,
    422: IntercomRejected,
}


def _examples(spec: Spec) -> list[tuple[str, int, Any, dict[str, str], Parser]]:
    found = []
    for path, method, parser in OPERATIONS:
        for status, response in spec.raw["paths"][path][method]["responses"].items():
            if status == "default":
                continue
            headers = {
                name: header["schema"]["example"]
                for name, header in (response.get("headers") or {}).items()
                if "example" in header.get("schema", {})
            }
            media = response.get("content", {}).get("application/json", {})
            for name, example in (media.get("examples") or {}).items():
                label = f"{method.upper()} {path} {status} {name}"
                found.append((label, int(status), example["value"], headers, parser))
    return found


def test_every_example_parses_or_classifies(spec: Spec) -> None:
    examples = _examples(spec)
    assert len(examples) > 40  # the spec has examples for every operation we use
    for label, status, body, headers, parser in examples:
        request = httpx.Request("GET", "https://api.intercom.io/x")
        response = httpx.Response(status, json=body, headers=headers, request=request)
        if status == 200:
            assert parser(response, now=0.0) is not None, label
            continue
        with pytest.raises(ERRORS[status]) as info:
            parser(response, now=0.0)
        assert info.value.request_id, label
        assert isinstance(info.value, IntercomRejected)
        assert info.value.codes, label
        if status == 410:
            assert isinstance(info.value, IntercomContactMerged)
            expected = headers["Link"].split("/contacts/")[1].split(">")[0]
            assert info.value.canonical_id == expected, label


def test_unassigned_in_examples_is_none(spec: Spec) -> None:
    response = spec.raw["paths"]["/conversations/{conversation_id}/parts"]["post"]["responses"]
    close = response["200"]["content"]["application/json"]["examples"]["Close a conversation"]
    request = httpx.Request("GET", "https://api.intercom.io/x")
    body = close["value"] | {"admin_assignee_id": 0}
    conversation = rs.parse_conversation(httpx.Response(200, json=body, request=request), now=0)
    assert conversation.admin_assignee_id is None
    assert conversation.state == "closed"
