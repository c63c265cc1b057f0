"""The recorded steps themselves (actors/delivery/_steps.py), on a real SQLite journal: which
outcome of one attempt decides what the next attempt of the entry does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from actors.delivery import Outcome, Steps
from channels import SendInDoubt, SendTransient
from runtime import open_sqlite_journal

RETRYABLE = (SendTransient,)
DOUBTFUL = (SendInDoubt,)


def failing_then(calls: list[str], *failures: Exception) -> Callable[[], Awaitable[str | None]]:
    """An effect that raises ``failures`` one per call, then succeeds; each call is counted."""
    pending = list(failures)

    async def effect() -> str | None:
        calls.append("call")
        if pending:
            raise pending.pop(0)
        return None

    return effect


async def test_a_timeout_after_a_5xx_is_in_doubt_on_the_next_attempt(tmp_path: Path) -> None:
    """Attempt 1 gets a 5xx (nothing sent: retryable), attempt 2 times out (it may have been
    sent): attempt 3 must find the step in doubt, not send it a second time."""
    calls: list[str] = []
    effect = failing_then(calls, SendTransient("503"), SendInDoubt("timed out"))
    async with open_sqlite_journal(tmp_path / "journal.db") as journal:
        steps = await Steps.load(journal, 1)
        for expected in (SendTransient, SendInDoubt):
            with pytest.raises(expected):
                await steps.run("p:text:0", effect, retryable=RETRYABLE, doubtful=DOUBTFUL)
        result = await steps.run("p:text:0", effect, retryable=RETRYABLE, doubtful=DOUBTFUL)
        assert result.outcome is Outcome.IN_DOUBT
        assert steps.in_doubt == ["p:text:0"]
        # A restart reads the same from the journal.
        again = await Steps.load(journal, 1)
        result = await again.run("p:text:0", effect, retryable=RETRYABLE, doubtful=DOUBTFUL)
        assert result.outcome is Outcome.IN_DOUBT
    assert calls == ["call", "call"]


async def test_a_5xx_after_a_5xx_is_retried(tmp_path: Path) -> None:
    calls: list[str] = []
    effect = failing_then(calls, SendTransient("503"), SendTransient("502"))
    async with open_sqlite_journal(tmp_path / "journal.db") as journal:
        steps = await Steps.load(journal, 1)
        for _ in range(2):
            with pytest.raises(SendTransient):
                await steps.run("p:text:0", effect, retryable=RETRYABLE, doubtful=DOUBTFUL)
        result = await steps.run("p:text:0", effect, retryable=RETRYABLE, doubtful=DOUBTFUL)
        assert result.outcome is Outcome.DONE
    assert calls == ["call", "call", "call"]


async def test_a_memo_is_kept_with_the_steps_and_read_back_after_a_restart(
    tmp_path: Path,
) -> None:
    calls: list[str] = []
    async with open_sqlite_journal(tmp_path / "journal.db") as journal:
        steps = await Steps.load(journal, 1)
        assert steps.memo("p:signature") is None
        steps.set_memo("p:signature", "Grace Teammate")
        assert not steps.touched("p:text")
        await steps.run("p:text:0", failing_then(calls), retryable=RETRYABLE)
        assert steps.touched("p:text")
        again = await Steps.load(journal, 1)
        assert again.memo("p:signature") == "Grace Teammate"
        assert again.touched("p:text")
        assert not again.touched("p:media:")
