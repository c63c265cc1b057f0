"""End-to-end fixtures: the sandboxes and a real bridge on loopback, per store backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.tools import Stack, open_stack
from tests.actors.processes import kill_leftovers
from tests.postgres import PostgresServer


@pytest.fixture(autouse=True)
def _no_serve_left_behind() -> Iterator[None]:
    """A test that fails midway leaves its ``serve`` children running: kill them, so they do
    not load the machine for the tests after it."""
    yield
    kill_leftovers()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each end-to-end test runs against both stores."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'threadline.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


def quick_stack(
    database_url: str,
    tmp_path: Path,
    **overrides: Any,  # noqa: ANN401 - Settings fields
) -> AbstractAsyncContextManager[Stack]:
    """The end-to-end stack with quick retries (and a short drain); ``overrides`` are more
    Settings fields."""
    settings: dict[str, Any] = {
        "shutdown_drain_seconds": 2.0,
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.2,
        **overrides,
    }
    return open_stack(database_url=database_url, media_dir=str(tmp_path / "media"), **settings)


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with quick_stack(database_url, tmp_path) as opened:
        yield opened


async def eventually(check: Callable[[], bool], *, seconds: float = 15.0) -> None:
    """Wait until ``check()`` holds: the sandbox is another party, with no event to await."""
    with trio.fail_after(seconds):
        while not check():  # noqa: ASYNC110 - polling another party's state: no event exists
            await trio.sleep(0.02)
