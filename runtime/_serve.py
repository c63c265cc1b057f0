"""Serve an ASGI app on Hypercorn's Trio worker inside the caller's nursery."""

from __future__ import annotations

import functools
import gc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState, Framework, LifespanState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

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
    max_connections: int | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[BoundAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled or until ``shutdown_trigger`` returns.

    Reports the bound address through ``task_status`` once the socket listens, so
    ``await nursery.start(serve_asgi, app, hypercorn_config("127.0.0.1:0"))`` returns a usable
    address with no polling. A shutdown trigger lets in-flight requests finish within
    Hypercorn's ``graceful_timeout``; cancellation stops at once: it also closes every open
    connection, so a response write to a client that does not read cannot outlive it
    (Hypercorn writes each response in a cancel scope shielded without a deadline: before
    this, such a client kept ``threadline serve`` alive through SIGTERM).

    ``max_connections`` caps the connections open at once: at the cap the server stops
    accepting, and new connections wait in the kernel's listen backlog (``config.backlog``)
    until one closes, so slow or idle clients cannot exhaust the process's file descriptors.
    Hypercorn has no such limit of its own, so this runs Hypercorn's Trio worker loop
    (``hypercorn.trio.run.worker_serve``, 0.18, pinned in constraints.txt) with the accept gate
    added; plain-HTTP binds only (TLS is terminated in front of the bridge).
    """
    if config.ssl_enabled or config.quic_bind:
        raise ValueError("serve_asgi serves plain HTTP binds only")
    slots = trio.Semaphore(max_connections) if max_connections is not None else None
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    connections: set[_TCPServer] = set()
    server = functools.partial(
        _TCPServer, connections, wrapped, config, context, ConnectionState(lifespan_state.copy())
    )

    async def handle(stream: trio.SocketStream) -> None:
        try:
            # Hypercorn annotates an SSL stream; its own worker passes plain ones like this.
            await server(stream)
        finally:
            if slots is not None:
                slots.release()  # taken by _GatedListener.accept for this connection

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            listeners: list[trio.abc.Listener[trio.SocketStream]] = []
            binds: list[str] = []
            for sock in config.create_sockets().insecure_sockets:
                sock.listen(config.backlog)
                listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                listeners.append(listener if slots is None else _GatedListener(listener, slots))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            parts = urlsplit(binds[0])
            assert parts.hostname is not None
            assert parts.port is not None
            task_status.started(BoundAddress(parts.hostname, parts.port))
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_close_when_cancelled, connections)
                    if shutdown_trigger is not None:
                        nursery.start_soon(raise_shutdown, shutdown_trigger)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    nursery.start_soon(
                        functools.partial(
                            trio.serve_listeners, handle, listeners, handler_nursery=server_nursery
                        )
                    )
                    await trio.sleep_forever()
            except BaseExceptionGroup as error:
                _, others = error.split((ShutdownError, KeyboardInterrupt))
                if others is not None:
                    raise others from None
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


class _TCPServer(TCPServer):
    """Hypercorn's connection handler, registered with its server's set of connections (so
    that cancelling the server can close them), and ending as soon as the client has gone.

    Hypercorn's Trio handler can keep a connection's task (and its socket) for
    ``keep_alive_timeout`` after the client has closed it: when the close arrives just before
    the answer's last send, that send starts the idle timer after reading has already stopped.
    Under a connection cap, closed connections would hold slots. Here, once reading has stopped
    (end of stream, reset or read timeout), the idle timer is stopped and never starts again,
    so the handler ends as soon as any request in progress has been answered.
    """

    _reading_stopped = False

    def __init__(self, connections: set[_TCPServer], *args: Any) -> None:  # noqa: ANN401
        super().__init__(*args)
        self._connections = connections

    async def run(self) -> None:
        self._connections.add(self)
        try:
            await super().run()
        finally:
            self._connections.discard(self)

    async def _read_data(self) -> None:
        await super()._read_data()
        self._reading_stopped = True
        await self.idle_task.stop()

    async def _idle_timeout(self) -> None:
        if not self._reading_stopped:
            await super()._idle_timeout()


class _GatedListener(trio.abc.Listener[trio.SocketStream]):
    """Accepts only while ``slots`` has one free; the connection's handler gives it back."""

    def __init__(self, inner: trio.SocketListener, slots: trio.Semaphore) -> None:
        self._inner = inner
        self._slots = slots

    async def accept(self) -> trio.SocketStream:
        await self._slots.acquire()
        try:
            return await self._inner.accept()
        except BaseException:
            self._slots.release()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _close_when_cancelled(connections: set[_TCPServer]) -> None:
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
