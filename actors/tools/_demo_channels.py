"""The per-channel steps of ``threadline demo`` (8b-8g) and the helpers the scenario shares.

Each step plays a customer on one channel of the embedded stack, has a teammate answer in the
sandbox Intercom, and checks at the sandboxes what arrived and what left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from channels import Channel
from channels.sandbox import SandboxFailure

from ._embedded import Stack
from ._sandbox import SANDBOX_SECRETS

__all__ = [
    "ANA",
    "OUTLET",
    "OUTLET_SECRET",
    "OUTLET_TOKEN",
    "OUTLET_WABA",
    "SALES_BOT",
    "SALES_ROUTE",
    "SALES_SECRET",
    "SHOP",
    "SUPPORT_ROUTE",
    "DemoFailed",
    "bodies",
    "channel_steps",
    "until",
]

ANA = "15550001111"

# Two WhatsApp numbers of two Meta apps and two Telegram bots, in an accounts file (issue 18);
# the first of each is the sandbox's usual one. Public sandbox fakes, not secrets.
SHOP, OUTLET = "100000000000001", "100000000000002"
OUTLET_SECRET = "demo-outlet-app-secret-5c1f"  # noqa: S105 - public fake
OUTLET_TOKEN = "demo-outlet-access-token-9e2d"  # noqa: S105 - public fake
OUTLET_WABA = "200000000000002"
SALES_BOT = "7000000002:demo-sales-bot-token-4b7a"
SALES_SECRET = "demo-sales-bot-secret-8d3e"  # noqa: S105 - public fake
SUPPORT_ROUTE = "/webhooks/telegram/7000000001"
SALES_ROUTE = "/webhooks/telegram/7000000002"


class DemoFailed(Exception):
    """A check of the scripted scenario did not hold."""


async def until(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    # Generous: each step takes well under a second on an idle machine, but a step has waited
    # over 20 s on a 2-core machine running two test suites; a slow step is not a failed one.
    with trio.move_on_after(seconds):
        while not check():  # noqa: ASYNC110 - the sandbox is another party; we poll its state
            await trio.sleep(0.02)
        return
    raise DemoFailed(f"timed out waiting for: {what}")


def bodies(conversation: dict[str, Any]) -> list[str]:
    return [str(p["body"]) for p in conversation["parts"]]


async def channel_steps(stack: Stack, say: Callable[[str], None], sms_id: str) -> None:
    """Steps 8b-8g; ``sms_id``: the conversation of Ana's SMS (step 7)."""
    await _long_reply_with_a_link(stack, say)
    await _async_failure(stack, say, sms_id)
    await _second_number_and_bot(stack, say)
    await _viber(stack, say)
    await _line(stack, say)
    await _meta(stack, say)


async def _long_reply_with_a_link(stack: Stack, say: Callable[[str], None]) -> None:
    say("8b. Grace answers the SMS with a link and a long explanation → split, never cut")
    sms = next(c for c in stack.conversations() if c["parts"] and "6pm" in bodies(c)[-1])
    explanation = " ".join(
        f"Step {n}: we check the parcel at the depot and update the tracking page."
        for n in range(30)
    )  # about 2,200 characters: more than one SMS holds (1,600)
    body = (
        '<p>Your parcel is <b>on its way</b>: <a href="https://track.example/1042">track it'
        f" here</a>.</p><p>{explanation}</p>"
    )
    already = len(stack.sent())
    await stack.sandbox.intercom.teammates.reply(str(sms["id"]), body, admin_id="991267602")
    await until(lambda: len(stack.sent()) >= already + 2, "the reply's SMS pieces")
    await trio.sleep(0.3)
    pieces = [m.text or "" for m in stack.sent()[already:]]
    expected = (
        "Grace Teammate: Your parcel is on its way: track it here (https://track.example/1042)."
        f"\n{explanation}"
    )
    if any(len(p) > 1600 for p in pieces) or not expected.startswith(pieces[0]):
        raise DemoFailed(f"the SMS pieces are not the reply split at 1,600: {pieces!r}")
    if "".join(pieces).replace(" ", "").replace("\n", "") != expected.replace(" ", "").replace(
        "\n", ""
    ):
        raise DemoFailed("the SMS pieces do not add up to the whole reply")
    say(f"   → the link stays visible: {pieces[0].splitlines()[0]!r}")
    say(
        f"   → {len(pieces)} SMS of {', '.join(str(len(p)) for p in pieces)} characters"
        " (Twilio takes 1,600), split at sentence ends, in order\n"
    )


async def _async_failure(stack: Stack, say: Callable[[str], None], conversation_id: str) -> None:
    say("8c. A reply Twilio accepts but cannot deliver → a note says what did not arrive, and why")
    providers = stack.sandbox.providers
    providers.fail(Channel.TWILIO, "+15550001111", SandboxFailure.FAILED_LATER, times=1)
    before = len(stack.sent())
    await stack.sandbox.intercom.teammates.reply(
        conversation_id, "We will call you at 6:30pm.", admin_id="991267603"
    )

    def note() -> dict[str, Any] | None:
        (conversation,) = [c for c in stack.conversations() if str(c["id"]) == conversation_id]
        found = [p for p in conversation["parts"] if p["part_type"] == "note"]
        return found[0] if found else None

    await until(lambda: note() is not None, "the note about the undelivered SMS")
    (sent,) = stack.sent()[before:]
    (posted,) = providers.posted_webhooks()
    say(f"   → Twilio accepted {sent.message_id} (201), then called back: undelivered, 30003")
    found = note()
    assert found is not None
    text = " ".join(str(found["body"]).split())
    if "30003" not in text or "We will call you" not in text or posted.status != 200:
        raise DemoFailed(f"unexpected delivery-failure note: {text!r}")
    say(f"   → internal note by admin {found['author_id']}: {text!r}\n")


async def _second_number_and_bot(stack: Stack, say: Callable[[str], None]) -> None:
    intercom = stack.sandbox.intercom
    say("8d. A second WhatsApp number (another Meta app) and a second Telegram bot")
    known = {str(c["id"]) for c in stack.conversations()}
    await stack.whatsapp(
        ANA, "Hi outlet! Do you have size 38?", app_secret=OUTLET_SECRET, phone_number_id=OUTLET
    )
    await stack.telegram(
        2222222, "Sales: a quote for 20 units?", first_name="Bruno", path=SALES_ROUTE,
        secret_token=SALES_SECRET,
    )  # fmt: skip
    await until(lambda: len(stack.conversations()) == len(known) + 2, "two new conversations")
    new = [c for c in stack.conversations() if str(c["id"]) not in known]
    outlet = next(c for c in new if "size 38" in bodies(c)[0])
    sales = next(c for c in new if "20 units" in bodies(c)[0])
    say(
        f"   → Ana on the outlet's number {OUTLET}: her own conversation {outlet['id']}"
        f" (her first number's stay apart)"
    )
    say(f"   → Bruno to the sales bot: his own conversation {sales['id']}")
    before = len(stack.sent())
    await intercom.teammates.reply(str(outlet["id"]), "Yes, in black.", admin_id="991267602")
    await intercom.teammates.reply(str(sales["id"]), "Quote on its way.", admin_id="991267602")
    await until(lambda: len(stack.sent()) == before + 2, "the two replies")
    sent = {m.to: m for m in stack.sent()[before:]}
    by_outlet, by_sales = sent.get(ANA), sent.get("2222222")
    sales_bot = SALES_BOT.partition(":")[0]
    if (
        by_outlet is None
        or (by_outlet.account, by_outlet.credential) != (OUTLET, OUTLET_TOKEN)
        or by_sales is None
        or (by_sales.account, by_sales.credential) != (sales_bot, sales_bot)
    ):
        raise DemoFailed(f"a reply left from the wrong number or bot: {list(sent.values())}")
    say(f"   → Grace's reply to Ana left from {OUTLET} with the outlet app's token")
    say(f"   → Grace's reply to Bruno left through the sales bot {sales_bot}\n")


async def _viber(stack: Stack, say: Callable[[str], None]) -> None:
    say("8e. Olga writes on Viber → contact by viber_user_id; replies leave from the bot")
    olga = "xy5/5y6O81+/kbWHpLhBoA=="  # a Viber user id: base64, with "/", "+" and "="
    known = {str(c["id"]) for c in stack.conversations()}
    await stack.viber(olga, "Privet! Is the blue one in stock?", name="Olga")
    await until(lambda: len(stack.conversations()) == len(known) + 1, "Olga's conversation")
    (conversation,) = [c for c in stack.conversations() if str(c["id"]) not in known]
    contact = next(c for c in stack.contacts() if c["id"] == conversation["contact_id"])
    say(f"   → contact {contact['id']} with custom attribute {contact['custom_attributes']}")
    before = len(stack.sent())
    intercom = stack.sandbox.intercom
    await intercom.teammates.reply(str(conversation["id"]), "Yes, size M.", admin_id="991267602")
    await until(lambda: len(stack.sent()) == before + 1, "the Viber reply")
    reply = stack.sent()[-1]
    say(f"   → sent as {reply.account!r} (the bot's name): {reply.text!r}")
    await stack.viber_event("unsubscribed", olga)
    await intercom.teammates.reply(str(conversation["id"]), "Anything else?", admin_id="991267602")
    await until(
        lambda: any(
            p["part_type"] == "note" and "could not deliver" in str(p["body"])
            for c in stack.conversations()
            if c["id"] == conversation["id"]
            for p in c["parts"]
        ),
        "the note for an unsubscribed customer",
    )
    say("   → Olga unsubscribed: the next reply is not sent, a note tells the team\n")


async def _line(stack: Stack, say: Callable[[str], None]) -> None:
    say("8f. Chen writes on LINE → contact found by a custom attribute; replies by reply token")
    chen = "U" + "c4" * 16
    known = {str(c["id"]) for c in stack.conversations()}
    await stack.line(chen, "こんにちは! Is the blue one in stock?")
    await until(lambda: len(stack.conversations()) == len(known) + 1, "Chen's conversation")
    (line,) = [c for c in stack.conversations() if str(c["id"]) not in known]
    contact = next(c for c in stack.contacts() if c["id"] == line["contact_id"])
    say(f"   → contact {contact['id']} with custom attribute {contact['custom_attributes']}")
    before = len(stack.sent())
    teammates = stack.sandbox.intercom.teammates
    await teammates.reply(str(line["id"]), "Yes, two left.", admin_id="991267602")
    await until(lambda: len(stack.sent()) == before + 1, "the reply on LINE")
    await teammates.reply(str(line["id"]), "Shall I hold one?", admin_id="991267602")
    await until(lambda: len(stack.sent()) == before + 2, "the second reply on LINE")
    first, second = stack.sent()[before:]
    if (first.via, second.via) != ("reply", "push") or first.to != chen:
        raise DemoFailed(f"LINE replies went out as {first.via}, {second.via}, not reply, push")
    say(f"   → {first.text!r} answered with the message's reply token (free)")
    say(f"   → {second.text!r} pushed: the token answers once\n")


async def _meta(stack: Stack, say: Callable[[str], None]) -> None:
    say("8g. Marta writes on Messenger, Ivo sends a photo on Instagram → a conversation each")
    marta, ivo = "5550001111000007", "1789000000000077"  # a PSID and an IGSID
    providers = stack.sandbox.providers
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16
    media_id = providers.add_media(photo, "image/png", "red-one.png")
    cdn_url = providers.meta_media_url(stack.sandbox_url, Channel.INSTAGRAM, media_id)
    known = {str(c["id"]) for c in stack.conversations()}
    await stack.meta(Channel.MESSENGER, marta, "Oi! Can I return the shoes I bought?")
    await stack.meta(Channel.INSTAGRAM, ivo, "Love it! Same one in red?", media_url=cdn_url)
    await until(lambda: len(stack.conversations()) == len(known) + 2, "two Meta conversations")
    await until(
        lambda: any(p["attachments"] for c in stack.conversations() for p in c["parts"]
                    if str(c["id"]) not in known),
        "Ivo's photo",
    )  # fmt: skip
    new = [c for c in stack.conversations() if str(c["id"]) not in known]
    before = len(stack.sent())
    teammates = stack.sandbox.intercom.teammates
    for channel, customer, answer in (
        (Channel.MESSENGER, marta, "Yes, within 30 days."),
        (Channel.INSTAGRAM, ivo, "Red is back on Friday."),
    ):
        attribute = f"{channel.value}_user_id"
        contact = next(
            c for c in stack.contacts() if c["custom_attributes"].get(attribute) == customer
        )
        conversation = next(c for c in new if c["contact_id"] == contact["id"])
        say(
            f"   → {channel.value}: contact {contact['id']} by {attribute}={customer},"
            f" its own conversation {conversation['id']}"
        )
        await teammates.reply(str(conversation["id"]), answer, admin_id="991267602")
    attachments = [a for c in new for p in c["parts"] for a in p["attachments"]]
    if [a["size"] for a in attachments] != [len(photo)]:
        raise DemoFailed(f"Ivo's photo did not arrive whole: {attachments}")
    say(f"   → Ivo's photo fetched from the CDN URL and uploaded: {len(photo)} bytes, image/png")
    await until(lambda: len(stack.sent()) == before + 2, "the replies through the Send API")
    sent = {m.channel: m for m in stack.sent()[before:]}
    expected = {
        Channel.MESSENGER: (
            SANDBOX_SECRETS.messenger_page_id,
            marta,
            "Grace Teammate: Yes, within 30 days.",
        ),
        Channel.INSTAGRAM: (
            SANDBOX_SECRETS.instagram_account_id,
            ivo,
            "Grace Teammate: Red is back on Friday.",
        ),
    }
    for channel, (account, to, text) in expected.items():
        got = sent.get(channel)
        if got is None or (got.account, got.to, got.text) != (account, to, text):
            raise DemoFailed(f"the {channel.value} reply left wrong: {got}")
        say(f"   → Send API ({channel.value}) from {account} to {to}: {got.text!r}")
    say("")
