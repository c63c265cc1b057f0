"""WhatsApp templates end to end, on both stores: the send API's ``template``, starting a
conversation with a customer who has none, the 24-hour window, and re-engagement (a teammate's
reply outside the window waits for the customer's answer behind an approved template)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from pydantic import SecretStr

from actors.core import Settings
from actors.service import ConfigurationError, check_settings
from actors.tools import SANDBOX_SECRETS, SandboxApp, Stack, open_stack
from channels import Channel
from channels.sandbox import SandboxFailure, WhatsAppInbound, whatsapp_webhook
from runtime import hypercorn_config, serve_asgi
from tests.actors.conftest import eventually
from tests.actors.processes import ServeProcess, serve_env

PHONE = "15550001111"
ACCOUNT = "100000000000001"
AUTH = {"authorization": "Bearer sandbox-api-token"}
ORDER_UPDATE: dict[str, Any] = {
    "name": "order_update",
    "language": {"code": "en_US"},
    "components": [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#1042"}],
        }
    ],
}


def parts(stack: Stack, index: int = 0) -> list[dict[str, Any]]:
    conversations = stack.conversations()
    if len(conversations) <= index:
        return []
    found: list[dict[str, Any]] = conversations[index]["parts"]
    return found


def settled(stack: Stack) -> bool:
    return stack.node.dispatcher.inflight == 0


async def send(stack: Stack, **fields: Any) -> httpx.Response:  # noqa: ANN401 - JSON fields
    body = {"channel": "whatsapp", "account": ACCOUNT, "customer": PHONE, **fields}
    return await stack.http.post("/api/messages", json=body, headers=AUTH)


async def conversation_with(stack: Stack, sent_at: datetime | None = None) -> str:
    """The customer wrote (at ``sent_at``): their conversation's id."""
    assert (await stack.whatsapp(PHONE, "hello", sent_at=sent_at)).status_code == 200
    await eventually(lambda: len(parts(stack)) == 1 and settled(stack))
    return str(stack.conversations()[0]["id"])


# --- the send API's template ------------------------------------------------------------------


async def test_send_api_sends_a_template_and_records_its_rendered_text(stack: Stack) -> None:
    await conversation_with(stack)
    response = await send(stack, template=ORDER_UPDATE, idempotency_key="t-1")
    assert response.status_code == 200, response.text
    await eventually(lambda: len(parts(stack)) == 2 and settled(stack))
    [sent] = stack.sent()
    assert (sent.type, sent.template, sent.to) == ("template", "order_update", PHONE)
    assert sent.text == "Hi Ana, your order #1042 has shipped."
    record = parts(stack)[1]
    assert (record["author_type"], record["part_type"]) == ("admin", "comment")
    assert record["body"] == (
        "[WhatsApp template order_update (en_US)]\nHi Ana, your order #1042 has shipped."
    )
    await trio.sleep(0.3)  # our own part's webhook comes back: it must not be sent again
    assert len(stack.sent()) == 1


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"template": {"name": "order_update"}}, 400, "template.language"),
        ({"template": {**ORDER_UPDATE, "name": "Bad Name!"}}, 400, "template.name"),
        ({"template": ORDER_UPDATE, "text": "and text"}, 400, "not both"),
        ({"template": ORDER_UPDATE, "channel": "telegram", "account": "7000000001"}, 400, "only"),
        (
            {"template": {**ORDER_UPDATE, "components": [{"type": "body", "parameters": [
                {"type": "text"}]}]}},
            400,
            "has no text",
        ),
        ({"template": {**ORDER_UPDATE, "name": "no_such_template"}}, 422, "not a template"),
        ({"template": {**ORDER_UPDATE, "name": "2023_april_promo"}}, 422, "status REJECTED"),
        ({"template": {**ORDER_UPDATE, "name": "spring_offer"}}, 422, "status PENDING"),
        (
            {"template": {**ORDER_UPDATE, "language": {"code": "de_DE"}}},
            422,
            "approved in en_US, pt_BR",
        ),
        ({"template": {**ORDER_UPDATE, "components": []}}, 422, "2 body parameter(s), 0 given"),
    ],
)  # fmt: skip
async def test_send_api_refuses_a_bad_template_and_changes_nothing(
    stack: Stack, fields: dict[str, Any], status: int, reason: str
) -> None:
    await conversation_with(stack)
    response = await send(stack, **fields)
    assert response.status_code == status, response.text
    assert reason in response.text
    await trio.sleep(0.3)
    assert stack.sent() == []
    assert len(parts(stack)) == 1


async def test_approved_templates_are_fetched_once_and_cached(stack: Stack) -> None:
    await conversation_with(stack)
    for _i in range(3):
        assert (await send(stack, template=ORDER_UPDATE)).status_code == 200
        assert (
            await send(stack, template={"name": "nope", "language": {"code": "en_US"}})
        ).status_code == 422
    assert stack.sandbox.providers.template_fetches == 1
    await eventually(lambda: len(stack.sent()) == 3)


# --- starting a conversation ------------------------------------------------------------------


async def test_send_api_starts_a_conversation_with_a_customer_who_has_none(stack: Stack) -> None:
    response = await send(stack, template=ORDER_UPDATE)
    assert response.status_code == 200, response.text
    await eventually(lambda: len(parts(stack)) == 2 and settled(stack))
    [contact] = stack.contacts()
    assert contact["phone"] == f"+{PHONE}"
    [conversation] = stack.conversations()
    assert conversation["contact_id"] == contact["id"]
    opening, record = parts(stack)
    assert "started by the team" in opening["body"]
    assert record["author_type"] == "admin"
    assert "Hi Ana, your order #1042 has shipped." in record["body"]
    assert [m.template for m in stack.sent()] == ["order_update"]
    # The customer answers: the same contact and conversation, and now free-form is allowed.
    await stack.whatsapp(PHONE, "Thanks! When will it arrive?")
    await eventually(lambda: len(parts(stack)) == 3 and settled(stack))
    assert len(stack.contacts()) == 1
    assert len(stack.conversations()) == 1
    assert parts(stack)[2]["author_id"] == contact["id"]
    assert (await send(stack, text="Tomorrow before noon.")).status_code == 200
    await eventually(lambda: len(stack.sent()) == 2)
    # SMS has no window: free-form starts a conversation there.
    sms = {"channel": "twilio", "account": "+15550002222", "customer": "+15550003333"}
    assert (await send(stack, **sms, text="Your parcel is ready")).status_code == 200
    await eventually(lambda: len(stack.conversations()) == 2 and settled(stack))
    assert [m.text for m in stack.sent()][-1] == "Your parcel is ready"
    assert stack.conversations()[1]["contact_id"] != contact["id"]


async def test_free_form_outside_the_window_is_refused_and_a_template_is_not(
    stack: Stack,
) -> None:
    # Never heard from: WhatsApp would refuse free-form, so the send API does.
    response = await send(stack, text="Hello!")
    assert response.status_code == 422, response.text
    assert "send a template" in response.text
    # Heard from 25 hours ago: the same.
    await conversation_with(stack, datetime.now(UTC) - timedelta(hours=25))
    response = await send(stack, text="Are you still there?")
    assert response.status_code == 422, response.text
    await trio.sleep(0.3)
    assert stack.sent() == []
    assert len(parts(stack)) == 1
    assert (await send(stack, template=ORDER_UPDATE)).status_code == 200
    await eventually(lambda: len(stack.sent()) == 1 and len(parts(stack)) == 2)
    await trio.sleep(0.3)  # the webhook of our own part lands before the stack stops
    await eventually(lambda: settled(stack))


# --- re-engagement ------------------------------------------------------------------------------


@pytest.fixture
async def reengaging(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=2.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        whatsapp_reengagement_template="conversation_reopen",
    ) as opened:
        yield opened


def notes(stack: Stack) -> list[str]:
    return [str(p["body"]) for p in parts(stack) if p["part_type"] == "note"]


async def test_a_reply_outside_the_window_sends_the_template_and_follows_the_answer(
    reengaging: Stack,
) -> None:
    stack = reengaging
    conversation_id = await conversation_with(stack, datetime.now(UTC) - timedelta(hours=25))
    teammates = stack.sandbox.intercom.teammates
    await teammates.reply(conversation_id, "Your refund was approved.", admin_id="991267602")
    await eventually(lambda: len(notes(stack)) == 1 and settled(stack))
    await teammates.reply(conversation_id, "It takes 3 days.", admin_id="991267602")
    await eventually(lambda: len(notes(stack)) == 2 and settled(stack))
    assert [(m.type, m.template) for m in stack.sent()] == [("template", "conversation_reopen")]
    assert "holds this reply" in notes(stack)[0]
    assert "conversation_reopen" in notes(stack)[0]
    # The customer answers: the held replies go out after their message is bridged, in order.
    await stack.whatsapp(PHONE, "OK, what is it?")
    await eventually(lambda: len(stack.sent()) == 3 and len(notes(stack)) == 3)
    assert [m.text for m in stack.sent()[1:]] == [
        "Grace Teammate: Your refund was approved.",
        "Grace Teammate: It takes 3 days.",
    ]
    bodies = [str(p["body"]) for p in parts(stack)]
    assert bodies.index("OK, what is it?") < len(bodies) - 1
    assert "delivered the 2 reply(ies)" in notes(stack)[-1]
    # Nothing is held any more: the next reply goes straight out.
    await teammates.reply(conversation_id, "Anything else?", admin_id="991267602")
    await eventually(lambda: len(stack.sent()) == 4 and settled(stack))
    await trio.sleep(0.3)
    assert [m.type for m in stack.sent()] == ["template", "text", "text", "text"]


async def test_a_held_reply_keeps_its_markup_and_inline_image(reengaging: Stack) -> None:
    """A reply held outside the window goes out as it would have: bold as WhatsApp markup, a
    pasted image as media — not flattened to plain text, the image lost."""
    stack = reengaging
    conversation_id = await conversation_with(stack, datetime.now(UTC) - timedelta(hours=25))
    image = "https://downloads.intercomcdn.example/i/o/1/label.png"
    await stack.sandbox.intercom.teammates.reply(
        conversation_id,
        f'<p>Your <b>label</b> is ready:</p><p><img src="{image}"></p>',
        admin_id="991267602",
    )
    await eventually(lambda: len(notes(stack)) == 1 and settled(stack))
    await stack.whatsapp(PHONE, "Great, send it")
    await eventually(lambda: len(stack.sent()) == 3 and len(notes(stack)) == 2)
    assert [(m.type, m.text or m.media_url) for m in stack.sent()[1:]] == [
        ("text", "Grace Teammate: Your *label* is ready:"),
        ("image", image),
    ]


async def test_a_reply_outside_the_window_without_a_template_leaves_a_note(stack: Stack) -> None:
    conversation_id = await conversation_with(stack, datetime.now(UTC) - timedelta(hours=25))
    await stack.sandbox.intercom.teammates.reply(conversation_id, "Hello?")
    await eventually(lambda: len(notes(stack)) == 1 and settled(stack))
    assert "24-hour" in notes(stack)[0]
    assert stack.sent() == []


async def test_an_unapproved_reengagement_template_leaves_a_note_and_holds_nothing(
    database_url: str, tmp_path: Path
) -> None:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        whatsapp_reengagement_template="2023_april_promo",
    ) as stack:
        conversation_id = await conversation_with(stack, datetime.now(UTC) - timedelta(hours=25))
        await stack.sandbox.intercom.teammates.reply(conversation_id, "Hello?")
        await eventually(lambda: len(notes(stack)) == 1 and settled(stack))
        assert "not approved (status REJECTED)" in notes(stack)[0]
        await stack.whatsapp(PHONE, "hi again")
        await eventually(lambda: len(parts(stack)) == 4 and settled(stack))
        await trio.sleep(0.3)
        assert stack.sent() == []


def test_a_reengagement_template_needs_the_business_account() -> None:
    settings = Settings(
        _env_file=None,
        intercom_access_token=SecretStr("a-real-looking-token"),
        whatsapp_access_token=SecretStr("a-real-looking-token"),
        whatsapp_reengagement_template="conversation_reopen",
    )
    with pytest.raises(ConfigurationError, match="THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID"):
        check_settings(settings)


@pytest.mark.slow
async def test_a_crash_while_the_reengagement_template_is_sent_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """The re-engagement template is accepted but its answer trickles out, and the process is
    killed meanwhile: after the restart the template (its outcome lost) is not sent again, the
    reply is held all the same, notes say so, and it goes out once after the answer."""
    sandbox = SandboxApp()
    customer = "18880000001"
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        database = f"sqlite:///{tmp_path / 'threadline.db'}"
        env = serve_env(
            address.url, database, tmp_path, retry_max_attempts="1000",
            whatsapp_reengagement_template="conversation_reopen",
        )  # fmt: skip
        bridge = ServeProcess(env, tmp_path / "serve.log")
        await bridge.start()
        sandbox.intercom.configure(webhook_url=f"{bridge.url}/webhooks/intercom")

        async def customer_writes(text: str, sent_at: datetime, message_id: str) -> None:
            sandbox.providers.customer_wrote(customer, sent_at.timestamp())
            message = WhatsAppInbound(
                from_phone=customer, text=text, message_id=message_id, sent_at=sent_at
            )
            hook = whatsapp_webhook(SANDBOX_SECRETS.whatsapp_app_secret, ACCOUNT, [message])
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.post(
                    f"{bridge.url}/webhooks/whatsapp", content=hook.body, headers=hook.headers
                )
            assert answer.status_code == 200

        def conversation_notes() -> list[str]:
            return [
                str(p["body"])
                for p in sandbox.intercom.conversations()[0]["parts"]
                if p["part_type"] == "note"
            ]

        await customer_writes("hello", datetime.now(UTC) - timedelta(hours=25), "wamid.c1")
        await eventually(lambda: len(sandbox.intercom.conversations()) == 1)
        await trio.sleep(0.5)  # the entry's completion (and the conversation index) committed
        conversation_id = str(sandbox.intercom.conversations()[0]["id"])
        sandbox.providers.fail(Channel.WHATSAPP, customer, SandboxFailure.SLOW_ANSWER, times=1)
        await sandbox.intercom.teammates.reply(conversation_id, "Found it!")
        await eventually(lambda: len(sandbox.providers.sent()) == 1, seconds=20)
        await trio.sleep(0.5)  # the template was accepted; its answer is still on its way
        await bridge.kill()
        await bridge.start()
        await eventually(lambda: len(conversation_notes()) == 2, seconds=30)
        await customer_writes("What did you find?", datetime.now(UTC), "wamid.c2")
        await eventually(lambda: len(sandbox.providers.sent()) == 2, seconds=30)
        await trio.sleep(1.0)
        await bridge.stop()
        nursery.cancel_scope.cancel()
    sent = [(m.type, m.template or m.text) for m in sandbox.providers.sent()]
    assert sent == [("template", "conversation_reopen"), ("text", "Ada Operator: Found it!")]
    notes = conversation_notes()
    assert "holds this reply" in notes[0]
    assert "may not have reached the customer" in notes[1]
    assert "delivered the 1 reply(ies)" in notes[2]


async def test_a_reply_to_a_customer_who_never_wrote_waits_for_their_answer(
    reengaging: Stack,
) -> None:
    """The send API started the conversation with a template and the customer has not answered
    yet: WhatsApp would refuse free-form text, so a teammate's follow-up is held (behind the
    re-engagement template) until they answer."""
    stack = reengaging
    assert (await send(stack, template=ORDER_UPDATE)).status_code == 200
    await eventually(lambda: len(parts(stack)) == 2 and settled(stack))
    conversation_id = str(stack.conversations()[0]["id"])
    await stack.sandbox.intercom.teammates.reply(conversation_id, "Any questions?")
    await eventually(lambda: len(notes(stack)) == 1 and settled(stack))
    assert "holds this reply" in notes(stack)[0]
    assert [m.template for m in stack.sent()] == ["order_update", "conversation_reopen"]
    await stack.whatsapp(PHONE, "Yes: where is it now?")
    await eventually(lambda: len(stack.sent()) == 3 and settled(stack))
    assert stack.sent()[-1].text == "Ada Operator: Any questions?"
