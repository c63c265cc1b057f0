"""SMS opt-out: a customer's STOP (Twilio's keywords, or Advanced Opt-Out's ``OptOutType``)
is shown in Intercom with a note, and nothing is sent to them — a reply leaves a note saying
why — until they opt back in. The sandbox Twilio refuses sends to an opted-out number with
21610, as Twilio does. End to end over HTTP, on both stores; the opt-out is thread state,
read back from the journal after the thread's actor was passivated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from actors.tools import Stack, open_stack
from tests.actors.conftest import eventually

CUSTOMER = "+15550001111"
GRACE = "991267602"


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    # Idle actors passivate fast: each step below starts an incarnation that reads the
    # thread's state from the journal.
    async with open_stack(database_url=database_url, actor_idle_seconds=0.2) as opened:
        yield opened


def _parts(stack: Stack) -> list[dict[str, Any]]:
    (conversation,) = stack.conversations()
    found: list[dict[str, Any]] = conversation["parts"]
    return found


def _notes(stack: Stack) -> list[str]:
    return [str(p["body"]) for p in _parts(stack) if p["part_type"] == "note"]


async def _idle(stack: Stack) -> None:
    await eventually(lambda: stack.node.dispatcher.inflight == 0)
    await trio.sleep(0.5)  # past actor_idle_seconds: the next entry loads the state again


async def test_stop_is_shown_and_later_replies_leave_a_note_until_start(stack: Stack) -> None:
    await stack.sms(CUSTOMER, "Where is my order?")
    await eventually(lambda: len(stack.conversations()) == 1)
    conversation_id = str(stack.conversations()[0]["id"])
    teammates = stack.sandbox.intercom.teammates
    await stack.sms(CUSTOMER, "stop ")
    await eventually(lambda: len(_notes(stack)) == 1)
    assert [p["body"] for p in _parts(stack)][:2] == ["Where is my order?", "stop "]
    assert "opted out of SMS" in _notes(stack)[0]
    await _idle(stack)

    await teammates.reply(conversation_id, "It ships today", admin_id=GRACE)
    await eventually(lambda: len(_notes(stack)) == 2)
    note = _notes(stack)[1]
    assert "could not deliver" in note
    assert "opted out of SMS" in note
    assert stack.sent() == []
    assert stack.sandbox.providers.refused() == []  # not even tried: no 21610 provoked
    await _idle(stack)

    await stack.sms(CUSTOMER, "START")
    await eventually(lambda: len(_notes(stack)) == 3)
    assert "opted back in" in _notes(stack)[2]
    await _idle(stack)
    await teammates.reply(conversation_id, "Welcome back!", admin_id=GRACE)
    await eventually(lambda: len(stack.sent()) == 1)
    assert stack.sent()[0].text == "Grace Teammate: Welcome back!"
    assert stack.sent()[0].to == CUSTOMER


async def test_advanced_opt_out_type_with_a_custom_keyword_stops_send_api_messages(
    stack: Stack,
) -> None:
    await stack.sms(CUSTOMER, "Hola")
    await eventually(lambda: len(stack.conversations()) == 1)
    await stack.sms(CUSTOMER, "ARRET", opt_out_type="STOP")  # a custom keyword: Twilio says so
    await eventually(lambda: len(_notes(stack)) == 1)
    await _idle(stack)
    response = await stack.http.post(
        "/api/messages",
        json={
            "channel": "twilio",
            "account": "+15550002222",
            "customer": CUSTOMER,
            "text": "Your appointment is tomorrow",
        },
        headers={"authorization": "Bearer sandbox-api-token"},
    )
    assert response.status_code == 200, response.text
    await eventually(lambda: len(_notes(stack)) == 2)
    assert "opted out of SMS" in _notes(stack)[1]
    assert stack.sent() == []
    assert stack.sandbox.providers.refused() == []


async def test_help_and_ordinary_words_change_nothing(stack: Stack) -> None:
    await stack.sms(CUSTOMER, "HELP")
    await eventually(lambda: len(stack.conversations()) == 1)
    await stack.sms(CUSTOMER, "Please stop the second delivery")  # not a keyword
    await eventually(lambda: len(_parts(stack)) == 2)
    await _idle(stack)
    await stack.sandbox.intercom.teammates.reply(str(stack.conversations()[0]["id"]), "Done.")
    await eventually(lambda: len(stack.sent()) == 1)
    assert _notes(stack) == []


async def test_the_sandbox_twilio_refuses_an_opted_out_number_with_21610(stack: Stack) -> None:
    """The regression net: a bridge that sent anyway would meet Twilio's 21610 here."""
    providers = stack.sandbox.providers
    assert providers.receive_sms(CUSTOMER, "+15550002222", "Unsubscribe") == "stop"
    await stack.sms(CUSTOMER, "hello again")  # not a keyword: still opted out at Twilio
    await eventually(lambda: len(stack.conversations()) == 1)
    await eventually(lambda: stack.node.dispatcher.inflight == 0)  # the conversation is bridged
    await stack.sandbox.intercom.teammates.reply(str(stack.conversations()[0]["id"]), "Hi")
    await eventually(lambda: providers.refused() != [])
    assert providers.refused() == [("twilio", CUSTOMER, 21610)]
