"""The load generator redelivers like a provider (``LoadPlan.redeliver_seconds``): after any
answer other than 200 and after a connection error, until acknowledged; and with several nodes
(``Target.more_urls``) it moves on to the next one, as a load balancer would. The soak
(``bench/soak.py``) relies on both while it kills nodes."""

from __future__ import annotations

import re
import time
from typing import Any

import trio

from actors.tools import LoadPlan, Target, run_load
from runtime import Request, Response, Router, hypercorn_config, serve_asgi
from tests.postgres import free_port

_MARK = re.compile(rb"\[lt [0-9a-f]+:\d+:\d+\]")


class FlakyBridge:
    """Answers ``status`` to its first ``fail_first`` webhooks and 200 afterwards; each
    acknowledged webhook becomes a "part" the checker's feed returns."""

    def __init__(self, fail_first: int, status: int) -> None:
        self.fail_first = fail_first
        self.status = status
        self.calls = 0
        self.parts: list[dict[str, Any]] = []
        self.app = Router(max_body_bytes=1024 * 1024)
        self.app.add_fallback("webhook", self._answer)

    async def _answer(self, request: Request) -> Response:
        self.calls += 1
        status = self.status if self.calls <= self.fail_first else 200
        if status == 200:
            mark = _MARK.search(request.body)
            assert mark is not None
            self.parts.append({"body": mark.group().decode(), "created_at": time.time()})
        return Response(status)

    async def feed(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        return self.parts[cursor:], len(self.parts)


def target(url: str, *more: str) -> Target:
    return Target(url, url, "token", "AC0", more_urls=more)


PLAN = LoadPlan(threads=3, messages_per_thread=3, channels=("whatsapp",), drain_seconds=2.0)


async def test_redelivers_after_a_500_until_acknowledged() -> None:
    bridge = FlakyBridge(fail_first=5, status=500)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, bridge.app, hypercorn_config("127.0.0.1:0"))
        with trio.fail_after(30):
            report = await run_load(
                LoadPlan(**{**PLAN.__dict__, "redeliver_seconds": 20.0}),
                target(address.url),
                bridge.feed,
            )
        nursery.cancel_scope.cancel()
    assert (report.sent, report.acknowledged, report.refused) == (9, 9, 0)
    assert report.ingress_retries == 5
    assert report.passed


async def test_without_redelivery_a_500_is_refused_for_good() -> None:
    bridge = FlakyBridge(fail_first=1, status=500)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, bridge.app, hypercorn_config("127.0.0.1:0"))
        with trio.fail_after(30):
            report = await run_load(PLAN, target(address.url), bridge.feed)
        nursery.cancel_scope.cancel()
    assert report.refused == 1  # that thread stops, as before: the default did not change
    assert report.acknowledged == 6


async def test_a_dead_node_is_passed_over_for_the_next_one() -> None:
    bridge = FlakyBridge(fail_first=0, status=200)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, bridge.app, hypercorn_config("127.0.0.1:0"))
        with trio.fail_after(30):
            report = await run_load(
                LoadPlan(**{**PLAN.__dict__, "redeliver_seconds": 20.0}),
                target(dead, address.url),
                bridge.feed,
            )
        nursery.cancel_scope.cancel()
    assert (report.acknowledged, report.delivered, report.lost) == (9, 9, 0)
    assert report.ingress_retries > 0  # the threads that started on the dead node moved on
    assert report.passed
