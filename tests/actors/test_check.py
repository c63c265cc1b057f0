"""``threadline check`` as an operator runs it: a subprocess against the sandboxes over HTTP.

The sandbox Intercom and the sandbox providers serve the endpoints the check calls (``/me``,
``/admins/{id}``, the Graph ``/me`` and phone number, Twilio's account, ``getMe``,
``getWebhookInfo``) and check credentials as the real APIs do.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from actors.tools import SANDBOX_SECRETS, SandboxApp, meta_settings, sandbox_settings_env
from channels.sandbox import ProviderSandbox, SandboxCredentials
from runtime import hypercorn_config, serve_asgi

PUBLIC_URL = "https://bridge.example"
WRONG = "wrong-Zq81-credential"


@dataclass
class Sandbox:
    app: SandboxApp
    env: dict[str, str]


@dataclass
class Checked:
    returncode: int
    lines: list[str]
    stderr: str

    def line(self, name: str) -> str:
        found = [line for line in self.lines if line[5:].startswith(f"{name}:")]
        assert len(found) == 1, self.lines
        return found[0]


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    app = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, app, hypercorn_config("127.0.0.1:0"))
        env = {
            **sandbox_settings_env(address.url, PUBLIC_URL),
            "THREADLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'journal.db'}",
        }
        # What the operator does once (docs/going-live.md): point the bot at the bridge.
        bot = env["THREADLINE_TELEGRAM_BOT_TOKEN"]
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{env['THREADLINE_TELEGRAM_BASE_URL']}/bot{bot}/setWebhook",
                data={
                    "url": f"{PUBLIC_URL}/webhooks/telegram",
                    "secret_token": SANDBOX_SECRETS.telegram_secret_token,
                },
            )
            assert answer.json()["ok"] is True
            answer = await http.post(
                f"{env['THREADLINE_VIBER_BASE_URL']}/pa/set_webhook",
                json={"url": f"{PUBLIC_URL}/webhooks/viber"},
                headers={"X-Viber-Auth-Token": env["THREADLINE_VIBER_AUTH_TOKEN"]},
            )
            assert answer.json()["status"] == 0
            # And the LINE channel (its console, or the Messaging API).
            token = env["THREADLINE_LINE_CHANNEL_ACCESS_TOKEN"]
            answer = await http.put(
                f"{env['THREADLINE_LINE_BASE_URL']}/v2/bot/channel/webhook/endpoint",
                json={"endpoint": f"{PUBLIC_URL}/webhooks/line"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200
        yield Sandbox(app, env)
        nursery.cancel_scope.cancel()


async def check(env: dict[str, str], cwd: Path, *args: str) -> Checked:
    """Run ``threadline check ARGS`` with only ``env`` as its THREADLINE_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-m", "actors", "check", *args],
            env={**clean, **env},
            cwd=cwd,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return Checked(done.returncode, done.stdout.decode().splitlines(), done.stderr.decode())


async def test_every_credential_checks_out(sandbox: Sandbox, tmp_path: Path) -> None:
    number = SANDBOX_SECRETS.whatsapp_phone_number_id
    done = await check(sandbox.env, tmp_path, "--whatsapp-phone-number-id", number)
    assert done.returncode == 0, (done.lines, done.stderr)
    assert all(line.startswith("ok   ") for line in done.lines), done.lines
    assert 'workspace "Threadline Sandbox"' in done.line("intercom")
    assert "admin 991267601 found" in done.line("intercom")
    assert "quality GREEN" in done.line(f"whatsapp number {number}")
    assert "WABA 200000000000001: " in done.line("whatsapp templates")
    assert "active" in done.line("twilio")
    assert "@threadline_sandbox_bot" in done.line("telegram")
    assert done.line("telegram webhook").endswith(f"{PUBLIC_URL}/webhooks/telegram")
    assert done.line("viber").endswith(f"webhook {PUBLIC_URL}/webhooks/viber")
    assert "Threadline Sandbox (U5a5a" in done.line("line")
    assert done.line("line webhook").endswith(f"{PUBLIC_URL}/webhooks/line")


@pytest.mark.parametrize(
    ("setting", "name", "reason"),
    [
        ("THREADLINE_INTERCOM_ACCESS_TOKEN", "intercom", "token rejected (401"),
        ("THREADLINE_WHATSAPP_ACCESS_TOKEN", "whatsapp", "token rejected (401, 190)"),
        ("THREADLINE_TWILIO_AUTH_TOKEN", "twilio", "rejected (401, 20003)"),
        ("THREADLINE_TELEGRAM_BOT_TOKEN", "telegram", "bot token rejected (401"),
        ("THREADLINE_VIBER_AUTH_TOKEN", "viber", "auth token rejected (status 2"),
        ("THREADLINE_LINE_CHANNEL_ACCESS_TOKEN", "line", "channel access token rejected (401"),
    ],
)
async def test_a_wrong_credential_fails_its_line_only(
    sandbox: Sandbox, tmp_path: Path, setting: str, name: str, reason: str
) -> None:
    wrong = f"7000000001:{WRONG}" if setting.endswith("BOT_TOKEN") else WRONG
    done = await check({**sandbox.env, setting: wrong}, tmp_path)
    assert done.returncode == 1, (done.lines, done.stderr)
    line = done.line(name)
    assert line.startswith("FAIL "), line
    assert reason in line, line
    failed = {line[5:].partition(":")[0] for line in done.lines if line.startswith("FAIL")}
    assert failed <= {name, f"{name} webhook", f"{name} templates"}, done.lines
    assert WRONG not in "\n".join(done.lines) + done.stderr


async def test_a_missing_default_admin_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**sandbox.env, "THREADLINE_INTERCOM_DEFAULT_ADMIN_ID": "12345"}
    done = await check(env, tmp_path)
    assert done.returncode == 1
    assert done.line("intercom").startswith("FAIL intercom:")
    assert "admin 12345 not found" in done.line("intercom")


async def test_the_telegram_webhook_must_point_at_the_bridge(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    moved = {**sandbox.env, "THREADLINE_PUBLIC_URL": "https://elsewhere.example"}
    done = await check(moved, tmp_path)
    assert done.returncode == 1
    line = done.line("telegram webhook")
    assert line.startswith("FAIL"), line
    assert "not https://elsewhere.example/webhooks/telegram" in line
    sandbox.app.providers.telegram_webhook_failed(
        "Wrong response from the webhook: 401 Unauthorized", at=int(time.time()) - 120
    )
    done = await check(sandbox.env, tmp_path)
    assert done.returncode == 1
    line = done.line("telegram webhook")
    assert line.startswith("FAIL"), line
    assert "last delivery failed 2 min ago: Wrong response from the webhook: 401" in line


async def test_the_line_webhook_must_point_at_the_bridge_and_be_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    moved = {**sandbox.env, "THREADLINE_PUBLIC_URL": "https://elsewhere.example"}
    done = await check(moved, tmp_path)
    assert done.returncode == 1
    line = done.line("line webhook")
    assert line.startswith("FAIL"), line
    assert "not https://elsewhere.example/webhooks/line" in line
    sandbox.app.providers.line_webhook_off()
    done = await check(sandbox.env, tmp_path)
    line = done.line("line webhook")
    assert line.startswith("FAIL"), line
    assert "Use webhook is off" in line
    assert done.line("line").startswith("ok ")


async def test_unconfigured_channels_are_skipped(sandbox: Sandbox, tmp_path: Path) -> None:
    only_intercom = {
        k: v
        for k, v in sandbox.env.items()
        if not k.startswith(
            (
                "THREADLINE_WHATSAPP",
                "THREADLINE_TWILIO",
                "THREADLINE_TELEGRAM",
                "THREADLINE_VIBER",
                "THREADLINE_LINE",
            )
        )
    }
    done = await check(only_intercom, tmp_path)
    assert done.returncode == 0, done.lines
    for name in (
        "whatsapp",
        "twilio",
        "telegram",
        "telegram webhook",
        "viber",
        "line",
        "line webhook",
    ):
        assert done.line(name) == f"skip {name}: not configured"


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback URL whose server accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_each_check_has_a_time_limit(sandbox: Sandbox, tmp_path: Path, silent: str) -> None:
    env = {**sandbox.env, "THREADLINE_TWILIO_BASE_URL": silent}
    started = time.monotonic()
    done = await check(env, tmp_path, "--timeout", "1")
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    assert done.line("twilio") == "FAIL twilio: no answer within 1 s"
    assert done.line("intercom").startswith("ok ")


async def test_a_configuration_error_is_one_line_and_exit_2(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {**sandbox.env, "THREADLINE_WHATSAPP_APP_SECRET": "changeme"}
    done = await check(env, tmp_path)
    assert done.returncode == 2
    assert done.lines == []
    assert done.stderr.strip() == (
        "threadline: THREADLINE_WHATSAPP_APP_SECRET is a placeholder: set the real value"
    )


# --- the accounts file: every account's credentials -------------------------------------------

TOKEN_B, PHONE_B = "EAAG-check-app-b-access-token", "100000000000042"
WABA_B = "300000000000042"
SID_2, AUTH_2 = "AC" + "2" * 32, "2e" * 16
BOT_2 = "7100000002:check-bot-two-token-bbbbbbbb"


def _accounts_file(tmp_path: Path, token_b: str) -> str:
    creds = SandboxCredentials()
    path = tmp_path / "accounts.toml"
    path.write_text(f"""
[[whatsapp]]
id = "app-a"
app_secret = "app-a-secret-0123456789"
access_token = "{creds.whatsapp_access_token}"
phone_number_ids = ["{SANDBOX_SECRETS.whatsapp_phone_number_id}"]
business_account_id = "{creds.whatsapp_business_account_id}"

[[whatsapp]]
id = "app-b"
app_secret = "app-b-secret-0123456789"
access_token = "{token_b}"
phone_number_ids = ["{PHONE_B}"]
business_account_id = "{WABA_B}"

[[twilio]]
id = "sms-one"
account_sid = "{creds.twilio_account_sid}"
auth_token = "{creds.twilio_auth_token}"
numbers = ["+15557770001"]

[[twilio]]
id = "sms-two"
account_sid = "{SID_2}"
auth_token = "{AUTH_2}"
numbers = ["+15557770002"]

[[telegram]]
id = "bot-one"
bot_token = "{creds.telegram_bot_token}"
secret_token = "bot-one-webhook-secret"

[[telegram]]
id = "bot-two"
bot_token = "{BOT_2}"
secret_token = "bot-two-webhook-secret"

[[viber]]
id = "viber-shop"
auth_token = "{creds.viber_auth_token}"
bot_name = "Shop"

[[line]]
id = "line-jp"
channel_secret = "line-jp-channel-secret"
channel_access_token = "{creds.line_channel_access_token}"
bot_user_id = "{creds.line_bot_user_id}"
""")
    return str(path)


@pytest.fixture
async def accounts_sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A sandbox knowing two Meta apps, two Twilio accounts and two bots, each bot's webhook
    set to its own route; the bridge's settings name them in an accounts file only."""
    app = SandboxApp(
        providers=ProviderSandbox(
            SandboxCredentials(
                more_whatsapp_access_tokens=(TOKEN_B,),
                whatsapp_phone_number_ids=(SANDBOX_SECRETS.whatsapp_phone_number_id, PHONE_B),
                more_twilio_accounts=((SID_2, AUTH_2),),
                more_telegram_bot_tokens=(BOT_2,),
                more_whatsapp_business_accounts=((WABA_B, TOKEN_B),),
            )
        )
    )
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, app, hypercorn_config("127.0.0.1:0"))
        env = {
            k: v
            for k, v in sandbox_settings_env(address.url, PUBLIC_URL).items()
            if k.endswith("_BASE_URL") or k.startswith(("THREADLINE_INTERCOM", "THREADLINE_PUB"))
        }
        env["THREADLINE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'journal.db'}"
        async with httpx.AsyncClient() as http:
            for bot, secret in (
                (SandboxCredentials().telegram_bot_token, "bot-one-webhook-secret"),
                (BOT_2, "bot-two-webhook-secret"),
            ):
                route = f"{PUBLIC_URL}/webhooks/telegram/{bot.partition(':')[0]}"
                answer = await http.post(
                    f"{env['THREADLINE_TELEGRAM_BASE_URL']}/bot{bot}/setWebhook",
                    data={"url": route, "secret_token": secret},
                )
                assert answer.json()["ok"] is True
            answer = await http.post(
                f"{env['THREADLINE_VIBER_BASE_URL']}/pa/set_webhook",
                json={"url": f"{PUBLIC_URL}/webhooks/viber/viber-shop"},
                headers={"X-Viber-Auth-Token": SandboxCredentials().viber_auth_token},
            )
            assert answer.json()["status"] == 0
            # And the LINE channel, on its own route.
            creds = SandboxCredentials()
            answer = await http.put(
                f"{env['THREADLINE_LINE_BASE_URL']}/v2/bot/channel/webhook/endpoint",
                json={"endpoint": f"{PUBLIC_URL}/webhooks/line/{creds.line_bot_user_id}"},
                headers={"Authorization": f"Bearer {creds.line_channel_access_token}"},
            )
            assert answer.status_code == 200
        yield Sandbox(app, env)
        nursery.cancel_scope.cancel()


async def test_every_account_of_the_accounts_file_is_checked(
    accounts_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {
        **accounts_sandbox.env,
        "THREADLINE_ACCOUNTS_FILE": _accounts_file(tmp_path, TOKEN_B),
        "THREADLINE_WHATSAPP_REENGAGEMENT_TEMPLATE": "conversation_reopen",
    }
    done = await check(env, tmp_path, "--whatsapp-phone-number-id", "100000000000099")
    assert done.returncode == 1, (done.lines, done.stderr)
    failed = [line for line in done.lines if not line.startswith("ok   ")]
    assert failed == [
        "FAIL whatsapp number 100000000000099: no WhatsApp app of THREADLINE_ACCOUNTS_FILE "
        f"{tmp_path / 'accounts.toml'} lists it (phone_number_ids)"
    ], done.lines
    number_a = SANDBOX_SECRETS.whatsapp_phone_number_id
    for name in ("whatsapp app-a", "whatsapp app-b", f"whatsapp app-a number {number_a}",
                 f"whatsapp app-b number {PHONE_B}", "twilio sms-one", "twilio sms-two",
                 "telegram bot-one", "telegram bot-two", "viber viber-shop"):  # fmt: skip
        assert done.line(name).startswith("ok   "), done.lines
    assert "+1 555-000-0042" in done.line(f"whatsapp app-b number {PHONE_B}")
    assert done.line("whatsapp app-b templates").endswith(
        "templates, re-engagement conversation_reopen (en_US) approved"
    )
    assert done.line("whatsapp app-a templates").startswith("ok   ")
    assert "(7100000002)" in done.line("telegram bot-two")
    assert done.line("telegram bot-two webhook").endswith("/webhooks/telegram/7100000002")
    assert done.line("viber viber-shop").endswith("/webhooks/viber/viber-shop")
    line_bot = SandboxCredentials().line_bot_user_id
    assert f"({line_bot}, " in done.line("line line-jp")
    assert done.line("line line-jp webhook").endswith(f"/webhooks/line/{line_bot}")
    assert all(
        not line[5:].startswith(("whatsapp:", "twilio:", "telegram:", "line:"))
        for line in done.lines
    )


async def test_a_wrong_credential_of_one_account_fails_its_lines_only(
    accounts_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {**accounts_sandbox.env, "THREADLINE_ACCOUNTS_FILE": _accounts_file(tmp_path, WRONG)}
    done = await check(env, tmp_path)
    assert done.returncode == 1, (done.lines, done.stderr)
    failed = {line[5:].partition(":")[0] for line in done.lines if line.startswith("FAIL")}
    assert failed == {
        "whatsapp app-b",
        f"whatsapp app-b number {PHONE_B}",
        "whatsapp app-b templates",
    }, done.lines
    assert "token rejected (401, 190)" in done.line("whatsapp app-b")
    assert WRONG not in "\n".join(done.lines) + done.stderr


async def test_each_apps_waba_must_hold_the_reengagement_template(
    accounts_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {
        **accounts_sandbox.env,
        "THREADLINE_ACCOUNTS_FILE": _accounts_file(tmp_path, TOKEN_B),
        "THREADLINE_WHATSAPP_REENGAGEMENT_TEMPLATE": "no_such_template",
    }
    done = await check(env, tmp_path)
    assert done.returncode == 1, (done.lines, done.stderr)
    failed = [line for line in done.lines if line.startswith("FAIL")]
    assert failed == [
        f"FAIL whatsapp {app} templates: WABA {waba}: the re-engagement template "
        "no_such_template is not approved in en_US (THREADLINE_WHATSAPP_REENGAGEMENT_TEMPLATE)"
        for app, waba in (("app-a", "200000000000001"), ("app-b", WABA_B))
    ], done.lines


async def test_messenger_and_instagram_tokens_are_checked_when_configured(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    meta = meta_settings()
    assert meta.items() <= sandbox.env.items()  # the sandbox turns them on, like the others
    unset = {k: v for k, v in sandbox.env.items() if k not in meta}
    done = await check(unset, tmp_path)
    assert not any(line[5:].startswith(("messenger", "instagram")) for line in done.lines)
    env = sandbox.env
    done = await check(env, tmp_path)
    assert done.returncode == 0, (done.lines, done.stderr)
    assert done.line("messenger").startswith("ok   ")
    assert f"Page Threadline Sandbox ({SANDBOX_SECRETS.messenger_page_id})" in done.line(
        "messenger"
    )
    assert "Instagram account" in done.line("instagram")
    wrong = {**env, "THREADLINE_MESSENGER_PAGE_ACCESS_TOKEN": WRONG}
    done = await check(wrong, tmp_path)
    assert done.returncode == 1
    assert done.line("messenger").startswith("FAIL ")
    assert WRONG not in "\n".join(done.lines) + done.stderr
