"""Delivery benchmarks: ``threadline serve`` (its own process, core 0) draining a journal backlog
into the sandbox Intercom (its own process, core 1), against baselines measured in the same run.

Scenarios (``--only`` picks some):

- ``e2e``: T threads x M messages journaled and pending; the bridge starts and delivers them all.
  Baseline: a bare httpx client (core 0, same pool of 64 connections, one request in flight per
  thread, T threads) posting the same contact replies to the same sandbox. Target: the bridge's
  delivered rate >= 0.6 x the bare client's, with 0 order violations.
- ``ratelimit``: the sandbox limits Intercom to L requests per 10-second window; a backlog of
  several windows. Target: delivered rate over the full windows >= 0.95 x L / 10 s, with <= 1%
  of requests answered 429.
- ``keys``: 100,000 threads x 1 message against 100 threads x 1,000 messages (same total);
  ``THREADLINE_ACTOR_IDLE_SECONDS=2`` so passivation bounds memory; the bridge's peak RSS is
  sampled from /proc. Target: rate at 100,000 threads >= 0.8 x rate at 100 threads.
- ``recovery``: 100,000 pending entries (1,000 threads x 100); time from process start to
  ``/readyz`` answering 200, and to the first delivery. Target: <= 2 s to serving.

Every thread's contact and conversation already exist (seeded in the sandbox and in the
journal's thread state), so each message is one Intercom reply and the scenarios compare like
with like; first-message costs (contact search and creation) are the load test's business. In
``e2e``/``ratelimit``/``keys`` the entries are stamped as received after the bridge started, so
the crash-recovery check (one GET per thread's first entry older than the process) is not part
of the delivery rate; ``recovery`` uses real, older timestamps.

Run: ``.venv/bin/python bench/delivery_bench.py [--quick] [--only e2e,keys] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._delivery import (  # noqa: E402
    CONNECTIONS,
    bare_rate,
    delivery_env,
    drain_backlog,
    fill_journal,
    run_bridge,
)
from bench._processes import Process, ready_at  # noqa: E402
from bench._report import bench_parser, target  # noqa: E402
from bench._sandbox import Sandbox  # noqa: E402
from bench.common import postgres, uptime  # noqa: E402

# --- scenarios -----------------------------------------------------------------------------------


def scenario_e2e(
    tmp: Path, quick: bool, rounds: int, new_database: Callable[[], str] | None = None
) -> dict[str, Any]:
    threads, messages = (100, 20) if quick else (100, 100)
    total = threads * messages
    bare_rates: list[float] = []
    single_rates: list[float] = []
    bridge_results = []
    pg_results = []
    loads: list[str] = []
    for r in range(rounds):
        work = tmp / f"e2e-bare-{r}"
        work.mkdir()
        sandbox = Sandbox(work, threads)
        try:
            bare_rates.append(bare_rate(sandbox, work / "seeds.json", messages, single=False))
            single_rates.append(bare_rate(sandbox, work / "seeds.json", messages, single=True))
        finally:
            sandbox.stop()
        # No limits: the bridge's own budget (Intercom's 1,666 per 10 s by default) would
        # otherwise be what this measures.
        unlimited = {"THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW": "1000000"}
        bridge_results.append(
            drain_backlog(tmp / f"e2e-bridge-{r}", threads, messages, timeout=600, **unlimited)
        )
        if new_database is not None:
            pg_results.append(
                drain_backlog(tmp / f"e2e-bridge-pg-{r}", threads, messages, timeout=600,
                              database_url=new_database(), **unlimited)
            )  # fmt: skip
        loads.append(uptime())
        print(
            f"  e2e round {r + 1}: bare {bare_rates[-1]:,.0f}/s, bridge "
            f"{bridge_results[-1]['rate']:,.0f}/s"
            + (f", bridge on PostgreSQL {pg_results[-1]['rate']:,.0f}/s" if pg_results else "")
            + f" ({loads[-1]})",
            file=sys.stderr,
        )
    best = max(bridge_results, key=lambda x: x["rate"])
    bare = max(bare_rates)
    postgres: dict[str, Any] = {}
    if pg_results:
        best_pg = max(pg_results, key=lambda x: x["rate"])
        postgres = {
            "postgres_per_s": best_pg["rate"],
            "postgres_bridge_cpu_ms_per_message": min(
                r["bridge_cpu_ms_per_message"] for r in pg_results
            ),
            "postgres_server_cpu_ms_per_message": min(
                r["database_cpu_ms_per_message"] for r in pg_results
            ),
            "postgres_vs_sqlite": best_pg["rate"] / best["rate"],
            "postgres_delivered": best_pg["delivered"],
            "postgres_out_of_order": max(r["out_of_order"] for r in pg_results),
            "postgres_duplicated": max(r["duplicated"] for r in pg_results),
        }
    return postgres | {
        "loads": loads,
        "bridge_cpu_ms_per_message": min(r["bridge_cpu_ms_per_message"] for r in bridge_results),
        "threads": threads,
        "messages_per_thread": messages,
        "bare_per_s": bare,
        "bare_single_pool_per_s": max(single_rates),
        "bridge_per_s": best["rate"],
        "ratio": best["rate"] / bare,
        "delivered": best["delivered"],
        "expected": total,
        "out_of_order": max(r["out_of_order"] for r in bridge_results),
        "duplicated": max(r["duplicated"] for r in bridge_results),
    }


def scenario_ratelimit(tmp: Path, quick: bool) -> dict[str, Any]:
    limit = 100 if quick else 300
    windows = 3 if quick else 5
    threads = 20
    messages = math.ceil(limit * windows / threads)
    work = tmp / "ratelimit"
    work.mkdir()
    sandbox = Sandbox(work, threads, rate_limit=limit)
    try:
        trio.run(fill_journal, work / "journal.db", sandbox.pairs, messages, True)
        result = run_bridge(work, sandbox, threads * messages, timeout=windows * 10 + 120)

        async def stats() -> tuple[dict[str, Any], list[float]]:
            async with httpx.AsyncClient(base_url=sandbox.url, timeout=30) as http:
                got = (await http.get("/intercom/_sandbox/stats")).json()
                parts = (
                    await http.get(
                        "/intercom/_sandbox/parts", params={"since": sandbox.seeded_parts}
                    )
                ).json()["parts"]
            return got, [float(p["created_at"]) for p in parts]

        sandbox_stats, created = trio.run(stats)
    finally:
        sandbox.stop()
    per_window: dict[int, int] = {}
    for t in created:
        per_window[int(t // 10)] = per_window.get(int(t // 10), 0) + 1
    full = sorted(per_window)[1:-1]  # the first and last windows are partial
    rate = sum(per_window[w] for w in full) / (10.0 * len(full)) if full else result["rate"]
    requests = sandbox_stats["requests_total"]
    return {
        "limit_per_window": limit,
        "full_windows": len(full),
        "per_window": [per_window[w] for w in sorted(per_window)],
        "delivered_per_s": rate,
        "ceiling_per_s": limit / 10,
        "ratio": rate / (limit / 10),
        "requests": requests,
        "rejected_429": sandbox_stats["rate_limited"],
        "share_429": sandbox_stats["rate_limited"] / max(1, requests),
        "out_of_order": result["out_of_order"],
        "delivered": result["delivered"],
    }


def scenario_keys(tmp: Path, quick: bool, rounds: int, many: int | None) -> dict[str, Any]:
    many = many or (10_000 if quick else 100_000)
    few, per_few = 100, many // 100
    runs: dict[str, list[dict[str, Any]]] = {"few": [], "many": []}
    ratios: list[float] = []
    for r in range(rounds):  # interleaved: each round measures both sides back to back
        for label, threads, messages in (("few", few, per_few), ("many", many, 1)):
            work = tmp / f"keys-{label}-{r}"
            runs[label].append(
                drain_backlog(
                    work, threads, messages, timeout=900, label=f"{label}-{r}",
                    THREADLINE_ACTOR_IDLE_SECONDS="2",
                    THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW="1000000",
                )
            )  # fmt: skip
            shutil.rmtree(work, ignore_errors=True)
        ratios.append(runs["many"][-1]["rate"] / runs["few"][-1]["rate"])
        print(
            f"  keys round {r + 1}: {few} threads {runs['few'][-1]['rate']:,.0f}/s "
            f"({runs['few'][-1]['cpu_us_per_message']:,.0f} µs CPU/msg), {many:,} threads "
            f"{runs['many'][-1]['rate']:,.0f}/s ({runs['many'][-1]['cpu_us_per_message']:,.0f}"
            f" µs CPU/msg), ratio {ratios[-1]:.2f} (load {os.getloadavg()[0]:.2f})",
            file=sys.stderr,
        )
    best = {label: max(got, key=lambda x: x["rate"]) for label, got in runs.items()}
    return {
        "few_threads": few,
        "many_threads": many,
        "messages": many,
        "rounds": rounds,
        "few_per_s": best["few"]["rate"],
        "many_per_s": best["many"]["rate"],
        "ratio": best["many"]["rate"] / best["few"]["rate"],
        "round_ratios": ratios,
        "few_rates": [x["rate"] for x in runs["few"]],
        "many_rates": [x["rate"] for x in runs["many"]],
        "few_peak_rss": best["few"]["peak_rss"],
        "many_peak_rss": best["many"]["peak_rss"],
        "many_passivations": best["many"]["passivations"],
        "few_cpu_us_per_message": min(x["cpu_us_per_message"] for x in runs["few"]),
        "many_cpu_us_per_message": min(x["cpu_us_per_message"] for x in runs["many"]),
        "out_of_order": sum(x["out_of_order"] for got in runs.values() for x in got),
        "duplicated": sum(x["duplicated"] for got in runs.values() for x in got),
        "delivered": sum(x["delivered"] for got in runs.values() for x in got),
        "expected": rounds * 2 * many,
    }


def scenario_recovery(tmp: Path, quick: bool, rounds: int) -> dict[str, Any]:
    threads, messages = (1000, 20) if quick else (1000, 100)
    work = tmp / "recovery"
    work.mkdir()
    sandbox = Sandbox(work, threads)
    try:
        trio.run(fill_journal, work / "journal.db", sandbox.pairs, messages, False)
        snapshot = work / "journal-snapshot.db"
        shutil.copy(work / "journal.db", snapshot)
        readies, firsts = [], []
        for r in range(rounds):
            shutil.copy(snapshot, work / "journal.db")
            for suffix in ("-wal", "-shm"):
                (work / f"journal.db{suffix}").unlink(missing_ok=True)
            env, url, _ = delivery_env(work, sandbox)
            started = time.time()
            bridge = Process(["-m", "actors", "serve"], core=0, env=env, profile="")
            try:

                async def go(url: str = url, started: float = started) -> tuple[float, float]:
                    async with httpx.AsyncClient(base_url=sandbox.url, timeout=5.0) as sb:
                        cursor = (
                            await sb.get("/intercom/_sandbox/parts", params={"since": 0})
                        ).json()["next"]
                        ready = await ready_at(url, 60)
                        with trio.fail_after(60):
                            while True:
                                got = (
                                    await sb.get(
                                        "/intercom/_sandbox/parts",
                                        params={"since": cursor, "limit": 1},
                                    )
                                ).json()
                                if got["parts"]:
                                    first = float(got["parts"][0]["created_at"])
                                    return ready - started, first - started
                                await trio.sleep(0.005)

                ready_s, first_s = trio.run(go)
            finally:
                bridge.stop()
            readies.append(ready_s)
            firsts.append(first_s)
            print(f"  recovery round {r + 1}: ready {ready_s:.2f} s", file=sys.stderr)
    finally:
        sandbox.stop()

    bare_start = min(_python_start() for _ in range(rounds))
    return {
        "pending": threads * messages,
        "ready_s": min(readies),
        "first_delivery_s": min(firsts),
        "bare_python_start_s": bare_start,
    }


def _python_start() -> float:
    started = time.perf_counter()
    subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", "import actors.tools"], check=True, cwd=ROOT
    )
    return time.perf_counter() - started


def main() -> None:
    parser = bench_parser(
        __doc__,
        "small runs (a smoke test)",
        store="postgres: e2e also runs the bridge on PostgreSQL in every round (a throwaway "
        "server, fsync on, pinned to the bridge's core, unless --database-url)",
    )
    parser.add_argument("--only", default="e2e,ratelimit,keys,recovery")
    parser.add_argument(
        "--postgres-cpus",
        default="0",
        help="the throwaway PostgreSQL server's cores (0: the bridge's, as SQLite's work is)",
    )
    parser.add_argument(
        "--keys-many", type=int, help="threads of the many-threads side of `keys` (100,000)"
    )
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        new_database = (
            stack.enter_context(postgres(args.database_url, args.postgres_cpus))
            if args.store == "postgres"
            else None
        )
        report(args, new_database)


def report(args: argparse.Namespace, new_database: Callable[[], str] | None) -> None:
    rounds = args.rounds or (1 if args.quick else 3)
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="threadline-delivery-bench-"))
    out: dict[str, Any] = {}
    print(
        "delivery benchmark: bridge (`threadline serve`, SQLite) on core 0, sandbox Intercom on "
        f"core 1; {'quick' if args.quick else 'full'} sizes"
    )
    if "e2e" in only:
        e = out["e2e"] = scenario_e2e(tmp, args.quick, rounds, new_database)
        print(
            f"  e2e {e['threads']} threads x {e['messages_per_thread']} messages "
            f"(best of {rounds} interleaved rounds):\n"
            f"    bare httpx client, {CONNECTIONS} connections {e['bare_per_s']:>8,.0f} replies/s"
            "   (baseline: 8 pools of 8, as the bridge)\n"
            f"    bare httpx client, one pool of {CONNECTIONS}     "
            f"{e['bare_single_pool_per_s']:>8,.0f} replies/s\n"
            f"    bridge                                {e['bridge_per_s']:>8,.0f} messages/s"
            f"  {e['ratio']:.2f} x bare; delivered {e['delivered']}/{e['expected']}, "
            f"out of order {e['out_of_order']}, duplicated {e['duplicated']}"
        )
        ok = e["ratio"] >= 0.6 and e["out_of_order"] == 0 and e["delivered"] == e["expected"]
        target("e2e_vs_bare", f"{e['ratio']:.2f} (>= 0.6, 0 violations)", ok)
        if "postgres_per_s" in e:
            print(
                f"    bridge on PostgreSQL (fsync on, server on core {args.postgres_cpus}) "
                f"{e['postgres_per_s']:>8,.0f} messages/s  {e['postgres_vs_sqlite']:.2f} x "
                f"SQLite; delivered {e['postgres_delivered']}/{e['expected']}, out of order "
                f"{e['postgres_out_of_order']}, duplicated {e['postgres_duplicated']}"
            )
            ok = (
                e["postgres_vs_sqlite"] >= 0.8
                and e["postgres_out_of_order"] == 0
                and e["postgres_delivered"] == e["expected"]
            )
            figure = f"{e['postgres_vs_sqlite']:.2f} (>= 0.8, 0 violations)"
            target("e2e_postgres_vs_sqlite", figure, ok)
        print(f"    CPU per delivered message (least of the rounds): bridge on SQLite "
              f"{e['bridge_cpu_ms_per_message']:.2f} ms"
              + (f"; bridge on PostgreSQL {e['postgres_bridge_cpu_ms_per_message']:.2f} ms + "
                 f"PostgreSQL server {e['postgres_server_cpu_ms_per_message']:.2f} ms"
                 if "postgres_per_s" in e else ""))  # fmt: skip
        print("  load after each round: " + " | ".join(e["loads"]))
    if "ratelimit" in only:
        r = out["ratelimit"] = scenario_ratelimit(tmp, args.quick)
        print(
            f"  rate limit {r['limit_per_window']} per 10 s window: delivered "
            f"{r['delivered_per_s']:.1f}/s over {r['full_windows']} full windows (per window "
            f"{r['per_window']}), {r['rejected_429']} of {r['requests']} requests answered 429 "
            f"({100 * r['share_429']:.2f}%)"
        )
        ok = r["ratio"] >= 0.95 and r["share_429"] <= 0.01
        figure = (
            f"{r['ratio']:.3f} x L/10 s (>= 0.95), 429 share {100 * r['share_429']:.2f}% (<= 1%)"
        )
        target("ratelimit", figure, ok)
    if "keys" in only:
        k = out["keys"] = scenario_keys(tmp, args.quick, rounds, args.keys_many)
        mib = 1024 * 1024
        print(
            f"  keys: {k['few_threads']} threads x {k['messages'] // k['few_threads']:,} "
            f"{k['few_per_s']:,.0f}/s (peak RSS {k['few_peak_rss'] / mib:.0f} MiB); "
            f"{k['many_threads']:,} threads x 1 {k['many_per_s']:,.0f}/s (peak RSS "
            f"{k['many_peak_rss'] / mib:.0f} MiB, {k['many_passivations']:,.0f} passivations); "
            f"CPU per message {k['few_cpu_us_per_message']:,.0f} and "
            f"{k['many_cpu_us_per_message']:,.0f} µs (least of the rounds); "
            f"best of {k['rounds']} interleaved rounds, per-round ratios "
            + ", ".join(f"{x:.2f}" for x in k["round_ratios"])
            + f"; delivered {k['delivered']}/{k['expected']}, out of order {k['out_of_order']},"
            f" duplicated {k['duplicated']}"
        )
        ok = k["ratio"] >= 0.8 and k["out_of_order"] == 0 and k["duplicated"] == 0
        target("keys_many_vs_few", f"{k['ratio']:.2f} (>= 0.8)", ok)
    if "recovery" in only:
        c = out["recovery"] = scenario_recovery(tmp, args.quick, rounds)
        print(
            f"  recovery with {c['pending']:,} pending entries: /readyz 200 after "
            f"{c['ready_s']:.2f} s, first delivery after {c['first_delivery_s']:.2f} s "
            f"(bare `import actors.tools` takes {c['bare_python_start_s']:.2f} s)"
        )
        target("recovery", f"{c['ready_s']:.2f} s (<= 2)", c["ready_s"] <= 2)
    if args.json:
        print(json.dumps(out, default=float))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
