"""The sandbox's behaviour shared by its API routes, its teammates and its inspection views:
conversation operations, the webhook outbox, and request counters. No HTTP here."""

from __future__ import annotations

import random
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from ._config import RateLimiter, SandboxAdmin, SandboxConfig
from ._render import contact_json, conversation_json, notification_json
from ._state import (
    SandboxState,
    StoredAttachment,
    StoredContact,
    StoredConversation,
    StoredPart,
    invalid,
)

__all__ = ["DEFAULT_ADMINS", "SandboxCore", "SandboxStats", "WebhookDelivery", "check"]

DEFAULT_ADMINS = (
    SandboxAdmin(id="991267601", name="Ada Operator", email="ada@sandbox.example"),
    SandboxAdmin(id="991267602", name="Grace Teammate", email="grace@sandbox.example"),
    SandboxAdmin(id="991267603", name="Linus Teammate", email="linus@sandbox.example"),
)


@dataclass(slots=True)
class SandboxStats:
    """Counters the inspection API reports (monotonic until :meth:`SandboxCore.reset`)."""

    requests: Counter[str] = field(default_factory=Counter)  # by endpoint name
    statuses: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0  # 429s served
    server_errors: int = 0  # injected 5xx served
    timeouts: int = 0  # requests held open
    without_version: int = 0  # requests that left out Intercom-Version
    webhooks_sent: int = 0
    webhooks_failed: int = 0
    parts_dropped: int = 0  # drop_next_parts fired
    parts_swapped: int = 0  # swap_next_parts fired

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
            "timeouts": self.timeouts,
            "without_version": self.without_version,
            "webhooks_sent": self.webhooks_sent,
            "webhooks_failed": self.webhooks_failed,
            "parts_dropped": self.parts_dropped,
            "parts_swapped": self.parts_swapped,
        }


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One webhook the sandbox delivered (or tried to)."""

    notification_id: str
    topic: str
    conversation_id: str | None
    status: int | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "topic": self.topic,
            "conversation_id": self.conversation_id,
            "status": self.status,
            "error": self.error,
        }


class SandboxCore:
    """State plus the operations on it that API routes and teammates share."""

    def __init__(
        self,
        *,
        config: SandboxConfig,
        admins: Sequence[SandboxAdmin],
        clock: Callable[[], float],
        rng: random.Random,
        app_id: str,
    ) -> None:
        if not admins:
            raise ValueError("the sandbox needs at least one admin")
        self.config = config
        self.admins = {admin.id: admin for admin in admins}
        self.clock = clock
        self.rng = rng
        self.app_id = app_id
        self.state = SandboxState()
        self.stats = SandboxStats()
        self.limiter = RateLimiter()
        self.outbox: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=100_000)
        self.outbox_wakeup = trio.Event()
        # (due wall time, conversation id, customer text) for scripted teammate replies
        self.auto_replies: deque[tuple[float, str, str]] = deque(maxlen=100_000)
        self.auto_reply_wakeup = trio.Event()
        self.deliveries: deque[WebhookDelivery] = deque(maxlen=10_000)
        self.held_parts: dict[str, StoredPart] = {}  # swap_next_parts: conversation -> part

    def reset(self) -> None:
        """Forget all data and counters (configuration and admins stay)."""
        self.state = SandboxState()
        self.stats = SandboxStats()
        self.limiter = RateLimiter()
        self.outbox.clear()
        self.auto_replies.clear()
        self.deliveries.clear()
        self.held_parts.clear()

    def now(self) -> float:
        return self.clock()

    def request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def admin(self, admin_id: object) -> SandboxAdmin:
        admin = self.admins.get(str(admin_id))
        if admin is None:
            raise invalid(f"Admin not found: {admin_id}")
        return admin

    # --- conversation operations ------------------------------------------------------------

    def contact_reply(
        self, conversation_id: str, contact_id: str, body: str, files: list[StoredAttachment]
    ) -> tuple[StoredConversation, StoredPart]:
        """A contact's reply; on a closed conversation it reopens it (part type "open")."""
        conversation = self.state.live_conversation(conversation_id)
        contact = self.state.live_contact(contact_id)
        reopen = conversation.state != "open"
        part = self.state.new_part(
            conversation.id,
            self.now(),
            part_type="open" if reopen else "comment",
            body=body,
            author=(contact.role, contact.id, contact.name),
            attachments=files,
            app_package_code=self.config.app_package_code,
        )
        conversation.state = "open"
        if not self._stored_by_test_faults(conversation, part):
            return conversation, part
        self.state.append(conversation, part)
        held = self.held_parts.pop(conversation.id, None)
        if held is not None:
            self.state.append(conversation, held)
        self.emit("conversation.user.replied", conversation, [part])
        self.customer_wrote(conversation, body)
        return conversation, part

    def customer_wrote(self, conversation: StoredConversation, body: str) -> None:
        """Schedule the scripted teammate answer, when auto-replies are on."""
        delay = self.config.auto_reply_seconds
        if delay is not None:
            self.auto_replies.append((self.now() + delay, conversation.id, body))
            self.auto_reply_wakeup.set()

    def auto_reply_admin(self, conversation: StoredConversation) -> str:
        if self.config.auto_reply_admin_id is not None:
            return self.config.auto_reply_admin_id
        if conversation.admin_assignee_id is not None:
            return conversation.admin_assignee_id
        ids = list(self.admins)
        return ids[1] if len(ids) > 1 else ids[0]

    def _stored_by_test_faults(self, conversation: StoredConversation, part: StoredPart) -> bool:
        """Apply ``drop_next_parts`` / ``swap_next_parts``; False when the part is not to be
        stored now (dropped, or held back until the conversation's next contact reply)."""
        config = self.config
        if config.drop_next_parts:
            config.drop_next_parts -= 1
            self.stats.parts_dropped += 1
            return False
        if config.swap_next_parts and conversation.id not in self.held_parts:
            config.swap_next_parts -= 1
            self.stats.parts_swapped += 1
            self.held_parts[conversation.id] = part
            return False
        return True

    def admin_action(
        self,
        conversation_id: str,
        admin_id: object,
        part_type: str,
        body: str | None,
        *,
        files: list[StoredAttachment] | None = None,
        via_api: bool,
        assignee_id: str | None = None,
        assignee_type: str = "admin",
        snoozed_until: int | None = None,
    ) -> tuple[StoredConversation, StoredPart, str]:
        """An admin's comment, note, close, open, snooze or assignment, each with an optional
        message (``body``) as Intercom takes it; returns the webhook topic. Assigning a
        conversation that is not open reopens it (part ``assign_and_reopen``, topic
        ``conversation.admin.open.assigned``)."""
        conversation = self.state.live_conversation(conversation_id)
        admin = self.admin(admin_id)
        if part_type == "assignment" and conversation.state != "open":
            part_type = "assign_and_reopen"
        topic = {
            "comment": "conversation.admin.replied",
            "note": "conversation.admin.noted",
            "close": "conversation.admin.closed",
            "open": "conversation.admin.opened",
            "snoozed": "conversation.admin.snoozed",
            "assignment": "conversation.admin.assigned",
            "assign_and_reopen": "conversation.admin.open.assigned",
        }[part_type]
        assigned_to: str | None = None
        if part_type in ("assignment", "assign_and_reopen"):
            unassign = assignee_id in (None, "", "0")
            if assignee_type == "team":
                if not unassign:
                    check(str(assignee_id).isdecimal(), "assignee_id is not a team id")
                conversation.team_assignee_id = None if unassign else assignee_id
                assigned_to = None if unassign else f"team:{assignee_id}"
            else:
                if not unassign:
                    self.admin(assignee_id)
                conversation.admin_assignee_id = None if unassign else assignee_id
                assigned_to = conversation.admin_assignee_id
        if part_type == "comment":
            conversation.read = False  # a teammate's message the customer has not seen yet
        if part_type in ("close", "open", "assign_and_reopen"):
            conversation.state = "closed" if part_type == "close" else "open"
            conversation.snoozed_until = None
        elif part_type == "snoozed":
            conversation.state = "snoozed"
            conversation.snoozed_until = snoozed_until
        part = self.state.new_part(
            conversation.id,
            self.now(),
            part_type=part_type,
            body=body,
            author=("admin", admin.id, admin.name),
            attachments=files,
            app_package_code=self.config.app_package_code if via_api else None,
            assigned_to=assigned_to,
        )
        self.state.append(conversation, part)
        if via_api:
            self.emit(topic, conversation, [part])
        return conversation, part, topic

    def run_assignment_rules(self, conversation_id: str) -> StoredConversation:
        """The workspace's assignment rules, as ``config.assignment_rules_team_id`` says: that
        team is assigned (an ``assignment`` part by the workspace bot); without a rule, nothing
        changes. Reopens a closed conversation, as Intercom's endpoint does."""
        conversation = self.state.live_conversation(conversation_id)
        conversation.assignment_rules_runs += 1
        team = self.config.assignment_rules_team_id
        if team is None:
            return conversation
        conversation.team_assignee_id = team
        conversation.state, conversation.snoozed_until = "open", None
        part = self.state.new_part(
            conversation.id,
            self.now(),
            part_type="assignment",
            body=None,
            author=("bot", "0", "Operator"),
            assigned_to=f"team:{team}",
        )
        self.state.append(conversation, part)
        return conversation

    def merge_contacts(self, from_id: str, into_id: str) -> StoredContact:
        """Merge a contact into another; ``contact.merged`` carries the surviving contact
        (Intercom's payload does not name the merged-away one)."""
        target = self.state.merge_contacts(from_id, into_id)
        if self._wants("contact.merged"):
            self._enqueue("contact.merged", contact_json(target, self.app_id))
        return target

    def delete_conversation(self, conversation_id: str) -> None:
        conversation = self.state.live_conversation(conversation_id)
        conversation.deleted = True
        if self._wants("conversation.deleted"):
            self._enqueue("conversation.deleted", {"type": "conversation", "id": conversation.id})

    # --- webhooks ---------------------------------------------------------------------------

    def conversation_item(
        self, conversation: StoredConversation, parts: Sequence[StoredPart]
    ) -> dict[str, Any]:
        contact = self.state.contacts.get(conversation.contact_id)
        return conversation_json(conversation, contact, self.admins, version="2.16", parts=parts)

    def notification(self, topic: str, item: dict[str, Any]) -> dict[str, Any]:
        notification_id = f"notif_{self.request_id()}"
        return notification_json(notification_id, topic, self.app_id, item, self.now())

    def _wants(self, topic: str) -> bool:
        return self.config.webhook_url is not None and topic in self.config.webhook_topics

    def emit(self, topic: str, conversation: StoredConversation, parts: list[StoredPart]) -> None:
        """Queue the webhook an API-made change causes (delivered by the outbox worker)."""
        if self.config.api_webhooks and self._wants(topic):
            self._enqueue(topic, self.conversation_item(conversation, parts))

    def _enqueue(self, topic: str, item: dict[str, Any]) -> None:
        self.outbox.append((topic, str(item.get("id")), item))
        self.outbox_wakeup.set()

    def record(self, delivery: WebhookDelivery) -> None:
        self.deliveries.append(delivery)
        if delivery.status is not None and 200 <= delivery.status < 300:
            self.stats.webhooks_sent += 1
        else:
            self.stats.webhooks_failed += 1


def check(condition: bool, message: str) -> None:
    """400 ``parameter_invalid`` unless ``condition``."""
    if not condition:
        raise invalid(message)
