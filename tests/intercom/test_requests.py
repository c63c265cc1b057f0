"""Pure request building: every builder's request validates against Intercom's spec."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from intercom import REGION_BASE_URLS, ApiTarget, base_url_for_region
from intercom import _requests as rq

from .spec import Spec

BASE = httpx.URL("https://api.intercom.io")
TARGET = ApiTarget(BASE, "tok", "2.16")
CONTACT = "6762f0dd1bb69f9f2193bb83"


def _all_requests() -> dict[str, httpx.Request]:
    files = [("a.png", "image/png", b"\x89PNG")]
    urls = ["https://cdn.example.com/a.png"]
    return {
        "search_phone": rq.build_search_contacts(TARGET, rq.filter_equals("phone", "+1415")),
        "search_page": rq.build_search_contacts(
            TARGET,
            {
                "operator": "AND",
                "value": [
                    rq.filter_equals("custom_attributes.telegram_chat_id", "42"),
                    rq.filter_equals("role", "lead"),
                ],
            },
            per_page=10,
            starting_after="WzE3MDAwMDAwMDAwMDAsIjY3NjIiXQ==",
        ),
        "create_lead": rq.build_create_contact(TARGET, phone="+1415", name="Ana"),
        "create_user": rq.build_create_contact(
            TARGET,
            role="user",
            external_id="wa:+1415",
            email="ana@example.com",
            custom_attributes={"channel": "whatsapp"},
        ),
        "get_contact": rq.build_get_contact(TARGET, CONTACT),
        "update_contact": rq.build_update_contact(
            TARGET, CONTACT, {"phone": "+1", "custom_attributes": {"a": "b"}}
        ),
        "find_external": rq.build_find_contact_by_external_id(TARGET, "wa:+1415/x"),
        "create_attribute": rq.build_create_data_attribute(TARGET, "telegram_chat_id"),
        "list_attributes": rq.build_list_data_attributes(TARGET),
        "create_conversation": rq.build_create_conversation(
            TARGET, CONTACT, "Hi", attachment_urls=urls
        ),
        "reply_contact": rq.build_reply_as_contact(
            TARGET, "123", CONTACT, "photo", attachment_files=files, attachment_urls=urls
        ),
        "reply_admin": rq.build_reply_as_admin(
            TARGET, "123", "991267601", "Hello", attachment_files=files
        ),
        "note_admin": rq.build_reply_as_admin(
            TARGET, "123", "991267601", "<p>why</p>", message_type="note"
        ),
        "get_conversation": rq.build_get_conversation(TARGET, "123"),
        "list_admins": rq.build_list_admins(TARGET),
        "me": rq.build_me(TARGET),
    }


@pytest.mark.parametrize("name", sorted(_all_requests()))
def test_request_validates_against_the_spec(spec: Spec, name: str) -> None:
    spec.validate_request(_all_requests()[name], BASE)


@pytest.mark.parametrize("name", sorted(_all_requests()))
def test_every_request_carries_auth_and_version(name: str) -> None:
    request = _all_requests()[name]
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Intercom-Version"] == "2.16"
    assert request.headers["Accept"] == "application/json"
    if request.content:
        assert request.headers["Content-Type"] == "application/json"


def test_attachment_files_are_base64() -> None:
    body = json.loads(_all_requests()["reply_contact"].content)
    assert body["attachment_files"] == [
        {
            "content_type": "image/png",
            "data": base64.b64encode(b"\x89PNG").decode(),
            "name": "a.png",
        }
    ]
    assert body["intercom_user_id"] == CONTACT
    assert body["type"] == "user"


def test_path_segments_are_escaped() -> None:
    request = _all_requests()["find_external"]
    assert request.url.raw_path == b"/contacts/find_by_external_id/wa%3A%2B1415%2Fx"


def test_base_url_path_prefix_is_kept() -> None:
    target = ApiTarget(httpx.URL("http://127.0.0.1:8000/intercom"), "t")
    assert str(rq.build_me(target).url) == "http://127.0.0.1:8000/intercom/me"
    query = rq.build_list_data_attributes(target)
    assert str(query.url) == "http://127.0.0.1:8000/intercom/data_attributes?model=contact"


def test_regions() -> None:
    assert base_url_for_region("eu") == "https://api.eu.intercom.io"
    assert base_url_for_region("AU") == "https://api.au.intercom.io"
    assert base_url_for_region("US") == REGION_BASE_URLS["US"]
    with pytest.raises(ValueError, match="unknown Intercom region"):
        base_url_for_region("mars")


def test_invalid_roles_and_message_types_are_refused() -> None:
    with pytest.raises(ValueError, match="role"):
        rq.build_create_contact(TARGET, role="visitor")
    with pytest.raises(ValueError, match="message_type"):
        rq.build_reply_as_admin(TARGET, "1", "2", "x", message_type="quick_reply")


def test_spec_loads_once_and_quickly(spec: Spec) -> None:
    # Loaded by the session fixture; report the time so a slow-down is visible.
    print(f"Intercom OpenAPI spec loaded in {spec.load_seconds:.2f} s")  # noqa: T201 - report
    assert spec.load_seconds < 10
