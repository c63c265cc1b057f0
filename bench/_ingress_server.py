"""The ingress benchmark's servers, each in its own process pinned to core 0: the bridge's
ingress (verify, parse, journal on SQLite or PostgreSQL, 200) and a bare Hypercorn-Trio ASGI app
that reads the payload and answers 200, served with the same Hypercorn settings; each reports
its garbage-collection pauses when stopped.

``python -m bench._ingress_server KIND --port P --workdir W`` (from the repository's root, as
:class:`Server` runs it) serves one.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

from bench._ingress_load import SECRET
from bench._processes import ROOT, free_port

__all__ = ["GcPauses", "Server", "gc_line", "serve"]

STOP_SECONDS = 10.0  # a server's stop waits this long after SIGTERM, then SIGKILLs it


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


class Server:
    def __init__(
        self, kind: str, workdir: Path, *, freeze: bool = True, database_url: str | None = None
    ) -> None:
        self.kind = kind
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603 - this module, fixed arguments
            ["taskset", "-c", "0", sys.executable, "-m", "bench._ingress_server", kind,
             "--port", str(self.port), "--workdir", str(workdir),
             *([] if freeze else ["--no-freeze"]),
             *([] if database_url is None else ["--database-url", database_url])],
            stdout=subprocess.PIPE,
            cwd=ROOT,
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


def gc_line(figures: dict[str, float]) -> str:
    if "gen2_count" not in figures:
        return "collector pauses not reported"
    return ", ".join(
        f"gen{g} {figures[f'gen{g}_count']:.0f}x (max {figures[f'gen{g}_max_ms']:.1f} ms)"
        for g in (0, 1, 2)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="an ingress benchmark server")
    parser.add_argument("kind", choices=["bare", "bridge", "bridge-pg"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--no-freeze", action="store_true")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    trio.run(serve, args.kind, args.port, args.workdir, not args.no_freeze, args.database_url)
