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
from typing import Any, Literal

import pytest

from actors._logging import JsonFormatter, configure_logging
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
