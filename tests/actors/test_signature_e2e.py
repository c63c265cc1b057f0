"""Who signs a reply on the customer's channel: the author's name; when the part has none, the
author's name from Intercom's admins API; then the default operator's; "Support" only when
none is known. The admin list is fetched once. End to end over HTTP, on both stores."""

from __future__ import annotations

import httpx
import trio

from actors.tools import Stack, open_stack
from intercom.sandbox import SandboxAdmin
from tests.actors.conftest import eventually

PHONE = "15550001111"
NAMELESS = SandboxAdmin(id="991267609", name="", email="nameless@sandbox.example")


async def _conversation(stack: Stack) -> str:
    await stack.whatsapp(PHONE, "hello?")
    await eventually(
        lambda: len(stack.conversations()) == 1 and stack.node.dispatcher.inflight == 0
    )
    return str(stack.conversations()[0]["id"])


async def test_a_reply_without_its_authors_name_is_signed_by_the_default_operator(
    stack: Stack,
) -> None:
    intercom = stack.sandbox.intercom
    intercom.core.admins[NAMELESS.id] = NAMELESS  # a teammate Intercom knows no name of
    conversation_id = await _conversation(stack)
    await intercom.teammates.reply(conversation_id, "on it", admin_id=NAMELESS.id)
    await intercom.teammates.reply(conversation_id, "done", admin_id=NAMELESS.id)
    await intercom.teammates.reply(conversation_id, "bye", admin_id="991267602")
    await eventually(lambda: len(stack.sent()) == 3)
    assert [m.text for m in stack.sent()] == [
        "Ada Operator: on it",  # THREADLINE_INTERCOM_DEFAULT_ADMIN_ID is Ada's
        "Ada Operator: done",
        "Grace Teammate: bye",
    ]
    assert intercom.stats()["requests"].get("list_admins") == 1  # fetched once, then cached


async def test_the_authors_name_is_looked_up_when_the_part_lacks_it(stack: Stack) -> None:
    intercom = stack.sandbox.intercom
    conversation_id = await _conversation(stack)
    # Linus writes a comment whose notification carries no author name (null, as Intercom
    # may send for a part made through the API): his name comes from the admins API.
    core = intercom.core
    conversation, part, topic = core.admin_action(
        conversation_id, "991267603", "comment", "again", via_api=False
    )
    part.author_name = None
    item = core.conversation_item(conversation, [part])
    async with httpx.AsyncClient(timeout=10) as http:
        delivery = await intercom.teammates.deliver(http, topic, conversation_id, item)
    assert delivery.status == 200
    await eventually(lambda: len(stack.sent()) == 1)
    assert [m.text for m in stack.sent()] == ["Linus Teammate: again"]


async def test_support_signs_only_when_no_name_is_known(database_url: str) -> None:
    async with open_stack(
        database_url=database_url, intercom_default_admin_id="991260000"
    ) as stack:
        intercom = stack.sandbox.intercom
        intercom.core.admins[NAMELESS.id] = NAMELESS
        conversation_id = await _conversation(stack)
        await intercom.teammates.reply(conversation_id, "hello", admin_id=NAMELESS.id)
        await eventually(lambda: len(stack.sent()) == 1)
        await trio.sleep(0.2)
        assert [m.text for m in stack.sent()] == ["Support: hello"]
