"""``threadline loadtest``: embedded and against a separately started ``threadline serve`` +
``threadline sandbox``; its JSON and HTML reports; and its verdict is honest: a sandbox made to
drop or reorder a part fails the run."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.tools import (
    Faults,
    LoadLedger,
    LoadPlan,
    LoadtestOptions,
    run_loadtest,
    sandbox_settings_env,
)
from tests.postgres import free_port

THREADLINE = [sys.executable, "-m", "actors"]
JSON_KEYS = {
    "sent", "acknowledged", "delivered", "lost", "duplicated", "out_of_order",
    "throughput_per_s", "latency_ms", "rejected_429", "retries", "dead_letters",
}  # fmt: skip


async def loadtest(*args: str) -> tuple[int, str, str]:
    done = await trio.run_process(
        [*THREADLINE, "loadtest", *args], capture_stdout=True, capture_stderr=True, check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def last_json(stdout: str) -> dict[str, Any]:
    data = json.loads(stdout.strip().splitlines()[-1])
    assert isinstance(data, dict)
    return data


async def test_embedded_run_passes_with_json_and_html_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    code, out, err = await loadtest(
        "--threads", "24", "--messages-per-thread", "4", "--attachments", "0.25",
        "--json", "--report", str(report),
    )  # fmt: skip
    assert code == 0, out + err
    data = last_json(out)
    assert set(data) >= JSON_KEYS
    assert (data["sent"], data["acknowledged"], data["delivered"]) == (96, 96, 96)
    assert (data["lost"], data["duplicated"], data["out_of_order"]) == (0, 0, 0)
    assert set(data["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert data["retries"] == 0
    assert data["dead_letters"] == 0
    assert "sending" in err or "draining" in err  # plain progress lines off a terminal
    page = report.read_text()
    assert page.count("<svg") == 3
    assert "<script" not in page
    assert "<link" not in page
    assert " src=" not in page  # self-contained: nothing loaded from elsewhere
    assert "Latency distribution" in page


@pytest.mark.parametrize(
    ("fault", "counts"),
    [("drop_next_parts", (1, 0, 0)), ("swap_next_parts", (0, 0, 1))],
    ids=["dropped", "reordered"],
)
async def test_a_dropped_or_reordered_part_fails_the_run(
    fault: str, counts: tuple[int, int, int]
) -> None:
    out = io.StringIO()
    options = LoadtestOptions(
        plan=LoadPlan(threads=6, messages_per_thread=4, drain_seconds=8.0),
        faults=Faults(extra={fault: 1}),
        json=True,
        progress="off",
    )
    code = await run_loadtest(options, out=out, err=io.StringIO())
    data = last_json(out.getvalue())
    assert code == 1
    assert data["passed"] is False
    assert (data["lost"], data["duplicated"], data["out_of_order"]) == counts
    assert "FAIL" in out.getvalue()


async def test_faults_are_survived_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 5xx on POST /conversations leaves the creation in doubt: the thread searches for the
    # settle time before creating it again. The default (120 s) outlasts the 60 s drain and
    # the waiting messages would be counted lost; the embedded bridge reads THREADLINE_*.
    monkeypatch.setenv("THREADLINE_INTERCOM_SEARCH_SETTLE_SECONDS", "3")
    out = io.StringIO()
    options = LoadtestOptions(
        plan=LoadPlan(threads=9, messages_per_thread=4),
        faults=Faults(error_rate=0.2, latency_ms=5, delete_conversations=1),
        json=True,
        progress="off",
    )
    code = await run_loadtest(options, out=out, err=io.StringIO())
    data = last_json(out.getvalue())
    assert code == 0, out.getvalue()
    assert data["retries"] > 0
    assert data["dead_letters"] == 0


@dataclass
class Remote:
    bridge: str
    sandbox: str
    metrics: str


async def _wait_ok(url: str) -> None:
    async with httpx.AsyncClient(timeout=1.0) as client:
        with trio.fail_after(60):
            while True:  # another process: its endpoint is the only signal
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.05)


@pytest.fixture
async def remote(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Remote]:
    """``threadline sandbox`` and ``threadline serve`` as separate processes on free ports."""
    bridge = f"127.0.0.1:{free_port()}"
    sandbox = f"127.0.0.1:{free_port()}"
    metrics = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "processes.log").open("ab")
    sandbox_process = await trio.lowlevel.open_process(
        [*THREADLINE, "sandbox", "--bind", sandbox, "--bridge-url", f"http://{bridge}",
         "--webhook-url", f"http://{bridge}/webhooks/intercom"],
        stdout=log, stderr=log,
    )  # fmt: skip
    env = {
        **os.environ,
        **sandbox_settings_env(f"http://{sandbox}", f"http://{bridge}"),
        "THREADLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'threadline.db'}",
        "THREADLINE_BIND": bridge,
        "THREADLINE_METRICS_BIND": metrics,
        "THREADLINE_MEDIA_DIR": str(tmp_path / "media"),
        "THREADLINE_LOG_FORMAT": "json",
    }
    serve_process = await trio.lowlevel.open_process(
        [*THREADLINE, "serve"], env=env, stdout=log, stderr=log
    )
    try:
        await _wait_ok(f"http://{sandbox}/intercom/_sandbox/config")
        await _wait_ok(f"http://{bridge}/readyz")
        yield Remote(f"http://{bridge}", f"http://{sandbox}", f"http://{metrics}")
    finally:
        for process in (serve_process, sandbox_process):
            process.terminate()
            with trio.move_on_after(20):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        log.close()


async def test_remote_run_against_serve_and_sandbox(remote: Remote) -> None:
    code, out, err = await loadtest(
        "--target", remote.bridge, "--sandbox", remote.sandbox, "--metrics", remote.metrics,
        "--threads", "15", "--messages-per-thread", "4", "--rate", "200", "--json",
    )  # fmt: skip
    assert code == 0, out + err
    data = last_json(out)
    assert set(data) >= JSON_KEYS
    assert data["mode"] == "remote"
    assert (data["sent"], data["delivered"], data["lost"]) == (60, 60, 0)
    assert data["retries"] == 0
    assert data["dead_letters"] == 0

    # A second run against the same bridge is not taken for the first one's redelivery (its
    # Telegram message ids were the first run's, deduplicated and counted as lost).
    code, out, err = await loadtest(
        "--target", remote.bridge, "--sandbox", remote.sandbox,
        "--threads", "6", "--messages-per-thread", "2", "--json",
    )  # fmt: skip
    assert code == 0, out + err
    assert (last_json(out)["delivered"], last_json(out)["lost"]) == (12, 0)

    # The same bridge, with the sandbox made to reorder a part: the verdict turns to FAIL.
    async with httpx.AsyncClient(base_url=remote.sandbox) as http:
        switched = await http.post("/intercom/_sandbox/config", json={"swap_next_parts": 1})
        assert switched.status_code == 200
    code, out, err = await loadtest(
        "--target", remote.bridge, "--sandbox", remote.sandbox,
        "--threads", "6", "--messages-per-thread", "4", "--drain-seconds", "2", "--json",
    )  # fmt: skip
    assert code == 1, out + err
    data = last_json(out)
    assert data["out_of_order"] == 1
    assert data["retries"] is None  # no --metrics: unknown, and said so
    assert "unknown" in out


async def test_remote_runs_on_messenger_and_instagram(remote: Remote) -> None:
    for run in range(2):  # the second run's message ids are its own, not the first one's
        code, out, err = await loadtest(
            "--target", remote.bridge, "--sandbox", remote.sandbox, "--channels",
            "messenger,instagram", "--threads", "6", "--messages-per-thread", "3", "--json",
        )  # fmt: skip
        assert code == 0, (run, out + err)
        data = last_json(out)
        assert (data["sent"], data["delivered"], data["lost"]) == (18, 18, 0), run
        assert (data["duplicated"], data["out_of_order"]) == (0, 0), run
    async with httpx.AsyncClient(base_url=remote.sandbox) as http:
        contacts = (await http.get("/intercom/_sandbox/contacts")).json()["contacts"]
    found = sorted(next(iter(c["custom_attributes"])) for c in contacts)
    assert found == ["instagram_user_id"] * 3 + ["messenger_user_id"] * 3, contacts


async def test_live_lines_show_rate_eta_and_p99_and_the_p99_threshold_fails_the_run() -> None:
    out, err = io.StringIO(), io.StringIO()
    options = LoadtestOptions(
        plan=LoadPlan(threads=10, messages_per_thread=10, rate=40.0),  # 2.5 s of sending
        json=True,
        progress="plain",
        max_p99_ms=0.001,  # no bridge delivers in a microsecond
    )
    code = await run_loadtest(options, out=out, err=err)
    data = last_json(out.getvalue())
    assert code == 1, out.getvalue() + err.getvalue()
    assert (data["lost"], data["duplicated"], data["out_of_order"]) == (0, 0, 0)
    assert data["failures"] == [
        f"latency p99 {data['latency_ms']['p99']} ms above the threshold 0.001 ms"
    ]
    assert data["thresholds"]["max_p99_ms"] == 0.001
    assert data["bridge_version"] != "unknown"
    assert data["host"]["cpu_count"] >= 1
    assert out.getvalue().startswith("FAIL: latency p99")
    lines = err.getvalue().splitlines()
    assert any(re.search(r"rate \d+\.\d msg/s, ETA \d+s, p99 \d+ ms$", line) for line in lines), (
        lines
    )
    assert data["latency_ms"]["p50"] > 0  # from the send time: never 0 on a real path
    assert data["negative_latencies"] == 0


async def test_max_p99_must_be_positive() -> None:
    code, _, err = await loadtest("--max-p99-ms", "-5")
    assert code == 2
    assert "--max-p99-ms must be above 0" in err


def test_latency_runs_from_the_send_time_and_negatives_are_counted() -> None:
    run = LoadLedger()
    start = 1_000.0
    # Thread 0: sent at +0, part created at +0.050 (while the acknowledgement was on its way
    # back), acknowledged at +0.080. Thread 1: sent +0, acked +0.010, created +0.030.
    # Thread 2: a part created before its message was sent: a clock bug, kept and counted.
    for thread, (sent, acked, created) in enumerate(
        [(0.0, 0.080, 0.050), (0.0, 0.010, 0.030), (0.5, 0.52, 0.49)]
    ):
        run.sent_at[(thread, 0)] = start + sent
        run.acked_at[(thread, 0)] = start + acked
        run.seen[(thread, 0)] = start + created
    report = run.report(start)
    assert sorted(round(ms, 3) for ms in report.latencies) == [-10.0, 30.0, 50.0]
    assert report.negative_latencies == 1
    assert any("clocks disagree" in note for note in report.notes)
    assert report.bucket_s == 0.1
    assert [row["t"] for row in report.timeline] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
