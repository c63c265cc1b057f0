"""The asyncio side of the PostgreSQL journal, as its Trio modules see it: the part of
trio-asyncio's loop they use, asyncpg's connection type, what a failure looks like from asyncpg
(:data:`FAILURES`) and which failures are the values' fault (:func:`is_permanent`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeAlias, TypeVar

import asyncpg

__all__ = [
    "FAILURES",
    "AioLoop",
    "Conn",
    "SessionConn",
    "count",
    "is_permanent",
    "log_loop_error",
]

T = TypeVar("T")
Conn: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
SessionConn: TypeAlias = "asyncpg.Connection[asyncpg.Record]"

logger = logging.getLogger("threadline.runtime.journal")

# What a lost, refused or broken connection (or a failed statement) looks like from asyncpg.
FAILURES: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,  # includes TimeoutError (connect, command and pool timeouts)
)


class AioLoop(Protocol):
    """The part of trio-asyncio's loop this module uses."""

    async def run_aio_coroutine(self, coro: Coroutine[Any, Any, T]) -> T: ...

    def set_exception_handler(
        self, handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
    ) -> None: ...

    def is_closed(self) -> bool: ...


def log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # trio-asyncio's default handler re-raises into the loop's nursery, which would take the
    # whole journal down for what asyncpg reports only as a warning (a failed cancel request,
    # a reset connection): log it instead.
    logger.warning(
        "asyncpg: %s",
        context.get("message", "error in event loop"),
        exc_info=context.get("exception"),
    )


def is_permanent(exc: Exception) -> bool:
    """Whether a write failed for its values, so the same write would fail again: a value
    asyncpg cannot encode (a ValueError, such as a lone surrogate), a data exception or a
    program limit from the server (SQLSTATE classes 22 and 54: a NUL in text, an index entry
    too large), or anything that is no database or connection failure at all."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate)[:2] in {"22", "54"}
    return isinstance(exc, ValueError | TypeError) or not isinstance(exc, FAILURES)


def count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[1])
