"""The sandbox's test faults: ``drop_next_parts`` loses contact replies it answered 200,
``swap_next_parts`` stores two adjacent contact replies in the wrong order. Both are off by
default and count down as they fire (the load test's checker is proven against them)."""

from __future__ import annotations

import httpx

from intercom import IntercomClient
from intercom.sandbox import IntercomSandbox, SandboxConfig


async def _conversation(client: IntercomClient) -> tuple[str, str]:
    contact = await client.create_contact(role="lead", phone="+14155550199", name="Faults")
    conversation_id = await client.create_conversation(contact.contact.id, "m0", role="lead")
    return contact.contact.id, conversation_id


def _bodies(sandbox: IntercomSandbox) -> list[str]:
    parts, _ = sandbox.parts_since(0)
    return [str(p["body"]) for p in parts]


def test_test_faults_are_off_by_default() -> None:
    config = SandboxConfig()
    assert config.drop_next_parts == 0
    assert config.swap_next_parts == 0


async def test_drop_next_parts_answers_200_but_stores_nothing(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    contact_id, conversation_id = await _conversation(client)
    sandbox.configure(drop_next_parts=1)
    dropped = await client.reply_as_contact(conversation_id, contact_id, "m1")
    assert dropped.last_part is not None  # the bridge is told it worked
    await client.reply_as_contact(conversation_id, contact_id, "m2")
    assert _bodies(sandbox) == ["m0", "m2"]
    assert sandbox.config.drop_next_parts == 0
    assert sandbox.stats()["parts_dropped"] == 1


async def test_swap_next_parts_reorders_two_adjacent_replies(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    contact_id, conversation_id = await _conversation(client)
    sandbox.configure(swap_next_parts=1)
    for text in ("m1", "m2", "m3"):
        await client.reply_as_contact(conversation_id, contact_id, text)
    assert _bodies(sandbox) == ["m0", "m2", "m1", "m3"]
    conversation = sandbox.conversation(conversation_id)
    assert conversation is not None
    assert [p["body"] for p in conversation["parts"]] == ["m0", "m2", "m1", "m3"]
    assert sandbox.stats()["parts_swapped"] == 1


async def test_test_faults_are_switched_over_http(
    http: httpx.AsyncClient, sandbox: IntercomSandbox
) -> None:
    answer = await http.post("/_sandbox/config", json={"swap_next_parts": 2, "drop_next_parts": 1})
    assert answer.status_code == 200
    assert (answer.json()["swap_next_parts"], answer.json()["drop_next_parts"]) == (2, 1)
    refused = await http.post("/_sandbox/config", json={"drop_next_parts": -1})
    assert refused.status_code == 400
