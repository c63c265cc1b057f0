"""Helpers for the channel tests: where the provider fixtures and API descriptions live, and the
sandbox providers (plus a second, foreign origin) served over real HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from channels.sandbox import ProviderSandbox
from runtime import hypercorn_config, serve_asgi

TESTS_ROOT = Path(__file__).resolve().parents[1]


def specs_dir() -> Path:
    """The providers' API descriptions kept in the repository (``tests/specs``)."""
    return TESTS_ROOT / "specs"


def fixtures_dir() -> Path:
    """The recorded provider payloads kept in the repository (``tests/fixtures/channels``)."""
    return TESTS_ROOT / "fixtures" / "channels"


@dataclass
class Served:
    sandbox: ProviderSandbox
    url: str


@pytest.fixture
async def served(nursery: trio.Nursery) -> Served:
    sandbox = ProviderSandbox()
    addr = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
    return Served(sandbox, addr.url)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


@dataclass
class Elsewhere:
    """A second origin: streams bodies without Content-Length, redirects, records requests."""

    url: str = ""
    paths: list[str] = field(default_factory=list)
    graph_media_url: str = ""  # what GET /graph/{media_id} claims the media URL is

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = str(scope["path"])
        self.paths.append(path)
        query = bytes(scope.get("query_string", b"")).decode()
        if path.startswith("/stream/"):
            size = int(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            chunk = b"x" * 4096
            sent = 0
            while sent < size:
                part = chunk[: size - sent]
                sent += len(part)
                await send({"type": "http.response.body", "body": part, "more_body": sent < size})
            return
        if path.startswith("/graph/"):
            body = json.dumps({"url": self.graph_media_url, "mime_type": "image/png"}).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if path == "/redirect":
            target = query.removeprefix("to=")
            headers = [(b"location", target.encode())]
            await send({"type": "http.response.start", "status": 302, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def serve_elsewhere(nursery: trio.Nursery) -> Elsewhere:
    app = Elsewhere()
    addr = await nursery.start(serve_asgi, app, hypercorn_config("127.0.0.1:0"))
    app.url = addr.url
    return app


@dataclass
class Answering:
    """A provider that answers every request with one fixed status and body (after
    ``delay`` seconds), counting what it was sent: an answer a proxy garbled, or a 2xx
    whose body lacks what a client reads from it."""

    body: bytes
    status: int = 200
    delay: float = 0.0
    requests: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body", False):
            pass
        self.requests += 1
        await trio.sleep(self.delay)
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


async def answering(
    nursery: trio.Nursery, body: bytes, *, delay: float = 0.0
) -> tuple[Answering, str]:
    """An :class:`Answering` provider (200, ``body``) served on loopback, and its URL."""
    app = Answering(body, delay=delay)
    addr = await nursery.start(serve_asgi, app, hypercorn_config("127.0.0.1:0"))
    return app, str(addr.url)
