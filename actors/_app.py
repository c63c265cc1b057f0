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

import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
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
    JournalUnavailable,
    KeyedActors,
    PostgresJournal,
    RestartIntensity,
    RetryPolicy,
    RuntimeMetrics,
    Supervisor,
    hypercorn_config,
    open_postgres_journal,
    open_sqlite_journal,
    serve_asgi,
)

from ._cluster import Cluster, Ownership, SingleNode
from ._contacts import ContactResolver
from ._dispatch import Dispatcher
from ._gateway import Gateway
from ._http import Request, Response, Router, text_response
from ._ingress import Ingress
from ._jobs import decode_job
from ._media import MediaStore
from ._metrics import BridgeMetrics
from ._settings import Settings, parse_bind
from ._thread import Services, ThreadActor, make_classifier

__all__ = ["ConfigurationError", "Node", "open_journal", "run_bridge"]

logger = logging.getLogger("threadline.bridge")

_DIRECTIONS = {"inbound": "inbound", "reply": "outbound", "api_send": "api"}


class ConfigurationError(Exception):
    """The settings cannot run a bridge (message says which and why)."""


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


@asynccontextmanager
async def open_journal(settings: Settings) -> AsyncIterator[Journal]:
    """Open the journal named by ``THREADLINE_DATABASE_URL``."""
    path = settings.sqlite_path
    if path is not None:
        async with open_sqlite_journal(path, partitions=settings.partitions) as journal:
            yield journal
        return
    url = settings.database_url.replace("postgres://", "postgresql://", 1)
    async with open_postgres_journal(url, partitions=settings.partitions) as pg_journal:
        yield pg_journal


def check_settings(settings: Settings) -> None:
    """Refuse settings that would run insecurely or not at all."""
    problems = settings.secret_problems()
    if problems:
        raise ConfigurationError("; ".join(problems))
    host, _ = parse_bind(settings.metrics_bind)
    if settings.metrics_token is None and not _is_loopback(host):
        raise ConfigurationError(
            f"THREADLINE_METRICS_BIND={settings.metrics_bind} is not a loopback address: "
            "set THREADLINE_METRICS_TOKEN so /metrics is not exposed unauthenticated"
        )
    if settings.intercom_access_token is None:
        raise ConfigurationError("THREADLINE_INTERCOM_ACCESS_TOKEN is required")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _budget(journal: Journal, limit: int) -> RateBudget:
    """One Intercom budget for the whole app: on PostgreSQL (any number of nodes) a counter per
    Intercom window in the journal; on SQLite (one node) the process's own."""
    if not isinstance(journal, PostgresJournal):
        return RateBudget(limit=limit)
    store = journal

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
    """Run the bridge until ``stop`` is set (then drain and return) or cancelled."""
    check_settings(settings)
    stop = trio.Event() if stop is None else stop
    registry = CollectorRegistry() if registry is None else registry
    runtime_metrics = RuntimeMetrics(registry)
    metrics = BridgeMetrics(registry, commit=settings.build_commit)
    assert settings.intercom_access_token is not None
    async with (
        open_journal(settings) as journal,
        httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as provider_http,
        httpx.AsyncClient(
            base_url=settings.intercom_base_url,
            timeout=httpx.Timeout(settings.intercom_timeout_seconds, connect=5.0),
            transport=PooledTransport(connections=64),  # 8 pools of 8: see PooledTransport
        ) as intercom_http,
    ):
        budget = _budget(journal, settings.intercom_rate_limit_per_window)
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
        # The dispatcher needs the actors, whose callbacks need the dispatcher: the closures
        # below name `dispatcher`, assigned further down, before anything can call them (the
        # supervisor starts the cluster, the actors and the dispatcher only after that).
        dispatcher: Dispatcher
        ownership: Ownership
        cluster: Cluster | None = None
        if isinstance(journal, PostgresJournal):
            cluster = Cluster(
                journal,
                node_id=settings.node_id or f"{socket.gethostname()}-{os.getpid()}",
                partitions=settings.partitions,
                lease_seconds=settings.lease_seconds,
                step=settings.rebalance_step,
                on_change=lambda: dispatcher.reset(),
                busy=lambda partition: dispatcher.busy(partition),
            )
            ownership = cluster
        else:
            ownership = SingleNode()

        def finish(entry: Entry, direction: str, outcome: str) -> None:
            dispatcher.finished(entry.id)
            metrics.messages.labels(direction, outcome).inc()
            if outcome == "delivered":
                metrics.latency.labels(direction).observe(max(0.0, time.time() - entry.created_at))

        async def give_up(key: str, message: object, exc: Exception, reason: str) -> None:
            assert isinstance(message, Entry)
            direction = _direction(message)
            error = f"{reason}: {type(exc).__name__}: {exc}"[:2000]
            logger.error(
                "entry %d of thread %s given up: %s", message.id, _hash(key), error,
                extra={"entry_id": message.id, "thread_hash": _hash(key),
                       "request_id": getattr(exc, "request_id", None)},
            )  # fmt: skip
            buried = await journal.bury(message.id, error, fence=ownership.fence(message.partition))
            dispatcher.finished(message.id)
            if not buried:
                return  # the partition moved: the entry is its new owner's now
            metrics.dead_letters.labels(direction).inc()
            metrics.messages.labels(direction, "dead_lettered").inc()

        services = Services(
            settings=settings,
            journal=journal,
            intercom=intercom,
            gateway=Gateway(settings, provider_http),
            resolver=ContactResolver(
                intercom,
                journal,
                metrics,
                settle_seconds=settings.intercom_search_settle_seconds,
            ),
            media=MediaStore(
                settings.media_dir,
                retention_seconds=settings.media_retention_seconds,
                max_bytes=settings.media_max_bytes,
            ),
            metrics=metrics,
            finish=finish,
            release=lambda entry: dispatcher.finished(entry.id),
            ownership=ownership,
        )
        actors: KeyedActors[Entry, None] = KeyedActors(
            lambda ctx: ThreadActor(ctx, services),
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
        dispatcher = Dispatcher(journal, actors, owned=ownership.owned)
        ingress = Ingress(
            settings,
            journal,
            wake=dispatcher.wake,
            metrics=metrics,
            media=services.media,
            ready=lambda: dispatcher.running,
        )
        sources = metrics.sources
        sources.inflight = lambda: dispatcher.inflight
        sources.held_keys = lambda: dispatcher.held_keys
        sources.budget_waits = lambda: budget.waits
        sources.budget_wait_seconds = lambda: budget.wait_seconds
        sources.budget_rate_limited = lambda: budget.rate_limited
        sources.ready = lambda: dispatcher.running
        sources.partitions_total = settings.partitions
        sources.partitions_owned = lambda: (
            settings.partitions if (owned := ownership.owned()) is None else len(owned)
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
                    [ChildSpec("hints", _relay_hints(journal, dispatcher))]
                    if isinstance(journal, PostgresJournal)
                    else []
                ),
                ChildSpec("actors", actors.run),
                ChildSpec("dispatcher", dispatcher.run),
                ChildSpec(
                    "housekeeping", _housekeeping(journal, metrics, settings, services.media)
                ),
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


def _relay_hints(
    journal: PostgresJournal, dispatcher: Dispatcher
) -> Callable[..., Awaitable[None]]:
    """Wake the dispatcher when any node appends (LISTEN/NOTIFY); polling stays the fallback."""

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with journal.appended_hint() as hint:
            task_status.started()
            while True:
                await hint.wait()
                dispatcher.wake()

    return run


def _housekeeping(
    journal: Journal, metrics: BridgeMetrics, settings: Settings, media: MediaStore
) -> Callable[..., Awaitable[None]]:
    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_prune = next_sweep = 0.0
        while True:
            if time.time() >= next_sweep:  # expired oversize media (also swept on each save)
                next_sweep = time.time() + min(3600.0, settings.media_retention_seconds)
                try:
                    await media.sweep()
                except OSError as exc:
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
                    next_prune = time.time() + 3600.0
            except JournalUnavailable as exc:
                logger.warning("housekeeping: journal unavailable: %s", exc)
            await trio.sleep(5.0)

    return run


def _direction(entry: Entry) -> str:
    try:
        return _DIRECTIONS[decode_job(entry.payload).kind]
    except ValueError:
        return "inbound"


def _hash(key: str) -> str:
    """A short stable hash of a thread key for logs (keys hold phone numbers)."""
    return hashlib.blake2s(key.encode(), digest_size=6).hexdigest()
