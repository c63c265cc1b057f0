"""A whole running bridge for fuzzing: ``threadline serve`` in a child process, pointed at the
sandboxes served on Hypercorn in a Trio loop on a helper thread of the test process, driven
over real HTTP (httpx) so Hypothesis can send thousands of cases to one server.

The bridge runs in its own process so that generating cases (Hypothesis, in the test process)
and answering them (the bridge) do not share one interpreter lock: on a 2-core machine each
gets a core. Cases go in batches (:meth:`LiveBridge.send`), concurrently over a few keep-alive
connections (httpx's sync client on a few threads: a third of the CPU per request of its async
client on Trio), so the cost of a case is the server's, not a round-trip's.

:class:`LiveBridge` also reads the journal through its own database connection (a plain
``sqlite3`` reader, or asyncpg on a private asyncio loop), so a test can check that a refused
request journaled nothing, and remembers a bridge that stopped answering: once a request timed
out, every later call fails at once with the request that wedged it, instead of waiting out
another timeout (a wedged journal writer stays wedged).

The child never outlives the test: :meth:`LiveBridge.__exit__` (also run when starting fails)
stops it, SIGKILL after a short grace, and on Linux the kernel kills it if the test process
itself dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote_from_bytes

import asyncpg
import httpx
import trio

from actors.tools import SANDBOX_SECRETS, SandboxApp
from channels.sandbox import WhatsAppInbound, whatsapp_webhook
from runtime import hypercorn_config, serve_asgi
from tests.actors.processes import serve_env

__all__ = ["BridgeWedged", "LiveBridge", "Reply", "Request"]

T = TypeVar("T")

REQUEST_TIMEOUT = 10.0
"""A request unanswered for this long is a hang (the ingress answers in milliseconds)."""
HEALTH_TIMEOUT = 1.0
"""``/healthz`` must answer within this long after any example batch."""
CONNECTIONS = 10
"""Keep-alive connections a batch is spread over."""
START_TIMEOUT = 60.0
STOP_GRACE = 10.0
"""SIGTERM, then SIGKILL after this long."""


class BridgeWedged(AssertionError):
    """The bridge stopped answering; carries the request after which it did."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    query: bytes = b""

    def describe(self) -> str:
        return f"{self.method} {self.path} with body {self.body[:300]!r} ({len(self.body)} bytes)"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    text: str
    seconds: float


class _PostgresReader:
    """Queries over a private asyncpg connection."""

    def __init__(self, url: str) -> None:
        # A plain selector loop: trio-asyncio's policy would hand out its own kind of loop.
        self._loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._conn: asyncpg.Connection[Any] | None = None
        self._conn = self._call(asyncpg.connect(url))

    def _call(self, coro: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(REQUEST_TIMEOUT)

    def value(self, sql: str) -> int:
        assert self._conn is not None
        return int(self._call(self._conn.fetchval(sql)))

    def close(self) -> None:
        try:
            if self._conn is not None:
                self._call(self._conn.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


class _SqliteReader:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def value(self, sql: str) -> int:
        (value,) = self._conn.execute(sql).fetchone()
        return int(value)

    def close(self) -> None:
        self._conn.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The kernel sends the child SIGKILL when the test process dies, however it dies."""
    PR_SET_PDEATHSIG = 1  # noqa: N806 - the kernel's name
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class LiveBridge:
    """The sandboxes in this process and ``threadline serve`` in a child, on loopback.

    ``settings`` are extra ``THREADLINE_*`` settings of the bridge (``max_body_bytes=...``).
    """

    def __init__(self, database_url: str, tmp: Path, **settings: object) -> None:
        self.database_url = database_url
        self._tmp = tmp
        self._settings = {name: str(value) for name, value in settings.items()}
        self.log = tmp / "serve.log"
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._sandbox = SandboxApp()
        self._sandbox_url = ""
        self._http: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._reader: _PostgresReader | _SqliteReader | None = None
        self.url = ""
        self.wedged_by: str | None = None
        self.requests = 0
        self.sending = 0.0
        """Seconds spent in :meth:`send` (for timing reports)."""
        self.resent = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        # The sandbox Intercom sends no webhooks of its own (API-created parts, scripted
        # teammates): only the test's requests may add journal entries.
        self._sandbox.intercom.configure(webhook_url=None)
        async with trio.open_nursery() as nursery:
            address = await nursery.start(
                serve_asgi, self._sandbox, hypercorn_config("127.0.0.1:0")
            )
            self._sandbox_url = address.url
            self._sandbox.intercom.public_url = address.url + "/intercom"
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def __enter__(self) -> LiveBridge:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        self._thread.start()
        self._started.wait(START_TIMEOUT)
        if self._token is None:
            raise RuntimeError("the sandbox did not start") from self._error
        env = serve_env(
            self._sandbox_url,
            self.database_url,
            self._tmp,
            shutdown_drain_seconds="1",
            retry_cap_seconds="0.2",
            intercom_rate_limit_per_window="1000000",
            log_level="WARNING",
            **self._settings,
        )
        self.url = f"http://{env['THREADLINE_BIND']}"
        self._log_file = self.log.open("ab")
        self._child = subprocess.Popen(
            [sys.executable, "-m", "actors", "serve"],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # a separate process: its readiness endpoint is the only signal
            if self._child.poll() is not None:
                raise RuntimeError(f"serve exited with {self._child.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve not ready in {START_TIMEOUT} s: {self.log_tail()}")
            time.sleep(0.05)
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=5.0)
        self._http = httpx.Client(limits=limits, timeout=timeout)
        self._pool = ThreadPoolExecutor(CONNECTIONS, thread_name_prefix="fuzz-send")
        path = self.database_url.removeprefix("sqlite:///")
        self._reader = (
            _SqliteReader(path)
            if self.database_url.startswith("sqlite:")
            else _PostgresReader(self.database_url)
        )

    def __exit__(self, *exc: object) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
            if self._http is not None:
                self._http.close()
                self._http = None
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        finally:
            try:
                self._stop_child()
            finally:
                if self._stop is not None and self._token is not None:
                    with contextlib.suppress(trio.RunFinishedError):
                        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
                self._thread.join(30)
                if self._log_file is not None:
                    self._log_file.close()
                    self._log_file = None

    def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is None or child.poll() is not None:
            return
        try:
            child.terminate()
            child.wait(STOP_GRACE)
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the child's log (its tracebacks, for a failure message)."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # --- calls into the helper Trio loop ------------------------------------------------------

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` in the helper Trio loop and return its result."""

        async def call() -> T:
            with trio.fail_after(REQUEST_TIMEOUT * 3):
                return await fn()

        return trio.from_thread.run(call, trio_token=self._token)

    # --- HTTP ---------------------------------------------------------------------------------

    def _url(self, request: Request) -> httpx.URL:
        url = httpx.URL(self.url + request.path)
        if request.query:
            # Raw bytes as a client puts them on the wire: anything outside printable ASCII
            # percent-encoded (existing escapes kept).
            query = quote_from_bytes(request.query, safe="!$&'()*+,;=:@/?%").encode()
            url = url.copy_with(query=query)
        return url

    def _one(self, request: Request) -> Reply:
        assert self._http is not None
        started = time.perf_counter()
        try:
            response = self._http.request(
                request.method, self._url(request), headers=request.headers, content=request.body
            )
        except httpx.TimeoutException as exc:
            if self.wedged_by is None:
                self.wedged_by = request.describe()
            raise BridgeWedged(f"no answer in {REQUEST_TIMEOUT} s to {request.describe()}") from exc
        seconds = time.perf_counter() - started
        return Reply(response.status_code, response.headers, response.text[:500], seconds)

    def send(self, requests: Sequence[Request]) -> list[Reply]:
        """Send ``requests`` concurrently (over :data:`CONNECTIONS` connections); their replies
        in the same order. A timeout wedges the bridge for all later calls."""
        if self.wedged_by is not None:
            raise BridgeWedged(f"the bridge stopped answering after {self.wedged_by}")
        assert self._pool is not None
        self.requests += len(requests)
        started = time.perf_counter()
        try:
            if len(requests) == 1:
                return [self._one(requests[0])]
            futures = [self._pool.submit(self._one, request) for request in requests]
            return [future.result() for future in futures]
        finally:
            self.sending += time.perf_counter() - started

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        query: bytes = b"",
    ) -> Reply:
        """One request over real HTTP."""
        return self.send([Request(method, path, headers or {}, body, query)])[0]

    def check_health(self) -> None:
        """``/healthz`` answers 200 within :data:`HEALTH_TIMEOUT`."""
        reply = self.request("GET", "/healthz")
        assert reply.status == 200, reply
        assert reply.seconds < HEALTH_TIMEOUT, f"/healthz took {reply.seconds:.2f} s"

    # --- the journal --------------------------------------------------------------------------

    def entries(self) -> int:
        """How many entries the journal holds (pending, done and dead)."""
        assert self._reader is not None
        return self._reader.value("SELECT count(*) FROM journal_entries")

    def last_entry(self) -> int:
        """The id of the newest entry (0 when none): it rises exactly when one is appended
        (a cheap index lookup, where ``count(*)`` reads the whole table)."""
        assert self._reader is not None
        return self._reader.value("SELECT coalesce(max(id), 0) FROM journal_entries")

    def pending(self) -> int:
        assert self._reader is not None
        return self._reader.value("SELECT count(*) FROM journal_entries WHERE status = 0")

    # --- a bridged thread to aim at -----------------------------------------------------------

    def bridged_whatsapp_thread(self, wa_id: str) -> str:
        """Send one WhatsApp message from ``wa_id``, wait until it is delivered, and return the
        Intercom conversation id."""
        built = whatsapp_webhook(
            SANDBOX_SECRETS.whatsapp_app_secret,
            SANDBOX_SECRETS.whatsapp_phone_number_id,
            [WhatsAppInbound(from_phone=wa_id, text="hello from the fuzz setup", name="Fuzz")],
        )
        reply = self.request("POST", "/webhooks/whatsapp", headers=built.headers, body=built.body)
        assert reply.status == 200, reply
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while True:
            conversations = self.run(self._conversations)
            # An entry is marked done only after its effect and the thread's state are stored.
            if conversations and self.pending() == 0:
                return str(conversations[0]["id"])
            assert time.monotonic() < deadline, f"not bridged: {self.log_tail()}"
            time.sleep(0.05)

    async def _conversations(self) -> list[dict[str, Any]]:
        return self._sandbox.intercom.conversations()

    def admin_reply_notification(self, conversation_id: str, body: str) -> dict[str, Any]:
        """A real ``conversation.admin.replied`` notification for ``conversation_id``, as the
        Intercom sandbox renders it (the part is added to the sandbox's conversation)."""
        core = self._sandbox.intercom.core

        async def build() -> dict[str, Any]:
            admin_id = next(iter(core.admins))
            conversation, part, topic = core.admin_action(
                conversation_id, admin_id, "comment", body, via_api=False
            )
            notification = core.notification(topic, core.conversation_item(conversation, [part]))
            return json.loads(json.dumps(notification))  # type: ignore[no-any-return]

        return self.run(build)
