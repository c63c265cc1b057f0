"""A thread actor on its own, for unit tests: the in-memory journal (``fake_journal``), the
Intercom sandbox through an in-process ASGI transport, a fake Telegram Bot API (an
``httpx.MockTransport`` counting sends), Trio's clock for every wait."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import trio
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from actors.bridge import (
    ContactResolver,
    Gateway,
    InboundJob,
    JournalMediaStore,
    ReplyJob,
    Services,
    ThreadActor,
    ThreadOptions,
    encode_job,
)
from actors.core import BridgeMetrics, Settings
from actors.delivery import Plumbing, SingleNode
from channels import InboundMessage, ThreadKey
from intercom import IntercomClient
from intercom.sandbox import IntercomSandbox
from runtime import Entry, NewEntry, Timer
from tests.intercom.conftest import asgi_transport

from .fake_journal import FakeJournal

TOKEN = "sandbox-token"
EPOCH = 1_800_000_000.0
ADMIN = "991267601"  # the sandbox's first teammate
CUSTOMER = "4242"
KEY = f"telegram:bot1:{CUSTOMER}"


def wall() -> float:
    """Wall-clock time on Trio's (mock) clock, for the sandbox and the Intercom client."""
    return EPOCH + trio.current_time()


@dataclass
class _Context:
    """The actor's place in the runtime: only its key is used."""

    key: str

    def send_after(self, delay: float, message: Entry) -> Timer:
        raise NotImplementedError

    def send_every(self, interval: float, message: Entry) -> Timer:
        raise NotImplementedError


@dataclass
class Harness:
    journal: FakeJournal
    sandbox: IntercomSandbox
    services: Services
    plumbing: Plumbing
    telegram_sends: list[dict[str, Any]] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    _appended: int = 0

    def actor(self, key: str = KEY) -> ThreadActor:
        """A new incarnation of the thread's actor (what a restart or a passivation makes)."""
        return ThreadActor(_Context(key), self.services, self.plumbing)

    async def entry(self, job: InboundJob | ReplyJob, key: str = KEY) -> Entry:
        self._appended += 1
        (appended,) = await self.journal.append(
            [NewEntry(key, f"unit-{self._appended}", encode_job(job))]
        )
        entry = await self.journal.get(appended.id)
        assert entry is not None
        return entry

    def conversations(self) -> list[dict[str, Any]]:
        return self.sandbox.conversations()

    def finished_entry(self, entry_id: int) -> None:  # the dispatcher's side of Completions
        self.finished.append(entry_id)


def inbound(text: str, sent_at: float, *, seq: int, customer: str = CUSTOMER) -> InboundJob:
    message = InboundMessage(
        key=ThreadKey.parse(f"telegram:bot1:{customer}"),
        provider_message_id=f"{customer}:{seq}",
        sent_at=datetime.fromtimestamp(sent_at, UTC),
        text=text,
    )
    return InboundJob(message=message, received_at=sent_at)


def reply(conversation_id: str, part_id: str, text: str) -> ReplyJob:
    return ReplyJob(
        conversation_id=conversation_id,
        part_id=part_id,
        admin_id=ADMIN,
        admin_name="Ada",
        text=text,
        assignee_id=ADMIN,
        received_at=EPOCH,
    )


class _Finished:
    def __init__(self, harness: Harness) -> None:
        self._h = harness

    def finished(self, entry_id: int) -> None:
        self._h.finished_entry(entry_id)


@asynccontextmanager
async def harness(**settings: Any) -> AsyncIterator[Harness]:  # noqa: ANN401 - Settings fields
    journal = FakeJournal()
    sandbox = IntercomSandbox(access_tokens=[TOKEN], clock=wall, rng=random.Random(7))
    sends: list[dict[str, Any]] = []

    def telegram(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/sendMessage"), request.url.path
        body = json.loads(request.content)
        sends.append(body)
        chat = int(body["chat_id"])
        return httpx.Response(
            200, json={"ok": True, "result": {"message_id": len(sends), "chat": {"id": chat}}}
        )

    config = Settings(
        _env_file=None,
        intercom_access_token=SecretStr(TOKEN),
        telegram_bot_token=SecretStr("123:secret"),
        telegram_base_url="http://telegram.test",
        **settings,
    )
    async with (
        httpx.AsyncClient(
            transport=asgi_transport(sandbox), base_url="http://intercom.test"
        ) as http,
        httpx.AsyncClient(transport=httpx.MockTransport(telegram)) as provider_http,
    ):
        intercom = IntercomClient(http, access_token=TOKEN, wall_clock=wall)
        metrics = BridgeMetrics(CollectorRegistry())
        services = Services(
            options=ThreadOptions.of(config),
            journal=journal,
            intercom=intercom,
            gateway=Gateway(config.channel_views(), provider_http),
            resolver=ContactResolver(
                intercom,
                journal,
                metrics,
                wall_clock=wall,
                match=config.contact_match,
                channel_attribute=config.contact_channel_attribute,
            ),
            media=JournalMediaStore(journal),
            metrics=metrics,
            profiles=lambda key: config.account_profile(key.channel, key.account),
        )
        plumbing = Plumbing(journal, SingleNode())
        made = Harness(journal, sandbox, services, plumbing, sends)
        plumbing.report_to(_Finished(made))
        yield made
