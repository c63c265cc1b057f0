"""``threadline accounts list [--json]``: what is configured per channel, never a secret.

One line (or JSON object) per credential set: the channel, the account's id in the accounts
file (``env`` for the ``THREADLINE_<CHANNEL>_*`` shorthand), the business accounts it owns
(phone_number_ids, Twilio numbers, the bot id; ``any`` for the shorthand), its webhook route,
whether it receives and sends, and its Intercom profile (each field as the bridge uses it:
the file's value, else the global setting).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from channels import CHANNELS

from ..core import Settings
from ..service import ConfigurationError

__all__ = ["accounts_command", "accounts_listing", "accounts_parser"]


def accounts_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action
    accounts = commands.add_parser(
        "accounts", help="show the configured channel accounts (never a secret)"
    )
    actions = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every account per channel, with its profile")
    listing.add_argument("--json", action="store_true", help="one JSON document")


def accounts_listing(settings: Settings) -> list[dict[str, Any]]:
    """Every configured credential set, as ``accounts list`` shows it (no secret in it)."""
    rows: list[dict[str, Any]] = []
    for channel, spec in CHANNELS.items():
        for view in settings.channel_accounts(channel):
            receives, sends = spec.receives(view), spec.sends(view)
            if not (receives or sends):
                continue
            owned = spec.accounts(view)
            numbers = sorted(owned) if owned is not None else []
            entry = settings.accounts.entry(channel, numbers[0]) if numbers else None
            profile = settings.account_profile(channel, numbers[0] if numbers else "")
            row: dict[str, Any] = {
                "channel": channel.value,
                "id": view.account_id or "env",
                "accounts": numbers or "any",
                "route": spec.account_route(view) or spec.route,
                "receives": receives,
                "sends": sends,
            }
            if entry is not None and entry.account_sid is not None:
                row["account_sid"] = entry.account_sid
            if entry is not None and entry.subaccount_sid is not None:
                row["subaccount_sid"] = entry.subaccount_sid
            waba = getattr(view, "business_account_id", None)
            if waba is not None:
                row["business_account_id"] = waba
            row["profile"] = {
                "default_admin_id": profile.admin_id,
                "team_id": profile.team_id,
                "assignee_id": profile.assignee_id,
                "tags": list(profile.tags),
                "conversation_buffer_seconds": profile.buffer_seconds,
                "reply_format": profile.reply_format,
            }
            rows.append(row)
    return rows


def accounts_command(args: argparse.Namespace, settings: Settings) -> int:
    problems = settings.account_problems()
    if problems:
        raise ConfigurationError("; ".join(problems))
    rows = accounts_listing(settings)
    if args.json:
        print(json.dumps({"accounts": rows}, indent=2))  # noqa: T201 - CLI output
        return 0
    if not rows:
        print("no channel account is configured")  # noqa: T201 - CLI output
    for row in rows:
        numbers = row["accounts"] if row["accounts"] == "any" else ", ".join(row["accounts"])
        ways = "/".join(w for w in ("receives", "sends") if row[w]) or "-"
        p = row["profile"]
        profile = ", ".join(
            f"{name}={value}"
            for name, value in (
                ("admin", p["default_admin_id"]),
                ("team", p["team_id"]),
                ("assignee", p["assignee_id"]),
                ("tags", ",".join(p["tags"]) or None),
                ("buffer", f"{p['conversation_buffer_seconds']:g}s"),
                ("format", json.dumps(p["reply_format"], ensure_ascii=False)),
            )
            if value is not None
        )
        print(  # noqa: T201 - CLI output
            f"{row['channel']:<9} {row['id']:<16} {numbers}  {row['route']}  {ways}  {profile}"
        )
    return 0
