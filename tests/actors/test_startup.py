"""Start-up failures, run as an operator meets them: ``threadline`` subprocesses.

Each one ends with exit status 2 and one line on standard error, ``threadline: <what>
(<setting>)`` (a JSON log line when the logs are JSON), with no traceback and no secret's value.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import free_port

TOKEN = "tok-Vq83-startup-intercom"
PASSWORD = "pw-Kz71-startup"


def threadline(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run ``threadline ARGS`` in ``cwd`` with only ``settings`` as THREADLINE_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update({f"THREADLINE_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "actors", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed start printed, after checking the exit status and the shape."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    (line,) = lines
    assert line.startswith("threadline: "), line
    return line


@pytest.fixture
def listening() -> Iterator[str]:
    """A loopback ``host:port`` something else already listens on."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def base(tmp_path: Path) -> dict[str, str]:
    """Settings that start (free loopback ports, a SQLite journal in ``tmp_path``)."""
    return {
        "intercom_access_token": TOKEN,
        "database_url": f"sqlite:///{tmp_path / 'journal.db'}",
        "bind": f"127.0.0.1:{free_port()}",
        "metrics_bind": f"127.0.0.1:{free_port()}",
        "media_dir": str(tmp_path / "media"),
        "log_format": "text",
    }


def test_missing_intercom_token(tmp_path: Path) -> None:
    settings = base(tmp_path)
    del settings["intercom_access_token"]
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert line.endswith("(THREADLINE_INTERCOM_ACCESS_TOKEN)"), line


def test_metrics_on_a_public_address_without_a_token(tmp_path: Path) -> None:
    settings = {**base(tmp_path), "metrics_bind": f"0.0.0.0:{free_port()}"}
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert "THREADLINE_METRICS_BIND" in line
    assert line.endswith("(THREADLINE_METRICS_TOKEN)"), line
    assert TOKEN not in line


@pytest.mark.parametrize("where", ["missing directory", "parent is a file"])
def test_a_sqlite_journal_that_cannot_be_created(tmp_path: Path, where: str) -> None:
    if where == "missing directory":
        path = tmp_path / "no" / "such" / "journal.db"
    else:
        (tmp_path / "plain-file").write_text("not a directory")
        path = tmp_path / "plain-file" / "journal.db"
    settings = {**base(tmp_path), "database_url": f"sqlite:///{path}"}
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert line.endswith("(THREADLINE_DATABASE_URL)"), line
    assert not path.exists()


def test_postgresql_unreachable_at_start(tmp_path: Path) -> None:
    url = f"postgresql://threadline:{PASSWORD}@127.0.0.1:{free_port()}/threadline"
    settings = {**base(tmp_path), "database_url": url}
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert line.endswith("(THREADLINE_DATABASE_URL)"), line
    assert "PostgreSQL" in line
    assert PASSWORD not in line


@pytest.mark.parametrize("setting", ["bind", "metrics_bind"])
def test_a_port_in_use(tmp_path: Path, listening: str, setting: str) -> None:
    settings = {**base(tmp_path), setting: listening}
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert f"{listening} is already in use (THREADLINE_{setting.upper()})" in line


def test_a_bad_log_level(tmp_path: Path) -> None:
    settings = {**base(tmp_path), "log_level": "LOUD"}
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert line.endswith("(THREADLINE_LOG_LEVEL)"), line


def test_an_unknown_telegram_groups_policy(tmp_path: Path) -> None:
    settings = {**base(tmp_path), "telegram_groups": "everyone"}
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert "'ignore' or 'per-member'" in line, line
    assert line.endswith("(THREADLINE_TELEGRAM_GROUPS)"), line


@pytest.mark.parametrize(
    "url",
    [
        # A "/" in the password ends the host part early: the driver reads "Kz71/…" as the port.
        "postgresql://threadline:{secret}/x@127.0.0.1:5432/threadline",
        "postgresql://threadline:{secret}@x@127.0.0.1:5432/threadline",  # an "@" not encoded
        "postgresq://threadline:{secret}@127.0.0.1:5432/threadline",  # a typo in the scheme
        "postgresql://threadline:{secret}@[::1/threadline",
    ],
)
def test_a_malformed_database_url_is_refused_without_quoting_it(tmp_path: Path, url: str) -> None:
    secret = "Kz71Qw"
    settings = {**base(tmp_path), "database_url": url.format(secret=secret)}
    line = one_line(threadline("serve", cwd=tmp_path, **settings))
    assert line.endswith("(THREADLINE_DATABASE_URL)"), line
    assert secret not in line
    assert "threadline:Kz" not in line


def test_json_logs_get_the_failure_as_one_json_line(tmp_path: Path, listening: str) -> None:
    url = f"postgresql://threadline:{PASSWORD}@127.0.0.1:{free_port()}/threadline"
    settings = {**base(tmp_path), "database_url": url, "log_format": "json"}
    done = threadline("serve", cwd=tmp_path, **settings)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    event = json.loads(line)
    assert event["level"] == "error"
    assert event["message"].endswith("(THREADLINE_DATABASE_URL)")
    assert PASSWORD not in line
    settings = {**base(tmp_path), "bind": listening, "log_format": "json"}
    (line,) = threadline("serve", cwd=tmp_path, **settings).stderr.splitlines()
    assert json.loads(line)["message"].endswith("(THREADLINE_BIND)")


@pytest.mark.parametrize("action", [["list"], ["replay", "--all"]])
def test_deadletters_never_creates_a_journal(tmp_path: Path, action: list[str]) -> None:
    # The default URL, sqlite:///./threadline.db, in a directory without one.
    line = one_line(threadline("deadletters", *action, cwd=tmp_path))
    assert line.startswith("threadline: there is no journal at ./threadline.db"), line
    assert line.endswith("(THREADLINE_DATABASE_URL)"), line
    assert list(tmp_path.iterdir()) == []


def test_sandbox_on_a_port_in_use(tmp_path: Path, listening: str) -> None:
    line = one_line(threadline("sandbox", "--bind", listening, cwd=tmp_path))
    assert line.endswith(f"{listening} is already in use (--bind)"), line


def test_loadtest_whose_bridge_cannot_open_its_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'journal.db'}"
    done = threadline("loadtest", "--threads", "1", "--database-url", url, cwd=tmp_path)
    line = one_line(done)
    assert line.endswith("(THREADLINE_DATABASE_URL)"), line
