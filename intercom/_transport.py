"""An httpx transport that spreads requests over several small connection pools.

httpcore's pool walks every connection for every queued request on each assignment pass
(O(connections x queued requests), with a readiness syscall per idle connection; see
encode/httpcore#1035). With 64 connections and a hundred thread actors calling at once, that
pass, not the network, bounded the bridge: a bare httpx client posting replies to the sandbox
managed ~230 requests/s with one 64-connection pool and ~1,200/s with 8 connections. Several
pools of 8 keep each pass small while the process still holds as many connections.

The pass also walks every *queued* request, so the queue must not build up inside httpcore
either: with thousands of thread actors each waiting for a connection (a backlog spread over
many threads, where every thread gets an actor), the passes cost O(queued) per request and
dominated the bridge's CPU. Requests beyond the pools' connections therefore wait here, in
a first-come-first-served semaphore (O(1) per request), and enter a pool only when it has a
free connection. That wait is queueing, not a failure of the server, so it has no timeout
(httpcore's ``pool`` timeout used to end it, and the request was retried at the back of the
queue as if it might have been sent): every request in flight has its own connect, read and
write timeouts, so the queue always moves.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio

__all__ = ["PooledTransport"]


class _Counted(httpx.AsyncByteStream):
    """A response body that marks its pool less busy once it is closed (or fails)."""

    def __init__(
        self, inner: httpx.AsyncByteStream, transport: PooledTransport, index: int
    ) -> None:
        self._inner = inner
        self._transport = transport
        self._index = index
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._transport._done(self._index)
        await self._inner.aclose()


class PooledTransport(httpx.AsyncBaseTransport):
    """``connections`` connections as pools of ``per_pool``; each request goes to the pool
    with the fewest requests in flight (its body closed ends it). Requests beyond the pools'
    connections wait their turn here, in arrival order, not in a pool's queue.

    Args:
        connections: connections at most, over all pools.
        per_pool: connections per pool (small keeps httpcore's assignment pass cheap).
        transport_options: passed to each ``httpx.AsyncHTTPTransport`` (not ``limits``).
    """

    def __init__(
        self,
        *,
        connections: int = 64,
        per_pool: int = 8,
        **transport_options: Any,  # noqa: ANN401 - httpx.AsyncHTTPTransport's options
    ) -> None:
        per_pool = max(1, min(per_pool, connections))
        pools = max(1, math.ceil(connections / per_pool))
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        if "verify" not in transport_options:  # one TLS context for all pools (each costs ms)
            transport_options["verify"] = httpx.create_ssl_context()
        self._pools = [
            httpx.AsyncHTTPTransport(limits=limits, **transport_options) for _ in range(pools)
        ]
        self._busy = [0] * pools
        # One slot per connection: holding one, the least busy pool has a free connection.
        self._slots = trio.Semaphore(pools * per_pool)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._slots.acquire()
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._done(index)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Counted(response.stream, self, index),
            extensions=response.extensions,
        )

    def _done(self, index: int) -> None:
        """A request of pool ``index`` ended (its body closed, or it failed)."""
        self._busy[index] -= 1
        self._slots.release()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
