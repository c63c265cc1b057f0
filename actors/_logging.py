"""Logging: JSON lines for machines, readable lines on a terminal.

One event per line with ``time``, ``level``, ``logger``, ``message`` and any structured extras
(``thread_hash`` — a hash of the thread key, never the key itself, which holds phone numbers —
``entry_id``, ``request_id``: Intercom's, where there is one). Extras that are None are left
out. (``thread`` cannot be an extra: it is a reserved ``LogRecord`` attribute, and logging
raises ``KeyError`` for it.) Message bodies and secrets are never logged at INFO.

Secrets stay out at DEBUG too: the libraries that log header values or URLs are held at WARNING
whatever the level asked for (hpack, under Hypercorn's HTTP/2 and httpx's, logs every decoded
header — ``Authorization``, ``X-Telegram-Bot-Api-Secret-Token`` — at DEBUG; httpx logs each
request's URL at INFO, and the Telegram Bot API's holds the bot token). As a second line, every
formatted line has credential header values, bearer tokens and Telegram bot tokens masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

__all__ = ["JsonFormatter", "configure_logging"]

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

_QUIET = ("hpack", "h2", "hyperframe", "httpx", "httpcore", "hypercorn")
"""Third-party loggers held at WARNING: they log header values or URLs below it."""

# A credential header's name and its separator as a header line, a dict or JSON, a tuple repr or
# a query string writes it (``authorization: ``, ``"authorization": "``, ``(b'authorization',
# b'``, ``authorization=``), then an optional scheme and the value up to a quote, space or
# separator; a bearer token anywhere; a Telegram bot token as Bot API URLs hold it,
# ``bot<id>:<secret>``. No nested repetition: linear time.
_VALUE = r"[^\s'\"\\,;&)}\]]+"
_CREDENTIAL = re.compile(
    r"(?i)(\b(?:proxy-authorization|authorization|x-telegram-bot-api-secret-token|cookie"
    r"|x-api-key|x-hub-signature(?:-256)?|x-twilio-signature)\\?['\"]?\s*[:=,]\s*(?:b?\\?['\"])?)"
    r"((?:bearer|basic|token) +)?" + _VALUE
)
_BEARER = re.compile(r"(?i)(\bbearer +)" + _VALUE)
_BOT_TOKEN = re.compile(r"\b(bot\d+:)[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """``text`` with the values of credential headers, bearer tokens and Telegram bot tokens
    masked."""
    text = _CREDENTIAL.sub(r"\1\2<redacted>", text)
    text = _BEARER.sub(r"\1<redacted>", text)
    return _BOT_TOKEN.sub(r"\1<redacted>", text)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line (credentials masked, see ``redact``)."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event.update(
            (name, value)
            for name, value in record.__dict__.items()
            if name not in _STANDARD and not name.startswith("_") and value is not None
        )
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(event, default=str))


def configure_logging(fmt: Literal["auto", "json", "text"] = "auto", level: str = "INFO") -> None:
    """Send logs to standard error as JSON lines (or text on a terminal with ``auto``)."""
    handler = logging.StreamHandler(sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for quiet in _QUIET:
        logging.getLogger(quiet).setLevel(logging.WARNING)
