"""The bridge end to end: signed webhooks in, the sandbox Intercom's state checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from actors.tools import PUBLIC_URL, Stack, open_stack
from channels import Channel
from channels.sandbox import SandboxFailure, WebhookMedia, WhatsAppInbound
from tests.actors.conftest import eventually

PHONE = "15550001111"


def parts(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = conversation["parts"]
    return found


def bodies(conversation: dict[str, Any]) -> list[str]:
    return [str(p["body"]) for p in parts(conversation)]


def only(stack: Stack) -> dict[str, Any]:
    (conversation,) = stack.conversations()
    return conversation


def settled(stack: Stack, conversations: int) -> bool:
    """The sandbox holds ``conversations`` and the bridge has finished every entry (so what it
    records with an entry, like the conversation's thread, is committed)."""
    return len(stack.conversations()) == conversations and stack.node.dispatcher.inflight == 0


def part_count(stack: Stack) -> int:
    """Parts in the only conversation (0 while there is none)."""
    conversations = stack.conversations()
    return len(parts(conversations[0])) if len(conversations) == 1 else 0


async def test_first_message_creates_contact_and_conversation(stack: Stack) -> None:
    response = await stack.whatsapp(PHONE, "Hi, my order is late", name="Ana")
    assert response.status_code == 200
    await eventually(lambda: settled(stack, 1))
    (contact,) = stack.contacts()
    assert contact["phone"] == "+15550001111"
    assert contact["role"] == "lead"
    assert contact["name"] == "Ana"
    conversation = only(stack)
    assert conversation["contact_id"] == contact["id"]
    assert bodies(conversation) == ["Hi, my order is late"]


async def test_later_messages_continue_the_thread_in_order(stack: Stack) -> None:
    for i in range(5):
        assert (await stack.whatsapp(PHONE, f"message {i}")).status_code == 200
    await eventually(lambda: part_count(stack) == 5)
    assert bodies(only(stack)) == [f"message {i}" for i in range(5)]


async def test_batched_webhook_keeps_message_order(stack: Stack) -> None:
    batch = [WhatsAppInbound(from_phone=PHONE, text=f"batched {i}") for i in range(4)]
    assert (await stack.whatsapp(PHONE, batch=batch)).status_code == 200
    await eventually(lambda: part_count(stack) == 4)
    assert bodies(only(stack)) == [f"batched {i}" for i in range(4)]


async def test_redelivered_webhook_yields_one_part(stack: Stack) -> None:
    for _ in range(3):
        response = await stack.whatsapp(PHONE, "only once", message_id="wamid.same")
        assert response.status_code == 200
    await stack.whatsapp(PHONE, "after")
    await eventually(lambda: part_count(stack) == 2)
    await trio.sleep(0.3)
    assert bodies(only(stack)) == ["only once", "after"]


async def test_buffer_opens_a_new_conversation_after_silence(database_url: str) -> None:
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    async with open_stack(database_url=database_url, conversation_buffer_seconds=600) as s:
        await s.whatsapp(PHONE, "first", sent_at=start)
        await s.whatsapp(PHONE, "within the buffer", sent_at=start + timedelta(minutes=5))
        await s.whatsapp(PHONE, "after silence", sent_at=start + timedelta(minutes=30))
        await eventually(lambda: len(s.conversations()) == 2)
        await eventually(lambda: sum(len(c["parts"]) for c in s.conversations()) == 3)
        first, second = s.conversations()
        assert bodies(first) == ["first", "within the buffer"]
        assert bodies(second) == ["after silence"]
        assert first["contact_id"] == second["contact_id"]


async def test_attachment_is_uploaded_inline_with_its_caption(stack: Stack) -> None:
    image = b"\x89PNG\r\n\x1a\n" + b"x" * 2048
    media_id = stack.sandbox.providers.add_media(image, "image/png", "receipt.png")
    media = WebhookMedia(ref=media_id, mime_type="image/png", size=len(image))
    await stack.whatsapp(PHONE, "here is the receipt", media=media)
    await eventually(lambda: part_count(stack) == 2)
    source, files = parts(only(stack))
    assert source["body"] == "here is the receipt"
    (attachment,) = files["attachments"]
    assert attachment["content_type"] == "image/png"
    assert attachment["size"] == len(image)


async def test_teammate_reply_goes_back_out_with_the_name_and_notes_do_not(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "hello?")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    teammates = stack.sandbox.intercom.teammates
    await teammates.note(conversation_id, "internal: check the order", admin_id="991267602")
    await teammates.reply(conversation_id, "Your parcel ships today", admin_id="991267602")
    await eventually(lambda: len(stack.sent()) >= 1)
    await trio.sleep(0.3)
    (sent,) = stack.sent()
    assert sent.channel is Channel.WHATSAPP
    assert sent.to == PHONE
    assert sent.text == "Grace Teammate: Your parcel ships today"


async def test_deleted_conversation_is_replaced_and_the_message_lands(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "first")
    await eventually(lambda: settled(stack, 1))
    old_id = str(only(stack)["id"])
    stack.sandbox.intercom.delete_conversation(old_id)
    await stack.whatsapp(PHONE, "after the deletion")
    await eventually(lambda: len(stack.conversations()) == 2)
    await eventually(lambda: bodies(stack.conversations()[1]) == ["after the deletion"])
    old, new = stack.conversations()
    assert old["deleted"]
    assert new["contact_id"] == old["contact_id"]


async def test_one_phone_on_two_channels_yields_one_contact(stack: Stack) -> None:
    stack.sandbox.intercom.configure(search_lag_seconds=3600)  # search never sees new contacts
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stack.whatsapp, PHONE, "on whatsapp")
        nursery.start_soon(stack.sms, "+15550001111", "on sms")
    await eventually(lambda: len(stack.conversations()) == 2)
    assert len(stack.contacts()) == 1
    first, second = stack.conversations()
    assert first["contact_id"] == second["contact_id"]


async def test_telegram_contact_is_found_by_custom_attribute(stack: Stack) -> None:
    await stack.telegram(1111111, "hi from telegram")
    await eventually(lambda: settled(stack, 1))
    (contact,) = stack.contacts()
    assert contact["phone"] is None
    assert contact["custom_attributes"] == {"telegram_user_id": "1111111"}


async def test_twilio_is_answered_with_empty_twiml(stack: Stack) -> None:
    response = await stack.sms("+15550001111", "hello by sms")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")
    await eventually(lambda: settled(stack, 1))


async def test_undeliverable_reply_leaves_an_internal_note(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "hello")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    stack.sandbox.providers.fail(Channel.WHATSAPP, PHONE, SandboxFailure.BLOCKED)
    await stack.sandbox.intercom.teammates.reply(conversation_id, "are you there?")
    await eventually(lambda: any(p["part_type"] == "note" for p in parts(only(stack))))
    note = next(p for p in parts(only(stack)) if p["part_type"] == "note")
    assert "could not deliver" in note["body"]
    assert note["author_id"] == "991267601"  # unassigned: the default operator
    assert stack.sent() == []


async def test_send_api_records_the_message_and_does_not_echo_it(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "hello")
    await eventually(lambda: settled(stack, 1))
    response = await stack.http.post(
        "/api/messages",
        json={
            "channel": "whatsapp",
            "account": "100000000000001",
            "customer": PHONE,
            "text": "Your appointment is at 10:00",
        },
        headers={"authorization": "Bearer sandbox-api-token"},
    )
    assert response.status_code == 200, response.text
    await eventually(lambda: part_count(stack) == 2)
    await trio.sleep(0.5)  # the webhook for our own part comes back: it must not be sent again
    assert [m.text for m in stack.sent()] == ["Your appointment is at 10:00"]
    part = parts(only(stack))[1]
    assert part["author_type"] == "admin"
    assert part["body"] == "Your appointment is at 10:00"


async def test_merged_contact_is_followed_to_its_canonical_contact(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "before the merge")
    await eventually(lambda: part_count(stack) == 1)
    (lead,) = stack.contacts()
    created = await stack.http.post(  # a teammate identifies the customer as a user
        f"{stack.sandbox_url}/intercom/contacts",
        json={"role": "user", "external_id": "customer-7", "phone": "+15550001111"},
        headers={"authorization": "Bearer sandbox-token", "intercom-version": "2.16"},
    )
    assert created.status_code == 200, created.text
    user_id = created.json()["id"]
    stack.sandbox.intercom.merge_contacts(str(lead["id"]), user_id)
    await stack.whatsapp(PHONE, "after the merge")
    await eventually(lambda: part_count(stack) == 2)
    conversation = only(stack)
    assert bodies(conversation) == ["before the merge", "after the merge"]
    assert parts(conversation)[1]["author_id"] == user_id


async def test_teammate_attachments_are_sent_on_the_channel(stack: Stack) -> None:
    await stack.telegram(4242, "send me the invoice please")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    invoice = b"%PDF-1.4 " + b"x" * 1000
    await stack.sandbox.intercom.teammates.reply(
        conversation_id,
        "Here it is",
        admin_id="991267603",
        attachments=[("invoice.pdf", "application/pdf", invoice)],
    )
    await eventually(lambda: len(stack.sent()) == 1)
    (document,) = stack.sent()  # one attachment: the text is its caption
    assert document.text == "Linus Teammate: Here it is"
    assert document.type == "document"
    assert document.to == "4242"


async def test_oversize_attachment_is_linked_with_a_note_not_dropped(
    database_url: str, tmp_path: Path
) -> None:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        intercom_max_attachment_bytes=4096,
    ) as s:
        video = b"\x00\x00\x00\x18ftypmp42" + b"v" * 20_000
        media_id = s.sandbox.providers.add_media(video, "video/mp4", "unboxing.mp4")
        await s.whatsapp(PHONE, "look", media=WebhookMedia(ref=media_id, mime_type="video/mp4"))
        await eventually(lambda: part_count(s) == 1)
        (body,) = bodies(only(s))
        # WhatsApp's media endpoint names no file for a video: the bridge names it by kind.
        assert body.startswith("look\n📎 video-1.mp4 (0.0 MB, too large to attach): "), body
        link = body.rsplit(" ", 1)[1]
        assert link.startswith(f"{PUBLIC_URL}/media/")
        served = await s.http.get(link.removeprefix(PUBLIC_URL))
        assert served.status_code == 200
        assert served.content == video
        assert served.headers["content-type"] == "video/mp4"
        assert (await s.http.get("/media/not-a-token")).status_code == 404
