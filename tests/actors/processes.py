"""``threadline serve`` as a child process that tests can kill -9 and start again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import trio

from actors.tools import PUBLIC_URL, sandbox_settings_env
from tests.postgres import free_port


def serve_env(sandbox_url: str, database_url: str, tmp: Path, **settings: str) -> dict[str, str]:
    """The environment of a ``serve`` process on free loopback ports, pointed at a sandbox."""
    env = {
        **os.environ,
        **sandbox_settings_env(sandbox_url, PUBLIC_URL),
        "THREADLINE_DATABASE_URL": database_url,
        "THREADLINE_BIND": f"127.0.0.1:{free_port()}",
        "THREADLINE_METRICS_BIND": f"127.0.0.1:{free_port()}",
        "THREADLINE_MEDIA_DIR": str(tmp / "media"),
        "THREADLINE_LOG_FORMAT": "json",
        "THREADLINE_RETRY_BASE_SECONDS": "0.05",
        "THREADLINE_RETRY_CAP_SECONDS": "0.5",
    }
    env.update({f"THREADLINE_{k.upper()}": v for k, v in settings.items()})
    return env


#: Every ``serve`` process a test started; ``kill_leftovers`` (an autouse fixture in
#: tests/actors/conftest.py) kills those a failing test left running.
STARTED: list[trio.Process] = []


def kill_leftovers() -> None:
    """SIGKILL every ``serve`` child still running and forget them all."""
    while STARTED:
        process = STARTED.pop()
        if process.returncode is None:
            process.kill()


class ServeProcess:
    """One ``threadline serve`` child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.url = f"http://{env['THREADLINE_BIND']}"
        self.metrics_url = f"http://{env['THREADLINE_METRICS_BIND']}/metrics"
        self.process: trio.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        """Start and wait until ``/readyz`` answers 200."""
        with self.log.open("ab") as log:
            self.process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "actors", "serve"], env=self.env, stdout=log, stderr=log
            )
        STARTED.append(self.process)
        self.starts += 1
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as client:
            with trio.fail_after(60):
                while True:  # a separate process: its readiness endpoint is the only signal
                    try:
                        if (await client.get("/readyz")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, leases left to expire."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (kill after 30 s)."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with trio.move_on_after(30):
                await self.process.wait()
            if self.process.returncode is None:
                await self.kill()
