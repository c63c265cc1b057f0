"""Ordered-delivery load: an open-loop generator of signed webhooks and a checker at the sandbox.

Each of N threads (customers, spread over the channels) sends M messages whose text carries the
run id, the thread and its sequence number. A thread sends its next message only once the
previous one was acknowledged (as providers do: a redelivery, never a reordering, follows a
failure), while threads run concurrently on an open-loop schedule of ``rate`` messages/s.
The checker reads every part the sandbox Intercom created, in creation order, and proves per
thread: nothing lost, nothing doubled, nothing out of order.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
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

from ._sandbox import SANDBOX_SECRETS

__all__ = ["LoadPlan", "LoadReport", "PartsFeed", "Target", "run_load"]

_MARK = re.compile(r"\[lt ([0-9a-f]+):(\d+):(\d+)\]")
CHANNELS = ("whatsapp", "twilio", "telegram")


@dataclass(frozen=True)
class LoadPlan:
    """What to send."""

    threads: int = 100
    messages_per_thread: int = 10
    rate: float = 0.0
    """Messages per second across all threads; 0 sends as fast as acknowledgements allow."""
    channels: tuple[str, ...] = CHANNELS
    attachment_share: float = 0.0
    concurrency: int = 64
    """HTTP requests in flight at most."""
    drain_seconds: float = 120.0
    """How long to wait for deliveries to stop making progress before counting losses."""


@dataclass(frozen=True)
class Target:
    """Where the webhooks go and how they are signed (the sandbox's public credentials)."""

    bridge_url: str
    public_url: str
    """The bridge's THREADLINE_PUBLIC_URL (Twilio signs against it)."""
    twilio_auth_token: str
    twilio_account_sid: str


PartsFeed = Callable[[int], Awaitable[tuple[list[dict[str, Any]], int]]]
"""``feed(cursor) -> (parts created since cursor, next cursor)`` from the sandbox Intercom."""


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 2)}


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
    rejected_429: int = 0
    retries: int = 0
    dead_letters: int = 0
    timeline: list[tuple[float, int, float]] = field(default_factory=list)
    """Per second since the start: (second, deliveries, median latency in ms)."""
    latencies: list[float] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.out_of_order == 0
            and self.acknowledged == self.sent
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
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
        }


class _Run:
    def __init__(self, plan: LoadPlan, target: Target, media_ref: str | None) -> None:
        self.plan = plan
        self.target = target
        self.media_ref = media_ref
        self.run_id = secrets.token_hex(4)
        self.acked_at: dict[tuple[int, int], float] = {}
        self.ack_latency: list[float] = []
        self.seen: dict[tuple[int, int], float] = {}
        self.order: dict[int, list[int]] = {}
        self.duplicates = 0
        self.sent = 0
        self.refused = 0
        self.retries = 0
        self.rng = random.Random(7)  # noqa: S311 - workload shape, not cryptography
        self.limiter = trio.CapacityLimiter(plan.concurrency)

    def webhook(self, thread: int, seq: int) -> tuple[str, SignedWebhook]:
        channel = self.plan.channels[thread % len(self.plan.channels)]
        text = f"[lt {self.run_id}:{thread}:{seq}] message {seq} of thread {thread}"
        media = None
        if self.media_ref and self.rng.random() < self.plan.attachment_share:
            media = WebhookMedia(ref=self.media_ref, mime_type="image/png")
        if channel == "whatsapp":
            message = WhatsAppInbound(
                from_phone=f"1555{thread:07d}",
                text=text,
                media=media,
                message_id=f"wamid.lt{self.run_id}{thread:07d}{seq:06d}",
                name=f"Load {thread}",
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
                message_sid=f"SM{self.run_id}{thread:012d}{seq:012d}",
            )
        return "/webhooks/telegram", telegram_message_webhook(
            SANDBOX_SECRETS.telegram_secret_token,
            chat_id=5_000_000 + thread,
            message_id=seq + 1,
            text=text,
            update_id=None,
            first_name=f"Load{thread}",
        )

    async def send_thread(self, http: httpx.AsyncClient, thread: int, start: float) -> None:
        plan = self.plan
        for seq in range(plan.messages_per_thread):
            if plan.rate > 0:
                due = start + (seq * plan.threads + thread) / plan.rate
                await trio.sleep_until(due)
            path, webhook = self.webhook(thread, seq)
            self.sent += 1
            sent_at = time.monotonic()
            if not await self._post(http, path, webhook):
                self.refused += 1
                return  # the provider would retry much later; count the rest as never sent
            now = time.monotonic()
            self.acked_at[(thread, seq)] = now
            self.ack_latency.append((now - sent_at) * 1000)

    async def _post(self, http: httpx.AsyncClient, path: str, webhook: SignedWebhook) -> bool:
        for attempt in range(8):
            try:
                async with self.limiter:
                    response = await http.post(path, content=webhook.body, headers=webhook.headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                return True
            if response is not None and response.status_code not in (429, 502, 503, 504):
                return False  # refused for good (4xx): a provider would not retry either
            self.retries += 1
            await trio.sleep(min(2.0, 0.05 * 2**attempt))
        return False

    def record(self, parts: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for part in parts:
            match = _MARK.search(str(part.get("body") or ""))
            if match is None or match.group(1) != self.run_id:
                continue
            key = (int(match.group(2)), int(match.group(3)))
            if key in self.seen:
                self.duplicates += 1
                continue
            self.seen[key] = now
            self.order.setdefault(key[0], []).append(key[1])


async def run_load(
    plan: LoadPlan,
    target: Target,
    feed: PartsFeed,
    *,
    media_ref: str | None = None,
    progress: Callable[[LoadReport], None] | None = None,
) -> LoadReport:
    """Send the plan's webhooks to the bridge and check what reaches the sandbox Intercom."""
    run = _Run(plan, target, media_ref)
    report = LoadReport()
    cursor_box = [(await feed(0))[1]]  # start after whatever the sandbox already holds
    sending_done = trio.Event()

    async def watch() -> None:
        last_progress = time.monotonic()
        while True:
            parts, cursor_box[0] = await feed(cursor_box[0])
            if parts:
                run.record(parts)
                last_progress = time.monotonic()
            if progress is not None:
                _fill(report, run, started)
                progress(report)
            done = sending_done.is_set() and len(run.seen) >= len(run.acked_at)
            stalled = (
                sending_done.is_set() and time.monotonic() - last_progress > plan.drain_seconds
            )
            if done or stalled:
                return
            await trio.sleep(0.05)

    started = time.monotonic()
    async with (
        httpx.AsyncClient(
            base_url=target.bridge_url,
            timeout=60.0,
            limits=httpx.Limits(
                max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency
            ),
        ) as http,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watch)
        async with trio.open_nursery() as senders:
            for thread in range(plan.threads):
                senders.start_soon(run.send_thread, http, thread, trio.current_time())
        sending_done.set()
    _fill(report, run, started)
    return report


def _fill(report: LoadReport, run: _Run, started: float) -> None:
    report.sent = run.sent
    report.acknowledged = len(run.acked_at)
    report.refused = run.refused
    report.retries = run.retries
    report.delivered = len(run.seen)
    report.duplicated = run.duplicates
    report.lost = sum(1 for key in run.acked_at if key not in run.seen)
    report.out_of_order = sum(
        sum(1 for a, b in itertools.pairwise(seqs) if b < a) for seqs in run.order.values()
    )
    last = max(run.seen.values(), default=started)
    report.duration_s = max(1e-9, last - started)
    report.throughput_per_s = report.delivered / report.duration_s
    report.latencies = [
        (seen - run.acked_at[key]) * 1000 for key, seen in run.seen.items() if key in run.acked_at
    ]
    report.latency_ms = _percentiles(report.latencies)
    report.ack_latency_ms = _percentiles(run.ack_latency)
    buckets: dict[int, list[float]] = {}
    for key, seen in run.seen.items():
        if key in run.acked_at:
            buckets.setdefault(int(seen - started), []).append((seen - run.acked_at[key]) * 1000)
    report.timeline = [
        (float(second), len(values), sorted(values)[len(values) // 2])
        for second, values in sorted(buckets.items())
    ]
