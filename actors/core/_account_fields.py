"""One account of the accounts file (``actors/core/_accounts.py``): the fields each channel kind
takes, and how a table of the file is checked and read into an :class:`AccountEntry`."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from channels import Channel

from ._secrets import format_problem

__all__ = ["AccountEntry", "read_entry"]


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


_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIGITS: Final = re.compile(r"[0-9]{1,32}")
_E164: Final = re.compile(r"\+[1-9][0-9]{5,14}")
_SID: Final = re.compile(r"AC[0-9a-fA-F]{32}")
_INTERCOM_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
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


def read_entry(
    channel: Channel,
    index: int,
    table: dict[str, object],
    where: str,
    problems: list[str],
    secret_problem: Callable[[str], str | None],
    env: Mapping[str, str],
) -> AccountEntry | None:
    """The ``index``-th table of ``channel`` in the file, or None with ``problems`` saying
    why (each line starting with ``where``, the account and the field)."""
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
        problem = secret_problem(value) or format_problem(key, value)
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
