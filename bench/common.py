"""What several benchmark scripts share: CPU accounting, the machine's load and throwaway
PostgreSQL databases (and their server's process).

The scripts put the repository's root on ``sys.path`` and import this as ``bench.common``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["cpu_seconds", "postgres", "postmaster_pids", "uptime"]


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


def postmaster_pids(database_url: str | None) -> list[int]:
    """The throwaway server's postmaster (its data directory's postmaster.pid), if ours."""
    if database_url is None:
        return []
    port = database_url.rsplit(":", 1)[1].split("/")[0]
    for pidfile in Path(tempfile.gettempdir()).glob("threadline-pg-*/data/postmaster.pid"):
        lines = pidfile.read_text().splitlines()
        if len(lines) > 3 and lines[3].strip() == port:
            return [int(lines[0])]
    return []


def uptime() -> str:
    """``uptime``'s line: the machine's load when a figure was taken."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
