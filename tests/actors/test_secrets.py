"""Secrets fail closed: a present but empty, placeholder or too-short secret stops start-up with a
reason naming the setting (never its value); real-looking secrets start; ``/metrics`` checks its
bearer token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.core import Settings
from actors.service import ConfigurationError, check_settings
from actors.tools import open_stack, sandbox_settings_env
from tests.postgres import free_port
from tests.provider_secrets import REAL_LOOKING

SECRETS = [
    "THREADLINE_INTERCOM_ACCESS_TOKEN",
    "THREADLINE_INTERCOM_CLIENT_SECRET",
    "THREADLINE_WHATSAPP_APP_SECRET",
    "THREADLINE_WHATSAPP_VERIFY_TOKEN",
    "THREADLINE_WHATSAPP_ACCESS_TOKEN",
    "THREADLINE_TWILIO_AUTH_TOKEN",
    "THREADLINE_TELEGRAM_BOT_TOKEN",
    "THREADLINE_TELEGRAM_SECRET_TOKEN",
    "THREADLINE_MESSENGER_APP_SECRET",
    "THREADLINE_MESSENGER_VERIFY_TOKEN",
    "THREADLINE_MESSENGER_PAGE_ACCESS_TOKEN",
    "THREADLINE_INSTAGRAM_APP_SECRET",
    "THREADLINE_INSTAGRAM_VERIFY_TOKEN",
    "THREADLINE_INSTAGRAM_ACCESS_TOKEN",
    "THREADLINE_VIBER_AUTH_TOKEN",
    "THREADLINE_LINE_CHANNEL_SECRET",
    "THREADLINE_LINE_CHANNEL_ACCESS_TOKEN",
    "THREADLINE_API_TOKEN",
    "THREADLINE_METRICS_TOKEN",
]
PLACEHOLDERS = [
    "CHANGE-ME",
    "changeme",
    "Change_Me",
    "CHANGE-ME-whatsapp-secret",
    "placeholder",
    "PLACEHOLDER",
    "xxx",
    "XXXXXXXXXXXXXXXX",
    "secret",
    "Secret",
    "TODO",
    "todo",
    "<your app secret>",
    "${WHATSAPP_APP_SECRET}",
]


def settings(env: dict[str, str]) -> Settings:
    values: dict[str, Any] = {k.removeprefix("THREADLINE_").lower(): v for k, v in env.items()}
    return Settings(_env_file=None, **values)


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as refused:
        check_settings(settings(env))
    return str(refused.value)


def test_real_looking_secrets_of_every_provider_start() -> None:
    check_settings(settings({**REAL_LOOKING, "THREADLINE_METRICS_BIND": "0.0.0.0:9464"}))


def test_the_sandbox_settings_pass_the_checks() -> None:
    check_settings(settings(sandbox_settings_env("http://127.0.0.1:1", "http://127.0.0.1:2")))


@pytest.mark.parametrize("variable", SECRETS)
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_secret_is_refused_not_taken_as_disabled(variable: str, value: str) -> None:
    reason = refusal({**REAL_LOOKING, variable: value})
    assert variable in reason
    assert "empty" in reason


@pytest.mark.parametrize("variable", SECRETS)
@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_a_placeholder_secret_is_refused(variable: str, value: str) -> None:
    reason = refusal({**REAL_LOOKING, variable: value})
    assert f"{variable} is a placeholder" in reason


@pytest.mark.parametrize("variable", SECRETS)
def test_a_short_secret_is_refused_without_echoing_it(variable: str) -> None:
    reason = refusal({**REAL_LOOKING, variable: "Zq7-k2"})
    assert variable in reason
    assert "Zq7-k2" not in reason


def test_secrets_padded_with_whitespace_are_refused() -> None:
    secret = REAL_LOOKING["THREADLINE_WHATSAPP_APP_SECRET"]
    reason = refusal({**REAL_LOOKING, "THREADLINE_WHATSAPP_APP_SECRET": secret + "\n"})
    assert "THREADLINE_WHATSAPP_APP_SECRET" in reason
    assert secret not in reason


def test_telegram_tokens_follow_telegram_rules() -> None:
    reason = refusal({**REAL_LOOKING, "THREADLINE_TELEGRAM_SECRET_TOKEN": "not allowed: spaces!"})
    assert "THREADLINE_TELEGRAM_SECRET_TOKEN" in reason
    reason = refusal({**REAL_LOOKING, "THREADLINE_TELEGRAM_BOT_TOKEN": "no-bot-id-in-this-token"})
    assert "THREADLINE_TELEGRAM_BOT_TOKEN" in reason


def test_a_viber_auth_token_needs_the_bot_s_sender_name() -> None:
    token = REAL_LOOKING["THREADLINE_VIBER_AUTH_TOKEN"]
    without = {k: v for k, v in REAL_LOOKING.items() if k != "THREADLINE_VIBER_BOT_NAME"}
    reason = refusal(without)
    assert "THREADLINE_VIBER_BOT_NAME is not set: Viber needs a sender name" in reason
    assert token not in reason


def test_placeholder_account_sid_and_database_password_are_refused() -> None:
    reason = refusal({**REAL_LOOKING, "THREADLINE_TWILIO_ACCOUNT_SID": "CHANGE-ME"})
    assert "THREADLINE_TWILIO_ACCOUNT_SID" in reason
    url = "postgresql://threadline:CHANGE-ME@db.example:5432/threadline"
    reason = refusal({**REAL_LOOKING, "THREADLINE_DATABASE_URL": url})
    assert "THREADLINE_DATABASE_URL" in reason
    assert "CHANGE-ME" not in reason


def test_every_problem_is_named_at_once() -> None:
    reason = refusal(dict.fromkeys(SECRETS, ""))
    for name in SECRETS:
        assert name in reason


def test_absent_channel_variables_disable_the_channel() -> None:
    check_settings(settings({"THREADLINE_INTERCOM_ACCESS_TOKEN": REAL_LOOKING[SECRETS[0]]}))


@pytest.mark.parametrize("bind", ["0.0.0.0:9464", "[::]:9464", "10.0.0.7:9464"])
def test_an_empty_metrics_token_on_a_public_metrics_bind_is_refused(bind: str) -> None:
    reason = refusal(
        {**REAL_LOOKING, "THREADLINE_METRICS_BIND": bind, "THREADLINE_METRICS_TOKEN": ""}
    )
    assert "THREADLINE_METRICS_TOKEN" in reason


@pytest.mark.parametrize(
    "channel",
    ["whatsapp_app_secret", "twilio_auth_token", "telegram_secret_token", "intercom_client_secret"],
)
async def test_a_bridge_with_an_empty_webhook_secret_does_not_start(
    channel: str, tmp_path: Path
) -> None:
    refused = pytest.RaisesExc(
        ConfigurationError, match=f"THREADLINE_{channel.upper()} is set but empty"
    )
    with pytest.RaisesGroup(refused, flatten_subgroups=True):
        overrides: dict[str, Any] = {channel: ""}
        async with open_stack(database_url=f"sqlite:///{tmp_path / 'j.db'}", **overrides):
            pytest.fail("the bridge started with an empty webhook secret")


def serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``threadline serve`` as a user runs it; a bridge that starts is stopped after 20 s."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("THREADLINE_")}
    try:
        return subprocess.run(
            [sys.executable, "-m", "actors", "serve"],
            env={**clean, **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("serve started instead of refusing its settings")


def test_serve_refuses_an_empty_whatsapp_app_secret(tmp_path: Path) -> None:
    env = {
        **sandbox_settings_env("http://127.0.0.1:1", "http://127.0.0.1:2"),
        "THREADLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}",
        "THREADLINE_BIND": f"127.0.0.1:{free_port()}",
        "THREADLINE_METRICS_BIND": f"127.0.0.1:{free_port()}",
        "THREADLINE_WHATSAPP_APP_SECRET": "",
        "THREADLINE_TWILIO_AUTH_TOKEN": "Zq7-k2",
    }
    done = serve(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "THREADLINE_WHATSAPP_APP_SECRET" in done.stderr
    assert "THREADLINE_TWILIO_AUTH_TOKEN" in done.stderr
    assert "Zq7-k2" not in done.stderr


def test_serve_workers_refuse_bad_secrets_before_starting_any_worker(tmp_path: Path) -> None:
    env = {
        "THREADLINE_INTERCOM_ACCESS_TOKEN": "CHANGE-ME",
        "THREADLINE_BIND": f"127.0.0.1:{free_port()}",
    }
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("THREADLINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "actors", "serve", "--workers", "2",
         "--database-url", "postgresql://threadline@127.0.0.1:1/threadline"],
        env={**clean, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=20,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "THREADLINE_INTERCOM_ACCESS_TOKEN is a placeholder" in done.stderr


def test_invalid_settings_do_not_echo_the_database_password(tmp_path: Path) -> None:
    url = "mysql://threadline:hunter2-Qx9@db.example/threadline"
    done = serve({"THREADLINE_DATABASE_URL": url}, tmp_path)
    assert done.returncode == 2
    assert "THREADLINE_DATABASE_URL" in done.stderr
    assert "hunter2-Qx9" not in done.stderr


async def test_metrics_bearer_token(tmp_path: Path) -> None:
    token = REAL_LOOKING["THREADLINE_METRICS_TOKEN"]
    async with (
        open_stack(database_url=f"sqlite:///{tmp_path / 'j.db'}", metrics_token=token) as stack,
        httpx.AsyncClient(timeout=10.0) as client,
    ):
        url = stack.node.metrics.url + "/metrics"
        right = await client.get(url, headers={"authorization": f"Bearer {token}"})
        assert right.status_code == 200
        assert "threadline_" in right.text
        wrong: list[dict[bytes, bytes]] = [
            {},
            *(
                {b"authorization": value.encode("latin-1")}
                for value in (
                    "",
                    "Bearer",
                    f"Bearer {token[:-1]}",
                    f"Bearer {token}x",
                    f"bearer {token}",
                    token,
                    "Bearer caf\xe9",  # not ASCII: compared as bytes, no error
                )
            ),
        ]
        for headers in wrong:
            answer = await client.get(url, headers=headers)
            assert answer.status_code == 401, headers
            assert token not in answer.text
