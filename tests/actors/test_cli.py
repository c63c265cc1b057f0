"""The command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from runtime import open_sqlite_journal

THREADLINE = [sys.executable, "-m", "actors"]


def run(
    *args: str, cwd: Path | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*THREADLINE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_demo_shows_every_behaviour_and_passes_its_load() -> None:
    done = run("demo", "--threads", "30", "--messages", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in range(1, 11):
        assert f"\n{step}. " in "\n" + out, f"step {step} missing"
    assert "then reported it undelivered (error 30003: Unreachable destination handset)" in out
    assert "delivery failures noted ...... 1" in out
    assert "PASS: sent 120, acknowledged 120, delivered 120, lost 0, duplicated 0" in out
    assert "template 'conversation_reopen' sent instead" in out
    assert "the held reply went out: 'Grace Teammate: Yes, until March 2027.'" in out
    # Step 3 only: Carla's answer to the re-engagement template (step 9) comes 25 hours after
    # her last message but right after the template, and the buffer counts both directions.
    assert "conversations (buffer_expired) .. 1\n" in out
    assert "whatsapp: 'Grace Teammate: Closed — thanks, Ana!'" in out  # a close with a message
    assert "conversations (conversation_gone)  1" in out
    # A teammate's link stays visible and a long SMS reply is split, not cut (issue 17).
    assert "track it here (https://track.example/1042)." in out
    assert "\n8b. " in out
    assert "\n8c. " in out  # a delivery failure reported later leaves a note
    # Two WhatsApp apps and two Telegram bots from an accounts file (issue 18): a customer on
    # the second number and on the second bot has their own conversation, and the reply goes
    # out from that number or bot (the demo checks the credential each send used).
    assert "\n8d. " in out
    assert "Telegram bots 7000000001 and 7000000002)" in out
    assert "Ana on the outlet's number 100000000000002: her own conversation" in out
    assert "Grace's reply to Ana left from 100000000000002 with the outlet app's token" in out
    assert "Grace's reply to Bruno left through the sales bot 7000000002" in out
    # Viber (issue 21): the contact by its viber_user_id; the reply under the bot's name; an
    # unsubscribed customer is not messaged, a note says so.
    assert "\n8e. Olga writes on Viber" in out
    assert "Olga unsubscribed: the next reply is not sent, a note tells the team" in out
    # LINE (issue 21): the contact by its line_user_id; a reply by reply token, then a push.
    assert "\n8f. Chen writes on LINE" in out
    assert "answered with the message's reply token (free)" in out
    assert "pushed: the token answers once" in out
    # Messenger and Instagram (issue 21): a contact and a conversation each, found by the
    # sender's id; the teammate's reply leaves through the fake Send API with their name.
    assert "\n8g. " in out
    assert re.search(r"messenger: contact \w+ by messenger_user_id=5550001111000007,", out)
    assert re.search(r"instagram: contact \w+ by instagram_user_id=1789000000000077,", out)
    assert "Ivo's photo fetched from the CDN URL and uploaded" in out
    assert "to 5550001111000007: 'Grace Teammate: Yes, within 30 days.'" in out
    assert "to 1789000000000077: 'Grace Teammate: Red is back on Friday.'" in out
    assert "over 7 channels (whatsapp, twilio, telegram, messenger, instagram, viber, line)" in out


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("threadline ")
    assert run().returncode == 2


@pytest.mark.parametrize(
    "bad", [["serve", "--bind", "nonsense"], ["deadletters", "list", "--database-url", "mysql://x"]]
)
def test_invalid_settings_exit_2_with_a_reason(bad: list[str]) -> None:
    done = run(*bad)
    assert done.returncode == 2
    assert "invalid settings" in done.stderr


async def _create_journal(path: Path) -> None:
    async with open_sqlite_journal(path):
        pass


def test_deadletters_on_an_empty_journal(tmp_path: Path) -> None:
    trio.run(_create_journal, tmp_path / "j.db")  # the command never creates one itself
    url = f"sqlite:///{tmp_path / 'j.db'}"
    trio.run(create_journal, tmp_path / "j.db")
    listed = run("deadletters", "--database-url", url, "list")
    assert listed.returncode == 0, listed.stderr
    assert "0 dead letter(s)" in listed.stderr
    replayed = run("deadletters", "--database-url", url, "replay", "--all")
    assert replayed.returncode == 0
    assert "replayed 0 entries" in replayed.stdout


async def create_journal(path: Path) -> None:
    async with open_sqlite_journal(path):
        pass
