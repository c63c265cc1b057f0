"""``threadline demo``: every behaviour of the bridge, then an ordered-delivery load, offline.

Runs the sandbox Intercom, the sandbox providers and a bridge (SQLite journal in a temporary
directory) in this process, plays customers and teammates, checks each outcome at the sandbox,
and prints what happened. Exit status 0 when every check held.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CollectorRegistry

from channels.sandbox import SandboxCredentials, WebhookMedia

from ._demo_channels import (
    ANA,
    OUTLET,
    OUTLET_SECRET,
    OUTLET_TOKEN,
    OUTLET_WABA,
    SALES_BOT,
    SALES_SECRET,
    SHOP,
    SUPPORT_ROUTE,
    DemoFailed,
    bodies,
    channel_steps,
    until,
)
from ._embedded import PUBLIC_URL, Stack, open_stack
from ._loadcheck import LoadReport
from ._loadgen import LoadPlan, Target, run_load
from ._sandbox import SANDBOX_SECRETS

__all__ = ["run_demo"]


def _write_accounts(path: Path) -> None:
    """The demo's accounts file: the shop's and the outlet's WhatsApp apps, the support and
    the sales bots (Twilio stays on its THREADLINE_TWILIO_* variables)."""
    creds, s = SandboxCredentials(), SANDBOX_SECRETS
    path.write_text(
        f"""[[whatsapp]]
id = "shop"
app_secret = "{s.whatsapp_app_secret}"
verify_token = "{s.whatsapp_verify_token}"
access_token = "{creds.whatsapp_access_token}"
phone_number_ids = ["{SHOP}"]
business_account_id = "{creds.whatsapp_business_account_id}"

[[whatsapp]]
id = "outlet"
app_secret = "{OUTLET_SECRET}"
access_token = "{OUTLET_TOKEN}"
phone_number_ids = ["{OUTLET}"]
business_account_id = "{OUTLET_WABA}"

[[telegram]]
id = "support-bot"
bot_token = "{creds.telegram_bot_token}"
secret_token = "{s.telegram_secret_token}"

[[telegram]]
id = "sales-bot"
bot_token = "{SALES_BOT}"
secret_token = "{SALES_SECRET}"
""",
        encoding="utf-8",
    )


_FILE_CHANNELS = (
    "whatsapp_app_secret", "whatsapp_verify_token", "whatsapp_access_token",
    "telegram_bot_token", "telegram_secret_token",
)  # fmt: skip
"""The settings of the channels the accounts file configures (one place each)."""


async def run_demo(
    *, threads: int = 300, messages: int = 5, keep_running: bool = False, say: Callable[[str], None]
) -> int:
    """Play the scenario and the load; returns the exit status."""
    workdir = Path(tempfile.mkdtemp(prefix="threadline-demo-"))
    registry = CollectorRegistry()
    accounts = workdir / "accounts.toml"
    _write_accounts(accounts)
    async with open_stack(
        database_url=f"sqlite:///{workdir / 'threadline.db'}",
        registry=registry,
        providers=SandboxCredentials(
            whatsapp_phone_number_ids=(SHOP, OUTLET),
            more_whatsapp_access_tokens=(OUTLET_TOKEN,),
            more_whatsapp_business_accounts=((OUTLET_WABA, OUTLET_TOKEN),),
            more_telegram_bot_tokens=(SALES_BOT,),
        ),
        accounts_file=str(accounts),
        **dict.fromkeys(_FILE_CHANNELS),
        media_dir=str(workdir / "media"),
        conversation_buffer_seconds=3600,
        retry_base_seconds=0.1,
        retry_cap_seconds=1.0,
        conversation_gone_retries=1,
        shutdown_drain_seconds=5.0,
        whatsapp_reengagement_template="conversation_reopen",
    ) as stack:
        say(f"Sandbox Intercom and providers at {stack.sandbox_url}")
        say(
            f"Bridge ingress at {stack.node.ingress.url}, "
            f"metrics at {stack.node.metrics.url}/metrics"
        )
        say(f"Journal: {workdir / 'threadline.db'}")
        say(
            f"Accounts: {accounts} (WhatsApp numbers {SHOP} and {OUTLET} of two apps,"
            " Telegram bots 7000000001 and 7000000002)\n"
        )
        try:
            await _scenario(stack, say)
            await _templates(stack, say)
            report = await _load(stack, threads, messages, say)
        except DemoFailed as exc:
            say(f"\nDEMO FAILED: {exc}")
            return 1
        _summary(stack, registry, report, say)
        if keep_running:
            say("\nThe stack keeps running for inspection; press Ctrl-C to stop.")
            await trio.sleep_forever()
        return 0 if report.passed else 1


async def _scenario(stack: Stack, say: Callable[[str], None]) -> None:
    intercom = stack.sandbox.intercom
    now = datetime.now(UTC)

    say("1. Ana writes on WhatsApp for the first time")
    await stack.whatsapp(ANA, "Hi! My order #1042 hasn't arrived.", name="Ana Lima", sent_at=now)
    await until(lambda: len(stack.conversations()) == 1, "the first conversation")
    (contact,) = stack.contacts()
    first = stack.conversations()[0]
    say(
        f"   → contact {contact['id']} created as a {contact['role']} with phone {contact['phone']}"
    )
    say(f"   → conversation {first['id']} created; first part: {bodies(first)[0]!r}")

    say("2. She writes again: the same conversation continues")
    await stack.whatsapp(ANA, "It was due on Monday.", sent_at=now + timedelta(seconds=30))
    await stack.whatsapp(ANA, "Tracking says 'in transit'.", sent_at=now + timedelta(seconds=60))
    await until(lambda: len(stack.conversations()[0]["parts"]) == 3, "two replies")
    say(
        f"   → conversation {first['id']} now holds "
        f"{len(stack.conversations()[0]['parts'])} parts, in order"
    )

    say("3. Two hours of silence (buffer: 1 hour), then a new question → a new conversation")
    later = now + timedelta(hours=2)
    await stack.whatsapp(ANA, "Different topic: can I change my address?", sent_at=later)
    await until(lambda: len(stack.conversations()) == 2, "a conversation after the buffer")
    second = stack.conversations()[1]
    say(f"   → conversation {second['id']} opened for the same contact {second['contact_id']}")

    say("4. She sends a photo with a caption → uploaded inline")
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
    media_id = stack.sandbox.providers.add_media(photo, "image/png", "label.png")
    await stack.whatsapp(
        ANA,
        "This is the shipping label",
        media=WebhookMedia(ref=media_id, mime_type="image/png", size=len(photo)),
        sent_at=later + timedelta(seconds=10),
    )
    await until(
        lambda: any(p["attachments"] for p in stack.conversations()[1]["parts"]), "the attachment"
    )
    attachment = next(a for p in stack.conversations()[1]["parts"] for a in p["attachments"])
    say(
        f"   → attachment {attachment['name']} "
        f"({attachment['size']} bytes, {attachment['content_type']})"
    )

    say("5. Grace, a teammate, replies in Intercom → the reply goes out on WhatsApp")
    await intercom.teammates.note(str(second["id"]), "Internal: address change is possible")
    await intercom.teammates.reply(
        str(second["id"]), "Yes! Reply with the new address.", admin_id="991267602"
    )
    await until(lambda: len(stack.sent()) == 1, "the reply on WhatsApp")
    sent = stack.sent()[0]
    say(f"   → sent to {sent.to} on {sent.channel.value}: {sent.text!r} (the note stayed inside)")

    say("5b. Grace closes the conversation with a message → Ana receives it too")
    await intercom.teammates.close(
        str(second["id"]), admin_id="991267602", body="Closed — thanks, Ana!"
    )
    await until(lambda: len(stack.sent()) == 2, "the closing message on WhatsApp")
    closing = stack.sent()[1]
    if closing.text != "Grace Teammate: Closed — thanks, Ana!" or closing.to != ANA:
        raise DemoFailed(f"unexpected closing message: {closing.text!r} to {closing.to}")
    say(f"   → sent to {closing.to} on {closing.channel.value}: {closing.text!r}")

    say("6. A teammate deletes the conversation; Ana writes again → a new one, nothing lost")
    intercom.delete_conversation(str(second["id"]))
    await stack.whatsapp(
        ANA, "New address: Rua Augusta 100, Lisboa", sent_at=later + timedelta(minutes=5)
    )
    await until(lambda: len(stack.conversations()) == 3, "the replacement conversation")
    third = stack.conversations()[2]
    say(f"   → conversation {third['id']} replaced the deleted one: {bodies(third)[-1]!r}")

    say("7. Ana texts by SMS from the same number → the same Intercom contact")
    await stack.sms("+15550001111", "Also: please call me after 6pm")
    await until(lambda: len(stack.conversations()) == 4, "the SMS conversation")
    contacts = {c["contact_id"] for c in stack.conversations()}
    if len(contacts) != 1:
        raise DemoFailed(f"expected one contact, found {len(contacts)}")
    say(f"   → SMS thread opened its own conversation, same contact {contacts.pop()}")

    say("8. Bruno writes on Telegram → contact found by a custom attribute")
    await stack.telegram(
        2222222, "Olá! Do you ship to Porto?", first_name="Bruno", path=SUPPORT_ROUTE
    )
    await until(lambda: len(stack.contacts()) == 2, "Bruno's contact")
    bruno = stack.contacts()[1]
    say(f"   → contact {bruno['id']} with custom attribute {bruno['custom_attributes']}\n")
    await channel_steps(stack, say, str(stack.conversations()[3]["id"]))


async def _templates(stack: Stack, say: Callable[[str], None]) -> None:
    intercom = stack.sandbox.intercom
    carla, dan = "15550004444", "15550005555"

    say("9. WhatsApp's 24-hour window: Carla last wrote 25 hours ago")
    await stack.whatsapp(
        carla,
        "Is my warranty still valid?",
        name="Carla",
        sent_at=datetime.now(UTC) - timedelta(hours=25),
    )
    question = ["Is my warranty still valid?"]
    await until(
        lambda: any(bodies(c) == question for c in stack.conversations()), "Carla's conversation"
    )
    conversation = next(c for c in stack.conversations() if bodies(c) == question)
    before = len(stack.sent())
    await intercom.teammates.reply(
        str(conversation["id"]), "Yes, until March 2027.", admin_id="991267602"
    )
    await until(
        lambda: any("holds this reply" in b for b in bodies(_find(stack, conversation["id"]))),
        "the note about the held reply",
    )
    template = stack.sent()[before:]
    if [(m.type, m.template) for m in template] != [("template", "conversation_reopen")]:
        raise DemoFailed(f"expected the re-engagement template, sent {template}")
    say(
        f"   → outside the window: template {template[0].template!r} sent instead:"
        f" {template[0].text!r}"
    )
    say("   → the reply is held; a note in the conversation says so")
    await stack.whatsapp(carla, "Oh great, what did you find?")
    await until(lambda: len(stack.sent()) == before + 2, "the held reply after Carla's answer")
    held = stack.sent()[-1]
    if held.type != "text" or held.text != "Grace Teammate: Yes, until March 2027.":
        raise DemoFailed(f"expected the held reply, sent {held}")
    say(f"   → Carla answered; the held reply went out: {held.text!r}")

    say("   The send API starts a conversation with Dan, a new customer, with a template")
    response = await stack.http.post(
        "/api/messages",
        json={
            "channel": "whatsapp", "account": "100000000000001", "customer": dan,
            "template": {"name": "order_update", "language": {"code": "en_US"}, "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Dan"},
                                                {"type": "text", "text": "#2001"}]}]},
        },
        headers={"authorization": "Bearer sandbox-api-token"},
    )  # fmt: skip
    if response.status_code != 200:
        raise DemoFailed(f"the send API answered {response.status_code}: {response.text}")
    await until(
        lambda: (
            any(m.to == dan and m.type == "template" for m in stack.sent())
            and any("#2001" in b for c in stack.conversations() for b in bodies(c))
        ),
        "Dan's template and conversation",
    )
    dans = next(c for c in stack.conversations() if any("#2001" in b for b in bodies(c)))
    say(
        f"   → template sent; conversation {dans['id']} opened for his new contact:"
        f" {bodies(dans)[-1]!r}"
    )
    free = await stack.http.post(
        "/api/messages",
        json={"channel": "whatsapp", "account": "100000000000001", "customer": "15550006666",
              "text": "Hello!"},
        headers={"authorization": "Bearer sandbox-api-token"},
    )  # fmt: skip
    if free.status_code != 422:
        raise DemoFailed(f"free-form to a new WhatsApp customer answered {free.status_code}")
    why = free.text.strip()
    say(f"   → free-form text to a customer who never wrote: {free.status_code} ({why})\n")


def _find(stack: Stack, conversation_id: object) -> dict[str, Any]:
    return next(c for c in stack.conversations() if c["id"] == conversation_id)


async def _load(
    stack: Stack, threads: int, messages: int, say: Callable[[str], None]
) -> LoadReport:
    plan = LoadPlan(threads=threads, messages_per_thread=messages)
    say(
        f"10. Ordered-delivery load: {threads} threads x {messages} messages over"
        f" {len(plan.channels)} channels ({', '.join(plan.channels)})"
    )
    intercom = stack.sandbox.intercom
    limit = stack.settings.intercom_rate_limit_per_window
    intercom.configure(rate_limit=limit, rate_window_seconds=10.0)
    say(f"   (the sandbox enforces Intercom's limit, {limit} requests per 10-second window)")
    before = intercom.stats()

    async def feed(cursor: int) -> tuple[list[dict[str, Any]], int]:
        return intercom.parts_since(cursor)

    creds = stack.sandbox.providers.credentials
    target = Target(
        stack.node.ingress.url, PUBLIC_URL, creds.twilio_auth_token, creds.twilio_account_sid,
        telegram_path=SUPPORT_ROUTE,
    )  # fmt: skip
    report = await run_load(plan, target, feed)
    verdict = "PASS" if report.passed else "FAIL"
    say(
        f"   → {verdict}: sent {report.sent}, acknowledged {report.acknowledged}, delivered "
        f"{report.delivered}, lost {report.lost}, duplicated {report.duplicated}, "
        f"out of order {report.out_of_order}"
    )
    after = intercom.stats()
    requests = after["requests_total"] - before["requests_total"]
    limited = after["rate_limited"] - before["rate_limited"]
    say(
        f"   → {limited} of {requests} Intercom requests were answered 429: "
        "the bridge paced itself to the window"
    )
    lat = report.latency_ms
    say(
        f"   → {report.throughput_per_s:.0f} messages/s into Intercom; ack→Intercom latency "
        f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms"
    )
    return report


def _summary(
    stack: Stack, registry: CollectorRegistry, report: LoadReport, say: Callable[[str], None]
) -> None:
    def total(name: str, **labels: str) -> int:
        value = 0.0
        for metric in registry.collect():
            for sample in metric.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    value += sample.value
        return int(value)

    say("\nSummary (from the bridge's own Prometheus metrics)")
    say(
        f"  webhooks answered 200 ........ {total('threadline_webhook_requests_total', code='200')}"
    )
    say(
        "  messages delivered ........... "
        f"{total('threadline_messages_total', outcome='delivered')}"
    )
    for reason in ("first_message", "buffer_expired", "conversation_gone"):
        count = total("threadline_conversations_created_total", reason=reason)
        say(f"  conversations ({reason}) {'.' * (16 - len(reason))} {count}")
    say(f"  dead letters ................. {total('threadline_dead_letters_total')}")
    failures = total("threadline_delivery_failures_total", outcome="noted")
    say(f"  delivery failures noted ...... {failures}")
    say(f"  Intercom requests ............ {total('threadline_intercom_requests_total')}")
    say(f"\nMetrics: {stack.node.metrics.url}/metrics while the bridge runs (`threadline serve`")
    say(
        "exposes them on THREADLINE_METRICS_BIND); "
        "`threadline demo --keep-running` keeps this one up."
    )
