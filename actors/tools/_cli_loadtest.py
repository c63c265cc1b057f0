"""``threadline loadtest``: its arguments, turned into the driver's options (the driver is
actors.tools._loadtest, imported when the command runs)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ..core import configure_logging
from ._loadgen import CHANNELS, LoadPlan

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["loadtest_command", "loadtest_parser"]

_D = TypeVar("_D", bound="DataclassInstance")


def loadtest_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    load = commands.add_parser(
        "loadtest",
        help="ordered-delivery load test against an embedded or a running bridge",
        description="Send signed webhooks at a target rate and prove, at the sandbox Intercom, "
        "that every acknowledged message arrived once and in order per thread. Without "
        "--target, a bridge and the sandboxes start in this process. Exit 0 on a pass, 1 when "
        "anything was lost, doubled or reordered, 2 when the test could not run.",
    )
    load.add_argument("--threads", type=int, default=100, help="customer threads (%(default)s)")
    load.add_argument(
        "--messages-per-thread", type=int, default=10, help="messages per thread (%(default)s)"
    )
    load.add_argument(
        "--rate", type=float, default=0.0, help="messages/s overall; 0 = as fast as it goes"
    )
    load.add_argument("--total", type=int, help="stop after this many messages")
    load.add_argument(
        "--duration", type=float, dest="duration_s", metavar="DURATION",
        help="stop sending after this many seconds",
    )  # fmt: skip
    load.add_argument("--channels", default=",".join(CHANNELS), help="channel mix (%(default)s)")
    load.add_argument(
        "--attachments", type=float, default=0.0, dest="attachment_share", metavar="ATTACHMENTS",
        help="share of messages with an image (0..1)",
    )  # fmt: skip
    load.add_argument("--concurrency", type=int, default=64, help="requests in flight at most")
    load.add_argument(
        "--drain-seconds",
        type=float,
        default=60.0,
        help="after sending, wait this long without progress before counting losses",
    )
    load.add_argument("--target", help="a running bridge's ingress URL (needs --sandbox)")
    load.add_argument("--sandbox", help="the `threadline sandbox` URL that bridge delivers to")
    load.add_argument("--public-url", help="the bridge's THREADLINE_PUBLIC_URL (default --target)")
    load.add_argument("--metrics", help="the bridge's metrics URL, for retries and dead letters")
    load.add_argument("--metrics-token", help="bearer token of that /metrics")
    load.add_argument("--database-url", help="embedded bridge's journal (default: temporary)")
    faults = load.add_argument_group("faults in the sandbox Intercom (restored afterwards)")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    faults.add_argument("--error-rate", type=float, default=0.0, help="share answered 5xx")
    faults.add_argument("--timeout-rate", type=float, default=0.0, help="share held, then 504")
    faults.add_argument("--rate-limit", type=int, help="requests per window, then 429")
    faults.add_argument(
        "--rate-window", type=float, default=10.0, dest="rate_window_seconds",
        metavar="RATE_WINDOW", help="window seconds",
    )  # fmt: skip
    faults.add_argument(
        "--delete-conversations", type=int, default=0, help="conversations deleted (one a second)"
    )
    faults.add_argument(
        "--sandbox-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other sandbox switch (JSON value), e.g. swap_next_parts=1",
    )
    load.add_argument(
        "--max-p99-ms",
        type=float,
        help="FAIL (exit 1) when the latency p99 (send → Intercom) exceeds this many ms",
    )
    load.add_argument("--json", action="store_true", help="last line of stdout: a JSON report")
    load.add_argument("--report", help="write a self-contained HTML report to this file")
    load.add_argument(
        "--progress", choices=("auto", "rich", "plain", "off"), default="auto",
        help="live display: rich on a terminal, plain lines otherwise (%(default)s)",
    )  # fmt: skip


def _from_flags(cls: type[_D], args: argparse.Namespace, **given: Any) -> _D:  # noqa: ANN401
    """A ``cls`` (a dataclass) from the flags whose destinations are named as its fields (the
    parser above names them so); ``given`` wins. Fields without a flag keep their defaults."""
    flags = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**(flags | given))


def loadtest_command(args: argparse.Namespace) -> int:
    from ._loadtest import Faults, LoadtestOptions, run_loadtest

    extra: dict[str, Any] = {}
    for item in args.sandbox_set:
        name, sep, raw = item.partition("=")
        if not sep:
            reason = f"expected NAME=VALUE, got {item!r}"
            print(f"threadline loadtest: {reason}", file=sys.stderr)  # noqa: T201 - CLI output
            return 2
        try:
            extra[name] = json.loads(raw)
        except ValueError:
            extra[name] = raw
    channels = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    if not channels or set(channels) - set(CHANNELS):
        print(f"threadline loadtest: unknown channel in {args.channels!r}", file=sys.stderr)  # noqa: T201
        return 2
    if args.max_p99_ms is not None and not args.max_p99_ms > 0:
        print("threadline loadtest: --max-p99-ms must be above 0", file=sys.stderr)  # noqa: T201
        return 2
    options = _from_flags(
        LoadtestOptions,
        args,
        plan=_from_flags(LoadPlan, args, channels=channels),
        faults=_from_flags(Faults, args, extra=extra),
        report=Path(args.report) if args.report else None,
    )
    configure_logging("text", "WARNING")
    return trio.run(run_loadtest, options)
