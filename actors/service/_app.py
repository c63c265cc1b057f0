"""The composition root: build every part from :class:`Settings` and run the bridge.

Supervision tree::

    bridge ── journal (SQLite writer / PostgreSQL pool)
           └─ supervisor ─┬─ thread actors (KeyedActors: one per thread, sweeper)
                          ├─ dispatcher (journal → actors)
                          ├─ housekeeping (journal statistics for metrics, pruning)
                          ├─ ingress server (Hypercorn, THREADLINE_BIND)
                          └─ metrics server (Hypercorn, THREADLINE_METRICS_BIND)

Shutdown (SIGTERM): the ingress stops taking requests (in-flight ones finish), the dispatcher
stops, thread actors drain for ``shutdown_drain_seconds``, then everything is cancelled. Entries
not finished stay pending in the journal and are delivered after the next start.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from intercom import IntercomClient, PooledTransport, RateBudget, SharedRateBudget
from runtime import (
    BoundAddress,
    ChildSpec,
    Entry,
    Journal,
    KeyedActors,
    Request,
    Response,
    RestartIntensity,
    RetryPolicy,
    Router,
    RuntimeMetrics,
    Supervisor,
    hypercorn_config,
    serve_asgi,
    text_response,
)

from ..bridge import (
    ContactResolver,
    DirectoryMediaStore,
    Gateway,
    JournalMediaStore,
    MediaStore,
    Services,
    TemplateCatalog,
    ThreadActor,
    ThreadOptions,
    direction_of,
)
from ..core import BridgeMetrics, Settings, log_fields, thread_hash
from ..delivery import (
    Cluster,
    Dispatcher,
    Ownership,
    Plumbing,
    SingleNode,
    make_classifier,
)
from ..edge import Ingress
from ._startup import (
    ConfigurationError,
    SharedJournal,
    check_bindable,
    check_settings,
    open_shared_journal,
)
from ._upkeep import JournalHealth, housekeeping

__all__ = ["Node", "metrics_app", "run_bridge"]

logger = logging.getLogger("threadline.bridge")


@dataclass
class Node:
    """A running bridge, as reported to whoever started it."""

    settings: Settings
    journal: Journal
    actors: KeyedActors[Entry, None]
    dispatcher: Dispatcher
    registry: CollectorRegistry
    ingress: BoundAddress
    metrics: BoundAddress
    budget: RateBudget


def metrics_app(registry: CollectorRegistry, token: str | None) -> Router:
    """``GET /metrics`` (optionally bearer-protected) in Prometheus' text format."""
    router = Router(max_body_bytes=1024)

    async def metrics(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                return text_response(401, "missing or wrong bearer token")
        return Response(200, generate_latest(registry), CONTENT_TYPE_LATEST)

    router.add("GET", "/metrics", "metrics", metrics)
    return router


def _budget(shared: SharedJournal | None, limit: int) -> RateBudget:
    """One Intercom budget for the whole app: on PostgreSQL (any number of nodes) a counter per
    Intercom window in the journal; on SQLite (one node) the process's own."""
    if shared is None:
        return RateBudget(limit=limit)
    store = shared

    async def claim(window: int, want: int, per_window: int, floor: int) -> int:
        return await store.claim_window("intercom", window, want, limit=per_window, floor=floor)

    return SharedRateBudget(claim, limit=limit)


async def run_bridge(
    settings: Settings,
    *,
    stop: trio.Event | None = None,
    registry: CollectorRegistry | None = None,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the bridge until ``stop`` is set (then drain and return) or cancelled.

    Raises:
        StartupError: it cannot start (settings, ports, journal); nothing was started.
    """
    check_settings(settings)
    check_bindable(settings.bind, "THREADLINE_BIND")
    if settings.metrics_bind == settings.bind and not settings.bind.endswith(":0"):
        raise ConfigurationError(
            f"the metrics and the ingress cannot share {settings.bind} (THREADLINE_METRICS_BIND)"
        )
    check_bindable(settings.metrics_bind, "THREADLINE_METRICS_BIND")
    stop = trio.Event() if stop is None else stop
    registry = CollectorRegistry() if registry is None else registry
    runtime_metrics = RuntimeMetrics(registry)
    metrics = BridgeMetrics(registry, commit=settings.build_commit)
    assert settings.intercom_access_token is not None
    async with (
        open_shared_journal(settings) as (journal, shared),
        httpx.AsyncClient(
            timeout=httpx.Timeout(settings.channel_timeout_seconds, connect=5.0)
        ) as provider_http,
        httpx.AsyncClient(
            base_url=settings.intercom_base_url,
            timeout=httpx.Timeout(settings.intercom_timeout_seconds, connect=5.0),
            transport=PooledTransport(connections=_INTERCOM_CONNECTIONS),
        ) as intercom_http,
    ):
        budget = _budget(shared, settings.intercom_rate_limit_per_window)
        intercom = IntercomClient(
            intercom_http,
            access_token=settings.intercom_access_token.get_secret_value(),
            version=settings.intercom_version,
            budget=budget,
            observer=metrics.observe_intercom,
        )
        policy = RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            base=settings.retry_base_seconds,
            cap=settings.retry_cap_seconds,
        )
        ownership: Ownership
        cluster: Cluster | None = None
        if shared is not None:
            cluster = Cluster(
                shared,
                node_id=settings.node_id or f"{socket.gethostname()}-{os.getpid()}",
                partitions=settings.partitions,
                lease_seconds=settings.lease_seconds,
                step=settings.rebalance_step,
                takeover_poll=settings.takeover_poll_seconds,
            )
            ownership = cluster
        else:
            ownership = SingleNode()

        def observe(entry: Entry, direction: str, outcome: str) -> None:
            metrics.messages.labels(direction, outcome).inc()
            if outcome == "delivered":
                metrics.latency.labels(direction).observe(max(0.0, time.time() - entry.created_at))

        plumbing = Plumbing(journal, ownership, observe=observe)

        async def give_up(key: str, message: object, exc: Exception, reason: str) -> None:
            assert isinstance(message, Entry)
            direction = direction_of(message.payload)
            error = f"{reason}: {type(exc).__name__}: {exc}"[:2000]
            logger.error(
                "entry %d of thread %s given up: %s", message.id, thread_hash(key), error,
                extra=log_fields(key=key, entry_id=message.id,
                                 request_id=getattr(exc, "request_id", None)),
            )  # fmt: skip
            if not await plumbing.bury(message, error):
                return  # the partition moved: the entry is its new owner's now
            metrics.dead_letters.labels(direction).inc()
            metrics.messages.labels(direction, "dead_lettered").inc()

        gateway = Gateway(settings.channel_views(), provider_http, observe=metrics.observe_send)
        templates = TemplateCatalog.of_apps(
            gateway.whatsapp_apps, ttl=settings.whatsapp_template_cache_seconds
        )
        # One profile per business account, built once (every activation asks for its own).
        profile_of = functools.lru_cache(maxsize=1024)(settings.account_profile)
        services = Services(
            options=ThreadOptions.of(settings),
            journal=journal,
            intercom=intercom,
            gateway=gateway,
            resolver=ContactResolver(
                intercom,
                journal,
                metrics,
                settle_seconds=settings.intercom_search_settle_seconds,
                match=settings.contact_match,
                channel_attribute=settings.contact_channel_attribute,
            ),
            media=_media_store(settings, journal),
            metrics=metrics,
            profiles=lambda key: profile_of(key.channel, key.account),
            templates=templates,
        )
        metrics.add_channels(sorted(c.value for c in services.gateway.channels))
        actors: KeyedActors[Entry, None] = KeyedActors(
            lambda ctx: ThreadActor(ctx, services, plumbing),
            name="thread",
            mailbox_capacity=settings.mailbox_capacity,
            idle_timeout=settings.actor_idle_seconds,
            classify=make_classifier(policy),
            restart=RestartIntensity(settings.restart_max, settings.restart_period_seconds),
            escalate=None,
            resume_parked_after=settings.parked_resume_seconds,
            on_give_up=give_up,
            metrics=runtime_metrics,
            max_live=settings.max_live_actors,
        )
        # A new thread gets an actor only while fewer entries are in flight than one Intercom
        # window allows (its headers lower the budget's limit when it throttles) and than the
        # connections can carry: a thread that could only wait — for the budget, for a
        # connection — stays in the journal instead of holding an actor (~20 KB each), and a
        # released backlog does not queue thousands of requests past their timeout.
        dispatcher = Dispatcher(
            journal,
            actors,
            owned=ownership.owned,
            admit=lambda inflight: inflight < min(budget.limit, _ADMIT_INFLIGHT),
        )
        # The one loop, closed here: the dispatcher feeds the actors, whose delivery machines
        # report finished entries back to it; the cluster tells it of partitions that moved
        # and asks it what is in flight. Nothing runs before the supervisor starts below.
        plumbing.report_to(dispatcher)
        if cluster is not None:
            cluster.follow(dispatcher)
        health = JournalHealth(journal, interval=settings.lease_seconds / 3)

        def valid_leases() -> list[int]:
            owned = ownership.owned()
            return [] if owned is None else [p for p in owned if ownership.owns(p)]

        def not_ready() -> str | None:
            """None when the node serves; else why not, in one line (``/readyz``)."""
            if not dispatcher.running:
                return "the dispatcher is not running"
            problem = health.problem()
            if problem is not None:
                return problem
            if cluster is not None:
                owned = ownership.owned() or frozenset()
                lapsed = len(owned) - len(valid_leases())
                if lapsed:
                    return f"{lapsed} partition leases could not be renewed in time"
            return None

        ingress = Ingress(
            settings,
            journal,
            wake=dispatcher.wake,
            metrics=metrics,
            media=services.media,
            ready=not_ready,
            templates=templates,
        )
        sources = metrics.sources
        sources.inflight = lambda: dispatcher.inflight
        sources.held_keys = lambda: dispatcher.held_keys
        sources.budget_waits = lambda: budget.waits
        sources.budget_wait_seconds = lambda: budget.wait_seconds
        sources.budget_rate_limited = lambda: budget.rate_limited
        sources.ready = lambda: not_ready() is None
        sources.journal_up = lambda: health.problem() is None
        sources.partitions_total = settings.partitions
        # Only leases still known valid: a node that cannot renew them stops counting them.
        sources.partitions_owned = lambda: (
            settings.partitions if ownership.owned() is None else len(valid_leases())
        )
        if cluster is not None:
            sources.partitions_unowned = lambda: cluster.unowned

        ingress_stop = trio.Event()
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        supervisor = Supervisor(
            "bridge",
            [
                *([ChildSpec("cluster", cluster.run)] if cluster is not None else []),
                *(
                    [ChildSpec("hints", _relay_hints(shared, dispatcher))]
                    if shared is not None
                    else []
                ),
                ChildSpec("actors", actors.run),
                ChildSpec("dispatcher", dispatcher.run),
                ChildSpec("journal-probe", health.run),
                ChildSpec("housekeeping", housekeeping(journal, metrics, settings, services.media)),
                ChildSpec(
                    "ingress",
                    _server(
                        ingress.app,
                        settings.bind,
                        ingress_stop.wait,
                        max_connections=settings.max_connections,
                        # Hypercorn's idle timer runs from accept (and from each response) until
                        # a whole request head has arrived: it is also the header deadline.
                        keep_alive_timeout=30.0,
                        read_timeout=30.0,
                        h11_max_incomplete_size=16 * 1024,
                        graceful_timeout=10.0,
                    ),
                ),
                ChildSpec(
                    "metrics",
                    _server(
                        metrics_app(registry, token),
                        settings.metrics_bind,
                        None,
                        max_connections=_METRICS_MAX_CONNECTIONS,
                    ),
                ),
            ],
            intensity=RestartIntensity(5, 60.0),
            restart_delay=1.0,
            metrics=runtime_metrics,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            task_status.started(
                Node(
                    settings=settings,
                    journal=journal,
                    actors=actors,
                    dispatcher=dispatcher,
                    registry=registry,
                    ingress=supervisor.ready["ingress"],
                    metrics=supervisor.ready["metrics"],
                    budget=budget,
                )
            )
            await stop.wait()
            logger.info("stopping: ingress closes, actors drain")
            ingress_stop.set()
            report = await actors.shutdown(settings.shutdown_drain_seconds)
            logger.info(
                "stopped: %d entries left pending for the next start", report.abandoned_messages
            )
            nursery.cancel_scope.cancel()


_INTERCOM_CONNECTIONS = 64
"""Connections to Intercom (8 pools of 8: see PooledTransport)."""
_ADMIT_INFLIGHT = 8 * _INTERCOM_CONNECTIONS
"""Entries in flight beyond which no new thread is activated (threads with an actor still get
theirs): eight per connection keeps every connection busy without queueing for minutes."""

_METRICS_MAX_CONNECTIONS = 64
"""Scrapers hold one connection each; the cap keeps a slow client off the ingress's descriptors."""


def _server(
    app: Router,
    bind: str,
    shutdown: Callable[[], Awaitable[None]] | None,
    *,
    max_connections: int,
    **options: object,
) -> Callable[..., Awaitable[None]]:
    async def run(*, task_status: trio.TaskStatus[BoundAddress] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_asgi(
            app,
            hypercorn_config(bind, **options),
            max_connections=max_connections,
            shutdown_trigger=shutdown,
            task_status=task_status,
        )
        await trio.sleep_forever()  # after a graceful stop, stay put until the bridge exits

    return run


def _relay_hints(journal: SharedJournal, dispatcher: Dispatcher) -> Callable[..., Awaitable[None]]:
    """Wake the dispatcher when any node appends (LISTEN/NOTIFY); polling stays the fallback."""

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with journal.appended_hint() as hint:
            task_status.started()
            while True:
                await hint.wait()
                dispatcher.wake()

    return run


def _media_store(settings: Settings, journal: Journal) -> MediaStore:
    """``THREADLINE_MEDIA_STORE``: the journal's database (what every node sees), or a
    directory (shared by the nodes only when it is shared storage)."""
    if settings.media_store == "directory":
        return DirectoryMediaStore(
            settings.media_dir,
            retention_seconds=settings.media_retention_seconds,
            max_bytes=settings.media_max_bytes,
        )
    return JournalMediaStore(
        journal,
        retention_seconds=settings.media_retention_seconds,
        max_bytes=settings.media_max_bytes,
        legacy=settings.media_dir,
    )
