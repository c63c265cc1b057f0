"""The load test's checker and its report: which parts of the sandbox Intercom belong to a
run, and whether anything was lost, doubled or reordered (the generator is
actors.tools._loadgen).

Every message the generator sends carries a mark, ``[lt RUN:THREAD:SEQ]``, in its text; the
checker reads it back from each part the sandbox Intercom created, in creation order.

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
import re
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LoadLedger",
    "LoadReport",
    "bucket_for",
    "count_out_of_order",
    "load_mark",
    "percentiles",
    "read_mark",
]

_MARK = re.compile(r"\[lt ([0-9a-f]+):(\d+):(\d+)\]")


def load_mark(run_id: str, thread: int, seq: int) -> str:
    """The mark of message ``seq`` of ``thread`` in run ``run_id``, as its text carries it."""
    return f"[lt {run_id}:{thread}:{seq}]"


def read_mark(body: object) -> tuple[str, int, int] | None:
    """``(run id, thread, seq)`` from the first mark in a part's body; None without one."""
    match = _MARK.search(str(body or ""))
    if match is None:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))


def count_out_of_order(seqs: Sequence[int]) -> int:
    """How many times a thread's sequence numbers, in the order they arrived, went backwards."""
    return sum(1 for a, b in itertools.pairwise(seqs) if b < a)


_BUCKETS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_MAX_POINTS = 120


def bucket_for(duration_s: float) -> float:
    """The timeline's bucket for a run this long: the smallest that keeps it to 120 points
    (100 ms at least: a run of 3 s gets 30 points, one of 10 min 5-s buckets)."""
    for bucket in _BUCKETS_S:
        if duration_s / bucket <= _MAX_POINTS:
            return bucket
    return 3600.0


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max (nearest rank), rounded to 0.01; zeros for no values."""
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


class LoadLedger:
    """One run's books, keyed by ``(thread, seq)``: what the generator sent and had acknowledged
    (its wall clock) and what the checker saw arrive (the parts' ``created_at``)."""

    def __init__(self) -> None:
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

    def record(self, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Check the parts in creation order; returns those that belong to this run."""
        now = time.time()
        ours = []
        for part in parts:
            found = read_mark(part.get("body"))
            if found is None or found[0] != self.run_id:
                continue
            ours.append(part)
            key = found[1:]
            if key in self.seen:
                self.duplicates += 1
                continue
            created = part.get("created_at")
            self.seen[key] = seen = float(created) if isinstance(created, int | float) else now
            if key in self.sent_at:
                self.recent.append((seen, (seen - self.sent_at[key]) * 1000))
            self.order.setdefault(key[0], []).append(key[1])
        return ours

    def report(self, started: float) -> LoadReport:
        """The outcome, from ``started`` (wall clock) to the last part seen."""
        report = LoadReport()
        report.sent = self.sent
        report.acknowledged = len(self.acked_at)
        report.refused = self.refused
        report.ingress_retries = self.retries
        report.delivered = len(self.seen)
        report.duplicated = self.duplicates
        report.lost = sum(1 for key in self.acked_at if key not in self.seen)
        report.out_of_order = sum(count_out_of_order(seqs) for seqs in self.order.values())
        last = max(self.seen.values(), default=started)
        report.duration_s = max(1e-9, last - started)
        report.throughput_per_s = report.delivered / report.duration_s
        # From the provider's send time (never the acknowledgement), as measured: not clamped.
        report.latencies = [
            (seen - self.sent_at[key]) * 1000
            for key, seen in self.seen.items()
            if key in self.acked_at and key in self.sent_at
        ]
        report.negative_latencies = sum(1 for ms in report.latencies if ms < 0)
        if report.negative_latencies:
            report.notes.append(
                f"{report.negative_latencies} parts were created in Intercom before their "
                "message was sent: the sender's and the sandbox's clocks disagree (latencies "
                "kept as measured)"
            )
        report.latency_ms = percentiles(report.latencies)
        report.ack_latency_ms = percentiles(self.ack_latency)
        report.bucket_s = bucket_for(report.duration_s)
        report.timeline = self._timeline(started, report.bucket_s)
        return report

    def _timeline(self, started: float, bucket: float) -> list[dict[str, float]]:
        def index(at: float) -> int:
            return max(0, int((at - started) / bucket))

        acks: dict[int, int] = {}
        for acked in self.acked_at.values():
            acks[index(acked)] = acks.get(index(acked), 0) + 1
        latencies: dict[int, list[float]] = {}
        for key, seen in self.seen.items():
            if key in self.acked_at and key in self.sent_at:
                latencies.setdefault(index(seen), []).append((seen - self.sent_at[key]) * 1000)
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
