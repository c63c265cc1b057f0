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

import errno
import hmac
import ipaddress
import logging
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from intercom import IntercomClient, PooledTransport, RateBudget, SharedRateBudget
from runtime import (
    AppendedHint,
    BoundAddress,
    ChildSpec,
    Entry,
    Journal,
    JournalError,
    JournalUnavailable,
    KeyedActors,
    Request,
    Response,
    RestartIntensity,
    RetryPolicy,
    Router,
    RuntimeMetrics,
    Supervisor,
    hypercorn_config,
    open_postgres_journal,
    open_sqlite_journal,
    serve_asgi,
    text_response,
)

from ._gateway import Gateway
from ._ingress import Ingress
from ._jobs import SENT_MESSAGE_PREFIX, decode_job
from ._logging import LogLimiter, log_fields, thread_hash
from ._media import DirectoryMediaStore, JournalMediaStore, MediaStore
from ._metrics import BridgeMetrics
from ._settings import Settings, parse_bind
from ._templates import TemplateCatalog
from .delivery import (
    Cluster,
    Dispatcher,
    LeaseStore,
    Ownership,
    Plumbing,
    SingleNode,
    make_classifier,
)
from .thread import ContactResolver, Services, ThreadActor

__all__ = [
    "ConfigurationError",
    "JournalHealth",
    "Node",
    "StartupError",
    "check_bindable",
    "open_journal",
    "run_bridge",
]

logger = logging.getLogger("threadline.bridge")

_DIRECTIONS = {"inbound": "inbound", "reply": "outbound", "api_send": "api", "status": "status"}


class StartupError(Exception):
    """The bridge cannot start. The message is one line, says what is wrong and ends with the
    setting to look at in parentheses; it never holds a secret's value."""


class ConfigurationError(StartupError):
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


class SharedJournal(LeaseStore, Protocol):
    """What a journal that several nodes share (PostgreSQL) offers besides the journal: partition
    leases (the cluster), counters per time window (the Intercom budget) and append hints (the
    dispatcher's wake-ups)."""

    async def claim_window(
        self, name: str, window: int, want: int, *, limit: int, floor: int = 0
    ) -> int: ...

    def appended_hint(
        self, partitions: Collection[int] | None = None
    ) -> AbstractContextManager[AppendedHint]: ...


@asynccontextmanager
async def open_journal(settings: Settings, *, create: bool = True) -> AsyncIterator[Journal]:
    """Open the journal named by ``THREADLINE_DATABASE_URL``.

    With ``create=False`` a SQLite file that does not exist is an error rather than a new, empty
    journal (the ``deadletters`` commands: a mistyped path must not look like "no dead letters").

    Raises:
        StartupError: the journal cannot be opened (one line, the password masked).
    """
    async with _open_journal(settings, create=create) as (journal, _):
        yield journal


@asynccontextmanager
async def _open_journal(
    settings: Settings, *, create: bool = True
) -> AsyncIterator[tuple[Journal, SharedJournal | None]]:
    """:func:`open_journal`, and the journal again as a :class:`SharedJournal` when it is one
    (PostgreSQL), else None (SQLite: one node)."""
    path = settings.sqlite_path
    opened = False
    try:
        if path is not None:
            _check_sqlite_path(path, create=create)
            async with open_sqlite_journal(path, partitions=settings.partitions) as journal:
                opened = True
                yield journal, None
            return
        problem = database_url_problem(settings.database_url)
        if problem is not None:
            raise ConfigurationError(f"{problem} ({_DATABASE})")
        url = settings.database_url.replace("postgres://", "postgresql://", 1)
        async with open_postgres_journal(url, partitions=settings.partitions) as pg_journal:
            opened = True
            yield pg_journal, pg_journal
    except Exception as exc:
        failure = None if opened else _journal_start_error(exc, settings)
        if failure is None:
            raise
        raise failure from None


_DATABASE = "THREADLINE_DATABASE_URL"


def _journal_start_error(exc: Exception, settings: Settings) -> StartupError | None:
    """The one-line :class:`StartupError` for a journal that failed to open; None when ``exc``
    is something else (a bug, whose traceback should show)."""
    if isinstance(exc, StartupError):
        return None  # already one
    leaves = list(_leaves(exc))
    if leaves and all(isinstance(leaf, JournalError) for leaf in leaves):
        reason = " ".join(str(leaves[0]).split())
        return StartupError(f"{mask_secrets(reason, settings)} ({_DATABASE})")
    if settings.sqlite_path is None and any(
        isinstance(leaf, ValueError | OverflowError | TypeError) for leaf in leaves
    ):
        # The driver's parser quotes pieces of the URL (a password holding a "/" becomes the
        # "port" it cannot read): say what, never the value.
        return ConfigurationError(f"the database URL is malformed ({_DATABASE})")
    return None


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _check_sqlite_path(path: str, *, create: bool) -> None:
    file = Path(path)
    directory = file.parent
    if file.is_dir():
        raise ConfigurationError(f"the SQLite journal {path} is a directory ({_DATABASE})")
    if file.exists():
        if not os.access(file, os.R_OK | os.W_OK):
            raise ConfigurationError(f"the SQLite journal {path} is not writable ({_DATABASE})")
        return
    if not create:
        raise ConfigurationError(f"there is no journal at {path} ({_DATABASE})")
    if not directory.exists():
        raise ConfigurationError(
            f"the directory of the SQLite journal {path} does not exist ({_DATABASE})"
        )
    if not directory.is_dir():
        raise ConfigurationError(f"{directory} is not a directory ({_DATABASE})")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"the directory of the SQLite journal {path} is not writable ({_DATABASE})"
        )


_IPV6_HOST = re.compile(r"\[[^\]]+\](?::([^,]*))?")


def database_url_problem(url: str) -> str | None:
    """Why ``url`` is not a PostgreSQL URL the driver can read; None when it is (or SQLite).

    The answer never quotes the URL: a password holding a ``/``, ``?``, ``#`` or ``@`` that is
    not percent-encoded spills into the parts the driver parses after it.
    """
    if url.startswith("sqlite:///"):
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        return "the database URL is neither sqlite:///path nor postgresql://…"
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "the database URL is malformed (an unclosed '[' around an IPv6 host?)"
    if netloc.count("@") > 1:
        return "the database URL has more than one '@': write '@' in a user or password as %40"
    hosts = netloc.rpartition("@")[2]
    for spec in hosts.split(",") if hosts else []:
        if spec.startswith("/"):
            continue  # a Unix socket directory
        if spec.startswith("["):
            match = _IPV6_HOST.fullmatch(spec)
            if match is None:
                return "the database URL's IPv6 host is malformed"
            port = match.group(1) or ""
        else:
            port = spec.partition(":")[2]
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            return (
                "the database URL's port is not a number from 1 to 65535 (percent-encode a "
                "'/', '?' or '#' in the password: %2F, %3F, %23)"
            )
    return None


_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def mask_secrets(text: str, settings: Settings | None) -> str:
    """``text`` with every secret of ``settings`` (and any URL's password) replaced by ``***``."""
    if settings is not None:
        secrets = [
            value.get_secret_value()
            for value in settings.__dict__.values()
            if isinstance(value, SecretStr)
        ]
        userinfo = settings.database_url.partition("://")[2].rpartition("@")[0]
        secrets.append(userinfo.partition(":")[2])
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


def check_settings(settings: Settings) -> None:
    """Refuse settings that would run insecurely or not at all (before anything starts)."""
    problems = settings.secret_problems()
    if problems:
        raise ConfigurationError("; ".join(problems))
    host, _ = parse_bind(settings.metrics_bind)
    if settings.metrics_token is None and not _is_loopback(host):
        raise ConfigurationError(
            f"THREADLINE_METRICS_BIND={settings.metrics_bind} is not a loopback address: "
            "/metrics would be exposed unauthenticated (THREADLINE_METRICS_TOKEN)"
        )
    if settings.intercom_access_token is None:
        raise ConfigurationError(
            "the Intercom access token is not set (THREADLINE_INTERCOM_ACCESS_TOKEN)"
        )
    problem = database_url_problem(settings.database_url)
    if problem is not None:
        raise ConfigurationError(f"{problem} ({_DATABASE})")
    if settings.whatsapp_reengagement_template is not None and (
        settings.whatsapp_business_account_id is None or settings.whatsapp_access_token is None
    ):
        raise ConfigurationError(
            "a re-engagement template needs WhatsApp and its business account, to check it is"
            " approved (THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID)"
        )


def check_bindable(bind: str, setting: str) -> None:
    """Refuse a ``host:port`` this process cannot listen on (in use, not a local address), as
    the server will bind it, before anything starts. An inherited socket (``fd://``) and port 0
    always pass."""
    if bind.startswith("fd://"):
        return
    host, port = parse_bind(bind)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(f"{bind} is already in use ({setting})") from None
            reason = exc.strerror or type(exc).__name__
            raise StartupError(f"cannot listen on {bind}: {reason} ({setting})") from None


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
        _open_journal(settings) as (journal, shared),
        httpx.AsyncClient(
            timeout=httpx.Timeout(settings.channel_timeout_seconds, connect=5.0)
        ) as provider_http,
        httpx.AsyncClient(
            base_url=settings.intercom_base_url,
            timeout=httpx.Timeout(settings.intercom_timeout_seconds, connect=5.0),
            transport=PooledTransport(connections=64),  # 8 pools of 8: see PooledTransport
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
            direction = _direction(message)
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

        gateway = Gateway(settings, provider_http, observe=metrics.observe_send)
        templates = TemplateCatalog(
            gateway.whatsapp,
            settings.whatsapp_business_account_id,
            ttl=settings.whatsapp_template_cache_seconds,
        )
        services = Services(
            settings=settings,
            journal=journal,
            intercom=intercom,
            gateway=gateway,
            resolver=ContactResolver(
                intercom,
                journal,
                metrics,
                settle_seconds=settings.intercom_search_settle_seconds,
            ),
            media=_media_store(settings, journal),
            metrics=metrics,
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
        dispatcher = Dispatcher(journal, actors, owned=ownership.owned)
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


PROBE_KEY = "health:probe"
"""The journal state key the readiness probe writes (the time of its latest write)."""


class JournalHealth:
    """Whether the journal can commit, found out by committing: every ``interval`` seconds (a
    third of a lease, 5 s by default) a one-row state write, off the hot path.

    The journal is down from the first failed probe until one succeeds, and also while a probe
    hangs (no commit for two intervals): an outage shows within about one interval.
    """

    def __init__(self, journal: Journal, *, interval: float) -> None:
        self._journal = journal
        self.interval = interval
        self._committed_at = time.monotonic()  # opening the journal committed its schema
        self._failure: str | None = None

    def problem(self) -> str | None:
        """None while the journal commits; else why not, in one line."""
        if self._failure is not None:
            return self._failure
        silent = time.monotonic() - self._committed_at
        if silent > 2 * self.interval:
            return f"the journal has not committed for {silent:.0f} s"
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe until cancelled."""
        task_status.started()
        next_probe = trio.current_time()
        while True:  # start to start, like the lease ticks
            next_probe = max(next_probe + self.interval, trio.current_time())
            await trio.sleep_until(next_probe)
            await self.probe()

    async def probe(self) -> None:
        """One probe write; records its outcome."""
        try:
            await self._journal.put_state({PROBE_KEY: f"{time.time():.3f}".encode()})
        except JournalError as exc:
            reason = " ".join(str(exc).split())[:300]
            if self._failure is None:
                logger.error("journal cannot commit; not ready: %s", reason)
            self._failure = f"the journal cannot commit: {reason}"
        else:
            if self._failure is not None:
                logger.warning("journal commits again; ready")
            self._failure = None
            self._committed_at = time.monotonic()


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


def _housekeeping(
    journal: Journal, metrics: BridgeMetrics, settings: Settings, media: MediaStore
) -> Callable[..., Awaitable[None]]:
    repeats = LogLimiter()

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_prune = next_sweep = 0.0
        while True:
            if time.time() >= next_sweep:  # expired oversize media (also swept on each save)
                next_sweep = time.time() + min(3600.0, settings.media_retention_seconds)
                try:
                    await media.sweep()
                except (OSError, JournalError) as exc:
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
                    # What was sent, for delivery failures: kept as long as their dedupe ids.
                    await journal.prune_state(
                        prefix=SENT_MESSAGE_PREFIX,
                        updated_before=time.time() - settings.journal_retention_seconds,
                    )
                    next_prune = time.time() + 3600.0
            except JournalUnavailable as exc:
                repeats.log(
                    logger, logging.WARNING, "journal", "housekeeping: journal unavailable: %s", exc
                )
            await trio.sleep(5.0)

    return run


def _direction(entry: Entry) -> str:
    try:
        return _DIRECTIONS[decode_job(entry.payload).kind]
    except ValueError:
        return "inbound"
