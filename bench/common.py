"""What several benchmark scripts share: the seeded sandbox process, CPU accounting, the
machine's load and throwaway PostgreSQL databases.

The scripts put the repository's root on ``sys.path`` and import this as ``bench.common``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import trio

from actors.tools import SandboxApp
from runtime import hypercorn_config, serve_asgi

__all__ = ["cpu_seconds", "postgres", "serve_sandbox", "uptime"]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` and all their descendants (a load-independent
    figure on a shared machine: what the work cost, not how long it waited for a core)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


async def serve_sandbox(
    port: int,
    threads: int,
    seeds: Path,
    rate_limit: int | None,
    *,
    phone: Callable[[int], str] = lambda t: f"1555{t:07d}",
    name: str = "Bench",
) -> None:
    """A sandbox Intercom (and providers) on ``port`` whose first ``threads`` contacts (phone
    ``+phone(t)``) and conversations exist already; their ids go to ``seeds`` as JSON."""
    app = SandboxApp()
    state = app.intercom.core.state
    now = time.time()
    pairs = []
    for t in range(threads):
        contact = state.create_contact(
            {"role": "lead", "phone": f"+{phone(t)}", "name": f"{name} {t}"}, now, strict=False
        )
        conversation = state.create_conversation(contact, "seed", [], now)
        pairs.append((contact.id, conversation.id))
    await trio.Path(seeds).write_text(json.dumps({"pairs": pairs, "parts": len(state.part_log)}))
    if rate_limit is not None:
        app.intercom.configure(rate_limit=rate_limit, rate_window_seconds=10.0)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, app, hypercorn_config(f"127.0.0.1:{port}"))
        app.intercom.public_url = address.url + "/intercom"
        print("ready", flush=True)


@contextlib.contextmanager
def postgres(url: str | None, cpus: str | None = "0") -> Iterator[Callable[[], str]]:
    """A fresh database per call: on ``url``'s server, or on a throwaway durable one (fsync on,
    as SQLite's ``synchronous=FULL``) pinned to ``cpus`` (None: not pinned)."""
    if url is not None:
        yield lambda: url
        return
    from tests.postgres import throwaway_server  # the suite's fixture, outside pytest

    with throwaway_server(durable=True, cpus=cpus) as server:
        yield server.create_database


def uptime() -> str:
    """``uptime``'s line: the machine's load when a figure was taken."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
