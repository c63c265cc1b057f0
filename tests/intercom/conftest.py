"""Fixtures: the spec (loaded once), the sandbox served over real HTTP on loopback, httpx
clients whose every request and response is validated against the spec, and a webhook sink."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from intercom import IntercomClient
from intercom.sandbox import IntercomSandbox, SandboxConfig
from runtime import Request, Response, Router, hypercorn_config, serve_asgi

from .spec import Spec

TOKEN = "sandbox-token"
SECRET = "test-client-secret"


def asgi_transport(app: IntercomSandbox) -> httpx.ASGITransport:
    """An in-process transport to the sandbox (for MockClock tests: no sockets, virtual time).

    httpx and Hypercorn describe ASGI with different (equivalent) types; this bridges them.
    """

    async def bridged(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        await app(
            cast("Scope", scope),
            cast("ASGIReceiveCallable", receive),
            cast("ASGISendCallable", send),
        )

    return httpx.ASGITransport(app=bridged)


@pytest.fixture(scope="session")
def spec() -> Spec:
    """Intercom's OpenAPI description, loaded once per session (see ``spec.py``)."""
    return Spec.load()


@dataclass
class SpecLog:
    """Counts what the hooks validated, so tests can prove validation happened."""

    requests: int = 0
    responses: int = 0


def spec_hooks(
    spec: Spec, base: httpx.URL, log: SpecLog, *, check_requests: bool = True
) -> dict[str, list[Callable[..., Awaitable[None]]]]:
    """httpx event hooks validating each request and each API response against the spec."""

    async def on_request(request: httpx.Request) -> None:
        if check_requests and "/_sandbox/" not in request.url.path:
            spec.validate_request(request, base)
            log.requests += 1

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        if "/_sandbox/" not in response.request.url.path:
            spec.validate_response(response.request, response, base)
            log.responses += 1

    return {"request": [on_request], "response": [on_response]}


@pytest.fixture
def sandbox() -> IntercomSandbox:
    return IntercomSandbox(
        access_tokens=[TOKEN],
        config=SandboxConfig(client_secret=SECRET),
        rng=random.Random(1234),
    )


@pytest.fixture
async def sandbox_url(nursery: trio.Nursery, sandbox: IntercomSandbox) -> str:
    """The sandbox served by Hypercorn on 127.0.0.1:0; its real URL."""
    address = await nursery.start(serve_asgi, sandbox.app, hypercorn_config("127.0.0.1:0"))
    return str(address.url)


@pytest.fixture
def spec_log() -> SpecLog:
    return SpecLog()


@pytest.fixture
async def http(sandbox_url: str, spec: Spec, spec_log: SpecLog) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the sandbox that validates every request and response against the spec."""
    base = httpx.URL(sandbox_url)
    async with httpx.AsyncClient(
        base_url=base, timeout=5.0, event_hooks=spec_hooks(spec, base, spec_log)
    ) as client:
        yield client


@pytest.fixture
async def client(http: httpx.AsyncClient) -> IntercomClient:
    return IntercomClient(http, access_token=TOKEN)


@dataclass
class Sink:
    """Receives webhooks over HTTP and keeps them in arrival order."""

    url: str = ""
    received: list[tuple[bytes, str | None]] = field(default_factory=list)
    status: int = 200
    _arrived: trio.Event = field(default_factory=trio.Event)
    app: Router = field(init=False, repr=False)
    """The ASGI app to serve (runtime's toolkit): every request is a webhook."""

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` webhooks have arrived (callers bound it with fail_after)."""
        while len(self.received) < count:
            await self._arrived.wait()

    def __post_init__(self) -> None:
        self.app = Router(max_body_bytes=16 * 1024 * 1024)
        self.app.add_fallback("webhook", self._receive)

    async def _receive(self, request: Request) -> Response:
        self.received.append((request.body, request.headers.get("x-hub-signature")))
        self._arrived.set()
        self._arrived = trio.Event()
        return Response(self.status)


@pytest.fixture
async def sink(nursery: trio.Nursery, sandbox: IntercomSandbox) -> Sink:
    """A webhook receiver, already configured as the sandbox's webhook target."""
    receiver = Sink()
    address = await nursery.start(serve_asgi, receiver.app, hypercorn_config("127.0.0.1:0"))
    receiver.url = f"{address.url}/webhooks/intercom"
    sandbox.config.webhook_url = receiver.url
    return receiver
