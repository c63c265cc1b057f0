"""``threadline loadtest``: the ordered-delivery load test, embedded or against a running bridge.

::

    embedded:  sandbox + bridge started here (SQLite journal in a temporary directory)
    remote:    --target http://bridge --sandbox http://sandbox [--metrics http://bridge-metrics]

      generator ──signed webhooks──► bridge ──► sandbox Intercom ◄──parts feed── checker
                                                   ▲ faults (latency, 5xx, 429 windows,
                                                   │ deleted conversations, test faults)
                                       control ────┘ /intercom/_sandbox/config

The generator and the checker are :mod:`actors.tools._loadgen` and
:mod:`actors.tools._loadcheck`; the target (embedded or remote: the sandbox's control API and
the bridge's counters) is :mod:`actors.tools._loadtest_target`. This module applies the faults
to the sandbox Intercom (and restores its previous switches afterwards), reads the bridge's
retry and dead-letter counters before and after the run (unknown for a remote bridge without
``--metrics``), shows progress (rich on a terminal, plain lines otherwise), prints the report
(``--json``: one object as the last line of standard output) and writes the HTML report with
what describes the run (the bridge's version, the settings that matter, the host, the start
time and the thresholds). Exit status 0 when nothing was lost, doubled or reordered and the
latency p99 is within ``--max-p99-ms`` (when given), 1 otherwise.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import trio

from ..core import package_version
from ._loadcheck import LoadReport
from ._loadgen import LoadMedia, LoadPlan, LoadProgress, run_load
from ._loadtest_report import render_html
from ._loadtest_target import LoadtestError, SandboxControl, open_target

__all__ = ["Faults", "LoadtestOptions", "run_loadtest"]

# Switches this command may change on the sandbox Intercom; restored after the run.
_FAULT_KEYS = ("latency_seconds", "error_rate", "timeout_rate", "rate_limit", "rate_window_seconds")
_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16


@dataclass(frozen=True)
class Faults:
    """Faults injected into the sandbox Intercom for the duration of the run."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    rate_limit: int | None = None
    rate_window_seconds: float = 10.0
    delete_conversations: int = 0
    """Conversations of this run deleted while it sends (one a second), as a teammate would."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Any other sandbox switch (``--sandbox-set name=value``), e.g. the test faults."""

    def sandbox_changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.latency_ms:
            changes["latency_seconds"] = self.latency_ms / 1000
        if self.error_rate:
            changes["error_rate"] = self.error_rate
        if self.timeout_rate:
            changes["timeout_rate"] = self.timeout_rate
        if self.rate_limit is not None:
            changes["rate_limit"] = self.rate_limit
            changes["rate_window_seconds"] = self.rate_window_seconds
        changes.update(self.extra)
        return changes


@dataclass(frozen=True)
class LoadtestOptions:
    """Everything ``threadline loadtest`` was asked to do."""

    plan: LoadPlan
    faults: Faults = Faults()
    target: str | None = None
    """A running bridge's ingress URL; None starts an embedded one."""
    sandbox: str | None = None
    public_url: str | None = None
    """The running bridge's THREADLINE_PUBLIC_URL (default: ``target``)."""
    metrics: str | None = None
    metrics_token: str | None = None
    database_url: str | None = None
    """Embedded mode's journal (default: SQLite in a temporary directory)."""
    json: bool = False
    report: Path | None = None
    progress: str = "auto"
    """``auto`` (rich on a terminal, plain lines otherwise), ``rich``, ``plain`` or ``off``."""
    max_p99_ms: float | None = None
    """The verdict FAILs when the latency p99 (send → Intercom) exceeds this; None: no limit."""


def host_info() -> dict[str, Any]:
    """The machine the load generator ran on."""
    return {
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
    }


async def _delete_conversations(
    control: SandboxControl, count: int, conversations: list[str], done: list[int]
) -> None:
    deleted: set[str] = set()
    while done[0] < count:
        await trio.sleep(1.0)
        fresh = [c for c in reversed(conversations) if c not in deleted]
        if fresh:
            deleted.add(fresh[0])
            await control.delete_conversation(fresh[0])
            done[0] += 1


async def execute(
    options: LoadtestOptions, progress: Callable[[LoadProgress], None] | None
) -> tuple[LoadReport, dict[str, Any]]:
    """Run the load test; returns the report and what describes the run (mode, plan, faults)."""
    async with open_target(options) as where:
        control = where.control
        before_config = await control.config()
        changes = options.faults.sandbox_changes()
        media = None
        if options.plan.attachment_share > 0:
            media_id, path = await control.add_media(_PNG, "image/png", "load.png")
            viber = f"{where.viber_base.rstrip('/')}/media/{media_id}" if where.viber_base else None
            media = LoadMedia(media_id, where.twilio_base.rstrip("/") + path, viber_url=viber)
        stats_before = await control.stats()
        counters_before = await where.read_counters() if where.read_counters else None
        conversations: list[str] = []
        deleted = [0]
        try:
            await control.configure(changes)
            async with trio.open_nursery() as nursery:
                if options.faults.delete_conversations:
                    nursery.start_soon(
                        _delete_conversations,
                        control,
                        options.faults.delete_conversations,
                        conversations,
                        deleted,
                    )

                def on_part(part: dict[str, Any]) -> None:
                    conversation = str(part.get("conversation_id"))
                    if not conversations or conversations[-1] != conversation:
                        conversations.append(conversation)

                report = await run_load(
                    options.plan,
                    where.target,
                    where.feed,
                    media=media,
                    progress=progress,
                    on_part=on_part,
                )
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                restore = {k: before_config[k] for k in changes if k in before_config}
                await control.configure(restore)
        stats_after = await control.stats()
        report.rejected_429 = int(stats_after["rate_limited"]) - int(stats_before["rate_limited"])
        if where.read_counters is not None and counters_before is not None:
            after = await where.read_counters()
            report.retries = after["retries"] - counters_before["retries"]
            report.dead_letters = after["dead_letters"] - counters_before["dead_letters"]
        report.notes.extend(where.notes)
        report.max_p99_ms = options.max_p99_ms
        found = await where.read_version() if where.read_version is not None else None
        if options.faults.delete_conversations:
            report.notes.append(
                f"deleted {deleted[0]} of {options.faults.delete_conversations} conversations"
            )
        meta = {
            "mode": where.mode,
            "target": where.target.bridge_url,
            "bridge_version": found or "unknown (pass --metrics URL to read it)",
            "loadtest_version": package_version(),
            "store": where.store,
            "host": host_info(),
            "thresholds": {
                "lost": 0,
                "duplicated": 0,
                "out_of_order": 0,
                "max_p99_ms": options.max_p99_ms,
            },
            "plan": {
                "threads": options.plan.threads,
                "messages_per_thread": options.plan.messages_per_thread,
                "rate": options.plan.rate,
                "total": options.plan.total,
                "duration_s": options.plan.duration_s,
                "channels": list(options.plan.channels),
                "attachment_share": options.plan.attachment_share,
                "concurrency": options.plan.concurrency,
            },
            "faults": changes | {"delete_conversations": options.faults.delete_conversations},
            "intercom_requests": int(stats_after["requests_total"])
            - int(stats_before["requests_total"]),
        }
        return report, meta


# --- presentation -----------------------------------------------------------------------------


def _rate(p: LoadProgress) -> str:
    return "-" if p.rate_per_s is None else f"{p.rate_per_s:.1f} msg/s"


def _eta(p: LoadProgress) -> str:
    if p.eta_s is None:
        return "-"
    seconds = round(p.eta_s)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _p99(p: LoadProgress) -> str:
    return "-" if p.p99_ms is None else f"{p.p99_ms:.0f} ms"


def _plain_progress(err: TextIO) -> Callable[[LoadProgress], None]:
    last = [-1.0]

    def show(p: LoadProgress) -> None:
        if p.elapsed_s - last[0] < 1.0 and p.sending:
            return
        last[0] = p.elapsed_s
        phase = "sending" if p.sending else "draining"
        print(
            f"[{p.elapsed_s:6.1f}s] {phase}: sent {p.sent}, acknowledged {p.acknowledged}, "
            f"delivered {p.delivered}, duplicated {p.duplicated}; rate {_rate(p)}, "
            f"ETA {_eta(p)}, p99 {_p99(p)}",
            file=err,
            flush=True,
        )

    return show


class _RichProgress:
    def __init__(self, err: TextIO, total: int | None) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=err)
        self._live = Live(console=self._console, refresh_per_second=4, transient=False)
        self._total = total

    def __enter__(self) -> _RichProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def __call__(self, p: LoadProgress) -> None:
        from rich.table import Table

        table = Table(title="threadline loadtest", show_header=True, expand=False)
        columns = ("elapsed", "phase", "sent", "acknowledged", "delivered", "duplicated")
        for column in (*columns, "rate", "ETA", "p99 (5 s)"):
            table.add_column(column, justify="right")
        sent = f"{p.sent}" if self._total is None else f"{p.sent}/{self._total}"
        table.add_row(
            f"{p.elapsed_s:.1f}s",
            "sending" if p.sending else "draining",
            sent,
            str(p.acknowledged),
            str(p.delivered),
            str(p.duplicated),
            _rate(p),
            _eta(p),
            _p99(p),
        )
        self._live.update(table)


def summary_lines(report: LoadReport, meta: dict[str, Any]) -> list[str]:
    """The human-readable report."""
    lat, ack = report.latency_ms, report.ack_latency_ms

    def unknown(value: int | None) -> str:
        return "unknown" if value is None else str(value)

    verdict = "PASS" if report.passed else "FAIL: " + ", ".join(report.failures)
    limit = "none" if report.max_p99_ms is None else f"{report.max_p99_ms:g} ms"
    return [
        f"{verdict} ({meta['mode']} bridge at {meta['target']})",
        f"  bridge {meta['bridge_version']}, store {meta['store']}, host "
        f"{meta['host']['hostname']} ({meta['host']['cpu_count']} CPUs); thresholds: 0 lost, "
        f"0 duplicated, 0 out of order, latency p99 {limit}",
        f"  sent {report.sent}, acknowledged {report.acknowledged}, delivered "
        f"{report.delivered}, lost {report.lost}, duplicated {report.duplicated}, "
        f"out of order {report.out_of_order}",
        f"  throughput {report.throughput_per_s:.1f} messages/s over {report.duration_s:.1f} s",
        f"  send → Intercom latency ms: p50 {lat['p50']}, p90 {lat['p90']}, "
        f"p99 {lat['p99']}, max {lat['max']}; negative (clock bug) {report.negative_latencies}",
        f"  ingress acknowledgement latency ms: p50 {ack['p50']}, p90 {ack['p90']}, "
        f"p99 {ack['p99']}, max {ack['max']}",
        f"  Intercom requests {meta['intercom_requests']}, answered 429: "
        f"{unknown(report.rejected_429)}; bridge retries {unknown(report.retries)}, "
        f"dead letters {unknown(report.dead_letters)}",
        *(f"  note: {note}" for note in report.notes),
    ]


async def run_loadtest(
    options: LoadtestOptions, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run ``threadline loadtest``; returns the exit status (0 pass, 1 fail, 2 could not run)."""
    mode = options.progress
    if mode == "auto":
        mode = "rich" if err.isatty() else "plain"
    total = options.plan.total or options.plan.threads * options.plan.messages_per_thread
    started = time.time()
    try:
        if mode == "rich":
            with _RichProgress(err, total) as live:
                report, meta = await execute(options, live)
        else:
            show = _plain_progress(err) if mode == "plain" else None
            report, meta = await execute(options, show)
    except (LoadtestError, httpx.TransportError) as exc:
        print(f"threadline loadtest: {exc}", file=err)
        return 2
    meta["started_at"] = started
    for line in summary_lines(report, meta):
        print(line, file=out)
    if options.report is not None:
        options.report.write_text(render_html(report, meta), encoding="utf-8")
        print(f"  report written to {options.report}", file=out)
    if options.json:
        described = {k: meta[k] for k in ("mode", "bridge_version", "store", "host", "thresholds")}
        print(json.dumps(report.as_json() | described | {"started_at": started}), file=out)
    out.flush()
    return 0 if report.passed else 1
