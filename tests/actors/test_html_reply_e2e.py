"""A teammate reply whose HTML body is malformed still reaches the customer (issue 15, 8c).

The body ``<p>x</p><![foo[bar]]>`` once made the stdlib HTML parser raise inside the signed
Intercom webhook, so the bridge answered 500 and the reply was never sent.
"""

from __future__ import annotations

import trio

from actors.tools import Stack
from channels import Channel
from tests.actors.conftest import eventually

PHONE = "15550002222"


async def test_a_reply_with_a_marked_section_is_accepted_and_sent(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "hello?")
    await eventually(
        lambda: len(stack.conversations()) == 1 and stack.node.dispatcher.inflight == 0
    )
    (conversation,) = stack.conversations()
    action = await stack.sandbox.intercom.teammates.reply(
        str(conversation["id"]), "<p>x</p><![foo[bar]]>", admin_id="991267602"
    )
    assert action.delivery is not None
    assert action.delivery.status == 200, action.delivery
    await eventually(lambda: len(stack.sent()) >= 1)
    await trio.sleep(0.3)
    (sent,) = stack.sent()
    assert sent.channel is Channel.WHATSAPP
    assert sent.to == PHONE
    assert sent.text == "Grace Teammate: x"
