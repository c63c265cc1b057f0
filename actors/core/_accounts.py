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
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pydantic import SecretStr

from channels import Channel

__all__ = ["AccountEntry", "AccountsFile", "AccountsFileError", "load_accounts"]


class AccountsFileError(ValueError):
    """The accounts file cannot be used; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """One account of the file: its credentials, identifiers and profile overrides."""

    channel: Channel
    id: str
    secrets: Mapping[str, SecretStr]
    """app_secret, verify_token, access_token │ auth_token │ bot_token, secret_token │
    app_secret, verify_token, page_access_token (Messenger) │ channel_secret,
    channel_access_token (LINE)."""
    numbers: tuple[str, ...]
    """The business accounts it owns (``ThreadKey.account``): phone_number_ids, Twilio
    numbers (E.164), the Telegram bot id, the Viber bot's ``id``, the LINE bot's user id, the
    Page ids or the Instagram account ids."""
    account_sid: str | None = None
    subaccount_sid: str | None = None
    business_account_id: str | None = None
    default_admin_id: str | None = None
    team_id: str | None = None
    assignee_id: str | None = None
    tags: tuple[str, ...] | None = None
    conversation_buffer_seconds: float | None = None
    reply_format: str | None = None
    bot_name: str | None = None
    """A Viber bot's sender name."""

    def secret(self, name: str) -> SecretStr | None:
        return self.secrets.get(name)


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


_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIGITS: Final = re.compile(r"[0-9]{1,32}")
_E164: Final = re.compile(r"\+[1-9][0-9]{5,14}")
_SID: Final = re.compile(r"AC[0-9a-fA-F]{32}")
_INTERCOM_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BOT_TOKEN: Final = re.compile(r"([0-9]+):[A-Za-z0-9_-]+")
_TELEGRAM_SECRET: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
_BOT_NAME: Final = re.compile(r"[^\x00-\x1f\x7f]{1,28}")
_LINE_USER_ID: Final = re.compile(r"U[0-9a-f]{32}")

_PROFILE: Final = frozenset({
    "default_admin_id", "team_id", "assignee_id", "tags", "conversation_buffer_seconds",
    "reply_format",
})  # fmt: skip
_FIELDS: Final[Mapping[Channel, tuple[frozenset[str], frozenset[str]]]] = {
    # (required, optional) besides id and the profile
    Channel.WHATSAPP: (
        frozenset({"app_secret", "access_token", "phone_number_ids"}),
        frozenset({"verify_token", "business_account_id"}),
    ),
    Channel.TWILIO: (
        frozenset({"account_sid", "auth_token", "numbers"}),
        frozenset({"subaccount_sid"}),
    ),
    Channel.TELEGRAM: (frozenset({"bot_token", "secret_token"}), frozenset()),
    Channel.MESSENGER: (
        frozenset({"app_secret", "page_access_token", "page_ids"}),
        frozenset({"verify_token"}),
    ),
    Channel.INSTAGRAM: (
        frozenset({"app_secret", "access_token", "account_ids"}),
        frozenset({"verify_token"}),
    ),
    Channel.VIBER: (frozenset({"auth_token", "bot_name"}), frozenset()),
    Channel.LINE: (
        frozenset({"channel_secret", "channel_access_token", "bot_user_id"}),
        frozenset(),
    ),
}
_SECRET_FIELDS: Final = frozenset(
    {
        "app_secret", "verify_token", "access_token", "auth_token", "bot_token", "secret_token",
        "page_access_token", "channel_secret", "channel_access_token",
    }
)  # fmt: skip


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
            entry = _entry(channel, index, table, where, problems, secret_problem, env)
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


def _entry(
    channel: Channel,
    index: int,
    table: dict[str, object],
    where: str,
    problems: list[str],
    secret_problem: Callable[[str], str | None],
    env: Mapping[str, str],
) -> AccountEntry | None:
    raw_id = table.get("id")
    if isinstance(raw_id, str) and _ID.fullmatch(raw_id):
        account_id = raw_id
        here = f"{where}: {channel.value} account {account_id!r}"
    else:
        account_id = ""
        here = f"{where}: {channel.value} account #{index}"
        problems.append(
            f"{here}: id: required, 1-64 characters of A-Z, a-z, 0-9, _, . and - "
            "(not starting with a punctuation mark)"
        )
    before = len(problems)
    required, optional = _FIELDS[channel]
    known = required | optional | _PROFILE | {"id"}
    listed = ", ".join(sorted(known))
    problems.extend(
        f"{here}: {k}: unknown field (known: {listed})" for k in sorted(set(table) - known)
    )
    problems.extend(f"{here}: {k}: required" for k in sorted(required - set(table)))

    def bad(key: str, why: str) -> None:
        problems.append(f"{here}: {key}: {why}")

    secrets: dict[str, SecretStr] = {}
    for key in sorted(_SECRET_FIELDS & set(table) & (required | optional)):
        value = _secret(table[key], key, bad, env)
        if value is None:
            continue
        problem = secret_problem(value)
        if problem is None and key == "bot_token" and not _BOT_TOKEN.fullmatch(value):
            problem = "is not a bot token (<bot id>:<secret>)"
        if problem is None and key == "secret_token" and not _TELEGRAM_SECRET.fullmatch(value):
            problem = "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
        if problem is not None:
            bad(key, problem)
        else:
            secrets[key] = SecretStr(value)

    def text(key: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            bad(key, f"must be {what}")
            return None
        return value

    def listing(key: str, pattern: re.Pattern[str], what: str, strip: str = "") -> tuple[str, ...]:
        value = table.get(key)
        if value is None:
            return ()
        items = value if isinstance(value, list) else None
        if not items:
            bad(key, f"must be a non-empty list of {what}")
            return ()
        out: list[str] = []
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not pattern.fullmatch(item.removeprefix(strip)):
                bad(key, f"{str(item)[:40]!r} is not {what}")
                continue
            item = item.removeprefix(strip)
            if item in out:
                bad(key, f"{item} is listed twice")
                continue
            out.append(item)
        return tuple(out)

    numbers: tuple[str, ...] = ()
    account_sid = subaccount_sid = waba = bot_name = None
    if channel is Channel.WHATSAPP:
        numbers = listing("phone_number_ids", _DIGITS, "phone_number_ids (digits)")
        waba = text("business_account_id", _DIGITS, "a WhatsApp Business Account id (digits)")
    elif channel is Channel.TWILIO:
        numbers = listing("numbers", _E164, "E.164 numbers (+15551230001)", strip="whatsapp:")
        account_sid = text("account_sid", _SID, "a Twilio account SID (AC and 32 hex digits)")
        subaccount_sid = text("subaccount_sid", _SID, "a Twilio subaccount SID (AC…)")
    elif channel is Channel.MESSENGER:
        numbers = listing("page_ids", _DIGITS, "Page ids (digits)")
    elif channel is Channel.INSTAGRAM:
        numbers = listing("account_ids", _DIGITS, "Instagram professional account ids (digits)")
    elif channel is Channel.VIBER:
        numbers = (account_id,) if account_id else ()
        bot_name = text("bot_name", _BOT_NAME, "the bot's sender name (1-28 characters)")
    elif channel is Channel.LINE:
        bot = text("bot_user_id", _LINE_USER_ID, "a LINE bot user id (U and 32 hex digits)")
        numbers = (bot,) if bot is not None else ()
    else:
        token = secrets.get("bot_token")
        if token is not None:
            numbers = (token.get_secret_value().partition(":")[0],)
    tags = None
    if "tags" in table:
        raw_tags = table["tags"]
        if not isinstance(raw_tags, list) or not all(
            isinstance(tag, str) and tag.strip() == tag and 0 < len(tag) <= 100 for tag in raw_tags
        ):
            bad("tags", "must be a list of tag names (1-100 characters, no outer spaces)")
        else:
            tags = tuple(dict.fromkeys(str(tag) for tag in raw_tags))
    buffer = None
    if "conversation_buffer_seconds" in table:
        raw_buffer = table["conversation_buffer_seconds"]
        if (
            isinstance(raw_buffer, bool)
            or not isinstance(raw_buffer, (int, float))
            or not 0 <= raw_buffer < float("inf")
        ):
            bad("conversation_buffer_seconds", "must be a number of seconds, 0 or more")
        else:
            buffer = float(raw_buffer)
    reply_format = None
    if "reply_format" in table:
        raw_format = table["reply_format"]
        why = _format_problem(raw_format)
        if why is not None:
            bad("reply_format", why)
        else:
            assert isinstance(raw_format, str)
            reply_format = raw_format
    profile_ids = {
        key: text(key, _INTERCOM_ID, "an Intercom id (letters, digits, _ and -)")
        for key in ("default_admin_id", "team_id", "assignee_id")
    }
    if len(problems) > before or not account_id:
        return None
    return AccountEntry(
        channel=channel,
        id=account_id,
        secrets=secrets,
        numbers=numbers,
        account_sid=account_sid,
        subaccount_sid=subaccount_sid,
        business_account_id=waba,
        default_admin_id=profile_ids["default_admin_id"],
        team_id=profile_ids["team_id"],
        assignee_id=profile_ids["assignee_id"],
        tags=tags,
        conversation_buffer_seconds=buffer,
        reply_format=reply_format,
        bot_name=bot_name,
    )


def _secret(
    value: object, key: str, bad: Callable[[str, str], None], env: Mapping[str, str]
) -> str | None:
    """A secret field's value: inline, ``{ env = "NAME" }`` or ``{ file = "/path" }``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((source, name),) = value.items()
        if source == "env" and isinstance(name, str) and name:
            if name not in env:
                bad(key, f"the environment variable {name} is not set")
                return None
            return env[name]
        if source == "file" and isinstance(name, str) and name:
            try:
                with open(name, encoding="utf-8") as handle:
                    content = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
                bad(key, f"the file {name} cannot be read ({reason})")
                return None
            return content.removesuffix("\n").removesuffix("\r")
    bad(key, 'must be a string, { env = "NAME" } or { file = "/path" }')
    return None


def _format_problem(value: object) -> str | None:
    """Why ``value`` cannot frame a reply (it may use {teammate} and {text} only)."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        value.format(teammate="", text="")
    except (ValueError, IndexError, KeyError, AttributeError):
        return "is not a valid format (use {teammate} and {text}; double other braces)"
    unknown = fields - {"teammate", "text"}
    if unknown:
        return f"may use {{teammate}} and {{text}} only, not {{{sorted(unknown)[0]}}}"
    if "text" not in fields:
        return "must contain {text}"
    return None
