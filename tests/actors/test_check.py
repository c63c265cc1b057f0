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

from actors.tools import SANDBOX_SECRETS, SandboxApp, sandbox_settings_env
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
    assert "active" in done.line("twilio")
    assert "@threadline_sandbox_bot" in done.line("telegram")
    assert done.line("telegram webhook").endswith(f"{PUBLIC_URL}/webhooks/telegram")


@pytest.mark.parametrize(
    ("setting", "name", "reason"),
    [
        ("THREADLINE_INTERCOM_ACCESS_TOKEN", "intercom", "token rejected (401"),
        ("THREADLINE_WHATSAPP_ACCESS_TOKEN", "whatsapp", "token rejected (401, 190)"),
        ("THREADLINE_TWILIO_AUTH_TOKEN", "twilio", "rejected (401, 20003)"),
        ("THREADLINE_TELEGRAM_BOT_TOKEN", "telegram", "bot token rejected (401"),
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
    assert failed <= {name, f"{name} webhook"}, done.lines
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


async def test_unconfigured_channels_are_skipped(sandbox: Sandbox, tmp_path: Path) -> None:
    only_intercom = {
        k: v
        for k, v in sandbox.env.items()
        if not k.startswith(("THREADLINE_WHATSAPP", "THREADLINE_TWILIO", "THREADLINE_TELEGRAM"))
    }
    done = await check(only_intercom, tmp_path)
    assert done.returncode == 0, done.lines
    for name in ("whatsapp", "twilio", "telegram", "telegram webhook"):
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
