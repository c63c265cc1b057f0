"""Serve an ASGI app on Hypercorn's Trio worker inside the caller's nursery."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlsplit

import hypercorn.trio.run
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.typing import Framework

__all__ = ["BoundAddress", "freeze_startup_heap", "hypercorn_config", "serve_asgi"]


@dataclass(frozen=True, slots=True)
class BoundAddress:
    """Where a server actually listens (the real port when asked for port 0)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


_connections: ContextVar[set[TCPServer] | None] = ContextVar("_connections", default=None)


class _TrackedTCPServer(TCPServer):
    """Hypercorn's connection handler, registered with the :func:`serve_asgi` that accepted it.

    Hypercorn writes each response inside a cancel scope shielded without a deadline
    (``TCPServer.protocol_send``): a client that stops reading kept that write, and so the
    whole server, alive through any cancellation — ``threadline serve`` then ignored SIGTERM.
    Knowing its connections lets :func:`serve_asgi` close their sockets when it is cancelled,
    which ends such a write with ``ClosedResourceError`` (handled by Hypercorn).
    """

    async def run(self) -> None:
        tracked = _connections.get()
        if tracked is None:  # a server not started by serve_asgi
            await super().run()
            return
        tracked.add(self)
        try:
            await super().run()
        finally:
            tracked.discard(self)


hypercorn.trio.run.TCPServer = _TrackedTCPServer  # type: ignore[attr-defined]  # looked up per connection


def hypercorn_config(bind: str, **options: object) -> Config:
    """A Hypercorn config bound to ``bind`` (``host:port``), quiet by default.

    ``options`` set Config attributes (for example ``keep_alive_timeout``,
    ``h11_max_incomplete_size``, ``graceful_timeout``).
    """
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = None
    for name, value in options.items():
        if not hasattr(config, name):
            raise AttributeError(f"hypercorn Config has no option {name!r}")
        setattr(config, name, value)
    return config


async def serve_asgi(
    app: Framework,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[BoundAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled or until ``shutdown_trigger`` returns.

    Reports the bound address through ``task_status`` once the socket listens, so
    ``await nursery.start(serve_asgi, app, hypercorn_config("127.0.0.1:0"))`` returns a usable
    address with no polling. A shutdown trigger lets in-flight requests finish within
    Hypercorn's ``graceful_timeout``; cancellation stops at once: it also closes every open
    connection, so a response write to a client that does not read cannot outlive it.
    """
    connections: set[TCPServer] = set()

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        _connections.set(connections)  # this task's own context, inherited by its connections
        await serve(app, config, shutdown_trigger=shutdown_trigger, mode="asgi",
                    task_status=task_status)  # fmt: skip

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_close_when_cancelled, connections)
        binds: list[str] = await nursery.start(run)
        parts = urlsplit(binds[0])
        assert parts.hostname is not None
        assert parts.port is not None
        task_status.started(BoundAddress(parts.hostname, parts.port))


async def _close_when_cancelled(connections: set[TCPServer]) -> None:
    try:
        await trio.sleep_forever()
    finally:
        # Synchronous: runs even though this task is being cancelled. Closing a trio socket
        # wakes any task waiting on it, shielded or not, with ClosedResourceError.
        for connection in list(connections):
            stream = connection.stream
            getattr(stream, "transport_stream", stream).socket.close()


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now out of the garbage collector's reach.

    Call it once a long-running server has started. Everything imported and built at start-up
    (modules, pydantic models, the Prometheus registry, Hypercorn's config) lives as long as the
    process, yet a full collection walks all of it again and again: on the bridge's ingress
    under load that paused the event loop for ~43 ms, ~3 ms once frozen
    (``bench/ingress_bench.py --freeze-pairs``). Frozen objects are never collected, so call it
    after start-up, not per request. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
