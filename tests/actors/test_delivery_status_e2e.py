"""Delivery failures reported after a provider accepted a send: never silent.

The sandbox providers accept a send scripted ``failed_later`` and then post a signed status
webhook to the bridge over HTTP (WhatsApp ``failed`` with its ``errors[]``, Twilio
``undelivered`` with ``ErrorCode`` to the send's ``StatusCallback``), as the providers do. The
bridge leaves one internal note in the conversation, however often the webhook comes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.tools import PUBLIC_URL, SANDBOX_SECRETS, SandboxApp, Stack
from channels import Channel
from channels.sandbox import (
    SandboxFailure,
    twilio_message_webhook,
    twilio_status_webhook,
    whatsapp_status_webhook,
)
from runtime import hypercorn_config, serve_asgi
from tests.actors.conftest import eventually
from tests.actors.customers import webhook
from tests.actors.processes import ServeProcess, serve_env

PHONE = "15550001111"
SMS_PHONE = "+15550003333"
DEFAULT_OPERATOR = "991267601"


def notes(stack: Stack) -> list[dict[str, Any]]:
    (conversation,) = stack.conversations()
    return [p for p in conversation["parts"] if p["part_type"] == "note"]


def part_count(stack: Stack) -> int:
    conversations = stack.conversations()
    return len(conversations[0]["parts"]) if len(conversations) == 1 else 0


def idle(stack: Stack) -> bool:
    return stack.node.dispatcher.inflight == 0


def metric(stack: Stack, name: str, **labels: str) -> float:
    return stack.node.registry.get_sample_value(name, labels) or 0.0


async def conversation_with(stack: Stack, send: Any) -> str:  # noqa: ANN401 - a coroutine
    response = await send
    assert response.status_code == 200, response.text
    await eventually(lambda: part_count(stack) == 1 and idle(stack))
    (conversation,) = stack.conversations()
    return str(conversation["id"])


async def redeliver_posted(stack: Stack, times: int) -> None:
    """Post the status webhooks the sandbox delivered again, byte for byte, as a provider
    redelivering them would."""
    posted = stack.sandbox.providers.posted_webhooks()
    assert posted
    for _ in range(times):
        for hook in posted:
            path = hook.url.removeprefix(str(stack.http.base_url).rstrip("/"))
            response = await stack.http.post(path, content=hook.body, headers=hook.headers)
            assert response.status_code == 200, response.text


async def test_a_whatsapp_failed_status_leaves_one_note_with_the_error(stack: Stack) -> None:
    conversation_id = await conversation_with(stack, stack.whatsapp(PHONE, "hello"))
    stack.sandbox.providers.fail(Channel.WHATSAPP, PHONE, SandboxFailure.FAILED_LATER, times=1)
    await stack.sandbox.intercom.teammates.reply(
        conversation_id, "Your refund is on its way", admin_id="991267602"
    )
    await eventually(lambda: len(notes(stack)) == 1 and idle(stack))
    (sent,) = stack.sent()  # accepted by the provider...
    (posted,) = stack.sandbox.providers.posted_webhooks()  # ...then reported failed
    assert posted.status == 200
    assert sent.message_id.encode() in posted.body
    (note,) = notes(stack)
    assert note["author_id"] == DEFAULT_OPERATOR  # unassigned: the default operator
    body = " ".join(str(note["body"]).split())
    assert "did not reach the customer" in body
    assert "WhatsApp" in body
    assert "error 131026: Message undeliverable" in body
    assert "Grace Teammate: Your refund is on its way" in body
    labels = {"channel": "whatsapp"}
    assert metric(stack, "threadline_delivery_failures_total", outcome="noted", **labels) == 1
    assert metric(stack, "threadline_delivery_statuses_total", status="failed", **labels) == 1

    # The provider redelivers the same webhook twice: still one note.
    await redeliver_posted(stack, times=2)
    await trio.sleep(0.5)
    await eventually(lambda: idle(stack))
    assert len(notes(stack)) == 1
    assert metric(stack, "threadline_delivery_statuses_total", status="failed", **labels) == 3
    assert metric(stack, "threadline_delivery_failures_total", outcome="noted", **labels) == 1


async def test_a_twilio_undelivered_status_leaves_one_note_as_the_assignee(stack: Stack) -> None:
    conversation_id = await conversation_with(stack, stack.sms(SMS_PHONE, "hi"))
    teammates = stack.sandbox.intercom.teammates
    await teammates.assign(conversation_id, "991267603")
    stack.sandbox.providers.fail(Channel.TWILIO, SMS_PHONE, SandboxFailure.FAILED_LATER, times=1)
    await teammates.reply(conversation_id, "We shipped it today", admin_id="991267603")
    await eventually(lambda: len(notes(stack)) == 1 and idle(stack))
    (posted,) = stack.sandbox.providers.posted_webhooks()
    assert posted.status == 200
    assert b"MessageStatus=undelivered" in posted.body
    assert b"ErrorCode=30003" in posted.body
    (note,) = notes(stack)
    assert note["author_id"] == "991267603"  # the assignee
    body = " ".join(str(note["body"]).split())
    assert "Twilio (SMS) accepted it, then reported it undelivered" in body
    assert "error 30003: Unreachable destination handset" in body
    assert "We shipped it today" in body

    await redeliver_posted(stack, times=2)
    await trio.sleep(0.5)
    await eventually(lambda: idle(stack))
    assert len(notes(stack)) == 1
    labels = {"channel": "twilio"}
    assert metric(stack, "threadline_delivery_statuses_total", status="undelivered", **labels) == 3
    assert metric(stack, "threadline_delivery_failures_total", outcome="noted", **labels) == 1


async def test_a_send_api_message_that_fails_later_is_noted_too(stack: Stack) -> None:
    await conversation_with(stack, stack.whatsapp(PHONE, "hello"))
    stack.sandbox.providers.fail(
        Channel.WHATSAPP, PHONE, SandboxFailure.FAILED_LATER, times=1, error_code=131049
    )
    response = await stack.http.post(
        "/api/messages",
        json={
            "channel": "whatsapp",
            "account": SANDBOX_SECRETS.whatsapp_phone_number_id,
            "customer": PHONE,
            "attachments": [
                {"url": "https://files.example/invoice-7.pdf", "mime_type": "application/pdf"}
            ],
        },
        headers={"authorization": "Bearer sandbox-api-token"},
    )
    assert response.status_code == 200, response.text
    await eventually(lambda: len(notes(stack)) == 1 and idle(stack))
    body = " ".join(str(notes(stack)[0]["body"]).split())
    assert "error 131049: Meta chose not to deliver" in body
    assert "the attachment “invoice-7.pdf”" in body


async def test_a_template_that_fails_later_is_noted_too(stack: Stack) -> None:
    await conversation_with(stack, stack.whatsapp(PHONE, "hello"))
    stack.sandbox.providers.fail(Channel.WHATSAPP, PHONE, SandboxFailure.FAILED_LATER, times=1)
    response = await stack.http.post(
        "/api/messages",
        json={
            "channel": "whatsapp",
            "account": SANDBOX_SECRETS.whatsapp_phone_number_id,
            "customer": PHONE,
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        },
        headers={"authorization": "Bearer sandbox-api-token"},
    )
    assert response.status_code == 200, response.text
    await eventually(lambda: len(notes(stack)) == 1 and idle(stack))
    body = " ".join(str(notes(stack)[0]["body"]).split())
    assert "the WhatsApp template hello_world (en_US)" in body


async def test_delivered_and_read_statuses_are_counted_and_leave_no_part(stack: Stack) -> None:
    conversation_id = await conversation_with(stack, stack.whatsapp(PHONE, "hello"))
    await stack.sandbox.intercom.teammates.reply(conversation_id, "Thanks!")
    await eventually(lambda: len(stack.sent()) == 1 and idle(stack))
    (sent,) = stack.sent()
    parts_before = part_count(stack)
    for status in ("sent", "delivered", "read"):
        receipt = whatsapp_status_webhook(
            SANDBOX_SECRETS.whatsapp_app_secret,
            SANDBOX_SECRETS.whatsapp_phone_number_id,
            PHONE,
            sent.message_id,
            status,
        )
        assert (await stack.post("/webhooks/whatsapp", receipt)).status_code == 200
    await trio.sleep(0.5)
    await eventually(lambda: idle(stack))
    assert part_count(stack) == parts_before
    for status in ("sent", "delivered", "read"):
        value = metric(
            stack, "threadline_delivery_statuses_total", channel="whatsapp", status=status
        )
        assert value == 1, status


async def test_a_failure_of_an_unknown_message_is_acknowledged_and_only_counted(
    stack: Stack,
) -> None:
    await conversation_with(stack, stack.sms(SMS_PHONE, "hi"))
    parts_before = part_count(stack)
    creds = stack.sandbox.providers.credentials
    url = f"{PUBLIC_URL}/webhooks/twilio"
    for to in (SMS_PHONE, "+15550009999"):  # a bridged customer, and someone else
        receipt = twilio_status_webhook(
            creds.twilio_auth_token,
            url,
            account_sid=creds.twilio_account_sid,
            to=to,
            from_=SANDBOX_SECRETS.twilio_number,
            message_sid=f"SM{'e' * 31}{to[-1]}",  # never sent by the bridge
            status="failed",
            error_code=30005,
        )
        response = await stack.post("/webhooks/twilio", receipt)
        assert response.status_code == 200, response.text
    await trio.sleep(0.5)
    await eventually(lambda: idle(stack))
    assert part_count(stack) == parts_before
    assert stack.sent() == []
    labels = {"channel": "twilio"}
    assert metric(stack, "threadline_delivery_failures_total", outcome="unknown", **labels) == 2
    assert metric(stack, "threadline_delivery_failures_total", outcome="noted", **labels) == 0
    assert metric(stack, "threadline_delivery_statuses_total", status="failed", **labels) == 2


async def test_a_failure_naming_a_message_another_account_sent_is_not_noted(
    stack: Stack,
) -> None:
    # A receipt signed for one business number, naming a message the bridge sent from another,
    # puts no note in the other number's conversation, nor in its own customer's.
    other = "+15550008888"  # a second business number of the same Twilio account
    first = await conversation_with(stack, stack.sms(SMS_PHONE, "hi"))
    await stack.sandbox.intercom.teammates.reply(first, "Sent!", admin_id="991267602")
    await eventually(lambda: len(stack.sent()) == 1 and idle(stack))
    (sent,) = stack.sent()
    creds = stack.sandbox.providers.credentials
    url = f"{PUBLIC_URL}/webhooks/twilio"
    sid = creds.twilio_account_sid
    hello = twilio_message_webhook(
        creds.twilio_auth_token, url, account_sid=sid, to=other, from_=SMS_PHONE,
        body="hi other", message_sid="SM" + "7" * 32,
    )  # fmt: skip
    assert (await stack.post("/webhooks/twilio", hello)).status_code == 200
    await eventually(lambda: len(stack.conversations()) == 2 and idle(stack))
    parts_before = [len(c["parts"]) for c in stack.conversations()]
    receipt = twilio_status_webhook(
        creds.twilio_auth_token, url, account_sid=sid, to=SMS_PHONE, from_=other,
        message_sid=sent.message_id, status="failed", error_code=30005,
    )  # fmt: skip
    assert (await stack.post("/webhooks/twilio", receipt)).status_code == 200
    await trio.sleep(0.5)
    await eventually(lambda: idle(stack))
    assert [len(c["parts"]) for c in stack.conversations()] == parts_before
    labels = {"channel": "twilio"}
    assert metric(stack, "threadline_delivery_failures_total", outcome="noted", **labels) == 0
    assert metric(stack, "threadline_delivery_failures_total", outcome="unknown", **labels) == 1
    # The sending number's own report of it is noted all the same (its dedupe id not spent).
    genuine = twilio_status_webhook(
        creds.twilio_auth_token, url, account_sid=sid, to=SMS_PHONE,
        from_=SANDBOX_SECRETS.twilio_number, message_sid=sent.message_id, status="failed",
        error_code=30005,
    )  # fmt: skip
    assert (await stack.post("/webhooks/twilio", genuine)).status_code == 200
    await eventually(lambda: metric(stack, "threadline_delivery_failures_total",
                                    outcome="noted", **labels) == 1)  # fmt: skip
    await eventually(lambda: idle(stack))
    first_parts = next(c["parts"] for c in stack.conversations() if str(c["id"]) == first)
    assert [p["part_type"] for p in first_parts][-1] == "note"


@pytest.mark.slow
async def test_a_crash_while_a_failure_is_being_noted_leaves_one_note(
    database_url: str, tmp_path: Path
) -> None:
    """The failed status is acknowledged (journaled), and the process is killed while the note
    is on its way (Intercom holds the request): after the restart the note is written, once,
    and the provider's redeliveries to the new process add nothing."""
    sandbox = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        env = serve_env(address.url, database_url, tmp_path, retry_max_attempts="1000")
        bridge = ServeProcess(env, tmp_path / "serve.log")
        await bridge.start()
        sandbox.intercom.configure(webhook_url=f"{bridge.url}/webhooks/intercom")
        sandbox.providers.configure_webhooks(
            bridge.url, whatsapp_app_secret=SANDBOX_SECRETS.whatsapp_app_secret
        )
        async with httpx.AsyncClient(timeout=5) as client:
            hook = webhook("crash-status", 1, 0)
            posted = await client.post(
                f"{bridge.url}/webhooks/whatsapp", content=hook.body, headers=hook.headers
            )
            assert posted.status_code == 200
        await eventually(lambda: len(sandbox.intercom.conversations()) == 1)
        await trio.sleep(0.5)  # the entry's completion (and the conversation index) committed
        conversation_id = str(sandbox.intercom.conversations()[0]["id"])
        customer = "18880000001"
        sandbox.providers.fail(Channel.WHATSAPP, customer, SandboxFailure.FAILED_LATER, times=1)
        # Sending the reply needs no Intercom call; noting its failure does: held open.
        sandbox.intercom.configure(timeout_rate=1.0, timeout_hold_seconds=60)
        await sandbox.intercom.teammates.reply(conversation_id, "one moment please")
        await eventually(lambda: len(sandbox.providers.posted_webhooks()) == 1, seconds=20)
        assert sandbox.providers.posted_webhooks()[0].status == 200  # durable: acknowledged
        await eventually(lambda: sandbox.intercom.stats()["timeouts"] >= 1, seconds=20)
        await bridge.kill()
        sandbox.intercom.configure(timeout_rate=0.0)

        def noted() -> list[dict[str, Any]]:
            conversation = sandbox.intercom.conversations()[0]
            return [p for p in conversation["parts"] if p["part_type"] == "note"]

        await bridge.start()
        await eventually(lambda: len(noted()) == 1, seconds=30)
        (status,) = sandbox.providers.posted_webhooks()
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(2):
                again = await client.post(
                    f"{bridge.url}/webhooks/whatsapp", content=status.body, headers=status.headers
                )
                assert again.status_code == 200
        await trio.sleep(1.5)
        await bridge.stop()
        nursery.cancel_scope.cancel()
    assert len(sandbox.providers.sent()) == 1
    (note,) = noted()
    assert "one moment please" in note["body"]
    assert "131026" in note["body"]


async def test_a_failure_with_an_id_the_bridge_never_hands_out_is_acknowledged(
    stack: Stack,
) -> None:
    """An id far longer than any provider's (the journal's keys are bounded) is nobody's
    message: acknowledged and counted, never a 400 that would refuse its whole batch."""
    await conversation_with(stack, stack.whatsapp(PHONE, "hello"))
    receipt = whatsapp_status_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret,
        SANDBOX_SECRETS.whatsapp_phone_number_id,
        PHONE,
        "wamid." + "x" * 600,
        "failed",
        error_code=131026,
    )
    response = await stack.post("/webhooks/whatsapp", receipt)
    assert response.status_code == 200, response.text
    labels = {"channel": "whatsapp", "outcome": "unknown"}
    assert metric(stack, "threadline_delivery_failures_total", **labels) == 1
    await trio.sleep(0.3)
    await eventually(lambda: idle(stack))
    assert part_count(stack) == 1
