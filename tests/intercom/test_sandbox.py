"""Sandbox behaviour beyond what the client exercises: teammates and their signed webhooks,
echoes of API replies, control and inspection endpoints, prefix mounting, lifespan."""

from __future__ import annotations

import base64
import random
from typing import cast

import httpx
import pytest
import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from intercom import (
    ContactEvent,
    ConversationEvent,
    IntercomClient,
    is_own_part,
    new_admin_parts,
    parse_notification,
    teammate_messages,
    verify_signature,
)
from intercom.sandbox import IntercomSandbox, SandboxApiError, SandboxConfig
from runtime import hypercorn_config, serve_asgi

from .conftest import SECRET, TOKEN, Sink, SpecLog
from .spec import Spec


async def _conversation(client: IntercomClient) -> tuple[str, str]:
    contact = await client.create_contact(role="lead", phone="+14155550123", name="Ana")
    conversation_id = await client.create_conversation(contact.contact.id, "Hi", role="lead")
    return contact.contact.id, conversation_id


async def test_teammate_reply_delivers_a_signed_valid_webhook(
    client: IntercomClient, sandbox: IntercomSandbox, sink: Sink, spec: Spec
) -> None:
    _, conversation_id = await _conversation(client)
    action = await sandbox.teammates.reply(
        conversation_id,
        "Hello from the team",
        admin_id="991267602",
        attachments=[("doc.pdf", "application/pdf", b"%PDF-1.4")],
    )
    assert action.delivery is not None
    assert action.delivery.status == 200
    ((body, signature),) = sink.received
    verify_signature(body, signature, SECRET)
    spec.validate_notification(body)
    event = parse_notification(body)
    assert isinstance(event, ConversationEvent)
    assert event.topic == "conversation.admin.replied"
    (part,) = new_admin_parts(event)
    assert part.id == action.part["id"]
    assert part.text == "Hello from the team"
    assert part.author.name == "Grace Teammate"
    assert not is_own_part(part)  # a human typed it in the inbox
    async with httpx.AsyncClient() as raw:
        assert (await raw.get(part.attachments[0].url)).content == b"%PDF-1.4"


async def test_every_teammate_action_emits_its_topic(
    client: IntercomClient, sandbox: IntercomSandbox, sink: Sink, spec: Spec
) -> None:
    _, conversation_id = await _conversation(client)
    await sandbox.teammates.note(conversation_id, "psst")
    await sandbox.teammates.assign(conversation_id, "991267603")
    await sandbox.teammates.close(conversation_id)
    await sandbox.teammates.open(conversation_id)
    topics = []
    for body, signature in sink.received:
        verify_signature(body, signature, SECRET)
        spec.validate_notification(body)
        topics.append(parse_notification(body).topic)
    assert topics == [
        "conversation.admin.noted",
        "conversation.admin.assigned",
        "conversation.admin.closed",
        "conversation.admin.opened",
    ]
    conversation = await client.get_conversation(conversation_id)
    assert conversation.admin_assignee_id == "991267603"
    assert [p.part_type for p in conversation.parts] == ["note", "assignment", "close", "open"]


async def test_api_admin_replies_echo_back_and_are_recognised_as_own(
    nursery: trio.Nursery, client: IntercomClient, sandbox: IntercomSandbox, sink: Sink
) -> None:
    await nursery.start(sandbox.run_background)
    _, conversation_id = await _conversation(client)
    sent = await client.reply_as_admin(conversation_id, "991267601", "sent by the bridge")
    with trio.fail_after(5):
        await sink.wait_for(1)
    event = parse_notification(sink.received[0][0])
    assert isinstance(event, ConversationEvent)
    (part,) = new_admin_parts(event)
    assert sent.last_part is not None
    assert part.id == sent.last_part.id
    assert is_own_part(part, own_app_package_code="threadline-sandbox")


async def test_deleting_emits_conversation_deleted(
    nursery: trio.Nursery,
    http: httpx.AsyncClient,
    client: IntercomClient,
    sandbox: IntercomSandbox,
    sink: Sink,
) -> None:
    await nursery.start(sandbox.run_background)
    _, conversation_id = await _conversation(client)
    response = await http.delete(
        f"/conversations/{conversation_id}",
        headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"},
    )
    assert response.json() == {"id": conversation_id, "object": "conversation", "deleted": True}
    with trio.fail_after(5):
        await sink.wait_for(1)
    assert parse_notification(sink.received[0][0]).topic == "conversation.deleted"


async def test_merging_emits_contact_merged_naming_the_survivor(
    nursery: trio.Nursery, client: IntercomClient, sandbox: IntercomSandbox, sink: Sink, spec: Spec
) -> None:
    await nursery.start(sandbox.run_background)
    lead = await client.create_contact(role="lead", phone="+1")
    user = await client.create_contact(role="user", external_id="u1", phone="+1")
    sandbox.merge_contacts(lead.contact.id, user.contact.id)
    with trio.fail_after(5):
        await sink.wait_for(1)
    body, signature = sink.received[0]
    verify_signature(body, signature, SECRET)
    spec.validate_notification(body)
    event = parse_notification(body)
    assert isinstance(event, ContactEvent)
    assert event.topic == "contact.merged"
    assert event.contact_id == user.contact.id
    assert [c.id for c in await client.find_contacts_by_phone("+1")] == [user.contact.id]


async def test_control_endpoints(http: httpx.AsyncClient, client: IntercomClient) -> None:
    contact_id, conversation_id = await _conversation(client)
    changed = await http.post("/_sandbox/config", json={"search_lag_seconds": 5})
    assert changed.json()["search_lag_seconds"] == 5
    refused = await http.post("/_sandbox/config", json={"error_rate": 2})
    assert refused.status_code == 400
    assert (await http.get("/_sandbox/config")).json()["error_rate"] == 0
    reply = await http.post(
        "/_sandbox/teammates/reply",
        json={
            "conversation_id": conversation_id,
            "body": "hi",
            "attachments": [
                {
                    "name": "a.txt",
                    "content_type": "text/plain",
                    "data": base64.b64encode(b"A").decode(),
                }
            ],
        },
    )
    assert reply.status_code == 200
    assert reply.json()["webhook"] is None  # no webhook URL configured
    url = reply.json()["part"]["attachments"][0]["url"]
    assert (await http.get(url)).content == b"A"
    contacts = (await http.get("/_sandbox/contacts")).json()["contacts"]
    assert [c["id"] for c in contacts] == [contact_id]
    dump = (await http.get("/_sandbox/conversations")).json()["conversations"]
    assert [p["part_type"] for p in dump[0]["parts"]] == ["source", "comment"]
    one = (await http.get(f"/_sandbox/conversations/{conversation_id}")).json()
    assert one["parts"] == dump[0]["parts"]
    first = (await http.get("/_sandbox/parts", params={"since": 0, "limit": 1})).json()
    rest = (await http.get("/_sandbox/parts", params={"since": first["next"]})).json()
    assert [p["body"] for p in first["parts"] + rest["parts"]] == ["Hi", "hi"]
    assert rest["next"] == 2
    stats = (await http.get("/_sandbox/stats")).json()
    assert stats["requests"]["create_conversation"] == 1
    assert stats["rate_limited"] == 0
    deleted = await http.post(f"/_sandbox/conversations/{conversation_id}/delete")
    assert deleted.status_code == 200
    assert (await http.get("/_sandbox/nothing")).status_code == 404
    assert (await http.post("/_sandbox/reset")).status_code == 200
    assert (await http.get("/_sandbox/contacts")).json()["contacts"] == []


async def test_rate_limit_headers_on_every_answer(
    http: httpx.AsyncClient, sandbox: IntercomSandbox
) -> None:
    sandbox.configure(rate_limit=5, rate_window_seconds=10)
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"}
    answer = await http.get("/admins", headers=headers)
    assert answer.headers["X-RateLimit-Limit"] == "5"
    assert int(answer.headers["X-RateLimit-Remaining"]) <= 4
    assert int(answer.headers["X-RateLimit-Reset"]) % 10 == 0
    missing = await http.get("/conversations/1", headers=headers)
    assert missing.status_code == 404
    assert "X-RateLimit-Remaining" in missing.headers


async def test_missing_token_is_unauthorized(sandbox_url: str, spec: Spec) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        answer = await http.get("/me")
    assert answer.status_code == 401
    spec.validate_schema("error", answer.json())
    assert answer.json()["errors"][0]["code"] == "unauthorized"


async def test_unknown_version_is_refused(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        answer = await http.get(
            "/me", headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "9.9"}
        )
    assert answer.status_code == 400


def _strip_prefix(app: IntercomSandbox, prefix: str) -> ASGIFramework:
    """A minimal router as ``threadline sandbox`` will have: strip the prefix, set root_path."""

    async def router(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http":
            path = scope["path"].removeprefix(prefix)
            scope = cast("HTTPScope", {**scope, "path": path, "root_path": prefix})
        await app(scope, receive, send)

    return router


async def test_mounted_under_a_prefix(nursery: trio.Nursery, spec: Spec) -> None:
    sandbox = IntercomSandbox(access_tokens=[TOKEN], rng=random.Random(1))
    address = await nursery.start(
        serve_asgi, _strip_prefix(sandbox, "/intercom"), hypercorn_config("127.0.0.1:0")
    )
    base = httpx.URL(f"{address.url}/intercom")
    async with httpx.AsyncClient(base_url=base) as http:
        client = IntercomClient(http, access_token=TOKEN)
        contact = await client.create_contact(role="lead", phone="+1")
        conversation_id = await client.create_conversation(contact.contact.id, "Hi", role="lead")
        replied = await client.reply_as_contact(
            conversation_id, contact.contact.id, "f", attachment_files=[("a", "text/plain", b"x")]
        )
        assert replied.last_part is not None
        url = replied.last_part.attachments[0].url
        assert url.startswith(f"{address.url}/intercom/_sandbox/files/")
        assert (await http.get(url)).content == b"x"


async def test_lifespan_runs_the_outbox(nursery: trio.Nursery, sink: Sink) -> None:
    sandbox = IntercomSandbox(
        access_tokens=[TOKEN], config=SandboxConfig(client_secret=SECRET, webhook_url=sink.url)
    )
    address = await nursery.start(serve_asgi, sandbox.app, hypercorn_config("127.0.0.1:0"))
    async with httpx.AsyncClient(base_url=address.url) as http:
        client = IntercomClient(http, access_token=TOKEN)
        contact = await client.create_contact(role="lead", phone="+1")
        conversation_id = await client.create_conversation(contact.contact.id, "Hi", role="lead")
        await client.reply_as_admin(conversation_id, "991267601", "note", message_type="note")
    with trio.fail_after(5):
        await sink.wait_for(1)
    assert parse_notification(sink.received[0][0]).topic == "conversation.admin.noted"


async def test_teammate_control_endpoints_deliver_webhooks(
    http: httpx.AsyncClient, client: IntercomClient, sink: Sink, spec: Spec
) -> None:
    _, conversation_id = await _conversation(client)
    steps = [
        ("note", {"body": "internal"}, "conversation.admin.noted"),
        ("assign", {"assignee_id": "991267602"}, "conversation.admin.assigned"),
        ("reply", {"body": "hello", "admin_id": "991267602"}, "conversation.admin.replied"),
        ("close", {}, "conversation.admin.closed"),
        ("open", {}, "conversation.admin.opened"),
    ]
    for action, extra, topic in steps:
        answer = await http.post(
            f"/_sandbox/teammates/{action}", json={"conversation_id": conversation_id, **extra}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["webhook"]["topic"] == topic
        assert answer.json()["webhook"]["status"] == 200
    assert len(sink.received) == len(steps)
    for body, _signature in sink.received:
        spec.validate_notification(body)
    reply = parse_notification(sink.received[2][0])
    assert isinstance(reply, ConversationEvent)
    assert reply.conversation.admin_assignee_id == "991267602"
    deliveries = (await http.get("/_sandbox/webhooks")).json()["deliveries"]
    assert [d["topic"] for d in deliveries] == [topic for _, _, topic in steps]


async def test_teammates_close_assign_snooze_and_open_with_a_message(
    http: httpx.AsyncClient, client: IntercomClient, sink: Sink, spec: Spec
) -> None:
    """As in Intercom, each state change may carry a message for the customer; assigning a
    closed conversation reopens it (``assign_and_reopen``, ``conversation.admin.open.assigned``)."""
    _, conversation_id = await _conversation(client)
    steps: list[tuple[str, dict[str, object], str]] = [
        ("assign", {"assignee_id": "991267602", "body": "Over to Grace"}, "assignment"),
        ("snooze", {"snoozed_until": 1893456000, "body": "Back tomorrow"}, "snoozed"),
        ("open", {"body": "Reopened"}, "open"),
        ("close", {"body": "Closed, thanks!"}, "close"),
        ("assign", {"assignee_id": "991267603", "body": "Linus now"}, "assign_and_reopen"),
        ("close", {}, "close"),
    ]
    states = []
    for action, extra, part_type in steps:
        answer = await http.post(
            f"/_sandbox/teammates/{action}", json={"conversation_id": conversation_id, **extra}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["part"]["part_type"] == part_type
        states.append((await http.get(f"/_sandbox/conversations/{conversation_id}")).json())
    assert [s["state"] for s in states] == ["open", "snoozed", "open", "closed", "open", "closed"]
    topics, messages = [], []
    for body, _signature in sink.received:
        spec.validate_notification(body)
        event = parse_notification(body)
        assert isinstance(event, ConversationEvent)
        topics.append(event.topic)
        messages += [part.text for part in teammate_messages(event)]
    assert topics == [
        "conversation.admin.assigned",
        "conversation.admin.snoozed",
        "conversation.admin.opened",
        "conversation.admin.closed",
        "conversation.admin.open.assigned",
        "conversation.admin.closed",
    ]
    assert messages == [
        "Over to Grace",
        "Back tomorrow",
        "Reopened",
        "Closed, thanks!",
        "Linus now",
    ]
    no_time = await http.post(
        "/_sandbox/teammates/snooze", json={"conversation_id": conversation_id}
    )
    assert no_time.status_code == 400
    not_text = await http.post(
        "/_sandbox/teammates/close", json={"conversation_id": conversation_id, "body": 5}
    )
    assert not_text.status_code == 400


async def test_teammate_control_errors(http: httpx.AsyncClient, client: IntercomClient) -> None:
    _, conversation_id = await _conversation(client)
    missing = await http.post("/_sandbox/teammates/reply", json={"body": "x"})
    assert missing.status_code == 400
    no_body = await http.post(
        "/_sandbox/teammates/reply", json={"conversation_id": conversation_id}
    )
    assert no_body.status_code == 400
    unknown = await http.post(
        "/_sandbox/teammates/dance", json={"conversation_id": conversation_id}
    )
    assert unknown.status_code == 404
    gone = await http.post("/_sandbox/teammates/reply", json={"conversation_id": "1", "body": "x"})
    assert gone.status_code == 404
    bad_admin = await http.post(
        "/_sandbox/teammates/note",
        json={"conversation_id": conversation_id, "body": "x", "admin_id": "nobody"},
    )
    assert bad_admin.status_code == 400


async def test_failed_webhook_deliveries_are_recorded(
    client: IntercomClient, sandbox: IntercomSandbox, sink: Sink
) -> None:
    sink.status = 500
    _, conversation_id = await _conversation(client)
    action = await sandbox.teammates.reply(conversation_id, "hi")
    assert action.delivery is not None
    assert action.delivery.status == 500
    sandbox.config.webhook_url = "http://127.0.0.1:9/nowhere"
    refused = await sandbox.teammates.reply(conversation_id, "again")
    assert refused.delivery is not None
    assert refused.delivery.status is None
    assert refused.delivery.error is not None
    assert sandbox.stats()["webhooks_failed"] == 2


async def test_in_process_refusals_raise_sandbox_api_error(sandbox: IntercomSandbox) -> None:
    with pytest.raises(SandboxApiError) as info:
        await sandbox.teammates.reply("404404", "anyone?")
    assert info.value.status == 404
    assert info.value.code == "not_found"
    with pytest.raises(SandboxApiError):
        sandbox.merge_contacts("nobody", "nobody-else")


async def test_auto_replies_answer_each_customer_message_in_order(
    nursery: trio.Nursery, client: IntercomClient, sandbox: IntercomSandbox, sink: Sink
) -> None:
    sandbox.configure(auto_reply_seconds=0.05, auto_reply_text="Got: {body}")
    await nursery.start(sandbox.run_background)
    contact_id, conversation_id = await _conversation(client)
    await client.reply_as_contact(conversation_id, contact_id, "second")
    await client.reply_as_contact(conversation_id, contact_id, "third")
    with trio.fail_after(5):
        await sink.wait_for(3)
    texts = []
    for body, signature in sink.received:
        verify_signature(body, signature, SECRET)
        event = parse_notification(body)
        assert isinstance(event, ConversationEvent)
        (part,) = new_admin_parts(event)
        assert not is_own_part(part)
        assert part.author.id == "991267602"  # the first teammate other than the token's admin
        texts.append(part.text)
    assert texts == ["Got: Hi", "Got: second", "Got: third"]


HEADERS = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"}


async def test_manage_parts_admins_and_merge_over_the_api(
    http: httpx.AsyncClient, client: IntercomClient, spec_log: SpecLog
) -> None:
    """The endpoints the client does not wrap, through the spec-validating ``http`` client."""
    contact_id, conversation_id = await _conversation(client)
    url = f"/conversations/{conversation_id}/parts"
    closed = await http.post(
        url,
        headers=HEADERS,
        json={"message_type": "close", "type": "admin", "admin_id": "991267601", "body": "bye"},
    )
    assert closed.json()["state"] == "closed"
    assigned = await http.post(
        url,
        headers=HEADERS,
        json={
            "message_type": "assignment",
            "type": "admin",
            "admin_id": "991267601",
            "assignee_id": "991267603",
        },
    )
    assert assigned.json()["admin_assignee_id"] == 991267603
    part = assigned.json()["conversation_parts"]["conversation_parts"][0]
    assert part["assigned_to"] == {"type": "admin", "id": "991267603"}
    assert part["app_package_code"] == "threadline-sandbox"
    snoozed = await http.post(
        url,
        headers=HEADERS,
        json={"message_type": "snoozed", "admin_id": "991267601", "snoozed_until": 1893456000},
    )
    assert (snoozed.json()["state"], snoozed.json()["snoozed_until"]) == ("snoozed", 1893456000)
    opened = await http.post(
        url, headers=HEADERS, json={"message_type": "open", "admin_id": "991267601"}
    )
    assert opened.json()["state"] == "open"
    bad_admin = await http.post(
        url, headers=HEADERS, json={"message_type": "open", "admin_id": "42"}
    )
    assert bad_admin.status_code == 400
    admin = await http.get("/admins/991267602", headers=HEADERS)
    assert admin.json()["name"] == "Grace Teammate"
    assert (await http.get("/admins/1", headers=HEADERS)).status_code == 404
    user = await client.create_contact(role="user", external_id="merge-into")
    merged = await http.post(
        "/contacts/merge", headers=HEADERS, json={"from": contact_id, "into": user.contact.id}
    )
    assert merged.json()["id"] == user.contact.id
    gone = await http.get(f"/contacts/{contact_id}", headers=HEADERS)
    assert gone.status_code == 410
    assert gone.headers["Link"] == f'</contacts/{user.contact.id}>; rel="canonical"'
    assert spec_log.responses == spec_log.requests == 12


async def test_refusals_are_error_lists(sandbox_url: str, spec: Spec) -> None:
    """Requests the spec itself forbids (so sent without the validating hooks)."""
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        answers = [
            await http.get("/me", headers={**HEADERS, "Intercom-Version": "9.9"}),
            await http.post("/contacts", headers=HEADERS, content=b"{not json"),
            await http.post("/contacts", headers=HEADERS, json={"name": "nobody"}),
            await http.post("/contacts/search", headers=HEADERS, json={"query": {"x": 1}}),
            await http.post(
                "/contacts/search",
                headers=HEADERS,
                json={
                    "query": {"field": "phone", "operator": "=", "value": "1"},
                    "pagination": {"per_page": 500},
                },
            ),
            await http.post("/conversations", headers=HEADERS, json={"body": "no sender"}),
            await http.post("/data_attributes", headers=HEADERS, json={"name": "x"}),
            await http.get("/data_attributes?model=conversation", headers=HEADERS),
            await http.get("/no/such/route", headers=HEADERS),
        ]
    assert [a.status_code for a in answers] == [400, 400, 400, 400, 400, 400, 400, 422, 404]
    for answer in answers:
        spec.validate_schema("error", answer.json())
