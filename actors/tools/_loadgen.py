"""Ordered-delivery load: an open-loop generator of signed webhooks and a checker at the sandbox.

Each of N threads (customers, spread over the channels) sends M messages whose text carries the
run id, the thread and its sequence number. A thread sends its next message only once the
previous one was acknowledged (as providers do: a redelivery, never a reordering, follows a
failure), while threads run concurrently on an open-loop schedule of ``rate`` messages/s:
message ``seq`` of thread ``t`` is due at ``start + (seq * threads + t) / rate`` whether or not
earlier ones were delivered. The checker reads every part the sandbox Intercom created, in
creation order, and proves per thread: nothing lost, nothing doubled, nothing out of order.

The checker's books (what was sent, acknowledged and seen) and the report drawn from them
are actors.tools._loadcheck.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

from channels import Channel
from channels.sandbox import (
    MetaInbound,
    SandboxCredentials,
    SignedWebhook,
    WebhookMedia,
    WhatsAppInbound,
    line_message_webhook,
    meta_webhook,
    telegram_message_webhook,
    twilio_message_webhook,
    viber_message_webhook,
    whatsapp_webhook,
)
from intercom import PooledTransport

from ._loadcheck import LoadLedger, LoadReport, load_mark, percentiles
from ._sandbox import SANDBOX_SECRETS

__all__ = [
    "CHANNELS",
    "LoadMedia",
    "LoadPlan",
    "LoadProgress",
    "PartsFeed",
    "Target",
    "run_load",
]

CHANNELS = tuple(channel.value for channel in Channel)


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
    telegram_path: str = "/webhooks/telegram"
    """The route of the bot whose secret token is the sandbox's (``/webhooks/telegram/<bot
    id>`` for a bot of an accounts file)."""
    viber_auth_token: str = SandboxCredentials().viber_auth_token
    """Signs the Viber callbacks (the sandbox bot's auth token)."""
    viber_path: str = "/webhooks/viber"
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
    viber_url: str | None = None
    """Viber's ``message.media`` (None: Viber threads send text only)."""


_PROGRESS_WINDOW_S = 5.0
"""The live display's rate and p99 cover the last this many seconds."""
PartsFeed = Callable[[int], Awaitable[tuple[list[dict[str, Any]], int]]]
"""``feed(cursor) -> (parts created since cursor, next cursor)`` from the sandbox Intercom."""


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


class _Run(LoadLedger):
    def __init__(self, plan: LoadPlan, target: Target, media: LoadMedia | None) -> None:
        super().__init__()
        self.plan = plan
        self.target = target
        self.media = media
        self.rng = random.Random(plan.seed)  # noqa: S311 - workload shape, not cryptography
        self.limiter = trio.CapacityLimiter(plan.concurrency)
        self.deadline = math.inf

    def webhook(self, thread: int, seq: int, sent_at: float) -> tuple[str, SignedWebhook]:
        """The customer's message as its provider posts it, sent at ``sent_at`` (wall clock)."""
        when = datetime.fromtimestamp(sent_at, UTC)
        channel = self.plan.channels[thread % len(self.plan.channels)]
        text = f"{load_mark(self.run_id, thread, seq)} message {seq} of thread {thread}"
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
        if channel == "viber":
            digest = hashlib.sha256(f"{self.run_id}:{thread}:{seq}".encode()).digest()
            viber_media = None
            if media is not None and media.viber_url is not None:
                viber_media = WebhookMedia(media.viber_url, media.mime_type, filename="load.png")
            return (
                self.target.viber_path,
                viber_message_webhook(
                    self.target.viber_auth_token,
                    user_id=f"lt{self.run_id}{thread:07d}+/A==",  # base64-like: "/", "+", "="
                    # Above 2**53 and unique across runs: the bridge dedupes tokens per bot.
                    message_token=2**56 + int.from_bytes(digest[:7], "big"),
                    text=text,
                    media=viber_media,
                    name=f"Load {thread}",
                    sent_at=when,
                ),
            )
        if channel == "line":
            # Text only: LINE's content is looked up by the message's own id, which is unique.
            return "/webhooks/line", line_message_webhook(
                SANDBOX_SECRETS.line_channel_secret,
                destination=SandboxCredentials().line_bot_user_id,
                user_id=f"U{thread:032x}",
                message_id=f"{int(self.run_id, 16)}{thread:07d}{seq:06d}",
                text=text,
                sent_at=when,
            )
        if channel in ("messenger", "instagram"):
            return f"/webhooks/{channel}", _meta_load_webhook(
                channel, thread, seq, text, when, self.run_id
            )
        return self.target.telegram_path, telegram_message_webhook(
            SANDBOX_SECRETS.telegram_secret_token,
            chat_id=5_000_000 + thread,
            # Unique across runs: the bridge dedupes a chat's message ids for days, so a
            # second run against the same bridge must not reuse the first one's.
            message_id=int(self.run_id, 16) * 10_000_000 + seq + 1,
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


def _meta_load_webhook(
    channel: str, thread: int, seq: int, text: str, when: datetime, run_id: str
) -> SignedWebhook:
    """A Messenger (to the sandbox Page) or Instagram (to the sandbox account) message,
    text only."""
    page = channel == "messenger"
    s = SANDBOX_SECRETS
    event = MetaInbound(
        sender=f"{1 if page else 2}{thread:015d}",  # a PSID / IGSID: digits
        text=text,
        mid=f"m_lt{run_id}{thread:07d}{seq:06d}",  # the bridge dedupes mids: unique per run
        sent_at=when,
    )
    return meta_webhook(
        s.messenger_app_secret if page else s.instagram_app_secret,
        s.messenger_page_id if page else s.instagram_account_id,
        [event],
        object="page" if page else "instagram",
    )


def load_webhook(
    plan: LoadPlan, target: Target, thread: int, seq: int, sent_at: float
) -> tuple[str, SignedWebhook]:
    """The route and signed webhook the load test posts for message ``seq`` of ``thread``
    (its channel by the plan's round-robin), sent at ``sent_at`` (wall clock)."""
    return _Run(plan, target, None).webhook(thread, seq, sent_at)


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
    return run.report(started_wall)


async def _end_of(feed: PartsFeed) -> int:
    cursor = 0
    while True:
        parts, following = await feed(cursor)
        if not parts or following == cursor:
            return following
        cursor = following
