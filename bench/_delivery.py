"""The delivery benchmark's machinery: a journal backlog for the seeded threads, a bridge
process (core 0) draining it into the sandbox while its parts are checked and its CPU counted,
and the bare httpx client that is its baseline."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from actors.bridge import InboundJob, encode_job
from actors.tools import SANDBOX_SECRETS
from bench._processes import ROOT, Process, bridge_env, ready_at
from bench._sandbox import PartsChecker, Sandbox, seed_thread_states, whatsapp_message
from bench.common import cpu_seconds, postmaster_pids
from channels import InboundMessage
from intercom import PooledTransport
from runtime import NewEntry, PostgresJournal, SQLiteJournal

__all__ = [
    "CONNECTIONS",
    "bare_client",
    "bare_rate",
    "delivery_env",
    "drain_backlog",
    "fill_journal",
    "run_bridge",
]

CONNECTIONS = 64


def _message(thread: int, seq: int) -> InboundMessage:
    return whatsapp_message(
        f"1555{thread:07d}",
        f"[bench {thread}:{seq}] message {seq} of thread {thread}",
        f"wamid.bench{thread:07d}{seq:06d}",
    )


async def fill_journal(
    path: Path, pairs: list[tuple[str, str]], messages: int, future: bool, url: str | None = None
) -> None:
    """Thread states for every seeded thread, then ``messages`` pending entries per thread,
    interleaved across threads as webhooks would arrive. In the PostgreSQL database ``url``
    when given, else in the SQLite file ``path``."""
    offset = 3600.0 if future else 0.0
    journal: SQLiteJournal | PostgresJournal = (
        SQLiteJournal(path, wall_clock=lambda: time.time() + offset)
        if url is None
        else PostgresJournal(url, wall_clock=lambda: time.time() + offset)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        keys = [str(_message(t, 0).key) for t in range(len(pairs))]
        await seed_thread_states(journal, keys, pairs)
        batch: list[NewEntry] = []
        received = time.time() + offset
        for seq in range(messages):
            for t, key in enumerate(keys):
                job = InboundJob(message=_message(t, seq), received_at=received)
                batch.append(NewEntry(key, f"whatsapp:bench:{t}:{seq}", encode_job(job)))
                if len(batch) >= 2000:
                    await journal.append(batch)
                    batch = []
        if batch:
            await journal.append(batch)
        nursery.cancel_scope.cancel()


def delivery_env(
    workdir: Path, sandbox: Sandbox, database_url: str | None = None, **extra: str
) -> tuple[dict[str, str], str, str]:
    """:func:`bench._processes.bridge_env` on ``database_url``, else ``workdir``'s SQLite file."""
    database = database_url or f"sqlite:///{workdir / 'journal.db'}"
    return bridge_env(workdir, sandbox.url, database, **extra)


async def drain(
    sandbox: Sandbox,
    expected: int,
    *,
    bridge: Process,
    seconds: float,
    database_pids: list[int] | None = None,
) -> dict[str, Any]:
    """Follow the sandbox's parts until ``expected`` arrived; check order per thread. Also the
    CPU the bridge (and the database server) spent from the first delivery seen to the last."""
    cpu_from: tuple[int, float, float] | None = None
    checker = PartsChecker(sandbox, "bench")
    peak_rss = 0
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30.0) as http:
        with trio.move_on_after(seconds):
            while len(checker.seen) < expected:
                new = await checker.poll(http)
                peak_rss = max(peak_rss, bridge.status("VmRSS"))
                if cpu_from is None and checker.seen:
                    cpu_from = (len(checker.seen), cpu_seconds([bridge.popen.pid]),
                                cpu_seconds(database_pids or []))  # fmt: skip
                if not new:
                    await trio.sleep(0.25)
    delivered = len(checker.seen)
    counted = 0 if cpu_from is None else delivered - cpu_from[0]
    if cpu_from is not None and counted > 0:
        bridge_ms = (cpu_seconds([bridge.popen.pid]) - cpu_from[1]) * 1000 / counted
        database_ms = (cpu_seconds(database_pids or []) - cpu_from[2]) * 1000 / counted
    else:
        bridge_ms = database_ms = math.nan
    return {
        "bridge_cpu_ms_per_message": bridge_ms,
        "database_cpu_ms_per_message": database_ms,
        "delivered": delivered,
        "out_of_order": checker.out_of_order,
        "duplicated": checker.duplicated,
        "first": checker.first,
        "last": checker.last_created,
        "peak_rss": peak_rss,
        # The bridge's CPU per delivered message once delivery was under way (start-up left
        # out): what the shared host's load does not change much, unlike the rate.
        "cpu_us_per_message": 0.0 if math.isnan(bridge_ms) else bridge_ms * 1000,
    }


async def _metric(url: str, name: str) -> float:
    async with httpx.AsyncClient(timeout=10.0) as http:
        text = (await http.get(url + "/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def run_bridge(
    workdir: Path,
    sandbox: Sandbox,
    expected: int,
    *,
    timeout: float,
    database_url: str | None = None,
    label: str = "",
    **env_extra: str,
) -> dict[str, Any]:
    env, url, metrics = delivery_env(workdir, sandbox, database_url, **env_extra)
    started = time.time()
    bridge = Process(["-m", "actors", "serve"], core=0, env=env, profile=label)
    try:

        async def go() -> dict[str, Any]:
            ready = await ready_at(url, 60)
            result = await drain(
                sandbox, expected, bridge=bridge, seconds=timeout,
                database_pids=postmaster_pids(database_url),
            )  # fmt: skip
            result["ready_s"] = ready - started
            result["passivations"] = await _metric(metrics, "threadline_actor_passivations_total")
            return result

        result = trio.run(go)
    finally:
        bridge.stop()
    first, last = result["first"], result["last"]
    span = (last - first) if first is not None and last is not None and last > first else math.inf
    result["rate"] = result["delivered"] / span if span != math.inf else 0.0
    return result


def drain_backlog(
    work: Path,
    threads: int,
    messages: int,
    *,
    timeout: float,
    database_url: str | None = None,
    **bridge: str,
) -> dict[str, Any]:
    """In a new folder ``work``: a sandbox seeded with ``threads``, ``messages`` per thread
    journaled (in ``database_url``, else SQLite) and :func:`run_bridge` (its ``label`` and
    settings ``bridge``) draining them."""
    work.mkdir()
    sandbox = Sandbox(work, threads)
    try:
        path = work / ("journal.db" if database_url is None else "unused.db")
        trio.run(fill_journal, path, sandbox.pairs, messages, True, database_url)
        return run_bridge(
            work, sandbox, threads * messages, timeout=timeout, database_url=database_url, **bridge
        )
    finally:
        sandbox.stop()


def bare_rate(sandbox: Sandbox, seeds: Path, messages: int, *, single: bool) -> float:
    """:func:`bare_client`'s rate against ``sandbox``, in its own process on core 0 (one pool
    of connections if ``single``, else :class:`PooledTransport`'s)."""
    client = Process(
        ["-m", "bench._delivery", sandbox.url, str(seeds), str(messages),
         *(["--single"] if single else [])],
        core=0, cwd=ROOT,
    )  # fmt: skip
    assert client.popen.stdout is not None
    rate = float(client.popen.stdout.readline())
    client.stop()
    return rate


async def bare_client(
    url: str,
    pairs: list[tuple[str, str]],
    messages: int,
    connections: int = CONNECTIONS,
    pooled: bool = True,
) -> float:
    headers = {
        "Authorization": f"Bearer {SANDBOX_SECRETS.intercom_token}",
        "Intercom-Version": "2.16",
        "Accept": "application/json",
    }
    async with httpx.AsyncClient(
        base_url=url + "/intercom",
        headers=headers,
        timeout=30.0,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        transport=PooledTransport(connections=connections) if pooled else None,
    ) as http:

        async def thread(t: int, contact_id: str, conversation_id: str) -> None:
            for seq in range(messages):
                body = {
                    "type": "user",
                    "intercom_user_id": contact_id,
                    "message_type": "comment",
                    "body": f"[bench {t}:{seq}] message {seq} of thread {t}",
                }
                for attempt in range(5):  # httpcore can drop a pooled connection under load
                    try:
                        response = await http.post(
                            f"/conversations/{conversation_id}/reply", json=body
                        )
                        break
                    except httpx.TransportError:
                        if attempt == 4:
                            raise
                response.raise_for_status()

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for t, (contact_id, conversation_id) in enumerate(pairs):
                nursery.start_soon(thread, t, contact_id, conversation_id)
        return len(pairs) * messages / (time.perf_counter() - started)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the bare client (as bare_rate runs it)")
    parser.add_argument("url")
    parser.add_argument("seeds", type=Path)
    parser.add_argument("messages", type=int)
    parser.add_argument("--single", action="store_true")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    args = parser.parse_args()
    pairs = [tuple(p) for p in json.loads(args.seeds.read_text())["pairs"]]
    rate = trio.run(bare_client, args.url, pairs, args.messages, args.connections, not args.single)
    print(rate, flush=True)
