"""A response whose body drips out a byte at a time (the sandboxes' slow servers), over real
HTTP on loopback."""

from __future__ import annotations

import time

import httpx
import trio

from runtime import Request, Response, Router, hypercorn_config, serve_asgi


async def test_a_dripping_body_arrives_whole_and_slowly(nursery: trio.Nursery) -> None:
    async def slow(request: Request) -> Response:
        return Response(200, b"abcd", "text/plain", drip_seconds=0.05)

    router = Router(max_body_bytes=16)
    router.add("GET", "/slow", "slow", slow)
    addr = await nursery.start(serve_asgi, router, hypercorn_config("127.0.0.1:0"))
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=addr.url) as http:
        response = await http.get("/slow")
    assert (response.status_code, response.content) == (200, b"abcd")
    assert response.headers["content-length"] == "4"
    assert time.monotonic() - started >= 0.2
