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
from runtime import PostgresJournal, hypercorn_config, open_postgres_journal, serve_asgi  # noqa: E402
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
    acked_at: dict[tuple[int, int], float] = field(default_factory=dict)  # monotonic
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
                    self.acked_at[thread, seq] = time.monotonic()
                    break
                await trio.sleep(0.2)
            seq += 1
            await trio.sleep(self.interval)


class Parts:
    """Watches the sandbox Intercom: when each message was first seen there."""

    def __init__(self, sandbox: SandboxApp) -> None:
        self._sandbox = sandbox
        self.seen: dict[tuple[int, int], float] = {}  # (thread, seq) -> monotonic

    def look(self) -> None:
        now = time.monotonic()
        for bodies in delivered(self._sandbox.intercom.conversations()).values():
            for body in bodies:
                match = THREAD_RE.match(body)
                if match is not None:
                    self.seen.setdefault((int(match.group(1)), int(match.group(2))), now)

    async def watch(self) -> None:
        while True:
            self.look()
            await trio.sleep(0.05)

    def resumed(self, threads: set[int], since: float, load: Load) -> float | None:
        """Seconds from ``since`` (the kill) until each of ``threads`` delivered again, counted
        for each thread's first message delivered after ``since`` from when it could have been:
        the kill, or its acknowledgement if later (the customer's own pace is not failover).
        None: not every thread has yet."""
        worst = 0.0
        for thread in threads:
            after = [
                (at, seq) for (t, seq), at in self.seen.items() if t == thread and at > since + 0.1
            ]
            if not after:
                return None
            at, seq = min(after)
            ready = max(since, load.acked_at.get((thread, seq), since))
            worst = max(worst, at - ready)
        return worst

    def max_gap(self, threads: set[int], start: float, end: float) -> float:
        """The longest time any of ``threads`` went without a new part in ``[start, end]``."""
        gap = 0.0
        for thread in threads:
            times = sorted(
                at for (t, _), at in self.seen.items() if t == thread and start < at < end
            )
            gap = max(gap, *(b - a for a, b in itertools.pairwise([start, *times])))
        return gap


def thread_of_key(key: str) -> int | None:
    match = re.search(r"1888(\d{7})", key)
    return None if match is None else int(match.group(1))


async def partitions_of_threads(journal: PostgresJournal) -> dict[int, int]:
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


class Watcher:
    """The benchmark's own journal connection, for reading leases and entries."""

    journal: PostgresJournal

    async def __call__(self, url: str, *, task_status: trio.TaskStatus[None]) -> None:
        async with open_postgres_journal(url, pool_size=2) as journal:
            self.journal = journal
            task_status.started()
            await trio.sleep_forever()


def balanced(held: dict[str, set[int]]) -> bool:
    return len(held) == 3 and min(map(len, held.values())) >= 64 // 3 - 2


async def holdings(journal: PostgresJournal) -> dict[str, set[int]]:
    """Live partition leases by owner."""
    held: dict[str, set[int]] = {}
    for lease in await journal.leases():
        if lease.live and lease.partition >= 0:
            held.setdefault(lease.owner, set()).add(lease.partition)
    return held


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
    watcher = Watcher()
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
            await nursery.start(watcher, url)
            journal = watcher.journal
            with trio.move_on_after(lease * 6):  # balanced: each node near its fair share
                while not balanced(await holdings(journal)):  # noqa: ASYNC110 - database state
                    await trio.sleep(0.2)
            load = Load([n.url for n in nodes], threads, interval, run="fail" + str(int(fast)))
            nursery.start_soon(parts.watch)
            async with trio.open_nursery() as customers:
                customers.start_soon(load.play)
                # Steady state first: every customer's contact and conversation exist (a kill
                # while one is being created costs Intercom's search lag, not failover).
                with trio.move_on_after(60):
                    while len({t for t, _ in parts.seen}) < threads:  # noqa: ASYNC110 - sandbox state
                        await trio.sleep(0.1)
                await trio.sleep(warmup)
                for victim in (0, 1):
                    owner = f"node-{victim}"
                    held = (await holdings(journal)).get(owner, set())
                    killed_at = time.monotonic()
                    await nodes[victim].kill()
                    resume: float | None = None
                    owned_again: float | None = None
                    victims: set[int] = set()
                    with trio.move_on_after(lease * 3 + 30):
                        while True:
                            if owned_again is None and owner not in await holdings(journal):
                                owned_again = time.monotonic() - killed_at
                            keys = await partitions_of_threads(journal)
                            victims = {t for t, p in keys.items() if p in held}
                            resume = parts.resumed(victims, killed_at, load)
                            if resume is not None and owned_again is not None:
                                break
                            await trio.sleep(0.05)
                    kills.append(
                        {
                            "victim": owner,
                            "partitions": len(held),
                            "threads": len(victims),
                            "owned_again_s": None if owned_again is None else round(owned_again, 2),
                            "resume_s": None if resume is None else round(resume, 2),
                            "max_gap_s": round(
                                parts.max_gap(victims, killed_at - 1, time.monotonic()), 2
                            ),
                        }
                    )
                    await trio.sleep(2.0)
                load.stopping = True
            with trio.move_on_after(lease * 3 + 30):  # the rest is delivered
                while len(parts.seen) < sum(map(len, load.acked.values())):  # noqa: ASYNC110 - sandbox state
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
    if url is not None:  # a fresh database on that server for each configuration
        import asyncio
        import uuid

        import asyncpg

        name = f"failover_{uuid.uuid4().hex[:12]}"

        async def create() -> None:
            conn = await asyncpg.connect(url)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        asyncio.run(create())
        yield url.rsplit("/", 1)[0] + "/" + name
        return
    from tests.postgres import throwaway_server  # the suite's fixture, outside pytest

    with throwaway_server() as server:
        yield server.create_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter load, fast failover only")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--database-url", help="a PostgreSQL server to use (one of its databases)")
    parser.add_argument(
        "--lease", type=float, default=Settings.model_fields["lease_seconds"].default
    )
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between messages")
    parser.add_argument("--logs", type=Path, help="keep the nodes' logs in this directory")
    args = parser.parse_args()
    configs = [True] if args.quick else [True, False]
    result: dict[str, Any] = {"lease_seconds": args.lease, "target_s": TARGET_S}
    for fast in configs:
        with database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
            name = "fast" if fast else "expiry"
            if args.logs is not None:
                tmp = str(args.logs / name)
                Path(tmp).mkdir(parents=True, exist_ok=True)
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
                f" {kill['threads']} threads): its partitions owned again after"
                f" {kill['owned_again_s']} s, its threads delivered again after {resume} s"
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
