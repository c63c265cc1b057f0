"""A teammate's message written while closing, assigning, snoozing or opening a conversation
reaches the customer like a reply, once and in part order; the state change alone sends
nothing. End to end: the sandbox Intercom's teammates act and deliver signed webhooks to the
bridge over HTTP, on both stores."""

from __future__ import annotations

import time
from typing import Any

import trio

from actors.tools import Stack
from channels import Channel
from tests.actors.conftest import eventually

PHONE = "15550001111"
GRACE = "991267602"


def _only(stack: Stack) -> dict[str, Any]:
    (conversation,) = stack.conversations()
    return conversation


async def _conversation(stack: Stack) -> str:
    await stack.whatsapp(PHONE, "hello?")
    await eventually(
        lambda: len(stack.conversations()) == 1 and stack.node.dispatcher.inflight == 0
    )
    return str(_only(stack)["id"])


def _texts(stack: Stack) -> list[str | None]:
    return [m.text for m in stack.sent()]


async def test_close_with_a_message_reaches_the_customer_and_a_plain_close_does_not(
    stack: Stack,
) -> None:
    conversation_id = await _conversation(stack)
    teammates = stack.sandbox.intercom.teammates
    closed = await teammates.close(conversation_id, admin_id=GRACE, body="Closed — thanks!")
    assert closed.delivery is not None
    assert closed.delivery.status == 200
    assert closed.delivery.topic == "conversation.admin.closed"
    await eventually(lambda: len(stack.sent()) == 1)
    (sent,) = stack.sent()
    assert sent.channel is Channel.WHATSAPP
    assert sent.to == PHONE
    assert sent.text == "Grace Teammate: Closed — thanks!"
    # A plain close (no message), an opening and a close with only blanks send nothing.
    await teammates.open(conversation_id, admin_id=GRACE)
    await teammates.close(conversation_id, admin_id=GRACE)
    await teammates.open(conversation_id, admin_id=GRACE)
    await teammates.close(conversation_id, admin_id=GRACE, body="<p> </p>")
    await teammates.reply(conversation_id, "one more thing", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) == 2)
    await trio.sleep(0.3)
    assert _texts(stack) == ["Grace Teammate: Closed — thanks!", "Grace Teammate: one more thing"]


async def test_assign_snooze_and_open_with_a_message_each_go_out_once_in_order(
    stack: Stack,
) -> None:
    conversation_id = await _conversation(stack)
    teammates = stack.sandbox.intercom.teammates
    assigned = await teammates.assign(
        conversation_id, "991267603", admin_id=GRACE, body="Passing you to Linus."
    )
    assert assigned.part["part_type"] == "assignment"
    snoozed = await teammates.snooze(
        conversation_id, int(time.time()) + 3600, admin_id="991267603", body="Back in an hour."
    )
    assert snoozed.delivery is not None
    assert snoozed.delivery.topic == "conversation.admin.snoozed"
    opened = await teammates.open(conversation_id, admin_id="991267603", body="I'm back.")
    assert opened.delivery is not None
    assert opened.delivery.topic == "conversation.admin.opened"
    await teammates.close(conversation_id, admin_id="991267603")
    reopened = await teammates.assign(
        conversation_id, GRACE, admin_id="991267603", body="Grace takes it from here."
    )
    assert reopened.part["part_type"] == "assign_and_reopen"
    assert reopened.delivery is not None
    assert reopened.delivery.topic == "conversation.admin.open.assigned"
    await eventually(lambda: len(stack.sent()) == 4)
    await trio.sleep(0.3)
    assert _texts(stack) == [
        "Grace Teammate: Passing you to Linus.",
        "Linus Teammate: Back in an hour.",
        "Linus Teammate: I'm back.",
        "Linus Teammate: Grace takes it from here.",
    ]


async def test_a_close_message_whose_webhook_is_missed_goes_out_before_the_next_reply(
    stack: Stack,
) -> None:
    """Intercom's webhooks carry no order and may be late: a later reply first sends the
    teammate messages before it that were not sent yet — a close with a message among them."""
    conversation_id = await _conversation(stack)
    intercom = stack.sandbox.intercom
    await intercom.teammates.reply(conversation_id, "first", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) == 1)
    topics = intercom.core.config.webhook_topics
    intercom.configure(webhook_topics=topics - {"conversation.admin.closed"})
    await intercom.teammates.close(conversation_id, admin_id=GRACE, body="Closing, bye!")
    await intercom.teammates.reply(conversation_id, "Oh, one last thing", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) == 3)
    await trio.sleep(0.3)
    assert _texts(stack) == [
        "Grace Teammate: first",
        "Grace Teammate: Closing, bye!",
        "Grace Teammate: Oh, one last thing",
    ]


async def test_a_reply_notified_before_the_bridge_recorded_the_new_conversation_is_sent(
    stack: Stack,
) -> None:
    """Intercom created the conversation but its answer to the bridge is still on its way
    when a teammate (or a workflow) replies in it: the reply's webhook finds no index yet. The
    thread's opening marker makes the ingress wait for the index instead of ignoring the reply
    as one to a conversation the bridge does not bridge."""
    stack.sandbox.intercom.configure(answer_delay_seconds=1.0)
    await stack.whatsapp(PHONE, "hello?")  # acknowledged once journaled
    await eventually(lambda: len(stack.conversations()) == 1, seconds=20)
    conversation_id = str(_only(stack)["id"])
    replied = await stack.sandbox.intercom.teammates.reply(
        conversation_id, "Hi! How can we help?", admin_id=GRACE
    )
    assert replied.delivery is not None
    assert replied.delivery.status == 200, replied.delivery
    stack.sandbox.intercom.configure(answer_delay_seconds=0.0)
    await eventually(lambda: len(stack.sent()) == 1, seconds=20)
    assert _texts(stack) == ["Grace Teammate: Hi! How can we help?"]
