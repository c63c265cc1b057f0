"""PostgreSQL journal capacity: how many appends and completions per second one database takes,
from one node and from two (separate processes, as two ``serve`` nodes), without HTTP or
Intercom in the way. The figures docs/scaling.md sizes a cluster with.

Each node process opens the journal as ``threadline serve`` does (``open_postgres_journal``) and
runs ``--callers`` tasks, each appending one entry at a time (as concurrent webhooks do: the
group commit batches them) for ``--seconds``; then, in a second phase, the same tasks complete
the entries they appended (one transaction each, fenced by the node's lease on the partition,
as a delivery's ``complete`` is). Reported per phase: operations/s summed over the nodes, append
transactions (group commits) per second and rows per commit; the NOTIFYs sent are one per
partition touched per append transaction.

Appends from every node serialise on one advisory lock (append order is commit order across
the cluster, ``runtime/_postgres/appends.py``), so the append rate of two nodes shows whether
that lock, not a node's CPU, is the ceiling.

A throwaway PostgreSQL server (fsync on) is started unless ``--database-url`` names a database.
Run: ``.venv/bin/python bench/journal_bench.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime import Fence, NewEntry, open_postgres_journal, partition_of  # noqa: E402


async def node(url: str, name: str, callers: int, seconds: float, start_at: float) -> None:
    """One node: appends for ``seconds``, then completes; prints one JSON line."""
    async with open_postgres_journal(url) as journal:
        fences: dict[int, Fence] = {}
        ids: list[int] = []
        appended = 0
        await trio.sleep(max(0.0, start_at - time.time()))
        commits_before = journal.commits

        async def appender(caller: int) -> None:
            nonlocal appended
            number = 0
            deadline = trio.current_time() + seconds
            while trio.current_time() < deadline:
                key = f"{name}:{caller}:{number % 50}"
                (done,) = await journal.append([NewEntry(key, f"{name}:{caller}:{number}", b"x")])
                ids.append(done.id)
                appended += 1
                number += 1

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for caller in range(callers):
                nursery.start_soon(appender, caller)
        append_s = time.perf_counter() - started
        commits = journal.commits - commits_before
        # Completions, fenced as deliveries are: this node leases the partitions it wrote.
        entries = await journal.read_pending(after_id=0, limit=len(ids) + 1000)
        mine = [e for e in entries if e.key.startswith(f"{name}:")]
        for part in {partition_of(e.key, journal.partitions) for e in mine}:
            fence = await journal.acquire_lease(part, name, ttl=600)
            if fence is not None:
                fences[part] = fence
        queue = [(e.id, fences.get(partition_of(e.key, journal.partitions))) for e in mine]
        completed = 0

        async def completer() -> None:
            nonlocal completed
            while queue:
                entry_id, fence = queue.pop()
                await journal.complete(entry_id, fence=fence)
                completed += 1

        started = time.perf_counter()
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as nursery:
                for _ in range(callers):
                    nursery.start_soon(completer)
        complete_s = time.perf_counter() - started
    print(json.dumps({"appended": appended, "append_s": append_s, "commits": commits,
                      "completed": completed, "complete_s": complete_s}), flush=True)  # fmt: skip


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    from tests.postgres import throwaway_server  # the suite's fixture, outside pytest

    with throwaway_server(durable=True) as server:
        yield server.create_database()


def run(url: str, nodes: int, callers: int, seconds: float) -> dict[str, Any]:
    start_at = time.time() + 3.0  # every node connected and its schema checked by then
    command = [sys.executable, __file__, "--url", url, "--callers", str(callers),
               "--seconds", str(seconds), "--start-at", str(start_at)]  # fmt: skip
    processes = [
        subprocess.Popen(  # noqa: S603 - this script, fixed arguments
            [*command, "--node", f"n{nodes}x{i}"], stdout=subprocess.PIPE, text=True
        )
        for i in range(nodes)
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=seconds * 4 + 120)
        results.append(json.loads(out.strip().splitlines()[-1]))
    appended = sum(r["appended"] for r in results)
    commits = sum(r["commits"] for r in results)
    return {
        "nodes": nodes,
        "appends_per_s": sum(r["appended"] / r["append_s"] for r in results),
        "append_commits_per_s": sum(r["commits"] / r["append_s"] for r in results),
        "rows_per_commit": appended / max(1, commits),
        "completes_per_s": sum(r["completed"] / r["complete_s"] for r in results),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--database-url", help="a PostgreSQL database to use")
    parser.add_argument("--callers", type=int, default=64, help="concurrent callers per node")
    parser.add_argument("--seconds", type=float, help="per phase (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 2, quick 1)")
    parser.add_argument("--node", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    if args.node:
        trio.run(node, args.url, args.node, args.callers, seconds, args.start_at)
        return
    rounds = args.rounds or (1 if args.quick else 2)
    best: dict[int, dict[str, Any]] = {}
    with database(args.database_url) as url:
        for _ in range(rounds):
            for nodes in (1, 2):
                result = run(url, nodes, args.callers, seconds)
                print(f"  {nodes} node(s): {result['appends_per_s']:,.0f} appends/s, "
                      f"{result['completes_per_s']:,.0f} completes/s ({result['uptime']})",
                      file=sys.stderr)  # fmt: skip
                if nodes not in best or result["appends_per_s"] > best[nodes]["appends_per_s"]:
                    best[nodes] = result
    print(
        f"journal benchmark: PostgreSQL (fsync on), {args.callers} callers per node, "
        f"{seconds:g} s per phase, best of {rounds} rounds; nothing pinned"
    )
    for nodes, r in sorted(best.items()):
        print(
            f"  {nodes} node(s): {r['appends_per_s']:>7,.0f} appends/s in "
            f"{r['append_commits_per_s']:,.0f} append commits/s ({r['rows_per_commit']:.1f} rows "
            f"and as many partition NOTIFYs at most per commit); {r['completes_per_s']:>7,.0f} "
            f"fenced completes/s   ({r['uptime']})"
        )
    ratio = best[2]["appends_per_s"] / best[1]["appends_per_s"]
    print(f"  appends/s, 2 nodes vs 1: {ratio:.2f} x")
    if args.json:
        print(json.dumps({str(n): r for n, r in best.items()}))


if __name__ == "__main__":
    main()
