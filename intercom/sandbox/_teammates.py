"""Scripted teammates and webhook delivery for the sandbox.

A teammate action (reply, note, assign, close, open, snooze; the last four optionally with a
message to the customer, as in Intercom) changes the conversation exactly as the
Intercom inbox would (no ``app_package_code``: a human wrote it) and then delivers the
``notification_event`` Intercom would send, signed with ``X-Hub-Signature``, to the configured
URL, awaiting the answer. Changes made through the API (the bridge's own admin replies, and
deletions) queue their webhooks in the outbox, which :meth:`Teammates.run_background` delivers
in order; it also runs the scripted auto-replies (``SandboxConfig.auto_reply_seconds``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from intercom import sign

from ._core import SandboxCore, WebhookDelivery
from ._render import part_view
from ._state import SandboxApiError, StoredAttachment

__all__ = ["TeammateAction", "Teammates"]


@dataclass(frozen=True, slots=True)
class TeammateAction:
    """What a teammate action did: the new part (inspection view) and the webhook delivery
    (None when no webhook URL is configured or the topic is not subscribed)."""

    conversation_id: str
    part: dict[str, Any]
    delivery: WebhookDelivery | None


class Teammates:
    """The scripted teammates of a sandbox (see the module docstring)."""

    def __init__(self, core: SandboxCore) -> None:
        self._core = core
        self._http: httpx.AsyncClient | None = None
        self.url_base = ""  # where the sandbox is served; learnt from requests if not set

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._http is not None:
            yield self._http
        else:
            async with httpx.AsyncClient(timeout=10.0) as http:
                yield http

    async def deliver(
        self, http: httpx.AsyncClient, topic: str, conversation_id: str, item: dict[str, Any]
    ) -> WebhookDelivery:
        """POST one signed ``notification_event`` to the configured URL."""
        config = self._core.config
        notification = self._core.notification(topic, item)
        body = json.dumps(notification, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, config.client_secret),
            "User-Agent": "Intercom-Webhooks-Sandbox",
        }
        assert config.webhook_url is not None
        try:
            response = await http.post(config.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            delivery = WebhookDelivery(
                notification["id"], topic, conversation_id, None, f"{type(exc).__name__}: {exc}"
            )
        else:
            delivery = WebhookDelivery(
                notification["id"], topic, conversation_id, response.status_code
            )
        self._core.record(delivery)
        return delivery

    async def run_background(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver queued API-caused webhooks and scripted auto-replies until cancelled."""
        async with httpx.AsyncClient(timeout=10.0) as http:
            self._http = http
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._outbox_loop, http)
                    nursery.start_soon(self._auto_reply_loop)
                    task_status.started()
            finally:
                self._http = None

    async def _outbox_loop(self, http: httpx.AsyncClient) -> None:
        core = self._core
        while True:
            while core.outbox:
                topic, conversation_id, item = core.outbox.popleft()
                if core.config.webhook_url is not None:
                    await self.deliver(http, topic, conversation_id, item)
            await core.outbox_wakeup.wait()
            core.outbox_wakeup = trio.Event()

    async def _auto_reply_loop(self) -> None:
        # One worker, first due first: replies keep the order of the customer messages.
        core = self._core
        while True:
            while core.auto_replies:
                due, conversation_id, text = core.auto_replies[0]
                await trio.sleep(max(0.0, due - core.now()))
                core.auto_replies.popleft()
                conversation = core.state.conversations.get(conversation_id)
                if conversation is None or conversation.deleted:
                    continue
                body = core.config.auto_reply_text.replace("{body}", text)
                admin_id = core.auto_reply_admin(conversation)
                with contextlib.suppress(SandboxApiError):  # e.g. deleted meanwhile
                    await self.reply(conversation_id, body, admin_id=admin_id)
            await core.auto_reply_wakeup.wait()
            core.auto_reply_wakeup = trio.Event()

    async def _act(
        self,
        conversation_id: str,
        part_type: str,
        body: str | None,
        *,
        admin_id: str | None,
        attachments: Sequence[tuple[str, str, bytes]] = (),
        assignee_id: str | None = None,
        snoozed_until: int | None = None,
    ) -> TeammateAction:
        core = self._core
        conversation = core.state.live_conversation(conversation_id)
        if admin_id is None:
            admin_id = conversation.admin_assignee_id or next(iter(core.admins))
        files: list[StoredAttachment] = [
            core.state.store_file(name, ctype, data, self.url_base)
            for name, ctype, data in attachments
        ]
        conversation, part, topic = core.admin_action(
            conversation_id,
            admin_id,
            part_type,
            body,
            files=files,
            via_api=False,
            assignee_id=assignee_id,
            snoozed_until=snoozed_until,
        )
        delivery = None
        if core.config.webhook_url is not None and topic in core.config.webhook_topics:
            item = core.conversation_item(conversation, [part])
            async with self._client() as http:
                delivery = await self.deliver(http, topic, conversation.id, item)
        return TeammateAction(conversation.id, part_view(part), delivery)

    async def reply(
        self,
        conversation_id: str,
        body: str,
        *,
        admin_id: str | None = None,
        attachments: Sequence[tuple[str, str, bytes]] = (),
    ) -> TeammateAction:
        """A teammate's comment (``conversation.admin.replied``); attachments are
        (name, content type, bytes), served by the sandbox under ``/_sandbox/files/``."""
        return await self._act(
            conversation_id, "comment", body, admin_id=admin_id, attachments=attachments
        )

    async def note(
        self, conversation_id: str, body: str, *, admin_id: str | None = None
    ) -> TeammateAction:
        """An internal note (``conversation.admin.noted``)."""
        return await self._act(conversation_id, "note", body, admin_id=admin_id)

    async def assign(
        self,
        conversation_id: str,
        assignee_id: str | None,
        *,
        admin_id: str | None = None,
        body: str | None = None,
    ) -> TeammateAction:
        """Assign to ``assignee_id`` (None unassigns), optionally with a message to the
        customer: ``conversation.admin.assigned`` (``conversation.admin.open.assigned`` and
        part ``assign_and_reopen`` when it reopens a closed or snoozed conversation)."""
        return await self._act(
            conversation_id, "assignment", body, admin_id=admin_id, assignee_id=assignee_id or "0"
        )

    async def close(
        self, conversation_id: str, *, admin_id: str | None = None, body: str | None = None
    ) -> TeammateAction:
        """Close the conversation, optionally with a message (``conversation.admin.closed``)."""
        return await self._act(conversation_id, "close", body, admin_id=admin_id)

    async def open(
        self, conversation_id: str, *, admin_id: str | None = None, body: str | None = None
    ) -> TeammateAction:
        """Reopen the conversation, optionally with a message (``conversation.admin.opened``)."""
        return await self._act(conversation_id, "open", body, admin_id=admin_id)

    async def snooze(
        self,
        conversation_id: str,
        until: int,
        *,
        admin_id: str | None = None,
        body: str | None = None,
    ) -> TeammateAction:
        """Snooze the conversation until the UNIX time ``until``, optionally with a message
        (part ``snoozed``, ``conversation.admin.snoozed``)."""
        return await self._act(
            conversation_id, "snoozed", body, admin_id=admin_id, snoozed_until=until
        )
