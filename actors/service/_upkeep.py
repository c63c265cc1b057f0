"""Upkeep beside delivery: the readiness probe's journal health, and housekeeping (journal
statistics for the metrics, pruning, the media sweep)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio

from runtime import (
    Journal,
    JournalError,
    JournalUnavailable,
)

from ..bridge import (
    SENT_MESSAGE_PREFIX,
    MediaStore,
)
from ..core import BridgeMetrics, LogLimiter, Settings

__all__ = ["PROBE_KEY", "JournalHealth", "housekeeping"]

logger = logging.getLogger("threadline.bridge")

PROBE_KEY = "health:probe"
"""The journal state key the readiness probe writes (the time of its latest write)."""


class JournalHealth:
    """Whether the journal can commit, found out by committing: every ``interval`` seconds (a
    third of a lease, 5 s by default) a one-row state write, off the hot path.

    The journal is down from the first failed probe until one succeeds, and also while a probe
    hangs (no commit for two intervals): an outage shows within about one interval.
    """

    def __init__(self, journal: Journal, *, interval: float) -> None:
        self._journal = journal
        self.interval = interval
        self._committed_at = time.monotonic()  # opening the journal committed its schema
        self._failure: str | None = None

    def problem(self) -> str | None:
        """None while the journal commits; else why not, in one line."""
        if self._failure is not None:
            return self._failure
        silent = time.monotonic() - self._committed_at
        if silent > 2 * self.interval:
            return f"the journal has not committed for {silent:.0f} s"
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe until cancelled."""
        task_status.started()
        next_probe = trio.current_time()
        while True:  # start to start, like the lease ticks
            next_probe = max(next_probe + self.interval, trio.current_time())
            await trio.sleep_until(next_probe)
            await self.probe()

    async def probe(self) -> None:
        """One probe write; records its outcome."""
        try:
            await self._journal.put_state({PROBE_KEY: f"{time.time():.3f}".encode()})
        except JournalError as exc:
            reason = " ".join(str(exc).split())[:300]
            if self._failure is None:
                logger.error("journal cannot commit; not ready: %s", reason)
            self._failure = f"the journal cannot commit: {reason}"
        else:
            if self._failure is not None:
                logger.warning("journal commits again; ready")
            self._failure = None
            self._committed_at = time.monotonic()


def housekeeping(
    journal: Journal, metrics: BridgeMetrics, settings: Settings, media: MediaStore
) -> Callable[..., Awaitable[None]]:
    repeats = LogLimiter()

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_prune = next_sweep = 0.0
        while True:
            if time.time() >= next_sweep:  # expired oversize media (also swept on each save)
                next_sweep = time.time() + min(3600.0, settings.media_retention_seconds)
                try:
                    await media.sweep()
                except (OSError, JournalError) as exc:
                    logger.warning("housekeeping: media sweep failed: %s", exc)
            try:
                stats = await journal.statistics()
                sources = metrics.sources
                sources.pending = stats.pending
                sources.dead = stats.dead
                oldest = stats.oldest_pending_created_at
                sources.oldest_pending_age = max(0.0, time.time() - oldest) if oldest else 0.0
                if time.time() >= next_prune:
                    await journal.prune(
                        done_before=time.time() - settings.journal_retention_seconds
                    )
                    await journal.prune_dead(
                        dead_before=time.time() - settings.dead_letter_retention_seconds
                    )
                    # What was sent, for delivery failures: kept as long as their dedupe ids.
                    await journal.prune_state(
                        prefix=SENT_MESSAGE_PREFIX,
                        updated_before=time.time() - settings.journal_retention_seconds,
                    )
                    next_prune = time.time() + 3600.0
            except JournalUnavailable as exc:
                repeats.log(
                    logger, logging.WARNING, "journal", "housekeeping: journal unavailable: %s", exc
                )
            await trio.sleep(5.0)

    return run
