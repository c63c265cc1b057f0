"""The accounts file (``THREADLINE_ACCOUNTS_FILE``): many numbers, bots and accounts (issue 18).

A TOML file listing any number of accounts per channel kind, each with its own credentials,
its business identifiers and, optionally, its Intercom profile::

    [[whatsapp]]
    id = "shop-br"
    app_secret = { env = "SHOP_BR_APP_SECRET" }
    verify_token = { file = "/run/secrets/shop-br-verify-token" }
    access_token = { env = "SHOP_BR_ACCESS_TOKEN" }
    phone_number_ids = ["100000000000001"]
    business_account_id = "200000000000001"
    default_admin_id = "991"
    team_id = "55"
    tags = ["brazil"]

    [[twilio]]
    id = "us-sms"
    account_sid = "AC…"
    auth_token = { env = "US_SMS_AUTH_TOKEN" }
    numbers = ["+15551230001"]

    [[telegram]]
    id = "support-bot"
    bot_token = { env = "SUPPORT_BOT_TOKEN" }
    secret_token = { env = "SUPPORT_BOT_SECRET" }

    [[messenger]]
    id = "shop-page"
    app_secret = { env = "SHOP_APP_SECRET" }
    verify_token = { env = "SHOP_VERIFY_TOKEN" }
    page_access_token = { env = "SHOP_PAGE_TOKEN" }
    page_ids = ["682498302938465"]

    [[instagram]]
    id = "shop-ig"
    app_secret = { env = "SHOP_IG_APP_SECRET" }
    access_token = { env = "SHOP_IG_TOKEN" }
    account_ids = ["17841400000000000"]

    [[viber]]
    id = "viber-shop"                 # its threads' account; route /webhooks/viber/viber-shop
    auth_token = { env = "VIBER_SHOP_TOKEN" }
    bot_name = "Shop"                 # sender.name, 1-28 characters

    [[line]]
    id = "jp-line"
    channel_secret = { env = "JP_LINE_CHANNEL_SECRET" }
    channel_access_token = { env = "JP_LINE_ACCESS_TOKEN" }
    bot_user_id = "U0123456789abcdef0123456789abcdef"

A Meta app is one entry (its app secret tells its webhooks apart, one POST may be about
several of its Pages), with the Pages (or Instagram accounts) its one token sends for: a token
valid for all of them, such as a system user's. Pages of one app with a token each are not
supported yet.

A secret is a string, ``{ env = "NAME" }`` (an environment variable of the bridge's process) or
``{ file = "/path" }`` (the file's content, one trailing newline dropped). Everything is
checked when the file is read; every problem is one line naming the file, the account and the
field, never a secret's value (:class:`AccountsFileError`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from channels import Channel

from ._account_fields import AccountEntry, read_entry

__all__ = ["AccountEntry", "AccountsFile", "AccountsFileError", "load_accounts"]


class AccountsFileError(ValueError):
    """The accounts file cannot be used; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class AccountsFile:
    """Every account of the file, in file order."""

    path: str
    entries: tuple[AccountEntry, ...] = ()
    by_account: Mapping[tuple[Channel, str], AccountEntry] = field(default_factory=dict)

    def of(self, channel: Channel) -> tuple[AccountEntry, ...]:
        return tuple(entry for entry in self.entries if entry.channel is channel)

    def entry(self, channel: Channel, account: str) -> AccountEntry | None:
        """The account that owns business account ``account`` on ``channel``."""
        return self.by_account.get((channel, account))


def load_accounts(
    path: str,
    *,
    secret_problem: Callable[[str], str | None],
    environ: Mapping[str, str] | None = None,
) -> AccountsFile:
    """Read and check the accounts file at ``path``.

    ``secret_problem`` says what is wrong with a secret's value (empty, padded, a placeholder,
    too short), as :meth:`Settings.secret_problems` does for the environment variables.

    Raises:
        AccountsFileError: anything wrong, every problem found (one line each).
    """
    env = os.environ if environ is None else environ
    where = f"THREADLINE_ACCOUNTS_FILE {path}"
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise AccountsFileError([f"{where}: cannot be read ({exc.strerror or exc})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise AccountsFileError([f"{where}: not valid TOML ({exc})"]) from None
    problems: list[str] = []
    entries: list[AccountEntry] = []
    kinds = {channel.value: channel for channel in Channel}
    for key, value in document.items():
        channel = kinds.get(key)
        if channel is None:
            problems.append(
                f"{where}: unknown table [{key}] (expected "
                + ", ".join(f"[[{name}]]" for name in kinds)
                + ")"
            )
            continue
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            problems.append(f"{where}: {key} must be an array of tables ([[{key}]])")
            continue
        for index, table in enumerate(value, start=1):
            entry = read_entry(channel, index, table, where, problems, secret_problem, env)
            if entry is not None:
                entries.append(entry)
    by_account: dict[tuple[Channel, str], AccountEntry] = {}
    seen_ids: dict[str, AccountEntry] = {}
    seen_credentials: dict[tuple[Channel, str], AccountEntry] = {}
    for entry in entries:
        here = f"{where}: {entry.channel.value} account {entry.id!r}"
        if entry.id in seen_ids:
            problems.append(f"{here}: id: the same id as another account (ids are unique)")
        seen_ids.setdefault(entry.id, entry)
        for number in entry.numbers:
            other = by_account.get((entry.channel, number))
            if other is not None:
                what = _NUMBERS[entry.channel]
                problems.append(
                    f"{here}: {what}: {number} is also an account of {other.id!r} "
                    "(a business number or bot belongs to one account)"
                )
            by_account.setdefault((entry.channel, number), entry)
        identity = _identity(entry)
        if identity is not None:
            other = seen_credentials.get((entry.channel, identity[1]))
            if other is not None:
                problems.append(
                    f"{here}: {identity[0]}: the same as account {other.id!r}'s "
                    "(list one app or account once, with all its numbers)"
                )
            seen_credentials.setdefault((entry.channel, identity[1]), entry)
    if problems:
        raise AccountsFileError(problems)
    return AccountsFile(path=path, entries=tuple(entries), by_account=by_account)


_NUMBERS: Final = {
    Channel.WHATSAPP: "phone_number_ids",
    Channel.TWILIO: "numbers",
    Channel.TELEGRAM: "bot_token",
    Channel.MESSENGER: "page_ids",
    Channel.INSTAGRAM: "account_ids",
    Channel.VIBER: "id",
    Channel.LINE: "bot_user_id",
}


def _identity(entry: AccountEntry) -> tuple[str, str] | None:
    """What tells an account's webhooks apart: a Meta app's secret, a LINE channel's secret,
    a Twilio (sub)account's SID, a Viber bot's auth token (it signs the callbacks); a Telegram
    bot's route is its bot id (checked with the numbers)."""
    if entry.channel in (Channel.WHATSAPP, Channel.MESSENGER, Channel.INSTAGRAM, Channel.LINE):
        name = "channel_secret" if entry.channel is Channel.LINE else "app_secret"
        secret = entry.secret(name)
        return (name, secret.get_secret_value()) if secret is not None else None
    if entry.channel is Channel.TWILIO:
        sid = entry.subaccount_sid or entry.account_sid
        return ("subaccount_sid" if entry.subaccount_sid else "account_sid", sid or "")
    if entry.channel is Channel.VIBER:
        token = entry.secret("auth_token")
        return ("auth_token", token.get_secret_value()) if token is not None else None
    return None
