"""Spawning and stopping the benchmarks' child processes: a process pinned to one core (the
sandbox, a bare client, ``threadline serve``), the environment of a ``serve`` process against the
sandbox, and, for the soak, Trio-run nodes that are killed and started again and a throwaway
PostgreSQL server in its work directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

from actors.tools import sandbox_settings_env

__all__ = [
    "ROOT",
    "Children",
    "Node",
    "Postgres",
    "Process",
    "SetupError",
    "bridge_env",
    "free_port",
    "ready_at",
]

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 120.0
STOP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _store_of(env: dict[str, str] | None) -> str:
    url = (env or {}).get("THREADLINE_DATABASE_URL", "")
    return "postgres" if url.startswith("postgres") else "sqlite"


class Process:
    """A child process pinned to one core, its stdout piped, its stderr to ``log`` (else
    dropped). ``profile``: the label of the py-spy recording ``BENCH_PYSPY`` asks for (None:
    never recorded)."""

    def __init__(
        self,
        args: list[str],
        core: int,
        env: dict[str, str] | None = None,
        *,
        log: Path | None = None,
        cwd: Path | None = None,
        profile: str | None = None,
    ) -> None:
        with open(os.devnull if log is None else log, "ab") as errors:
            self.popen = subprocess.Popen(  # noqa: S603 - this script or our CLI, fixed arguments
                ["taskset", "-c", str(core), sys.executable, *args],
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                cwd=cwd,
            )
        recording = os.environ.get("BENCH_PYSPY")  # profile the bridge: py-spy's raw output
        if recording and profile is not None:
            recording = recording.replace("{label}", profile)  # one file per scenario and round
            subprocess.Popen(  # noqa: S603 - py-spy beside this interpreter, fixed arguments
                [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "100", "-f", "raw",
                 "-d", os.environ.get("BENCH_PYSPY_SECONDS", "10"),
                 "-o", f"{recording}.{_store_of(env)}",
                 "-p", str(self.popen.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def wait_line(self, expected: str) -> None:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().decode().strip()
        if line != expected:
            raise RuntimeError(f"expected {expected!r}, got {line!r}")

    def status(self, field: str) -> int:
        """A ``/proc/<pid>/status`` size in bytes (``VmRSS``, ``VmHWM``), 0 once gone."""
        try:
            text = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def bridge_env(
    workdir: Path, sandbox_url: str, database_url: str, **extra: str
) -> tuple[dict[str, str], str, str]:
    """The environment of a ``threadline serve`` process against the sandbox at
    ``sandbox_url``, its URL and its metrics' URL (free loopback ports)."""
    bind = f"127.0.0.1:{free_port()}"
    metrics = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        **sandbox_settings_env(sandbox_url, f"http://{bind}"),
        "THREADLINE_DATABASE_URL": database_url,
        "THREADLINE_BIND": bind,
        "THREADLINE_METRICS_BIND": metrics,
        "THREADLINE_MEDIA_DIR": str(workdir / "media"),
        "THREADLINE_LOG_FORMAT": "json",
        "THREADLINE_LOG_LEVEL": "WARNING",
        **extra,
    }
    return env, f"http://{bind}", f"http://{metrics}"


async def ready_at(url: str, most: float) -> float:
    """The wall-clock time ``url``'s ``/readyz`` first answered 200 (polled every 5 ms)."""
    async with httpx.AsyncClient(timeout=1.0) as http:
        with trio.fail_after(most):
            while True:
                try:
                    if (await http.get(url + "/readyz")).status_code == 200:
                        return time.time()
                except httpx.TransportError:
                    pass
                await trio.sleep(0.005)


# --- the soak's children: started by Trio, killed and started again -------------------------------


class SetupError(Exception):
    """The soak could not be set up (a child that does not start, PostgreSQL missing)."""


class Children:
    """Every child process this script started; :meth:`kill_all` on the way out.

    (No PR_SET_PDEATHSIG: Trio starts processes from a worker thread, and the signal fires
    when that *thread* ends. A ``kill -9`` of this script leaves its children behind.)"""

    def __init__(self) -> None:
        self.processes: list[trio.Process] = []

    async def open(self, argv: list[str], env: dict[str, str], log: Path) -> trio.Process:
        with log.open("ab") as out:
            process = await trio.lowlevel.open_process(
                argv,
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,  # Ctrl-C reaches this script only; it kills the rest
            )
        self.processes.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        for process in self.processes:
            with contextlib.suppress(Exception):
                process._proc.wait(timeout=10)  # synchronous, on the way out


async def wait_ready(url: str, process: trio.Process, what: str) -> None:
    """Until ``url`` answers 200 (:class:`SetupError` if ``process`` ends or it takes too long)."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        with trio.move_on_after(READY_SECONDS):
            while process.returncode is None:  # another process: polling is the only signal
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)
    raise SetupError(f"{what} did not become ready (exit status {process.returncode})")


class Node:
    """One ``threadline serve`` process, restarted with the same id, ports and log."""

    def __init__(self, name: str, env: dict[str, str], log: Path, children: Children) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.children = children
        self.url = f"http://{env['THREADLINE_BIND']}"
        self.process: trio.Process | None = None
        self.starts = 0

    async def start(self) -> float:
        """Start it; returns the seconds until ``/readyz`` answered 200."""
        began = time.monotonic()
        self.process = await self.children.open(
            [sys.executable, "-m", "actors", "serve"], self.env, self.log
        )
        self.starts += 1
        await wait_ready(f"{self.url}/readyz", self.process, f"node {self.name}")
        return time.monotonic() - began

    async def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        with trio.move_on_after(STOP_SECONDS):
            await self.process.wait()
        if self.process.returncode is None:
            await self.kill()


@dataclass
class Postgres:
    """A throwaway PostgreSQL server (a small copy of the test suite's fixture)."""

    root: Path
    port: int = 0
    pg_ctl: str = ""
    as_user: list[str] = field(default_factory=list)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def start(self) -> str:
        from tests.postgres import find_bin  # the suite's, outside pytest

        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not (initdb and pg_ctl):
            raise SetupError("PostgreSQL server programs (initdb, pg_ctl) not found")
        self.pg_ctl = pg_ctl
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            self.root.parent.chmod(0o755)  # the postgres user must reach its data directory
            self.root.chmod(0o755)
            self.datadir.mkdir()
            shutil.chown(self.datadir, "postgres", "postgres")
        self._run([initdb, "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-sync"])  # fmt: skip
        self.port = free_port()
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir}"
            " -c fsync=off -c max_connections=200"
        )
        self._run([pg_ctl, "-D", str(self.datadir), "-o", options,
                   "-l", str(self.datadir / "server.log"), "-w", "-t", "60", "start"])  # fmt: skip
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run([*self.as_user, *argv], capture_output=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise SetupError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.pg_ctl and self.datadir.exists():
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                subprocess.run(  # noqa: S603
                    [*self.as_user, self.pg_ctl, "-D", str(self.datadir), "-m", "immediate",
                     "-w", "stop"],
                    check=True, capture_output=True, timeout=60,
                )  # fmt: skip
