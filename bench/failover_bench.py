"""Failover benchmark: how long a dead node's threads wait before they deliver again.

Three ``threadline serve`` nodes share a throwaway PostgreSQL journal and the sandbox Intercom
(loopback HTTP); customers keep posting WhatsApp messages to them (each thread one message every
``--interval`` seconds, redelivering until answered 200, on to the next node when one does not
answer). Node 0 is killed with SIGKILL, then, once its threads deliver again, node 1.

Per kill: the partitions the victim held (its lease rows at the kill), the threads hashed to
them, and the time from the kill until every one of those threads has delivered again
(``resume_s``: its first new part in the sandbox Intercom), and the longest gap between two
parts of any thread around the kill (``max_gap_s``). At the end every acknowledged message must
be in Intercom exactly once and in order per thread (no doubles, no losses).

Two configurations are measured in the same run: ``fast`` (the defaults: dead nodes noticed
through their lease session, ``THREADLINE_TAKEOVER_POLL_SECONDS``) and ``expiry`` (the same
lease term, taken over only when the leases expire: the behaviour before). The target is 5 s.

Run: ``.venv/bin/python bench/failover_bench.py [--quick] [--json]`` (``--quick``: shorter load,
only ``fast``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.core import Settings  # noqa: E402
from actors.tools import SandboxApp  # noqa: E402
from runtime import hypercorn_config, open_postgres_journal, serve_asgi  # noqa: E402
from tests.actors.customers import delivered, webhook  # noqa: E402
from tests.actors.processes import ServeProcess, kill_leftovers, serve_env  # noqa: E402

TARGET_S = 5.0
THREAD_RE = re.compile(r"^thread (\d+) message (\d+)$")


@dataclass
class Load:
    """``threads`` customers, each posting its next message every ``interval`` seconds until
    stopped (finishing the message at hand: redelivered until a node answers 200)."""

    urls: list[str]
    threads: int
    interval: float
    run: str
    acked: dict[int, list[int]] = field(default_factory=dict)
    stopping: bool = False

    async def play(self) -> None:
        self.acked = {t: [] for t in range(self.threads)}
        async with httpx.AsyncClient(timeout=10.0) as client, trio.open_nursery() as nursery:
            for thread in range(self.threads):
                nursery.start_soon(self._customer, client, thread)

    async def _customer(self, client: httpx.AsyncClient, thread: int) -> None:
        target = thread
        seq = 0
        while not self.stopping:
            hook = webhook(self.run, thread, seq)
            while True:
                url = self.urls[target % len(self.urls)]
                target += 1
                try:
                    response = await client.post(
                        f"{url}/webhooks/whatsapp", content=hook.body, headers=hook.headers
                    )
                except httpx.TransportError:
                    await trio.sleep(0.05)
                    continue
                if response.status_code == 200:
                    self.acked[thread].append(seq)
                    break
                await trio.sleep(0.2)
            seq += 1
            await trio.sleep(self.interval)


class Parts:
    """Watches the sandbox Intercom: when each thread's part count last grew."""

    def __init__(self, sandbox: SandboxApp) -> None:
        self._sandbox = sandbox
        self.counts: dict[int, int] = {}
        self.grew: dict[int, list[float]] = {}  # thread -> monotonic times its count grew

    def look(self) -> None:
        now = time.monotonic()
        for bodies in delivered(self._sandbox.intercom.conversations()).values():
            match = THREAD_RE.match(bodies[0]) if bodies else None
            if match is None:
                continue
            thread = int(match.group(1))
            if len(bodies) > self.counts.get(thread, 0):
                self.counts[thread] = len(bodies)
                self.grew.setdefault(thread, []).append(now)

    async def watch(self) -> None:
        while True:
            self.look()
            await trio.sleep(0.05)

    def resumed(self, threads: set[int], since: float) -> float | None:
        """Seconds from ``since`` until each of ``threads`` grew again (None: not all yet)."""
        latest = 0.0
        for thread in threads:
            after = [t for t in self.grew.get(thread, []) if t > since + 0.1]
            if not after:
                return None
            latest = max(latest, after[0] - since)
        return latest

    def max_gap(self, threads: set[int], start: float, end: float) -> float:
        gap = 0.0
        for thread in threads:
            times = [start, *(t for t in self.grew.get(thread, []) if start < t < end)]
            gap = max(gap, *(b - a for a, b in itertools.pairwise(times)))
        return gap


def thread_of_key(key: str) -> int | None:
    match = re.search(r"1888(\d{7})", key)
    return None if match is None else int(match.group(1))


async def partitions_of_threads(url: str) -> dict[int, int]:
    async with open_postgres_journal(url, pool_size=1) as journal:
        rows = await journal._call(  # a benchmark reading the journal's table
            lambda conn: conn.fetch("SELECT DISTINCT key, partition FROM journal_entries"),
            write=False,
            what="bench",
        )
    found: dict[int, int] = {}
    for row in rows:
        thread = thread_of_key(str(row["key"]))
        if thread is not None:
            found[thread] = int(row["partition"])
    return found


async def held_by(url: str, owner: str) -> set[int]:
    async with open_postgres_journal(url, pool_size=1) as journal:
        leases = await journal.leases()
    return {x.partition for x in leases if x.live and x.owner == owner and x.partition >= 0}


def check(load: Load, conversations: list[dict[str, Any]]) -> dict[str, int]:
    """Doubles, losses and reorderings against what was acknowledged."""
    got: dict[int, list[int]] = {}
    for bodies in delivered(conversations).values():
        for body in bodies:
            match = THREAD_RE.match(body)
            if match is not None:
                got.setdefault(int(match.group(1)), []).append(int(match.group(2)))
    doubled = lost = reordered = 0
    for thread, acked in load.acked.items():
        seqs = got.get(thread, [])
        doubled += len(seqs) - len(set(seqs))
        lost += len(set(acked) - set(seqs))
        reordered += seqs != sorted(seqs)
    return {
        "acked": sum(map(len, load.acked.values())),
        "delivered": sum(map(len, got.values())),
        "doubled": doubled,
        "lost": lost,
        "threads_reordered": reordered,
    }


async def scenario(url: str, *, fast: bool, lease: float, threads: int, interval: float,
                   warmup: float, tmp: Path) -> dict[str, Any]:  # fmt: skip
    sandbox = SandboxApp()
    parts = Parts(sandbox)
    kills: list[dict[str, Any]] = []
    settings = {"lease_seconds": str(lease), "takeover_poll_seconds": "0.25" if fast else "0"}
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        nodes = [
            ServeProcess(
                serve_env(address.url, url, tmp, node_id=f"node-{i}", **settings),
                tmp / f"node-{i}.log",
            )
            for i in range(3)
        ]
        try:
            for node in nodes:
                await node.start()
            load = Load([n.url for n in nodes], threads, interval, run="fail" + str(int(fast)))
            nursery.start_soon(parts.watch)
            async with trio.open_nursery() as customers:
                customers.start_soon(load.play)
                await trio.sleep(warmup)
                for victim in (0, 1):
                    owner = f"node-{victim}"
                    held = await held_by(url, owner)
                    killed_at = time.monotonic()
                    await nodes[victim].kill()
                    resume: float | None = None
                    with trio.move_on_after(lease * 3 + 30):
                        while True:
                            keys = await partitions_of_threads(url)
                            victims = {t for t, p in keys.items() if p in held}
                            resume = parts.resumed(victims, killed_at)
                            if resume is not None:
                                break
                            await trio.sleep(0.2)
                    kills.append(
                        {
                            "victim": owner,
                            "partitions": len(held),
                            "threads": len(victims),
                            "resume_s": None if resume is None else round(resume, 2),
                            "max_gap_s": round(
                                parts.max_gap(victims, killed_at - 1, time.monotonic()), 2
                            ),
                        }
                    )
                    await trio.sleep(2.0)
                load.stopping = True
            with trio.move_on_after(lease * 3 + 30):  # the rest is delivered
                while sum(parts.counts.values()) < sum(map(len, load.acked.values())):  # noqa: ASYNC110 - sandbox state
                    await trio.sleep(0.1)
            await trio.sleep(1.5)  # anything doubled would show up now
        finally:
            for node in nodes:
                await node.stop()
            kill_leftovers()
        nursery.cancel_scope.cancel()
    result: dict[str, Any] = {"kills": kills, **check(load, sandbox.intercom.conversations())}
    resumes = [k["resume_s"] for k in kills]
    result["worst_resume_s"] = None if None in resumes else max(resumes)
    return result


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    from tests.postgres import throwaway_server  # the suite's fixture, outside pytest

    with throwaway_server() as server:
        yield server.create_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter load, fast failover only")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--database-url", help="a PostgreSQL server database to use")
    parser.add_argument(
        "--lease", type=float, default=Settings.model_fields["lease_seconds"].default
    )
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between messages")
    args = parser.parse_args()
    configs = [True] if args.quick else [True, False]
    result: dict[str, Any] = {"lease_seconds": args.lease, "target_s": TARGET_S}
    for fast in configs:
        with database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
            name = "fast" if fast else "expiry"
            run = functools.partial(
                scenario, url, fast=fast, lease=args.lease, threads=args.threads,
                interval=args.interval, warmup=3.0 if args.quick else 6.0, tmp=Path(tmp),
            )  # fmt: skip
            result[name] = trio.run(run)
    for name in ("fast", "expiry"):
        if name not in result:
            continue
        row = result[name]
        for kill in row["kills"]:
            resume = kill["resume_s"]
            ratio = "never" if resume is None else f"{resume / TARGET_S:.2f} x the 5-s target"
            print(
                f"{name}: kill -9 {kill['victim']} ({kill['partitions']} partitions,"
                f" {kill['threads']} threads): its threads delivered again after {resume} s"
                f" ({ratio}); longest gap {kill['max_gap_s']} s"
            )
        print(
            f"{name}: {row['acked']} acknowledged, {row['delivered']} delivered,"
            f" {row['doubled']} doubled, {row['lost']} lost,"
            f" {row['threads_reordered']} threads reordered"
        )
    worst = [result[name]["worst_resume_s"] for name in ("fast", "expiry") if name in result]
    if len(worst) == 2 and None not in worst:
        ratio = worst[1] / worst[0]
        print(f"worst resume: fast {result['fast']['worst_resume_s']} s, expiry"
              f" {result['expiry']['worst_resume_s']} s ({ratio:.1f} x faster)")  # fmt: skip
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
