"""``threadline deadletters list|show|replay``, ``threads show`` and ``erase``: their arguments
and how they run on an existing journal (what they print: actors.tools._operator)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import trio
from pydantic import ValidationError

from channels import Channel, ThreadKey

from ..core import Settings
from ..service import ConfigurationError, open_journal
from ._operator import (
    JournalMissing,
    check_journal_file,
    dead_letter_json,
    describe_plan,
    describe_untouched,
    erase_thread,
    human_time,
    plan_erase,
    show_dead_letter,
    show_thread,
)

__all__ = ["operator_command", "operator_parsers"]


def operator_parsers(commands: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """``deadletters``, ``threads show`` and ``erase``."""
    # --database-url is accepted before or after the action; SUPPRESS keeps the action's
    # parser from overwriting a value given before it.
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database-url", default=argparse.SUPPRESS, help="sqlite:///path or postgresql://…"
    )
    dead = commands.add_parser("deadletters", help="inspect and replay dead letters")
    dead.add_argument("--database-url", help="sqlite:///path or postgresql://…")
    dead_commands = dead.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = dead_commands.add_parser(
        "list", parents=[database], help="list dead letters, oldest first"
    )
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = dead_commands.add_parser(
        "replay", parents=[database], help="make dead letters pending again"
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], help="entry ids")
    which.add_argument("--all", action="store_true", help="every dead letter")
    dead_show = dead_commands.add_parser(
        "show", parents=[database], help="one dead letter with its error and decoded job"
    )
    dead_show.add_argument("id", type=int, help="entry id")
    dead_show.add_argument("--json", action="store_true", help="one JSON object")
    channels = tuple(channel.value for channel in Channel)
    threads = commands.add_parser("threads", help="inspect one customer thread")
    threads.add_argument("--database-url", help="sqlite:///path or postgresql://…")
    thread_commands = threads.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = thread_commands.add_parser(
        "show", parents=[database], help="a thread's state, pending entries and dead letters"
    )
    for parser in (show, erase := commands.add_parser(
        "erase",
        help="delete one customer thread's data from the journal (not from Intercom)",
        description="Delete the thread's journal entries (pending, done and dead), its state, "
        "the conversation index and the identity mappings of its customer. Intercom and the "
        "providers are not touched; linked oversize media expire on their own.",
    )):  # fmt: skip
        parser.add_argument("channel", choices=channels)
        parser.add_argument(
            "account",
            help="phone_number_id, Twilio number, Telegram bot id, Page or Instagram account id,"
            " Viber account or LINE bot user id",
        )
        parser.add_argument(
            "customer",
            help="wa_id, Twilio From address, Telegram chat id, PSID, IGSID, Viber or LINE user id",
        )
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.add_argument("--limit", type=int, default=100, help="entries listed (%(default)s)")
    erase.add_argument("--database-url", help="sqlite:///path or postgresql://…")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def operator_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``deadletters``, ``threads`` or ``erase`` on an existing journal (``settings``: the
    command's, its ``--database-url`` applied)."""
    if settings.sqlite_path is not None:
        try:
            check_journal_file(settings.sqlite_path)
        except JournalMissing as exc:
            raise ConfigurationError(f"{exc} (THREADLINE_DATABASE_URL)") from None
    if args.command == "deadletters":
        return trio.run(_deadletters, settings, args)
    try:
        key = ThreadKey(channel=args.channel, account=args.account, customer=args.customer)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        print(f"threadline: not a thread: {reasons}", file=sys.stderr)  # noqa: T201
        return 2
    if args.command == "threads":
        return trio.run(_thread_show, settings, key, args)
    return trio.run(_erase, settings, key, args.yes)


async def _thread_show(settings: Settings, key: ThreadKey, args: argparse.Namespace) -> int:
    async with open_journal(settings) as journal:
        if await show_thread(journal, key, limit=args.limit, as_json=args.json):
            return 0
    print(f"threadline: nothing journaled for thread {key}", file=sys.stderr)  # noqa: T201
    return 1


async def _erase(settings: Settings, key: ThreadKey, yes: bool) -> int:
    def say(line: str) -> None:
        print(line, flush=True)  # noqa: T201 - CLI output

    async with open_journal(settings) as journal:
        plan = await plan_erase(journal, key)
        if plan.empty:
            print(f"threadline: nothing journaled for thread {key}", file=sys.stderr)  # noqa: T201
            return 1
        if not yes:
            say("this erases, from the journal:")
            describe_plan(plan, say)
            answer = await trio.to_thread.run_sync(_ask, "erase it? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                say("nothing erased")
                return 1
        erased = await erase_thread(journal, plan)
    say(f"erased thread {plan.key}:")
    say(f"  journal entries: {erased.pending} pending, {erased.done} done, {erased.dead} dead")
    say(f"  state keys: {erased.state} ({', '.join(plan.state_keys) or 'none'})")
    describe_untouched(plan, settings.media_retention_seconds, say)
    return 0


def _ask(question: str) -> str:
    try:
        return input(question)
    except EOFError:
        return ""


async def _deadletters(settings: Settings, args: argparse.Namespace) -> int:
    async with open_journal(settings, create=False) as journal:
        if args.action == "show":
            if await show_dead_letter(journal, args.id, as_json=args.json):
                return 0
            print(f"threadline: no dead letter {args.id}", file=sys.stderr)  # noqa: T201
            return 1
        if args.action == "list":
            letters = await journal.dead_letters(limit=args.limit)
            now = time.time()
            for letter in letters:
                entry = letter.entry
                if args.json:
                    print(json.dumps(dead_letter_json(letter)))  # noqa: T201 - CLI output
                else:
                    print(  # noqa: T201 - CLI output
                        f"{entry.id}\t{entry.key}\tdead {human_time(letter.dead_at, now)}"
                        f"\t{letter.error}"
                    )
            if not args.json:
                print(f"{len(letters)} dead letter(s)", file=sys.stderr)  # noqa: T201
            return 0
        revived = await journal.replay(None if args.all else args.ids)
        print(f"replayed {len(revived)} entr{'y' if len(revived) == 1 else 'ies'}")  # noqa: T201
        return 0
