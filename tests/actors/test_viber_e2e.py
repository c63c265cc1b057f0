"""Viber end to end over HTTP: signed callbacks into the bridge, the sandbox Viber's
``send_message`` and the sandbox Intercom's state checked (issue 21)."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from actors.tools import Stack
from channels import Channel
from channels.sandbox import SandboxFailure, WebhookMedia, viber_message_webhook
from tests.actors.conftest import eventually

USER = "xy5/5y6O81+/kbWHpLhBoA=="
"""A Viber user id as Viber writes them: base64, with ``/``, ``+`` and ``=``."""
GRACE = "991267602"  # "Grace Teammate"


def parts(stack: Stack) -> list[dict[str, Any]]:
    (conversation,) = stack.conversations()
    found: list[dict[str, Any]] = conversation["parts"]
    return found


def part_count(stack: Stack) -> int:
    conversations = stack.conversations()
    return len(conversations[0]["parts"]) if len(conversations) == 1 else 0


def notes(stack: Stack) -> list[str]:
    return [str(p["body"]) for p in parts(stack) if p["part_type"] == "note"]


async def test_first_message_opens_a_conversation_for_a_contact_found_by_viber_user_id(
    stack: Stack,
) -> None:
    response = await stack.viber(USER, "Hi, where is my order?", name="Olga")
    assert response.status_code == 200
    await eventually(lambda: part_count(stack) == 1 and stack.node.dispatcher.inflight == 0)
    (contact,) = stack.contacts()
    assert contact["phone"] is None
    assert contact["name"] == "Olga"
    assert contact["custom_attributes"] == {"viber_user_id": USER}
    assert [p["body"] for p in parts(stack)] == ["Hi, where is my order?"]


async def test_later_messages_continue_the_thread_and_a_redelivery_is_not_repeated(
    stack: Stack,
) -> None:
    token = 4_987_381_189_870_374_000  # above 2**53: a float would merge it with its neighbours
    await stack.viber(USER, "first", message_token=token)
    await eventually(lambda: part_count(stack) == 1)
    await stack.viber(USER, "first", message_token=token)  # Viber retries a callback
    await stack.viber(USER, "second", message_token=token + 1)
    await eventually(lambda: part_count(stack) == 2)
    await trio.sleep(0.3)
    assert [p["body"] for p in parts(stack)] == ["first", "second"]
    assert len(stack.contacts()) == 1


async def test_a_picture_is_downloaded_from_its_media_url_and_attached_with_its_caption(
    stack: Stack,
) -> None:
    image = b"\x89PNG\r\n\x1a\n" + b"x" * 2048
    media_id = stack.sandbox.providers.add_media(image, "image/png", "receipt.png")
    url = stack.sandbox.providers.viber_media_url(stack.settings.viber_base_url, media_id)
    media = WebhookMedia(ref=url, mime_type="image/png", size=len(image), filename="receipt.png")
    await stack.viber(USER, "my receipt", media=media)
    await eventually(lambda: part_count(stack) == 2)
    source, files = parts(stack)
    assert source["body"] == "my receipt"
    (attachment,) = files["attachments"]
    assert attachment["content_type"] == "image/png"
    assert attachment["size"] == len(image)


async def test_a_teammate_reply_goes_out_from_the_bot_with_the_teammate_named_in_the_text(
    stack: Stack,
) -> None:
    await stack.viber(USER, "hello?")
    await eventually(lambda: part_count(stack) == 1 and stack.node.dispatcher.inflight == 0)
    conversation_id = str(stack.conversations()[0]["id"])
    teammates = stack.sandbox.intercom.teammates
    await teammates.note(conversation_id, "internal: check the order", admin_id=GRACE)
    await teammates.reply(conversation_id, "Your parcel ships today", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) >= 1)
    await trio.sleep(0.3)
    (sent,) = stack.sent()
    assert sent.channel is Channel.VIBER
    assert sent.to == USER
    assert sent.account == "Threadline Sandbox"  # sender.name: the bot's name
    assert sent.text == "Grace Teammate: Your parcel ships today"
    assert int(sent.message_id) > 2**53


async def test_a_long_reply_is_split_at_viber_s_limit(stack: Stack) -> None:
    await stack.viber(USER, "tell me everything")
    await eventually(lambda: part_count(stack) == 1 and stack.node.dispatcher.inflight == 0)
    conversation_id = str(stack.conversations()[0]["id"])
    long = " ".join(["word"] * 2500)  # 12,499 characters: two messages
    await stack.sandbox.intercom.teammates.reply(conversation_id, long, admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) == 2)
    assert all(len(m.text or "") <= 7000 for m in stack.sent())


async def test_an_unsubscribed_customer_is_not_messaged_the_reply_becomes_a_note(
    stack: Stack,
) -> None:
    await stack.viber(USER, "thanks, bye")
    await eventually(lambda: part_count(stack) == 1 and stack.node.dispatcher.inflight == 0)
    conversation_id = str(stack.conversations()[0]["id"])
    assert (await stack.viber_event("unsubscribed", USER)).status_code == 200
    await stack.sandbox.intercom.teammates.reply(conversation_id, "One more thing", admin_id=GRACE)
    await eventually(lambda: len(notes(stack)) == 1)
    assert "could not deliver" in notes(stack)[0]
    assert "cannot be reached on viber (code 6)" in notes(stack)[0]
    assert stack.sent() == []
    assert stack.sandbox.providers.refused() == [("viber", USER, 6)]


async def test_a_message_viber_fails_after_accepting_it_leaves_a_note(stack: Stack) -> None:
    await stack.viber(USER, "hello")
    await eventually(lambda: part_count(stack) == 1 and stack.node.dispatcher.inflight == 0)
    conversation_id = str(stack.conversations()[0]["id"])
    stack.sandbox.providers.fail(Channel.VIBER, USER, SandboxFailure.FAILED_LATER, times=1)
    await stack.sandbox.intercom.teammates.reply(conversation_id, "Here you go", admin_id=GRACE)
    await eventually(lambda: len(notes(stack)) == 1)
    assert "reported it failed" in notes(stack)[0]
    assert "Here you go" in notes(stack)[0]
    assert [w.status for w in stack.sandbox.providers.posted_webhooks()] == [200]


async def test_set_webhook_check_callback_is_answered_200(stack: Stack) -> None:
    token = stack.sandbox.providers.credentials.viber_auth_token
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{stack.sandbox_url}/viber/pa/set_webhook",
            json={"url": "/webhooks/viber"},
            headers={"X-Viber-Auth-Token": token},
        )
    assert answer.json()["status"] == 0
    await eventually(lambda: len(stack.sandbox.providers.posted_webhooks()) == 1)
    (check,) = stack.sandbox.providers.posted_webhooks()
    assert check.status == 200
    assert stack.conversations() == []


async def test_a_callback_signed_with_another_token_is_refused_and_changes_nothing(
    stack: Stack,
) -> None:
    forged = viber_message_webhook("another-bot-token-00", user_id=USER, message_token=7, text="x")
    response = await stack.post("/webhooks/viber", forged)
    assert response.status_code == 401
    await trio.sleep(0.3)
    assert stack.conversations() == []
