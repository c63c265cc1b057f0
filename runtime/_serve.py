"""Serve an ASGI app on Hypercorn's Trio worker inside the caller's nursery."""

from __future__ import annotations

import functools
import gc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import Framework

__all__ = ["BoundAddress", "freeze_startup_heap", "hypercorn_config", "serve_asgi"]


@dataclass(frozen=True, slots=True)
class BoundAddress:
    """Where a server actually listens (the real port when asked for port 0)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def hypercorn_config(bind: str, **options: object) -> Config:
    """A Hypercorn config bound to ``bind`` (``host:port``), quiet by default.

    ``options`` set Config attributes (for example ``keep_alive_timeout``,
    ``h11_max_incomplete_size``, ``graceful_timeout``).
    """
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = None
    for name, value in options.items():
        if not hasattr(config, name):
            raise AttributeError(f"hypercorn Config has no option {name!r}")
        setattr(config, name, value)
    return config


async def serve_asgi(
    app: Framework,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[BoundAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled or until ``shutdown_trigger`` returns.

    Reports the bound address through ``task_status`` once the socket listens, so
    ``await nursery.start(serve_asgi, app, hypercorn_config("127.0.0.1:0"))`` returns a usable
    address with no polling. A shutdown trigger lets in-flight requests finish within
    Hypercorn's ``graceful_timeout``; cancellation stops at once.
    """
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=shutdown_trigger, mode="asgi")
        )
        parts = urlsplit(binds[0])
        assert parts.hostname is not None
        assert parts.port is not None
        task_status.started(BoundAddress(parts.hostname, parts.port))


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now out of the garbage collector's reach.

    Call it once a long-running server has started. Everything imported and built at start-up
    (modules, pydantic models, the Prometheus registry, Hypercorn's config) lives as long as the
    process, yet a full collection walks all of it again and again: on the bridge's ingress
    under load that paused the event loop for ~43 ms, ~3 ms once frozen
    (``bench/ingress_bench.py --freeze-pairs``). Frozen objects are never collected, so call it
    after start-up, not per request. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
