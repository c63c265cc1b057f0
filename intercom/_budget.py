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
from typing import Protocol

import trio

__all__ = ["RateBudget", "SharedRateBudget", "WindowClaim"]


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
        remaining, reset, wait = self._landed(headers, status)
        now = trio.current_time()
        if reset is None:
            if wait is not None:
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

    def _landed(
        self, headers: Mapping[str, str], status: int | None
    ) -> tuple[float | None, float | None, float | None]:
        """Count a response as landed (and a 429 as rate limited) and adopt a lower
        ``X-RateLimit-Limit``; return ``Remaining``, ``Reset`` and, for a 429 without ``Reset``,
        the seconds to wait (``Retry-After``, else a window; None otherwise)."""
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
        wait = None
        if reset is None and status == 429:
            retry_after = _number(headers, "retry-after")
            wait = self.window_seconds if retry_after is None else max(0.0, retry_after)
        return remaining, reset, wait

    def observe_rate_limited(self, retry_after: float) -> None:
        """Empty the budget for ``retry_after`` seconds (a 429 without usable headers)."""
        self.rate_limited += 1
        self._remaining = 0
        self._window_end = max(self._window_end, trio.current_time() + retry_after)


class WindowClaim(Protocol):
    """A counter per window shared by every process of the app (cluster mode: a row in
    PostgreSQL). Raises the count of ``window`` to at least ``floor``, then takes up to
    ``want`` more without passing ``limit``; returns how many it took. Atomic across
    processes, so the processes together never take more than ``limit`` of a window."""

    async def __call__(self, window: int, want: int, limit: int, floor: int, /) -> int: ...


class SharedRateBudget(RateBudget):
    """One request budget for every process of the app, in Intercom's windows.

    Windows are Intercom's: ``window_seconds`` long, aligned to the UNIX epoch (Intercom's
    ``X-RateLimit-Reset`` values are multiples of 10 s; an offset seen in them is adopted).
    Requests go out between ``margin_seconds`` after a boundary and ``tail_seconds`` before the
    next, so that one counted in a window also reaches Intercom in it (clock skew, latency).
    A request takes a slot of the current window from this process's slots; when they run
    out, one caller claims as many as there are callers waiting (at most ``batch``, and at most
    an eighth of the limit so that processes interleave) from the shared counter in one round
    trip, while the others wait for it. Slots are claimed only for callers that wait, so a
    window's slots are not stranded in a process that does not need them; slots left when the
    window ends are dropped (the counter starts each window afresh).

    Intercom's headers correct the shared count: a ``Remaining`` lower than the shared count
    allows (another app using the same token, a request that landed in the next window) raises
    it at this process's next claim; a 429 or ``Remaining: 0`` marks the window spent, here at
    once and for every process with a claim of nothing but that floor.

    Counters as :class:`RateBudget`'s, plus ``claims`` (round trips to the shared counter) and
    ``claim_seconds`` (time spent in them).

    Args:
        claim: the shared counter.
        batch: most slots claimed per round trip.
        margin_seconds: no request goes out earlier than this after a boundary (clock skew
            between the nodes and Intercom).
        tail_seconds: nor later than this before the next boundary (a request's way to
            Intercom, and skew the other way). Under load a window is spent long before.
        wall_clock: UNIX time; windows are wall-clock windows, shared by every process.
    """

    def __init__(
        self,
        claim: WindowClaim,
        *,
        limit: int = 1666,
        window_seconds: float = 10.0,
        margin_seconds: float = 0.05,
        tail_seconds: float = 0.25,
        batch: int = 32,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            limit=limit,
            window_seconds=window_seconds,
            margin_seconds=margin_seconds,
            wall_clock=wall_clock,
        )
        if batch < 1 or not 0 <= margin_seconds + tail_seconds < window_seconds:
            raise ValueError("batch must be >= 1, and margin + tail shorter than a window")
        self.tail_seconds = tail_seconds
        self._claim = claim
        self._batch = batch
        self._offset = 0.0  # window boundaries: offset + k * window_seconds (UNIX time)
        self._window = -1  # the window whose slots this process holds
        self._slots = 0
        self._spent = -1  # the latest window known to have no slot left anywhere
        self._blocked_until = -math.inf  # wall time (a 429 without a usable Reset)
        self._floors: dict[int, int] = {}  # window -> requests Intercom counted in it
        self._waiting = 0
        self._claiming: trio.Event | None = None
        self.claims = 0
        self.claim_seconds = 0.0

    def _index(self, wall: float) -> int:
        return math.floor((wall - self._offset) / self.window_seconds)

    def _start(self, index: int) -> float:
        """When requests of window ``index`` may go out (wall time)."""
        return self._offset + index * self.window_seconds + self.margin_seconds

    def _open(self, index: int, wall: float) -> bool:
        start = self._start(index)
        return start <= wall < start - self.margin_seconds + self.window_seconds - self.tail_seconds

    @property
    def remaining(self) -> int:
        """Slots this process holds for the current window."""
        return self._slots if self._index(self._wall_clock()) == self._window else 0

    @property
    def window_end(self) -> float:
        """Trio time at which the current window ends (for this budget)."""
        wall = self._wall_clock()
        return trio.current_time() + self._start(self._index(wall) + 1) - wall

    async def acquire(self) -> int:
        """Take one request slot of the current window, claiming slots from the shared counter
        or waiting for the next window. Cancellation while waiting takes nothing; slots
        claimed for a caller that was cancelled stay with this process for the window."""
        waited = False
        self._waiting += 1
        try:
            while True:
                wall = self._wall_clock()
                index = self._index(wall)
                if index != self._window:
                    self._window, self._slots = index, 0
                    for old in [w for w in self._floors if w < index]:
                        del self._floors[old]
                is_open = self._open(index, wall)
                if self._slots > 0 and is_open:
                    self._slots -= 1
                    self._in_flight += 1
                    self.acquired += 1
                    return self.acquired
                if self._claiming is not None:
                    await self._claiming.wait()
                    continue
                if is_open and wall >= self._blocked_until and self._spent < index:
                    want = min(self._waiting, self._batch, max(1, self.limit // 8))
                    granted = await self._claim_slots(index, want)
                    if granted < want:
                        self._spent = max(self._spent, index)
                    if self._window == index:
                        self._slots += granted
                    continue
                if self._floors.get(index, 0) >= self.limit:
                    await self._claim_slots(index, 0)  # tell the others the window is spent
                    continue
                until = max(
                    self._blocked_until,
                    self._start(index) if wall < self._start(index) else self._start(index + 1),
                )
                if not waited:
                    self.waits += 1
                    waited = True
                self.wait_seconds += max(0.0, until - wall)
                await trio.sleep(max(0.0, until - wall))
        finally:
            self._waiting -= 1

    async def _claim_slots(self, index: int, want: int) -> int:
        floor = self._floors.pop(index, 0)
        event = self._claiming = trio.Event()
        started = trio.current_time()
        try:
            return await self._claim(index, want, self.limit, min(floor, self.limit))
        except BaseException:
            if floor:
                self._floors[index] = max(floor, self._floors.get(index, 0))
            raise
        finally:
            self._claiming = None
            event.set()
            self.claims += 1
            self.claim_seconds += trio.current_time() - started

    def observe(
        self, headers: Mapping[str, str], status: int | None = None, ticket: int | None = None
    ) -> None:
        """Note a response: a lower ``Remaining`` than ours raises the shared count at the next
        claim; a 429 or ``Remaining: 0`` spends the window for everyone."""
        remaining, reset, wait = self._landed(headers, status)
        wall = self._wall_clock()
        if reset is None:
            if wait is not None:
                self._blocked_until = max(self._blocked_until, wall + wait)
            return
        self._offset = reset % self.window_seconds
        index = round((reset - self._offset) / self.window_seconds) - 1
        if status == 429 or (remaining is not None and remaining <= 0):
            used = self.limit
            self._spent = max(self._spent, index)
            if status == 429:  # Reset has one-second resolution: never sooner than that
                self._blocked_until = max(self._blocked_until, wall + min(1.0, self.window_seconds))
        elif remaining is not None:
            used = max(0, self.limit - int(remaining))
        else:
            return
        if used > self._floors.get(index, 0):
            self._floors[index] = used

    def observe_rate_limited(self, retry_after: float) -> None:
        """Wait ``retry_after`` seconds before the next request (a 429 without usable headers)."""
        self.rate_limited += 1
        self._blocked_until = max(self._blocked_until, self._wall_clock() + retry_after)
