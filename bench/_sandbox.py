"""The seeded sandbox of the delivery and backlog benchmarks: a sandbox Intercom in its own
process (core 1) whose threads' contacts and conversations exist already, the same threads'
states in the bridge's journal (so each message is one Intercom reply), and a checker that
follows the parts the sandbox received (per-thread order, duplicates).

``python -m bench._sandbox PORT THREADS SEEDS [--rate-limit N] [--name NAME]`` (from the
repository's root, as :class:`Sandbox` runs it) serves the sandbox.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from actors.bridge import ThreadState, conversation_index_key, thread_state_key
from actors.tools import SANDBOX_SECRETS, SandboxApp
from bench._processes import ROOT, Process, free_port
from channels import InboundMessage, parse_whatsapp
from channels.sandbox import WhatsAppInbound, whatsapp_webhook
from runtime import Journal, hypercorn_config, serve_asgi

__all__ = ["PartsChecker", "Sandbox", "seed_thread_states", "serve_sandbox", "whatsapp_message"]


async def serve_sandbox(
    port: int,
    threads: int,
    seeds: Path,
    rate_limit: int | None,
    *,
    phone: Callable[[int], str] = lambda t: f"1555{t:07d}",
    name: str = "Bench",
) -> None:
    """A sandbox Intercom (and providers) on ``port`` whose first ``threads`` contacts (phone
    ``+phone(t)``) and conversations exist already; their ids go to ``seeds`` as JSON."""
    app = SandboxApp()
    state = app.intercom.core.state
    now = time.time()
    pairs = []
    for t in range(threads):
        contact = state.create_contact(
            {"role": "lead", "phone": f"+{phone(t)}", "name": f"{name} {t}"}, now, strict=False
        )
        conversation = state.create_conversation(contact, "seed", [], now)
        pairs.append((contact.id, conversation.id))
    await trio.Path(seeds).write_text(json.dumps({"pairs": pairs, "parts": len(state.part_log)}))
    if rate_limit is not None:
        app.intercom.configure(rate_limit=rate_limit, rate_window_seconds=10.0)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, app, hypercorn_config(f"127.0.0.1:{port}"))
        app.intercom.public_url = address.url + "/intercom"
        print("ready", flush=True)


class Sandbox:
    """:func:`serve_sandbox` in its own process on core 1, ``threads`` contacts (named
    ``name t``) and conversations seeded; :attr:`pairs` their ids."""

    def __init__(
        self, workdir: Path, threads: int, rate_limit: int | None = None, name: str = "Bench"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        seeds = workdir / "seeds.json"
        args = ["-m", "bench._sandbox", str(self.port), str(threads), str(seeds), "--name", name]
        if rate_limit is not None:
            args += ["--rate-limit", str(rate_limit)]
        self.process = Process(args, core=1, cwd=ROOT)
        self.process.wait_line("ready")
        data = json.loads(seeds.read_text())
        self.pairs: list[tuple[str, str]] = [tuple(p) for p in data["pairs"]]
        self.seeded_parts: int = data["parts"]

    def configure(self, **changes: Any) -> None:  # noqa: ANN401 - the sandbox validates them
        answer = httpx.post(f"{self.url}/intercom/_sandbox/config", json=changes, timeout=30)
        answer.raise_for_status()

    def stop(self) -> None:
        self.process.stop()


def whatsapp_message(phone: str, text: str, message_id: str) -> InboundMessage:
    """A customer's WhatsApp message to the sandbox's number, signed and parsed as the bridge's
    ingress parses it."""
    message = WhatsAppInbound(from_phone=phone, text=text, message_id=message_id)
    hook = whatsapp_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret, SANDBOX_SECRETS.whatsapp_phone_number_id, [message]
    )
    (event,) = parse_whatsapp(hook.body)
    assert isinstance(event, InboundMessage)
    return event


async def seed_thread_states(
    journal: Journal, keys: list[str], pairs: list[tuple[str, str]]
) -> None:
    """The state of thread ``keys[i]`` in ``journal``: the seeded contact and conversation
    ``pairs[i]``, so that its messages need no contact search."""
    state: dict[str, bytes | None] = {}
    for key, (contact_id, conversation_id) in zip(keys, pairs, strict=True):
        state[thread_state_key(key)] = ThreadState(
            contact_id=contact_id, conversation_id=conversation_id
        ).encode()
        state[conversation_index_key(conversation_id)] = key.encode()
        if len(state) >= 20_000:
            await journal.put_state(state)
            state = {}
    if state:
        await journal.put_state(state)


class PartsChecker:
    """Follows the sandbox's parts tagged ``[TAG thread:seq]``: per-thread order, duplicates,
    the first and last ``created_at`` and when the first one was seen."""

    def __init__(self, sandbox: Sandbox, tag: str) -> None:
        self.sandbox = sandbox
        self.tag = f"[{tag} "
        self.cursor = sandbox.seeded_parts
        self.seen: set[tuple[int, int]] = set()
        self.last: dict[int, int] = {}
        self.out_of_order = 0
        self.duplicated = 0
        self.first_at: float | None = None  # this clock, when the first one was seen
        self.first: float | None = None  # the parts' created_at
        self.last_created: float | None = None
        self.later = 0  # messages after a thread's first: the order check has teeth

    async def poll(self, http: httpx.AsyncClient) -> int:
        """The parts since the last poll (``http``: the sandbox's); returns the new ones."""
        got = (
            await http.get(
                "/intercom/_sandbox/parts", params={"since": self.cursor, "limit": 20_000}
            )
        ).json()
        self.cursor = got["next"]
        new = 0
        for part in got["parts"]:
            body = str(part["body"])
            start = body.find(self.tag)
            if start < 0:
                continue
            thread_text, seq_text = body[start + len(self.tag) : body.index("]", start)].split(":")
            thread, seq = int(thread_text), int(seq_text)
            if (thread, seq) in self.seen:
                self.duplicated += 1
                continue
            self.seen.add((thread, seq))
            self.later += seq > 0
            if seq < self.last.get(thread, -1):
                self.out_of_order += 1
            self.last[thread] = max(seq, self.last.get(thread, -1))
            if self.first_at is None:
                self.first_at = time.time()
            created = float(part["created_at"])
            self.first = created if self.first is None else min(self.first, created)
            self.last_created = (
                created if self.last_created is None else max(self.last_created, created)
            )
            new += 1
        return new


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a seeded sandbox Intercom (benchmarks)")
    parser.add_argument("port", type=int)
    parser.add_argument("threads", type=int)
    parser.add_argument("seeds", type=Path)
    parser.add_argument("--rate-limit", type=int)
    parser.add_argument("--name", default="Bench")
    args = parser.parse_args()
    seeded = functools.partial(serve_sandbox, name=args.name)
    trio.run(seeded, args.port, args.threads, args.seeds, args.rate_limit)
