"""Runtime metrics, exported through an injected prometheus-client registry.

The hot path (one message through an actor) only bumps plain integers on an :class:`ActorStats`;
a collector turns them into Prometheus families at scrape time, together with the state gauges
(live and parked actors, mailbox depth) read from each system's ``statistics()``. Trio runs every
task on one thread, so the counters need no locks, and a scrape costs the hot path nothing.

Exposed (``actor_kind`` is each system's name, a small closed set known at start-up):

- ``threadline_actors_live{actor_kind}``, ``threadline_actors_parked{actor_kind}``
- ``threadline_mailbox_depth{actor_kind}`` (summed over keys)
- ``threadline_actor_activations_total``, ``threadline_actor_passivations_total``
- ``threadline_actor_messages_total{actor_kind,outcome}`` with outcome ok|retry|discard|crash
- ``threadline_actor_message_duration_seconds{actor_kind}`` (handler latency histogram)
- ``threadline_supervisor_restarts_total{actor_kind}``, ``threadline_actor_parks_total``
- ``threadline_retry_attempts_total{actor_kind}``, ``threadline_mailbox_rejected_total``
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from ._keyed import KeyedStatistics

__all__ = ["DURATION_BUCKETS", "ActorStats", "FastHistogram", "RuntimeMetrics"]

DURATION_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class FastHistogram:
    """A lock-free histogram for single-threaded (Trio) code, exported at scrape time."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = DURATION_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        """How many observations."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus buckets: ``(le, cumulative count)`` ending with ``+Inf``."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


class ActorStats:
    """Counters of one actor system, bumped on the hot path."""

    __slots__ = (
        "activations",
        "crashed",
        "discarded",
        "duration",
        "mailbox_rejected",
        "ok",
        "parks",
        "passivations",
        "restarts",
        "retried",
    )

    def __init__(self) -> None:
        self.ok = 0
        self.retried = 0
        self.discarded = 0
        self.crashed = 0
        self.restarts = 0
        self.parks = 0
        self.activations = 0
        self.passivations = 0
        self.mailbox_rejected = 0
        self.duration = FastHistogram()

    def observe(self, seconds: float) -> None:
        """Record one handler run."""
        self.duration.observe(seconds)


class Watched(Protocol):
    """What the collector reads from a system at scrape time."""

    name: str
    stats: ActorStats

    def statistics(self) -> KeyedStatistics: ...


class RuntimeMetrics:
    """The runtime's metrics in ``registry`` (never the global default registry).

    Systems register with :meth:`watch`; a supervisor bumps :meth:`count_restart`.
    """

    def __init__(self, registry: CollectorRegistry, namespace: str = "threadline") -> None:
        self.namespace = namespace
        self._systems: list[Watched] = []
        self.supervisor_restarts: dict[str, int] = {}
        registry.register(_RuntimeCollector(self))

    def watch(self, system: Watched) -> None:
        """Export ``system``'s counters and state under its name."""
        self._systems.append(system)

    def count_restart(self, child: str) -> None:
        """Count one restart of a supervised service child."""
        self.supervisor_restarts[child] = self.supervisor_restarts.get(child, 0) + 1

    @property
    def systems(self) -> Iterable[Watched]:
        """The watched systems."""
        return tuple(self._systems)


class _Families:
    """One scrape's metric families, typed so each gets the right ``add_metric``."""

    def __init__(self, ns: str) -> None:
        k = ["actor_kind"]
        self.live = GaugeMetricFamily(f"{ns}_actors_live", "Actors running now.", labels=k)
        self.parked = GaugeMetricFamily(
            f"{ns}_actors_parked", "Actors parked after exhausting their restart budget.", labels=k
        )
        self.depth = GaugeMetricFamily(
            f"{ns}_mailbox_depth", "Messages waiting in mailboxes, summed over keys.", labels=k
        )
        self.activations = CounterMetricFamily(
            f"{ns}_actor_activations_total", "Actors activated.", labels=k
        )
        self.passivations = CounterMetricFamily(
            f"{ns}_actor_passivations_total", "Actors passivated for idleness.", labels=k
        )
        self.messages = CounterMetricFamily(
            f"{ns}_actor_messages_total",
            "Message handler runs by outcome (ok, retry, discard, crash).",
            labels=["actor_kind", "outcome"],
        )
        self.duration = HistogramMetricFamily(
            f"{ns}_actor_message_duration_seconds", "Handler run time in seconds.", labels=k
        )
        self.restarts = CounterMetricFamily(
            f"{ns}_supervisor_restarts_total", "Actor and service restarts.", labels=k
        )
        self.parks = CounterMetricFamily(
            f"{ns}_actor_parks_total", "Times an actor was parked.", labels=k
        )
        self.retries = CounterMetricFamily(
            f"{ns}_retry_attempts_total", "Message retries scheduled.", labels=k
        )
        self.rejected = CounterMetricFamily(
            f"{ns}_mailbox_rejected_total",
            "Non-blocking sends refused by a full mailbox.",
            labels=k,
        )

    def all(self) -> list[Metric]:
        return [
            self.live, self.parked, self.depth, self.activations, self.passivations,
            self.messages, self.duration, self.restarts, self.parks, self.retries, self.rejected,
        ]  # fmt: skip


class _RuntimeCollector(Collector):
    def __init__(self, metrics: RuntimeMetrics) -> None:
        self._m = metrics

    def describe(self) -> Iterable[Metric]:
        return _Families(self._m.namespace).all()

    def collect(self) -> Iterable[Metric]:
        f = _Families(self._m.namespace)
        for system in self._m.systems:
            kind = [system.name]
            snap = system.statistics()
            s = system.stats
            f.live.add_metric(kind, snap.live_actors)
            f.parked.add_metric(kind, snap.parked_actors)
            f.depth.add_metric(kind, snap.queued_messages)
            f.activations.add_metric(kind, s.activations)
            f.passivations.add_metric(kind, s.passivations)
            outcomes = {"ok": s.ok, "retry": s.retried, "discard": s.discarded, "crash": s.crashed}
            for outcome, value in outcomes.items():
                f.messages.add_metric([system.name, outcome], value)
            f.duration.add_metric(kind, s.duration.cumulative(), s.duration.total)
            f.restarts.add_metric(kind, s.restarts)
            f.parks.add_metric(kind, s.parks)
            f.retries.add_metric(kind, s.retried)
            f.rejected.add_metric(kind, s.mailbox_rejected)
        for child, n in sorted(self._m.supervisor_restarts.items()):
            f.restarts.add_metric([child], n)
        return f.all()
