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

from dataclasses import dataclass

__all__ = ["AccountProfile"]


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
