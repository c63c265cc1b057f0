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
import gc
import json
import math
import os
import re
import shutil
import signal
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

from bench.common import cpu_seconds, postgres, uptime  # noqa: E402
from channels.sandbox import WhatsAppInbound, whatsapp_webhook  # noqa: E402 - after the path setup

SECRET = "bench-whatsapp-app-secret"  # noqa: S105 - a benchmark fixture
PHONE_ID = "100000000000001"
CONNECTIONS = 64
STOP_SECONDS = 10.0  # a server's stop waits this long after SIGTERM, then SIGKILLs it

LUA = r"""
local reqs = {}
local i = 0
init = function(args)
  local f = assert(io.open(args[1], "r"))
  while true do
    local sig = f:read("*l")
    if not sig then break end
    local body = f:read("*l")
    reqs[#reqs + 1] = wrk.format("POST", "/webhooks/whatsapp",
      {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig}, body)
  end
  f:close()
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, " ..
    "\"p99_us\": %d, \"max_us\": %d, \"status_errors\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


# --- the servers (each in its own process) -------------------------------------------------------


async def _bare_app(scope: Any, receive: Any, send: Any) -> None:  # noqa: ANN401 - raw ASGI
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b"ok"
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve(
    kind: str, port: int, workdir: Path, freeze: bool, database_url: str | None = None
) -> None:
    from prometheus_client import CollectorRegistry

    from actors.bridge import DirectoryMediaStore
    from actors.core import BridgeMetrics, Settings
    from actors.edge import Ingress
    from runtime import (
        Journal,
        freeze_startup_heap,
        hypercorn_config,
        open_postgres_journal,
        open_sqlite_journal,
        serve_asgi,
    )

    config = hypercorn_config(f"127.0.0.1:{port}", keep_alive_timeout=75.0)
    pauses = GcPauses()

    async def report_on_sigterm() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                print("GCJSON " + json.dumps(pauses.summary()), flush=True)
                nursery.cancel_scope.cancel()

    def started() -> None:
        if freeze:
            freeze_startup_heap()  # as `threadline serve` does once it listens
        gc.callbacks.append(pauses)  # start-up's own collections are not the benchmark's
        print("ready", flush=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report_on_sigterm)
        if kind == "bare":
            await nursery.start(serve_asgi, _bare_app, config)
            started()
            return
        values: dict[str, Any] = {
            "whatsapp_app_secret": SECRET,
            "whatsapp_verify_token": "bench-verify-token",
            "intercom_access_token": "bench-intercom-token-unused",
        }
        settings = Settings(_env_file=None, **values)
        opened: contextlib.AbstractAsyncContextManager[Journal] = (
            open_sqlite_journal(workdir / "journal.db")
            if kind == "bridge"
            else open_postgres_journal(database_url or "")  # as `threadline serve` opens it
        )
        async with opened as journal:
            ingress = Ingress(
                settings,
                journal,
                wake=lambda: None,
                metrics=BridgeMetrics(CollectorRegistry()),
                media=DirectoryMediaStore(workdir / "media"),
                ready=lambda: None,
            )
            await nursery.start(serve_asgi, ingress.app, config)
            started()
            await trio.sleep_forever()


class GcPauses:
    """A ``gc.callbacks`` hook: how long the collector stopped the server, per generation."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self.started) * 1000)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for generation, pauses in self.pauses.items():
            out[f"gen{generation}_count"] = len(pauses)
            out[f"gen{generation}_max_ms"] = round(max(pauses, default=0.0), 2)
        return out


# --- the client side ------------------------------------------------------------------------------


def build_requests(count: int, run: str, customers: int = 5000) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        message = WhatsAppInbound(
            from_phone=f"1555{i % customers:07d}",
            text=f"benchmark message {i} of run {run}",
            message_id=f"wamid.bench{run}{i:09d}",
        )
        hook = whatsapp_webhook(SECRET, PHONE_ID, [message])
        out.append((hook.headers["X-Hub-Signature-256"], hook.body))
    return out


def write_requests(path: Path, requests: list[tuple[str, bytes]]) -> None:
    with path.open("wb") as f:
        for signature, body in requests:
            assert b"\n" not in body
            f.write(signature.encode() + b"\n" + body + b"\n")


class Server:
    def __init__(
        self, kind: str, workdir: Path, *, freeze: bool = True, database_url: str | None = None
    ) -> None:
        self.kind = kind
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - this script, fixed arguments
            ["taskset", "-c", "0", sys.executable, __file__, "--serve", kind,
             "--port", str(self.port), "--workdir", str(workdir),
             *([] if freeze else ["--no-freeze"]),
             *([] if database_url is None else ["--database-url", database_url])],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"{kind} server did not start")
        profile = os.environ.get("BENCH_PYSPY")  # py-spy's raw output of this kind's servers
        if profile and kind == os.environ.get("BENCH_PYSPY_KIND", "bridge"):
            subprocess.Popen(  # noqa: S603 - py-spy beside this interpreter, fixed arguments
                [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "100", "-f", "raw",
                 "-d", os.environ.get("BENCH_PYSPY_SECONDS", "10"), "-o", f"{profile}.{kind}",
                 "-p", str(self.process.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def stop(self) -> dict[str, float]:
        """Stop the server; its garbage-collection pauses since it was ready."""
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"  {self.kind} server still running {STOP_SECONDS:.0f} s after SIGTERM: "
                  "killed (SIGKILL); its GC figures are lost", file=sys.stderr)  # fmt: skip
            self.process.kill()
            out, _ = self.process.communicate(timeout=STOP_SECONDS)
        match = re.search(rb"GCJSON (\{.*\})", out)
        return {} if match is None else dict(json.loads(match.group(1)))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_wrk(
    port: int, requests_file: Path, script: Path, seconds: float, pin: str | None = "1"
) -> dict[str, float]:
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [*([] if pin is None else ["taskset", "-c", pin]),
         "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s",
         "-s", str(script), f"http://127.0.0.1:{port}/webhooks/whatsapp", "--", str(requests_file)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"WRKJSON (\{.*\})", done.stdout)
    if match is None:
        raise RuntimeError(f"wrk said: {done.stdout}\n{done.stderr}")
    data = json.loads(match.group(1))
    return {
        "rate": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": data["status_errors"] + data["socket_errors"],
        "requests": data["requests"],
    }


async def open_loop(
    port: int, requests: list[tuple[str, bytes]], rate: float, seconds: float
) -> dict[str, float]:
    """Send at a fixed rate over keep-alive connections; latency from the scheduled time."""
    count = min(len(requests), int(rate * seconds))
    head = (
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nX-Hub-Signature-256: {sig}\r\n"
        "Content-Length: {length}\r\n\r\n"
    )
    wire = [
        head.format(port=port, sig=sig, length=len(body)).encode() + body
        for sig, body in requests[:count]
    ]
    send, receive = trio.open_memory_channel[tuple[float, bytes]](math.inf)
    latencies: list[float] = []
    errors = [0]

    async def connection() -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = b""
        async with stream:
            async for due, data in receive:
                await stream.send_all(data)
                while b"\r\n\r\n" not in buffer:
                    buffer += await stream.receive_some(65536)
                header, _, buffer = buffer.partition(b"\r\n\r\n")
                sized = re.search(rb"(?i)content-length: *(\d+)", header)
                if sized is not None:
                    length = int(sized.group(1))
                    while len(buffer) < length:
                        buffer += await stream.receive_some(65536)
                    buffer = buffer[length:]
                else:  # chunked: small answers, read through the last chunk
                    while b"0\r\n\r\n" not in buffer:
                        buffer += await stream.receive_some(65536)
                    buffer = buffer.partition(b"0\r\n\r\n")[2]
                if not header.startswith(b"HTTP/1.1 200"):
                    errors[0] += 1
                latencies.append((trio.current_time() - due) * 1000)

    async with trio.open_nursery() as nursery:
        for _ in range(CONNECTIONS):
            nursery.start_soon(connection)
        await trio.sleep(0.2)  # connections open
        start = trio.current_time() + 0.05
        async with send:
            for index, data in enumerate(wire):
                due = start + index / rate
                await trio.sleep_until(due)
                send.send_nowait((due, data))
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    return {
        "rate": rate,
        "sent": count,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": ordered[-1],
        "errors": errors[0],
    }


def _gc_line(figures: dict[str, float]) -> str:
    if "gen2_count" not in figures:
        return "collector pauses not reported"
    return ", ".join(
        f"gen{g} {figures[f'gen{g}_count']:.0f}x (max {figures[f'gen{g}_max_ms']:.1f} ms)"
        for g in (0, 1, 2)
    )


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
                f"{_gc_line(result)}"
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


def _postmaster_pid(database_url: str) -> list[int]:
    """The throwaway server's postmaster (its data directory's postmaster.pid), if it is ours."""
    port = database_url.rsplit(":", 1)[1].split("/")[0]
    for pidfile in Path(tempfile.gettempdir()).glob("threadline-pg-*/data/postmaster.pid"):
        lines = pidfile.read_text().splitlines()
        if len(lines) > 3 and lines[3].strip() == port:
            return [int(lines[0])]
    return []


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
                port, metrics = _free_port(), _free_port()
                env = {
                    **os.environ,
                    "THREADLINE_DATABASE_URL": url,
                    "THREADLINE_BIND": f"127.0.0.1:{port}",
                    "THREADLINE_METRICS_BIND": f"127.0.0.1:{metrics}",
                    "THREADLINE_WHATSAPP_APP_SECRET": SECRET,
                    "THREADLINE_WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
                    "THREADLINE_WHATSAPP_ACCESS_TOKEN": "bench-whatsapp-token-unused",
                    "THREADLINE_INTERCOM_ACCESS_TOKEN": "bench-intercom-token-unused",
                    "THREADLINE_INTERCOM_BASE_URL": f"http://127.0.0.1:{_free_port()}",
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
                    pg = _postmaster_pid(url)
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
    print(f"  target workers2_vs_1: {ratio:.2f} (>= 1.6) {'ok' if ratio >= 1.6 else 'MISSED'}")
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: a PostgreSQL bridge round beside the SQLite one in every round (a "
        "throwaway server, fsync on, pinned to the server's core, unless --database-url)",
    )
    parser.add_argument(
        "--workers-scaling",
        action="store_true",
        help="only `threadline serve --workers 1` against `--workers 2` on PostgreSQL",
    )
    parser.add_argument("--database-url", help="a PostgreSQL server to create databases on")
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
    parser.add_argument("--serve", choices=["bare", "bridge", "bridge-pg"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, args.serve, args.port, Path(args.workdir), not args.no_freeze,
                 args.database_url)  # fmt: skip
        return
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
    print(f"    garbage collections in the bridge meanwhile: {_gc_line(latency)}")
    bare_latency = latencies["bare"]
    print(
        f"  the same open loop against the bare app: p50 {bare_latency['p50_ms']:.1f} ms, "
        f"p90 {bare_latency['p90_ms']:.1f} ms, p99 {bare_latency['p99_ms']:.1f} ms, "
        f"max {bare_latency['max_ms']:.1f} ms"
    )
    ok_rate = ratio >= 0.8
    ok_latency = latency["p99_ms"] <= 50
    print(f"  target ingress_vs_bare: {ratio:.2f} (>= 0.8) {'ok' if ok_rate else 'MISSED'}")
    print(
        f"  target p99_at_half_rate: {latency['p99_ms']:.1f} ms (<= 50) "
        f"{'ok' if ok_latency else 'MISSED'}"
    )
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
        print(
            f"  target ingress_postgres_vs_sqlite: {pg_ratio:.2f} (>= 0.8) "
            f"{'ok' if pg_ratio >= 0.8 else 'MISSED'}"
        )
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
