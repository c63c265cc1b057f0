"""Soak: ``threadline serve`` (one node on SQLite, or a cluster on PostgreSQL) under the load
generator while a random node is ``kill -9``-ed every 30-60 s and started again; at the end the
load tester's checker (lost, doubled, reordered) and the contact check (one unmerged contact per
customer identity, one conversation per contact).

::

    generator ──signed webhooks, redelivered until 200──► serve x N ──► threadline sandbox
         ▲  (thread t posts to node t mod N, then the next one on a failure)        │
         └──────────────────────── parts feed (checker) ◄──────────────────────────┘
    killer: every U(MIN, MAX) s, kill -9 a random node, start it again (same node id)

Everything runs as child processes of this script on loopback: ``threadline sandbox`` (search
lag, per-call latency and a rate limit that does not dominate), the ``serve`` nodes (their
Intercom budget raised to the sandbox's limit), and for ``--store postgres`` a throwaway
PostgreSQL (initdb/pg_ctl in a temporary directory; as root it runs as the ``postgres`` user).
The run is bounded (``--max-minutes``); every child is killed on the way out, also after Ctrl-C,
SIGTERM or a failure. The work directory (journal, node logs, ``kills.json``) is removed on a
pass and kept on a failure (``--keep`` keeps it always).

Run (not part of CI; the figures in the README come from these)::

    .venv/bin/python bench/soak.py --store sqlite --customers 100000 --messages 1000000 --rate 150
    .venv/bin/python bench/soak.py --store postgres --nodes 3 --customers 100000 \\
        --messages 1000000 --rate 150

Exit status 0 when nothing was lost, doubled or reordered and there is no duplicate contact
and no split conversation; 1 otherwise; 2 when the run could not be set up.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.tools import (  # noqa: E402 - after the path setup
    PUBLIC_URL,
    LoadPlan,
    LoadProgress,
    LoadReport,
    Target,
    run_load,
    sandbox_settings_env,
)
from bench._processes import (  # noqa: E402
    Children,
    Node,
    Postgres,
    SetupError,
    free_port,
    wait_ready,
)
from bench._soak_report import check_contacts, summary, verdict  # noqa: E402
from channels.sandbox import SandboxCredentials  # noqa: E402


@dataclass(frozen=True)
class Options:
    """What the command line asks for (its defaults are the parser's)."""

    store: str
    nodes: int
    customers: int
    messages: int
    rate: float
    kill_every: tuple[float, float]
    restart_delay: float
    search_lag: float
    latency_ms: float
    rate_limit: int
    settle: float
    lease: float
    concurrency: int
    max_minutes: float
    seed: int
    keep: bool
    json: bool


@dataclass
class Soak:
    options: Options
    workdir: Path
    children: Children = field(default_factory=Children)
    nodes: list[Node] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    sending_done: trio.Event = field(default_factory=trio.Event)
    last_progress: LoadProgress | None = None

    def log(self, line: str) -> None:
        print(f"[soak {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    async def start_sandbox(self) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = await self.children.open(
            [sys.executable, "-m", "actors", "sandbox", "--bind", f"127.0.0.1:{port}",
             "--bridge-url", PUBLIC_URL],
            dict(os.environ),
            self.workdir / "sandbox.log",
        )  # fmt: skip
        await wait_ready(f"{url}/intercom/_sandbox/config", process, "the sandbox")
        o = self.options
        changes = {
            "search_lag_seconds": o.search_lag,
            "latency_seconds": o.latency_ms / 1000,
            "rate_limit": o.rate_limit,
            "rate_window_seconds": 10.0,
            "webhook_url": None,  # no teammates here: the bridge needs no webhooks
        }
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            response = await http.post("/intercom/_sandbox/config", json=changes)
            if response.status_code != 200:
                raise SetupError(f"sandbox config: {response.status_code} {response.text}")
        return url

    def node_env(self, sandbox_url: str, database_url: str, index: int) -> dict[str, str]:
        o = self.options
        env = {
            **os.environ,
            **sandbox_settings_env(sandbox_url, PUBLIC_URL),
            "THREADLINE_DATABASE_URL": database_url,
            "THREADLINE_BIND": f"127.0.0.1:{free_port()}",
            "THREADLINE_METRICS_BIND": f"127.0.0.1:{free_port()}",
            "THREADLINE_MEDIA_DIR": str(self.workdir / f"media-{index}"),
            "THREADLINE_LOG_FORMAT": "json",
            "THREADLINE_NODE_ID": f"soak-node-{index}",
            "THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW": str(o.rate_limit),
            "THREADLINE_INTERCOM_SEARCH_SETTLE_SECONDS": str(o.settle),
            "THREADLINE_LEASE_SECONDS": str(o.lease),
        }
        return env

    async def killer(self, rng: random.Random) -> None:
        low, high = self.options.kill_every
        started = time.monotonic()
        while True:
            with trio.move_on_after(rng.uniform(low, high)):
                await self.sending_done.wait()
            if self.sending_done.is_set():
                return
            victim = rng.choice(self.nodes)
            at = time.time()
            await victim.kill()
            self.log(f"kill -9 {victim.name} (pid {victim.process and victim.process.pid})")
            kill = {"node": victim.name, "at": round(at, 3), "since_start_s": round(
                time.monotonic() - started, 1)}  # fmt: skip
            self.kills.append(kill)
            await trio.sleep(self.options.restart_delay)
            kill["ready_after_s"] = round(await victim.start(), 2)
            self.log(f"{victim.name} ready again after {kill['ready_after_s']} s")

    def progress(self, p: LoadProgress) -> None:
        if not p.sending:
            self.sending_done.set()
        last = self.last_progress
        if last is None or p.elapsed_s - last.elapsed_s >= 15 or last.sending != p.sending:
            self.last_progress = p
            self.log(
                f"{p.elapsed_s:7.1f}s {'sending' if p.sending else 'draining'}: sent {p.sent}, "
                f"acknowledged {p.acknowledged}, delivered {p.delivered}, "
                f"doubled {p.duplicated}, kills {len(self.kills)}"
            )


async def _fetch(http: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    response = await http.get(path, timeout=600.0)
    if response.status_code != 200:
        raise SetupError(f"sandbox {path}: {response.status_code}")
    data = response.json()
    if isinstance(data, dict):  # {"contacts": [...]} or {"conversations": [...]}
        data = next(v for v in data.values() if isinstance(v, list))
    return list(data)


async def run_soak(o: Options, workdir: Path) -> dict[str, Any]:
    soak = Soak(o, workdir)
    rng = random.Random(o.seed)  # the chaos schedule
    postgres = Postgres(workdir / "pg") if o.store == "postgres" else None
    started = time.monotonic()
    result: dict[str, Any] = {"store": o.store, "nodes": o.nodes, "workdir": str(workdir)}
    try:
        with trio.move_on_after(o.max_minutes * 60) as bounded:
            try:
                async with trio.open_nursery() as outer:
                    outer.start_soon(_cancel_on_sigterm, outer.cancel_scope)
                    report, extra = await _run(soak, o, rng, postgres)
                    outer.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                raise _first_leaf(group) from group
            result.update(extra)
            result["checker"] = report.as_json()
        if bounded.cancelled_caught:
            result["timed_out"] = True
    finally:
        soak.children.kill_all()  # synchronous: no checkpoint, so nothing can cancel it
        if postgres is not None:
            postgres.stop()
    result["kills"] = len(soak.kills)
    result["kill_log"] = soak.kills
    result["wall_s"] = round(time.monotonic() - started, 1)
    (workdir / "kills.json").write_text(json.dumps(soak.kills, indent=1))
    return result


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception of a (nested) group: a SetupError or an interrupt is reported as
    such rather than as a traceback of the nurseries it went through."""
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def _cancel_on_sigterm(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async for _ in signals:
            scope.cancel()
            raise KeyboardInterrupt


async def _run(
    soak: Soak, o: Options, rng: random.Random, postgres: Postgres | None
) -> tuple[LoadReport, dict[str, Any]]:
    database_url = f"sqlite:///{soak.workdir / 'threadline.db'}"
    if postgres is not None:
        database_url = postgres.start()
        soak.log(f"PostgreSQL on port {postgres.port}")
    sandbox_url = await soak.start_sandbox()
    soak.log(f"sandbox at {sandbox_url}")
    for index in range(o.nodes):
        env = soak.node_env(sandbox_url, database_url, index)
        soak.nodes.append(Node(f"node-{index}", env, soak.workdir / f"node-{index}.log",
                               soak.children))  # fmt: skip
    for node in soak.nodes:
        await node.start()
        soak.log(f"{node.name} ready at {node.url}")
    creds = SandboxCredentials()
    urls = [node.url for node in soak.nodes]
    target = Target(urls[0], PUBLIC_URL, creds.twilio_auth_token, creds.twilio_account_sid,
                    more_urls=tuple(urls[1:]))  # fmt: skip
    plan = LoadPlan(
        threads=o.customers,
        messages_per_thread=math.ceil(o.messages / o.customers),
        total=o.messages,
        # Without a deadline, the threads past ``total`` would sleep until their slot of a
        # last round that is never sent (customers x rounds / rate), killing on meanwhile;
        # the margin lets a thread held up by a kill (redelivering) still send its last one.
        duration_s=o.messages / o.rate + 60.0,
        rate=o.rate,
        concurrency=o.concurrency,
        drain_seconds=max(120.0, 3 * o.settle + 2 * o.lease),
        seed=o.seed,
        redeliver_seconds=o.max_minutes * 60,
    )
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=60.0) as http:

        async def feed(cursor: int) -> tuple[list[dict[str, Any]], int]:
            for attempt in range(20):  # a GET: a dropped keep-alive connection is just retried
                try:
                    response = await http.get(
                        "/intercom/_sandbox/parts", params={"since": cursor, "limit": 5000}
                    )
                except httpx.TransportError as exc:
                    soak.log(f"parts feed: {exc!r}; asking again")
                    await trio.sleep(0.1 * (attempt + 1))
                    continue
                got = response.json()
                return list(got["parts"]), int(got["next"])
            raise SetupError("the sandbox's parts feed keeps failing")

        load_started = time.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(soak.killer, rng)
            report = await run_load(plan, target, feed, progress=soak.progress,
                                    progress_interval=1.0)  # fmt: skip
            soak.sending_done.set()
        load_s = time.monotonic() - load_started
        soak.log("load done; stopping the nodes")
        for node in soak.nodes:
            await node.stop()
        await trio.sleep(2.0)
        contacts = await _fetch(http, "/intercom/_sandbox/contacts")
        conversations = await _fetch(http, "/intercom/_sandbox/conversations")
        stats = (await http.get("/intercom/_sandbox/stats")).json()
    customers = min(o.customers, o.messages)
    extra = {
        "customers": o.customers,
        "messages": o.messages,
        "rate": o.rate,
        "kill_every_s": list(o.kill_every),
        "search_lag_s": o.search_lag,
        "latency_ms": o.latency_ms,
        "settle_s": o.settle,
        "load_s": round(load_s, 1),
        "throughput_per_s": round(report.delivered / max(load_s, 1e-9), 1),
        "contacts": check_contacts(contacts, conversations, customers),
        "intercom_requests": stats.get("requests_total"),
        "intercom_rate_limited": stats.get("rate_limited"),
        "starts": {node.name: node.starts for node in soak.nodes},
    }
    return report, extra


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--nodes", type=int, help="serve processes (default: 1 sqlite, 3 pg)")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=3000, help="in total")
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s offered")
    parser.add_argument("--kill-every", type=float, nargs=2, metavar=("MIN", "MAX"),
                        default=(30.0, 60.0), help="seconds between kills (uniform)")  # fmt: skip
    parser.add_argument("--restart-delay", type=float, default=0.5)
    parser.add_argument("--search-lag", type=float, default=3.0, help="sandbox contact search")
    parser.add_argument("--latency-ms", type=float, default=5.0, help="per sandbox API call")
    parser.add_argument("--rate-limit", type=int, default=50_000, help="Intercom calls per 10 s")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="THREADLINE_INTERCOM_SEARCH_SETTLE_SECONDS")  # fmt: skip
    parser.add_argument("--lease", type=float, default=15.0, help="THREADLINE_LEASE_SECONDS")
    parser.add_argument("--concurrency", type=int, default=128, help="webhooks in flight")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="hard bound")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", action="store_true", help="a JSON object as the last line")
    args = parser.parse_args(argv)
    nodes = args.nodes or (3 if args.store == "postgres" else 1)
    if args.store == "sqlite" and nodes != 1:
        parser.error("SQLite serves one node; a cluster needs --store postgres")
    if args.customers < 1 or args.messages < 1 or args.rate <= 0:
        parser.error("--customers, --messages and --rate must be positive")
    low, high = args.kill_every
    if not 0 < low <= high:
        parser.error("--kill-every MIN MAX needs 0 < MIN <= MAX")
    return Options(
        store=args.store, nodes=nodes, customers=args.customers, messages=args.messages,
        rate=args.rate, kill_every=(low, high), restart_delay=args.restart_delay,
        search_lag=args.search_lag, latency_ms=args.latency_ms, rate_limit=args.rate_limit,
        settle=args.settle, lease=args.lease, concurrency=args.concurrency,
        max_minutes=args.max_minutes, seed=args.seed, keep=args.keep, json=args.json,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix=f"threadline-soak-{options.store}-"))
    try:
        result = trio.run(run_soak, options, workdir)
    except SetupError as exc:
        print(f"soak: {exc}; logs in {workdir}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"soak: interrupted; children killed; logs in {workdir}", file=sys.stderr)
        return 130
    passed = verdict(result)
    for line in summary(result, passed):
        print(line)
    if options.json:
        print(json.dumps(result | {"passed": passed}))
    if passed and not options.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
