"""Operator tools through the real CLI (subprocesses), on both stores, after a real bridge has
delivered, dead-lettered and left pending some entries: ``threads show``, ``deadletters
list|show``, ``erase``, and the dead-letter retention of the bridge's housekeeping."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.bridge import (
    SentRecord,
    conversation_index_key,
    identity_key,
    sent_message_key,
    thread_state_key,
)
from actors.core import Settings
from actors.service import open_journal
from actors.tools import SANDBOX_SECRETS, open_stack
from runtime import Entry, NewEntry, PostgresJournal, SQLiteJournal
from tests.actors.conftest import eventually

THREADLINE = [sys.executable, "-m", "actors"]
ACCOUNT = SANDBOX_SECRETS.whatsapp_phone_number_id
ALICE, BOB = "15550002001", "15550002002"
ISO_AGO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ (s|min|h|d) ago\)")


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*THREADLINE, *args], input=stdin, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


@dataclass
class Journaled:
    """What the bridge left behind: the database and the threads' keys."""

    url: str
    alice: str
    bob: str
    doomed_id: int


async def entries(url: str) -> list[Entry]:
    """Every entry still in the journal, in any status (ids are small here)."""
    async with open_journal(Settings(_env_file=None, database_url=url)) as journal:
        found = [await journal.get(i) for i in range(1, 40)]
    return [e for e in found if e is not None]


async def state(url: str, key: str) -> bytes | None:
    async with open_journal(Settings(_env_file=None, database_url=url)) as journal:
        return await journal.get_state(key)


@pytest.fixture
async def journaled(database_url: str, tmp_path: Path) -> Journaled:
    """Alice: one message delivered, one dead-lettered, one left pending (Intercom holding
    it at shutdown). Bob: one message delivered. Then the bridge stops."""
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=0.5,
        retry_max_attempts=2,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.1,
    ) as s:
        journal = s.node.journal
        assert (await s.whatsapp(ALICE, "alice one")).status_code == 200
        assert (await s.whatsapp(BOB, "bob one")).status_code == 200
        await eventually(lambda: len(s.conversations()) == 2 and s.node.dispatcher.inflight == 0)
        s.sandbox.intercom.configure(error_rate=1.0)
        assert (await s.whatsapp(ALICE, "alice doomed")).status_code == 200
        with trio.fail_after(15):
            while (await journal.statistics()).dead != 1:  # noqa: ASYNC110 - no event
                await trio.sleep(0.05)
        s.sandbox.intercom.configure(error_rate=0.0, timeout_rate=1.0, timeout_hold_seconds=30)
        assert (await s.whatsapp(ALICE, "alice stuck")).status_code == 200
        (letter,) = await journal.dead_letters()
        keys = sorted(k for k, _ in await journal.find_state("thread:"))
    alice, bob = (k.removeprefix("thread:") for k in keys)
    assert alice.endswith(ALICE)
    assert bob.endswith(BOB)
    return Journaled(database_url, alice, bob, letter.entry.id)


def url_args(j: Journaled) -> list[str]:
    return ["--database-url", j.url]


@pytest.mark.slow
async def test_threads_show_lists_state_pending_and_dead_letters(journaled: Journaled) -> None:
    j = journaled
    shown = cli("threads", "show", "whatsapp", ACCOUNT, ALICE, *url_args(j))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"thread {j.alice}" in out
    assert f"state key: thread:{j.alice}" in out
    assert re.search(r"contact_id: \S+", out)
    assert re.search(r"last_inbound_at: " + ISO_AGO.pattern, out)
    assert "pending entries: 1" in out
    assert re.search(r"\d+\tinbound\t" + ISO_AGO.pattern, out)
    assert "dead letters: 1" in out
    assert "IntercomUnavailable" in out
    data = json.loads(cli("threads", "show", "whatsapp", ACCOUNT, ALICE, "--json", *url_args(j))
                      .stdout)  # fmt: skip
    assert data["thread"] == j.alice
    assert data["state"]["conversation_id"]
    assert isinstance(data["state"]["last_inbound_at"], float)
    (pending,) = data["pending"]
    assert pending["kind"] == "inbound"
    assert isinstance(pending["created_at"], float)
    assert pending["created_at_iso"].endswith("Z")
    (dead,) = data["dead_letters"]
    assert dead["id"] == j.doomed_id
    assert "IntercomUnavailable" in dead["error"]
    assert dead["dead_at_iso"].endswith("Z")
    unknown = cli("threads", "show", "whatsapp", ACCOUNT, "15559999999", *url_args(j))
    assert unknown.returncode == 1
    assert "nothing journaled" in unknown.stderr
    bad = cli("threads", "show", "whatsapp", "has:colon", ALICE, *url_args(j))
    assert bad.returncode == 2
    assert "not a thread" in bad.stderr


@pytest.mark.slow
async def test_deadletters_list_and_show(journaled: Journaled) -> None:
    j = journaled
    listed = cli("deadletters", "list", *url_args(j))
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert line.startswith(f"{j.doomed_id}\t{j.alice}\tdead ")
    assert ISO_AGO.search(line)
    (row,) = [json.loads(x) for x in cli("deadletters", "list", "--json", *url_args(j))
              .stdout.splitlines()]  # fmt: skip
    assert isinstance(row["dead_at"], float)
    assert isinstance(row["created_at"], float)
    assert row["dead_at_iso"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["dead_at"]))
    shown = cli("deadletters", "show", str(j.doomed_id), *url_args(j))
    assert shown.returncode == 0, shown.stderr
    assert f"thread:    {j.alice}" in shown.stdout
    assert "IntercomUnavailable" in shown.stdout
    assert '"text": "alice doomed"' in shown.stdout
    assert re.search(r"dead:\s+" + ISO_AGO.pattern, shown.stdout)
    data = json.loads(cli("deadletters", "show", str(j.doomed_id), "--json", *url_args(j))
                      .stdout)  # fmt: skip
    assert data["job"]["kind"] == "inbound"
    assert data["job"]["message"]["text"] == "alice doomed"
    assert data["job_error"] is None
    missing = cli("deadletters", "show", "99999", *url_args(j))
    assert missing.returncode == 1
    assert "no dead letter 99999" in missing.stderr


@pytest.mark.slow
async def test_erase_deletes_one_customer_and_leaves_the_others(journaled: Journaled) -> None:
    j = journaled
    alice_state = json.loads(await state(j.url, thread_state_key(j.alice)) or b"")
    bob_state = json.loads(await state(j.url, thread_state_key(j.bob)) or b"")
    alice_index = conversation_index_key(alice_state["conversation_id"])
    bob_index = conversation_index_key(bob_state["conversation_id"])
    assert await state(j.url, alice_index) == j.alice.encode()
    assert await state(j.url, identity_key(f"phone:+{ALICE}")) is not None
    sent = {
        thread: sent_message_key("whatsapp", f"wamid.{thread[-4:]}") for thread in (j.alice, j.bob)
    }
    for thread, key in sent.items():
        record = SentRecord(thread=thread, conversation_id="1", what="“hi”", sent_at=time.time())
        await _put_state(j.url, {key: record.encode()}, at=time.time())
    before = await entries(j.url)
    bob_entries = [e.id for e in before if e.key == j.bob]
    assert len([e for e in before if e.key == j.alice]) == 3

    declined = cli("erase", "whatsapp", ACCOUNT, ALICE, *url_args(j), stdin="n\n")
    assert declined.returncode == 1
    assert "1 pending, 1 dead" in declined.stdout
    assert "sent-message records: 1" in declined.stdout
    assert "nothing erased" in declined.stdout
    assert await entries(j.url) == before

    erased = cli("erase", "whatsapp", ACCOUNT, ALICE, "--yes", *url_args(j))
    assert erased.returncode == 0, erased.stderr
    assert "journal entries: 1 pending, 1 done, 1 dead" in erased.stdout
    assert "state keys: 4" in erased.stdout
    assert "not touched: Intercom" in erased.stdout
    assert "THREADLINE_MEDIA_RETENTION_SECONDS" in erased.stdout

    after = await entries(j.url)
    assert [e.id for e in after] == bob_entries  # Alice's entries gone, Bob's kept
    alice_gone = (thread_state_key(j.alice), alice_index, identity_key(f"phone:+{ALICE}"))
    for gone in (*alice_gone, sent[j.alice]):
        assert await state(j.url, gone) is None, gone
    bob_kept = (thread_state_key(j.bob), bob_index, identity_key(f"phone:+{BOB}"))
    for kept in (*bob_kept, sent[j.bob]):
        assert await state(j.url, kept) is not None, kept
    assert cli("threads", "show", "whatsapp", ACCOUNT, ALICE, *url_args(j)).returncode == 1
    assert cli("threads", "show", "whatsapp", ACCOUNT, BOB, *url_args(j)).returncode == 0
    again = cli("erase", "whatsapp", ACCOUNT, ALICE, "--yes", *url_args(j))
    assert again.returncode == 1
    assert "nothing journaled" in again.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["threads", "show", "whatsapp", ACCOUNT, ALICE],
        ["erase", "whatsapp", ACCOUNT, ALICE, "--yes"],
        ["deadletters", "list"],
        ["deadletters", "show", "1"],
        ["deadletters", "replay", "--all"],
    ],
)
def test_operator_commands_never_create_a_sqlite_journal(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "typo.db"
    done = cli(*command, "--database-url", f"sqlite:///{missing}")
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert not missing.exists()


def test_operator_commands_refuse_a_sqlite_file_that_is_no_journal(tmp_path: Path) -> None:
    stranger = tmp_path / "other.db"
    stranger.write_bytes(b"")  # an empty file is a valid, empty SQLite database
    done = cli(
        "erase", "whatsapp", ACCOUNT, ALICE, "--yes", "--database-url", f"sqlite:///{stranger}"
    )
    assert done.returncode == 2
    assert "not a Threadline journal" in done.stderr
    assert stranger.read_bytes() == b""


async def test_housekeeping_prunes_dead_letters_past_their_retention(
    database_url: str, tmp_path: Path
) -> None:
    """A dead letter older than THREADLINE_DEAD_LETTER_RETENTION_SECONDS is deleted by the
    bridge's housekeeping; a younger one stays."""
    day = 86400.0
    old = await _dead_letter(database_url, died=time.time() - 3 * day, dedupe="old")
    young = await _dead_letter(database_url, died=time.time() - 1 * day, dedupe="young")
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        dead_letter_retention_seconds=2 * day,
    ) as s:
        with trio.fail_after(15):
            while await s.node.journal.dead_letter(old) is not None:  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert await s.node.journal.dead_letter(young) is not None


async def _dead_letter(url: str, *, died: float, dedupe: str) -> int:
    """Bury one entry as if at ``died`` (the journal's wall clock set back)."""
    clock = lambda: died  # noqa: E731 - a fixed wall clock
    journal: Any = (
        SQLiteJournal(url.removeprefix("sqlite:///"), wall_clock=clock)
        if url.startswith("sqlite:///")
        else PostgresJournal(url, wall_clock=clock)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        (appended,) = await journal.append([NewEntry(f"whatsapp:{ACCOUNT}:1", dedupe, b"{}")])
        await journal.bury(appended.id, "given up long ago")
        nursery.cancel_scope.cancel()
    return int(appended.id)


async def test_housekeeping_prunes_sent_message_records_past_the_journal_retention(
    database_url: str, tmp_path: Path
) -> None:
    """What the bridge remembers of a sent message (for a delivery failure reported later) is
    kept as long as done entries (THREADLINE_JOURNAL_RETENTION_SECONDS), then deleted."""
    day = 86400.0
    record = SentRecord(thread=f"whatsapp:{ACCOUNT}:1", conversation_id="1", what="“hi”",
                        sent_at=time.time()).encode()  # fmt: skip
    old, young = sent_message_key("whatsapp", "wamid.old"), sent_message_key("twilio", "SMyoung")
    await _put_state(database_url, {old: record, "thread:x": b"{}"}, at=time.time() - 3 * day)
    await _put_state(database_url, {young: record}, at=time.time() - 1 * day)
    async with open_stack(
        database_url=database_url,
        media_dir=str(tmp_path / "media"),
        journal_retention_seconds=2 * day,
    ) as s:
        with trio.fail_after(15):
            while await s.node.journal.get_state(old) is not None:  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert await s.node.journal.get_state(young) == record
        assert await s.node.journal.get_state("thread:x") == b"{}"  # other state: kept


async def _put_state(url: str, state: dict[str, bytes | None], *, at: float) -> None:
    """Write journal state as if at ``at`` (the journal's wall clock set)."""
    clock = lambda: at  # noqa: E731 - a fixed wall clock
    journal: Any = (
        SQLiteJournal(url.removeprefix("sqlite:///"), wall_clock=clock)
        if url.startswith("sqlite:///")
        else PostgresJournal(url, wall_clock=clock)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        await journal.put_state(state)
        nursery.cancel_scope.cancel()
