"""Operator tools behind the CLI: look at one thread, one dead letter, and erase a customer.

``threadline threads show``, ``threadline deadletters show|list`` and ``threadline erase`` (see
``_cli_operator.py`` for the parsers). Everything here reads and writes the journal only:
Intercom and the providers are never called.

What one thread leaves in the journal (all of it erased by :func:`erase_thread`):

- its entries, under the thread key (pending, done until pruned, dead letters);
- its state, ``thread:<key>`` (contact id, conversation id, last inbound time, last part);
- the conversation index, ``conversation:<id>`` → the thread key, one per conversation the
  thread ever opened;
- records of the messages sent to the customer, ``sent:<channel>:<provider id>`` (what each
  was, for a delivery failure reported later);
- identity mappings, ``identity:<identity>`` → the contact: the thread's own identity
  (``<channel>:<account>:<customer>``), the phone identities of its messages still journaled,
  and any mapping pointing at the thread's contact (a phone shared by the customer's threads
  on other channels: only a lookup cache, re-resolved by a search when needed).

Not erased: ``own-part:<part id>`` markers (Intercom part ids, no customer data; they keep the
bridge from echoing its own parts) and oversize media files (linked, not attributed to a
thread: they expire after ``THREADLINE_MEDIA_RETENTION_SECONDS``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from channels import ThreadKey
from runtime import DeadLetter, Entry, Erased, Journal

from ..bridge import (
    SENT_MESSAGE_PREFIX,
    InboundJob,
    SentRecord,
    ThreadState,
    contact_intent_key,
    conversation_index_key,
    decode_job,
    identity_key,
    thread_state_key,
)

__all__ = [
    "ErasePlan",
    "JournalMissing",
    "check_journal_file",
    "describe_plan",
    "describe_untouched",
    "dead_letter_json",
    "erase_thread",
    "human_time",
    "iso_time",
    "plan_erase",
    "show_dead_letter",
    "show_thread",
]

_PAGE = 1000


class JournalMissing(Exception):
    """The SQLite file named is not an existing Threadline journal (never created here)."""


def check_journal_file(path: str) -> None:
    """Refuse a SQLite path that is not an existing journal: operator commands never create
    one (a typo in the path would otherwise show an empty journal, or erase nothing)."""
    if not path or not Path(path).is_file():
        raise JournalMissing(f"there is no journal at {path}: the SQLite file does not exist")
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal_entries'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JournalMissing(f"{path!r} is not a readable SQLite journal: {exc}") from exc
    if found is None:
        raise JournalMissing(f"{path!r} is not a Threadline journal (no journal tables)")


# --- times ------------------------------------------------------------------------------------


def iso_time(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_time(timestamp: float | None, now: float) -> str:
    """``2024-05-01T12:00:00Z (3 min ago)``; ``-`` for None."""
    if timestamp is None:
        return "-"
    return f"{iso_time(timestamp)} ({_age(now - timestamp)})"


def _age(seconds: float) -> str:
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


# --- jobs ---------------------------------------------------------------------------------------


def _kind(entry: Entry) -> str:
    try:
        return decode_job(entry.payload).kind
    except ValueError:
        return "undecodable"


def _job_json(entry: Entry) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return decode_job(entry.payload).model_dump(mode="json"), None
    except ValueError as exc:
        return None, f"undecodable payload ({len(entry.payload)} bytes): {exc}"[:500]


def dead_letter_json(letter: DeadLetter, *, job: bool = False) -> dict[str, Any]:
    """A dead letter for ``--json``: numeric times kept, ISO strings added."""
    entry = letter.entry
    out: dict[str, Any] = {
        "id": entry.id,
        "thread": entry.key,
        "dedupe_id": entry.dedupe_id,
        "created_at": entry.created_at,
        "created_at_iso": iso_time(entry.created_at),
        "dead_at": letter.dead_at,
        "dead_at_iso": iso_time(letter.dead_at),
        "error": letter.error,
    }
    if job:
        out["job"], out["job_error"] = _job_json(entry)
    return out


def _write(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")


# --- threadline deadletters show -----------------------------------------------------------------


async def show_dead_letter(
    journal: Journal, entry_id: int, *, as_json: bool, out: TextIO = sys.stdout
) -> bool:
    """Print one dead letter with its decoded job; False when there is no such dead letter."""
    letter = await journal.dead_letter(entry_id)
    if letter is None:
        return False
    if as_json:
        _write(out, json.dumps(dead_letter_json(letter, job=True)))
        return True
    now = time.time()
    entry = letter.entry
    decoded, problem = _job_json(entry)
    _write(out, f"dead letter {entry.id}")
    _write(out, f"  thread:    {entry.key}")
    _write(out, f"  dedupe id: {entry.dedupe_id}")
    _write(out, f"  created:   {human_time(entry.created_at, now)}")
    _write(out, f"  dead:      {human_time(letter.dead_at, now)}")
    _write(out, f"  error:     {letter.error}")
    if decoded is None:
        _write(out, f"  job:       {problem}")
    else:
        _write(out, "  job:")
        for line in json.dumps(decoded, indent=2, ensure_ascii=False).splitlines():
            _write(out, f"    {line}")
    return True


# --- threadline threads show ---------------------------------------------------------------------


async def show_thread(
    journal: Journal, key: ThreadKey, *, limit: int, as_json: bool, out: TextIO = sys.stdout
) -> bool:
    """Print a thread's state, pending entries and dead letters; False when the journal holds
    nothing of it."""
    text = str(key)
    raw = await journal.get_state(thread_state_key(text))
    state = None if raw is None else _state_json(raw)
    pending = await journal.read_pending_for_key(text, after_id=0, limit=limit)
    dead = await journal.dead_letters_for_key(text, limit=limit)
    if raw is None and not pending and not dead:
        return False
    now = time.time()
    if as_json:
        _write(out, json.dumps({
            "thread": text,
            "state_key": thread_state_key(text),
            "state": state,
            "pending": [
                {"id": e.id, "kind": _kind(e), "dedupe_id": e.dedupe_id,
                 "created_at": e.created_at, "created_at_iso": iso_time(e.created_at),
                 "age_seconds": max(0.0, now - e.created_at)}
                for e in pending
            ],
            "dead_letters": [
                {**dead_letter_json(d), "kind": _kind(d.entry)} for d in dead
            ],
        }))  # fmt: skip
        return True
    _write(out, f"thread {text}")
    _write(out, f"  state key: {thread_state_key(text)}")
    if state is None:
        _write(out, "  state: none (nothing delivered yet)")
    else:
        _write(out, "  state:")
        for name, value in state.items():
            shown = human_time(value, now) if name.endswith("_at") and value else value
            _write(out, f"    {name}: {'-' if shown is None else shown}")
    more = " (first {limit}; --limit for more)" if len(pending) >= limit else ""
    _write(out, f"  pending entries: {len(pending)}{more.format(limit=limit)}")
    for e in pending:
        _write(out, f"    {e.id}\t{_kind(e)}\t{human_time(e.created_at, now)}")
    more = " (first {limit}; --limit for more)" if len(dead) >= limit else ""
    _write(out, f"  dead letters: {len(dead)}{more.format(limit=limit)}")
    for d in dead:
        entry = d.entry
        _write(out, f"    {entry.id}\t{_kind(entry)}\tdead {human_time(d.dead_at, now)}")
        _write(out, f"      error: {d.error}")
    return True


def _state_json(raw: bytes) -> dict[str, Any]:
    try:
        return ThreadState.decode(raw).model_dump(mode="json")
    except ValidationError as exc:
        return {"undecodable": f"{len(raw)} bytes: {exc}"[:500]}


# --- threadline erase ----------------------------------------------------------------------------


@dataclass
class ErasePlan:
    """What erasing one thread deletes from the journal, found before anything is deleted."""

    key: str
    state: ThreadState | None
    pending: int
    dead: int
    conversations: list[str] = field(default_factory=list)
    """Conversation index keys pointing at the thread."""
    identities: list[str] = field(default_factory=list)
    """Identity mapping keys of the thread's customer."""
    sent: list[str] = field(default_factory=list)
    """Records of messages sent to the customer (what each was, for delivery failures)."""

    @property
    def state_keys(self) -> list[str]:
        own = [thread_state_key(self.key)] if self.state is not None else []
        return [*own, *self.conversations, *self.identities, *self.sent]

    @property
    def empty(self) -> bool:
        return self.state is None and not self.pending and not self.dead and not self.state_keys


async def _pages(
    journal: Journal, prefix: str, *, value: bytes | None = None
) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    after = ""
    while True:
        page = await journal.find_state(prefix, value=value, after=after, limit=_PAGE)
        found.extend(page)
        if len(page) < _PAGE:
            return found
        after = page[-1][0]


async def plan_erase(journal: Journal, key: ThreadKey) -> ErasePlan:
    """Find everything of ``key`` in the journal (read only)."""
    text = str(key)
    raw = await journal.get_state(thread_state_key(text))
    try:
        state = None if raw is None else ThreadState.decode(raw)
    except ValidationError:
        state = ThreadState()  # undecodable, but there: erased all the same
    pending = await journal.read_pending_for_key(text, after_id=0, limit=1_000_000)
    dead = await journal.dead_letters_for_key(text, limit=1_000_000)
    conversations = [k for k, _ in await _pages(journal, "conversation:", value=text.encode())]
    if state is not None and state.conversation_id:
        own = conversation_index_key(state.conversation_id)
        if own not in conversations and await journal.get_state(own) == text.encode():
            conversations.append(own)
    # The thread's own identity, the phone identities of its journaled messages, and every
    # mapping to its contact.
    names = {identity_key(f"{key.channel.value}:{key.account}:{key.customer}")}
    for entry in [*pending, *(d.entry for d in dead)]:
        try:
            job = decode_job(entry.payload)
        except ValueError:
            continue
        if isinstance(job, InboundJob) and job.message.phone:
            names.add(identity_key(f"phone:{job.message.phone}"))
    contact = state.contact_id if state is not None else None
    identities = []
    for name, value in await _pages(journal, "identity:"):
        if name in names or (contact is not None and _contact_of(value) == contact):
            identities.append(name)
    for name in sorted(names):  # a contact creation left in doubt names the customer too
        intent = contact_intent_key(name.removeprefix("identity:"))
        if await journal.get_state(intent) is not None:
            identities.append(intent)
    sent = [name for name, value in await _pages(journal, SENT_MESSAGE_PREFIX)
            if _sent_thread(value) == text]  # fmt: skip
    return ErasePlan(
        key=text,
        state=state,
        pending=len(pending),
        dead=len(dead),
        conversations=conversations,
        identities=identities,
        sent=sent,
    )


def _sent_thread(raw: bytes) -> str | None:
    try:
        return SentRecord.decode(raw).thread
    except ValidationError:
        return None


def _contact_of(raw: bytes) -> str | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value.get("id") if isinstance(value, dict) else None


async def erase_thread(journal: Journal, plan: ErasePlan) -> Erased:
    """Delete the thread's entries (whatever their status, also ones appended since the plan)
    and the state keys of ``plan``, in one commit."""
    return await journal.erase(plan.key, state_keys=plan.state_keys)


def describe_plan(plan: ErasePlan, say: Callable[[str], None]) -> None:
    """The plan, for the confirmation question."""
    say(f"thread {plan.key}:")
    say(f"  journal entries: {plan.pending} pending, {plan.dead} dead, and every done one")
    say(f"  thread state: {thread_state_key(plan.key) if plan.state is not None else 'none'}")
    say(f"  conversation index: {', '.join(plan.conversations) or 'none'}")
    say(f"  identity mappings: {', '.join(plan.identities) or 'none'}")
    say(f"  sent-message records: {len(plan.sent)}")


def describe_untouched(
    plan: ErasePlan, media_retention_seconds: float, say: Callable[[str], None]
) -> None:
    """What erase leaves alone, and why."""
    state = plan.state or ThreadState()
    contact = f" (contact {state.contact_id})" if state.contact_id else ""
    say(
        f"not touched: Intercom{contact} and its conversations (delete them in Intercom if "
        "they must go too), and the channel provider's own copies"
    )
    days = media_retention_seconds / 86400
    say(
        "not touched: oversize attachments linked under /media/ (not attributed to threads): "
        f"they expire {days:g} days after they were last stored "
        "(THREADLINE_MEDIA_RETENTION_SECONDS)"
    )
