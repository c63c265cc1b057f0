"""Customers for fault tests: each thread sends its messages in order and redelivers a message
until the bridge answers 200, as providers do; and the check that what was acknowledged reached
Intercom exactly once, in order."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from actors.tools import SANDBOX_SECRETS
from channels.sandbox import SignedWebhook, WhatsAppInbound, whatsapp_webhook


def text(thread: int, seq: int) -> str:
    return f"thread {thread} message {seq}"


def webhook(run: str, thread: int, seq: int) -> SignedWebhook:
    message = WhatsAppInbound(
        from_phone=f"1888{thread:07d}",
        text=text(thread, seq),
        message_id=f"wamid.{run}{thread:04d}{seq:05d}",
    )
    return whatsapp_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret, SANDBOX_SECRETS.whatsapp_phone_number_id, [message]
    )


@dataclass
class Customers:
    """``threads`` customers x ``messages`` each, posting to one of ``urls`` (round robin, and
    on to the next one when a node does not answer)."""

    urls: Sequence[str]
    threads: int
    messages: int
    interval: float = 0.02
    run: str = "f"
    stagger: float = 0.0
    """Customer *t* sends its first message ``t * stagger`` seconds after the start, so that new
    customers keep arriving (contacts and conversations are created throughout the run)."""
    acked: dict[int, list[int]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    retry_after: set[str] = field(default_factory=set)

    @property
    def total_acked(self) -> int:
        return sum(map(len, self.acked.values()))

    async def play(self) -> None:
        self.acked = {t: [] for t in range(self.threads)}
        async with httpx.AsyncClient(timeout=10.0) as client, trio.open_nursery() as nursery:
            for thread in range(self.threads):
                nursery.start_soon(self._customer, client, thread)

    async def _customer(self, client: httpx.AsyncClient, thread: int) -> None:
        await trio.sleep(thread * self.stagger)
        targets = itertools.cycle(range(len(self.urls)))
        for _ in range(thread % len(self.urls)):
            next(targets)
        for seq in range(self.messages):
            hook = webhook(self.run, thread, seq)
            while True:  # a provider redelivers until it gets a 200
                url = self.urls[next(targets)]
                try:
                    response = await client.post(
                        f"{url}/webhooks/whatsapp", content=hook.body, headers=hook.headers
                    )
                except httpx.TransportError:
                    await trio.sleep(0.1)
                    continue
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    self.acked[thread].append(seq)
                    break
                if "retry-after" in response.headers:
                    self.retry_after.add(response.headers["retry-after"])
                await trio.sleep(0.2)
            await trio.sleep(self.interval)


def delivered(conversations: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Bodies per contact, in Intercom's order."""
    by_contact: dict[str, list[str]] = {}
    for conversation in conversations:
        bodies = [str(p["body"]) for p in conversation["parts"]]
        by_contact.setdefault(str(conversation["contact_id"]), []).extend(bodies)
    return by_contact


async def all_delivered(
    conversations: Callable[[], list[dict[str, Any]]], expected: int, *, seconds: float = 120
) -> None:
    with trio.fail_after(seconds):
        while sum(map(len, delivered(conversations()).values())) < expected:  # noqa: ASYNC110 - sandbox state
            await trio.sleep(0.05)
    await trio.sleep(1.0)  # anything doubled would show up now


def assert_exactly_once_in_order(customers: Customers, conversations: list[dict[str, Any]]) -> None:
    assert all(seqs == list(range(customers.messages)) for seqs in customers.acked.values()), (
        "every message must eventually be acknowledged"
    )
    got = sorted(delivered(conversations).values())
    want = sorted([text(t, s) for s in range(customers.messages)] for t in range(customers.threads))
    if got != want:  # per thread: every acknowledged message once, in order
        problems = [
            f"{bodies[0]!r}: {len(bodies)} parts, {len(bodies) - len(set(bodies))} doubled, "
            f"in order: {[_seq(b) for b in bodies] == sorted(_seq(b) for b in bodies)}"
            for bodies in got
            if bodies not in want
        ]
        bad = {bodies[0] for bodies in got if bodies not in want}
        detail = [
            (c["id"], [_seq(str(p["body"])) for p in c["parts"]])
            for c in conversations
            if any(p["body"] in bad for p in c["parts"])
        ]
        raise AssertionError(
            f"{len(got)} threads delivered of {len(want)}: {problems}; first one: {detail}"
        )


def assert_one_contact_and_conversation_each(
    customers: Customers, contacts: list[dict[str, Any]], conversations: list[dict[str, Any]]
) -> None:
    """No duplicate contact and no split conversation: each customer's phone has exactly one
    (unmerged) Intercom contact, with exactly one conversation holding all its parts."""
    by_phone: dict[str, list[str]] = {}
    for contact in contacts:
        if contact["merged_into"] is None:
            by_phone.setdefault(str(contact["phone"]), []).append(str(contact["id"]))
    per_contact: dict[str, int] = {}
    for conversation in conversations:
        contact_id = str(conversation["contact_id"])
        per_contact[contact_id] = per_contact.get(contact_id, 0) + 1
    duplicates = {p: ids for p, ids in by_phone.items() if len(ids) > 1}
    split = {c: n for c, n in per_contact.items() if n > 1}
    phones = {f"+1888{t:07d}" for t in range(customers.threads)}
    missing = phones - set(by_phone)
    split_detail = [
        [str(p["body"]) for p in c["parts"]] for c in conversations if str(c["contact_id"]) in split
    ]
    assert (duplicates, split, missing) == ({}, {}, set()), (
        f"{len(duplicates)} customers with several contacts, {len(split)} contacts with several "
        f"conversations, {len(missing)} customers without a contact; split: {split_detail[:6]}"
    )


def _seq(body: str) -> int:
    return int(body.rsplit(" ", 1)[1])
