"""WhatsApp templates per account (issue 18): with several Meta apps in the accounts file, a
re-engagement template is looked up in the WhatsApp Business Account of the app that owns the
thread's number (its ``business_account_id``, read with its own access token) and sent with
that app's token; start-up refuses a re-engagement template when an app has no WABA id."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from actors.core import Settings
from actors.service import ConfigurationError, check_settings
from actors.tools import Stack, open_stack
from channels.sandbox import SandboxCredentials, WhatsAppInbound, whatsapp_webhook
from tests.actors.conftest import eventually

SECRET_A, SECRET_B = "a" * 8 + "templates-app-a", "b" * 8 + "templates-app-b"
TOKEN_A, TOKEN_B = "EAAG-templates-app-a-token", "EAAG-templates-app-b-token"
PHONE_A, PHONE_B = "100000000000031", "100000000000032"
WABA_A, WABA_B = "300000000000001", "300000000000002"

ACCOUNTS = f"""
[[whatsapp]]
id = "app-a"
app_secret = "{SECRET_A}"
access_token = "{TOKEN_A}"
phone_number_ids = ["{PHONE_A}"]
business_account_id = "{WABA_A}"

[[whatsapp]]
id = "app-b"
app_secret = "{SECRET_B}"
access_token = "{TOKEN_B}"
phone_number_ids = ["{PHONE_B}"]
WABA_B_LINE
"""

ENV_WHATSAPP_OFF = dict.fromkeys(
    ("whatsapp_app_secret", "whatsapp_verify_token", "whatsapp_access_token")
)


def write_accounts(tmp_path: Path, *, waba_b: bool = True) -> str:
    path = tmp_path / "accounts.toml"
    line = f'business_account_id = "{WABA_B}"' if waba_b else ""
    path.write_text(ACCOUNTS.replace("WABA_B_LINE", line))
    return str(path)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    providers = SandboxCredentials(
        whatsapp_access_token=TOKEN_A,
        more_whatsapp_access_tokens=(TOKEN_B,),
        whatsapp_phone_number_ids=(PHONE_A, PHONE_B),
        more_whatsapp_business_accounts=((WABA_A, TOKEN_A), (WABA_B, TOKEN_B)),
    )
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        providers=providers,
        accounts_file=write_accounts(tmp_path),
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=2.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        whatsapp_reengagement_template="conversation_reopen",
        **ENV_WHATSAPP_OFF,
    ) as opened:
        yield opened


async def _wrote_a_day_ago(stack: Stack, secret: str, phone_number_id: str, wa_id: str) -> None:
    at = time.time() - 25 * 3600
    message = WhatsAppInbound(
        from_phone=wa_id, text=f"hi from {wa_id}", message_id=f"wamid.{wa_id}",
        sent_at=datetime.fromtimestamp(at, UTC),
    )  # fmt: skip
    stack.sandbox.providers.customer_wrote(wa_id, at)
    webhook = whatsapp_webhook(secret, phone_number_id, [message])
    assert (await stack.post("/webhooks/whatsapp", webhook)).status_code == 200


async def test_a_reply_outside_the_window_uses_the_owning_apps_templates(stack: Stack) -> None:
    await _wrote_a_day_ago(stack, SECRET_A, PHONE_A, "15550000031")
    await _wrote_a_day_ago(stack, SECRET_B, PHONE_B, "15550000032")
    await eventually(
        lambda: len(stack.conversations()) == 2 and stack.node.dispatcher.inflight == 0
    )
    for conversation in stack.conversations():
        await stack.sandbox.intercom.teammates.reply(str(conversation["id"]), "Yes, covered.")
    await eventually(lambda: len(stack.sent()) == 2 and stack.node.dispatcher.inflight == 0)
    sent = {(m.type, m.template, m.account, m.to, m.credential) for m in stack.sent()}
    assert sent == {
        ("template", "conversation_reopen", PHONE_A, "15550000031", TOKEN_A),
        ("template", "conversation_reopen", PHONE_B, "15550000032", TOKEN_B),
    }
    # Each app's WABA, read with its own token; none other (not the environment's WABA).
    lookups = stack.sandbox.providers.template_lookups
    assert sorted(lookups) == [(WABA_A, TOKEN_A), (WABA_B, TOKEN_B)]


async def test_the_send_api_checks_a_template_in_the_owning_apps_waba(stack: Stack) -> None:
    body = {
        "channel": "whatsapp", "account": PHONE_B, "customer": "15550000033",
        "template": {"name": "conversation_reopen", "language": {"code": "en_US"}},
    }  # fmt: skip
    headers = {"authorization": "Bearer sandbox-api-token"}
    response = await stack.http.post("/api/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    await eventually(lambda: len(stack.sent()) == 1 and stack.node.dispatcher.inflight == 0)
    [sent] = stack.sent()
    assert (sent.template, sent.account, sent.credential) == (
        "conversation_reopen",
        PHONE_B,
        TOKEN_B,
    )
    assert stack.sandbox.providers.template_lookups == [(WABA_B, TOKEN_B)]
    no_such = {"name": "no_such", "language": {"code": "en_US"}}
    unknown = await stack.http.post(
        "/api/messages", json={**body, "template": no_such}, headers=headers
    )
    assert unknown.status_code == 422, unknown.text


def test_start_up_refuses_a_reengagement_template_when_an_app_has_no_waba(
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None,
        intercom_access_token=SecretStr("intercom-token-for-tests"),
        accounts_file=write_accounts(tmp_path, waba_b=False),
        whatsapp_reengagement_template="conversation_reopen",
        whatsapp_business_account_id="200000000000001",  # the environment's app's: not B's
    )
    with pytest.raises(ConfigurationError) as refused:
        check_settings(settings)
    assert "'app-b'" in str(refused.value)
    assert "'app-a'" not in str(refused.value)
    assert "business_account_id" in str(refused.value)
    check_settings(
        Settings(
            _env_file=None,
            intercom_access_token=SecretStr("intercom-token-for-tests"),
            accounts_file=write_accounts(tmp_path),
            whatsapp_reengagement_template="conversation_reopen",
        )
    )
