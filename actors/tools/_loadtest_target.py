"""Where ``threadline loadtest`` runs (actors.tools._loadtest): a bridge and the sandboxes
started in this process, or a running bridge and ``threadline sandbox`` given by URL.

Either way the driver gets the same :class:`LoadTarget`: where the generator posts and how it
signs, the sandbox's control API (:class:`SandboxControl`), the checker's parts feed, and
readers of the bridge's retry and dead-letter counters and version (embedded: its Prometheus
registry; remote: its ``/metrics`` when ``--metrics`` is given, otherwise None: unknown).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from channels.sandbox import SandboxCredentials

from ._embedded import PUBLIC_URL, open_stack
from ._loadgen import PartsFeed, Target

if TYPE_CHECKING:
    from ._loadtest import LoadtestOptions

__all__ = ["LoadTarget", "LoadtestError", "SandboxControl", "open_target"]


class SandboxControl:
    """The sandbox's control and inspection API over HTTP (``threadline sandbox``'s root URL)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:  # noqa: ANN401 - JSON
        response = await self._http.request(method, path, **kwargs)
        if response.status_code != 200:
            raise LoadtestError(f"sandbox {method} {path}: {response.status_code} {response.text}")
        return response.json()

    async def config(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/intercom/_sandbox/config"))

    async def configure(self, changes: dict[str, Any]) -> None:
        if changes:
            await self._call("POST", "/intercom/_sandbox/config", json=changes)

    async def stats(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/intercom/_sandbox/stats"))

    async def delete_conversation(self, conversation_id: str) -> None:
        await self._call("POST", f"/intercom/_sandbox/conversations/{conversation_id}/delete")

    async def add_media(self, content: bytes, mime_type: str, filename: str) -> tuple[str, str]:
        """Register an image with the providers; (media id, Twilio media path)."""
        got = await self._call(
            "POST",
            "/_sandbox/media",
            params={"mime_type": mime_type, "filename": filename},
            content=content,
        )
        return str(got["id"]), str(got["twilio_media_path"])

    async def parts_since(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        got = await self._call(
            "GET", "/intercom/_sandbox/parts", params={"since": cursor, "limit": 5000}
        )
        return list(got["parts"]), int(got["next"])


class LoadtestError(Exception):
    """The load test could not run (an unreachable or misbehaving target or sandbox)."""


def _sum_samples(families: Any, name: str, **labels: str) -> float:  # noqa: ANN401 - iterable
    total = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def bridge_counters(families: Any) -> dict[str, int]:  # noqa: ANN401 - metric families
    """The bridge counters the report needs, from Prometheus metric families."""
    return {
        "retries": int(_sum_samples(families, "threadline_retry_attempts_total")),
        "dead_letters": int(_sum_samples(families, "threadline_dead_letters_total")),
    }


def bridge_version(families: Any) -> str | None:  # noqa: ANN401 - metric families
    """``version (commit)`` from the bridge's ``threadline_build_info``; None when absent."""
    for family in families:
        for sample in family.samples:
            if sample.name == "threadline_build_info":
                commit = sample.labels.get("commit") or ""
                found = str(sample.labels.get("version") or "unknown")
                return f"{found} ({commit})" if commit and commit != "unknown" else found
    return None


def _store(database_url: str | None) -> str:
    scheme = (database_url or "sqlite://").split(":", 1)[0].split("+", 1)[0]
    return "postgresql" if scheme in ("postgres", "postgresql") else scheme


@dataclass
class LoadTarget:
    """What the driver needs of where the load test runs."""

    target: Target
    control: SandboxControl
    feed: PartsFeed
    twilio_base: str
    viber_base: str = ""
    """THREADLINE_VIBER_BASE_URL of the sandbox (its media URLs are under it)."""
    read_counters: Callable[[], Awaitable[dict[str, int]]] | None = None
    read_version: Callable[[], Awaitable[str | None]] | None = None
    store: str = "unknown"
    mode: str = "embedded"
    notes: list[str] = field(default_factory=list)


@asynccontextmanager
async def _embedded(options: LoadtestOptions) -> AsyncIterator[LoadTarget]:
    workdir = Path(tempfile.mkdtemp(prefix="threadline-loadtest-"))
    registry = CollectorRegistry()
    database_url = options.database_url or f"sqlite:///{workdir / 'threadline.db'}"
    async with (
        open_stack(
            database_url=database_url,
            registry=registry,
            media_dir=str(workdir / "media"),
            shutdown_drain_seconds=5.0,
        ) as stack,
        httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30.0) as http,
    ):
        intercom = stack.sandbox.intercom

        async def feed(cursor: int) -> tuple[list[dict[str, Any]], int]:
            return intercom.parts_since(cursor)

        async def read() -> dict[str, int]:
            return bridge_counters(registry.collect())

        async def read_version() -> str | None:
            return bridge_version(registry.collect())

        creds = stack.sandbox.providers.credentials
        yield LoadTarget(
            target=Target(
                stack.node.ingress.url,
                PUBLIC_URL,
                creds.twilio_auth_token,
                creds.twilio_account_sid,
            ),
            control=SandboxControl(http),
            feed=feed,
            twilio_base=stack.settings.twilio_base_url,
            viber_base=stack.settings.viber_base_url,
            read_counters=read,
            read_version=read_version,
            store=_store(database_url),
            mode="embedded",
        )


@asynccontextmanager
async def _remote(options: LoadtestOptions) -> AsyncIterator[LoadTarget]:
    assert options.target is not None
    if options.sandbox is None:
        raise LoadtestError("--target needs --sandbox: the checker reads the sandbox Intercom")
    headers = {}
    if options.metrics_token:
        headers["authorization"] = f"Bearer {options.metrics_token}"
    async with (
        httpx.AsyncClient(base_url=options.sandbox, timeout=30.0) as http,
        httpx.AsyncClient(timeout=10.0, headers=headers) as metrics_http,
    ):
        control = SandboxControl(http)
        read = read_version = None
        notes = []
        if options.metrics:
            url = options.metrics.rstrip("/")
            url = url if url.endswith("/metrics") else url + "/metrics"

            async def scrape() -> str:
                response = await metrics_http.get(url)
                if response.status_code != 200:
                    raise LoadtestError(f"GET {url}: {response.status_code}")
                return response.text

            async def read() -> dict[str, int]:
                return bridge_counters(text_string_to_metric_families(await scrape()))

            async def read_version() -> str | None:
                return bridge_version(text_string_to_metric_families(await scrape()))

        else:
            notes.append("retries and dead_letters are unknown: pass --metrics URL to read them")
        creds = SandboxCredentials()
        yield LoadTarget(
            target=Target(
                options.target,
                options.public_url or options.target,
                creds.twilio_auth_token,
                creds.twilio_account_sid,
            ),
            control=control,
            feed=control.parts_since,
            twilio_base=options.sandbox.rstrip("/") + "/twilio",
            viber_base=options.sandbox.rstrip("/") + "/viber",
            read_counters=read,
            read_version=read_version,
            store="unknown (a remote bridge's own setting)",
            mode="remote",
            notes=notes,
        )


def open_target(options: LoadtestOptions) -> AbstractAsyncContextManager[LoadTarget]:
    """An embedded bridge and sandbox without ``options.target``, else the running ones."""
    return _embedded(options) if options.target is None else _remote(options)
