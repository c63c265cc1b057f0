"""``POST /webhooks/intercom``: a teammate's reply becomes a ``reply`` job of the thread its
conversation belongs to (docs/architecture.md §2).

The notification is verified (``X-Hub-Signature``), its teammate-message parts (replies, and
close/assign/snooze/open with a body; notes stay inside Intercom) are journaled under the
conversation's thread; a conversation the bridge did not open is acknowledged and ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import trio
from pydantic import SecretStr

from channels import PayloadInvalid, require_json
from intercom import (
    ConversationEvent,
    NotificationInvalid,
    WebhookSignatureInvalid,
    parse_notification,
    teammate_messages,
)
from intercom import verify_signature as verify_intercom_signature
from runtime import JournalUnavailable, NewEntry, Request, Response, text_response

from ..bridge import conversation_index_key, encode_job, opening_key, reply_job
from ..core import BridgeMetrics
from ._journal import IngressJournal, unavailable

__all__ = ["IntercomWebhook"]

logger = logging.getLogger("threadline.ingress")

CLOCK_SKEW_SECONDS = 300.0
"""How far Intercom's clock may run ahead of ours when judging a notification's age."""
OPENING_WAIT_SECONDS = 3.0
"""How long a teammate's reply to a conversation not bridged (yet) waits for its index when a
thread is opening a conversation for its contact at that moment (Intercom answered the create,
the bridge has not recorded the id yet: milliseconds, unless the journal is slow)."""


class IntercomWebhook:
    """The route's handler (call it with the request).

    Args:
        secret: the Intercom app's client secret; None: the route answers 404.
        journal: where the replies go.
        metrics: a notification too old to dedupe counts as a redelivery.
        settle_seconds: an ``opening:<contact>`` intent younger than this is a conversation
            being opened right now (``THREADLINE_INTERCOM_SEARCH_SETTLE_SECONDS``).
        retention_seconds: how long the journal keeps dedupe ids
            (``THREADLINE_JOURNAL_RETENTION_SECONDS``).
    """

    def __init__(
        self,
        secret: SecretStr | None,
        *,
        journal: IngressJournal,
        metrics: BridgeMetrics,
        settle_seconds: float,
        retention_seconds: float,
    ) -> None:
        self._secret = secret
        self._journal = journal
        self._metrics = metrics
        self._settle_seconds = settle_seconds
        self._retention_seconds = retention_seconds

    async def __call__(self, request: Request) -> Response:
        secret = self._secret
        if secret is None:
            return text_response(404, "intercom webhooks are not configured")
        try:
            verify_intercom_signature(
                request.body, request.headers.get("x-hub-signature"), secret.get_secret_value()
            )
            require_json(request.content_type)
            notification = parse_notification(request.body)
        except WebhookSignatureInvalid as exc:
            return text_response(401, str(exc))
        except (NotificationInvalid, PayloadInvalid) as exc:
            return text_response(400, str(getattr(exc, "reason", exc)))
        if not isinstance(notification, ConversationEvent):
            return text_response(200, "ignored")
        messages = teammate_messages(notification)  # replies; close/assign/… with a message
        if not messages:
            return text_response(200, "ignored")
        if notification.created_at is None:
            return text_response(400, "notification without created_at")
        if self._older_than_retention(notification.created_at):
            # A replay of a signed notification whose dedupe id may be pruned: acknowledged
            # (so Intercom stops), counted as a redelivery, and not journaled.
            logger.warning(
                "intercom notification %s created at %d is older than the journal retention:"
                " ignored",
                notification.id[:80],
                notification.created_at,
                extra={"channel": "intercom", "notification_id": notification.id[:80]},
            )
            self._metrics.journal_duplicates.labels("intercom").inc()
            return text_response(200, "ignored: notification older than the journal retention")
        conversation = notification.conversation
        try:
            index = conversation_index_key(conversation.id)
            key = await self._journal.journal.get_state(index)
            if key is None:
                # The opener records the index and drops its intent in one commit, which may
                # land between the read above and the intent's: read the index again after it.
                opening = await self._opening(conversation.contact_ids)
                key = await self._journal.journal.get_state(index)
                if key is None and opening:
                    key = await self._index_once_recorded(conversation.id)
                    if key is None:
                        logger.warning(
                            "intercom reply to conversation %s: its contact's conversation is"
                            " being opened and was not recorded within %.0f s; answering 503",
                            conversation.id[:80], OPENING_WAIT_SECONDS,
                            extra={"channel": "intercom"},
                        )  # fmt: skip
                        return unavailable("conversation being opened by the bridge; try again")
        except JournalUnavailable:
            return unavailable()
        if key is None:
            return text_response(200, "ignored: conversation not bridged")
        received = time.time()
        entries = []
        for part in messages:  # notes stay inside Intercom
            job = reply_job(
                conversation.id,
                part,
                assignee_id=conversation.admin_assignee_id,
                received_at=received,
            )
            dedupe = f"intercom:{notification.id}:{part.id}"
            entries.append(NewEntry(key.decode(), dedupe, encode_job(job)))
        failed = await self._journal.append("intercom", entries)
        return failed or text_response(200, "ok")

    async def _opening(self, contact_ids: Sequence[str]) -> bool:
        """Whether a thread is opening a conversation for one of these contacts right now (an
        intent younger than the search settle time: an older one was cut off by a crash)."""
        for contact_id in contact_ids[:5]:
            raw = await self._journal.journal.get_state(opening_key(contact_id))
            if raw is None:
                continue
            try:
                since = float(raw.decode())
            except (UnicodeDecodeError, ValueError):
                continue
            if time.time() - since < self._settle_seconds:
                return True
        return False

    async def _index_once_recorded(self, conversation_id: str) -> bytes | None:
        """The conversation's thread once its opener records it, within OPENING_WAIT_SECONDS."""
        deadline = trio.current_time() + OPENING_WAIT_SECONDS
        while trio.current_time() < deadline:
            await trio.sleep(0.05)
            key = await self._journal.journal.get_state(conversation_index_key(conversation_id))
            if key is not None:
                return key
        return None

    def _older_than_retention(self, created_at: int) -> bool:
        """Whether a notification created at ``created_at`` (Intercom's clock) may be past its
        dedupe id's life in the journal. A done entry is pruned ``retention`` seconds after it
        finished, and it finished after it was created; the margin covers Intercom's clock
        running ahead of ours."""
        retention = self._retention_seconds
        max_age = retention - min(CLOCK_SKEW_SECONDS, retention / 2)
        return time.time() - created_at > max_age
