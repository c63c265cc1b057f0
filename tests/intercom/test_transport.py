"""PooledTransport: requests spread over small pools, least busy first, bodies intact."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from intercom import IntercomClient, PooledTransport
from intercom.sandbox import IntercomSandbox
from runtime import Request, Response, Router, hypercorn_config, serve_asgi


async def test_pooled_transport_serves_concurrent_requests(
    sandbox_url: str, sandbox: IntercomSandbox
) -> None:
    transport = PooledTransport(connections=4, per_pool=2)
    async with httpx.AsyncClient(base_url=sandbox_url, transport=transport) as http:
        client = IntercomClient(http, access_token="sandbox-token")
        contact = await client.create_contact(role="lead", phone="+14155550100")
        conversation = await client.create_conversation(contact.contact.id, "m0", role="lead")

        async def reply(n: int) -> None:
            await client.reply_as_contact(conversation, contact.contact.id, f"m{n}")

        async with trio.open_nursery() as nursery:
            for n in range(1, 21):
                nursery.start_soon(reply, n)
        assert transport._busy == [0, 0]  # every body closed: nothing counted as in flight
    parts, _ = sandbox.parts_since(0)
    assert sorted(str(p["body"]) for p in parts) == sorted(f"m{n}" for n in range(21))


async def test_a_failed_request_frees_its_slot() -> None:
    transport = PooledTransport(connections=2, per_pool=1)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9", transport=transport) as http:
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                await http.get("/")
    assert transport._busy == [0, 0]


class _Held:
    """A server that holds every request until released, counting those it holds."""

    def __init__(self) -> None:
        self.app = Router(max_body_bytes=1024)
        self.app.add_fallback("held", self._hold)
        self.holding = 0
        self.released = trio.Event()
        self._changed = trio.Event()

    async def _hold(self, request: Request) -> Response:
        self.holding += 1
        self._changed.set()
        await self.released.wait()
        return Response(200)

    async def wait_holding(self, count: int) -> None:
        while self.holding < count:
            self._changed = trio.Event()
            await self._changed.wait()


async def _serve_held(nursery: trio.Nursery) -> tuple[_Held, str]:
    server = _Held()
    address = await nursery.start(serve_asgi, server.app, hypercorn_config("127.0.0.1:0"))
    return server, str(address.url)


async def test_requests_beyond_the_connections_wait_outside_the_pools(
    nursery: trio.Nursery,
) -> None:
    # httpcore walks every request queued in a pool on each assignment pass: thousands of
    # callers queued there made each request cost O(callers). They wait in the transport.
    server, url = await _serve_held(nursery)
    transport = PooledTransport(connections=4, per_pool=2)
    async with httpx.AsyncClient(base_url=url, transport=transport) as http:
        statuses: list[int] = []

        async def get() -> None:
            statuses.append((await http.get("/")).status_code)

        async with trio.open_nursery() as callers:
            for _ in range(40):
                callers.start_soon(get)
            with trio.fail_after(10):
                await server.wait_holding(4)  # every connection busy, 36 callers waiting
            await trio.testing.wait_all_tasks_blocked()
            # httpcore's own queue (private: no public view of it) holds only what it serves
            queued = [len(pool._pool._requests) for pool in transport._pools]
            server.released.set()
        assert queued == [2, 2]
        assert statuses == [200] * 40
        assert server.holding == 40
        assert transport._busy == [0, 0]


async def test_a_caller_waits_its_turn_past_the_pool_timeout(nursery: trio.Nursery) -> None:
    # Waiting for a free connection is queueing: httpcore's pool timeout ended it with
    # PoolTimeout (retried by the bridge at the back of the queue, and looked for in Intercom
    # as if it might have been sent) whenever more callers waited than the connections served
    # within the timeout.
    server, url = await _serve_held(nursery)
    transport = PooledTransport(connections=1, per_pool=1)
    async with httpx.AsyncClient(base_url=url, transport=transport) as http:
        statuses: list[int] = []

        async def get() -> None:
            response = await http.get("/", timeout=httpx.Timeout(5.0, pool=0.1))
            statuses.append(response.status_code)

        async with trio.open_nursery() as callers:
            callers.start_soon(get)
            with trio.fail_after(10):
                await server.wait_holding(1)
            callers.start_soon(get)
            await trio.sleep(0.5)  # the second caller waits five pool timeouts
            server.released.set()
        assert statuses == [200, 200]
        assert transport._busy == [0]
        assert (await http.get("/")).status_code == 200  # the slot came back
