"""The shared awaiting edge: origin allow-lists, capped streaming downloads, error mapping.

Every URL is parsed with ``httpx.URL`` — the same parser that makes the request — so the
allow-list check and the request cannot disagree about the host.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, cast

import httpx
import trio

from ._errors import (
    ChannelError,
    MediaHostForbidden,
    MediaTooLarge,
    MediaUnavailable,
    SendInDoubt,
    SendRateLimited,
    SendRejected,
    SendTransient,
)

__all__ = [
    "Origin",
    "fetch_capped",
    "fetch_for_upload",
    "origin_of",
    "origins",
    "retry_after_seconds",
    "send",
    "transport_errors",
]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Origin:
    """``scheme://host:port`` of a URL, with the default port made explicit."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def origin_of(url: str | httpx.URL) -> Origin:
    """The origin of an absolute http(s) URL.

    Raises:
        MediaHostForbidden: relative, malformed or not http(s).
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        # ``host`` decodes punycode: an A-label that is not valid IDNA ("xn--zz") parses but
        # raises here (idna's errors are ValueErrors).
        host = parsed.host
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise MediaHostForbidden("media URL is not a valid URL") from exc
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise MediaHostForbidden("media URL is not an absolute http(s) URL")
    return Origin(scheme, host.lower(), parsed.port or _DEFAULT_PORTS[scheme])


def origins(urls: Iterable[str]) -> frozenset[Origin]:
    """Origins of configured base URLs (raises ValueError for a bad configured URL)."""
    result = set()
    for url in urls:
        try:
            result.add(origin_of(url))
        except MediaHostForbidden as exc:
            raise ValueError(f"not an absolute http(s) base URL: {url!r}") from exc
    return frozenset(result)


def check_allowed(
    url: str | httpx.URL, allowed: frozenset[Origin], suffixes: tuple[str, ...] = ()
) -> Origin:
    """The URL's origin when it is allowed: one of ``allowed``, or an ``https`` origin on port
    443 whose host is one of ``suffixes`` or ends with ``.`` and one of them (a CDN's hosts,
    such as Meta's ``scontent-*.xx.fbcdn.net``)."""
    found = origin_of(url)
    if found not in allowed and not _under(found, suffixes):
        raise MediaHostForbidden(f"media host {found.host}:{found.port} is not allowed")
    return found


def _under(origin: Origin, suffixes: tuple[str, ...]) -> bool:
    if origin.scheme != "https" or origin.port != 443:
        return False
    host = origin.host.rstrip(".")
    return any(host == suffix or host.endswith("." + suffix) for suffix in suffixes)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@asynccontextmanager
async def transport_errors(what: str) -> AsyncIterator[None]:
    """Turn httpx's failures without a response into SendTransient (no URL in the message:
    Telegram puts the bot token in the path)."""
    try:
        yield
    except httpx.ReadTimeout as exc:
        raise SendInDoubt(f"{what}: timed out waiting for the answer") from exc
    except httpx.TimeoutException as exc:
        raise SendTransient(f"{what}: timed out") from exc
    except httpx.RequestError as exc:  # transport, decoding and redirect-loop failures
        raise SendTransient(f"{what}: {type(exc).__name__}") from exc


async def send(client: httpx.AsyncClient, request: httpx.Request, what: str) -> httpx.Response:
    """Send a built request, reading the whole (small, JSON) response."""
    async with transport_errors(what):
        return await client.send(request)


def download_error(status: int, what: str, retry_after: str | None) -> ChannelError:
    """Classify a non-2xx answer to a media download."""
    if status == 429:
        return SendRateLimited(
            f"{what}: rate limited", status=status, retry_after=retry_after_seconds(retry_after)
        )
    if status >= 500:
        return SendTransient(f"{what}: HTTP {status}", status=status)
    if status in (404, 410):
        return MediaUnavailable(f"{what}: media not found or expired", status=status)
    return SendRejected(f"{what}: HTTP {status}", status=status)


async def fetch_capped(
    client: httpx.AsyncClient,
    url: str,
    *,
    allowed: frozenset[Origin],
    max_bytes: int,
    what: str,
    auth_for: Mapping[Origin, Mapping[str, str]] | None = None,
    allowed_suffixes: tuple[str, ...] = (),
) -> tuple[bytes, str | None]:
    """GET ``url`` following redirects only within ``allowed`` (and the https hosts under
    ``allowed_suffixes``, see :func:`check_allowed`), reading at most ``max_bytes``.

    Headers in ``auth_for[origin]`` are sent only to that origin, so credentials never follow a
    redirect elsewhere (the injected client must carry no default auth headers of its own).
    A declared Content-Length over the cap fails before reading; otherwise reading stops as
    soon as the cap is passed.

    Returns:
        The body and the response's Content-Type (None when absent).
    Raises:
        MediaHostForbidden, MediaTooLarge, MediaUnavailable, SendRateLimited, SendTransient,
        SendRejected.
    """
    origin_of(url)  # a malformed URL is refused before httpx sees it
    target = httpx.URL(url)
    for _ in range(_MAX_REDIRECTS + 1):
        origin = check_allowed(target, allowed, allowed_suffixes)
        headers = {"Accept-Encoding": "identity", **(auth_for or {}).get(origin, {})}
        request = client.build_request("GET", target, headers=headers)
        async with transport_errors(what):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    try:
                        target = target.join(response.headers["location"])
                    except httpx.InvalidURL as exc:
                        raise MediaHostForbidden(f"{what}: malformed redirect") from exc
                    continue
                if not response.is_success:
                    raise download_error(
                        response.status_code, what, response.headers.get("retry-after")
                    )
                return await _read_capped(response, max_bytes, what), response.headers.get(
                    "content-type"
                )
            finally:
                await response.aclose()
    raise SendRejected(f"{what}: more than {_MAX_REDIRECTS} redirects")


async def fetch_for_upload(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, seconds: float, what: str
) -> bytes:
    """The file at ``url``, fetched to send it on (its own origin only, no credentials, at
    most ``max_bytes`` and ``seconds``).

    Raises:
        MediaUnavailable (also when it takes longer), MediaTooLarge, MediaHostForbidden,
        SendTransient (a transport failure: nothing was sent yet, safe to repeat), ….
    """
    with trio.move_on_after(seconds):
        try:
            content, _ = await fetch_capped(
                client, url, allowed=frozenset({origin_of(url)}), max_bytes=max_bytes, what=what
            )
        except SendInDoubt as exc:  # a read: nothing was sent yet, safe to repeat
            raise SendTransient(str(exc)) from exc
        return content
    raise MediaUnavailable(f"{what}: timed out after {seconds:g} s")


async def _read_capped(response: httpx.Response, max_bytes: int, what: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdecimal() and (len(declared) > 18 or int(declared) > max_bytes):
        raise MediaTooLarge(f"{what}: {declared} bytes declared, cap is {max_bytes}")
    chunks: list[bytes] = []
    total = 0
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        # We asked for identity; refusing anything else also rules out decompression bombs.
        raise SendRejected(f"{what}: unexpected content-encoding {encoding[:20]!r}")
    # Close our generator explicitly (trio warns about abandoned ones); the caller's
    # response.aclose() then drops the connection. httpx annotates it as an AsyncIterator.
    raw = cast("AsyncGenerator[bytes, None]", response.aiter_raw())
    async with aclosing(raw) as stream:
        async for chunk in stream:
            total += len(chunk)
            if total > max_bytes:
                raise MediaTooLarge(f"{what}: more than {max_bytes} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
