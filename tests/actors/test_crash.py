"""Crash: kill -9 ``threadline serve`` while webhooks stream in, restart it on the same database,
re-send what was not answered 200 (as providers do) → every acknowledged message is in
Intercom exactly once, in order per thread. For SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
import trio

from actors._embedded import PUBLIC_URL
from actors._sandbox import SANDBOX_SECRETS, SandboxApp, sandbox_settings_env
from channels import SignedWebhook, WhatsAppInbound, whatsapp_webhook
from runtime import hypercorn_config, serve_asgi
from tests.postgres import free_port
from tests.quirks import HTTPX_3686

THREADS = 12
MESSAGES = 25


class Bridge:
    """``threadline serve`` as a child process that can be killed and started again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.url = f"http://{env['THREADLINE_BIND']}"
        self.process: trio.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "actors", "serve"], env=self.env, stdout=log, stderr=log
            )
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
        assert self.process is not None
        self.process.kill()  # SIGKILL: no drain, no cleanup
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with trio.move_on_after(30):
                await self.process.wait()
            if self.process.returncode is None:
                await self.kill()


def webhook(thread: int, seq: int) -> SignedWebhook:
    message = WhatsAppInbound(
        from_phone=f"1777{thread:07d}",
        text=f"thread {thread} message {seq}",
        message_id=f"wamid.crash{thread:04d}{seq:04d}",
    )
    return whatsapp_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret, SANDBOX_SECRETS.whatsapp_phone_number_id, [message]
    )


@pytest.mark.slow
@HTTPX_3686  # requests die with the killed process, mid-upload
async def test_kill_9_loses_and_doubles_nothing_acknowledged(
    database_url: str, tmp_path: Path
) -> None:
    sandbox = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        env = {
            **os.environ,
            **sandbox_settings_env(address.url, PUBLIC_URL),
            "THREADLINE_DATABASE_URL": database_url,
            "THREADLINE_BIND": f"127.0.0.1:{free_port()}",
            "THREADLINE_METRICS_BIND": f"127.0.0.1:{free_port()}",
            "THREADLINE_MEDIA_DIR": str(tmp_path / "media"),
            "THREADLINE_LOG_FORMAT": "json",
            # A restart under the same node id takes its partitions back at once (a new epoch
            # fences out the killed process); an unknown id would wait for the leases to expire.
            "THREADLINE_NODE_ID": "crash-test-node",
            "THREADLINE_RETRY_BASE_SECONDS": "0.05",
            "THREADLINE_RETRY_CAP_SECONDS": "0.5",
        }
        bridge = Bridge(env, tmp_path / "serve.log")
        await bridge.start()
        acked: dict[int, list[int]] = {t: [] for t in range(THREADS)}
        kills = trio.Event()

        async def send(client: httpx.AsyncClient, thread: int, seq: int) -> None:
            hook = webhook(thread, seq)
            while True:  # a provider redelivers until it gets a 200
                try:
                    response = await client.post(
                        "/webhooks/whatsapp", content=hook.body, headers=hook.headers
                    )
                    if response.status_code == 200:
                        acked[thread].append(seq)
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)

        async def customer(client: httpx.AsyncClient, thread: int) -> None:
            for seq in range(MESSAGES):
                await send(client, thread, seq)
                await trio.sleep(0.01)

        async def killer() -> None:
            for threshold in (THREADS * MESSAGES // 4, THREADS * MESSAGES // 2):
                while sum(map(len, acked.values())) < threshold:  # noqa: ASYNC110 - counts, no event
                    await trio.sleep(0.01)
                await bridge.kill()
                await trio.sleep(0.2)
                await bridge.start()
            kills.set()

        async with (
            httpx.AsyncClient(base_url=bridge.url, timeout=5.0) as client,
            trio.open_nursery() as senders,
        ):
            senders.start_soon(killer)
            for thread in range(THREADS):
                senders.start_soon(customer, client, thread)
        assert kills.is_set()
        assert bridge.starts == 3

        def delivered() -> dict[str, list[str]]:
            by_contact: dict[str, list[str]] = {}
            for conversation in sandbox.intercom.conversations():
                bodies = [str(p["body"]) for p in conversation["parts"]]
                by_contact.setdefault(str(conversation["contact_id"]), []).extend(bodies)
            return by_contact

        total = THREADS * MESSAGES
        with trio.fail_after(60):
            while sum(len(b) for b in delivered().values()) < total:  # noqa: ASYNC110 - sandbox
                await trio.sleep(0.05)
        await trio.sleep(1.0)  # anything doubled would show up now
        await bridge.stop()
        nursery.cancel_scope.cancel()

    assert all(seqs == list(range(MESSAGES)) for seqs in acked.values())
    threads = sorted(delivered().values())
    assert len(threads) == THREADS
    expected = sorted([f"thread {t} message {s}" for s in range(MESSAGES)] for t in range(THREADS))
    assert threads == expected  # each thread: every message once, in order
