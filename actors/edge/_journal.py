"""What every ingress route does once a request is verified and parsed: its events become
journal entries, appended with one group commit, and the route answers (docs/architecture.md
§4): 200 when durable, 503 with ``Retry-After`` only when the journal cannot commit.

:class:`IngressJournal` is shared by the provider webhooks (``actors/edge/_ingress.py``), the
Intercom webhook (``actors/edge/_intercom.py``) and the send API
(``actors/edge/_send_api.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from channels import (
    AccountMismatch,
    Channel,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    ParsedEvent,
    PayloadInvalid,
    PayloadTooLarge,
    SignatureInvalid,
    ThreadKey,
    WebhookRejected,
)
from runtime import Journal, JournalError, JournalUnavailable, NewEntry, Response, text_response

from ..bridge import (
    FAILED_STATUSES,
    InboundJob,
    SentRecord,
    StatusJob,
    encode_job,
    sent_message_key,
    status_label,
    thread_state_key,
)
from ..core import BridgeMetrics, LogLimiter

__all__ = [
    "MAX_IDENTIFIER_CHARS",
    "RETRY_AFTER_SECONDS",
    "IngressJournal",
    "rejected",
    "unavailable",
]

logger = logging.getLogger("threadline.ingress")

RETRY_AFTER_SECONDS = "5"
MAX_IDENTIFIER_CHARS = 512
"""Longest journal key or dedupe id the ingress writes. Both are made of caller-supplied ids
(a phone, a message id, a notification id), a few dozen characters in practice; the bound keeps
them well inside PostgreSQL's B-tree entry limit (about 2,700 bytes)."""
FUTURE_DATE_SECONDS = 86_400.0
"""How far ahead of our clock a provider may date a customer's message. Beyond it the date is
wrong, not clock drift, and the message is dated when it was received: a thread's last activity
held in the future would keep the conversation buffer from ever opening a new conversation."""


def unavailable(reason: str = "journal unavailable") -> Response:
    """503 with ``Retry-After``: the journal (or what the route needs) is down for now."""
    return text_response(503, reason, **{"retry-after": RETRY_AFTER_SECONDS})


_REJECTION_STATUS: dict[type[WebhookRejected], int] = {
    SignatureInvalid: 401,
    AccountMismatch: 401,
    PayloadTooLarge: 413,
    PayloadInvalid: 400,
}


def rejected(exc: WebhookRejected) -> Response:
    """The one table from a refused webhook to its status (docs/architecture.md §4), with its
    reason."""
    return text_response(_REJECTION_STATUS.get(type(exc), 400), exc.reason)


class IngressJournal:
    """The journal as the ingress writes it: counted, logged, and the dispatcher woken."""

    def __init__(
        self,
        journal: Journal,
        *,
        wake: Callable[[], None],
        metrics: BridgeMetrics,
        repeats: LogLimiter,
    ) -> None:
        self.journal = journal
        self._wake = wake
        self._metrics = metrics
        self._repeats = repeats

    async def append(self, channel: str, entries: Sequence[NewEntry]) -> Response | None:
        """Append; None when durable, else the 503 to answer."""
        if not entries:
            return None
        for entry in entries:
            if max(len(entry.key), len(entry.dedupe_id)) > MAX_IDENTIFIER_CHARS:
                return text_response(
                    400, f"an identifier in the payload is over {MAX_IDENTIFIER_CHARS} characters"
                )
        started = time.perf_counter()
        try:
            results = await self.journal.append(entries)
        except JournalUnavailable as exc:
            self._repeats.log(
                logger, logging.WARNING, "journal",
                "journal cannot commit, answering 503: %s", exc, extra={"channel": channel},
            )  # fmt: skip
            return unavailable("journal unavailable, retry later")
        except JournalError as exc:
            # Not transient: the store cannot hold this payload, so a retry would fail alike.
            # The checks at the edge (channels/_decode.py) are meant to make this unreachable.
            logger.error("journal refused a payload, answering 400: %s", exc)
            return text_response(400, "the payload holds a value the journal cannot store")
        self._metrics.journal_commit.observe(time.perf_counter() - started)
        fresh = sum(1 for r in results if not r.duplicate)
        if fresh:
            self._metrics.journal_appends.labels(channel).inc(fresh)
            self._wake()
        if fresh < len(results):
            self._metrics.journal_duplicates.labels(channel).inc(len(results) - fresh)
        return None

    async def event_entries(self, channel: Channel, events: list[ParsedEvent]) -> list[NewEntry]:
        """A provider webhook's entries: its messages, then the failures of messages the
        bridge sent. Raises JournalUnavailable."""
        inbound = self._inbound_entries(channel.value, events)
        return [*inbound, *await self._status_entries(channel, events)]

    def _inbound_entries(self, channel: str, events: list[ParsedEvent]) -> list[NewEntry]:
        received = time.time()
        entries = []
        for event in events:
            if isinstance(event, Ignored):
                self._metrics.webhook_ignored.labels(channel, event.what).inc()
            elif isinstance(event, InboundMessage):
                key = event.key
                job = InboundJob(message=_dated(event, received), received_at=received)
                dedupe = f"{key.channel.value}:{key.account}:{event.provider_message_id}"
                entries.append(NewEntry(str(key), dedupe, encode_job(job)))
        return entries

    async def _status_entries(self, channel: Channel, events: list[ParsedEvent]) -> list[NewEntry]:
        """Receipts for messages the bridge sent: each one counted; a failure of a message the
        bridge remembers (or of a bridged thread, whose record may be committing still) is
        journaled for the thread's actor to note, once per message; the rest acknowledged.
        Raises JournalUnavailable."""
        entries = []
        for event in events:
            if not isinstance(event, DeliveryStatus):
                continue
            self._metrics.delivery_statuses.labels(channel.value, status_label(event.status)).inc()
            if event.status.lower() not in FAILED_STATUSES:
                continue
            if len(event.provider_message_id) > MAX_IDENTIFIER_CHARS // 2:
                # Not an id the bridge was given: never a reason to refuse the whole batch.
                self._metrics.delivery_failures.labels(channel.value, "unknown").inc()
                continue
            raw = await self.journal.get_state(
                sent_message_key(channel.value, event.provider_message_id)
            )
            thread = _sent_thread(raw)
            if thread is not None and not _same_account(thread, event.key):
                # Signed for one account, naming a message another sent: never noted, and
                # its dedupe id is not spent (the other account's own report still counts).
                thread = None
            elif thread is None and event.key is not None:
                known = await self.journal.get_state(thread_state_key(str(event.key)))
                thread = str(event.key) if known is not None else None
            if thread is None:
                self._metrics.delivery_failures.labels(channel.value, "unknown").inc()
                continue
            job = StatusJob(
                provider_message_id=event.provider_message_id,
                status=event.status,
                error_code=event.error_code,
                error_title=event.error_title,
                received_at=time.time(),
            )
            # One note per message, however often (and as whichever failure) it is reported.
            dedupe = f"status:{channel.value}:{event.provider_message_id}:failed"
            entries.append(NewEntry(thread, dedupe, encode_job(job)))
        return entries


def _dated(message: InboundMessage, received: float) -> InboundMessage:
    """The message, dated when it was received if its provider dates it over a day ahead."""
    if message.sent_at.timestamp() <= received + FUTURE_DATE_SECONDS:
        return message
    logger.warning(
        "%s message %s is dated %s, over a day ahead of our clock: dated when received",
        message.key.channel.value, message.provider_message_id[:80], message.sent_at.isoformat(),
        extra={"channel": message.key.channel.value},
    )  # fmt: skip
    return message.model_copy(update={"sent_at": datetime.fromtimestamp(received, UTC)})


def _sent_thread(raw: bytes | None) -> str | None:
    """The thread of a sent-message record (None: no record, or one that cannot be read)."""
    if raw is None:
        return None
    try:
        return SentRecord.decode(raw).thread
    except ValidationError:
        return None


def _same_account(thread: str, key: ThreadKey | None) -> bool:
    """Whether a receipt naming ``key`` (None: it names no thread, e.g. a Twilio status without
    ``From``; matched by the message id alone) comes from ``thread``'s business account."""
    if key is None:
        return True
    try:
        sender = ThreadKey.parse(thread)  # a record the bridge wrote: its own thread key
    except ValueError:
        return False
    return (sender.channel, sender.account) == (key.channel, key.account)
