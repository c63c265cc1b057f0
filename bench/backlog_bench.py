"""Backlog benchmark: memory of ``threadline serve`` while N threads wait on a throttled Intercom,
their release in per-thread order, and a restart with that backlog.

The backlog is built directly in the journal (as ``delivery_bench.py`` builds its): every one of
N threads has one message pending, and one thread in ``--extra-every`` has two more, appended
half a stride and a stride of threads later (later webhooks of threads that wait in the journal,
far beyond the live actors). Each
thread's contact and conversation exist already (in the sandbox and in the thread's state), so a
message is one Intercom reply. The entries carry real (past) timestamps, so each thread's first
entry is also looked for in its conversation before it is sent (crash recovery): a kill -9 must
not double anything either.

Runs, each a ``threadline serve`` process (SQLite) on core 0, the sandbox Intercom on core 1:

1. **base**: the same settings, an empty journal; its peak RSS (``VmHWM``) is the fixed base.
2. **throttled**: the sandbox allows 1 request per 10-second window; the bridge loads the
   backlog and settles (its live actors stop changing), then waits ``--hold`` seconds more.
   Peak RSS; bytes per waiting thread = (peak - base) / N.
3. **released**: the throttle is lifted through the sandbox control API
   (``POST /intercom/_sandbox/config``); for ``--release`` seconds the parts that reach the
   sandbox are checked: per-thread order, no duplicates. Peak RSS again (throttled and released).
4. **restart**: the process is killed (SIGKILL) and started again on the remaining backlog: time
   from the start to ``/readyz`` 200 and to the first new delivery; order and duplicates are
   checked across both runs for ``--release`` seconds more.

Targets (issue 20): peak RSS <= 500 MB; <= 0.5 KB per waiting thread beyond the base; 0 order
violations and 0 duplicates; ready and first delivery <= 2 s after a restart.

Run: ``.venv/bin/python bench/backlog_bench.py [--quick] [--threads N] [--json]``.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.bridge import InboundJob, encode_job  # noqa: E402
from bench._processes import Process, bridge_env, ready_at  # noqa: E402
from bench._report import bench_parser, target  # noqa: E402
from bench._sandbox import (  # noqa: E402
    PartsChecker,
    Sandbox,
    seed_thread_states,
    whatsapp_message,
)
from runtime import NewEntry, SQLiteJournal  # noqa: E402

MIB = 1024 * 1024
RSS_TARGET = 500 * 1000 * 1000
PER_THREAD_TARGET = 512
RESTART_TARGET = 2.0
_MARK = "9999999"  # the thread number in the template messages (replaced per thread)


# --- the journal backlog -------------------------------------------------------------------------


def _template(seq: int) -> tuple[str, bytes]:
    """The key and payload of message ``seq`` of the thread numbered :data:`_MARK`."""
    event = whatsapp_message(
        f"1555{_MARK}",
        f"[backlog {_MARK}:{seq}] message {seq} of thread {_MARK}",
        f"wamid.backlog{_MARK}{seq:06d}",
    )
    payload = encode_job(InboundJob(message=event, received_at=time.time()))
    return str(event.key), payload


async def fill_journal(path: Path, pairs: list[tuple[str, str]], extra_every: int) -> int:
    """Thread states, one pending message per thread, then two more for every
    ``extra_every``-th thread; returns the number of entries."""
    journal = SQLiteJournal(path)
    templates = [_template(seq) for seq in range(3)]
    for key, payload in templates:
        assert key.count(_MARK) == 1, key
        assert payload.count(_MARK.encode()) >= 3, payload
    count = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        batch: list[NewEntry] = []

        async def add(thread: int, seq: int) -> None:
            nonlocal batch, count
            number = f"{thread:07d}"
            key, payload = templates[seq]
            batch.append(
                NewEntry(
                    key.replace(_MARK, number),
                    f"whatsapp:backlog:{thread}:{seq}",
                    payload.replace(_MARK.encode(), number.encode()),
                )
            )
            count += 1
            if len(batch) >= 5000:
                await journal.append(batch)
                batch = []

        keys = [templates[0][0].replace(_MARK, f"{t:07d}") for t in range(len(pairs))]
        await seed_thread_states(journal, keys, pairs)
        # A sampled thread's later messages arrive while the backlog waits: message 1 half a
        # stride of threads after its first, message 2 a whole stride after it.
        threads, half = len(pairs), extra_every // 2
        for t in range(threads):
            await add(t, 0)
            if t >= half and (t - half) % extra_every == 0:
                await add(t - half, 1)
            if t >= extra_every and (t - extra_every) % extra_every == 0:
                await add(t - extra_every, 2)
        for seq, lag in ((1, half), (2, extra_every)):
            for t in range(max(0, threads - lag), threads):
                if t % extra_every == 0:
                    await add(t, seq)
        if batch:
            await journal.append(batch)
        nursery.cancel_scope.cancel()
    return count


# --- the bridge process and the checks -----------------------------------------------------------


class Bridge:
    def __init__(self, workdir: Path, sandbox: Sandbox, database: Path) -> None:
        # The bridge's own budget must not be what limits the release: the sandbox's is.
        self.env, self.url, metrics = bridge_env(
            workdir, sandbox.url, f"sqlite:///{database}",
            THREADLINE_INTERCOM_RATE_LIMIT_PER_WINDOW="1000000",
        )  # fmt: skip
        self.metrics_url = f"{metrics}/metrics"
        self.process: Process | None = None
        self.started = 0.0
        self.log = workdir / "bridge.log"

    def start(self) -> None:
        self.started = time.time()
        self.process = Process(["-m", "actors", "serve"], core=0, env=self.env, log=self.log)

    async def wait_ready(self) -> float:
        """Seconds from the start to ``/readyz`` 200."""
        return await ready_at(self.url, 300) - self.started

    async def metric(self, name: str) -> float | None:
        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                text = (await http.get(self.metrics_url)).text
        except httpx.TransportError:
            return None
        for line in text.splitlines():
            if line.startswith((name + "{", name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return None

    def rss(self) -> int:
        assert self.process is not None
        return self.process.status("VmRSS")

    def peak(self) -> int:
        assert self.process is not None
        return self.process.status("VmHWM")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            self.process.stop(sig)


async def follow(
    checker: PartsChecker, seconds: float, bridge: Bridge, peaks: list[int], enough: int
) -> int:
    """Check what arrives for up to ``seconds``, or until ``enough`` arrived."""
    delivered = 0
    async with httpx.AsyncClient(base_url=checker.sandbox.url, timeout=30.0) as http:
        with trio.move_on_after(seconds):
            while delivered < enough:
                got = await checker.poll(http)
                delivered += got
                peaks.append(bridge.peak())
                if not got:
                    await trio.sleep(0.2)
    return delivered


async def settle(bridge: Bridge, hold: float, most: float) -> dict[str, float]:
    """Wait until the live actors stop changing (4 s), then ``hold`` seconds more."""
    live, stable = -1.0, 0
    started = time.time()
    with trio.move_on_after(most):
        while stable < 4:
            await trio.sleep(1.0)
            now = await bridge.metric("threadline_actors_live")
            if now is None:
                continue
            stable = stable + 1 if now == live else 0
            live = now
    settled = time.time() - started
    await trio.sleep(hold)
    return {"live_actors": live, "settle_s": settled}


# --- the scenario --------------------------------------------------------------------------------


def run(
    threads: int,
    extra_every: int,
    hold: float,
    release: float,
    enough: int,
    *,
    keep: bool = False,
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="threadline-backlog-bench-"))
    out: dict[str, Any] = {"threads": threads}
    sandbox = Sandbox(tmp, threads, rate_limit=1, name="Backlog")
    try:
        # 1. the base: an empty journal (its schema only), same settings
        empty = tmp / "empty.db"
        trio.run(fill_journal, empty, [], extra_every)
        base = Bridge(tmp, sandbox, empty)
        base.start()
        try:
            out["base_ready_s"] = trio.run(base.wait_ready)
            trio.run(settle, base, hold, 60.0)
            out["base_rss"] = base.peak()
        finally:
            base.stop()
        print(f"  base (empty journal): peak RSS {out['base_rss'] / MIB:.0f} MiB", file=sys.stderr)

        # 2. the backlog, throttled
        database = tmp / "journal.db"
        started = time.perf_counter()
        out["entries"] = trio.run(fill_journal, database, sandbox.pairs, extra_every)
        out["fill_s"] = time.perf_counter() - started
        print(f"  journal: {out['entries']:,} entries in {out['fill_s']:.0f} s", file=sys.stderr)
        bridge = Bridge(tmp, sandbox, database)
        bridge.start()
        checker = PartsChecker(sandbox, "backlog")
        try:
            out["throttled_ready_s"] = trio.run(bridge.wait_ready)
            out.update(trio.run(settle, bridge, hold, 600.0))
            out["throttled_peak_rss"] = bridge.peak()
            out["throttled_rss"] = bridge.rss()
            out["per_thread_bytes"] = (out["throttled_peak_rss"] - out["base_rss"]) / threads
            print(
                f"  throttled: {out['live_actors']:.0f} live actors, peak RSS "
                f"{out['throttled_peak_rss'] / MIB:.0f} MiB, "
                f"{out['per_thread_bytes']:.0f} B per waiting thread beyond the base",
                file=sys.stderr,
            )

            # 3. released
            sandbox.configure(rate_limit=1_000_000)
            peaks: list[int] = []
            started = time.perf_counter()
            out["released_delivered"] = trio.run(follow, checker, release, bridge, peaks, enough)
            out["released_s"] = time.perf_counter() - started
            out["peak_rss"] = max([out["throttled_peak_rss"], *peaks])
            print(
                f"  released: {out['released_delivered']:,} delivered and checked "
                f"({out['released_s']:.0f} s), "
                f"peak RSS {out['peak_rss'] / MIB:.0f} MiB",
                file=sys.stderr,
            )
        finally:
            bridge.stop(signal.SIGKILL)

        # 4. restart on what is left
        again = Bridge(tmp, sandbox, database)
        before = len(checker.seen)
        again.start()
        try:
            checker.first_at = None
            out["restart_ready_s"], out["restart_first_delivery_s"] = _restart_times(checker, again)
            peaks = []
            out["restart_delivered"] = len(checker.seen) - before
            out["restart_delivered"] += trio.run(follow, checker, release, again, peaks, enough)
            out["restart_peak_rss"] = max([again.peak(), *peaks])
        finally:
            again.stop()
        out["delivered"] = len(checker.seen)
        out["out_of_order"] = checker.out_of_order
        out["duplicated"] = checker.duplicated
        out["later_delivered"] = checker.later
    finally:
        sandbox.stop()
        if keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _restart_times(checker: PartsChecker, bridge: Bridge) -> tuple[float, float]:
    """Seconds from the start to ``/readyz`` 200 and to the first delivery seen."""

    async def go() -> tuple[float, float]:
        ready = await bridge.wait_ready()
        async with httpx.AsyncClient(base_url=checker.sandbox.url, timeout=30.0) as http:
            with trio.fail_after(120):
                while checker.first_at is None:
                    await checker.poll(http)
                    if checker.first_at is None:
                        await trio.sleep(0.005)
        assert checker.first_at is not None
        return ready, checker.first_at - bridge.started

    return trio.run(go)


def main() -> None:
    parser = bench_parser(__doc__, "50,000 threads (a smoke test)", rounds=False)
    parser.add_argument("--threads", type=int, help="waiting threads (default 1,000,000)")
    parser.add_argument("--extra-every", type=int, default=100, help="1 in K threads gets 3")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds waiting after settling")
    parser.add_argument("--release", type=float, default=180.0, help="most seconds checked")
    parser.add_argument("--enough", type=int, default=3000, help="deliveries checked per run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()
    threads = args.threads or (50_000 if args.quick else 1_000_000)
    print(
        f"backlog benchmark: {threads:,} threads waiting on a throttled sandbox Intercom; bridge "
        "(`threadline serve`, SQLite) on core 0, sandbox on core 1"
    )
    r = run(threads, args.extra_every, args.hold, args.release, args.enough, keep=args.keep)
    per_ok = r["per_thread_bytes"] <= PER_THREAD_TARGET
    rss_ok = r["peak_rss"] <= RSS_TARGET
    order_ok = r["out_of_order"] == r["duplicated"] == 0 < r["released_delivered"]
    restart_ok = max(r["restart_ready_s"], r["restart_first_delivery_s"]) <= RESTART_TARGET
    print(
        f"  base {r['base_rss'] / MIB:.0f} MiB; throttled peak {r['throttled_peak_rss'] / MIB:.0f}"
        f" MiB ({r['live_actors']:.0f} live actors); peak incl. release {r['peak_rss'] / MIB:.0f}"
        f" MiB; restart: ready {r['restart_ready_s']:.2f} s, first delivery "
        f"{r['restart_first_delivery_s']:.2f} s (base ready {r['base_ready_s']:.2f} s); delivered "
        f"{r['delivered']:,} ({r['later_delivered']:,} later messages) "
        f"(out of order {r['out_of_order']}, duplicated {r['duplicated']})"
    )
    target("per_thread", f"{r['per_thread_bytes']:.0f} B (<= {PER_THREAD_TARGET})", per_ok)
    target("peak_rss", f"{r['peak_rss'] / 1e6:.0f} MB (<= 500)", rss_ok)
    target("order", f"{r['out_of_order']} out of order, {r['duplicated']} duplicated, "
           f"{r['released_delivered']:,} released", order_ok)  # fmt: skip
    target("restart", f"ready {r['restart_ready_s']:.2f} s, first delivery "
           f"{r['restart_first_delivery_s']:.2f} s (<= 2)", restart_ok)  # fmt: skip
    if args.json:
        print(json.dumps(r, default=float))


if __name__ == "__main__":
    main()
