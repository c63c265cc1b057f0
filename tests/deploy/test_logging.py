"""The logs of a live run, written by the production logging configuration (JSON lines).

One event per line with time, level and logger; a dead-lettered entry's line carries the entry
id, the thread key's hash and Intercom's request id; no line holds a credential, a customer's
phone number or a message body at INFO or above.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from actors.core import JsonFormatter, configure_logging
from actors.tools import SANDBOX_SECRETS, open_stack
from channels.sandbox import telegram_message_webhook
from tests.deploy.conftest import BODIES, PHONES, LiveRun


def events(run: LiveRun) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in run.log_lines]
    assert all(isinstance(event, dict) for event in parsed)
    return parsed


def test_every_line_is_one_json_event_with_time_level_and_logger(live_run: LiveRun) -> None:
    assert live_run.log_lines, "the run logged nothing at all"
    for event in events(live_run):
        assert {"time", "level", "logger", "message"} <= set(event)
        assert event["level"] in {"info", "warning", "error", "critical"}
        assert event["logger"]


def test_a_dead_letter_is_logged_with_entry_thread_hash_and_intercom_request_id(
    live_run: LiveRun,
) -> None:
    (dead,) = [e for e in events(live_run) if "given up" in e["message"]]
    assert dead["level"] == "error"
    assert dead["logger"] == "threadline.bridge"
    assert isinstance(dead["entry_id"], int)
    assert len(dead["thread_hash"]) == 12
    assert dead["thread_hash"] in dead["message"]
    assert dead["request_id"]  # the sandbox's 5xx body carries one, as Intercom's does
    assert dead["channel"] == "whatsapp"


def test_the_intercom_outage_and_the_bad_signature_are_logged_once_each(
    live_run: LiveRun,
) -> None:
    logged = events(live_run)
    retries = [e for e in logged if e["message"].startswith("delivery failed (intercom")]
    assert len(retries) == 1, [e["message"] for e in retries]  # not one per attempt
    assert retries[0]["level"] == "warning"
    (refused,) = [e for e in logged if "webhook refused" in e["message"]]
    assert refused["level"] == "warning"
    assert refused["route"] == "/webhooks/whatsapp"
    assert refused["status"] == 401
    assert refused["reason"] == "X-Hub-Signature-256 does not match the body"


def test_no_secret_phone_number_or_message_body_is_logged(live_run: LiveRun) -> None:
    text = "\n".join(live_run.log_lines)
    for secret in live_run.secrets:
        assert secret not in text, "a credential reached the logs"
    for phone in PHONES:
        assert phone not in text, "a customer's phone number (part of a thread key) was logged"
    for body in BODIES:
        assert body not in text, "a message body was logged"


def test_the_formatter_leaves_out_absent_extras() -> None:
    record = logging.LogRecord("threadline.test", logging.INFO, __file__, 1, "hi", None, None)
    record.request_id = None
    record.entry_id = 7
    event = json.loads(JsonFormatter().format(record))
    assert event["entry_id"] == 7
    assert "request_id" not in event


def formatted_by_configure_logging(fmt: Literal["auto", "json", "text"]) -> str:
    """One record as ``configure_logging(fmt)`` formats it (the root logger restored after)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(fmt, "INFO")
        record = logging.LogRecord(
            "threadline.test", logging.INFO, __file__, 1, "hello", None, None
        )
        return root.handlers[0].format(record)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_text_format_is_one_readable_line_and_auto_is_json_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = formatted_by_configure_logging("text")
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO    threadline\.test: hello", text)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, as in a container
    assert json.loads(formatted_by_configure_logging("auto"))["message"] == "hello"


class Records(logging.Handler):
    """Every record that reaches the root logger, whatever its level."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def debug_logs() -> Iterator[tuple[io.StringIO, Records]]:
    """``configure_logging("json", "DEBUG")`` writing to a buffer, every record captured too;
    the root handlers and every logger's level restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    buffer = io.StringIO()
    configure_logging("json", "DEBUG")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    records = Records()
    root.addHandler(records)
    try:
        yield buffer, records
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))


async def test_http2_headers_reach_no_log_at_debug(
    debug_logs: tuple[io.StringIO, Records], tmp_path: Path
) -> None:
    """Issue 15, finding 12: hpack, under Hypercorn's HTTP/2, logged every decoded header at
    DEBUG, bearer tokens and Telegram's secret token among them."""
    buffer, records = debug_logs
    api_token = "s3cr3t-api-token-for-the-http2-test"
    metrics_token = "s3cr3t-metrics-token-for-the-http2-test"
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'threadline.db'}",
        media_dir=str(tmp_path / "media"),
        api_token=api_token,
        metrics_token=metrics_token,
        shutdown_drain_seconds=1.0,
    ) as stack:
        assert logging.getLogger("threadline").isEnabledFor(logging.DEBUG)
        webhook = telegram_message_webhook(
            SANDBOX_SECRETS.telegram_secret_token, chat_id=4242, message_id=1, text="hello"
        )
        assert "X-Telegram-Bot-Api-Secret-Token" in webhook.headers
        # Prior-knowledge HTTP/2 over cleartext (h2c), as a proxy speaking HTTP/2 would send it.
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30.0) as h2:
            ingress = stack.node.ingress.url
            telegram = await h2.post(
                ingress + "/webhooks/telegram", content=webhook.body, headers=webhook.headers
            )
            bearer = {"authorization": f"Bearer {api_token}"}
            api = await h2.post(ingress + "/api/messages", json={}, headers=bearer)
            bearer = {"authorization": f"Bearer {metrics_token}"}
            metrics = await h2.get(stack.node.metrics.url + "/metrics", headers=bearer)
    assert telegram.http_version == api.http_version == metrics.http_version == "HTTP/2"
    assert telegram.status_code == metrics.status_code == 200
    assert api.status_code == 400  # authenticated (else 401), then refused for the empty body
    secrets = (SANDBOX_SECRETS.telegram_secret_token, api_token, metrics_token)
    # Raw records, before any masking by our formatter: the libraries must not log them at all.
    logged = [f"{record.name}: {record.getMessage()}" for record in records.records]
    logged.append(buffer.getvalue())
    leaks = [(secret, text) for text in logged for secret in secrets if secret in text]
    assert not leaks, leaks[:3]
    libraries = ("hpack", "h2", "hyperframe", "httpx", "httpcore", "hypercorn")
    chatty = [r for r in records.records if r.name.partition(".")[0] in libraries]
    assert all(record.levelno >= logging.WARNING for record in chatty), logged[:3]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_credentials_in_our_own_records_are_masked(fmt: Literal["json", "text"]) -> None:
    """Defence in depth: a credential that does reach a record is masked when formatted."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(fmt, "DEBUG")
        record = logging.LogRecord(
            "threadline.test",
            logging.ERROR,
            __file__,
            1,
            "request %s to %s failed",
            (
                {
                    "Authorization": "Bearer s3cr3t-one",
                    "X-Telegram-Bot-Api-Secret-Token": "s3-two",
                    "X-Viber-Auth-Token": "s3cr3t-four",
                    "X-Viber-Content-Signature": "s3cr3t-five",
                },
                "https://api.telegram.org/bot123456:s3cr3t-three/sendMessage",
            ),
            None,
        )
        line = root.handlers[0].format(record)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert "request {'Authorization': 'Bearer <redacted>'" in line
    for secret in ("s3cr3t-one", "s3-two", "s3cr3t-three", "s3cr3t-four", "s3cr3t-five"):
        assert secret not in line
    assert "bot123456:<redacted>/sendMessage failed" in line
