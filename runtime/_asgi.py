"""A minimal ASGI toolkit: read a capped body, route, answer.

Deliberately small: the ingress has a handful of fixed routes, and owning this layer keeps the
hot path free of framework overhead and every status code decided in one place.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Scope,
)

__all__ = [
    "BodyTooLarge",
    "Handler",
    "Request",
    "Response",
    "Router",
    "json_response",
    "text_response",
]

logger = logging.getLogger("threadline.http")


class BodyTooLarge(Exception):
    """The request body exceeded the cap (answered 413)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request with its whole (capped) body."""

    method: str
    path: str
    query_string: bytes
    headers: Mapping[str, str]
    """Lower-cased names; repeated headers joined with ", "."""
    body: bytes
    root_path: str = ""
    """Where the app is mounted (ASGI ``root_path``); ``path`` is as the server gave it."""
    scheme: str = "http"

    def query(self) -> list[tuple[str, str]]:
        """The query parameters, in order."""
        return parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(slots=True)
class Response:
    """What a handler answers."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    drip_seconds: float = 0.0
    """When > 0, the body goes out a byte at a time with this pause after each (the sandboxes'
    slow servers)."""


def text_response(status: int, text: str, **headers: str) -> Response:
    """A plain-text answer (a one-line reason for 4xx)."""
    return Response(status, (text + "\n").encode(), headers=dict(headers))


def json_response(status: int, payload: object, **headers: str) -> Response:
    """A JSON answer."""
    return Response(
        status,
        json.dumps(payload, separators=(",", ":")).encode(),
        "application/json",
        dict(headers),
    )


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """Exact-path routing by (method, path) plus prefix routes and an optional fallback; an
    ASGI app.

    Args:
        max_body_bytes: larger bodies are refused with 413 before a handler runs.
        body_timeout: seconds from the request head to the end of its body; a client still
            sending then is answered 408 and the connection closes (a per-read timeout alone
            lets a client dribble a byte at a time for ever).
        on_response: called with (route name, response, seconds) for every answered request
            (metrics, logs); the seconds run from the request head until the answer is ready.
    """

    def __init__(
        self,
        *,
        max_body_bytes: int,
        body_timeout: float = 15.0,
        on_response: Callable[[str, Response, float], None] | None = None,
    ) -> None:
        self._routes: dict[str, dict[str, tuple[str, Handler]]] = {}
        self._prefixes: list[tuple[str, str, str, Handler]] = []
        self._fallback: tuple[str, Handler] | None = None
        self._max = max_body_bytes
        self._body_timeout = body_timeout
        self._on_response = on_response

    def add(self, method: str, path: str, name: str, handler: Handler) -> None:
        """Route ``method path`` to ``handler``; ``name`` labels its metrics."""
        self._routes.setdefault(path, {})[method] = (name, handler)

    def add_prefix(self, method: str, prefix: str, name: str, handler: Handler) -> None:
        """Route every path under ``prefix`` (for ``/media/<token>``)."""
        self._prefixes.append((method, prefix, name, handler))

    def add_fallback(self, name: str, handler: Handler) -> None:
        """Route every request whose path no other route knows, whatever its method (a fake
        API that answers unknown paths in its own shape); without one they are answered 404."""
        self._fallback = (name, handler)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not served
        started = time.perf_counter()
        name, response = await self._dispatch(scope, receive)
        if self._on_response is not None:
            self._on_response(name, response, time.perf_counter() - started)
        await _send(send, response)

    async def _dispatch(
        self, scope: HTTPScope, receive: ASGIReceiveCallable
    ) -> tuple[str, Response]:
        path = scope["path"]
        method = scope["method"]
        methods = self._routes.get(path)
        if methods is None:
            for m, prefix, name, handler in self._prefixes:
                if path.startswith(prefix) and m == method:
                    methods = {method: (name, handler)}
                    break
        # A 404 or 405 leaves the request's body unread, so the server cannot reuse the
        # connection: say so, as the 413 does, or a keep-alive client's next request meets a
        # closed socket instead of an answer.
        unread = {"connection": "close"} if _has_body(scope) else {}
        if methods is None and self._fallback is not None:
            methods = {method: self._fallback}
        if methods is None:
            return "unknown", text_response(404, "not found", **unread)
        route = methods.get(method)
        if route is None:
            allow = ", ".join(sorted(methods))
            return "unknown", text_response(405, "method not allowed", allow=allow, **unread)
        name, handler = route
        try:
            with trio.fail_after(self._body_timeout):
                body = await _read_body(receive, self._max, scope)
        except BodyTooLarge:
            # The rest of the body is never read, so the server cannot reuse the connection:
            # say so, or a keep-alive client sends its next request into a closed socket.
            message = f"request body exceeds {self._max} bytes"
            return name, text_response(413, message, connection="close")
        except trio.TooSlowError:
            reason = f"request body not received within {self._body_timeout:g} s"
            return name, text_response(408, reason, connection="close")
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            key = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = Request(
            method,
            path,
            scope["query_string"],
            headers,
            body,
            scope.get("root_path", ""),
            scope.get("scheme", "http"),
        )
        try:
            return name, await handler(request)
        except Exception:  # the last line of defence: a bug of ours, never the caller's fault
            logger.exception("unhandled error in %s", name)
            return name, text_response(500, "internal error")


def _has_body(scope: HTTPScope) -> bool:
    """Whether the request announces a body (a non-zero length, or chunks)."""
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.lower()
        if name == b"transfer-encoding" or (
            name == b"content-length" and raw_value.strip() != b"0"
        ):
            return True
    return False


async def _read_body(receive: ASGIReceiveCallable, limit: int, scope: HTTPScope) -> bytes:
    for raw_name, raw_value in scope["headers"]:
        if raw_name.lower() == b"content-length":
            try:
                if int(raw_value) > limit:
                    raise BodyTooLarge
            except ValueError:
                pass  # h11 has already refused malformed lengths; be lenient here
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] != "http.request":
            break  # the client went away
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not event.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: ASGISendCallable, response: Response) -> None:
    # A known length spares Hypercorn the chunked framing and its extra terminating send.
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", b"%d" % len(response.body)),
    ]
    headers.extend((k.encode(), v.encode()) for k, v in response.headers.items())
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": response.status,
        "headers": headers,
        "trailers": False,
    }
    await send(start)
    if response.drip_seconds > 0:
        await _drip(send, response)
        return
    body: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": response.body,
        "more_body": False,
    }
    await send(body)


async def _drip(send: ASGISendCallable, response: Response) -> None:
    for i in range(len(response.body)):
        chunk: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": response.body[i : i + 1],
            "more_body": True,
        }
        await send(chunk)
        await trio.sleep(response.drip_seconds)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lifespan(receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
