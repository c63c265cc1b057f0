"""How one business account's threads look in Intercom (issue 18).

A business account is what :class:`channels.ThreadKey`'s ``account`` names: a WhatsApp
phone_number_id, a Twilio business number, a Telegram bot id. Every thread of one account
shares a profile: who authors the bridge's notes (the default operator), which team or teammate
new conversations are assigned to, the tags put on them, the inactivity buffer after which a
customer's next message opens a new conversation, and how a teammate's reply is framed.

:meth:`Settings.account_profile` is the one place a profile is looked up: from the global
``THREADLINE_*`` settings, overridden per account by the accounts file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from channels import Channel

from ._account_fields import AccountEntry

__all__ = ["AccountProfile", "channel_tags", "with_account"]


@dataclass(frozen=True, slots=True)
class AccountProfile:
    """One business account's Intercom behaviour (README: the accounts file)."""

    admin_id: str | None
    """The default operator: author of the bridge's notes and fallback reply author."""
    buffer_seconds: float
    """Inactivity after which the customer's next message opens a new conversation (0: never)."""
    reply_format: str
    """How a teammate's reply is framed on the channel (``{teammate}``, ``{text}``)."""
    team_id: str | None = None
    """The Intercom team new conversations are assigned to (None: not assigned to a team)."""
    assignee_id: str | None = None
    """The teammate (admin id) new conversations are assigned to (None: nobody)."""
    tags: tuple[str, ...] = ()
    """Tag names put on every new conversation of the account."""


def with_account(profile: AccountProfile, entry: AccountEntry, channel: Channel) -> AccountProfile:
    """``profile`` (the global settings') with each field the accounts file's ``entry`` sets."""
    return AccountProfile(
        admin_id=_first(entry.default_admin_id, profile.admin_id),
        buffer_seconds=_first(entry.conversation_buffer_seconds, profile.buffer_seconds),
        reply_format=_first(entry.reply_format, profile.reply_format),
        team_id=_first(entry.team_id, profile.team_id),
        assignee_id=_first(entry.assignee_id, profile.assignee_id),
        tags=profile.tags if entry.tags is None else channel_tags(entry.tags, channel),
    )


def channel_tags(names: Iterable[str], channel: Channel) -> tuple[str, ...]:
    """Tag names with ``{channel}`` expanded, blanks and repeats dropped, in order."""
    named = (name.replace("{channel}", channel.value).strip() for name in names)
    return tuple(dict.fromkeys(name for name in named if name))


_T = TypeVar("_T")


def _first(value: _T | None, default: _T) -> _T:
    return default if value is None else value
