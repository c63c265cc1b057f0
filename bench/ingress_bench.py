"""Ingress benchmark: signed WhatsApp webhook → verified, parsed, journaled (SQLite group commit,
WAL, ``synchronous=FULL``) → 200, against a bare Hypercorn-Trio ASGI app that reads the same
payload and answers 200, served with the same Hypercorn settings.

Each server runs in its own process pinned to core 0; the load generator runs pinned to core 1
(2-core machine: one core each). Every request is a distinct webhook (its own message id and
signature), prebuilt before the clock starts, so the journal never sees a duplicate.

- Saturation: ``wrk`` (one thread, 64 connections, a Lua script cycling through the prebuilt
  requests) for a fixed time; requests/s and wrk's closed-loop latency.
- Latency at half the saturated rate: an open-loop client (Trio, raw HTTP/1.1 keep-alive
  connections, prebuilt request bytes) sends at a fixed rate of half the bridge's saturated rate
  and measures each request from its *scheduled* send time to the end of its response, so a
  stall shows up as latency instead of fewer requests (no coordinated omission).

Rounds interleave bare and bridge; the best saturated rate of each is kept.

Run: ``.venv/bin/python bench/ingress_bench.py [--quick] [--json]`` (needs ``wrk`` and
``taskset``; Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._ingress_load import (  # noqa: E402
    CONNECTIONS,
    LUA,
    SECRET,
    build_requests,
    open_loop,
    run_wrk,
    write_requests,
)
from bench._ingress_server import Server, gc_line  # noqa: E402
from bench._processes import free_port  # noqa: E402
from bench._report import bench_parser, target  # noqa: E402
from bench.common import cpu_seconds, postgres, postmaster_pids, uptime  # noqa: E402


def freeze_pairs(pairs: int, rate: float, seconds: float) -> None:
    """What freeze_startup_heap() buys: the same open loop, interleaved, without and with it."""
    requests = build_requests(int(rate * seconds) + 10, "pairs")
    tmp = Path(tempfile.mkdtemp(prefix="threadline-ingress-pairs-"))
    figures: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for pair in range(pairs):
        for freeze in (False, True):
            workdir = tmp / f"{pair}-{freeze}"
            workdir.mkdir()
            server = Server("bridge", workdir, freeze=freeze)
            try:  # distinct message ids per server: each has its own fresh journal
                result = trio.run(open_loop, server.port, requests, rate, seconds)
            finally:
                result |= server.stop()
            figures[freeze].append(result)
            print(
                f"  pair {pair + 1} {'frozen' if freeze else 'plain '}  p50 "
                f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                f"max {result['max_ms']:.1f} ms, errors {result['errors']:.0f}; "
                f"{gc_line(result)}"
            )
    for freeze, runs in figures.items():
        p99s = sorted(r["p99_ms"] for r in runs)
        maxes = sorted(r["max_ms"] for r in runs)
        print(
            f"{'with' if freeze else 'without'} freeze_startup_heap at {rate:,.0f} req/s: "
            f"p99 {p99s[0]:.1f} to {p99s[-1]:.1f} ms (median {p99s[len(p99s) // 2]:.1f}), "
            f"max {maxes[0]:.1f} to {maxes[-1]:.1f} ms"
        )
    shutil.rmtree(tmp, ignore_errors=True)


def workers_scaling(args: argparse.Namespace) -> None:
    """``threadline serve --workers 1`` against ``--workers 2`` on PostgreSQL, interleaved."""
    seconds = 5.0 if args.quick else 10.0
    rounds = args.rounds or (1 if args.quick else 3)
    tmp = Path(tempfile.mkdtemp(prefix="threadline-workers-bench-"))
    script = tmp / "post.lua"
    script.write_text(LUA)
    per_round = int(8_000 * seconds)
    print(f"building {per_round * rounds * 2:,} signed webhooks …", file=sys.stderr)
    batches = {}
    for r in range(rounds):
        for workers in (1, 2):
            # One customer: one thread, whose deliveries wait on a budget of 1 request per
            # window, so what the workers spend is ingress, not delivery.
            path = tmp / f"requests-{r}-{workers}.txt"
            write_requests(path, build_requests(per_round, f"w{r}x{workers}", customers=1))
            batches[r, workers] = path
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    with postgres(args.database_url, None) as new_database:
        for r in range(rounds):
            for workers in (1, 2):
                url = new_database()
                port, metrics = free_port(), free_port()
                env = {
                    **os.environ,
                    "THREADLINE_DATABASE_URL": url,
                    "THREADLINE_BIND": f"127.0.0.1:{port}",
                    "THREADLINE_METRICS_BIND": f"127.0.0.1:{metrics}",
                    "THREADLINE_WHATSAPP_APP_SECRET": SECRET,
                    "THREADLINE_WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
                    "THREADLINE_WHATSAPP_ACCESS_TOKEN": "bench-whatsapp-token-unused",
                    "THREADLINE_INTERCOM_ACCESS_TOKEN": "bench-intercom-token-unused",
                    "THREADLINE_INTERCOM_BASE_URL": f"http://127.0.0.1:{free_port()}",
                    "THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW": "1",
                    "THREADLINE_MEDIA_DIR": str(tmp / f"media-{r}-{workers}"),
                    "THREADLINE_LOG_FORMAT": "json",
                    "THREADLINE_LOG_LEVEL": "ERROR",
                    "THREADLINE_NODE_ID": f"bench-{r}-{workers}",
                }
                serve = subprocess.Popen(  # noqa: S603 - our CLI, fixed arguments
                    [sys.executable, "-m", "actors", "serve", "--workers", str(workers)],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    _wait_ready([metrics + i for i in range(workers)], port)
                    pg = postmaster_pids(url)
                    load = uptime()
                    before = (cpu_seconds([serve.pid]), cpu_seconds(pg))
                    result = run_wrk(port, batches[r, workers], script, seconds, pin=None)
                    after = (cpu_seconds([serve.pid]), cpu_seconds(pg))
                finally:
                    serve.terminate()
                    try:
                        serve.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        serve.kill()
                        serve.wait()
                result["bridge_cpu"] = (after[0] - before[0]) / seconds
                result["postgres_cpu"] = (after[1] - before[1]) / seconds
                results[workers].append(result)
                print(
                    f"  round {r + 1} --workers {workers}: {result['rate']:>8,.0f} req/s "
                    f"(bridge {result['bridge_cpu']:.2f} cores, PostgreSQL "
                    f"{result['postgres_cpu']:.2f} cores; {load})",
                    file=sys.stderr,
                )
    best = {w: max(rs, key=lambda x: x["rate"]) for w, rs in results.items()}
    ratio = best[2]["rate"] / best[1]["rate"]
    print(
        f"workers benchmark: `threadline serve --workers N` on PostgreSQL (fsync on), wrk -t1 "
        f"-c{CONNECTIONS} for {seconds:.0f} s, best of {rounds} interleaved rounds; nothing "
        f"pinned: workers, PostgreSQL and wrk share the {os.cpu_count()} cores"
    )
    for workers in (1, 2):
        b = best[workers]
        print(
            f"  --workers {workers}  {b['rate']:>8,.0f} req/s  closed-loop p50 {b['p50_ms']:.1f} "
            f"ms, p99 {b['p99_ms']:.1f} ms; bridge {b['bridge_cpu']:.2f} cores, PostgreSQL "
            f"{b['postgres_cpu']:.2f} cores, errors {b['errors']:.0f}"
            + ("   (baseline)" if workers == 1 else f"   {ratio:.2f} x one worker")
        )
    target("workers2_vs_1", f"{ratio:.2f} (>= 1.6)", ratio >= 1.6)
    print(f"  uptime at the end: {uptime()}")
    if args.json:
        print(json.dumps({"workers": {str(w): b for w, b in best.items()}, "ratio": ratio}))
    shutil.rmtree(tmp, ignore_errors=True)


def _wait_ready(metrics_ports: list[int], port: int) -> None:
    """Every worker's /readyz (on the shared ingress port any worker answers, so: metrics up)."""
    import httpx

    deadline = time.monotonic() + 60
    with httpx.Client(timeout=1.0) as http:
        for metrics in metrics_ports:
            while True:
                try:
                    if http.get(f"http://127.0.0.1:{metrics}/metrics").status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not start")
                time.sleep(0.1)
        while http.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the bridge did not become ready")
            time.sleep(0.1)


def main() -> None:
    parser = bench_parser(
        __doc__,
        "short runs (a smoke test)",
        store="postgres: a PostgreSQL bridge round beside the SQLite one in every round (a "
        "throwaway server, fsync on, pinned to the server's core, unless --database-url)",
    )
    parser.add_argument(
        "--workers-scaling",
        action="store_true",
        help="only `threadline serve --workers 1` against `--workers 2` on PostgreSQL",
    )
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="servers skip freeze_startup_heap() (to measure what it buys)",
    )
    parser.add_argument(
        "--freeze-pairs",
        type=int,
        metavar="N",
        help="only the open loop at --rate: N interleaved pairs of bridge runs without and with "
        "freeze_startup_heap()",
    )
    parser.add_argument("--rate", type=float, default=1100.0, help="open-loop rate for pairs")
    args = parser.parse_args()
    if args.freeze_pairs:
        freeze_pairs(args.freeze_pairs, args.rate, 3.0 if args.quick else 10.0)
        return
    if shutil.which("wrk") is None:
        sys.exit("ingress_bench needs wrk (Debian: apt-get install wrk)")
    if args.workers_scaling:
        workers_scaling(args)
        return
    with contextlib.ExitStack() as stack:
        new_database = (
            stack.enter_context(postgres(args.database_url, "0"))
            if args.store == "postgres"
            else None
        )
        saturate(args, new_database)


def saturate(args: argparse.Namespace, new_database: Callable[[], str] | None) -> None:
    seconds = 3.0 if args.quick else 10.0
    rounds = args.rounds or (1 if args.quick else 3)
    latency_seconds = 3.0 if args.quick else 10.0
    kinds = ("bare", "bridge") if new_database is None else ("bare", "bridge", "bridge-pg")
    tmp = Path(tempfile.mkdtemp(prefix="threadline-ingress-bench-"))
    script = tmp / "post.lua"
    script.write_text(LUA)
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    loads: dict[str, list[str]] = {kind: [] for kind in kinds}
    built = time.perf_counter()
    per_round = int(12_000 * seconds)  # more than either server answers in that time
    print(f"building {per_round * rounds:,} signed webhooks …", file=sys.stderr)
    batches = []
    for r in range(rounds):
        requests = build_requests(per_round, f"r{r}")
        path = tmp / f"requests-{r}.txt"
        write_requests(path, requests)
        batches.append(path)
    print(f"  ({time.perf_counter() - built:.1f} s)", file=sys.stderr)

    def start(kind: str, workdir: Path) -> Server:
        url = new_database() if kind == "bridge-pg" and new_database is not None else None
        return Server(kind, workdir, freeze=not args.no_freeze, database_url=url)

    for r in range(rounds):
        for kind in kinds:
            workdir = tmp / f"{kind}-{r}"
            workdir.mkdir()
            server = start(kind, workdir)
            loads[kind].append(uptime())
            try:
                result = run_wrk(server.port, batches[r], script, seconds)
            finally:
                server.stop()
            results[kind].append(result)
            print(f"  round {r + 1} {kind:9} {result['rate']:>8,.0f} req/s  ({loads[kind][-1]})",
                  file=sys.stderr)  # fmt: skip
    best = {kind: max(rs, key=lambda x: x["rate"]) for kind, rs in results.items()}
    bare, bridge = best["bare"], best["bridge"]
    half = bridge["rate"] / 2
    latency_requests = build_requests(int(half * latency_seconds) + 10, "lat")
    latencies: dict[str, dict[str, float]] = {}
    for kind in ("bare", "bridge"):  # the same open loop against both: the harness's share
        workdir = tmp / f"latency-{kind}"
        workdir.mkdir()
        server = start(kind, workdir)
        try:
            latencies[kind] = trio.run(
                open_loop, server.port, latency_requests, half, latency_seconds
            )
        finally:
            collector = server.stop()
        latencies[kind] |= collector
    latency = latencies["bridge"]

    ratio = bridge["rate"] / bare["rate"]
    cpu = os.cpu_count()
    print(
        f"ingress benchmark: wrk -t1 -c{CONNECTIONS} for {seconds:.0f} s, best of {rounds} "
        f"interleaved rounds; server on core 0, load generator on core 1 ({cpu} cores)"
    )
    print(
        f"  bare Hypercorn-Trio app         {bare['rate']:>8,.0f} req/s   (baseline)  "
        f"closed-loop p50 {bare['p50_ms']:.1f} ms, p99 {bare['p99_ms']:.1f} ms"
    )
    print(
        f"  bridge ingress (verify, parse,  {bridge['rate']:>8,.0f} req/s   {ratio:.2f} x bare  "
        f"closed-loop p50 {bridge['p50_ms']:.1f} ms, p99 {bridge['p99_ms']:.1f} ms"
    )
    print("    journal group commit → 200)")
    print(
        f"  open loop at {half:,.0f} req/s (half the bridge's rate), {latency['sent']:,} "
        f"requests: p50 {latency['p50_ms']:.1f} ms, p90 {latency['p90_ms']:.1f} ms, "
        f"p99 {latency['p99_ms']:.1f} ms, max {latency['max_ms']:.1f} ms, "
        f"errors {latency['errors']:.0f}"
    )
    print(f"    garbage collections in the bridge meanwhile: {gc_line(latency)}")
    bare_latency = latencies["bare"]
    print(
        f"  the same open loop against the bare app: p50 {bare_latency['p50_ms']:.1f} ms, "
        f"p90 {bare_latency['p90_ms']:.1f} ms, p99 {bare_latency['p99_ms']:.1f} ms, "
        f"max {bare_latency['max_ms']:.1f} ms"
    )
    target("ingress_vs_bare", f"{ratio:.2f} (>= 0.8)", ratio >= 0.8)
    target("p99_at_half_rate", f"{latency['p99_ms']:.1f} ms (<= 50)", latency["p99_ms"] <= 50)
    out: dict[str, Any] = {
        "bare_req_per_s": round(bare["rate"]),
        "bridge_req_per_s": round(bridge["rate"]),
        "ratio_bridge_vs_bare": round(ratio, 3),
        "half_rate_req_per_s": round(half),
        "half_rate_latency_ms": {
            k: round(latency[k], 2) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
        },
        "half_rate_bare_latency_ms": {
            k: round(bare_latency[k], 2) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
        },
    }
    if "bridge-pg" in best:
        pg = best["bridge-pg"]
        pg_ratio = pg["rate"] / bridge["rate"]
        print(
            f"  bridge ingress, PostgreSQL      {pg['rate']:>8,.0f} req/s   {pg_ratio:.2f} x "
            f"SQLite  closed-loop p50 {pg['p50_ms']:.1f} ms, p99 {pg['p99_ms']:.1f} ms, errors "
            f"{pg['errors']:.0f}"
        )
        print("    (a throwaway PostgreSQL server, fsync on, pinned to the server's core 0)")
        target("ingress_postgres_vs_sqlite", f"{pg_ratio:.2f} (>= 0.8)", pg_ratio >= 0.8)
        out["postgres_req_per_s"] = round(pg["rate"])
        out["ratio_postgres_vs_sqlite"] = round(pg_ratio, 3)
    for kind in kinds:
        print(f"  load during the {kind} rounds: " + " | ".join(loads[kind]))
    errors = sum(best[kind]["errors"] for kind in kinds)
    if errors:
        print(f"  note: {errors:.0f} non-200 or socket errors during saturation runs")
    if args.json:
        print(json.dumps(out))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
