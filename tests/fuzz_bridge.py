"""A whole running bridge for fuzzing: the embedded stack on Hypercorn in a Trio loop on a helper
thread, driven synchronously over real HTTP (httpx) so Hypothesis can run thousands of cases
against one server.

:class:`LiveBridge` also counts the journal's entries through its own database connection (a
plain ``sqlite3`` reader, or asyncpg on a private asyncio loop), so a test can check that a
refused request journaled nothing, and remembers a bridge that stopped answering: once a request
timed out, every later call fails at once with the request that wedged it, instead of waiting
out another timeout (a wedged journal writer stays wedged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_from_bytes

import asyncpg
import httpx
import trio

from actors._embedded import Stack, open_stack
from actors._jobs import conversation_index_key

__all__ = ["BridgeWedged", "LiveBridge", "Reply"]

T = TypeVar("T")

REQUEST_TIMEOUT = 10.0
"""A request unanswered for this long is a hang (the ingress answers in milliseconds)."""
HEALTH_TIMEOUT = 1.0
"""``/healthz`` must answer within this long after any example batch."""


class BridgeWedged(AssertionError):
    """The bridge stopped answering; carries the request after which it did."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    text: str
    seconds: float


class _PostgresCounter:
    """``count(*)`` of the journal's entries over a private asyncpg connection."""

    def __init__(self, url: str) -> None:
        # A plain selector loop: trio-asyncio's policy would hand out its own kind of loop.
        self._loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._conn: asyncpg.Connection[Any] = self._call(asyncpg.connect(url))

    def _call(self, coro: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(REQUEST_TIMEOUT)

    def count(self) -> int:
        value = self._call(self._conn.fetchval("SELECT count(*) FROM journal_entries"))
        return int(value)

    def close(self) -> None:
        self._call(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class _SqliteCounter:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def count(self) -> int:
        (value,) = self._conn.execute("SELECT count(*) FROM journal_entries").fetchone()
        return int(value)

    def close(self) -> None:
        self._conn.close()


class LiveBridge:
    """The sandboxes and a bridge (``open_stack``) on loopback, served from another thread."""

    def __init__(self, database_url: str, tmp: Path, **overrides: Any) -> None:  # noqa: ANN401
        self.database_url = database_url
        self._tmp = tmp
        self._overrides = overrides
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._stack: Stack | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._http: httpx.Client | None = None
        self._counter: _PostgresCounter | _SqliteCounter | None = None
        self.wedged_by: str | None = None
        self.requests = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        async with open_stack(
            database_url=self.database_url,
            media_dir=str(self._tmp / "media"),
            shutdown_drain_seconds=1.0,
            retry_base_seconds=0.05,
            retry_cap_seconds=0.2,
            intercom_rate_limit_per_window=1_000_000,
            **self._overrides,
        ) as stack:
            # The sandbox Intercom sends no webhooks of its own (API-created parts, scripted
            # teammates): only the test's requests may add journal entries.
            stack.sandbox.intercom.configure(webhook_url=None)
            self._stack = stack
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._started.set()
            await self._stop.wait()

    def __enter__(self) -> LiveBridge:
        self._thread.start()
        self._started.wait(60)
        if self._stack is None:
            raise RuntimeError("the bridge did not start") from self._error
        self._http = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=5.0)
        )
        path = self.stack.settings.sqlite_path
        self._counter = (
            _SqliteCounter(str(path)) if path is not None else _PostgresCounter(self.database_url)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
        if self._counter is not None:
            self._counter.close()
        if self._stop is not None and self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)

    @property
    def stack(self) -> Stack:
        assert self._stack is not None
        return self._stack

    @property
    def url(self) -> str:
        return self.stack.node.ingress.url

    # --- calls into the bridge's Trio loop ----------------------------------------------------

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` in the bridge's Trio loop and return its result."""

        async def call() -> T:
            with trio.fail_after(REQUEST_TIMEOUT):
                return await fn()

        return trio.from_thread.run(call, trio_token=self._token)

    # --- HTTP ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        query: bytes = b"",
    ) -> Reply:
        """One request over real HTTP; a timeout wedges the bridge for all later calls."""
        if self.wedged_by is not None:
            raise BridgeWedged(f"the bridge stopped answering after {self.wedged_by}")
        assert self._http is not None
        url = httpx.URL(self.url + path)
        if query:
            # Raw bytes as a client puts them on the wire: anything outside printable ASCII
            # percent-encoded (existing escapes kept).
            url = url.copy_with(query=quote_from_bytes(query, safe="!$&'()*+,;=:@/?%").encode())
        started = time.perf_counter()
        self.requests += 1
        try:
            response = self._http.request(method, url, headers=headers, content=body)
        except httpx.TimeoutException as exc:
            self.wedged_by = f"{method} {path} with body {body[:300]!r} ({len(body)} bytes)"
            raise BridgeWedged(f"no answer in {REQUEST_TIMEOUT} s to {self.wedged_by}") from exc
        seconds = time.perf_counter() - started
        return Reply(response.status_code, response.headers, response.text[:500], seconds)

    def check_health(self) -> None:
        """``/healthz`` answers 200 within :data:`HEALTH_TIMEOUT`."""
        reply = self.request("GET", "/healthz")
        assert reply.status == 200, reply
        assert reply.seconds < HEALTH_TIMEOUT, f"/healthz took {reply.seconds:.2f} s"

    # --- the journal --------------------------------------------------------------------------

    def entries(self) -> int:
        """How many entries the journal holds (pending, done and dead)."""
        assert self._counter is not None
        return self._counter.count()

    def dead_letters(self) -> list[str]:
        async def read() -> list[str]:
            return [d.error for d in await self.stack.node.journal.dead_letters()]

        return self.run(read)

    # --- a bridged thread to aim at -----------------------------------------------------------

    def bridged_whatsapp_thread(self, wa_id: str) -> str:
        """Send one WhatsApp message from ``wa_id``, wait until its conversation is bridged,
        and return the Intercom conversation id."""
        stack = self.stack

        async def send_and_wait() -> str:
            response = await stack.whatsapp(wa_id, "hello from the fuzz setup")
            assert response.status_code == 200, response.text
            with trio.fail_after(REQUEST_TIMEOUT):
                while True:
                    for conversation in stack.conversations():
                        cid = str(conversation["id"])
                        if await stack.node.journal.get_state(conversation_index_key(cid)):
                            return cid
                    await trio.sleep(0.02)

        return self.run(send_and_wait)

    def admin_reply_notification(self, conversation_id: str, body: str) -> dict[str, Any]:
        """A real ``conversation.admin.replied`` notification for ``conversation_id``, as the
        Intercom sandbox renders it (the part is added to the sandbox's conversation)."""
        core = self.stack.sandbox.intercom.core

        async def build() -> dict[str, Any]:
            admin_id = next(iter(core.admins))
            conversation, part, topic = core.admin_action(
                conversation_id, admin_id, "comment", body, via_api=False
            )
            notification = core.notification(topic, core.conversation_item(conversation, [part]))
            return json.loads(json.dumps(notification))  # type: ignore[no-any-return]

        return self.run(build)
