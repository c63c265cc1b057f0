"""Logging: JSON lines for machines, readable lines on a terminal.

One event per line with ``time``, ``level``, ``logger``, ``message`` and any structured extras
(``log_fields(...)`` makes them: ``thread_hash`` — a hash of the thread key, never the key itself,
which holds phone numbers — ``channel``, ``entry_id``, ``request_id``: Intercom's, where there
is one; a rejected webhook's ``route``, ``status`` and ``reason``; ``suppressed``, see below).
Extras that are None are left out. (``thread`` cannot be an extra: it is a reserved
``LogRecord`` attribute, and logging raises ``KeyError`` for it.) The text format appends them
as ``key=value`` after the message. Message bodies and secrets are never logged at INFO.

A warning that repeats while something stays broken (the journal or Intercom down, a stream of
badly signed webhooks) goes through a :class:`LogLimiter`: at most one line per kind every
``LOG_REPEAT_SECONDS``, and the next line says how many were left out (``suppressed``).

Secrets stay out at DEBUG too: the libraries that log header values or URLs are held at WARNING
whatever the level asked for (hpack, under Hypercorn's HTTP/2 and httpx's, logs every decoded
header — ``Authorization``, ``X-Telegram-Bot-Api-Secret-Token``, ``X-Viber-Auth-Token`` — at
DEBUG; httpx logs each request's URL at INFO, and the Telegram Bot API's holds the bot token).
As a second line, every formatted line has credential header values, bearer tokens and Telegram
bot tokens masked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "LOG_REPEAT_SECONDS",
    "JsonFormatter",
    "LogLimiter",
    "configure_logging",
    "log_fields",
    "thread_hash",
]

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}

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
    r"|x-api-key|x-hub-signature(?:-256)?|x-twilio-signature|x-viber-auth-token"
    r"|x-viber-content-signature)\\?['\"]?\s*[:=,]\s*(?:b?\\?['\"])?)"
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


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """The structured extras of ``record`` that are set (None ones left out)."""
    return {
        name: value
        for name, value in record.__dict__.items()
        if name not in _STANDARD and not name.startswith("_") and value is not None
    }


class _RedactingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        extras = _extras(record)
        if extras:  # after the message, before any traceback
            line += "  " + " ".join(f"{name}={value}" for name, value in extras.items())
        return line

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def thread_hash(key: str) -> str:
    """A short stable hash of a thread key for logs (keys hold phone numbers)."""
    return hashlib.blake2s(key.encode(), digest_size=6).hexdigest()


def log_fields(
    *,
    key: str | None = None,
    entry_id: int | None = None,
    request_id: str | None = None,
    channel: str | None = None,
) -> dict[str, object]:
    """The ``extra=`` of a log record about a thread or an entry: ``thread_hash`` and
    ``channel`` from the thread key ``key`` (never the key: it holds phone numbers),
    ``entry_id`` and Intercom's ``request_id``."""
    fields: dict[str, object] = {"entry_id": entry_id, "request_id": request_id}
    if key is not None:
        fields["thread_hash"] = thread_hash(key)
        channel = channel or key.partition(":")[0]
    fields["channel"] = channel
    return fields


LOG_REPEAT_SECONDS = 30.0
"""A repeated warning of one kind is logged at most once this often (``LogLimiter``)."""


class LogLimiter:
    """Logs a repeated message at most once per ``every`` seconds per kind.

    The first record of a kind goes out at once; others within ``every`` seconds of it are
    counted, not logged, and the next one logged after that carries the count (``suppressed``
    in its extras, and "(N more like it in the last S s)" in its text).
    """

    def __init__(
        self, every: float = LOG_REPEAT_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(
        self,
        logger: logging.Logger,
        level: int,
        kind: str,
        message: str,
        *args: object,
        extra: dict[str, object] | None = None,
    ) -> bool:
        """Log ``message % args`` unless ``kind`` was logged less than ``every`` seconds ago;
        True when it was logged."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.every:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        if not logger.isEnabledFor(level):
            return False
        suppressed = self._suppressed.pop(kind, 0)
        fields = dict(extra or {})
        if suppressed and last is not None:
            message += f" ({suppressed} more like it in the last {now - last:.0f} s)"
            fields["suppressed"] = suppressed
        self._last[kind] = now
        logger.log(level, message, *args, extra=fields)
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line (credentials masked, see ``redact``)."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event.update(_extras(record))
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
