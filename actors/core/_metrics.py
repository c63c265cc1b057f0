"""The bridge's metrics (docs/architecture.md §6), in an injected registry.

Counters and histograms are prometheus-client objects with pre-initialised label sets (from
small closed sets: channel, direction, outcome, endpoint, code, reason). State gauges (journal
backlog, rate budget, dispatcher) are read at scrape time by a collector, from values a
background task refreshes, so a scrape never waits on the database.

No ``*_created`` series: prometheus-client would export one per counter and histogram label set
(a timestamp no rule or panel reads, doubling the series count), so this module turns them off
for the process before any metric exists (:func:`prometheus_client.disable_created_metrics`,
the code form of ``PROMETHEUS_DISABLE_CREATED_SERIES=True``); it holds for every registry.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from channels import CHANNELS as REGISTRY
from intercom import CLIENT_ENDPOINTS

__all__ = ["SEND_OUTCOMES", "BridgeMetrics", "GaugeSources"]

disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client

WEBHOOK_ROUTES = (*(channel.value for channel in REGISTRY), "intercom", "api")
"""The routes taking webhooks (and the send API) by name, each also a ``channel`` label: every
channel of the registry, Intercom's webhook and the send API."""
CHANNELS = WEBHOOK_ROUTES
DIRECTIONS = ("inbound", "outbound", "api", "status")
STATUS_CHANNELS = tuple(channel.value for channel, spec in REGISTRY.items() if spec.receipts)
STATUSES = ("sent", "delivered", "read", "failed", "undelivered", "other")
INGRESS_ROUTES = (*WEBHOOK_ROUTES, "media")
"""Routes whose request-duration series start at 0 (health, ready and unknown appear on use)."""
STATUS_CLASSES = ("2xx", "4xx", "5xx")
SEND_OUTCOMES = ("sent", "rejected", "rate_limited", "transient", "in_doubt", "error")
"""Outcomes of one provider send call (``threadline_channel_send_duration_seconds``)."""
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
SEND_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class GaugeSources:
    """Where the scrape-time gauges come from (set by the composition root)."""

    pending: int = 0
    oldest_pending_age: float = 0.0
    dead: int = 0
    partitions_owned: Callable[[], int] = lambda: 0
    partitions_unowned: Callable[[], int] = lambda: 0
    partitions_total: int = 0
    inflight: Callable[[], int] = lambda: 0
    held_keys: Callable[[], int] = lambda: 0
    budget_waits: Callable[[], int] = lambda: 0
    budget_wait_seconds: Callable[[], float] = lambda: 0.0
    budget_rate_limited: Callable[[], int] = lambda: 0
    ready: Callable[[], bool] = lambda: False
    journal_up: Callable[[], bool] = lambda: False


class BridgeMetrics:
    """Every metric of the bridge, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry, *, commit: str | None = None) -> None:
        self.sources = GaugeSources()
        self.webhook_requests = Counter(
            "threadline_webhook_requests_total",
            "Ingress requests by route channel and HTTP status code.",
            ["channel", "code"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "threadline_ingress_request_duration_seconds",
            "Ingress request time in seconds, from the request head until the answer is ready"
            " (body read included), by route and status class.",
            ["route", "status_class"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.journal_appends = Counter(
            "threadline_journal_appends_total",
            "Journal entries appended (duplicates excluded), by channel.",
            ["channel"],
            registry=registry,
        )
        self.journal_duplicates = Counter(
            "threadline_journal_duplicates_total",
            "Redeliveries recognised by their dedupe id and not appended again.",
            ["channel"],
            registry=registry,
        )
        self.webhook_ignored = Counter(
            "threadline_webhook_events_ignored_total",
            "Provider events acknowledged but not bridged, by channel and kind (group: a"
            " Telegram group chat; update: an update kind not bridged; system: a chat event;"
            " other).",
            ["channel", "what"],
            registry=registry,
        )
        self.journal_commit = Histogram(
            "threadline_journal_commit_duration_seconds",
            "Seconds from asking the journal to append until the commit is durable.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.messages = Counter(
            "threadline_messages_total",
            "Journal entries finished by direction and outcome.",
            ["direction", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "threadline_delivery_latency_seconds",
            "Seconds from webhook received (journaled) to delivered, by direction.",
            ["direction"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.intercom_requests = Counter(
            "threadline_intercom_requests_total",
            "Intercom API requests by endpoint and HTTP status code (none: no response).",
            ["endpoint", "code"],
            registry=registry,
        )
        self.intercom_duration = Histogram(
            "threadline_intercom_request_duration_seconds",
            "Intercom API request time in seconds, by endpoint.",
            ["endpoint"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.channel_sends = Counter(
            "threadline_channel_sends_total",
            "Messages sent to customers' channels by channel and outcome.",
            ["channel", "outcome"],
            registry=registry,
        )
        self.delivery_statuses = Counter(
            "threadline_delivery_statuses_total",
            "Delivery receipts the providers reported for messages sent to customers, by channel"
            " and status (redeliveries included).",
            ["channel", "status"],
            registry=registry,
        )
        self.delivery_failures = Counter(
            "threadline_delivery_failures_total",
            "Messages a provider accepted and then failed to deliver, by channel and outcome"
            " (noted: an internal note in the conversation; unknown: no record of the message).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.send_duration = Histogram(
            "threadline_channel_send_duration_seconds",
            "Seconds one send call to a channel provider took (text or one attachment), by"
            " channel and outcome (sent, rejected, rate_limited, transient, in_doubt, error).",
            ["channel", "outcome"],
            buckets=SEND_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "threadline_dead_letters_total",
            "Entries given up and kept as dead letters, by direction.",
            ["direction"],
            registry=registry,
        )
        self.conversations_created = Counter(
            "threadline_conversations_created_total",
            "Intercom conversations the bridge created, by reason.",
            ["reason"],
            registry=registry,
        )
        self.contacts_created = Counter(
            "threadline_contacts_created_total",
            "Intercom contacts the bridge created (or found by a 409 conflict).",
            ["outcome"],
            registry=registry,
        )
        build = Gauge(
            "threadline_build_info",
            "Build information (value 1).",
            ["version", "commit"],
            registry=registry,
        )
        build.labels(package_version(), commit or _commit()).set(1)
        registry.register(_StateCollector(self.sources))
        ProcessCollector(registry=registry)
        for channel in CHANNELS:
            self.journal_appends.labels(channel)
            self.journal_duplicates.labels(channel)
            for code in ("200", "400", "401", "404", "413", "503"):
                self.webhook_requests.labels(channel, code)
        for direction in DIRECTIONS:
            self.latency.labels(direction)
            self.dead_letters.labels(direction)
            for outcome in ("delivered", "dead_lettered", "skipped", "undeliverable"):
                self.messages.labels(direction, outcome)
        for channel in STATUS_CHANNELS:
            for status in STATUSES:
                self.delivery_statuses.labels(channel, status)
            for outcome in ("noted", "unknown"):
                self.delivery_failures.labels(channel, outcome)
        for reason in ("first_message", "buffer_expired", "conversation_gone", "api_send"):
            self.conversations_created.labels(reason)
        for endpoint in CLIENT_ENDPOINTS:
            self.intercom_duration.labels(endpoint)
        for outcome in ("created", "existed"):
            self.contacts_created.labels(outcome)
        for route in INGRESS_ROUTES:
            for status_class in STATUS_CLASSES:
                self.request_duration.labels(route, status_class)

    def add_channels(self, channels: Iterable[str]) -> None:
        """Start the send series of the configured ``channels`` at 0 (the set is known only
        once the credentials are read)."""
        for channel in channels:
            for outcome in ("sent", "undeliverable"):
                self.channel_sends.labels(channel, outcome)
            for outcome in SEND_OUTCOMES:
                self.send_duration.labels(channel, outcome)

    def observe_send(self, channel: str, outcome: str, seconds: float) -> None:
        """The gateway's observer: one provider send call."""
        self.send_duration.labels(channel, outcome).observe(seconds)

    def observe_intercom(self, endpoint: str, status: int | None, seconds: float) -> None:
        """The Intercom client's request observer."""
        self.intercom_requests.labels(endpoint, str(status) if status is not None else "none").inc()
        self.intercom_duration.labels(endpoint).observe(seconds)


class _StateCollector(Collector):
    def __init__(self, sources: GaugeSources) -> None:
        self._s = sources

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> list[Metric]:
        s = self._s
        return [
            GaugeMetricFamily(
                "threadline_journal_pending_entries", "Journal entries not yet done.", s.pending
            ),
            GaugeMetricFamily(
                "threadline_journal_oldest_pending_age_seconds",
                "Age in seconds of the oldest pending journal entry (0 when none).",
                s.oldest_pending_age,
            ),
            GaugeMetricFamily(
                "threadline_journal_dead_entries", "Dead letters waiting for an operator.", s.dead
            ),
            GaugeMetricFamily(
                "threadline_dispatch_inflight_entries",
                "Entries handed to thread actors and not yet finished.",
                s.inflight(),
            ),
            GaugeMetricFamily(
                "threadline_dispatch_held_keys",
                "Threads whose mailbox was full: their entries wait in the journal.",
                s.held_keys(),
            ),
            GaugeMetricFamily(
                "threadline_partitions_owned", "Journal partitions this node owns.",
                s.partitions_owned(),
            ),
            GaugeMetricFamily(
                "threadline_partitions", "Journal partitions in all.", s.partitions_total
            ),
            GaugeMetricFamily(
                "threadline_partitions_unowned",
                "Journal partitions without a live lease, as this node last saw the lease table.",
                s.partitions_unowned(),
            ),
            CounterMetricFamily(
                "threadline_intercom_ratelimit_waits_total",
                "Requests that waited for the Intercom rate-limit window to refill.",
                s.budget_waits(),
            ),
            CounterMetricFamily(
                "threadline_intercom_ratelimit_wait_seconds_total",
                "Seconds spent waiting for the Intercom rate-limit window.",
                s.budget_wait_seconds(),
            ),
            CounterMetricFamily(
                "threadline_intercom_rate_limited_total",
                "Intercom 429 answers received.",
                s.budget_rate_limited(),
            ),
            GaugeMetricFamily(
                "threadline_ready",
                "1 when the node serves: the journal commits, the dispatcher runs and, in "
                "cluster mode, its leases are renewed (as /readyz).",
                1.0 if s.ready() else 0.0,
            ),
            GaugeMetricFamily(
                "threadline_journal_up",
                "1 while the journal commits (a probe write every lease tick), else 0.",
                1.0 if s.journal_up() else 0.0,
            ),
        ]  # fmt: skip


def package_version() -> str:
    try:
        return version("threadline")
    except PackageNotFoundError:
        return "0+unknown"


def _commit() -> str:
    """The source tree's commit when no build commit was given (git, if there is one)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, fixed args
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"
