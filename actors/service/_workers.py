"""``threadline serve --workers N``: N bridge processes on one host, sharing the ingress port.

The parent binds ``THREADLINE_BIND`` once and hands the listening socket to every child
(``--bind fd://N``), so the kernel spreads connections over the workers and ingress uses every
core. Each child is a cluster node (PostgreSQL only) with a stable id (``<node id>-w<i>``, so a
restarted worker takes its partitions straight back) and its own metrics port
(``THREADLINE_METRICS_BIND`` port + i). SIGTERM/SIGINT are passed on and the parent waits for the
workers to drain; a worker that dies is started again after a second.

Every child runs with the parent's *resolved* settings — environment, ``.env`` and the ``serve``
flags (``--database-url``, ``--metrics-bind``, …) — as ``THREADLINE_*`` variables in its
environment (not on its command line, where ``ps`` would show the database password).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys

import trio
from pydantic import SecretStr

from ..core import Settings, parse_bind

__all__ = ["run_workers", "worker_environment"]

logger = logging.getLogger("threadline.workers")


def _listen(bind: str) -> socket.socket:
    host, port = parse_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def worker_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """This process's environment with every setting replaced by its resolved value.

    ``overrides`` are further settings by field name (``node_id=…``). A setting that is unset
    (None) is left out, and any ``THREADLINE_*`` variable of that name removed, so the child
    resolves exactly what the parent did.
    """
    names = {f"THREADLINE_{name.upper()}": name for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    for variable, name in names.items():
        value = overrides.get(name, getattr(settings, name))
        if value is None:
            continue
        env[variable] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


async def run_workers(settings: Settings, workers: int) -> None:
    """Run ``workers`` children of ``threadline serve`` until signalled."""
    listener = _listen(settings.bind)
    metrics_host, metrics_port = parse_bind(settings.metrics_bind)
    base_id = settings.node_id or socket.gethostname()
    stopping = trio.Event()
    processes: dict[int, trio.Process] = {}

    async def worker(index: int) -> None:
        env = worker_environment(
            settings,
            node_id=f"{base_id}-w{index}",
            metrics_bind=f"{metrics_host}:{metrics_port + index}",
        )
        command = [sys.executable, "-m", "actors", "serve", "--bind", f"fd://{listener.fileno()}"]
        while not stopping.is_set():
            process = await trio.lowlevel.open_process(
                command, env=env, pass_fds=(listener.fileno(),)
            )
            processes[index] = process
            await process.wait()
            if not stopping.is_set():
                logger.error(
                    "worker %d exited with %s; starting it again", index, process.returncode
                )
                await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        for index in range(workers):
            nursery.start_soon(worker, index)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                stopping.set()
                for process in processes.values():
                    if process.returncode is None:
                        process.send_signal(signal.SIGTERM)
                break
    listener.close()
