"""A teammate's reply reaches the customer faithfully (issue 17), over real HTTP, on both stores.

Links keep their target, bold/italic/lists become each channel's markup, an inline image is
sent as media, and a long reply is split at the provider's limit (which the sandboxes enforce
as the providers do) instead of being cut.
"""

from __future__ import annotations

import trio

from actors.tools import SANDBOX_SECRETS, Stack
from channels import Channel
from channels.sandbox import SandboxFailure, SentMessage
from tests.actors.conftest import eventually

PHONE = "15550002222"
SMS_PHONE = "+15550003333"
CHAT = 777001
GRACE = "991267602"  # "Grace Teammate" in the sandbox


async def _conversation(stack: Stack, count: int = 1) -> str:
    await eventually(
        lambda: len(stack.conversations()) == count and stack.node.dispatcher.inflight == 0
    )
    return str(stack.conversations()[-1]["id"])


async def _reply(stack: Stack, conversation_id: str, body: str) -> None:
    action = await stack.sandbox.intercom.teammates.reply(conversation_id, body, admin_id=GRACE)
    assert action.delivery is not None
    assert action.delivery.status == 200, action.delivery


async def _sent_settled(stack: Stack, count: int) -> list[SentMessage]:
    await eventually(lambda: len(stack.sent()) >= count and stack.node.dispatcher.inflight == 0)
    await trio.sleep(0.3)  # nothing more arrives
    return stack.sent()


def _notes(stack: Stack) -> list[str]:
    return [
        str(part["body"])
        for conversation in stack.conversations()
        for part in conversation["parts"]
        if part.get("part_type") == "note"
    ]


async def test_a_link_keeps_its_target_visible(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "where is my parcel?")
    conversation_id = await _conversation(stack)
    await _reply(
        stack,
        conversation_id,
        '<p>Track it <a href="https://track.example/123">here</a>, or at '
        '<a href="https://track.example/all">https://track.example/all</a>.</p>',
    )
    (sent,) = await _sent_settled(stack, 1)
    assert sent.text == (
        "Grace Teammate: Track it here (https://track.example/123), or at"
        " https://track.example/all."
    )


REPLY_WITH_STYLES = (
    "<p>Your order is <b>on its way</b> 🚚, <i>finally</i>.</p>"
    "<ul><li>Box <strong>one</strong></li><li>Box two</li></ul>"
    "<ol><li>open it</li><li>enjoy</li></ol>"
)


async def test_bold_italics_and_lists_become_whatsapp_markup(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "status?")
    conversation_id = await _conversation(stack)
    await _reply(stack, conversation_id, REPLY_WITH_STYLES)
    (sent,) = await _sent_settled(stack, 1)
    assert sent.text == (
        "Grace Teammate: Your order is *on its way* 🚚, _finally_.\n"
        "• Box *one*\n• Box two\n1. open it\n2. enjoy"
    )


async def test_bold_and_italics_become_telegram_entities_in_utf16_units(stack: Stack) -> None:
    await stack.telegram(CHAT, "status?")
    conversation_id = await _conversation(stack)
    await _reply(stack, conversation_id, REPLY_WITH_STYLES)
    (sent,) = await _sent_settled(stack, 1)
    assert sent.channel is Channel.TELEGRAM
    text = "Grace Teammate: Your order is on its way 🚚, finally.\n• Box one\n• Box two\n"
    assert sent.text == text + "1. open it\n2. enjoy"

    def units(s: str) -> int:
        return len(s.encode("utf-16-le")) // 2

    styled = {
        (str(e["type"]), sent.text.encode("utf-16-le")[
            2 * int(str(e["offset"])) : 2 * (int(str(e["offset"])) + int(str(e["length"])))
        ].decode("utf-16-le"))
        for e in sent.entities
    }  # fmt: skip
    assert styled == {("bold", "on its way"), ("italic", "finally"), ("bold", "one")}
    # "finally" comes after the truck, an astral character: two UTF-16 units.
    italic = next(e for e in sent.entities if e["type"] == "italic")
    assert italic["offset"] == units(text[: text.index("finally")])
    assert units(text[: text.index("finally")]) == text.index("finally") + 1


async def test_sms_gets_plain_text(stack: Stack) -> None:
    await stack.sms(SMS_PHONE, "status?")
    conversation_id = await _conversation(stack)
    await _reply(stack, conversation_id, REPLY_WITH_STYLES)
    (sent,) = await _sent_settled(stack, 1)
    assert sent.channel is Channel.TWILIO
    assert sent.text == (
        "Grace Teammate: Your order is on its way 🚚, finally.\n"
        "• Box one\n• Box two\n1. open it\n2. enjoy"
    )


async def test_a_reply_that_is_only_an_inline_image_sends_the_image(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "what does it look like?")
    conversation_id = await _conversation(stack)
    image = "https://downloads.intercomcdn.example/i/o/1/photo.png"
    await _reply(
        stack, conversation_id, f'<div class="intercom-container"><img src="{image}"></div>'
    )
    (sent,) = await _sent_settled(stack, 1)
    assert (sent.type, sent.media_url, sent.text) == ("image", image, None)
    assert _notes(stack) == []


async def test_inline_images_go_out_where_they_stand_in_the_text(stack: Stack) -> None:
    await stack.telegram(CHAT, "show me")
    conversation_id = await _conversation(stack)
    # Served by the sandbox Intercom: the sandbox Telegram fetches a photo's URL as Telegram does.
    state, base = stack.sandbox.intercom.core.state, stack.sandbox.intercom.public_url
    first = state.store_file("a.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 first", base).url
    second = state.store_file("b.png", "image/png", b"\x89PNG\r\n\x1a\n second", base).url
    await _reply(
        stack,
        conversation_id,
        f'<p>Before:</p><p><img src="{first}"></p><p>After:</p><p><img src="{second}"></p>',
    )
    sent = await _sent_settled(stack, 4)
    assert [(m.type, m.text or m.media_url) for m in sent] == [
        ("text", "Grace Teammate: Before:"),
        ("image", first),
        ("text", "After:"),
        ("image", second),
    ]


LONG_SMS = " ".join(f"Sentence {n:03d} of the long reply." for n in range(70))  # 2,169 chars


async def test_a_long_sms_reply_is_split_at_1600_characters_not_cut(stack: Stack) -> None:
    await stack.sms(SMS_PHONE, "tell me everything")
    conversation_id = await _conversation(stack)
    await _reply(stack, conversation_id, f"<p>{LONG_SMS}</p>")
    sent = await _sent_settled(stack, 2)
    assert [m.channel for m in sent] == [Channel.TWILIO, Channel.TWILIO]
    texts = [m.text or "" for m in sent]
    assert all(len(t) <= 1600 for t in texts)
    assert " ".join(texts) == f"Grace Teammate: {LONG_SMS}"
    assert texts[0].endswith("reply.")  # at a sentence's end
    assert _notes(stack) == []


async def test_a_long_telegram_reply_is_split_counting_utf16_units(stack: Stack) -> None:
    await stack.telegram(CHAT, "tell me everything")
    conversation_id = await _conversation(stack)
    paragraphs = [("😀 word " * 300).strip() for _ in range(3)]  # 2,400 units each
    await _reply(stack, conversation_id, "".join(f"<p>{p}</p><p></p>" for p in paragraphs))
    sent = await _sent_settled(stack, 3)
    texts = [m.text or "" for m in sent]
    assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)
    assert "\n\n".join(texts) == "Grace Teammate: " + "\n\n".join(paragraphs)
    assert len(texts) == 3  # one paragraph each: split at the blank lines


async def test_a_retry_after_a_429_on_the_second_piece_does_not_resend_the_first(
    stack: Stack,
) -> None:
    await stack.sms(SMS_PHONE, "tell me everything")
    conversation_id = await _conversation(stack)
    stack.sandbox.providers.fail(
        Channel.TWILIO, SMS_PHONE, SandboxFailure.RATE_LIMITED, times=1, after=1
    )
    await _reply(stack, conversation_id, f"<p>{LONG_SMS}</p>")
    sent = await _sent_settled(stack, 2)
    texts = [m.text or "" for m in sent]
    assert " ".join(texts) == f"Grace Teammate: {LONG_SMS}"
    assert len(texts) == 2


async def test_a_long_send_api_message_is_split_too(stack: Stack) -> None:
    await stack.sms(SMS_PHONE, "hi")
    await _conversation(stack)
    response = await stack.http.post(
        "/api/messages",
        json={
            "channel": "twilio",
            "account": SANDBOX_SECRETS.twilio_number,
            "customer": SMS_PHONE,
            "text": LONG_SMS,
        },
        headers={"authorization": "Bearer sandbox-api-token"},
    )
    assert response.status_code == 200, response.text
    sent = await _sent_settled(stack, 2)
    assert " ".join(m.text or "" for m in sent) == LONG_SMS
