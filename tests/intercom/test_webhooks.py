"""Webhook signature (sign/verify properties), notification parsing, echo detection."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from intercom import (
    CONVERSATION_TOPICS,
    ConversationDeletedEvent,
    ConversationEvent,
    IgnoredEvent,
    NotificationInvalid,
    WebhookSignatureInvalid,
    is_own_part,
    new_admin_parts,
    parse_notification,
    sign,
    teammate_messages,
    verify_signature,
)

secrets = st.text(min_size=1, max_size=64)


@given(body=st.binary(max_size=2048), secret=secrets)
def test_sign_then_verify_round_trips(body: bytes, secret: str) -> None:
    verify_signature(body, sign(body, secret), secret)


@given(body=st.binary(min_size=1, max_size=512), secret=secrets, data=st.data())
def test_any_flipped_body_byte_is_rejected(body: bytes, secret: str, data: st.DataObject) -> None:
    header = sign(body, secret)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(tampered, header, secret)


@given(body=st.binary(max_size=512), secret=secrets, data=st.data())
def test_any_flipped_signature_byte_is_rejected(
    body: bytes, secret: str, data: st.DataObject
) -> None:
    header = sign(body, secret).encode()
    index = data.draw(st.integers(0, len(header) - 1))
    flip = data.draw(st.integers(1, 127))
    tampered = header[:index] + bytes([header[index] ^ flip]) + header[index + 1 :]
    text = tampered.decode("latin-1")
    if text.lower() == header.decode().lower():
        return  # flipping the case of a hex letter keeps the same digest
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(body, text, secret)


@given(body=st.binary(max_size=256))
def test_another_secret_is_rejected(body: bytes) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(body, sign(body, "secret-a"), "secret-b")


@pytest.mark.parametrize(
    "header", [None, "", "sha1", "sha1=", "sha256=" + "0" * 40, "0" * 40, "sha1=zz"]
)
def test_missing_or_malformed_header_is_rejected(header: str | None) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(b"{}", header, "secret")


def test_signature_is_hmac_sha1_of_the_raw_body() -> None:
    # Known answer (RFC 2202 test case 2).
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    )


def _part(**overrides: object) -> dict[str, Any]:
    part: dict[str, Any] = {
        "type": "conversation_part",
        "id": "9001",
        "part_type": "comment",
        "body": "<p>Hello <b>there</b></p><p>Line&nbsp;2 &amp; more</p>",
        "created_at": 1734537561,
        "author": {"type": "admin", "id": "991267601", "name": "Ada"},
        "attachments": [
            {
                "type": "upload",
                "name": "a.pdf",
                "url": "https://x/a.pdf",
                "content_type": "application/pdf",
            }
        ],
        "app_package_code": None,
    }
    return part | overrides


def _notification(topic: str, item: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "type": "notification_event",
            "id": "notif_1",
            "topic": topic,
            "app_id": "abc",
            "created_at": 1734537561,
            "data": {"type": "notification_event_data", "item": item},
        }
    ).encode()


def _conversation(*parts: dict[str, Any], assignee: object = 0) -> dict[str, Any]:
    return {
        "type": "conversation",
        "id": "123",
        "state": "open",
        "admin_assignee_id": assignee,
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c1"}]},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": list(parts),
            "total_count": len(parts),
        },
    }


def test_admin_reply_parses_with_plain_text_and_attachments() -> None:
    event = parse_notification(_notification("conversation.admin.replied", _conversation(_part())))
    assert isinstance(event, ConversationEvent)
    assert event.app_id == "abc"
    assert event.conversation.admin_assignee_id is None
    assert event.conversation.contact_ids == ("c1",)
    (part,) = new_admin_parts(event)
    assert part.text == "Hello there\nLine\xa02 & more"
    assert part.author.name == "Ada"
    assert part.attachments[0].content_type == "application/pdf"


def test_plain_text_bodies_are_kept_as_sent() -> None:
    event = parse_notification(
        _notification("conversation.admin.replied", _conversation(_part(body="5 < 6 & 7 > 3")))
    )
    assert isinstance(event, ConversationEvent)
    assert event.conversation.parts[0].text == "5 < 6 & 7 > 3"


def test_assignee_null_or_id() -> None:
    for raw, expected in ((None, None), (0, None), (991267601, "991267601")):
        body = _notification("conversation.admin.assigned", _conversation(assignee=raw))
        event = parse_notification(body)
        assert isinstance(event, ConversationEvent)
        assert event.conversation.admin_assignee_id == expected


def test_deleted_conversation_carries_only_the_id() -> None:
    event = parse_notification(
        _notification("conversation.deleted", {"type": "conversation", "id": "55"})
    )
    assert isinstance(event, ConversationDeletedEvent)
    assert event.conversation_id == "55"


def test_unknown_topics_are_ignored_explicitly() -> None:
    event = parse_notification(_notification("ticket.created", {"type": "ticket", "id": "1"}))
    assert isinstance(event, IgnoredEvent)
    assert "ticket.created" in event.reason


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"type": "ping"}).encode(),
        json.dumps({"type": "notification_event", "id": "n", "topic": "t"}).encode(),
        _notification("conversation.admin.replied", {"type": "contact", "id": "1"}),
        _notification("conversation.admin.replied", _conversation({"id": "1"})),
    ],
)
def test_unreadable_notifications_are_invalid_with_one_line(body: bytes) -> None:
    with pytest.raises(NotificationInvalid) as info:
        parse_notification(body)
    assert "\n" not in str(info.value)


def test_own_parts_are_recognised() -> None:
    event = parse_notification(
        _notification(
            "conversation.admin.replied",
            _conversation(_part(app_package_code="threadline"), _part(id="2")),
        )
    )
    assert isinstance(event, ConversationEvent)
    api_part, human_part = event.conversation.parts
    assert is_own_part(api_part)
    assert is_own_part(api_part, own_app_package_code="threadline")
    assert not is_own_part(api_part, own_app_package_code="another-app")
    assert is_own_part(api_part, own_admin_id="991267601")
    assert not is_own_part(api_part, own_admin_id="1")
    assert not is_own_part(human_part)
    assert not is_own_part(human_part, own_admin_id="991267601")


@given(header=st.text(max_size=60), body=st.binary(max_size=64))
def test_arbitrary_headers_never_crash_verification(header: str, body: bytes) -> None:
    try:
        verify_signature(body, header, "secret")
    except WebhookSignatureInvalid:
        return
    assert header.strip().lower() == sign(body, "secret")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
conversation_like = st.fixed_dictionaries(
    {"type": st.just("conversation"), "id": st.text(max_size=4) | st.integers()},
    optional={
        "contacts": st.dictionaries(st.sampled_from(["contacts", "type"]), json_values),
        "conversation_parts": st.dictionaries(
            st.sampled_from(["conversation_parts", "type"]), json_values
        ),
        "source": json_values,
        "admin_assignee_id": json_values,
        "state": json_values,
    },
)


@given(topic=st.sampled_from(sorted(CONVERSATION_TOPICS)), item=conversation_like)
def test_malformed_conversation_items_are_invalid_not_crashes(
    topic: str, item: dict[str, object]
) -> None:
    with contextlib.suppress(NotificationInvalid):
        parse_notification(_notification(topic, item))


@given(
    envelope=st.dictionaries(
        st.sampled_from(["type", "id", "topic", "app_id", "data"]), json_values
    )
)
def test_malformed_envelopes_are_invalid_not_crashes(envelope: dict[str, object]) -> None:
    with contextlib.suppress(NotificationInvalid):
        parse_notification(json.dumps(envelope).encode())


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "notification_event", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        _notification("conversation.admin.replied", _conversation(_part(id="\ud800"))),
        _notification("conversation.admin.replied", _conversation(_part(body="a\x00b"))),
        _notification("conversation.admin.replied", _conversation(_part(body="a" * 70_000))),
        _notification("conversation.admin.replied", _conversation(_part()) | {"x\x00": 1}),
    ],
    ids=["deep", "lone-surrogate", "nul", "long-string", "nul-in-a-key"],
)
def test_untrusted_shapes_and_strings_are_notification_invalid(body: bytes) -> None:
    # Issue 15: a 100k-deep body raised RecursionError; a lone surrogate reached the journal.
    with pytest.raises(NotificationInvalid):
        parse_notification(body)


@pytest.mark.parametrize(
    "bad",
    [
        {"parts": [1] * 500_000},
        {"parts": [_part(attachments=[1] * 999)] * 400},
        {"contacts": [[]] * 330_000},
    ],
    ids=["parts", "attachments", "contacts"],
)
def test_a_megabyte_of_bad_items_costs_one_error_not_a_megabyte_of_them(
    bad: dict[str, list[Any]],
) -> None:
    # A signed 1 MB notification of 500,000 bad parts took seconds and over 800 MB (a pod's
    # limit is 512 Mi): every error was collected and described; now the first one ends it.
    item = _conversation(*bad.get("parts", []))
    if "contacts" in bad:
        item["contacts"]["contacts"] = bad["contacts"]
    body = _notification("conversation.admin.replied", item)
    tracemalloc.start()
    try:
        with pytest.raises(NotificationInvalid) as raised:
            parse_notification(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    cause = raised.value.__cause__
    assert isinstance(cause, ValidationError)
    assert cause.error_count() == 1
    assert peak < 60 * len(body)


@pytest.mark.parametrize(
    ("topic", "part_type", "body", "author", "sent"),
    [
        ("conversation.admin.replied", "comment", "<p>Hi</p>", "admin", True),
        ("conversation.admin.closed", "close", "<p>Goodbye :)</p>", "admin", True),
        ("conversation.admin.closed", "close", None, "admin", False),  # a plain close
        ("conversation.admin.closed", "close", "<p> </p>", "admin", False),
        ("conversation.admin.assigned", "assignment", "Over to Linus", "admin", True),
        ("conversation.admin.open.assigned", "assign_and_reopen", "Back on it", "admin", True),
        ("conversation.admin.snoozed", "snoozed", "Back in an hour", "admin", True),
        ("conversation.admin.opened", "open", "Reopened: news", "admin", True),
        ("conversation.user.replied", "open", "<p>Thanks again :)</p>", "user", False),
        ("conversation.admin.noted", "note", "internal", "admin", False),
        ("conversation.admin.replied", "note", "internal", "admin", False),
        ("conversation.operator.replied", "comment", "a bot", "bot", False),
    ],
)
def test_teammate_messages_are_comments_and_state_changes_written_with_a_message(
    topic: str, part_type: str, body: str | None, author: str, sent: bool
) -> None:
    author_json = {"type": author, "id": "7", "name": "A"}
    part = _part(part_type=part_type, body=body, author=author_json, attachments=[])
    event = parse_notification(_notification(topic, _conversation(part)))
    assert isinstance(event, ConversationEvent)
    assert [p.id for p in teammate_messages(event)] == (["9001"] if sent else [])
