"""The ``threadline`` command line (docs/architecture.md §4).

- ``threadline serve``       run the bridge (``THREADLINE_*`` settings or ``.env``; flags win)
- ``threadline check``       verify every configured credential against the real APIs
- ``threadline sandbox``     run the sandbox Intercom and providers as a standalone server
- ``threadline demo``        everything in one process: a scripted scenario and a short load
- ``threadline loadtest``    ordered-delivery load test against a running or embedded bridge
- ``threadline deadletters list|show|replay``   operate on the dead-letter list
- ``threadline threads show``   one thread: state, pending entries, dead letters
- ``threadline erase``          delete one customer thread's data from the journal
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import trio
from pydantic import ValidationError

from channels import ThreadKey
from runtime import freeze_startup_heap, hypercorn_config, serve_asgi

from .._app import (
    ConfigurationError,
    StartupError,
    check_bindable,
    check_settings,
    mask_secrets,
    open_journal,
    run_bridge,
)
from .._logging import JsonFormatter, configure_logging
from .._settings import Settings
from .._workers import run_workers
from ._check import run_checks
from ._demo import run_demo
from ._operator import (
    JournalMissing,
    check_journal_file,
    dead_letter_json,
    describe_plan,
    describe_untouched,
    erase_thread,
    human_time,
    plan_erase,
    show_dead_letter,
    show_thread,
)
from ._sandbox import SANDBOX_SECRETS, SandboxApp, sandbox_settings_env

__all__ = ["build_parser", "main"]

logger = logging.getLogger("threadline.cli")


def _version() -> str:
    try:
        return version("threadline")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="threadline",
        description="Bridge WhatsApp, SMS and Telegram conversations into Intercom.",
    )
    parser.add_argument("--version", action="version", version=f"threadline {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the bridge")
    serve.add_argument("--bind", help="ingress host:port (THREADLINE_BIND)")
    serve.add_argument("--metrics-bind", help="metrics host:port (THREADLINE_METRICS_BIND)")
    serve.add_argument("--database-url", help="sqlite:///path or postgresql://… ")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the ingress port, as cluster nodes (PostgreSQL only)",
    )

    check = commands.add_parser(
        "check",
        help="verify every configured credential against the real APIs",
        description="Load the settings as serve does and call each configured API once: "
        "Intercom GET /me (and GET /admins/{id} for the default admin), WhatsApp GET /me "
        "(and GET /{phone-number-id}), Twilio GET /2010-04-01/Accounts/{sid}.json, Telegram "
        "getMe and getWebhookInfo. One line per check (ok, FAIL, warn, skip); exit 0 when "
        "nothing failed, 1 when something did, 2 when the settings cannot run a bridge.",
    )
    check.add_argument(
        "--whatsapp-phone-number-id",
        action="append",
        default=[],
        metavar="ID",
        help="also check this WhatsApp business number (repeatable)",
    )
    check.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per check (%(default)s)"
    )

    sandbox = commands.add_parser("sandbox", help="run the sandbox Intercom and channel providers")
    sandbox.add_argument("--bind", default="127.0.0.1:8090", help="host:port (default %(default)s)")
    sandbox.add_argument(
        "--webhook-url",
        default="http://127.0.0.1:8080/webhooks/intercom",
        help="where the sandbox Intercom sends signed webhooks (default %(default)s)",
    )
    sandbox.add_argument(
        "--bridge-url", default="http://127.0.0.1:8080", help="the bridge's public URL"
    )

    demo = commands.add_parser(
        "demo", help="run a scripted scenario and a short ordered-delivery load, offline"
    )
    demo.add_argument("--threads", type=int, default=300, help="load threads (%(default)s)")
    demo.add_argument("--messages", type=int, default=5, help="messages per thread (%(default)s)")
    demo.add_argument(
        "--keep-running", action="store_true", help="keep the stack up afterwards for inspection"
    )

    _loadtest_parser(commands)

    # --database-url is accepted before or after the action; SUPPRESS keeps the action's
    # parser from overwriting a value given before it.
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database-url", default=argparse.SUPPRESS, help="sqlite:///path or postgresql://…"
    )
    dead = commands.add_parser("deadletters", help="inspect and replay dead letters")
    dead.add_argument("--database-url", help="sqlite:///path or postgresql://…")
    dead_commands = dead.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = dead_commands.add_parser(
        "list", parents=[database], help="list dead letters, oldest first"
    )
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = dead_commands.add_parser(
        "replay", parents=[database], help="make dead letters pending again"
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], help="entry ids")
    which.add_argument("--all", action="store_true", help="every dead letter")
    show = dead_commands.add_parser(
        "show", parents=[database], help="one dead letter with its error and decoded job"
    )
    show.add_argument("id", type=int, help="entry id")
    show.add_argument("--json", action="store_true", help="one JSON object")
    _operator_parsers(commands, database)
    return parser


def _operator_parsers(
    commands: Any,  # noqa: ANN401 - argparse's private subparsers type
    database: argparse.ArgumentParser,
) -> None:
    """``threads show`` and ``erase`` (actors.tools._operator)."""
    channels = ("whatsapp", "twilio", "telegram")
    threads = commands.add_parser("threads", help="inspect one customer thread")
    threads.add_argument("--database-url", help="sqlite:///path or postgresql://…")
    thread_commands = threads.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = thread_commands.add_parser(
        "show", parents=[database], help="a thread's state, pending entries and dead letters"
    )
    for parser in (show, erase := commands.add_parser(
        "erase",
        help="delete one customer thread's data from the journal (not from Intercom)",
        description="Delete the thread's journal entries (pending, done and dead), its state, "
        "the conversation index and the identity mappings of its customer. Intercom and the "
        "providers are not touched; linked oversize media expire on their own.",
    )):  # fmt: skip
        parser.add_argument("channel", choices=channels)
        parser.add_argument("account", help="phone_number_id, Twilio number or bot id")
        parser.add_argument("customer", help="wa_id, Twilio From address or Telegram chat id")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.add_argument("--limit", type=int, default=100, help="entries listed (%(default)s)")
    erase.add_argument("--database-url", help="sqlite:///path or postgresql://…")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _settings(**overrides: Any) -> Settings:  # noqa: ANN401 - CLI values, validated by pydantic
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)


STARTUP_FAILURE_EXIT_CODE = 2
"""The exit status when a command cannot start (settings, ports, journal), as for bad usage."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    A command that cannot start prints one line, ``threadline: <what> (<setting>)``, on
    standard error (a JSON log line when the logs are JSON) and exits 2; no value of a secret
    ever appears in it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    state: dict[str, Settings] = {}
    try:
        return _run(parser, args, state)
    except ValidationError as exc:
        # Without the values given: one of them may be a secret (a database URL's password).
        reasons = "; ".join(
            f"{error['msg'].removeprefix('Value error, ')} "
            f"(THREADLINE_{'_'.join(map(str, error['loc'])).upper()})"
            for error in exc.errors(include_url=False, include_input=False)
        )
        failure = f"invalid settings: {reasons}"
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        found = _startup_failure(exc)
        if found is None:
            raise
        failure = str(found)
    _report_failure(failure, args.command, state.get("settings"))
    return STARTUP_FAILURE_EXIT_CODE


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, state: dict[str, Any]) -> int:
    if args.command == "serve":
        settings = state["settings"] = _settings(
            bind=args.bind, metrics_bind=args.metrics_bind, database_url=args.database_url
        )
        _configure_logging(settings.log_format, settings.log_level)
        check_settings(settings)  # before any worker starts (each checks again)
        if args.workers > 1:
            if settings.sqlite_path is not None:
                raise ConfigurationError(
                    "--workers needs a PostgreSQL database (THREADLINE_DATABASE_URL)"
                )
            check_bindable(settings.bind, "THREADLINE_BIND")
            trio.run(run_workers, settings, args.workers)
            return 0
        trio.run(_serve, settings)
        return 0
    if args.command == "check":
        if not args.timeout > 0:
            parser.error("--timeout must be a positive number of seconds")
        settings = state["settings"] = _settings()
        check_settings(settings)
        return trio.run(_check, settings, args.whatsapp_phone_number_id, args.timeout)
    if args.command == "sandbox":
        configure_logging()
        check_bindable(args.bind, "--bind")
        trio.run(_sandbox, args.bind, args.webhook_url, args.bridge_url)
        return 0
    if args.command == "demo":
        configure_logging("text", "WARNING")
        return trio.run(_demo, args.threads, args.messages, args.keep_running)
    if args.command == "loadtest":
        return _loadtest_command(args)
    if args.command in ("deadletters", "threads", "erase"):
        return _operator_command(args)
    parser.error(f"unknown command {args.command}")  # exits with status 2


def _configure_logging(fmt: Literal["auto", "json", "text"], level: str) -> None:
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise ConfigurationError(
            f"unknown log level {level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL "
            "(THREADLINE_LOG_LEVEL)"
        )
    configure_logging(fmt, level)


def _startup_failure(exc: BaseException) -> StartupError | None:
    """The start-up failure ``exc`` carries, also from inside (nested) Trio exception groups;
    None when it carries anything else (a bug: let its traceback show)."""
    if isinstance(exc, StartupError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        found = [_startup_failure(inner) for inner in exc.exceptions]
        if found and all(failure is not None for failure in found):
            return found[0]
    return None


def _report_failure(failure: str, command: str, settings: Settings | None) -> None:
    """One line on standard error: plain, or a JSON log line when the command's logs are JSON
    (``serve``: as THREADLINE_LOG_FORMAT says, auto meaning JSON unless a terminal; the other
    commands only with ``json``)."""
    line = " ".join(mask_secrets(failure, settings).split())
    fmt = settings.log_format if settings is not None else os.environ.get("THREADLINE_LOG_FORMAT")
    as_json = fmt == "json" or (command == "serve" and fmt in (None, "auto") and not _terminal())
    if as_json:
        record = logging.LogRecord("threadline", logging.ERROR, __file__, 0, line, None, None)
        record.exit_code = STARTUP_FAILURE_EXIT_CODE
        print(JsonFormatter().format(record), file=sys.stderr, flush=True)  # noqa: T201
    else:
        print(f"threadline: {line}", file=sys.stderr, flush=True)  # noqa: T201 - CLI output


def _terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


async def _until_signalled(stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


SHUTDOWN_GRACE_SECONDS = 5.0
"""After a stop signal, the process exits at the latest this long after the drain deadline."""
WATCHDOG_EXIT_CODE = 70
"""The exit status when the watchdog had to end the process (EX_SOFTWARE)."""


async def _watchdog(stop: trio.Event, seconds: float) -> None:
    """The last resort: once ``stop`` is set, end the process ``seconds`` later whatever still
    runs, logging the tasks left. Shutdown normally ends by cancellation well before."""
    await stop.wait()
    # A thread as well, in case the event loop itself is stuck in a synchronous call.
    fallback = threading.Timer(seconds + 2.0, _exit_from_thread)
    fallback.daemon = True
    fallback.start()
    try:
        await trio.sleep(seconds)
        logger.error(
            "shutdown overran its deadline by %.0f s; exiting with %d. Tasks still alive:\n%s",
            SHUTDOWN_GRACE_SECONDS, WATCHDOG_EXIT_CODE, _task_tree(),
        )  # fmt: skip
        logging.shutdown()
        os._exit(WATCHDOG_EXIT_CODE)
    finally:
        fallback.cancel()


def _exit_from_thread() -> None:
    logger.error("shutdown overran its deadline and the event loop is stuck; exiting")
    faulthandler.dump_traceback(all_threads=True)
    logging.shutdown()
    os._exit(WATCHDOG_EXIT_CODE)


def _task_tree() -> str:
    """Every Trio task with where it waits (its innermost frame outside Trio itself)."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        where = ""
        awaited: object = task.coro
        while awaited is not None:  # follow the await chain to the innermost coroutine
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None and f"{os.sep}trio{os.sep}" not in frame.f_code.co_filename:
                where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        lines.append(f"{'  ' * depth}{task.name}  [{where}]")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    walk(trio.lowlevel.current_root_task(), 0)  # type: ignore[arg-type]  # set inside trio.run
    return "\n".join(lines)


async def _serve(settings: Settings) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as outer:
        watchdog = trio.CancelScope()

        async def guard() -> None:
            with watchdog:
                await _watchdog(stop, settings.shutdown_drain_seconds + SHUTDOWN_GRACE_SECONDS)

        outer.start_soon(guard)
        await _serve_until_stopped(settings, stop)
        watchdog.cancel()


async def _serve_until_stopped(settings: Settings, stop: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_until_signalled, stop)
        node = await nursery.start(lambda task_status: run_bridge(
            settings, stop=stop, task_status=task_status
        ))  # fmt: skip
        frozen = freeze_startup_heap()  # keeps full collections short: see the function
        logger.info(
            "serving on %s (metrics on %s/metrics); %d start-up objects frozen",
            node.ingress.url, node.metrics.url, frozen,
        )  # fmt: skip
        await stop.wait()
    # run_bridge returned after draining; the signal task ended with the signal.


CHECK_FAILED_EXIT_CODE = 1
"""``threadline check``: at least one credential or webhook is wrong."""


async def _check(settings: Settings, numbers: list[str], seconds: float) -> int:
    results = await run_checks(settings, seconds_per_check=seconds, whatsapp_numbers=numbers)
    for result in results:
        print(result.line(settings), flush=True)  # noqa: T201 - CLI output
    failed = sum(1 for r in results if r.status == "FAIL")
    return CHECK_FAILED_EXIT_CODE if failed else 0


async def _sandbox(bind: str, webhook_url: str, bridge_url: str) -> None:
    app = SandboxApp()
    app.intercom.configure(webhook_url=webhook_url)
    # Status webhooks (a send scripted to fail later) go to the bridge, as real providers post them.
    app.providers.configure_webhooks(
        bridge_url, whatsapp_app_secret=SANDBOX_SECRETS.whatsapp_app_secret
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_until_signalled, stop)
        addr = await nursery.start(serve_asgi, app, hypercorn_config(bind))
        app.intercom.public_url = addr.url + "/intercom"
        print(f"sandbox serving on {addr.url}; point a bridge at it with:")  # noqa: T201
        for name, value in sandbox_settings_env(addr.url, bridge_url).items():
            print(f"  export {name}={value}")  # noqa: T201 - CLI output
        sys.stdout.flush()
        await stop.wait()
        nursery.cancel_scope.cancel()


async def _demo(threads: int, messages: int, keep_running: bool) -> int:
    def say(line: str) -> None:
        print(line, flush=True)  # noqa: T201 - the demo narrates on standard output

    return await run_demo(threads=threads, messages=messages, keep_running=keep_running, say=say)


# --- operator commands: deadletters, threads show, erase (actors.tools._operator) -------------


def _operator_command(args: argparse.Namespace) -> int:
    """Run ``deadletters``, ``threads`` or ``erase`` on an existing journal."""
    settings = _settings(database_url=args.database_url)
    if settings.sqlite_path is not None:
        try:
            check_journal_file(settings.sqlite_path)
        except JournalMissing as exc:
            raise ConfigurationError(f"{exc} (THREADLINE_DATABASE_URL)") from None
    if args.command == "deadletters":
        return trio.run(_deadletters, settings, args)
    try:
        key = ThreadKey(channel=args.channel, account=args.account, customer=args.customer)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        print(f"threadline: not a thread: {reasons}", file=sys.stderr)  # noqa: T201
        return 2
    if args.command == "threads":
        return trio.run(_thread_show, settings, key, args)
    return trio.run(_erase, settings, key, args.yes)


async def _thread_show(settings: Settings, key: ThreadKey, args: argparse.Namespace) -> int:
    async with open_journal(settings) as journal:
        if await show_thread(journal, key, limit=args.limit, as_json=args.json):
            return 0
    print(f"threadline: nothing journaled for thread {key}", file=sys.stderr)  # noqa: T201
    return 1


async def _erase(settings: Settings, key: ThreadKey, yes: bool) -> int:
    def say(line: str) -> None:
        print(line, flush=True)  # noqa: T201 - CLI output

    async with open_journal(settings) as journal:
        plan = await plan_erase(journal, key)
        if plan.empty:
            print(f"threadline: nothing journaled for thread {key}", file=sys.stderr)  # noqa: T201
            return 1
        if not yes:
            say("this erases, from the journal:")
            describe_plan(plan, say)
            answer = await trio.to_thread.run_sync(_ask, "erase it? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                say("nothing erased")
                return 1
        erased = await erase_thread(journal, plan)
    say(f"erased thread {plan.key}:")
    say(f"  journal entries: {erased.pending} pending, {erased.done} done, {erased.dead} dead")
    say(f"  state keys: {erased.state} ({', '.join(plan.state_keys) or 'none'})")
    describe_untouched(plan, settings.media_retention_seconds, say)
    return 0


def _ask(question: str) -> str:
    try:
        return input(question)
    except EOFError:
        return ""


async def _deadletters(settings: Settings, args: argparse.Namespace) -> int:
    async with open_journal(settings, create=False) as journal:
        if args.action == "show":
            if await show_dead_letter(journal, args.id, as_json=args.json):
                return 0
            print(f"threadline: no dead letter {args.id}", file=sys.stderr)  # noqa: T201
            return 1
        if args.action == "list":
            letters = await journal.dead_letters(limit=args.limit)
            now = time.time()
            for letter in letters:
                entry = letter.entry
                if args.json:
                    print(json.dumps(dead_letter_json(letter)))  # noqa: T201 - CLI output
                else:
                    print(  # noqa: T201 - CLI output
                        f"{entry.id}\t{entry.key}\tdead {human_time(letter.dead_at, now)}"
                        f"\t{letter.error}"
                    )
            if not args.json:
                print(f"{len(letters)} dead letter(s)", file=sys.stderr)  # noqa: T201
            return 0
        revived = await journal.replay(None if args.all else args.ids)
        print(f"replayed {len(revived)} entr{'y' if len(revived) == 1 else 'ies'}")  # noqa: T201
        return 0


# --- threadline loadtest (the driver is actors.tools._loadtest) -------------------------------


def _loadtest_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
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
    load.add_argument("--duration", type=float, help="stop sending after this many seconds")
    load.add_argument(
        "--channels", default="whatsapp,twilio,telegram", help="channel mix (%(default)s)"
    )
    load.add_argument(
        "--attachments", type=float, default=0.0, help="share of messages with an image (0..1)"
    )
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
    faults.add_argument("--rate-window", type=float, default=10.0, help="window seconds")
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


def _loadtest_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._loadgen import LoadPlan
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
    if not channels or set(channels) - {"whatsapp", "twilio", "telegram"}:
        print(f"threadline loadtest: unknown channel in {args.channels!r}", file=sys.stderr)  # noqa: T201
        return 2
    if args.max_p99_ms is not None and not args.max_p99_ms > 0:
        print("threadline loadtest: --max-p99-ms must be above 0", file=sys.stderr)  # noqa: T201
        return 2
    plan = LoadPlan(
        threads=args.threads,
        messages_per_thread=args.messages_per_thread,
        rate=args.rate,
        channels=channels,
        attachment_share=args.attachments,
        concurrency=args.concurrency,
        drain_seconds=args.drain_seconds,
        total=args.total,
        duration_s=args.duration,
    )
    options = LoadtestOptions(
        plan=plan,
        faults=Faults(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            timeout_rate=args.timeout_rate,
            rate_limit=args.rate_limit,
            rate_window_seconds=args.rate_window,
            delete_conversations=args.delete_conversations,
            extra=extra,
        ),
        target=args.target,
        sandbox=args.sandbox,
        public_url=args.public_url,
        metrics=args.metrics,
        metrics_token=args.metrics_token,
        database_url=args.database_url,
        json=args.json,
        report=Path(args.report) if args.report else None,
        progress=args.progress,
        max_p99_ms=args.max_p99_ms,
    )
    configure_logging("text", "WARNING")
    return trio.run(run_loadtest, options)
