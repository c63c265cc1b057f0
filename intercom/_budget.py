"""A per-process rate budget that follows Intercom's 10-second windows.

Intercom spreads its per-minute limit over 10-second windows and reports the current window on
every response (``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` as a UNIX time). The budget
counts requests locally so a burst of concurrent callers waits for the next window instead of
collecting 429s, and re-synchronises from those headers after every response.

All callers in one Trio run share one budget; it is single-threaded by construction and needs
no locks. Waiting uses ``trio.sleep_until`` on Trio's clock (so ``MockClock`` drives it in
tests); only the conversion of ``X-RateLimit-Reset`` uses the injectable wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import trio

__all__ = ["RateBudget"]


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class RateBudget:
    """Shared request budget: at most ``limit`` requests per window, synced from headers.

    Before any response is seen it allows ``limit`` requests per ``window_seconds`` window
    starting at the first request; once Intercom's headers arrive it adopts Intercom's window
    boundaries and remaining count (minus requests still in flight).

    Counters for metrics (plain attributes, monotonic): ``acquired``, ``waits``,
    ``wait_seconds``, ``rate_limited`` (429s observed).

    Args:
        limit: requests per window. ``X-RateLimit-Limit`` can lower it, never raise it.
            Intercom's default private-app limit is 10,000/min, i.e. 1,666 per 10 s.
        window_seconds: window length (Intercom: 10 s).
        margin_seconds: extra wait after a window's reset, so requests do not reach Intercom
            a hair before its window has rolled over.
        wall_clock: UNIX time source used only to convert ``X-RateLimit-Reset``.
    """

    def __init__(
        self,
        *,
        limit: int = 1666,
        window_seconds: float = 10.0,
        margin_seconds: float = 0.05,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.limit = limit
        self._configured_limit = limit
        self.window_seconds = window_seconds
        self.margin_seconds = margin_seconds
        self._wall_clock = wall_clock
        self._window_end = -math.inf  # Trio time at which the current window ends
        self._remaining = 0
        self._synced = False  # True once the window came from Intercom's headers
        self._in_flight = 0
        self.acquired = 0
        self.waits = 0
        self.wait_seconds = 0.0
        self.rate_limited = 0

    @property
    def remaining(self) -> int:
        """Requests left in the current window as the budget sees it."""
        return self._remaining if trio.current_time() < self._window_end else self.limit

    @property
    def window_end(self) -> float:
        """Trio time at which the current window ends (``-inf`` before the first request)."""
        return self._window_end

    @property
    def in_flight(self) -> int:
        """Requests acquired whose response has not been observed yet."""
        return self._in_flight

    async def acquire(self) -> int:
        """Take one request from the budget, waiting for the next window when it is spent.

        Every acquire must be followed by exactly one :meth:`observe` or :meth:`release`.
        Cancellation while waiting takes nothing from the budget.

        Returns:
            a ticket (the request's position among all acquired) for :meth:`observe`.
        """
        waited = False
        while True:
            now = trio.current_time()
            if now >= self._window_end:
                self._roll(now)
            if self._remaining > 0:
                self._remaining -= 1
                self._in_flight += 1
                self.acquired += 1
                return self.acquired
            if not waited:
                self.waits += 1
                waited = True
            self.wait_seconds += self._window_end - now
            await trio.sleep_until(self._window_end)

    def _roll(self, now: float) -> None:
        if self._window_end == -math.inf or now - self._window_end >= self.window_seconds:
            self._window_end = now + self.window_seconds
            self._synced = False
        else:
            # Keep the boundaries Intercom told us about: windows follow each other.
            self._window_end += self.window_seconds
        while self._window_end <= now:  # float rounding at an exact boundary: never a past window
            self._window_end += self.window_seconds
        self._remaining = self.limit

    def release(self) -> None:
        """Give back the in-flight slot of a request that got no response (transport error)."""
        self._in_flight = max(0, self._in_flight - 1)

    def observe(
        self, headers: Mapping[str, str], status: int | None = None, ticket: int | None = None
    ) -> None:
        """Update from a response's ``X-RateLimit-*`` headers (and count it as landed).

        Args:
            headers: response headers (case-insensitive mapping such as ``httpx.Headers``).
            status: the response status; 429 counts as rate limited and empties the window.
            ticket: what :meth:`acquire` returned for this request. Intercom's
                ``Remaining`` then counts every request sent before it, so only those acquired
                since may be missing from it; without a ticket every request still in flight
                is assumed missing (which under-uses the window by the concurrency).
        """
        self._in_flight = max(0, self._in_flight - 1)
        if status == 429:
            self.rate_limited += 1
        limit = _number(headers, "x-ratelimit-limit")
        if limit is not None and limit >= 1:
            # Only ever lowers the configured per-window limit: Intercom's header may state
            # the per-minute figure while it enforces a sixth of it per 10-second window.
            self.limit = min(self._configured_limit, int(limit))
        remaining = _number(headers, "x-ratelimit-remaining")
        reset = _number(headers, "x-ratelimit-reset")
        now = trio.current_time()
        if reset is None:
            if status == 429:
                retry_after = _number(headers, "retry-after")
                wait = self.window_seconds if retry_after is None else max(0.0, retry_after)
                self._remaining = 0
                self._window_end = now + wait  # Intercom knows its window better than we do
                self._synced = True
            return
        delay = min(max(reset - self._wall_clock(), 0.0), self.window_seconds)
        if status == 429:
            # Reset has one-second resolution: never retry a refused window sooner than that.
            delay = max(delay, min(1.0, self.window_seconds))
        end = now + delay + self.margin_seconds
        left = self.limit if remaining is None else int(remaining)
        if status == 429:
            left = 0
        # Requests sent after this one may not be counted in its Remaining yet.
        unseen = self._in_flight if ticket is None else max(0, self.acquired - ticket)
        tolerance = min(0.5, self.window_seconds / 4)
        if not self._synced or end > self._window_end + tolerance:
            self._window_end = end  # a newer window (or the first real one): adopt it
            self._remaining = max(0, left - unseen)
            self._synced = True
        elif end >= self._window_end - tolerance and left < self._remaining:
            # Same window. Our own count already covers our requests in flight (answers arrive
            # out of order, so discounting them again under-used each window by about the
            # concurrency). A lower Remaining means someone else spends the same budget: then
            # allow for ours not yet counted as well.
            self._remaining = max(0, left - unseen)
        # else: news about a window that has already ended; ignore it

    def observe_rate_limited(self, retry_after: float) -> None:
        """Empty the budget for ``retry_after`` seconds (a 429 without usable headers)."""
        self.rate_limited += 1
        self._remaining = 0
        self._window_end = max(self._window_end, trio.current_time() + retry_after)
