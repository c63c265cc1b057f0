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
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Literal

import trio
from pydantic import ValidationError

from ..core import JsonFormatter, Settings, configure_logging, package_version
from ..service import (
    ConfigurationError,
    StartupError,
    check_bindable,
    check_settings,
    mask_secrets,
    run_workers,
)
from ._check import run_checks
from ._cli_accounts import accounts_command, accounts_parser
from ._cli_loadtest import loadtest_command, loadtest_parser
from ._cli_operator import operator_command, operator_parsers
from ._cli_serve import run_sandbox, serve
from ._demo import run_demo

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="threadline",
        description="Bridge WhatsApp, SMS and Telegram conversations into Intercom.",
    )
    parser.add_argument("--version", action="version", version=f"threadline {package_version()}")
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

    loadtest_parser(commands)
    operator_parsers(commands)
    accounts_parser(commands)
    return parser


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
        trio.run(serve, settings)
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
        trio.run(run_sandbox, args.bind, args.webhook_url, args.bridge_url)
        return 0
    if args.command == "demo":
        configure_logging("text", "WARNING")
        return trio.run(_demo, args.threads, args.messages, args.keep_running)
    if args.command == "loadtest":
        return loadtest_command(args)
    if args.command == "accounts":
        settings = state["settings"] = _settings()
        return accounts_command(args, settings)
    if args.command in ("deadletters", "threads", "erase"):
        return operator_command(args, _settings(database_url=args.database_url))
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


CHECK_FAILED_EXIT_CODE = 1
"""``threadline check``: at least one credential or webhook is wrong."""


async def _check(settings: Settings, numbers: list[str], seconds: float) -> int:
    results = await run_checks(settings, seconds_per_check=seconds, whatsapp_numbers=numbers)
    for result in results:
        print(result.line(settings), flush=True)  # noqa: T201 - CLI output
    failed = sum(1 for r in results if r.status == "FAIL")
    return CHECK_FAILED_EXIT_CODE if failed else 0


async def _demo(threads: int, messages: int, keep_running: bool) -> int:
    def say(line: str) -> None:
        print(line, flush=True)  # noqa: T201 - the demo narrates on standard output

    return await run_demo(threads=threads, messages=messages, keep_running=keep_running, say=say)
