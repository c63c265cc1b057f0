"""LINE channels in the accounts file (``[[line]]``) and the ``THREADLINE_LINE_*`` settings.

Each channel of the file has its own route, ``/webhooks/line/<bot user id>``, verifies its
webhooks with its own channel secret (another's → 401, nothing journaled) and replies with its
own access token; the file's problems are one line each naming the account and the field. End
to end over HTTP on loopback, on SQLite (the accounts do not touch the store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from actors.core import Settings
from actors.tools import Stack, open_stack
from channels import Channel, LineSettings, channel_spec
from channels.sandbox import SandboxCredentials, line_event, line_events_webhook
from tests.actors.conftest import eventually

BOT_1, BOT_2 = "U" + "1a" * 16, "U" + "2b" * 16
SECRET_1, SECRET_2 = "1c" * 16, "2d" * 16
TOKEN_1, TOKEN_2 = "line-token-one-" + "a" * 20, "line-token-two-" + "b" * 20
ACCOUNTS = f"""
[[line]]
id = "line-one"
channel_secret = "{SECRET_1}"
channel_access_token = {{ env = "TEST_LINE_TOKEN_1" }}
bot_user_id = "{BOT_1}"

[[line]]
id = "line-two"
channel_secret = "{SECRET_2}"
channel_access_token = "{TOKEN_2}"
bot_user_id = "{BOT_2}"
team_id = "55"
"""
LINE_OFF: dict[str, Any] = dict.fromkeys(("line_channel_secret", "line_channel_access_token"))


def _write(tmp_path: Path, text: str = ACCOUNTS) -> str:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("TEST_LINE_TOKEN_1", TOKEN_1)
    providers = SandboxCredentials(
        line_channel_access_token=TOKEN_1, more_line_channel_access_tokens=(TOKEN_2,)
    )
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        providers=providers,
        accounts_file=_write(tmp_path),
        shutdown_drain_seconds=2.0,
        **LINE_OFF,
    ) as opened:
        yield opened


async def _message(stack: Stack, path: str, secret: str, bot: str, user: str) -> int:
    event = line_event("message", user, message={"id": user[-6:], "type": "text", "text": "hi"})
    webhook = line_events_webhook(secret, bot, [event])
    return (await stack.post(path, webhook)).status_code


async def test_each_line_channel_has_its_route_and_secret_and_replies_with_its_token(
    stack: Stack,
) -> None:
    one, two = f"/webhooks/line/{BOT_1}", f"/webhooks/line/{BOT_2}"
    user_1, user_2 = "U" + "0" * 31 + "1", "U" + "0" * 31 + "2"
    assert await _message(stack, two, SECRET_1, BOT_2, user_1) == 401  # channel one's secret
    assert await _message(stack, one, SECRET_2, BOT_1, user_1) == 401
    assert await _message(stack, one, SECRET_1, BOT_2, user_1) == 401  # about the other bot
    assert await _message(stack, "/webhooks/line", SECRET_1, BOT_1, user_1) == 404  # no env one
    assert stack.conversations() == []
    assert await _message(stack, one, SECRET_1, BOT_1, user_1) == 200
    assert await _message(stack, two, SECRET_2, BOT_2, user_2) == 200
    await eventually(
        lambda: len(stack.conversations()) == 2 and stack.node.dispatcher.inflight == 0
    )
    for conversation in stack.conversations():
        await stack.sandbox.intercom.teammates.reply(str(conversation["id"]), "on it")
    await eventually(lambda: len(stack.sent()) == 2)
    assert {(m.to, m.credential) for m in stack.sent()} == {(user_1, TOKEN_1), (user_2, TOKEN_2)}
    assert stack.settings.account_profile(Channel.LINE, BOT_2).team_id == "55"


def test_the_views_and_routes_of_the_file_and_of_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LINE_TOKEN_1", TOKEN_1)
    spec = channel_spec(Channel.LINE)
    filed = Settings(_env_file=None, accounts_file=_write(tmp_path))
    assert filed.secret_problems() == []
    views: list[LineSettings] = list(filed.channel_accounts(Channel.LINE))
    assert [spec.account_route(v) for v in views] == [
        f"/webhooks/line/{BOT_1}",
        f"/webhooks/line/{BOT_2}",
    ]
    assert [spec.accounts(v) for v in views] == [frozenset({BOT_1}), frozenset({BOT_2})]
    env = Settings(
        _env_file=None,
        line_channel_secret=SecretStr(SECRET_1),
        line_channel_access_token=SecretStr(TOKEN_1),
    )
    (view,) = env.channel_accounts(Channel.LINE)
    assert (spec.account_route(view), spec.accounts(view)) == (None, None)
    assert (view.base_url, view.data_base_url, view.groups) == (
        "https://api.line.me",
        "https://api-data.line.me",
        "ignore",
    )
    assert spec.receives(view)
    assert spec.sends(view)
    assert not spec.receives(
        Settings(_env_file=None, line_channel_access_token=SecretStr(TOKEN_1)).line
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('bot_user_id = "{BOT_1}"', 'bot_user_id = "nope"'), "'line-one': bot_user_id: must be"),
        ((f'channel_secret = "{SECRET_2}"', f'channel_secret = "{SECRET_1}"'), "channel_secret"),
        ((f'channel_secret = "{SECRET_1}"\n', ""), "'line-one': channel_secret: required"),
        ((f'channel_secret = "{SECRET_1}"', 'channel_secret = "CHANGE-ME"'), "placeholder"),
        (('team_id = "55"', 'bot_token = "1:x"'), "bot_token: unknown field"),
        ((f'bot_user_id = "{BOT_2}"', f'bot_user_id = "{BOT_1}"'), "also an account of"),
    ],
)
def test_a_bad_line_account_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str], problem: str
) -> None:
    monkeypatch.setenv("TEST_LINE_TOKEN_1", TOKEN_1)
    old, new = change
    old = old.replace("{BOT_1}", BOT_1)
    assert old in ACCOUNTS
    settings = Settings(_env_file=None, accounts_file=_write(tmp_path, ACCOUNTS.replace(old, new)))
    problems = settings.secret_problems()
    assert any(problem in line for line in problems), problems
    assert not any(SECRET_1 in line or TOKEN_1 in line for line in problems)


def test_line_in_the_file_and_in_the_variables_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LINE_TOKEN_1", TOKEN_1)
    settings = Settings(
        _env_file=None, accounts_file=_write(tmp_path), line_channel_secret=SecretStr(SECRET_1)
    )
    (problem,) = settings.secret_problems()
    assert "lists line accounts and THREADLINE_LINE_CHANNEL_SECRET is set too" in problem


@pytest.mark.parametrize("value", ["", "changeme", "short", " padded-secret-value "])
def test_a_placeholder_line_secret_is_a_configuration_error(value: str) -> None:
    settings = Settings(_env_file=None, line_channel_secret=SecretStr(value))
    (problem,) = settings.secret_problems()
    assert problem.startswith("THREADLINE_LINE_CHANNEL_SECRET ")
