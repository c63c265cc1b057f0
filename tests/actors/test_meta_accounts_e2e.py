"""Messenger and Instagram in the accounts file (``[[messenger]]``, ``[[instagram]]``): each
Meta app verifies its own webhooks, owns its Pages (a webhook it signed about another Page is
refused, nothing journaled) and replies with its own token. Over HTTP on loopback, SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from actors.core import Settings
from actors.tools import Stack, open_stack
from channels import Channel
from channels.sandbox import MetaInbound, SandboxCredentials, meta_webhook
from tests.actors.conftest import eventually

SECRET_A = "messenger-app-a-secret-0001"
SECRET_B = "messenger-app-b-secret-0002"
TOKEN_A = "EAAG-page-token-of-app-a-0001"
PAGE_A1, PAGE_A2, PAGE_B = "682498302938465", "682498302938466", "700000000000001"
IG_SECRET, IG_TOKEN, IG_ACCOUNT = (
    "instagram-app-secret-0003",
    "IGAA-token-0003",
    "17841400000000009",
)

ACCOUNTS = f"""
[[messenger]]
id = "shop-pages"
app_secret = "{SECRET_A}"
verify_token = "shop-pages-verify"
page_access_token = {{ env = "TEST_PAGE_TOKEN_A" }}
page_ids = ["{PAGE_A1}", "{PAGE_A2}"]
tags = ["facebook"]

[[messenger]]
id = "other-app"
app_secret = "{SECRET_B}"
page_access_token = "EAAG-page-token-of-app-b-0002"
page_ids = ["{PAGE_B}"]

[[instagram]]
id = "shop-ig"
app_secret = "{IG_SECRET}"
access_token = "{IG_TOKEN}"
account_ids = ["{IG_ACCOUNT}"]
"""

ENV_META_OFF: dict[str, Any] = dict.fromkeys((
    "messenger_app_secret", "messenger_verify_token", "messenger_page_access_token",
    "instagram_app_secret", "instagram_verify_token", "instagram_access_token",
))  # fmt: skip


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("TEST_PAGE_TOKEN_A", TOKEN_A)
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS)
    providers = SandboxCredentials(
        messenger_page_access_token=TOKEN_A, instagram_access_token=IG_TOKEN
    )
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        providers=providers,
        accounts_file=str(path),
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=2.0,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        **ENV_META_OFF,
    ) as opened:
        yield opened


async def _post(
    stack: Stack, secret: str, account: str, sender: str, *, channel: Channel = Channel.MESSENGER
) -> int:
    event = MetaInbound(sender=sender, text=f"hello {account}")
    kind = "page" if channel is Channel.MESSENGER else "instagram"
    webhook = meta_webhook(secret, account, [event], object=kind)
    stack.sandbox.providers.meta_customer_wrote(channel, account, sender, 1e12)
    response = await stack.post(f"/webhooks/{channel.value}", webhook)
    return response.status_code


async def test_each_app_verifies_its_own_pages_and_replies_with_its_token(stack: Stack) -> None:
    assert await _post(stack, SECRET_A, PAGE_A2, "9001") == 200
    await eventually(lambda: len(stack.conversations()) == 1)
    # Signed by app A, but about app B's Page: refused, nothing bridged.
    assert await _post(stack, SECRET_A, PAGE_B, "9002") == 401
    # Another app's secret for app A's Page, and a secret nobody has: refused.
    assert await _post(stack, SECRET_B, PAGE_A1, "9003") == 401
    assert await _post(stack, "not-a-configured-secret", PAGE_A1, "9004") == 401
    (conversation,) = stack.conversations()
    await stack.sandbox.intercom.teammates.reply(
        str(conversation["id"]), "on it", admin_id="991267602"
    )
    await eventually(lambda: len(stack.sent()) == 1)
    (sent,) = stack.sent()
    assert (sent.channel, sent.account, sent.to) == (Channel.MESSENGER, PAGE_A2, "9001")
    assert sent.credential == TOKEN_A


async def test_instagram_account_of_the_file(stack: Stack) -> None:
    assert await _post(stack, IG_SECRET, IG_ACCOUNT, "4242", channel=Channel.INSTAGRAM) == 200
    assert await _post(stack, IG_SECRET, "17841400000000000", "4243",
                       channel=Channel.INSTAGRAM) == 401  # fmt: skip
    await eventually(lambda: len(stack.conversations()) == 1)


def test_the_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS)
    os.environ["TEST_PAGE_TOKEN_A"] = TOKEN_A
    try:
        settings = Settings(_env_file=None, accounts_file=str(path), **ENV_META_OFF)
        assert settings.account_problems() == []
        assert settings.accounts.entry(Channel.MESSENGER, PAGE_A2) is not None
        assert settings.accounts.entry(Channel.INSTAGRAM, IG_ACCOUNT) is not None
        twice = Settings(
            _env_file=None, accounts_file=str(path), messenger_app_secret=SecretStr(SECRET_B)
        )
        assert any("lists messenger accounts" in p for p in twice.account_problems())
    finally:
        del os.environ["TEST_PAGE_TOKEN_A"]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'[[messenger]]\nid = "x"\napp_secret = "{SECRET_A}"\npage_ids = ["not-digits"]\n'
        f'[[messenger]]\nid = "y"\napp_secret = "{SECRET_A}"\npage_access_token = "{TOKEN_A}"\n'
        f'page_ids = ["1"]\n'
    )
    problems = "\n".join(Settings(_env_file=None, accounts_file=str(bad)).account_problems())
    assert "messenger account 'x': page_access_token: required" in problems
    assert "'not-digits' is not Page ids (digits)" in problems


def test_accounts_list_shows_the_pages_and_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env = {**clean, "THREADLINE_ACCOUNTS_FILE": str(path), "TEST_PAGE_TOKEN_A": TOKEN_A}
    listed = subprocess.run(
        [sys.executable, "-m", "actors", "accounts", "list", "--json"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["accounts"]
    assert [(r["channel"], r["id"], r["accounts"], r["route"]) for r in rows] == [
        ("messenger", "shop-pages", [PAGE_A1, PAGE_A2], "/webhooks/messenger"),
        ("messenger", "other-app", [PAGE_B], "/webhooks/messenger"),
        ("instagram", "shop-ig", [IG_ACCOUNT], "/webhooks/instagram"),
    ]
    for secret in (SECRET_A, SECRET_B, TOKEN_A, IG_SECRET, IG_TOKEN):
        assert secret not in listed.stdout + listed.stderr
