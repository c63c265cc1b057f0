"""Every inbound message type reaches Intercom as something a teammate can read: contact cards,
reactions, edits, quoted replies, types the bridge cannot carry, Telegram groups.

Signed webhooks over real HTTP into the bridge, the sandbox Intercom's state checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
from prometheus_client import CollectorRegistry

from actors.bridge import RECENT_MESSAGES
from actors.tools import PUBLIC_URL, SANDBOX_SECRETS, Stack, open_stack
from channels.sandbox import (
    SignedWebhook,
    WebhookContact,
    WhatsAppInbound,
    telegram_message_webhook,
    telegram_update_webhook,
    twilio_message_webhook,
)
from tests.actors.conftest import eventually

PHONE = "15550001111"
CHAT = 1111111


@pytest.fixture
async def sqlite_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """A stack on SQLite only, for what involves no thread state."""
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=2.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        registry=CollectorRegistry(),
    ) as opened:
        yield opened


def bodies(stack: Stack) -> list[str]:
    """Every part of every conversation, in order, whitespace folded."""
    return [
        " ".join(str(part["body"]).split())
        for conversation in stack.conversations()
        for part in conversation["parts"]
    ]


async def settle(stack: Stack, parts: int) -> list[str]:
    await eventually(lambda: len(bodies(stack)) >= parts and stack.node.dispatcher.inflight == 0)
    return bodies(stack)


async def whatsapp(stack: Stack, *messages: WhatsAppInbound) -> None:
    response = await stack.whatsapp(PHONE, batch=messages)
    assert response.status_code == 200, response.text


async def telegram(stack: Stack, webhook: SignedWebhook) -> None:
    response = await stack.post("/webhooks/telegram", webhook)
    assert response.status_code == 200, response.text


def ignored(stack: Stack, channel: str, what: str) -> float:
    registry = stack.node.registry
    value = registry.get_sample_value(
        "threadline_webhook_events_ignored_total", {"channel": channel, "what": what}
    )
    return value or 0.0


TG_SECRET = SANDBOX_SECRETS.telegram_secret_token


# --- WhatsApp ---------------------------------------------------------------------------------


async def test_whatsapp_contact_card_shows_its_name_phone_and_email(sqlite_stack: Stack) -> None:
    card = WebhookContact(
        "Lucía", "Gómez", phones=("+1 (983) 555-2319",), emails=("l@example.com",)
    )
    await whatsapp(sqlite_stack, WhatsAppInbound(PHONE, contacts=(card,)))
    (body,) = await settle(sqlite_stack, 1)
    assert body == "👤 Contact card: Lucía Gómez — +1 (983) 555-2319, l@example.com"


async def test_whatsapp_unsupported_type_is_named(sqlite_stack: Stack) -> None:
    await whatsapp(sqlite_stack, WhatsAppInbound(PHONE, unsupported="poll_creation"))
    (body,) = await settle(sqlite_stack, 1)
    assert body == (
        "[unsupported message type: poll_creation (Message type unknown, error 131051)]"
    )


async def test_whatsapp_reaction_quotes_the_teammate_reply_it_reacted_to(stack: Stack) -> None:
    await whatsapp(stack, WhatsAppInbound(PHONE, text="where is my parcel?"))
    await settle(stack, 1)
    conversation_id = str(stack.conversations()[0]["id"])
    await stack.sandbox.intercom.teammates.reply(conversation_id, "It ships today")
    await eventually(lambda: len(stack.sent()) == 1)
    sent = stack.sent()[0]
    wamid = sent.message_id
    await eventually(lambda: stack.node.dispatcher.inflight == 0)
    await whatsapp(stack, WhatsAppInbound(PHONE, reaction="👍", reply_to=wamid))
    await whatsapp(stack, WhatsAppInbound(PHONE, reaction="", reply_to=wamid))
    await whatsapp(stack, WhatsAppInbound(PHONE, reaction="❤️", reply_to="wamid.unknown"))
    found = await settle(stack, 5)
    assert sent.text is not None
    assert "It ships today" in sent.text
    assert found[2:] == [
        f"reacted 👍 to: “{sent.text}”",
        f"removed their reaction to: “{sent.text}”",
        "reacted ❤️ to: message wamid.unknown",
    ]


async def test_whatsapp_reply_quotes_what_it_replied_to(stack: Stack) -> None:
    first = WhatsAppInbound(PHONE, text="My order number is 4417")
    await whatsapp(stack, first)
    await settle(stack, 1)
    await whatsapp(stack, WhatsAppInbound(PHONE, text="that one", reply_to=first.message_id))
    await whatsapp(stack, WhatsAppInbound(PHONE, text="and this?", reply_to="wamid.older"))
    found = await settle(stack, 3)
    assert found[1:] == [
        "> My order number is 4417 that one",
        "(replying to an earlier message) and this?",
    ]


async def test_whatsapp_quotes_remember_only_the_latest_messages(sqlite_stack: Stack) -> None:
    sent = [WhatsAppInbound(PHONE, text=f"message {i}") for i in range(RECENT_MESSAGES + 1)]
    await whatsapp(sqlite_stack, *sent)
    await settle(sqlite_stack, len(sent))
    oldest, kept = sent[0], sent[1]
    # (each of these is remembered in turn, and pushes the oldest out)
    await whatsapp(sqlite_stack, WhatsAppInbound(PHONE, text="a", reply_to=kept.message_id))
    await whatsapp(sqlite_stack, WhatsAppInbound(PHONE, text="b", reply_to=oldest.message_id))
    found = await settle(sqlite_stack, len(sent) + 2)
    assert found[-2:] == ["> message 1 a", "(replying to an earlier message) b"]


async def test_whatsapp_quote_is_remembered_across_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    first = WhatsAppInbound(PHONE, text="the blue one, size M")
    async with open_stack(database_url=url, media_dir=str(tmp_path / "m")) as stack:
        await whatsapp(stack, first)
        await settle(stack, 1)
    # A new process on the same journal (and a fresh sandbox Intercom: the conversation is
    # gone there, so the reply lands in a new one; what it quotes comes from the journal).
    async with open_stack(
        database_url=url, media_dir=str(tmp_path / "m"), conversation_gone_retries=0
    ) as stack:
        await whatsapp(stack, WhatsAppInbound(PHONE, text="yes", reply_to=first.message_id))
        assert await settle(stack, 1) == ["> the blue one, size M yes"]


# --- Telegram ---------------------------------------------------------------------------------


async def test_telegram_edit_is_a_new_part_in_the_same_conversation(sqlite_stack: Stack) -> None:
    await telegram(
        sqlite_stack, telegram_message_webhook(TG_SECRET, chat_id=CHAT, message_id=7, text="helo")
    )
    await settle(sqlite_stack, 1)
    edit = telegram_message_webhook(
        TG_SECRET,
        chat_id=CHAT,
        message_id=7,
        text="hello",
        update_id=8,
        edited_at=datetime.now(UTC),
    )
    await telegram(sqlite_stack, edit)
    await telegram(sqlite_stack, edit)  # a redelivery
    found = await settle(sqlite_stack, 2)
    await trio.sleep(0.2)
    assert bodies(sqlite_stack) == found == ["helo", "edited: hello"]
    assert len(sqlite_stack.conversations()) == 1


async def test_telegram_contact_and_quoted_reply(sqlite_stack: Stack) -> None:
    card = WebhookContact("Ana", "Lima", phones=("+15550009999",))
    await telegram(
        sqlite_stack,
        telegram_message_webhook(TG_SECRET, chat_id=CHAT, message_id=1, contact=card),
    )
    await telegram(
        sqlite_stack,
        telegram_message_webhook(
            TG_SECRET,
            chat_id=CHAT,
            message_id=2,
            text="this one please",
            reply_to=99,
            reply_to_text="Which size do you need?",
        ),
    )
    await telegram(
        sqlite_stack,
        telegram_message_webhook(
            TG_SECRET, chat_id=CHAT, message_id=3, content={"dice": {"emoji": "🎲", "value": 4}}
        ),
    )
    assert await settle(sqlite_stack, 3) == [
        "👤 Contact card: Ana Lima — +15550009999",
        "> Which size do you need? this one please",
        "[unsupported message type: dice]",
    ]


async def test_telegram_groups_are_acknowledged_and_counted_not_bridged(
    sqlite_stack: Stack,
) -> None:
    group = telegram_message_webhook(
        TG_SECRET,
        chat_id=-100123,
        message_id=1,
        text="hi all",
        group_title="Buyers",
        sender_id=2222222,
    )
    await telegram(sqlite_stack, group)
    other = telegram_update_webhook(TG_SECRET, 50, "callback_query", {"id": "1", "data": "x"})
    await telegram(sqlite_stack, other)
    await telegram(
        sqlite_stack, telegram_message_webhook(TG_SECRET, chat_id=CHAT, message_id=2, text="hi")
    )
    assert await settle(sqlite_stack, 1) == ["hi"]
    assert len(sqlite_stack.contacts()) == 1
    assert ignored(sqlite_stack, "telegram", "group") == 1
    assert ignored(sqlite_stack, "telegram", "update") == 1


async def test_telegram_groups_bridged_per_member(database_url: str, tmp_path: Path) -> None:
    async with open_stack(
        database_url=database_url, media_dir=str(tmp_path / "m"), telegram_groups="per-member"
    ) as stack:
        for message_id, sender in ((1, 2222222), (2, 3333333), (3, 2222222)):
            webhook = telegram_message_webhook(
                TG_SECRET,
                chat_id=-100123,
                message_id=message_id,
                text=f"message {message_id}",
                group_title="Buyers",
                sender_id=sender,
            )
            await telegram(stack, webhook)
        await settle(stack, 3)
        by_contact: dict[str, list[str]] = {}
        attributes = {c["id"]: c["custom_attributes"] for c in stack.contacts()}
        for conversation in stack.conversations():
            user = attributes[conversation["contact_id"]]["telegram_user_id"]
            by_contact[user] = [" ".join(p["body"].split()) for p in conversation["parts"]]
        assert by_contact == {
            "2222222": [
                "(in the Telegram group “Buyers”) message 1",
                "(in the Telegram group “Buyers”) message 3",
            ],
            "3333333": ["(in the Telegram group “Buyers”) message 2"],
        }


# --- Twilio -----------------------------------------------------------------------------------


async def twilio(stack: Stack, body: str, *extra: tuple[str, str]) -> None:
    credentials = stack.sandbox.providers.credentials
    webhook = twilio_message_webhook(
        credentials.twilio_auth_token,
        f"{PUBLIC_URL}/webhooks/twilio",
        account_sid=credentials.twilio_account_sid,
        to="whatsapp:" + SANDBOX_SECRETS.twilio_number,
        from_="whatsapp:+" + PHONE,
        body=body,
        extra=extra,
    )
    response = await stack.post("/webhooks/twilio", webhook)
    assert response.status_code == 200, response.text


async def test_twilio_messages_without_body_are_represented(sqlite_stack: Stack) -> None:
    await twilio(sqlite_stack, "")
    await twilio(sqlite_stack, "", ("MessageType", "button"), ("ButtonText", "Yes, confirm"))
    await twilio(sqlite_stack, "", ("MessageType", "reaction"))
    assert await settle(sqlite_stack, 3) == [
        "[empty message: no text or media]",
        "Yes, confirm",
        "[unsupported message type: reaction]",
    ]
