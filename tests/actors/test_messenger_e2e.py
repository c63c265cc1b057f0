"""Messenger and Instagram end to end: signed webhooks in over real HTTP, the sandbox Intercom's
state checked, teammates' replies out through the fake Send API and its 24-hour window (7 days
tagged HUMAN_AGENT)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.tools import SANDBOX_SECRETS, Stack, meta_settings, open_stack
from channels import Channel
from tests.actors.conftest import eventually

PSID = "5550001111000001"
IGSID = "1789000000000042"
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 2048


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    meta: dict[str, Any] = {
        k.removeprefix("THREADLINE_").lower(): v for k, v in meta_settings().items()
    }
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=2.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        **meta,
    ) as opened:
        yield opened


def parts(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = conversation["parts"]
    return found


def only(stack: Stack) -> dict[str, Any]:
    (conversation,) = stack.conversations()
    return conversation


def settled(stack: Stack, conversations: int) -> bool:
    return len(stack.conversations()) == conversations and stack.node.dispatcher.inflight == 0


# The same behaviour on both of Meta's channels: (channel, its customer's id, the contact's
# custom attribute, its window's name in the note).
META_CHANNELS = [
    pytest.param(Channel.MESSENGER, PSID, "messenger_user_id", "Messenger", id="messenger"),
    pytest.param(Channel.INSTAGRAM, IGSID, "instagram_user_id", "Instagram", id="instagram"),
]
meta_channels = pytest.mark.parametrize(
    ("channel", "customer", "attribute", "title"), META_CHANNELS
)


def part_count(stack: Stack) -> int:
    conversations = stack.conversations()
    return len(parts(conversations[0])) if len(conversations) == 1 else 0


@meta_channels
async def test_first_message_opens_a_conversation_for_a_contact_found_by_its_scoped_id(
    stack: Stack, channel: Channel, customer: str, attribute: str, title: str
) -> None:
    response = await stack.meta(channel, customer, "Hi, is my order on its way?")
    assert response.status_code == 200
    await eventually(lambda: settled(stack, 1))
    (contact,) = stack.contacts()
    assert contact["phone"] is None
    assert contact["custom_attributes"] == {attribute: customer}
    assert [p["body"] for p in parts(only(stack))] == ["Hi, is my order on its way?"]


@meta_channels
async def test_later_messages_and_a_postback_continue_the_thread(
    stack: Stack, channel: Channel, customer: str, attribute: str, title: str
) -> None:
    for i in range(3):
        assert (await stack.meta(channel, customer, f"message {i}")).status_code == 200
    await stack.meta(channel, customer, postback_title="Track my order")
    await eventually(lambda: part_count(stack) == 4)
    assert [p["body"] for p in parts(only(stack))] == [
        "message 0", "message 1", "message 2", "Track my order",
    ]  # fmt: skip
    assert len(stack.contacts()) == 1


@meta_channels
async def test_attachment_from_the_cdn_url_is_uploaded(
    stack: Stack, channel: Channel, customer: str, attribute: str, title: str
) -> None:
    providers = stack.sandbox.providers
    media_id = providers.add_media(PNG, "image/png", "receipt.png")
    url = providers.meta_media_url(stack.sandbox_url, channel, media_id)
    await stack.meta(channel, customer, media_url=url, media_type="image")
    await eventually(lambda: settled(stack, 1) and part_count(stack) >= 1)
    attachments = [a for p in parts(only(stack)) for a in p.get("attachments") or ()]
    (attachment,) = attachments
    assert attachment["content_type"] == "image/png"
    assert attachment["size"] == len(PNG)


@meta_channels
async def test_teammate_reply_goes_out_with_the_name(
    stack: Stack, channel: Channel, customer: str, attribute: str, title: str
) -> None:
    await stack.meta(channel, customer, "hello?")
    await eventually(lambda: settled(stack, 1))
    await stack.sandbox.intercom.teammates.reply(
        str(only(stack)["id"]), "Your parcel ships today", admin_id="991267602"
    )
    await eventually(lambda: len(stack.sent()) >= 1)
    await trio.sleep(0.3)
    (sent,) = stack.sent()
    account = (
        SANDBOX_SECRETS.messenger_page_id
        if channel is Channel.MESSENGER
        else SANDBOX_SECRETS.instagram_account_id
    )
    assert (sent.channel, sent.account, sent.to) == (channel, account, customer)
    assert sent.text == "Grace Teammate: Your parcel ships today"
    assert sent.tag is None  # within 24 hours: a standard RESPONSE


async def test_teammate_reply_goes_out_with_the_name_and_is_delivered(stack: Stack) -> None:
    await stack.meta(Channel.MESSENGER, PSID, "hello?")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    await stack.sandbox.intercom.teammates.reply(
        conversation_id, "Your parcel ships today", admin_id="991267602"
    )
    await eventually(lambda: len(stack.sent()) >= 1)
    await trio.sleep(0.3)
    (sent,) = stack.sent()
    assert sent.channel is Channel.MESSENGER
    assert (sent.account, sent.to) == (SANDBOX_SECRETS.messenger_page_id, PSID)
    assert sent.text == "Grace Teammate: Your parcel ships today"
    assert sent.tag is None  # within 24 hours: a standard RESPONSE
    # Meta's delivery receipt for it comes back signed, and the bridge takes it.
    await eventually(
        lambda: any(w.status == 200 for w in stack.sandbox.providers.posted_webhooks())
    )
    (posted,) = stack.sandbox.providers.posted_webhooks()
    assert posted.url.endswith("/webhooks/messenger")
    assert sent.message_id.encode() in posted.body


async def test_a_long_reply_is_split_at_messengers_limit(stack: Stack) -> None:
    await stack.meta(Channel.MESSENGER, PSID, "tell me everything")
    await eventually(lambda: settled(stack, 1))
    long = " ".join(f"word{i}" for i in range(700))  # ~5,000 characters
    await stack.sandbox.intercom.teammates.reply(str(only(stack)["id"]), long, admin_id="991267602")
    await eventually(lambda: len(stack.sent()) >= 3)
    await trio.sleep(0.3)
    texts = [m.text or "" for m in stack.sent()]
    assert all(len(t) <= 2000 for t in texts)
    assert " ".join(texts).split() == f"Grace Teammate: {long}".split()


@meta_channels
async def test_after_24_hours_the_reply_goes_tagged_human_agent(
    stack: Stack, channel: Channel, customer: str, attribute: str, title: str
) -> None:
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    await stack.meta(channel, customer, "are you there?", sent_at=three_days_ago)
    await eventually(lambda: settled(stack, 1))
    await stack.sandbox.intercom.teammates.reply(
        str(only(stack)["id"]), "Sorry for the wait", admin_id="991267602"
    )
    await eventually(lambda: len(stack.sent()) >= 1)
    (sent,) = stack.sent()
    assert sent.text == "Grace Teammate: Sorry for the wait"
    assert sent.tag == "HUMAN_AGENT"


@meta_channels
async def test_after_7_days_the_reply_is_not_sent_and_a_note_says_why(
    stack: Stack, channel: Channel, customer: str, attribute: str, title: str
) -> None:
    eight_days_ago = datetime.now(UTC) - timedelta(days=8)
    await stack.meta(channel, customer, "hello from last week", sent_at=eight_days_ago)
    await eventually(lambda: settled(stack, 1))
    await stack.sandbox.intercom.teammates.reply(
        str(only(stack)["id"]), "Back to you at last", admin_id="991267602"
    )
    await eventually(lambda: any(p["part_type"] == "note" for p in parts(only(stack))))
    note = next(p for p in parts(only(stack)) if p["part_type"] == "note")
    assert f"outside {title}'s messaging window" in note["body"]
    assert "HUMAN_AGENT" in note["body"]
    assert stack.sent() == []


async def test_instagram_story_reply_in_and_reply_out(stack: Stack) -> None:
    response = await stack.meta(Channel.INSTAGRAM, IGSID, "love this!")
    assert response.status_code == 200
    await eventually(lambda: settled(stack, 1))
    (contact,) = stack.contacts()
    assert contact["custom_attributes"] == {"instagram_user_id": IGSID}
    long = "x" * 1500
    await stack.sandbox.intercom.teammates.reply(str(only(stack)["id"]), long, admin_id="991267602")
    await eventually(lambda: len(stack.sent()) >= 2)
    await trio.sleep(0.3)
    sent = stack.sent()
    assert {m.channel for m in sent} == {Channel.INSTAGRAM}
    assert all(len(m.text or "") <= 1000 for m in sent)
    assert "".join(m.text or "" for m in sent).endswith(long)


async def test_handshake_and_refused_webhooks(stack: Stack) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.challenge": "1158201444",
        "hub.verify_token": SANDBOX_SECRETS.messenger_verify_token,
    }
    answer = await stack.http.get("/webhooks/messenger", params=query)
    assert (answer.status_code, answer.text.strip()) == (200, "1158201444")
    wrong = await stack.http.get(
        "/webhooks/messenger", params={**query, "hub.verify_token": "not-the-token"}
    )
    assert wrong.status_code == 403
    unsigned = await stack.http.post(
        "/webhooks/messenger", content=b'{"object":"page","entry":[]}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert unsigned.status_code == 401
    assert stack.conversations() == []


async def test_teammate_attachment_goes_by_url_after_the_text(stack: Stack) -> None:
    await stack.meta(Channel.MESSENGER, PSID, "send me the receipt")
    await eventually(lambda: settled(stack, 1))
    await stack.sandbox.intercom.teammates.reply(
        str(only(stack)["id"]), "Here it is", admin_id="991267602",
        attachments=[("receipt.png", "image/png", PNG)],
    )  # fmt: skip
    await eventually(lambda: len(stack.sent()) >= 2 and stack.node.dispatcher.inflight == 0)
    text, image = stack.sent()
    assert (text.type, text.text) == ("text", "Grace Teammate: Here it is")
    assert (image.type, image.mime_type) == ("image", "image/png")
    assert image.media_url is not None  # Meta fetched it from the URL the bridge gave
