"""Many accounts in one deployment (``THREADLINE_ACCOUNTS_FILE``): two Meta apps posting to the
same WhatsApp route, two Twilio accounts, two Telegram bots and two Viber bots on their own
routes. Each webhook is
verified with its own account's secret (another account's → 401, nothing journaled) and each
reply goes out with the credentials of the account that owns the thread, from its number or
bot. End to end over HTTP on loopback, on SQLite (the accounts do not touch the store)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from actors.core import Settings
from actors.tools import Stack, open_stack
from channels import Channel
from channels.sandbox import (
    SandboxCredentials,
    WhatsAppInbound,
    telegram_message_webhook,
    twilio_message_webhook,
    whatsapp_webhook,
)
from tests.actors.conftest import eventually

APP_A = {"secret": "a" * 8 + "1f2e3d4c5b6a7980", "token": "EAAG-app-a-access-token-0001"}
APP_B = {"secret": "b" * 8 + "0918273645a1b2c3", "token": "EAAG-app-b-access-token-0002"}
PHONE_A, PHONE_B = "100000000000011", "100000000000022"
SID_1, SID_2 = "AC" + "1" * 32, "AC" + "2" * 32
TOKEN_1, TOKEN_2 = "1f" * 16, "2e" * 16
NUMBER_1, NUMBER_2 = "+15557770001", "+15557770002"
BOT_1, BOT_2 = "7100000001:bot-one-token-aaaaaaaaaaaa", "7100000002:bot-two-token-bbbbbbbbbbbb"
BOT_SECRET_1, BOT_SECRET_2 = "bot-one-webhook-secret", "bot-two-webhook-secret"
VIBER_1, VIBER_2 = "4453b6ac1b2c3d4e-viber-bot-one-token", "4453b6ac5f6a7b8c-viber-bot-two-token"

ACCOUNTS = f"""
[[whatsapp]]
id = "app-a"
app_secret = "{APP_A["secret"]}"
access_token = {{ env = "TEST_APP_A_TOKEN" }}
phone_number_ids = ["{PHONE_A}"]
default_admin_id = "991267602"
tags = ["app-a"]

[[whatsapp]]
id = "app-b"
app_secret = {{ file = "SECRET_FILE" }}
access_token = "{APP_B["token"]}"
verify_token = "app-b-verify-token"
phone_number_ids = ["{PHONE_B}"]
reply_format = "[B] {{teammate}}: {{text}}"

[[twilio]]
id = "sms-one"
account_sid = "{SID_1}"
auth_token = "{TOKEN_1}"
numbers = ["{NUMBER_1}"]

[[twilio]]
id = "sms-two"
account_sid = "{SID_2}"
auth_token = "{TOKEN_2}"
numbers = ["whatsapp:{NUMBER_2}"]

[[telegram]]
id = "bot-one"
bot_token = "{BOT_1}"
secret_token = "{BOT_SECRET_1}"

[[telegram]]
id = "bot-two"
bot_token = "{BOT_2}"
secret_token = "{BOT_SECRET_2}"
team_id = "55"
conversation_buffer_seconds = 60

[[viber]]
id = "viber-one"
auth_token = "{VIBER_1}"
bot_name = "Shop One"

[[viber]]
id = "viber-two"
auth_token = {{ env = "TEST_VIBER_TWO_TOKEN" }}
bot_name = "Shop Two"
reply_format = "{{text}} ({{teammate}})"
"""

ENV_CHANNELS_OFF: dict[str, Any] = dict.fromkeys((
    "whatsapp_app_secret", "whatsapp_verify_token", "whatsapp_access_token",
    "twilio_account_sid", "twilio_auth_token", "telegram_bot_token", "telegram_secret_token",
    "viber_auth_token",
))  # fmt: skip


def write_accounts(tmp_path: Path) -> Path:
    secret_file = tmp_path / "app-b-secret"
    secret_file.write_text(APP_B["secret"] + "\n")
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS.replace("SECRET_FILE", str(secret_file)))
    return path


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("TEST_APP_A_TOKEN", APP_A["token"])
    monkeypatch.setenv("TEST_VIBER_TWO_TOKEN", VIBER_2)
    providers = SandboxCredentials(
        whatsapp_access_token=APP_A["token"],
        more_whatsapp_access_tokens=(APP_B["token"],),
        twilio_account_sid=SID_1,
        twilio_auth_token=TOKEN_1,
        more_twilio_accounts=((SID_2, TOKEN_2),),
        telegram_bot_token=BOT_1,
        more_telegram_bot_tokens=(BOT_2,),
        viber_auth_token=VIBER_1,
        more_viber_auth_tokens=(VIBER_2,),
    )
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        providers=providers,
        accounts_file=str(write_accounts(tmp_path)),
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=2.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        **ENV_CHANNELS_OFF,
    ) as opened:
        yield opened


async def _whatsapp(stack: Stack, secret: str, phone_number_id: str, wa_id: str) -> int:
    message = WhatsAppInbound(
        from_phone=wa_id, text=f"hi from {wa_id}", message_id=f"wamid.{wa_id}"
    )
    stack.sandbox.providers.customer_wrote(wa_id, time.time())
    webhook = whatsapp_webhook(secret, phone_number_id, [message])
    return (await stack.post("/webhooks/whatsapp", webhook)).status_code


async def _twilio(stack: Stack, token: str, sid: str, to: str, customer: str) -> int:
    webhook = twilio_message_webhook(
        token, f"{stack.settings.public_url}/webhooks/twilio", account_sid=sid, to=to,
        from_=customer, body=f"hi from {customer}", message_sid=f"SM{customer[1:]:0>32}",
    )  # fmt: skip
    return (await stack.post("/webhooks/twilio", webhook)).status_code


async def _telegram(stack: Stack, path: str, secret: str, chat_id: int) -> int:
    webhook = telegram_message_webhook(secret, chat_id=chat_id, message_id=1, text="hi")
    return (await stack.post(path, webhook)).status_code


async def _reply_to_all(stack: Stack, count: int) -> None:
    await eventually(
        lambda: len(stack.conversations()) == count and stack.node.dispatcher.inflight == 0
    )
    for conversation in stack.conversations():
        await stack.sandbox.intercom.teammates.reply(str(conversation["id"]), "on it")
    await eventually(lambda: len(stack.sent()) == count)


async def test_each_whatsapp_app_verifies_its_own_webhooks_and_sends_its_own_replies(
    stack: Stack,
) -> None:
    # Another app's secret over this app's number: refused, nothing journaled.
    assert await _whatsapp(stack, APP_A["secret"], PHONE_B, "15550000001") == 401
    assert await _whatsapp(stack, APP_B["secret"], PHONE_A, "15550000001") == 401
    assert await _whatsapp(stack, "an-unknown-app-secret", PHONE_A, "15550000001") == 401
    assert await _whatsapp(stack, APP_A["secret"], PHONE_A, "15550000001") == 200
    assert await _whatsapp(stack, APP_B["secret"], PHONE_B, "15550000002") == 200
    await _reply_to_all(stack, 2)
    sent = {(m.account, m.to, m.credential) for m in stack.sent()}
    assert sent == {
        (PHONE_A, "15550000001", APP_A["token"]),
        (PHONE_B, "15550000002", APP_B["token"]),
    }
    # Each account's profile: A's tags on its conversation, B's reply format on its replies.
    texts = {m.account: m.text or "" for m in stack.sent()}
    assert texts[PHONE_B].startswith("[B] ")
    assert texts[PHONE_B].endswith(": on it")
    assert not texts[PHONE_A].startswith("[B] ")
    assert texts[PHONE_A].endswith(": on it")
    tags = {"15550000001" in c["parts"][0]["body"]: c["tags"] for c in stack.conversations()}
    assert tags == {True: ["app-a"], False: []}
    # Meta's GET handshake takes any configured app's verify token.
    answer = await stack.http.get(
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "app-b-verify-token",
                "hub.challenge": "42"},
    )  # fmt: skip
    assert (answer.status_code, answer.text.strip()) == (200, "42")
    refused = await stack.http.get(
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "1"},
    )
    assert refused.status_code == 403


async def test_each_twilio_account_verifies_its_own_webhooks_and_sends_its_own_replies(
    stack: Stack,
) -> None:
    # Signed by account 1 about account 2's number; signed with the other account's token.
    assert await _twilio(stack, TOKEN_1, SID_1, NUMBER_2, "+15550000003") == 401
    assert await _twilio(stack, TOKEN_1, SID_2, NUMBER_2, "+15550000003") == 401
    assert await _twilio(stack, TOKEN_2, SID_1, NUMBER_1, "+15550000003") == 401
    assert await _twilio(stack, TOKEN_1, SID_1, NUMBER_1, "+15550000003") == 200
    assert await _twilio(stack, TOKEN_2, SID_2, NUMBER_2, "+15550000004") == 200
    await _reply_to_all(stack, 2)
    sent = {(m.account, m.to, m.credential) for m in stack.sent()}
    assert sent == {(NUMBER_1, "+15550000003", SID_1), (NUMBER_2, "+15550000004", SID_2)}


async def test_each_telegram_bot_has_its_route_and_secret_and_replies_as_itself(
    stack: Stack,
) -> None:
    one, two = (f"/webhooks/telegram/{bot.partition(':')[0]}" for bot in (BOT_1, BOT_2))
    assert await _telegram(stack, two, BOT_SECRET_1, 501) == 401  # bot one's secret
    assert await _telegram(stack, one, BOT_SECRET_2, 501) == 401
    assert await _telegram(stack, "/webhooks/telegram", BOT_SECRET_1, 501) == 404  # no env bot
    assert await _telegram(stack, one, BOT_SECRET_1, 501) == 200
    assert await _telegram(stack, two, BOT_SECRET_2, 502) == 200
    await _reply_to_all(stack, 2)
    sent = {(m.account, m.to, m.credential) for m in stack.sent()}
    bot_one, bot_two = BOT_1.partition(":")[0], BOT_2.partition(":")[0]
    assert sent == {(bot_one, "501", bot_one), (bot_two, "502", bot_two)}
    profile = stack.settings.account_profile(stack.sent()[0].channel, bot_two)
    assert (profile.team_id, profile.buffer_seconds) == ("55", 60.0)


async def test_each_viber_bot_has_its_route_and_token_and_replies_under_its_name(
    stack: Stack,
) -> None:
    one, two = "/webhooks/viber/viber-one", "/webhooks/viber/viber-two"
    user_1, user_2 = "AAAAAAAAAAAAAAAAAAAA1w==", "b/b+bbbbbbbbbbbbbbbbbb=="
    assert (await stack.viber(user_1, "hi", path=two, auth_token=VIBER_1)).status_code == 401
    assert (await stack.viber(user_1, "hi", path=one, auth_token=VIBER_2)).status_code == 401
    no_env_bot = await stack.viber(user_1, "hi", path="/webhooks/viber", auth_token=VIBER_1)
    assert no_env_bot.status_code == 404
    assert (await stack.viber(user_1, "hi one", path=one, auth_token=VIBER_1)).status_code == 200
    assert (await stack.viber(user_2, "hi two", path=two, auth_token=VIBER_2)).status_code == 200
    await _reply_to_all(stack, 2)
    sent = {(m.account, m.to, m.credential, m.text) for m in stack.sent()}
    assert sent == {
        ("Shop One", user_1, VIBER_1, "Ada Operator: on it"),
        ("Shop Two", user_2, VIBER_2, "on it (Ada Operator)"),
    }


def test_the_profile_falls_back_to_the_global_settings_per_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_APP_A_TOKEN", APP_A["token"])
    monkeypatch.setenv("TEST_VIBER_TWO_TOKEN", VIBER_2)
    settings = Settings(
        _env_file=None,
        accounts_file=str(write_accounts(tmp_path)),
        intercom_default_admin_id="7",
        conversation_buffer_seconds=30,
        reply_format="{teammate} says {text}",
    )
    a = settings.account_profile(Channel.WHATSAPP, PHONE_A)
    assert (a.admin_id, a.buffer_seconds, a.reply_format, a.tags) == (
        "991267602", 30.0, "{teammate} says {text}", ("app-a",),
    )  # fmt: skip
    b = settings.account_profile(Channel.WHATSAPP, PHONE_B)
    assert (b.admin_id, b.reply_format, b.tags) == ("7", "[B] {teammate}: {text}", ())
    unknown = settings.account_profile(Channel.TWILIO, "+15550009999")
    assert (unknown.admin_id, unknown.team_id) == ("7", None)
    assert json.dumps(settings.secret_problems()) == "[]"
