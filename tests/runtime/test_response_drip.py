"""A response whose body drips out a byte at a time (the sandboxes' slow servers), over real
HTTP on loopback.

No stopwatch: a client whose read timeout is shorter than the drip times out part-way, and one
whose timeout is longer gets the whole body. The first cannot pass by luck on a slow machine
(the server sleeps between bytes, it cannot be faster than its drip)."""

from __future__ import annotations

import httpx
import pytest
import trio

from runtime import Request, Response, Router, hypercorn_config, serve_asgi


async def _serve_slow(nursery: trio.Nursery) -> str:
    async def slow(request: Request) -> Response:
        return Response(200, b"abcd", "text/plain", drip_seconds=0.2)

    router = Router(max_body_bytes=16)
    router.add("GET", "/slow", "slow", slow)
    addr = await nursery.start(serve_asgi, router, hypercorn_config("127.0.0.1:0"))
    return str(addr.url)


async def test_a_dripping_body_arrives_whole(nursery: trio.Nursery) -> None:
    url = await _serve_slow(nursery)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        response = await http.get("/slow")
    assert (response.status_code, response.content) == (200, b"abcd")
    assert response.headers["content-length"] == "4"


async def test_a_dripping_body_outlasts_a_short_read_timeout(nursery: trio.Nursery) -> None:
    url = await _serve_slow(nursery)
    timeout = httpx.Timeout(30.0, read=0.02)
    received: list[bytes] = []

    async def read_all(response: httpx.Response) -> None:
        async for chunk in response.aiter_raw():
            received.append(chunk)

    async with (
        httpx.AsyncClient(base_url=url, timeout=timeout) as http,
        http.stream("GET", "/slow") as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            await read_all(response)
    assert len(b"".join(received)) < 4
