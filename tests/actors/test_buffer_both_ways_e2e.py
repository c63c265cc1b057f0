"""The conversation buffer measures silence on the thread in both directions: a customer
answering a teammate's late reply (or a send-API message) stays in the same conversation.
End to end over HTTP, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actors.bridge import ThreadState
from actors.tools import Stack, open_stack
from tests.actors.conftest import eventually

PHONE = "15550001111"
BUFFER = 600  # ten minutes


def _settled(stack: Stack, conversations: int) -> bool:
    return len(stack.conversations()) == conversations and stack.node.dispatcher.inflight == 0


def _customer_parts(stack: Stack) -> list[str]:
    return [
        str(p["body"])
        for c in stack.conversations()
        for p in c["parts"]
        if p["author_type"] != "admin"
    ]


async def test_a_customer_answering_a_late_teammate_reply_stays_in_the_conversation(
    database_url: str,
) -> None:
    now = datetime.now(UTC)
    async with open_stack(database_url=database_url, conversation_buffer_seconds=BUFFER) as s:
        await s.whatsapp(PHONE, "is my order shipped?", sent_at=now - timedelta(minutes=30))
        await eventually(lambda: _settled(s, 1))
        (conversation,) = s.conversations()
        await s.sandbox.intercom.teammates.reply(
            str(conversation["id"]), "Sorry for the wait: yes, today.", admin_id="991267602"
        )
        await eventually(lambda: len(s.sent()) == 1 and s.node.dispatcher.inflight == 0)
        await s.whatsapp(PHONE, "great, thanks!", sent_at=now + timedelta(minutes=1))
        await eventually(lambda: len(_customer_parts(s)) == 2)
        assert len(s.conversations()) == 1
        assert _customer_parts(s) == ["is my order shipped?", "great, thanks!"]


async def test_a_send_api_message_counts_as_activity_on_the_thread(database_url: str) -> None:
    now = datetime.now(UTC)
    async with open_stack(database_url=database_url, conversation_buffer_seconds=BUFFER) as s:
        await s.whatsapp(PHONE, "remind me tomorrow", sent_at=now - timedelta(hours=20))
        await eventually(lambda: _settled(s, 1))
        response = await s.http.post(
            "/api/messages",
            json={
                "channel": "whatsapp",
                "account": "100000000000001",
                "customer": PHONE,
                "text": "Reminder: your appointment is at 10:00",
            },
            headers={"authorization": "Bearer sandbox-api-token"},
        )
        assert response.status_code == 200, response.text
        await eventually(lambda: len(s.sent()) == 1 and s.node.dispatcher.inflight == 0)
        await s.whatsapp(PHONE, "see you then", sent_at=now + timedelta(minutes=2))
        await eventually(lambda: len(_customer_parts(s)) == 2)
        assert len(s.conversations()) == 1


async def test_silence_in_both_directions_still_opens_a_new_conversation(
    database_url: str,
) -> None:
    now = datetime.now(UTC)
    async with open_stack(database_url=database_url, conversation_buffer_seconds=BUFFER) as s:
        await s.whatsapp(PHONE, "hello", sent_at=now - timedelta(minutes=40))
        await eventually(lambda: _settled(s, 1))
        (conversation,) = s.conversations()
        await s.sandbox.intercom.teammates.reply(str(conversation["id"]), "hi!")
        await eventually(lambda: len(s.sent()) == 1 and s.node.dispatcher.inflight == 0)
        await s.whatsapp(PHONE, "a new question", sent_at=now + timedelta(minutes=11))
        await eventually(lambda: _settled(s, 2))
        assert [p["body"] for p in s.conversations()[1]["parts"]] == ["a new question"]


async def test_a_message_dated_far_ahead_does_not_hold_the_buffer_open(database_url: str) -> None:
    # A provider-signed date years ahead is taken as the receive time: kept, it would be the
    # thread's last activity for years, and no later message would open a new conversation.
    now = datetime.now(UTC)
    async with open_stack(database_url=database_url, conversation_buffer_seconds=BUFFER) as s:
        await s.whatsapp(PHONE, "from the future", sent_at=now + timedelta(days=3650))
        await eventually(lambda: _settled(s, 1))
        await s.whatsapp(PHONE, "eleven minutes on", sent_at=now + timedelta(minutes=11))
        await eventually(lambda: _settled(s, 2))
        assert [p["body"] for p in s.conversations()[1]["parts"]] == ["eleven minutes on"]


def test_thread_state_written_before_the_field_existed_still_reads() -> None:
    old = b'{"contact_id":"c1","conversation_id":"7","last_inbound_at":5.0}'
    state = ThreadState.decode(old)
    assert state.last_outbound_at is None
    assert state.last_inbound_at == 5.0
