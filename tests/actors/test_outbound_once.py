"""Outbound exactly once: a message to a customer is sent once, even when a later step of its
entry (recording it in Intercom, the next attachment) fails and is retried; after a crash
between steps, what may have been sent is not sent again, and a note says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from actors.tools import SandboxApp, Stack, open_stack
from channels import Channel
from channels.sandbox import SandboxFailure
from runtime import hypercorn_config, serve_asgi
from tests.actors.conftest import eventually
from tests.actors.customers import webhook
from tests.actors.processes import ServeProcess, serve_env
from tests.actors.test_bridge_e2e import PHONE, only, part_count, parts, settled

API_HEADERS = {"authorization": "Bearer sandbox-api-token"}
FILES = [("a.png", "image/png", b"\x89PNG first"), ("b.pdf", "application/pdf", b"%PDF second")]


def admin_parts(conversation: dict[str, Any], body: str) -> list[dict[str, Any]]:
    return [p for p in parts(conversation) if p["author_type"] == "admin" and p["body"] == body]


async def test_send_api_during_an_intercom_outage_sends_once_and_records_once(
    stack: Stack,
) -> None:
    await stack.whatsapp(PHONE, "hello")
    await eventually(lambda: settled(stack, 1))
    stack.sandbox.intercom.configure(error_rate=1.0)  # every Intercom call answers 5xx
    response = await stack.http.post(
        "/api/messages",
        json={"channel": "whatsapp", "account": "100000000000001", "customer": PHONE,
              "text": "Your order shipped"},
        headers=API_HEADERS,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    await eventually(lambda: len(stack.sent()) == 1)
    # Recording it in Intercom fails and is retried meanwhile: the outage ends after two of
    # those failures (the stack allows ten attempts; a fixed outage time let jittered backoffs
    # spend all ten once in fifteen runs).
    errors = stack.sandbox.intercom.core.stats
    await eventually(lambda: errors.server_errors >= 2)
    stack.sandbox.intercom.configure(error_rate=0.0)
    await eventually(lambda: part_count(stack) == 2)
    await eventually(lambda: stack.node.dispatcher.inflight == 0)
    await trio.sleep(0.3)
    assert [m.text for m in stack.sent()] == ["Your order shipped"]
    assert len(admin_parts(only(stack), "Your order shipped")) == 1
    assert await stack.node.journal.dead_letters() == []


async def test_a_429_on_the_second_piece_of_a_reply_does_not_resend_the_first(
    stack: Stack,
) -> None:
    await stack.whatsapp(PHONE, "send me the files")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    # The text goes out; the first attachment is answered 429 twice, then accepted.
    stack.sandbox.providers.fail(
        Channel.WHATSAPP, PHONE, SandboxFailure.RATE_LIMITED, times=2, after=1, retry_after=0
    )
    await stack.sandbox.intercom.teammates.reply(
        conversation_id, "here they are", attachments=FILES
    )
    await eventually(lambda: len(stack.sent()) == 3)
    await eventually(lambda: stack.node.dispatcher.inflight == 0)
    await trio.sleep(0.3)
    assert [m.type for m in stack.sent()] == ["text", "image", "document"]


async def test_a_send_whose_answer_times_out_is_not_repeated_and_leaves_a_note(
    database_url: str, tmp_path: Path
) -> None:
    """WhatsApp accepts the text but answers after the bridge's 1-s provider timeout: the text
    may have gone out (it did), so it is not sent again; the attachments after it are sent
    (two: one alone would carry the text as its caption), and a note says the text may not have
    reached the customer."""
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=2.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        channel_timeout_seconds=1.0,
        retry_max_attempts=1,  # a send in doubt is not a failure: it spends no attempt
    ) as stack:
        await stack.whatsapp(PHONE, "hello")
        await eventually(lambda: settled(stack, 1))
        conversation_id = str(only(stack)["id"])
        stack.sandbox.providers.fail(Channel.WHATSAPP, PHONE, SandboxFailure.LATE_ANSWER, times=1)
        await stack.sandbox.intercom.teammates.reply(
            conversation_id, "one moment", attachments=FILES
        )
        await eventually(lambda: any(p["part_type"] == "note" for p in parts(only(stack))))
        await eventually(lambda: stack.node.dispatcher.inflight == 0)
        await trio.sleep(0.5)
        sent = [(m.type, m.text) for m in stack.sent()]
        assert [kind for kind, _ in sent] == ["text", "image", "document"], sent
        assert str(sent[0][1]).endswith("one moment")
        notes = [p for p in parts(only(stack)) if p["part_type"] == "note"]
        assert len(notes) == 1
        assert "may not have reached the customer" in notes[0]["body"]
        assert await stack.node.journal.dead_letters() == []


async def test_a_crash_between_the_steps_of_a_reply_sends_nothing_twice_and_leaves_a_note(
    tmp_path: Path,
) -> None:
    """The text is sent; the provider accepts the first attachment but its answer trickles
    out, and the process is killed meanwhile: after the restart that attachment (started, its
    outcome lost) is not sent again, the next one is, and a note says the first may not have
    reached the customer."""
    sandbox = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        database = f"sqlite:///{tmp_path / 'threadline.db'}"
        env = serve_env(address.url, database, tmp_path, retry_max_attempts="1000")
        bridge = ServeProcess(env, tmp_path / "serve.log")
        await bridge.start()
        sandbox.intercom.configure(webhook_url=f"{bridge.url}/webhooks/intercom")
        async with httpx.AsyncClient(timeout=5) as client:
            hook = webhook("crash-steps", 1, 0)
            await client.post(f"{bridge.url}/webhooks/whatsapp", content=hook.body,
                              headers=hook.headers)  # fmt: skip
        await eventually(lambda: len(sandbox.intercom.conversations()) == 1)
        await trio.sleep(0.5)  # the entry's completion (and the conversation index) committed
        conversation_id = str(sandbox.intercom.conversations()[0]["id"])
        customer = "18880000001"
        sandbox.providers.fail(  # the send after the text: accepted, answered slowly
            Channel.WHATSAPP, customer, SandboxFailure.SLOW_ANSWER, times=1, after=1
        )
        await sandbox.intercom.teammates.reply(conversation_id, "one moment", attachments=FILES)
        await eventually(lambda: len(sandbox.providers.sent()) == 2, seconds=20)
        await trio.sleep(0.5)  # the attachment was accepted; its answer is still on its way
        await bridge.kill()
        sandbox.providers.clear_failures()
        await bridge.start()
        await eventually(
            lambda: any(
                p["part_type"] == "note" for p in sandbox.intercom.conversations()[0]["parts"]
            ),
            seconds=30,
        )
        await trio.sleep(1.0)
        await bridge.stop()
        nursery.cancel_scope.cancel()
    sent = [(m.type, m.filename) for m in sandbox.providers.sent()]
    # The text once; the first attachment once (accepted before the crash, in doubt after it,
    # not sent again); the second, never started before the crash, after it.
    assert sent == [("text", None), ("image", None), ("document", "b.pdf")]
    notes = [p for p in sandbox.intercom.conversations()[0]["parts"] if p["part_type"] == "note"]
    assert len(notes) == 1
    assert "may not have reached the customer" in notes[0]["body"]


async def test_replies_whose_webhooks_arrive_in_reverse_go_out_in_part_order(
    stack: Stack,
) -> None:
    await stack.whatsapp(PHONE, "hello")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    intercom = stack.sandbox.intercom
    await intercom.teammates.reply(conversation_id, "zero")  # delivered: the thread has sent one
    await eventually(lambda: len(stack.sent()) == 1)
    webhook_url = intercom.core.config.webhook_url
    intercom.configure(webhook_url=None)  # the next two replies' webhooks are held back
    for body in ("first", "second", "third"):
        await intercom.teammates.reply(conversation_id, body)
    intercom.configure(webhook_url=webhook_url)
    conversation = intercom.core.state.live_conversation(conversation_id)
    first, second, third = conversation.parts[-3:]
    async with httpx.AsyncClient(timeout=5) as http:
        for part in (third, first, second):  # Intercom promises no order
            item = intercom.core.conversation_item(conversation, [part])
            delivery = await intercom.teammates.deliver(
                http, "conversation.admin.replied", conversation_id, item
            )
            assert delivery.status == 200
    await eventually(lambda: len(stack.sent()) == 4)
    await eventually(lambda: stack.node.dispatcher.inflight == 0)
    await trio.sleep(0.3)
    assert [m.text for m in stack.sent()] == [
        f"Ada Operator: {body}" for body in ("zero", "first", "second", "third")
    ]


async def test_the_first_replies_of_a_thread_arriving_in_reverse_are_both_sent(
    stack: Stack,
) -> None:
    """With no reply sent yet there is no order to keep, but a late webhook's part must still
    go out: only a part recorded as sent is ever skipped."""
    await stack.whatsapp(PHONE, "hello")
    await eventually(lambda: settled(stack, 1))
    conversation_id = str(only(stack)["id"])
    intercom = stack.sandbox.intercom
    webhook_url = intercom.core.config.webhook_url
    intercom.configure(webhook_url=None)
    for body in ("first", "second"):
        await intercom.teammates.reply(conversation_id, body)
    intercom.configure(webhook_url=webhook_url)
    conversation = intercom.core.state.live_conversation(conversation_id)
    first, second = conversation.parts[-2:]
    async with httpx.AsyncClient(timeout=5) as http:
        for part in (second, first):
            item = intercom.core.conversation_item(conversation, [part])
            delivery = await intercom.teammates.deliver(
                http, "conversation.admin.replied", conversation_id, item
            )
            assert delivery.status == 200
    await eventually(lambda: len(stack.sent()) == 2)
    await eventually(lambda: stack.node.dispatcher.inflight == 0)
    await trio.sleep(0.3)
    assert sorted(m.text or "" for m in stack.sent()) == [
        "Ada Operator: first", "Ada Operator: second"
    ]  # fmt: skip
