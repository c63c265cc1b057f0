"""The client against the sandbox over real HTTP, every request and response checked
against Intercom's OpenAPI description by the ``http`` fixture's hooks."""

from __future__ import annotations

import httpx
import pytest
import trio

from intercom import (
    IntercomAuthError,
    IntercomClient,
    IntercomContactMerged,
    IntercomNotFound,
    IntercomRateLimited,
    IntercomRejected,
    IntercomTimeout,
    IntercomUnavailable,
)
from intercom.sandbox import IntercomSandbox

from .conftest import TOKEN, SpecLog


async def _contact(client: IntercomClient, phone: str = "+14155550123") -> str:
    created = await client.create_contact(role="lead", phone=phone, name="Ana")
    return created.contact.id


async def test_me_and_admins(client: IntercomClient, spec_log: SpecLog) -> None:
    me = await client.me()
    admins = await client.list_admins()
    assert me.app is not None
    assert me.app.id_code == "sandbox1"
    assert me.id in {a.id for a in admins}
    assert len(admins) == 3
    assert spec_log.requests == spec_log.responses == 2


async def test_create_and_get_contact(client: IntercomClient) -> None:
    created = await client.create_contact(role="lead", phone="+14155550123", name="Ana")
    assert not created.existed
    assert created.contact.role == "lead"
    fetched = await client.get_contact(created.contact.id)
    assert fetched == created.contact
    assert fetched.email is None


async def test_update_contact_changes_only_given_fields(client: IntercomClient) -> None:
    await client.ensure_data_attribute("telegram_chat_id")
    contact_id = await _contact(client)
    updated = await client.update_contact(
        contact_id, name="Ana B", custom_attributes={"telegram_chat_id": "42"}
    )
    assert updated.name == "Ana B"
    assert updated.phone == "+14155550123"
    assert updated.custom_attributes == {"telegram_chat_id": "42"}


async def test_duplicate_external_id_recovers_the_existing_contact(
    client: IntercomClient,
) -> None:
    first = await client.create_contact(role="user", external_id="wa:+1555", phone="+1555")
    second = await client.create_contact(role="user", external_id="wa:+1555", phone="+1555")
    assert second.existed
    assert second.contact.id == first.contact.id


async def test_duplicate_email_conflicts_but_duplicate_phone_does_not(
    client: IntercomClient,
) -> None:
    a = await client.create_contact(role="lead", email="ana@example.com")
    b = await client.create_contact(role="lead", email="ana@example.com")
    assert b.existed
    assert b.contact.id == a.contact.id
    c = await client.create_contact(role="lead", phone="+1999")
    d = await client.create_contact(role="lead", phone="+1999")
    assert not d.existed
    assert c.contact.id != d.contact.id


async def test_search_by_phone_attribute_and_external_id(client: IntercomClient) -> None:
    await client.ensure_data_attribute("telegram_chat_id")
    phone_id = await _contact(client, "+14155550100")
    tg = await client.create_contact(role="lead", custom_attributes={"telegram_chat_id": "77"})
    user = await client.create_contact(role="user", external_id="sms:+1444")
    assert [c.id for c in await client.find_contacts_by_phone("+14155550100")] == [phone_id]
    found = await client.find_contacts_by_attribute("telegram_chat_id", "77")
    assert [c.id for c in found] == [tg.contact.id]
    by_ext = await client.find_contacts_by_external_id("sms:+1444")
    assert [c.id for c in by_ext] == [user.contact.id]
    assert await client.find_contacts_by_phone("+10000000000") == []


async def test_search_follows_pages(client: IntercomClient) -> None:
    ids = [await _contact(client, "+1222") for _ in range(7)]
    first = await client.search_contacts(
        {"field": "phone", "operator": "=", "value": "+1222"}, per_page=3
    )
    assert first.total_count == 7
    assert first.next_cursor is not None
    assert len(first.contacts) == 3
    every = await client.find_contacts(
        {"field": "phone", "operator": "=", "value": "+1222"}, per_page=3
    )
    assert [c.id for c in every] == ids


async def test_compound_search(client: IntercomClient) -> None:
    lead = await _contact(client, "+1333")
    await client.create_contact(role="user", external_id="x1", phone="+1333")
    query = {
        "operator": "AND",
        "value": [
            {"field": "phone", "operator": "=", "value": "+1333"},
            {"field": "role", "operator": "=", "value": "lead"},
        ],
    }
    assert [c.id for c in await client.find_contacts(query)] == [lead]


async def test_new_contacts_are_invisible_to_search_during_the_lag(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    sandbox.config.search_lag_seconds = 3600
    contact_id = await _contact(client, "+1777")
    assert await client.find_contacts_by_phone("+1777") == []
    assert (await client.get_contact(contact_id)).id == contact_id  # direct reads do not lag
    sandbox.config.search_lag_seconds = 0
    assert [c.id for c in await client.find_contacts_by_phone("+1777")] == [contact_id]


async def test_find_by_external_id_finds_users_not_leads(client: IntercomClient) -> None:
    user = await client.create_contact(role="user", external_id="tg:1")
    await client.create_contact(role="lead", external_id="tg:2")
    assert (await client.get_contact_by_external_id("tg:1")).id == user.contact.id
    with pytest.raises(IntercomNotFound):
        await client.get_contact_by_external_id("tg:2")


async def test_ensure_data_attribute_is_idempotent(client: IntercomClient) -> None:
    first = await client.ensure_data_attribute("whatsapp_id")
    again = await client.ensure_data_attribute("whatsapp_id")
    assert first == again
    assert first.full_name == "custom_attributes.whatsapp_id"


async def test_unknown_custom_attribute_is_rejected(client: IntercomClient) -> None:
    with pytest.raises(IntercomRejected) as info:
        await client.create_contact(role="lead", custom_attributes={"nope": "1"})
    assert info.value.codes == ("parameter_invalid",)
    assert info.value.status == 400
    assert info.value.request_id


async def test_conversation_lifecycle(client: IntercomClient, sandbox: IntercomSandbox) -> None:
    contact_id = await _contact(client)
    conversation_id = await client.create_conversation(
        contact_id, "Hi", role="lead", attachment_urls=["https://cdn.example.com/a.jpg"]
    )
    replied = await client.reply_as_contact(
        conversation_id,
        contact_id,
        "a photo",
        attachment_files=[("photo.jpg", "image/jpeg", b"\xff\xd8jpeg")],
    )
    part = replied.last_part
    assert part is not None
    assert part.part_type == "comment"
    assert part.author.id == contact_id
    assert part.attachments[0].name == "photo.jpg"
    assert part.app_package_code == "threadline-sandbox"
    async with httpx.AsyncClient() as raw:
        served = await raw.get(part.attachments[0].url)
    assert served.content == b"\xff\xd8jpeg"
    assert served.headers["content-type"] == "image/jpeg"
    note = await client.reply_as_admin(
        conversation_id, "991267602", "<p>internal</p>", message_type="note"
    )
    assert note.last_part is not None
    assert note.last_part.part_type == "note"
    assert note.last_part.text == "internal"
    conversation = await client.get_conversation(conversation_id)
    assert conversation.admin_assignee_id is None
    assert conversation.state == "open"
    assert [p.id for p in conversation.parts] == [part.id, note.last_part.id]
    assert conversation.contact_ids == (contact_id,)
    view = sandbox.conversation(conversation_id)
    assert view is not None
    assert [p["part_type"] for p in view["parts"]] == ["source", "comment", "note"]
    assert view["parts"][0]["attachments"][0]["url"] == "https://cdn.example.com/a.jpg"


async def test_contact_reply_reopens_a_closed_conversation(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    contact_id = await _contact(client)
    conversation_id = await client.create_conversation(contact_id, "Hi", role="lead")
    await sandbox.teammates.close(conversation_id)
    assert (await client.get_conversation(conversation_id)).state == "closed"
    replied = await client.reply_as_contact(conversation_id, contact_id, "still there?")
    assert replied.state == "open"
    assert replied.last_part is not None
    assert replied.last_part.part_type == "open"


async def test_assignee_is_none_when_unassigned_in_both_versions(
    http: httpx.AsyncClient, sandbox: IntercomSandbox
) -> None:
    client = IntercomClient(http, access_token=TOKEN)
    contact_id = await _contact(client)
    conversation_id = await client.create_conversation(contact_id, "Hi", role="lead")
    raw = await http.get(
        f"/conversations/{conversation_id}",
        headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"},
    )
    assert raw.json()["admin_assignee_id"] == 0
    await sandbox.teammates.assign(conversation_id, "991267603")
    assert (await client.get_conversation(conversation_id)).admin_assignee_id == "991267603"
    await sandbox.teammates.assign(conversation_id, None)
    assert (await client.get_conversation(conversation_id)).admin_assignee_id is None


async def test_2_15_answers_null_for_unassigned(sandbox_url: str, sandbox: IntercomSandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        client = IntercomClient(http, access_token=TOKEN, version="2.15")
        contact_id = await _contact(client)
        conversation_id = await client.create_conversation(contact_id, "Hi", role="lead")
        raw = await http.get(
            f"/conversations/{conversation_id}",
            headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.15"},
        )
        assert raw.json()["admin_assignee_id"] is None
        assert (await client.get_conversation(conversation_id)).admin_assignee_id is None


async def test_deleted_conversation_is_not_found(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    contact_id = await _contact(client)
    conversation_id = await client.create_conversation(contact_id, "Hi", role="lead")
    sandbox.delete_conversation(conversation_id)
    with pytest.raises(IntercomNotFound) as info:
        await client.reply_as_contact(conversation_id, contact_id, "hello?")
    assert info.value.codes == ("not_found",)
    assert info.value.request_id is not None
    with pytest.raises(IntercomNotFound):
        await client.get_conversation(conversation_id)


async def test_conversation_for_unknown_contact_is_not_found(client: IntercomClient) -> None:
    with pytest.raises(IntercomNotFound):
        await client.create_conversation("0" * 24, "Hi")


async def test_conversation_from_a_lead_needs_the_lead_role(client: IntercomClient) -> None:
    lead = await _contact(client)
    with pytest.raises(IntercomNotFound):
        await client.create_conversation(lead, "Hi", role="user")
    assert await client.create_conversation(lead, "Hi", role="lead")


async def test_merged_contact_is_gone_with_its_canonical_id(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    lead = await _contact(client)
    user = await client.create_contact(role="user", external_id="wa:+1")
    sandbox.merge_contacts(lead, user.contact.id)
    with pytest.raises(IntercomContactMerged) as info:
        await client.get_contact(lead)
    assert info.value.status == 410
    assert info.value.canonical_id == user.contact.id


async def test_bad_token_is_an_auth_error(http: httpx.AsyncClient) -> None:
    client = IntercomClient(http, access_token="wrong")
    with pytest.raises(IntercomAuthError) as info:
        await client.me()
    assert info.value.status == 401
    assert info.value.codes == ("unauthorized",)


async def test_rate_limited_carries_the_reset(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    sandbox.config.rate_limit = 2
    sandbox.config.rate_window_seconds = 3600
    await client.list_admins()
    await client.list_admins()
    with pytest.raises(IntercomRateLimited) as info:
        await client.list_admins()
    assert 0 < info.value.retry_after <= 3600
    assert info.value.codes == ("rate_limit_exceeded",)
    assert sandbox.stats()["rate_limited"] == 1


async def test_server_errors_are_unavailable(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    sandbox.config.error_rate = 1.0
    with pytest.raises(IntercomUnavailable) as info:
        await client.me()
    assert info.value.status in (500, 502, 503)
    assert sandbox.stats()["server_errors"] == 1


async def test_held_request_times_out(sandbox_url: str, sandbox: IntercomSandbox) -> None:
    sandbox.configure(timeout_rate=1.0, timeout_hold_seconds=2.0)
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=0.2) as http:
        client = IntercomClient(http, access_token=TOKEN)
        with pytest.raises(IntercomTimeout) as info:
            await client.me()
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert sandbox.stats()["timeouts"] == 1


async def test_connection_refused_is_a_transport_error() -> None:
    from intercom import IntercomTransportError

    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
        with pytest.raises(IntercomTransportError):
            await IntercomClient(http, access_token=TOKEN).me()


async def test_external_ids_with_reserved_characters_round_trip(client: IntercomClient) -> None:
    created = await client.create_contact(role="user", external_id="tg:chat/42?x=1 #2")
    found = await client.get_contact_by_external_id("tg:chat/42?x=1 #2")
    assert found.id == created.contact.id


async def test_observer_sees_every_request_and_the_version_is_always_sent(
    http: httpx.AsyncClient, sandbox: IntercomSandbox
) -> None:
    seen: list[tuple[str, int | None]] = []
    client = IntercomClient(
        http,
        access_token=TOKEN,
        observer=lambda endpoint, status, _s: seen.append((endpoint, status)),
    )
    await client.create_contact(role="user", external_id="e1")
    await client.create_contact(role="user", external_id="e1")  # 409, then a GET
    with pytest.raises(IntercomNotFound):
        await client.get_conversation("999999")
    assert seen == [
        ("create_contact", 200),
        ("create_contact", 409),
        ("get_contact", 200),
        ("get_conversation", 404),
    ]
    assert sandbox.stats()["without_version"] == 0


async def test_injected_latency_delays_answers(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    sandbox.config.latency_seconds = 0.2
    started = trio.current_time()
    await client.me()
    assert trio.current_time() - started >= 0.2


async def test_budget_and_client_share_counters(
    http: httpx.AsyncClient, sandbox: IntercomSandbox
) -> None:
    from intercom import RateBudget

    sandbox.configure(rate_limit=100, rate_window_seconds=10)
    budget = RateBudget(limit=100)
    client = IntercomClient(http, access_token=TOKEN, budget=budget)
    await client.me()
    assert budget.acquired == 1
    assert budget.in_flight == 0
    assert budget.limit == 100
    assert budget.remaining == 99


async def test_conflicts_can_be_switched_off(
    client: IntercomClient, sandbox: IntercomSandbox
) -> None:
    sandbox.config.conflicts = False
    first = await client.create_contact(role="user", external_id="dup")
    second = await client.create_contact(role="user", external_id="dup")
    assert not second.existed
    assert second.contact.id != first.contact.id
    assert (await client.get_contact_by_external_id("dup")).id == first.contact.id


async def test_timeouts_return_the_budget_slot(sandbox_url: str, sandbox: IntercomSandbox) -> None:
    from intercom import RateBudget

    sandbox.configure(timeout_rate=1.0, timeout_hold_seconds=1.0)
    budget = RateBudget(limit=10)
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=0.1) as http:
        with pytest.raises(IntercomTimeout):
            await IntercomClient(http, access_token=TOKEN, budget=budget).me()
    assert budget.in_flight == 0
    assert budget.acquired == 1


async def test_tags_assignment_rules_and_read_state(
    client: IntercomClient, sandbox: IntercomSandbox, spec_log: SpecLog
) -> None:
    contact_id = await _contact(client)
    conversation_id = await client.create_conversation(contact_id, "Hi", role="lead")
    tag = await client.ensure_tag("WhatsApp")
    assert await client.ensure_tag("whatsapp") == tag  # names are case insensitive
    applied = await client.tag_conversation(conversation_id, tag.id, "991267602")
    again = await client.tag_conversation(conversation_id, tag.id, "991267602")
    assert applied == again == tag
    assigned = await client.assign_conversation(conversation_id, "991267602", "77", to="team")
    assert assigned.team_assignee_id == "77"
    assert assigned.last_part is not None
    assert assigned.last_part.part_type == "assignment"
    assert assigned.last_part.assigned_to_id == "77"
    assigned = await client.assign_conversation(conversation_id, "991267602", "991267603")
    assert (assigned.admin_assignee_id, assigned.team_assignee_id) == ("991267603", "77")
    read = await client.mark_conversation_read(conversation_id)
    assert read.id == conversation_id
    sandbox.configure(assignment_rules_team_id="88")
    ruled = await client.run_assignment_rules(conversation_id)
    assert ruled.team_assignee_id == "88"
    view = sandbox.conversation(conversation_id)
    assert view is not None
    assert (view["tags"], view["read"], view["assignment_rules_runs"]) == (["WhatsApp"], True, 1)
    assert spec_log.requests == spec_log.responses == 10
    with pytest.raises(IntercomNotFound):
        await client.tag_conversation(conversation_id, "999999", "991267602")
    with pytest.raises(IntercomRejected):
        await client.assign_conversation(conversation_id, "991267602", "nope", to="team")
