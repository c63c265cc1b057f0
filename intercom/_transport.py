"""An httpx transport that spreads requests over several small connection pools.

httpcore's pool walks every connection for every queued request on each assignment pass
(O(connections x queued requests), with a readiness syscall per idle connection; see
encode/httpcore#1035). With 64 connections and a hundred thread actors calling at once, that
pass, not the network, bounded the bridge: a bare httpx client posting replies to the sandbox
managed ~230 requests/s with one 64-connection pool and ~1,200/s with 8 connections. Several
pools of 8 keep each pass small while the process still holds as many connections.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["PooledTransport"]


class _Counted(httpx.AsyncByteStream):
    """A response body that marks its pool less busy once it is closed (or fails)."""

    def __init__(self, inner: httpx.AsyncByteStream, busy: list[int], index: int) -> None:
        self._inner = inner
        self._busy = busy
        self._index = index
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._busy[self._index] -= 1
        await self._inner.aclose()


class PooledTransport(httpx.AsyncBaseTransport):
    """``connections`` connections as pools of ``per_pool``; each request goes to the pool
    with the fewest requests in flight (its body closed ends it).

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

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            busy[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Counted(response.stream, busy, index),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
