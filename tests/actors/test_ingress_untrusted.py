"""Untrusted strings and shapes on every route (issue 15): a correctly signed (or authenticated)
body whose JSON nests too deep, or whose strings hold a lone surrogate, a NUL or too many
characters, is answered 400 with a one-line reason on both stores, and nothing is journaled or
delivered. A signed Intercom notification older than the journal retention is acknowledged and
ignored, so a replay cannot send a teammate's reply twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import trio

from actors.tools import SANDBOX_SECRETS, SandboxApp, Stack
from runtime import hypercorn_config, serve_asgi
from tests.actors.conftest import eventually
from tests.actors.processes import ServeProcess, serve_env

PHONE = "15550001111"
PNID = SANDBOX_SECRETS.whatsapp_phone_number_id
DEEP = b"[" * 100_000 + b"]" * 100_000  # far past any parser's recursion limit
LONG = "a" * 70_000  # over the 65,536-character cap on any one string
LONG_ID = "x" * 600  # over the 512-character cap on journal keys and dedupe ids

Snapshot = tuple[int, int, int]
Request = tuple[str, bytes, dict[str, str]]


def snapshot(stack: Stack) -> Snapshot:
    """What delivering a journaled entry changes: messages sent, conversations, parts."""
    conversations = stack.conversations()
    return len(stack.sent()), len(conversations), sum(len(c["parts"]) for c in conversations)


async def nothing_journaled(stack: Stack, before: Snapshot) -> None:
    """No entry pending or dead, and none delivered (an entry is marked done only after its
    effect, so one that was journaled is caught by one check or the other)."""
    assert await stack.node.journal.read_pending(after_id=0, limit=10) == []
    assert await stack.node.journal.dead_letters() == []
    assert snapshot(stack) == before


def is_400(response: httpx.Response) -> bool:
    """A 400 with a one-line reason."""
    reason = response.text.strip()
    return response.status_code == 400 and bool(reason) and "\n" not in reason


# --- raw signed requests -----------------------------------------------------------------------


def wa_headers(body: bytes) -> dict[str, str]:
    digest = hmac.new(SANDBOX_SECRETS.whatsapp_app_secret.encode(), body, hashlib.sha256)
    return {
        "content-type": "application/json",
        "x-hub-signature-256": "sha256=" + digest.hexdigest(),
    }


def ic_headers(body: bytes) -> dict[str, str]:
    digest = hmac.new(SANDBOX_SECRETS.intercom_client_secret.encode(), body, hashlib.sha1)
    return {"content-type": "application/json", "x-hub-signature": "sha1=" + digest.hexdigest()}


TG_HEADERS = {
    "content-type": "application/json",
    "x-telegram-bot-api-secret-token": SANDBOX_SECRETS.telegram_secret_token,
}
API_HEADERS = {"content-type": "application/json", "authorization": "Bearer sandbox-api-token"}


def dumps(value: object) -> bytes:
    """JSON as a provider writes it: non-ASCII escaped, so a lone surrogate travels as ``\\ud800``
    and a NUL as ``\\u0000``."""
    return json.dumps(value, ensure_ascii=True).encode()


def whatsapp_body(*, sender: str = PHONE, text: str = "hi", message_id: str = "wamid.t1") -> bytes:
    message = {
        "from": sender,
        "id": message_id,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": sender}],
        "messages": [message],
    }
    change = {"field": "messages", "value": value}
    return dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    )


def telegram_body(*, text: str = "hi", first_name: str = "Ana") -> bytes:
    user = {"id": 42, "is_bot": False, "first_name": first_name}
    chat = {"id": 42, "type": "private", "first_name": first_name}
    message = {"message_id": 1, "from": user, "chat": chat, "date": int(time.time()), "text": text}
    return dumps({"update_id": 1, "message": message})


def api_body(**fields: object) -> bytes:
    return dumps(
        {"channel": "whatsapp", "account": PNID, "customer": PHONE, "text": "hi", **fields}
    )


def notification(
    conversation_id: str,
    *,
    notification_id: str = "notif_t1",
    created_at: float | None = None,
    text: str = "Your parcel ships today",
    part_id: str = "part_t1",
) -> bytes:
    part = {
        "type": "conversation_part",
        "id": part_id,
        "part_type": "comment",
        "body": f"<p>{text}</p>",
        "created_at": int(time.time()),
        "author": {"type": "admin", "id": "991267602", "name": "Grace Teammate"},
        "attachments": [],
        "app_package_code": None,
    }
    conversation = {
        "type": "conversation",
        "id": conversation_id,
        "state": "open",
        "admin_assignee_id": 0,
        "contacts": {"type": "contact.list", "contacts": []},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": [part],
            "total_count": 1,
        },
    }
    envelope: dict[str, object] = {
        "type": "notification_event",
        "app_id": "sandbox",
        "id": notification_id,
        "topic": "conversation.admin.replied",
        "data": {"type": "notification_event_data", "item": conversation},
    }
    if created_at is not None:
        envelope["created_at"] = int(created_at)
    return dumps(envelope)


async def post(stack: Stack, request: Request) -> httpx.Response:
    return await post_to(stack.http, request)


async def bridge_one(stack: Stack) -> str:
    """A customer's first WhatsApp message, delivered: the id of its conversation."""
    assert (await stack.whatsapp(PHONE, "hello?")).status_code == 200
    await eventually(
        lambda: len(stack.conversations()) == 1 and stack.node.dispatcher.inflight == 0
    )
    assert await stack.node.journal.read_pending(after_id=0, limit=10) == []
    return str(stack.conversations()[0]["id"])


# --- every route, nothing bridged yet ----------------------------------------------------------


def whatsapp(body: bytes) -> Request:
    return ("/webhooks/whatsapp", body, wa_headers(body))


def telegram(body: bytes) -> Request:
    return ("/webhooks/telegram", body, TG_HEADERS)


def intercom(body: bytes) -> Request:
    return ("/webhooks/intercom", body, ic_headers(body))


def api(body: bytes) -> Request:
    return ("/api/messages", body, API_HEADERS)


UNBRIDGED: dict[str, Request] = {
    "whatsapp-deep": whatsapp(b'{"object": "whatsapp_business_account", "entry": ' + DEEP + b"}"),
    "whatsapp-surrogate-text": whatsapp(whatsapp_body(text="hi \ud800")),
    "whatsapp-nul-from": whatsapp(whatsapp_body(sender=PHONE + "\x00")),
    "whatsapp-nul-text": whatsapp(whatsapp_body(text="hi\x00")),
    "whatsapp-nul-in-a-key": whatsapp(whatsapp_body().replace(b'"text"', b'"te\\u0000xt"', 1)),
    "whatsapp-long-text": whatsapp(whatsapp_body(text=LONG)),
    "whatsapp-long-message-id": whatsapp(whatsapp_body(message_id=LONG_ID)),
    "telegram-deep": telegram(b'{"update_id": 1, "message": ' + DEEP + b"}"),
    "telegram-surrogate-text": telegram(telegram_body(text="\udc00")),
    "telegram-nul-name": telegram(telegram_body(first_name="A\x00")),
    "telegram-long-text": telegram(telegram_body(text=LONG)),
    "intercom-deep": intercom(b'{"type": "notification_event", "data": ' + DEEP + b"}"),
    # The conversation index is read with this id: a 500 from the SQLite reader before the fix.
    "intercom-surrogate-conversation-id": intercom(notification("\ud800", created_at=time.time())),
    "intercom-nul-conversation-id": intercom(notification("1\x00", created_at=time.time())),
    "api-deep": api(b'{"channel": "whatsapp", "attachments": ' + DEEP + b"}"),
    "api-surrogate-text": api(api_body(text="\ud800")),
    # Read as a thread key before the fix: 503 + Retry-After on PostgreSQL.
    "api-nul-customer": api(api_body(customer=PHONE + "\x00")),
}


TWILIO: dict[str, tuple[str, str, str | None]] = {  # From, Body, MessageSid
    "twilio-nul-from": (f"+{PHONE}\x00", "hi", None),  # %00 in the form
    "twilio-nul-body": (f"+{PHONE}", "hi\x00", None),
    "twilio-long-body": (f"+{PHONE}", LONG, None),
    "twilio-long-sid": (f"+{PHONE}", "hi", "SM" + LONG_ID),
}


async def test_untrusted_strings_and_depth_are_400_on_every_route(stack: Stack) -> None:
    """One stack for all the cases (each would journal or fail differently before the fix);
    every case is tried, and the ones that were not refused are named together."""
    before = snapshot(stack)
    wrong: dict[str, str] = {}
    for case, request in UNBRIDGED.items():
        response = await post(stack, request)
        if not is_400(response):
            wrong[case] = f"{response.status_code} {response.text[:80]}"
    for case, (sender, text, sid) in TWILIO.items():
        response = await stack.sms(sender, text, message_sid=sid)
        if not is_400(response):
            wrong[case] = f"{response.status_code} {response.text[:80]}"
    assert wrong == {}
    await nothing_journaled(stack, before)


# --- with a bridged conversation: the bad value would reach the journal ------------------------


async def test_bad_strings_for_a_bridged_thread_are_400_and_journal_nothing(stack: Stack) -> None:
    conversation_id = await bridge_one(stack)
    before = snapshot(stack)
    now = time.time()
    requests = {
        # Before the fix, on PostgreSQL: 503 + Retry-After (retried for days); on SQLite the
        # NUL was journaled and the reply sent.
        "intercom-nul-notification-id": intercom(
            notification(conversation_id, notification_id="notif_\x00", created_at=now)
        ),
        "intercom-long-notification-id": intercom(
            notification(conversation_id, notification_id=LONG_ID, created_at=now)
        ),
        "intercom-nul-text": intercom(notification(conversation_id, text="a\x00", created_at=now)),
        # Without its creation time a notification's age, and so a replay, cannot be told.
        "intercom-no-created-at": intercom(notification(conversation_id, created_at=None)),
        "api-nul-idempotency-key": api(api_body(idempotency_key="k\x00")),
        "api-surrogate-idempotency-key": api(api_body(idempotency_key="k\ud800")),
        "api-nul-text": api(api_body(text="hi\x00")),
        "whatsapp-nul-message-id": whatsapp(whatsapp_body(message_id="wamid.\x00")),
    }
    wrong: dict[str, str] = {}
    for case, request in requests.items():
        response = await post(stack, request)
        if not is_400(response):
            wrong[case] = f"{response.status_code} {response.text[:80]}"
    assert wrong == {}
    await nothing_journaled(stack, before)


def duplicates(stack: Stack) -> float:
    value = stack.node.registry.get_sample_value(
        "threadline_journal_duplicates_total", {"channel": "intercom"}
    )
    return value or 0.0


async def test_a_notification_older_than_the_retention_is_acknowledged_and_ignored(
    stack: Stack,
) -> None:
    """A replayed teammate reply whose dedupe id may be pruned is never sent again; the same
    notification within the retention is (so it is the age that stops the stale one)."""
    conversation_id = await bridge_one(stack)
    retention = stack.settings.journal_retention_seconds
    before = snapshot(stack)
    counted = duplicates(stack)
    stale = notification(
        conversation_id, notification_id="notif_old", created_at=time.time() - retention - 60
    )
    response = await post(stack, intercom(stale))
    # 200: Intercom stops retrying on a 2xx, and there is nothing it could fix by resending.
    assert response.status_code == 200, response.text
    assert "older than the journal retention" in response.text
    await nothing_journaled(stack, before)
    assert duplicates(stack) == counted + 1

    fresh = notification(
        conversation_id, notification_id="notif_new", part_id="part_t2", created_at=time.time()
    )
    assert (await post(stack, intercom(fresh))).status_code == 200
    await eventually(lambda: len(stack.sent()) == 1)
    assert stack.sent()[0].text == "Grace Teammate: Your parcel ships today"


# --- the process: one signed webhook must not wedge `threadline serve` -------------------------


async def test_serve_answers_a_lone_surrogate_notification_id_and_still_stops(
    database_url: str, tmp_path: Path
) -> None:
    """Issue 15, finding 1: a signed teammate reply for a bridged conversation whose
    notification id holds a lone surrogate hung a SQLite bridge for good (the journal's writer
    died with its waiters shielded: ingress and metrics stopped answering, SIGTERM was ignored).
    Run as the real process, so a regression fails here instead of hanging the test run."""
    sandbox = SandboxApp()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        bridge = ServeProcess(serve_env(address.url, database_url, tmp_path), tmp_path / "log")
        await bridge.start()
        try:
            async with httpx.AsyncClient(base_url=bridge.url, timeout=10.0) as http:
                first = whatsapp(whatsapp_body())
                assert (await post_to(http, first)).status_code == 200
                await eventually(lambda: len(sandbox.intercom.conversations()) == 1)
                conversation_id = str(sandbox.intercom.conversations()[0]["id"])
                bad = notification(
                    conversation_id, notification_id="notif_\ud800", created_at=time.time()
                )
                assert is_400(await post_to(http, intercom(bad)))
                assert (await http.get("/readyz")).status_code == 200
                assert (await http.get(bridge.metrics_url)).status_code == 200
                good = notification(conversation_id, created_at=time.time())
                assert (await post_to(http, intercom(good))).status_code == 200
                await eventually(lambda: len(sandbox.providers.sent()) == 1)
            assert bridge.process is not None
            bridge.process.terminate()
            with trio.fail_after(30):
                assert await bridge.process.wait() == 0
        finally:
            if bridge.process is not None and bridge.process.returncode is None:
                await bridge.kill()
        nursery.cancel_scope.cancel()


async def post_to(http: httpx.AsyncClient, request: Request) -> httpx.Response:
    path, body, headers = request
    return await http.post(path, content=body, headers=headers)
