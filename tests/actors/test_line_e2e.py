"""LINE end to end (issue 21): the bridge with the sandboxes on loopback, both stores.

A customer's first message opens a conversation (the contact found by its ``line_user_id``
custom attribute), the next continues it, a file arrives as an attachment; a teammate's reply
goes out with their name, with the reply token while it is fresh and by push after; an
``unfollow`` (the customer blocked the account) is shown with a note and later replies leave a
note instead; a reply token LINE refuses is answered by exactly one push."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from actors.tools import SANDBOX_SECRETS, LoadPlan, Stack, Target, load_webhook
from channels import Channel, parse_line, verify_line_signature
from channels.sandbox import SandboxFailure, WebhookMedia, line_event, line_events_webhook
from tests.actors.conftest import eventually, quick_stack
from tests.actors.test_bridge_e2e import bodies, only, part_count

USER = "U" + "1f" * 16
GRACE = "991267602"  # "Grace Teammate" in the Intercom sandbox
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 2048


def _notes(stack: Stack) -> list[str]:
    return [str(p["body"]) for p in only(stack)["parts"] if p["part_type"] == "note"]


async def _opened(stack: Stack) -> str:
    await eventually(lambda: len(stack.conversations()) == 1)
    return str(stack.conversations()[0]["id"])


async def test_first_message_opens_a_conversation_and_the_next_continues_it(
    stack: Stack,
) -> None:
    response = await stack.line(USER, "Where is my order?")
    assert response.status_code == 200
    await _opened(stack)
    (contact,) = stack.contacts()
    assert contact["custom_attributes"] == {"line_user_id": USER}
    assert contact["phone"] is None
    await stack.line(USER, "It was due Monday")
    await eventually(lambda: part_count(stack) == 2)
    assert bodies(only(stack)) == ["Where is my order?", "It was due Monday"]
    assert len(stack.conversations()) == 1


async def test_a_redelivered_message_is_bridged_once(stack: Stack) -> None:
    await stack.line(USER, "once", message_id="600000000001")
    await stack.line(USER, "once", message_id="600000000001")
    await _opened(stack)
    await trio.sleep(0.5)
    assert bodies(only(stack)) == ["once"]


async def test_a_file_arrives_as_an_attachment(stack: Stack) -> None:
    media_id = stack.sandbox.providers.add_media(PNG, "image/png")
    await stack.line(USER, media=WebhookMedia(ref=media_id, mime_type="image/png"))
    await _opened(stack)
    await eventually(lambda: any(p.get("attachments") for p in only(stack)["parts"]))
    files = [a for p in only(stack)["parts"] for a in p.get("attachments") or []]
    assert [a["size"] for a in files] == [len(PNG)]


async def test_teammate_reply_uses_the_fresh_reply_token_once_then_pushes(stack: Stack) -> None:
    await stack.line(USER, "Hello?")
    conversation_id = await _opened(stack)
    teammates = stack.sandbox.intercom.teammates
    delivery = (
        await teammates.reply(conversation_id, "Hi, how can I help?", admin_id=GRACE)
    ).delivery
    assert delivery is not None
    assert delivery.status == 200, delivery  # journaled, not a 503 or a lost race
    await eventually(lambda: len(stack.sent()) >= 1)  # then exactly one: none doubled
    (first,) = stack.sent()
    assert (first.channel, first.to, first.via) == (Channel.LINE, USER, "reply")
    assert first.text == "Grace Teammate: Hi, how can I help?"
    await teammates.reply(conversation_id, "Still there?", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) >= 2)
    second = stack.sent()[1]
    assert len(stack.sent()) == 2
    assert (second.to, second.via, second.text) == (USER, "push", "Grace Teammate: Still there?")
    assert stack.sandbox.providers.line_invalid_replies() == []  # the used token not retried


async def test_an_expired_reply_token_falls_back_to_exactly_one_push(stack: Stack) -> None:
    await stack.line(USER, "Quick question", reply_token_seconds=0)
    conversation_id = await _opened(stack)
    await stack.sandbox.intercom.teammates.reply(conversation_id, "Answer", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) == 1)
    await trio.sleep(0.5)  # nothing else follows
    (sent,) = stack.sent()
    assert (sent.via, sent.text) == ("push", "Grace Teammate: Answer")
    assert len(stack.sandbox.providers.line_invalid_replies()) == 1  # it was tried first
    assert _notes(stack) == []


async def test_unfollow_is_noted_and_later_replies_become_notes(stack: Stack) -> None:
    await stack.line(USER, "Thanks, bye")
    conversation_id = await _opened(stack)
    bot = stack.sandbox.providers.credentials.line_bot_user_id
    secret = SANDBOX_SECRETS.line_channel_secret
    blocked = line_events_webhook(secret, bot, [line_event("unfollow", USER)])
    assert (await stack.post("/webhooks/line", blocked)).status_code == 200
    await eventually(lambda: len(_notes(stack)) == 1)
    assert "blocked the LINE account" in _notes(stack)[0]
    await stack.sandbox.intercom.teammates.reply(conversation_id, "One more thing", admin_id=GRACE)
    await eventually(lambda: len(_notes(stack)) == 2)
    assert "blocked the LINE account" in _notes(stack)[1]
    assert stack.sent() == []


@pytest.mark.parametrize("header", [None, "AAAA", "not base64 at all"])
async def test_unsigned_or_badly_signed_webhooks_are_refused(
    stack: Stack, header: str | None
) -> None:
    bot = stack.sandbox.providers.credentials.line_bot_user_id
    webhook = line_events_webhook("another-channel-secret", bot, [line_event("follow", USER)])
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["x-line-signature"] = header
    response = await stack.http.post("/webhooks/line", content=webhook.body, headers=headers)
    assert response.status_code == 401
    wrong = await stack.post("/webhooks/line", webhook)
    assert wrong.status_code == 401
    assert stack.conversations() == []


def test_the_load_generator_sends_line_threads_as_line_webhooks() -> None:
    # Every Channel is in the load test's default mix: a LINE thread must post LINE's webhook
    # (signed with the sandbox channel's secret) to /webhooks/line, not another channel's.
    plan = LoadPlan(threads=2, messages_per_thread=1, channels=("line",))
    target = Target("http://127.0.0.1:1", "https://bridge.example", "token", "AC" + "0" * 32)
    path, webhook = load_webhook(plan, target, 1, 0, time.time())
    assert path == "/webhooks/line"
    verify_line_signature(
        webhook.body, webhook.headers["x-line-signature"], SANDBOX_SECRETS.line_channel_secret
    )
    (message,) = parse_line(webhook.body)
    assert message.kind == "message"
    assert message.key.channel is Channel.LINE


async def test_a_push_answered_500_after_it_went_out_is_retried_without_a_second_message(
    stack: Stack,
) -> None:
    await stack.line(USER, "Are you open?", reply_token_seconds=0)
    conversation_id = await _opened(stack)
    providers = stack.sandbox.providers
    providers.fail(Channel.LINE, USER, SandboxFailure.ACCEPTED_THEN_ERROR, times=1)
    await stack.sandbox.intercom.teammates.reply(conversation_id, "Until 6pm", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) == 1)
    await eventually(lambda: providers.refused() == [] and stack.node.dispatcher.inflight == 0)
    await trio.sleep(1.5)  # past the delivery's retry delay: the retry has been answered 409
    assert [(m.via, m.text) for m in stack.sent()] == [("push", "Grace Teammate: Until 6pm")]
    assert _notes(stack) == []


async def test_a_push_whose_answer_times_out_is_retried_without_a_second_message(
    database_url: str, tmp_path: Path
) -> None:
    # Any other send whose answer never comes is in doubt (not repeated, a note says so); a
    # LINE push carries its retry key, so it is retried and LINE answers the repeat 409.
    async with quick_stack(database_url, tmp_path, channel_timeout_seconds=1.0) as stack:
        await stack.line(USER, "Are you open?", reply_token_seconds=0)
        conversation_id = await _opened(stack)
        providers = stack.sandbox.providers
        providers.fail(Channel.LINE, USER, SandboxFailure.LATE_ANSWER, times=1)
        await stack.sandbox.intercom.teammates.reply(conversation_id, "Until 6pm", admin_id=GRACE)
        await eventually(lambda: len(stack.sent()) >= 1 and stack.node.dispatcher.inflight == 0)
        await trio.sleep(0.5)
        assert [(m.via, m.text) for m in stack.sent()] == [("push", "Grace Teammate: Until 6pm")]
        assert _notes(stack) == []
        sends = stack.node.registry.get_sample_value(
            "threadline_channel_sends_total", {"channel": "line", "outcome": "sent"}
        )
        assert sends == 1
