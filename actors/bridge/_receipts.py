"""Delivery receipts: what the providers report about messages the bridge sent.

A provider may accept a message and fail to deliver it later: WhatsApp posts a status
``failed`` with its ``errors[]``, Twilio calls the ``StatusCallback`` the bridge gives with each
send (``MessageStatus`` ``failed`` or ``undelivered`` and an ``ErrorCode``), Viber a ``failed``
callback with a ``desc``. Telegram reports nothing after a send is accepted. ::

    send (WhatsApp, Twilio) ─► SentRecord under sent:<channel>:<provider id>, committed with
                               the entry (kept THREADLINE_JOURNAL_RETENTION_SECONDS)
    status webhook ─► ingress: every receipt counted (threadline_delivery_statuses_total);
                      failed/undelivered of a known message or thread ─► StatusJob, deduped on
                      (provider id, failure) ─► the thread's actor ─► one internal note
                      (threadline_delivery_failures_total{outcome="noted"}); an id the bridge
                      has no record of ─► nothing (outcome="unknown")

Sent, delivered and read receipts are counted only: a part per receipt would flood the
conversation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from channels import Channel, ThreadKey, channel_spec

from ..core import STATUSES
from ._jobs import OutboundAttachment, SentRecord, StatusJob

__all__ = [
    "FAILED_STATUSES",
    "describe_attachment",
    "describe_text",
    "failure_note",
    "status_label",
    "tracks_delivery",
]

FAILED_STATUSES: Final = frozenset({"failed", "undelivered"})
"""Statuses meaning a message the provider accepted will not reach the customer."""
DESCRIPTION_CHARS: Final = 80


def status_label(status: str) -> str:
    """A provider's status as a metric label (anything unexpected is ``other``)."""
    status = status.lower()
    return status if status in STATUSES else "other"


def tracks_delivery(channel: Channel) -> bool:
    """Whether the channel reports delivery after accepting a send (Telegram does not)."""
    return channel_spec(channel).receipts


def describe_text(text: str) -> str:
    """The start of a text on one line, quoted."""
    flat = " ".join(text.split())
    if len(flat) > DESCRIPTION_CHARS:
        flat = flat[: DESCRIPTION_CHARS - 1].rstrip() + "…"
    return f"“{flat}”"


def describe_attachment(attachment: OutboundAttachment) -> str:
    """The attachment by its name (or the last segment of its URL)."""
    name = attachment.filename or attachment.url.rstrip("/").rpartition("/")[2].split("?")[0]
    return f"the attachment {describe_text(name or attachment.mime_type)}"


def _provider(thread: str) -> str:
    try:
        key = ThreadKey.parse(thread)
    except ValueError:
        return "The provider"
    if key.channel is Channel.TWILIO:
        return "Twilio (WhatsApp)" if key.customer.startswith("whatsapp:") else "Twilio (SMS)"
    return "WhatsApp" if key.channel is Channel.WHATSAPP else key.channel.value


def failure_note(record: SentRecord, job: StatusJob) -> str:
    """The internal note saying what did not arrive and why."""
    if job.error_code is not None:
        why = f"error {job.error_code}" + (f": {job.error_title}" if job.error_title else "")
    else:
        why = job.error_title or "no reason given"
    sent = datetime.fromtimestamp(record.sent_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Threadline: a message did not reach the customer. {_provider(record.thread)} accepted"
        f" it, then reported it {job.status.lower()} ({why}). What did not arrive: {record.what}"
        f" (sent {sent})."
    )
