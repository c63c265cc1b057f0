"""``threadline serve`` and ``threadline sandbox``: the long-running commands, until a signal.

``serve`` runs the bridge until SIGINT or SIGTERM, drains, and has a watchdog end the process
when shutdown overruns its deadline (logging the Trio tasks still alive); ``sandbox`` serves the
sandbox Intercom and providers on one port (actors.tools._sandbox).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading

import trio

from runtime import freeze_startup_heap, hypercorn_config, serve_asgi

from ..core import Settings
from ..service import run_bridge
from ._sandbox import SANDBOX_SECRETS, SandboxApp, sandbox_settings_env

__all__ = ["run_sandbox", "serve"]

logger = logging.getLogger("threadline.cli")


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


async def serve(settings: Settings) -> None:
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


async def run_sandbox(bind: str, webhook_url: str, bridge_url: str) -> None:
    app = SandboxApp()
    app.intercom.configure(webhook_url=webhook_url)
    # Status webhooks (a send scripted to fail later) go to the bridge, as real providers post them.
    app.providers.configure_webhooks(
        bridge_url,
        whatsapp_app_secret=SANDBOX_SECRETS.whatsapp_app_secret,
        messenger_app_secret=SANDBOX_SECRETS.messenger_app_secret,
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
