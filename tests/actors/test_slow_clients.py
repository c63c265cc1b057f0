"""Slow clients cannot hold the ingress: request bodies have a total deadline, request heads are
cut off by the idle timer, and connections beyond ``THREADLINE_MAX_CONNECTIONS`` wait in the
listen backlog instead of taking file descriptors (issue 15, finding 5)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from actors.tools import SANDBOX_SECRETS, Stack, open_stack
from tests.actors.conftest import eventually

BODY_TIMEOUT = 1.0
CAP = 8
DRIBBLE = 0.25  # seconds between bytes: well inside the 30-second per-read timeout

HEAD = (
    b"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"X-Telegram-Bot-Api-Secret-Token: " + SANDBOX_SECRETS.telegram_secret_token.encode() + b"\r\n"
    b"Content-Length: 1000\r\n\r\n"
)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        media_dir=str(tmp_path / "media"),
        shutdown_drain_seconds=1.0,
        body_timeout_seconds=BODY_TIMEOUT,
        max_connections=CAP,
    ) as opened:
        yield opened


async def nothing_journaled(stack: Stack) -> None:
    assert await stack.node.journal.read_pending(after_id=0, limit=10) == []
    assert await stack.node.journal.dead_letters() == []


async def dribble(stream: trio.SocketStream, first: bytes) -> bytes:
    """Send ``first`` and then one byte every DRIBBLE seconds; return what the server answered
    once it closes the connection (b"" when it closed without answering)."""
    answer = bytearray()

    async def read() -> None:
        while chunk := await stream.receive_some():
            answer.extend(chunk)

    async with trio.open_nursery() as nursery:

        async def send() -> None:
            try:
                await stream.send_all(first)
                for _ in range(1000):  # never completes the 1000-byte body within the test
                    await trio.sleep(DRIBBLE)
                    await stream.send_all(b" ")
            except trio.BrokenResourceError:
                pass  # the server has closed the connection
            await trio.sleep_forever()  # until read() has seen the close

        async def read_then_stop() -> None:
            with contextlib.suppress(trio.BrokenResourceError):  # a reset: closed too
                await read()
            nursery.cancel_scope.cancel()

        nursery.start_soon(send)
        nursery.start_soon(read_then_stop)
    await stream.aclose()
    return bytes(answer)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_dribbled_body_is_cut_off_at_the_deadline(stack: Stack) -> None:
    stream = await trio.open_tcp_stream(stack.node.ingress.host, stack.node.ingress.port)
    started = trio.current_time()
    with trio.fail_after(BODY_TIMEOUT + 2.0):
        answer = await dribble(stream, HEAD + b"{")
    elapsed = trio.current_time() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request body not received within 1 s" in answer
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 1.0
    await nothing_journaled(stack)


async def test_a_normal_request_is_not_affected(stack: Stack) -> None:
    response = await stack.telegram(4242, "hello")
    assert response.status_code == 200
    await eventually(lambda: len(stack.conversations()) == 1)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
async def test_slow_clients_beyond_the_cap_neither_take_descriptors_nor_block_healthz(
    stack: Stack,
) -> None:
    """3 x CAP dribbling clients: the server holds at most CAP of them at a time, cuts each off
    at the body deadline, and a fresh /healthz behind them is answered once its turn comes."""
    host, port = stack.node.ingress.host, stack.node.ingress.port
    assert (await stack.http.get("/healthz")).status_code == 200
    await stack.http.aclose()  # its keep-alive connection would hold one of the CAP slots
    baseline = open_fds()
    peak = baseline
    answers: list[bytes] = []
    healthz: list[bytes] = []

    async def slow_client() -> None:
        stream = await trio.open_tcp_stream(host, port)
        answers.append(await dribble(stream, HEAD + b"{"))

    async def fresh_healthz() -> None:
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = bytearray()
        while chunk := await stream.receive_some():
            answer.extend(chunk)
        await stream.aclose()
        healthz.append(bytes(answer))

    async def watch_descriptors() -> None:
        nonlocal peak
        while True:
            peak = max(peak, open_fds())
            await trio.sleep(0.02)

    slow = 3 * CAP
    with trio.fail_after(4 * BODY_TIMEOUT + 4.0):  # three waves of CAP, then healthz's turn
        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch_descriptors)
            async with trio.open_nursery() as clients:
                for _ in range(slow):
                    clients.start_soon(slow_client)
                await trio.sleep(0.3)  # the slow ones connect first and fill the backlog
                clients.start_soon(fresh_healthz)
            watcher.cancel_scope.cancel()

    assert len(healthz) == 1
    assert healthz[0].startswith(b"HTTP/1.1 200 ")
    assert len(answers) == slow
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers
    # The test process holds both ends: slow + 1 client sockets, and at most CAP accepted ones
    # (without the cap the server would hold all of them too), plus a little slack.
    assert peak - baseline <= (slow + 1) + CAP + 4, (peak, baseline)
    await nothing_journaled(stack)


@pytest.mark.slow
async def test_a_dribbled_request_head_is_cut_off(stack: Stack) -> None:
    """The idle timer (30 s) bounds how long a request head may take to arrive."""
    stream = await trio.open_tcp_stream(stack.node.ingress.host, stack.node.ingress.port)
    started = trio.current_time()
    with trio.fail_after(35.0):
        await dribble(stream, b"POST /webhooks/telegram HTTP/1.1\r\nX-Slow: ")
    assert trio.current_time() - started < 32.0
    await nothing_journaled(stack)
