"""The Intercom sandbox: a stateful ASGI app speaking the part of Intercom's API the bridge
uses, with Intercom's awkward behaviour switchable, scripted teammates, and inspection.

Serve it with any ASGI server (Hypercorn's Trio worker in Threadline), mount it under a path
prefix (routes use ``scope["path"]``; absolute URLs use ``root_path``), or call its
in-process methods directly. It handles the ``lifespan`` scope: on startup it runs the
webhook outbox and the scripted auto-replies (:meth:`IntercomSandbox.run_background`).
HTTP goes through ``runtime``'s ASGI toolkit: a :class:`runtime.Router` whose fallback takes
every path, so that unknown ones are answered in Intercom's shape.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from runtime import Request, Response, Router

from ._api import Call, Reply, Route, match_route
from ._config import SandboxAdmin, SandboxConfig, decide_fault
from ._control import control
from ._core import DEFAULT_ADMINS, SandboxCore
from ._render import conversation_view, error_json, part_view
from ._state import SandboxApiError
from ._teammates import Teammates

__all__ = ["IntercomSandbox"]

_VERSIONS = frozenset(
    [f"1.{n}" for n in range(5)] + [f"2.{n}" for n in range(17)] + ["Preview", "Unstable"]
)
_MAX_BODY = 64 * 1024 * 1024  # the toolkit answers larger bodies 413 before a handler runs


class IntercomSandbox:
    """A fake Intercom workspace: the ASGI app is the instance itself (``sandbox.app``).

    Args:
        access_tokens: bearer tokens accepted (anything else gets 401 ``unauthorized``).
        admins: the workspace's teammates; the first is the token's admin (``/me``).
        config: initial switches (search lag, rate limit, faults, webhook target, …).
        clock: wall-clock UNIX time, for timestamps, rate windows and search lag.
        rng: seeded randomness for fault injection and ids.
        app_id: the workspace id (``app.id_code``, webhook ``app_id``).

    In-process: :attr:`config` (assign fields, validated), :attr:`teammates`,
    :meth:`contacts`, :meth:`conversations`, :meth:`conversation`, :meth:`parts_since`,
    :meth:`stats`, :meth:`delete_conversation`, :meth:`merge_contacts`, :meth:`reset`.
    Over HTTP, the same under ``/_sandbox/`` (see ``_control``).
    """

    def __init__(
        self,
        *,
        access_tokens: Sequence[str] = ("sandbox-token",),
        admins: Sequence[SandboxAdmin] = DEFAULT_ADMINS,
        config: SandboxConfig | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        app_id: str = "sandbox1",
    ) -> None:
        self.core = SandboxCore(
            config=config or SandboxConfig(),
            admins=admins,
            clock=clock,
            rng=rng or random.Random(0),  # noqa: S311 - fault injection, not cryptography
            app_id=app_id,
        )
        self._authorizations = frozenset(f"Bearer {t}" for t in access_tokens)
        self.teammates = Teammates(self.core)
        self._background_running = False
        self._router = Router(max_body_bytes=_MAX_BODY)
        self._router.add_fallback("intercom", self._http)

    # --- in-process API ---------------------------------------------------------------------

    @property
    def app(self) -> IntercomSandbox:
        """The ASGI application (the sandbox itself)."""
        return self

    @property
    def config(self) -> SandboxConfig:
        """The live configuration; assigning a field takes effect on the next request."""
        return self.core.config

    def configure(self, **changes: Any) -> SandboxConfig:  # noqa: ANN401 - validated by pydantic
        """Change several switches at once, validated before any of them applies."""
        merged = self.core.config.model_dump() | changes
        self.core.config = SandboxConfig.model_validate(merged)
        return self.core.config

    @property
    def public_url(self) -> str:
        """Where the sandbox is served (learnt from the last request when not set)."""
        return self.teammates.url_base

    @public_url.setter
    def public_url(self, url: str) -> None:
        self.teammates.url_base = url.rstrip("/")

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact, in creation order (``merged_into`` set for merged ones)."""
        return [
            {
                "id": c.id,
                "role": c.role,
                "external_id": c.external_id,
                "email": c.email,
                "phone": c.phone,
                "name": c.name,
                "custom_attributes": dict(c.custom_attributes),
                "created_at": c.created_at,
                "merged_into": c.merged_into,
            }
            for c in self.core.state.contacts.values()
        ]

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation with all its parts in order (source first); O(total parts)."""
        return [conversation_view(c) for c in self.core.state.conversations.values()]

    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """One conversation's inspection view (also when deleted), or None."""
        found = self.core.state.conversations.get(conversation_id)
        return None if found is None else conversation_view(found)

    def parts_since(self, cursor: int = 0, limit: int | None = None) -> tuple[list[Any], int]:
        """Parts created since ``cursor`` in creation order, and the next cursor."""
        log = self.core.state.part_log
        end = len(log) if limit is None else min(len(log), cursor + limit)
        return [part_view(p) for p in log[cursor:end]], end

    def stats(self) -> dict[str, Any]:
        """Request counts by endpoint and status, 429s, injected 5xx and timeouts, webhooks;
        with a rate limit, each window's limit and requests allowed and refused."""
        return {**self.core.stats.as_json(), "windows": self.core.limiter.windows()}

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete as a teammate would: later API calls on it get 404."""
        self.core.delete_conversation(conversation_id)

    def merge_contacts(self, from_id: str, into_id: str) -> None:
        """Merge ``from_id`` into ``into_id``: the former answers 410 with a canonical Link,
        and a ``contact.merged`` webhook (naming ``into_id``) is queued."""
        self.core.merge_contacts(from_id, into_id)

    def reset(self) -> None:
        """Forget all data and counters; configuration and admins stay."""
        self.core.reset()

    async def run_background(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver API-caused webhooks and run scripted auto-replies until cancelled.

        The ASGI lifespan runs this; when embedding the app without lifespan (or behind a
        router that does not forward it), start it yourself with ``nursery.start``. A second
        concurrent call only waits: one worker keeps deliveries in order.
        """
        if self._background_running:  # one worker keeps webhooks and replies in order
            task_status.started()
            await trio.sleep_forever()
        self._background_running = True
        try:
            await self.teammates.run_background(task_status=task_status)
        finally:
            self._background_running = False

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._router(scope, receive, send)

    async def _lifespan(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with trio.open_nursery() as nursery:
            if not self._background_running:
                await nursery.start(self.run_background)
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            nursery.cancel_scope.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, request: Request) -> Response:
        path = request.path
        root = request.root_path
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root) :] or "/"
        headers = dict(request.headers)
        url_base = f"{request.scheme}://{headers.get('host', 'localhost')}{root}"
        if not self.teammates.url_base:
            self.teammates.url_base = url_base
        body = request.body
        query = dict(parse_qsl(request.query_string.decode("latin-1")))
        if path.startswith("/_sandbox/"):
            reply = await control(self, request.method, path, query, body)
        else:
            reply = await self._api(request.method, path, headers, query, body, url_base)
        return _response(reply)

    def _error(self, code: str, message: str) -> dict[str, Any]:
        return error_json(code, message, self.core.request_id())

    async def _api(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        query: dict[str, str],
        raw: bytes,
        url_base: str,
    ) -> Reply:
        core = self.core
        route = match_route(method, path)
        core.stats.requests[route[0] if route is not None else "unknown"] += 1
        reply = await self._handle(route, headers, query, raw, url_base)
        core.stats.statuses[reply.status] += 1
        return reply

    async def _handle(
        self,
        route: Route | None,
        headers: dict[str, str],
        query: dict[str, str],
        raw: bytes,
        url_base: str,
    ) -> Reply:
        core = self.core
        config = core.config
        if headers.get("authorization") not in self._authorizations:
            return Reply(401, self._error("unauthorized", "Access Token Invalid"))
        version = headers.get("intercom-version")
        if version is None:  # Intercom falls back to the app's default version
            core.stats.without_version += 1
            version = "2.16"
        if version not in _VERSIONS:
            return Reply(400, self._error("intercom_version_invalid", "Version is invalid"))
        rate_headers: dict[str, str] = {}
        if config.rate_limit is not None:
            allowed, rate_headers = core.limiter.hit(
                config.rate_limit, config.rate_window_seconds, core.now()
            )
            if not allowed:
                core.stats.rate_limited += 1
                error = self._error("rate_limit_exceeded", "Rate limit exceeded")
                return Reply(429, error, rate_headers)
        reply = await self._faulty_or_handled(route, version, query, raw, url_base)
        reply.headers.update(rate_headers)
        return reply

    async def _faulty_or_handled(
        self,
        route: Route | None,
        version: str,
        query: dict[str, str],
        raw: bytes,
        url_base: str,
    ) -> Reply:
        core = self.core
        plan = decide_fault(core.config, core.rng)
        if plan.latency:
            await trio.sleep(plan.latency)
        if plan.hold is not None:
            core.stats.timeouts += 1
            await trio.sleep(plan.hold)
            return Reply(504, self._error("request_timeout", "The request timed out"))
        if plan.error_status is not None:
            core.stats.server_errors += 1
            code = "service_unavailable" if plan.error_status == 503 else "server_error"
            return Reply(plan.error_status, self._error(code, "Sandbox injected failure"))
        if route is None:
            return Reply(404, self._error("not_found", "Resource Not Found"))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return Reply(400, self._error("parameter_invalid", "Request body is not JSON"))
        endpoint, handler, params = route
        try:
            result = handler(core, Call(version, url_base, query, body), params)
        except SandboxApiError as exc:
            return Reply(exc.status, self._error(exc.code, exc.message), dict(exc.headers))
        delayed = core.config.answer_delay_endpoints
        if core.config.answer_delay_seconds and (not delayed or endpoint in delayed):
            await trio.sleep(core.config.answer_delay_seconds)
        return Reply(200, result)


def _response(reply: Reply) -> Response:
    """The toolkit's response for a reply: JSON, or bytes with the reply's content type."""
    headers = {k.lower(): v for k, v in reply.headers.items()}
    if isinstance(reply.body, bytes):
        content_type = headers.pop("content-type", "application/octet-stream")
        return Response(reply.status, reply.body, content_type, headers)
    payload = json.dumps(reply.body, separators=(",", ":")).encode()
    return Response(reply.status, payload, "application/json; charset=utf-8", headers)
