"""SIGTERM ends ``threadline serve`` within the drain deadline plus a few seconds, whatever is in
flight or retrying, and what it did not deliver stays pending in the journal. For SQLite and
PostgreSQL, on a real ``serve`` child process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio

from actors.core import Settings
from actors.service import open_journal
from actors.tools import PUBLIC_URL, SANDBOX_SECRETS
from channels.sandbox import SandboxCredentials, twilio_message_webhook
from tests.actors.processes import ServeProcess, serve_env
from tests.postgres import free_port

DRAIN_SECONDS = 2.0
GRACE_SECONDS = 6.0  # the watchdog's grace is 5 s past the drain; one more for process exit
ROUNDS = 5
WEBHOOKS = 3


async def _post_twilio(client: httpx.AsyncClient, customer: int, run: int) -> None:
    creds = SandboxCredentials()
    hook = twilio_message_webhook(
        creds.twilio_auth_token,
        f"{PUBLIC_URL}/webhooks/twilio",
        account_sid=creds.twilio_account_sid,
        to=SANDBOX_SECRETS.twilio_number,
        from_=f"+1555010{customer:04d}",
        body=f"round {run} message {customer}",
    )
    response = await client.post("/webhooks/twilio", content=hook.body, headers=hook.headers)
    assert response.status_code == 200, response.text


async def _pending(database_url: str) -> int:
    settings = Settings(_env_file=None, database_url=database_url)
    async with open_journal(settings) as journal:
        return len(await journal.read_pending(after_id=0, limit=1000, partitions=None))


@pytest.mark.slow
async def test_sigterm_ends_serve_within_the_drain_while_deliveries_retry(
    database_url: str, tmp_path: Path
) -> None:
    # Intercom (and every provider) on a closed loopback port: each delivery fails to connect
    # and is retried with the default backoff, so it is still retrying at SIGTERM.
    closed = f"http://127.0.0.1:{free_port()}"
    env = serve_env(
        closed,
        database_url,
        tmp_path,
        shutdown_drain_seconds=str(DRAIN_SECONDS),
        retry_base_seconds="0.5",
        retry_cap_seconds="60",
        node_id="shutdown-test-node",
    )
    log = tmp_path / "serve.log"
    bridge = ServeProcess(env, log)
    for run in range(ROUNDS):
        await bridge.start()
        assert bridge.process is not None
        # The client stays connected (keep-alive) through the SIGTERM, as providers' pools do.
        async with httpx.AsyncClient(base_url=bridge.url, timeout=10.0) as client:
            for customer in range(WEBHOOKS):
                await _post_twilio(client, customer, run)
            await trio.sleep(0.3 * run)  # SIGTERM at different points of the retries
            bridge.process.terminate()
            with trio.move_on_after(DRAIN_SECONDS + GRACE_SECONDS) as waited:
                await bridge.process.wait()
        if waited.cancelled_caught:
            await bridge.kill()
            pytest.fail(f"round {run}: still alive {DRAIN_SECONDS + GRACE_SECONDS} s after "
                        f"SIGTERM; log:\n{log.read_text()[-4000:]}")  # fmt: skip
        assert bridge.process.returncode == 0, log.read_text()[-4000:]
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert any(line["message"].startswith("stopped:") for line in lines)
        # Nothing was delivered and nothing given up: every acknowledged webhook is pending.
        assert await _pending(database_url) == WEBHOOKS * (run + 1)


async def _stop_reading_responses(bind: str, path: str) -> trio.SocketStream:
    """A keep-alive client that pipelines requests and never reads an answer, until the
    server's writes to it block (both sides' socket buffers full)."""
    host, port = bind.rsplit(":", 1)
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 1024)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    requests = f"GET {path} HTTP/1.1\r\nHost: {bind}\r\n\r\n".encode() * 50
    with trio.move_on_after(2.0):  # until the server stops reading us: its writes are stuck
        while True:
            await stream.send_all(requests)
    return stream


@pytest.mark.slow
@pytest.mark.parametrize("server", ["ingress", "metrics"])
async def test_sigterm_ends_serve_while_a_client_does_not_read(
    database_url: str, tmp_path: Path, server: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = serve_env(closed, database_url, tmp_path, shutdown_drain_seconds=str(DRAIN_SECONDS))
    log = tmp_path / "serve.log"
    bridge = ServeProcess(env, log)
    bind, path = (
        (env["THREADLINE_BIND"], "/healthz")
        if server == "ingress"
        else (env["THREADLINE_METRICS_BIND"], "/metrics")
    )
    for run in range(2):  # the stuck write is deterministic: no race to repeat
        await bridge.start()
        assert bridge.process is not None
        stream = await _stop_reading_responses(bind, path)
        bridge.process.terminate()
        with trio.move_on_after(DRAIN_SECONDS + GRACE_SECONDS) as waited:
            await bridge.process.wait()
        await stream.aclose()
        if waited.cancelled_caught:
            await bridge.kill()
            pytest.fail(f"round {run}: still alive {DRAIN_SECONDS + GRACE_SECONDS} s after "
                        f"SIGTERM; log:\n{log.read_text()[-4000:]}")  # fmt: skip
        assert bridge.process.returncode == 0, log.read_text()[-4000:]
