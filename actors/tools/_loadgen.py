"""Ordered-delivery load: an open-loop generator of signed webhooks and a checker at the sandbox.

Each of N threads (customers, spread over the channels) sends M messages whose text carries the
run id, the thread and its sequence number. A thread sends its next message only once the
previous one was acknowledged (as providers do: a redelivery, never a reordering, follows a
failure), while threads run concurrently on an open-loop schedule of ``rate`` messages/s:
message ``seq`` of thread ``t`` is due at ``start + (seq * threads + t) / rate`` whether or not
earlier ones were delivered. The checker reads every part the sandbox Intercom created, in
creation order, and proves per thread: nothing lost, nothing doubled, nothing out of order.

Latency is measured from the provider-side send time (the sender's wall clock when it built the
customer's message and first posted it: the instant WhatsApp's ``timestamp`` and Telegram's
``date`` carry, to the second) to the part's ``created_at`` in the sandbox (the sandbox's wall
clock: the same machine), so neither the polling interval of the checker nor the moment the
acknowledgement came back blurs it. A negative latency would mean the clocks disagree: it is
kept as measured, counted (:attr:`LoadReport.negative_latencies`) and reported, never clamped.

The timeline's bucket adapts to the run's length (:func:`bucket_for`): 100 ms for a run of a
few seconds, up to minutes for hours, so that a plot has about 30 to 120 points.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

from channels import (
    SignedWebhook,
    WebhookMedia,
    WhatsAppInbound,
    telegram_message_webhook,
    twilio_message_webhook,
    whatsapp_webhook,
)
from intercom import PooledTransport

from ._sandbox import SANDBOX_SECRETS

__all__ = [
    "LoadMedia",
    "LoadPlan",
    "LoadProgress",
    "LoadReport",
    "PartsFeed",
    "Target",
    "bucket_for",
    "run_load",
]

_MARK = re.compile(r"\[lt ([0-9a-f]+):(\d+):(\d+)\]")
CHANNELS = ("whatsapp", "twilio", "telegram")


@dataclass(frozen=True)
class LoadPlan:
    """What to send.

    Sending stops at whichever comes first: every thread sent ``messages_per_thread``, ``total``
    messages were sent, or ``duration_s`` seconds passed.
    """

    threads: int = 100
    messages_per_thread: int = 10
    rate: float = 0.0
    """Messages per second across all threads; 0 sends as fast as acknowledgements allow."""
    channels: tuple[str, ...] = CHANNELS
    attachment_share: float = 0.0
    """Share of messages carrying an image (needs :class:`LoadMedia`)."""
    concurrency: int = 64
    """HTTP requests in flight at most."""
    drain_seconds: float = 60.0
    """How long to wait for deliveries to stop making progress before counting losses."""
    total: int | None = None
    duration_s: float | None = None
    seed: int = 7
    redeliver_seconds: float | None = None
    """Redeliver a webhook until it is acknowledged, for at most this long after its first
    attempt: after any answer other than 200 and after a connection error, as providers do
    (for hours). None: up to 8 attempts, and only after a 429, a 502-504 or a connection error."""


@dataclass(frozen=True)
class Target:
    """Where the webhooks go and how they are signed (the sandbox's public credentials)."""

    bridge_url: str
    public_url: str
    """The bridge's THREADLINE_PUBLIC_URL (Twilio signs against it)."""
    twilio_auth_token: str
    twilio_account_sid: str
    more_urls: tuple[str, ...] = ()
    """Further nodes serving the same bridge (a cluster behind one endpoint): thread ``t``
    posts to the ``t``-th URL of ``(bridge_url, *more_urls)`` and moves on to the next one
    after a failure, as a load balancer would."""


@dataclass(frozen=True)
class LoadMedia:
    """An image registered in the sandbox providers, as each channel's webhook refers to it."""

    media_id: str
    """WhatsApp media id and Telegram file_id."""
    twilio_url: str
    """Twilio's ``MediaUrl0``."""
    mime_type: str = "image/png"


_PROGRESS_WINDOW_S = 5.0
"""The live display's rate and p99 cover the last this many seconds."""
_BUCKETS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_MAX_POINTS = 120


def bucket_for(duration_s: float) -> float:
    """The timeline's bucket for a run this long: the smallest that keeps it to 120 points
    (100 ms at least: a run of 3 s gets 30 points, one of 10 min 5-s buckets)."""
    for bucket in _BUCKETS_S:
        if duration_s / bucket <= _MAX_POINTS:
            return bucket
    return 3600.0


PartsFeed = Callable[[int], Awaitable[tuple[list[dict[str, Any]], int]]]
"""``feed(cursor) -> (parts created since cursor, next cursor)`` from the sandbox Intercom."""


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max (nearest rank), rounded to 0.01; zeros for no values."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 2)}


@dataclass(frozen=True)
class LoadProgress:
    """A cheap snapshot while the load runs."""

    elapsed_s: float
    sent: int
    acknowledged: int
    delivered: int
    duplicated: int
    sending: bool
    rate_per_s: float | None = None
    """Messages delivered per second over the last few seconds (None: too early to tell)."""
    eta_s: float | None = None
    """Seconds until every planned message is delivered at that rate (None: unknown)."""
    p99_ms: float | None = None
    """p99 latency (send → Intercom) of the messages delivered in the last few seconds."""


@dataclass
class LoadReport:
    """The outcome; :attr:`passed` needs zero lost, duplicated and out-of-order messages."""

    sent: int = 0
    acknowledged: int = 0
    refused: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    duration_s: float = 0.0
    throughput_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    ack_latency_ms: dict[str, float] = field(default_factory=dict)
    ingress_retries: int = 0
    """Webhooks the generator re-sent after a 429/5xx or a transport error from the bridge."""
    rejected_429: int | None = None
    """Intercom requests the sandbox answered 429 during the run (None: unknown)."""
    retries: int | None = None
    """Retries the bridge scheduled during the run (None: unknown)."""
    dead_letters: int | None = None
    """Entries the bridge dead-lettered during the run (None: unknown)."""
    timeline: list[dict[str, float]] = field(default_factory=list)
    """Per bucket since the start (``t``: its start in seconds): acknowledged, delivered,
    latency p50/p99 in ms."""
    bucket_s: float = 1.0
    """The timeline's bucket in seconds (:func:`bucket_for` the run's duration)."""
    latencies: list[float] = field(default_factory=list)
    negative_latencies: int = 0
    """Parts whose ``created_at`` precedes their send time: a clock bug, counted, not hidden."""
    max_p99_ms: float | None = None
    """The verdict's latency threshold (``--max-p99-ms``); None: latency does not fail a run."""
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """Why the verdict is FAIL (empty: PASS)."""
        reasons = []
        if self.lost:
            reasons.append(f"{self.lost} lost")
        if self.duplicated:
            reasons.append(f"{self.duplicated} duplicated")
        if self.out_of_order:
            reasons.append(f"{self.out_of_order} out of order")
        if self.acknowledged != self.sent:
            reasons.append(f"{self.sent - self.acknowledged} sent but never acknowledged")
        p99 = self.latency_ms.get("p99", 0.0)
        if self.max_p99_ms is not None and p99 > self.max_p99_ms:
            reasons.append(f"latency p99 {p99} ms above the threshold {self.max_p99_ms:g} ms")
        return reasons

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": self.failures,
            "max_p99_ms": self.max_p99_ms,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "refused": self.refused,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "duration_s": round(self.duration_s, 3),
            "throughput_per_s": round(self.throughput_per_s, 1),
            "latency_ms": self.latency_ms,
            "ack_latency_ms": self.ack_latency_ms,
            "rejected_429": self.rejected_429,
            "retries": self.retries,
            "dead_letters": self.dead_letters,
            "ingress_retries": self.ingress_retries,
            "negative_latencies": self.negative_latencies,
            "bucket_s": self.bucket_s,
            "notes": self.notes,
        }


class _Run:
    def __init__(self, plan: LoadPlan, target: Target, media: LoadMedia | None) -> None:
        self.plan = plan
        self.target = target
        self.media = media
        self.run_id = secrets.token_hex(4)
        self.acked_at: dict[tuple[int, int], float] = {}  # wall clock, as the sandbox's
        self.sent_at: dict[tuple[int, int], float] = {}  # the provider's send time (wall clock)
        self.recent: deque[tuple[float, float]] = deque()  # (seen at, latency ms), for progress
        self.ack_latency: list[float] = []
        self.seen: dict[tuple[int, int], float] = {}  # the part's created_at
        self.order: dict[int, list[int]] = {}
        self.duplicates = 0
        self.sent = 0
        self.refused = 0
        self.retries = 0
        self.rng = random.Random(plan.seed)  # noqa: S311 - workload shape, not cryptography
        self.limiter = trio.CapacityLimiter(plan.concurrency)
        self.deadline = math.inf

    def webhook(self, thread: int, seq: int, sent_at: float) -> tuple[str, SignedWebhook]:
        """The customer's message as its provider posts it, sent at ``sent_at`` (wall clock)."""
        when = datetime.fromtimestamp(sent_at, UTC)
        channel = self.plan.channels[thread % len(self.plan.channels)]
        text = f"[lt {self.run_id}:{thread}:{seq}] message {seq} of thread {thread}"
        with_media = self.media is not None and self.rng.random() < self.plan.attachment_share
        media = self.media if with_media else None
        if channel == "whatsapp":
            message = WhatsAppInbound(
                from_phone=f"1555{thread:07d}",
                text=text,
                media=None if media is None else WebhookMedia(media.media_id, media.mime_type),
                message_id=f"wamid.lt{self.run_id}{thread:07d}{seq:06d}",
                name=f"Load {thread}",
                sent_at=when,
            )
            body = whatsapp_webhook(
                SANDBOX_SECRETS.whatsapp_app_secret,
                SANDBOX_SECRETS.whatsapp_phone_number_id,
                [message],
            )
            return "/webhooks/whatsapp", body
        if channel == "twilio":
            return "/webhooks/twilio", twilio_message_webhook(
                self.target.twilio_auth_token,
                self.target.public_url.rstrip("/") + "/webhooks/twilio",
                account_sid=self.target.twilio_account_sid,
                to=SANDBOX_SECRETS.twilio_number,
                from_=f"+1666{thread:07d}",
                body=text,
                media=() if media is None else [WebhookMedia(media.twilio_url, media.mime_type)],
                message_sid=f"{'MM' if media else 'SM'}{self.run_id}{thread:012d}{seq:012d}",
            )
        return "/webhooks/telegram", telegram_message_webhook(
            SANDBOX_SECRETS.telegram_secret_token,
            chat_id=5_000_000 + thread,
            message_id=seq + 1,
            text=text,
            media=None if media is None else WebhookMedia(media.media_id, media.mime_type),
            update_id=None,
            first_name=f"Load{thread}",
            sent_at=when,
        )

    def may_send(self) -> bool:
        total = self.plan.total
        return (total is None or self.sent < total) and trio.current_time() < self.deadline

    async def send_thread(self, http: httpx.AsyncClient, thread: int, start: float) -> None:
        plan = self.plan
        for seq in range(plan.messages_per_thread):
            if plan.rate > 0:
                due = start + (seq * plan.threads + thread) / plan.rate
                if due >= self.deadline:
                    return
                await trio.sleep_until(due)
            if not self.may_send():
                return
            self.sent_at[(thread, seq)] = wall = time.time()
            path, webhook = self.webhook(thread, seq, wall)
            self.sent += 1
            sent_at = time.monotonic()
            if not await self._post(http, thread, path, webhook):
                self.refused += 1
                return  # the provider would retry much later; count the rest as never sent
            self.acked_at[(thread, seq)] = time.time()
            self.ack_latency.append((time.monotonic() - sent_at) * 1000)

    async def _post(
        self, http: httpx.AsyncClient, thread: int, path: str, webhook: SignedWebhook
    ) -> bool:
        urls = (self.target.bridge_url, *self.target.more_urls)
        node = thread % len(urls)
        redeliver = self.plan.redeliver_seconds
        give_up = math.inf if redeliver is None else trio.current_time() + redeliver
        attempt = 0
        while True:
            url = urls[node].rstrip("/") + path if len(urls) > 1 else path
            try:
                async with self.limiter:
                    response = await http.post(url, content=webhook.body, headers=webhook.headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                return True
            refused = response is not None and response.status_code not in (429, 502, 503, 504)
            if redeliver is None and refused:
                return False  # refused for good (4xx): a provider would not retry either
            if trio.current_time() >= give_up:
                return False
            self.retries += 1
            node = (node + 1) % len(urls)
            await trio.sleep(min(2.0 if redeliver is None else 1.0, 0.05 * 2 ** min(attempt, 6)))
            attempt += 1
            if redeliver is None and attempt == 8:
                return False

    def record(self, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Check the parts in creation order; returns those that belong to this run."""
        now = time.time()
        ours = []
        for part in parts:
            match = _MARK.search(str(part.get("body") or ""))
            if match is None or match.group(1) != self.run_id:
                continue
            ours.append(part)
            key = (int(match.group(2)), int(match.group(3)))
            if key in self.seen:
                self.duplicates += 1
                continue
            created = part.get("created_at")
            self.seen[key] = seen = float(created) if isinstance(created, int | float) else now
            if key in self.sent_at:
                self.recent.append((seen, (seen - self.sent_at[key]) * 1000))
            self.order.setdefault(key[0], []).append(key[1])
        return ours


async def run_load(
    plan: LoadPlan,
    target: Target,
    feed: PartsFeed,
    *,
    media: LoadMedia | None = None,
    progress: Callable[[LoadProgress], None] | None = None,
    progress_interval: float = 0.5,
    on_part: Callable[[dict[str, Any]], None] | None = None,
) -> LoadReport:
    """Send the plan's webhooks to the bridge and check what reaches the sandbox Intercom.

    ``progress`` is called every ``progress_interval`` seconds with a snapshot; ``on_part``
    with every part of this run the checker sees (the driver uses it to pick conversations
    to delete). Returns once every acknowledged message was seen, or deliveries stalled for
    ``plan.drain_seconds`` after sending ended.
    """
    run = _Run(plan, target, media)
    cursor_box = [await _end_of(feed)]  # start after whatever the sandbox already holds
    sending_done = trio.Event()
    started_wall = time.time()
    started = trio.current_time()
    if plan.duration_s is not None:
        run.deadline = started + plan.duration_s

    planned = plan.threads * plan.messages_per_thread
    planned = planned if plan.total is None else min(planned, plan.total)
    history: deque[tuple[float, int]] = deque()  # (elapsed, delivered) over the window

    def snapshot() -> LoadProgress:
        elapsed = trio.current_time() - started
        delivered = len(run.seen)
        sending = not sending_done.is_set()
        history.append((elapsed, delivered))
        while len(history) > 2 and elapsed - history[1][0] >= _PROGRESS_WINDOW_S:
            history.popleft()
        rate = eta = None
        span = elapsed - history[0][0]
        if span >= 1.0:
            rate = (delivered - history[0][1]) / span
            remaining = (planned if sending else len(run.acked_at)) - delivered
            if remaining <= 0:
                eta = 0.0
            elif rate > 0:
                eta = remaining / rate
            if sending and plan.duration_s is not None:
                eta = max(0.0, plan.duration_s - elapsed) if eta is None else eta
        horizon = time.time() - _PROGRESS_WINDOW_S
        while run.recent and run.recent[0][0] < horizon:
            run.recent.popleft()
        p99 = percentiles([ms for _, ms in run.recent])["p99"] if run.recent else None
        return LoadProgress(
            elapsed_s=elapsed,
            sent=run.sent,
            acknowledged=len(run.acked_at),
            delivered=delivered,
            duplicated=run.duplicates,
            sending=sending,
            rate_per_s=rate,
            eta_s=eta,
            p99_ms=p99,
        )

    async def watch() -> None:
        last_progress = last_report = trio.current_time()
        while True:
            parts, cursor_box[0] = await feed(cursor_box[0])
            now = trio.current_time()
            if parts:
                ours = run.record(parts)
                if ours:
                    last_progress = now
                if on_part is not None:
                    for part in ours:
                        on_part(part)
            if progress is not None and now - last_report >= progress_interval:
                last_report = now
                progress(snapshot())
            done = sending_done.is_set() and len(run.seen) >= len(run.acked_at)
            stalled = sending_done.is_set() and now - last_progress > plan.drain_seconds
            if done or stalled:
                return
            await trio.sleep(0.05)

    async with (
        httpx.AsyncClient(
            base_url=target.bridge_url,
            timeout=60.0,
            transport=PooledTransport(connections=plan.concurrency),  # cheap pool bookkeeping
        ) as http,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watch)
        async with trio.open_nursery() as senders:
            for thread in range(plan.threads):
                senders.start_soon(run.send_thread, http, thread, started)
        sending_done.set()
    if progress is not None:
        progress(snapshot())
    return _report(run, started_wall)


async def _end_of(feed: PartsFeed) -> int:
    cursor = 0
    while True:
        parts, following = await feed(cursor)
        if not parts or following == cursor:
            return following
        cursor = following


def _report(run: _Run, started: float) -> LoadReport:
    report = LoadReport()
    report.sent = run.sent
    report.acknowledged = len(run.acked_at)
    report.refused = run.refused
    report.ingress_retries = run.retries
    report.delivered = len(run.seen)
    report.duplicated = run.duplicates
    report.lost = sum(1 for key in run.acked_at if key not in run.seen)
    report.out_of_order = sum(
        sum(1 for a, b in itertools.pairwise(seqs) if b < a) for seqs in run.order.values()
    )
    last = max(run.seen.values(), default=started)
    report.duration_s = max(1e-9, last - started)
    report.throughput_per_s = report.delivered / report.duration_s
    # From the provider's send time (never the acknowledgement), as measured: not clamped.
    report.latencies = [
        (seen - run.sent_at[key]) * 1000
        for key, seen in run.seen.items()
        if key in run.acked_at and key in run.sent_at
    ]
    report.negative_latencies = sum(1 for ms in report.latencies if ms < 0)
    if report.negative_latencies:
        report.notes.append(
            f"{report.negative_latencies} parts were created in Intercom before their message "
            "was sent: the sender's and the sandbox's clocks disagree (latencies kept as measured)"
        )
    report.latency_ms = percentiles(report.latencies)
    report.ack_latency_ms = percentiles(run.ack_latency)
    report.bucket_s = bucket_for(report.duration_s)
    report.timeline = _timeline(run, started, report.bucket_s)
    return report


def _timeline(run: _Run, started: float, bucket: float) -> list[dict[str, float]]:
    def index(at: float) -> int:
        return max(0, int((at - started) / bucket))

    acks: dict[int, int] = {}
    for acked in run.acked_at.values():
        acks[index(acked)] = acks.get(index(acked), 0) + 1
    latencies: dict[int, list[float]] = {}
    for key, seen in run.seen.items():
        if key in run.acked_at and key in run.sent_at:
            latencies.setdefault(index(seen), []).append((seen - run.sent_at[key]) * 1000)
    rows = []
    for i in range(max([*acks, *latencies], default=-1) + 1):
        values = latencies.get(i, [])
        marks = percentiles(values)
        rows.append(
            {
                "t": round(i * bucket, 3),
                "acknowledged": float(acks.get(i, 0)),
                "delivered": float(len(values)),
                "p50_ms": marks["p50"],
                "p99_ms": marks["p99"],
            }
        )
    return rows
