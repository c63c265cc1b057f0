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
import socket
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

from actors.bridge import (  # noqa: E402
    InboundJob,
    ThreadState,
    conversation_index_key,
    encode_job,
    thread_state_key,
)
from actors.tools import SANDBOX_SECRETS, sandbox_settings_env  # noqa: E402
from bench.common import cpu_seconds, postgres, serve_sandbox, uptime  # noqa: E402
from channels import InboundMessage, parse_whatsapp  # noqa: E402
from channels.sandbox import WhatsAppInbound, whatsapp_webhook  # noqa: E402
from intercom import PooledTransport  # noqa: E402
from runtime import (  # noqa: E402
    NewEntry,
    PostgresJournal,
    SQLiteJournal,
)

CONNECTIONS = 64


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the sandbox process -------------------------------------------------------------------------


def _store_of(env: dict[str, str] | None) -> str:
    url = (env or {}).get("THREADLINE_DATABASE_URL", "")
    return "postgres" if url.startswith("postgres") else "sqlite"


class Process:
    def __init__(
        self, args: list[str], core: int, env: dict[str, str] | None = None, label: str = ""
    ) -> None:
        self.popen = subprocess.Popen(  # noqa: S603 - this script or our CLI, fixed arguments
            ["taskset", "-c", str(core), sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        profile = os.environ.get("BENCH_PYSPY")  # profile the bridge: py-spy's raw output
        if profile and args[:2] == ["-m", "actors"]:
            profile = profile.replace("{label}", label)  # one file per scenario and round
            subprocess.Popen(  # noqa: S603 - py-spy beside this interpreter, fixed arguments
                [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "100", "-f", "raw",
                 "-d", os.environ.get("BENCH_PYSPY_SECONDS", "10"),
                 "-o", f"{profile}.{_store_of(env)}",
                 "-p", str(self.popen.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def wait_line(self, expected: str) -> None:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().decode().strip()
        if line != expected:
            raise RuntimeError(f"expected {expected!r}, got {line!r}")

    def rss_bytes(self) -> int:
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class Sandbox:
    def __init__(self, workdir: Path, threads: int, rate_limit: int | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        seeds = workdir / "seeds.json"
        args = [__file__, "--sandbox-serve", str(self.port), "--seed-threads", str(threads),
                "--seeds", str(seeds)]  # fmt: skip
        if rate_limit is not None:
            args += ["--rate-limit", str(rate_limit)]
        self.process = Process(args, core=1)
        self.process.wait_line("ready")
        data = json.loads(seeds.read_text())
        self.pairs: list[tuple[str, str]] = [tuple(p) for p in data["pairs"]]
        self.seeded_parts: int = data["parts"]

    def stop(self) -> None:
        self.process.stop()


# --- the journal backlog -------------------------------------------------------------------------


def _message(thread: int, seq: int) -> InboundMessage:
    hook = whatsapp_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret,
        SANDBOX_SECRETS.whatsapp_phone_number_id,
        [
            WhatsAppInbound(
                from_phone=f"1555{thread:07d}",
                text=f"[bench {thread}:{seq}] message {seq} of thread {thread}",
                message_id=f"wamid.bench{thread:07d}{seq:06d}",
            )
        ],
    )
    (event,) = parse_whatsapp(hook.body)
    assert isinstance(event, InboundMessage)
    return event


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
        keys = []
        state: dict[str, bytes | None] = {}
        for t, (contact_id, conversation_id) in enumerate(pairs):
            key = str(_message(t, 0).key)
            keys.append(key)
            state[thread_state_key(key)] = ThreadState(
                contact_id=contact_id, conversation_id=conversation_id
            ).encode()
            state[conversation_index_key(conversation_id)] = key.encode()
            if len(state) >= 20_000:
                await journal.put_state(state)
                state = {}
        if state:
            await journal.put_state(state)
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


# --- the bridge process and the checker ----------------------------------------------------------


def bridge_env(
    workdir: Path, sandbox: Sandbox, database_url: str | None = None, **extra: str
) -> tuple[dict[str, str], str, str]:
    bind = f"127.0.0.1:{_free_port()}"
    metrics = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        **sandbox_settings_env(sandbox.url, f"http://{bind}"),
        "THREADLINE_DATABASE_URL": database_url or f"sqlite:///{workdir / 'journal.db'}",
        "THREADLINE_BIND": bind,
        "THREADLINE_METRICS_BIND": metrics,
        "THREADLINE_MEDIA_DIR": str(workdir / "media"),
        "THREADLINE_LOG_FORMAT": "json",
        "THREADLINE_LOG_LEVEL": "WARNING",
        **extra,
    }
    return env, f"http://{bind}", f"http://{metrics}"


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
    cursor = sandbox.seeded_parts
    last_seq: dict[int, int] = {}
    violations = duplicates = delivered = 0
    seen: set[tuple[int, int]] = set()
    first = last = None
    peak_rss = 0
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30.0) as http:
        with trio.move_on_after(seconds):
            while delivered < expected:
                got = (
                    await http.get(
                        "/intercom/_sandbox/parts", params={"since": cursor, "limit": 20_000}
                    )
                ).json()
                cursor = got["next"]
                for part in got["parts"]:
                    body = str(part["body"])
                    if not body.startswith("[bench "):
                        continue
                    thread_text, seq_text = body[7 : body.index("]")].split(":")
                    thread, seq = int(thread_text), int(seq_text)
                    if (thread, seq) in seen:
                        duplicates += 1
                        continue
                    seen.add((thread, seq))
                    if seq < last_seq.get(thread, -1):
                        violations += 1
                    last_seq[thread] = max(seq, last_seq.get(thread, -1))
                    delivered += 1
                    created = float(part["created_at"])
                    first = created if first is None else min(first, created)
                    last = created if last is None else max(last, created)
                peak_rss = max(peak_rss, bridge.rss_bytes())
                if cpu_from is None and delivered:
                    cpu_from = (delivered, cpu_seconds([bridge.popen.pid]),
                                cpu_seconds(database_pids or []))  # fmt: skip
                if not got["parts"]:
                    await trio.sleep(0.25)
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
        "out_of_order": violations,
        "duplicated": duplicates,
        "first": first,
        "last": last,
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
    env, url, metrics = bridge_env(workdir, sandbox, database_url, **env_extra)
    started = time.time()
    bridge = Process(["-m", "actors", "serve"], core=0, env=env, label=label)
    try:

        async def go() -> dict[str, Any]:
            ready_at = None
            async with httpx.AsyncClient(timeout=1.0) as http:
                with trio.fail_after(60):
                    while ready_at is None:
                        try:
                            if (await http.get(url + "/readyz")).status_code == 200:
                                ready_at = time.time()
                        except httpx.TransportError:
                            await trio.sleep(0.01)
            result = await drain(
                sandbox, expected, bridge=bridge, seconds=timeout,
                database_pids=postmaster_pids(database_url),
            )  # fmt: skip
            result["ready_s"] = ready_at - started
            result["passivations"] = await _metric(metrics, "threadline_actor_passivations_total")
            return result

        result = trio.run(go)
    finally:
        bridge.stop()
    first, last = result["first"], result["last"]
    span = (last - first) if first is not None and last is not None and last > first else math.inf
    result["rate"] = result["delivered"] / span if span != math.inf else 0.0
    return result


# --- the bare baseline ---------------------------------------------------------------------------


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
            for variant in ("pooled", "single"):
                client = Process(
                    [__file__, "--bare-client", sandbox.url, "--seeds", str(work / "seeds.json"),
                     "--messages", str(messages), *(["--single"] if variant == "single" else [])],
                    core=0,
                )  # fmt: skip
                assert client.popen.stdout is not None
                rate = float(client.popen.stdout.readline())
                client.stop()
                (bare_rates if variant == "pooled" else single_rates).append(rate)
        finally:
            sandbox.stop()
        work = tmp / f"e2e-bridge-{r}"
        work.mkdir()
        sandbox = Sandbox(work, threads)
        try:
            trio.run(fill_journal, work / "journal.db", sandbox.pairs, messages, True)
            # No limits: the bridge's own budget (Intercom's 1,666 per 10 s by default) would
            # otherwise be what this measures.
            bridge_results.append(
                run_bridge(
                    work, sandbox, total, timeout=600,
                    THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW="1000000",
                )
            )  # fmt: skip
        finally:
            sandbox.stop()
        if new_database is not None:
            work = tmp / f"e2e-bridge-pg-{r}"
            work.mkdir()
            sandbox = Sandbox(work, threads)
            try:
                database = new_database()
                trio.run(fill_journal, work / "unused.db", sandbox.pairs, messages, True, database)
                pg_results.append(
                    run_bridge(
                        work, sandbox, total, timeout=600, database_url=database,
                        THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW="1000000",
                    )
                )  # fmt: skip
            finally:
                sandbox.stop()
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
            work.mkdir()
            sandbox = Sandbox(work, threads)
            try:
                trio.run(fill_journal, work / "journal.db", sandbox.pairs, messages, True)
                runs[label].append(
                    run_bridge(
                        work, sandbox, threads * messages, timeout=900, label=f"{label}-{r}",
                        THREADLINE_ACTOR_IDLE_SECONDS="2",
                        THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW="1000000",
                    )
                )  # fmt: skip
            finally:
                sandbox.stop()
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
            env, url, _ = bridge_env(work, sandbox)
            started = time.time()
            bridge = Process(["-m", "actors", "serve"], core=0, env=env)
            try:

                async def go(url: str = url, started: float = started) -> tuple[float, float]:
                    ready = None
                    async with (
                        httpx.AsyncClient(timeout=1.0) as http,
                        httpx.AsyncClient(base_url=sandbox.url, timeout=5.0) as sb,
                    ):
                        cursor = (
                            await sb.get("/intercom/_sandbox/parts", params={"since": 0})
                        ).json()["next"]
                        with trio.fail_after(60):
                            while ready is None:
                                try:
                                    if (await http.get(url + "/readyz")).status_code == 200:
                                        ready = time.time()
                                except httpx.TransportError:
                                    pass
                                await trio.sleep(0.005)
                            while True:
                                got = (
                                    await sb.get(
                                        "/intercom/_sandbox/parts",
                                        params={"since": cursor, "limit": 1},
                                    )
                                ).json()
                                if got["parts"]:
                                    return ready - started, float(
                                        got["parts"][0]["created_at"]
                                    ) - started
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--only", default="e2e,ratelimit,keys,recovery")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: e2e also runs the bridge on PostgreSQL in every round (a throwaway "
        "server, fsync on, pinned to the bridge's core, unless --database-url)",
    )
    parser.add_argument("--database-url", help="a PostgreSQL server to create databases on")
    parser.add_argument(
        "--postgres-cpus",
        default="0",
        help="the throwaway PostgreSQL server's cores (0: the bridge's, as SQLite's work is)",
    )
    parser.add_argument(
        "--keys-many", type=int, help="threads of the many-threads side of `keys` (100,000)"
    )
    parser.add_argument("--sandbox-serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed-threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", help=argparse.SUPPRESS)
    parser.add_argument("--rate-limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare-client", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sandbox_serve:
        trio.run(serve_sandbox, args.sandbox_serve, args.seed_threads, Path(args.seeds),
                 args.rate_limit)  # fmt: skip
        return
    if args.bare_client:
        pairs = [tuple(p) for p in json.loads(Path(args.seeds).read_text())["pairs"]]
        rate = trio.run(
            bare_client, args.bare_client, pairs, args.messages, args.connections, not args.single
        )
        print(rate, flush=True)
        return

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
        print(f"  target e2e_vs_bare: {e['ratio']:.2f} (>= 0.6, 0 violations) "
              f"{'ok' if ok else 'MISSED'}")  # fmt: skip
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
            print(f"  target e2e_postgres_vs_sqlite: {e['postgres_vs_sqlite']:.2f} (>= 0.8, 0 "
                  f"violations) {'ok' if ok else 'MISSED'}")  # fmt: skip
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
        print(f"  target ratelimit: {r['ratio']:.3f} x L/10 s (>= 0.95), 429 share "
              f"{100 * r['share_429']:.2f}% (<= 1%) {'ok' if ok else 'MISSED'}")  # fmt: skip
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
        print(f"  target keys_many_vs_few: {k['ratio']:.2f} (>= 0.8) "
              f"{'ok' if ok else 'MISSED'}")  # fmt: skip
    if "recovery" in only:
        c = out["recovery"] = scenario_recovery(tmp, args.quick, rounds)
        print(
            f"  recovery with {c['pending']:,} pending entries: /readyz 200 after "
            f"{c['ready_s']:.2f} s, first delivery after {c['first_delivery_s']:.2f} s "
            f"(bare `import actors.tools` takes {c['bare_python_start_s']:.2f} s)"
        )
        print(f"  target recovery: {c['ready_s']:.2f} s (<= 2) "
              f"{'ok' if c['ready_s'] <= 2 else 'MISSED'}")  # fmt: skip
    if args.json:
        print(json.dumps(out, default=float))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
