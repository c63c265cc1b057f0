"""How new conversations look in Intercom (issue 18): the account's tags, its team and
teammate, the workspace's assignment rules, the read state, the contact's channel attribute,
which of several contacts of one phone is the customer's, and phones Intercom holds in another
form; assignment exactly once across a crash. Real HTTP against the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.tools import SANDBOX_SECRETS, SandboxApp, Stack, open_stack
from runtime import hypercorn_config, serve_asgi
from tests.actors.conftest import eventually
from tests.actors.customers import webhook
from tests.actors.processes import ServeProcess, serve_env
from tests.actors.test_bridge_e2e import PHONE, only, parts, settled

TEAM = "4242"
TEAMMATE = "991267602"  # "Grace Teammate" in the sandbox


def assignments(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in parts(conversation) if p["part_type"] == "assignment"]


def requests(stack: Stack, endpoint: str) -> int:
    count: int = stack.sandbox.intercom.stats()["requests"].get(endpoint, 0)
    return count


@pytest.fixture
async def marked(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        conversation_tags="Threadline, {channel}",
        intercom_team_id=TEAM,
        intercom_assignee_id=TEAMMATE,
    ) as opened:
        yield opened


async def test_a_new_conversation_gets_the_tags_the_team_and_the_teammate(marked: Stack) -> None:
    await marked.whatsapp(PHONE, "Hi")
    await eventually(lambda: settled(marked, 1))
    conversation = only(marked)
    view = marked.sandbox.intercom.conversation(conversation["id"])
    assert view is not None
    assert view["tags"] == ["Threadline", "whatsapp"]
    assert (view["team_assignee_id"], view["admin_assignee_id"]) == (TEAM, TEAMMATE)
    assert len(assignments(conversation)) == 2
    await marked.whatsapp(PHONE, "again")  # the same conversation: no new marks
    await eventually(lambda: len(parts(only(marked))) == 4)
    await trio.sleep(0.3)
    assert len(assignments(only(marked))) == 2
    assert requests(marked, "tag_conversation") == 2
    assert requests(marked, "create_tag") == 2  # one per tag name and process
    await marked.sms(f"+{PHONE}", "by SMS")  # a second conversation, one more tag: {channel}
    await eventually(lambda: settled(marked, 2))
    views = [marked.sandbox.intercom.conversation(c["id"]) for c in marked.conversations()]
    tags = {tuple(v["tags"]) for v in views if v is not None}
    assert tags == {("Threadline", "whatsapp"), ("Threadline", "twilio")}
    assert requests(marked, "create_tag") == 3


async def test_without_marks_configured_no_mark_is_asked_for(stack: Stack) -> None:
    await stack.whatsapp(PHONE, "Hi")
    await eventually(lambda: settled(stack, 1))
    asked = stack.sandbox.intercom.stats()["requests"]
    marks = ("create_tag", "tag_conversation", "assign_conversation", "run_assignment_rules",
             "update_conversation", "create_data_attribute")  # fmt: skip
    assert not set(marks) & set(asked)


async def test_the_contact_names_the_channels_it_wrote_from(
    database_url: str, tmp_path: Path
) -> None:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        contact_channel_attribute="threadline_channels",
    ) as stack:
        await stack.whatsapp(PHONE, "Hi")
        await eventually(lambda: settled(stack, 1))
        (contact,) = stack.contacts()
        assert contact["custom_attributes"] == {"threadline_channels": "whatsapp"}
        await stack.sms(f"+{PHONE}", "and by SMS")
        await eventually(lambda: settled(stack, 2))
        await stack.whatsapp(PHONE, "again")
        await eventually(lambda: sum(len(parts(c)) for c in stack.conversations()) == 3)
        await trio.sleep(0.3)
        (contact,) = stack.contacts()
        assert contact["custom_attributes"] == {"threadline_channels": "whatsapp,twilio"}
        assert requests(stack, "create_data_attribute") == 1  # once per process
        assert requests(stack, "update_contact") == 1  # only when a channel is new


async def test_assignment_rules_and_the_read_state(database_url: str, tmp_path: Path) -> None:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        intercom_run_assignment_rules=True,
        intercom_mark_read=True,
    ) as stack:
        stack.sandbox.intercom.configure(assignment_rules_team_id="77")
        await stack.whatsapp(PHONE, "Hi")
        await eventually(lambda: settled(stack, 1))
        conversation_id = only(stack)["id"]

        def view() -> dict[str, Any]:
            found = stack.sandbox.intercom.conversation(conversation_id)
            assert found is not None
            return found

        assert (view()["assignment_rules_runs"], view()["team_assignee_id"]) == (1, "77")
        assert view()["read"] is True
        await stack.sandbox.intercom.teammates.reply(conversation_id, "Hello!")
        assert view()["read"] is False  # a teammate's message the customer has not seen
        await eventually(lambda: len(stack.sent()) == 1)
        await eventually(lambda: view()["read"] is True)  # delivered: no email copy
        assert view()["assignment_rules_runs"] == 1


async def _seed(stack: Stack, role: str, phone: str, updated_at: float | None = None) -> str:
    """A contact made in Intercom outside the bridge (a teammate, an import)."""
    token = stack.settings.intercom_access_token
    assert token is not None
    body = {"role": role, "phone": phone}
    if role == "user":
        body["external_id"] = f"user{phone}"
    async with httpx.AsyncClient(base_url=f"{stack.sandbox_url}/intercom") as client:
        answer = await client.post(
            "/contacts",
            json=body,
            headers={"authorization": f"Bearer {token.get_secret_value()}"},
        )
    assert answer.status_code == 200, answer.text
    contact_id = str(answer.json()["id"])
    if updated_at is not None:
        stack.sandbox.intercom.core.state.contacts[contact_id].updated_at = updated_at
    return contact_id


@pytest.mark.parametrize(
    ("match", "newer", "chosen"),
    [("recent", "lead", "lead"), ("recent", "user", "user"), ("lead", "user", "lead"),
     ("user", "lead", "user")],
)  # fmt: skip
async def test_the_matching_policy_chooses_among_contacts_of_one_phone(
    tmp_path: Path, match: str, newer: str, chosen: str
) -> None:
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        media_dir=str(tmp_path / "media"),
        contact_match=match,
    ) as stack:
        now = stack.sandbox.intercom.core.now()
        ids = {
            role: await _seed(stack, role, f"+{PHONE}", now + (100 if role == newer else 10))
            for role in ("lead", "user")  # the lead is the older contact
        }
        await stack.whatsapp(PHONE, "Hi")
        await eventually(lambda: settled(stack, 1))
        assert only(stack)["contact_id"] == ids[chosen]
        assert len(stack.contacts()) == 2


async def test_a_phone_intercom_holds_in_national_form_is_found(
    database_url: str, tmp_path: Path
) -> None:
    async with open_stack(database_url=database_url, media_dir=str(tmp_path / "media")) as stack:
        seeded = await _seed(stack, "lead", "(415) 555-0123")
        await stack.whatsapp("14155550123", "Hi")
        await eventually(lambda: settled(stack, 1))
        assert only(stack)["contact_id"] == seeded
        assert len(stack.contacts()) == 1


@pytest.mark.slow
async def test_a_crash_between_the_assignment_and_its_record_assigns_once(
    tmp_path: Path,
) -> None:
    """Intercom makes the assignment but its answer is slow; the process is killed meanwhile.
    After the restart the assignment step, started with its outcome lost, is looked up (the
    team is the conversation's assignee already) instead of assigning it a second time."""
    sandbox = SandboxApp()
    sandbox.intercom.configure(
        answer_delay_seconds=30.0, answer_delay_endpoints=frozenset({"assign_conversation"})
    )
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        database = f"sqlite:///{tmp_path / 'threadline.db'}"
        env = serve_env(address.url, database, tmp_path, intercom_team_id=TEAM)
        bridge = ServeProcess(env, tmp_path / "serve.log")
        await bridge.start()
        async with httpx.AsyncClient(timeout=5) as client:
            hook = webhook("crash-assign", 1, 0)
            await client.post(f"{bridge.url}/webhooks/whatsapp", content=hook.body,
                              headers=hook.headers)  # fmt: skip

        def assigned() -> list[dict[str, Any]]:
            conversations = sandbox.intercom.conversations()
            return assignments(conversations[0]) if conversations else []

        await eventually(lambda: len(assigned()) == 1, seconds=20)
        await bridge.kill()  # the assignment is made; its answer has not come
        sandbox.intercom.configure(answer_delay_seconds=0.0)
        await bridge.start()
        hook = webhook("crash-assign", 1, 1)  # the next message: after the first is done
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(f"{bridge.url}/webhooks/whatsapp", content=hook.body,
                              headers=hook.headers)  # fmt: skip
        await eventually(lambda: len(parts(sandbox.intercom.conversations()[0])) >= 3, seconds=30)
        await trio.sleep(0.5)
        await bridge.stop()
        nursery.cancel_scope.cancel()
    (conversation,) = sandbox.intercom.conversations()
    assert len(assignments(conversation)) == 1
    view = sandbox.intercom.conversation(conversation["id"])
    assert view is not None
    assert view["team_assignee_id"] == TEAM


async def test_a_conversation_the_send_api_opens_is_marked_and_read(
    database_url: str, tmp_path: Path
) -> None:
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        conversation_tags="{channel}",
        intercom_team_id=TEAM,
        intercom_mark_read=True,
    ) as stack:
        response = await stack.http.post(
            "/api/messages",
            json={"channel": "twilio", "account": SANDBOX_SECRETS.twilio_number,
                  "customer": f"+{PHONE}", "text": "Your order shipped"},
            headers={"authorization": "Bearer sandbox-api-token"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        await eventually(lambda: settled(stack, 1))
        view = stack.sandbox.intercom.conversation(only(stack)["id"])
        assert view is not None
        assert (view["tags"], view["team_assignee_id"]) == (["twilio"], TEAM)
        assert view["read"] is True  # after the bridge recorded the message as a comment
        assert len(assignments(only(stack))) == 1
