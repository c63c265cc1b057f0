"""The logs an operator reads while something is wrong (issue 19): ids as fields, refused
webhooks logged with their route and reason (never the secret or the signature), and repeated
warnings limited to one line per kind every ``LOG_REPEAT_SECONDS`` with a count of the rest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.core import LogLimiter, configure_logging, log_fields, thread_hash
from actors.tools import SANDBOX_SECRETS, Stack
from channels.sandbox import WhatsAppInbound, telegram_message_webhook, whatsapp_webhook
from tests.actors.processes import ServeProcess, serve_env
from tests.postgres import PostgresServer, throwaway_server

WRONG_SECRET = "wrong-Hq27-telegram-secret"


def refused(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "webhook refused" in r.getMessage()]


async def test_a_refused_webhook_is_logged_with_route_and_reason_not_the_secret(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="threadline")
    webhook = telegram_message_webhook(WRONG_SECRET, chat_id=4242, message_id=1, text="hi")
    for _ in range(20):  # a provider with the wrong secret keeps redelivering
        answer = await stack.post("/webhooks/telegram", webhook)
        assert answer.status_code == 401
    (record,) = refused(caplog)  # one line for the twenty
    assert record.levelno == logging.WARNING
    fields: dict[str, Any] = record.__dict__
    assert fields["route"] == "/webhooks/telegram"
    assert fields["status"] == 401
    assert fields["channel"] == "telegram"
    assert fields["reason"] == "X-Telegram-Bot-Api-Secret-Token does not match"
    assert WRONG_SECRET not in caplog.text
    assert SANDBOX_SECRETS.telegram_secret_token not in caplog.text

    signed = whatsapp_webhook(
        "not-the-app-secret",
        SANDBOX_SECRETS.whatsapp_phone_number_id,
        [WhatsAppInbound(from_phone="15550001111", text="hi", message_id="wamid.logs1")],
    )
    answer = await stack.post("/webhooks/whatsapp", signed)
    assert answer.status_code == 401
    whatsapp = [r for r in refused(caplog) if r.__dict__["route"] == "/webhooks/whatsapp"]
    assert len(whatsapp) == 1
    assert whatsapp[0].__dict__["reason"] == "X-Hub-Signature-256 does not match the body"
    assert signed.headers["X-Hub-Signature-256"].partition("=")[2] not in caplog.text


async def test_a_malformed_webhook_is_logged_at_info(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="threadline")
    headers = {
        "content-type": "text/plain",
        "x-telegram-bot-api-secret-token": SANDBOX_SECRETS.telegram_secret_token,
    }
    answer = await stack.http.post("/webhooks/telegram", content=b"{}", headers=headers)
    assert answer.status_code == 400
    (record,) = refused(caplog)
    assert record.levelno == logging.INFO
    assert record.__dict__["status"] == 400
    assert record.__dict__["reason"] == "expected application/json, got text/plain"


def test_the_limiter_says_how_many_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limiter = LogLimiter(every=30.0, clock=lambda: now[0])
    logger = logging.getLogger("threadline.test")
    caplog.set_level(logging.INFO, logger="threadline")
    for _ in range(60):  # two a second for 30 s: an outage as the dispatcher saw it
        limiter.log(logger, logging.WARNING, "journal", "journal unavailable: %s", "down")
        limiter.log(logger, logging.WARNING, "other", "something else")
        now[0] += 0.5
    limiter.log(logger, logging.WARNING, "journal", "journal unavailable: %s", "down")
    journal = [r for r in caplog.records if r.getMessage().startswith("journal")]
    assert [r.getMessage() for r in journal] == [
        "journal unavailable: down",
        "journal unavailable: down (59 more like it in the last 30 s)",
    ]
    assert journal[1].__dict__["suppressed"] == 59
    assert len([r for r in caplog.records if r.getMessage() == "something else"]) == 1


# --- a serve process whose PostgreSQL goes away: JSON lines, counted ----------------------


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    with throwaway_server() as server:
        yield server


def json_lines(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


@pytest.mark.slow
async def test_an_outage_logs_each_warning_once_not_every_poll(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    env = serve_env("http://127.0.0.1:9", own_server.create_database(), tmp_path)
    log = tmp_path / "serve.log"
    bridge = ServeProcess(env, log)
    await bridge.start()
    try:
        await trio.to_thread.run_sync(own_server.stop)
        try:
            webhook = telegram_message_webhook(
                SANDBOX_SECRETS.telegram_secret_token, chat_id=7, message_id=1, text="hi"
            )
            async with httpx.AsyncClient(base_url=bridge.url, timeout=10.0) as http:
                for _ in range(8):  # Telegram redelivering while the journal is down
                    answer = await http.post(
                        "/webhooks/telegram", content=webhook.body, headers=webhook.headers
                    )
                    assert answer.status_code == 503
                    await trio.sleep(0.5)
            await trio.sleep(2.0)  # ~6 s down: 12 dispatcher polls
        finally:
            await trio.to_thread.run_sync(own_server.start)
    finally:
        await bridge.stop()
    events = json_lines(log)
    warnings = [e for e in events if e["level"] in ("warning", "error")]
    by_message: dict[str, int] = {}
    for event in warnings:
        kind = event["message"].partition(":")[0]
        by_message[kind] = by_message.get(kind, 0) + 1
    assert by_message.get("journal unavailable, dispatch paused", 0) <= 1, by_message
    assert by_message.get("journal cannot commit, answering 503", 0) == 1, by_message
    assert by_message.get("cluster", 0) <= 1, by_message
    assert len(warnings) <= 12, by_message
    (commit,) = [e for e in warnings if e["message"].startswith("journal cannot commit, ans")]
    assert commit["channel"] == "telegram"


def test_the_text_format_shows_the_fields_after_the_message() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("text", "INFO")
        record = logging.LogRecord(
            "threadline.bridge", logging.ERROR, __file__, 1, "entry %d given up", (7,), None
        )
        for name, value in log_fields(key="whatsapp:100:15550001111", entry_id=7).items():
            setattr(record, name, value)
        line = root.handlers[0].format(record)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert line.endswith(
        f"ERROR   threadline.bridge: entry 7 given up  entry_id=7 "
        f"thread_hash={thread_hash('whatsapp:100:15550001111')} channel=whatsapp"
    ), line
    assert "15550001111" not in line
