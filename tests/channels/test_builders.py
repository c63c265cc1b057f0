"""Signed webhook builders: real formats, verify and parse with our own functions, and carry
media registered in the sandbox end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import (
    Channel,
    DeliveryStatus,
    InboundMessage,
    MediaKind,
    parse_telegram,
    parse_twilio,
    parse_whatsapp,
    twilio_form_params,
    verify_telegram_secret,
    verify_twilio_signature,
    verify_whatsapp_signature,
)
from channels.sandbox import (
    WebhookMedia,
    WhatsAppInbound,
    telegram_message_webhook,
    twilio_message_webhook,
    twilio_status_webhook,
    whatsapp_status_webhook,
    whatsapp_text_webhook,
    whatsapp_webhook,
)

from .conftest import Served, fixtures_dir
from .test_media import PNG, telegram, twilio, whatsapp

SECRET = "app-secret"
PNID = "106540352242922"
AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PUBLIC = "https://bridge.example.com/webhooks/twilio"


def keys_of(value: object) -> set[str]:
    """Every dict key at any depth (lists flattened)."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_whatsapp_batch_keeps_order_and_verifies() -> None:
    image = WebhookMedia(ref="900000000001", mime_type="image/jpeg", sha256="abc=")
    pdf = WebhookMedia(ref="900000000002", mime_type="application/pdf", filename="q.pdf")
    batch = [
        WhatsAppInbound("15550001111", text="first", message_id="wamid.1", name="Ann", sent_at=AT),
        WhatsAppInbound("15550001111", text="a cat", media=image, message_id="wamid.2", sent_at=AT),
        WhatsAppInbound("15550009999", media=pdf, message_id="wamid.3", reply_to="wamid.1"),
    ]
    hook = whatsapp_webhook(SECRET, PNID, batch)
    verify_whatsapp_signature(hook.body, hook.headers["X-Hub-Signature-256"], SECRET)
    events = parse_whatsapp(hook.body)
    assert all(isinstance(e, InboundMessage) for e in events)
    first, second, third = (e for e in events if isinstance(e, InboundMessage))
    assert [first.provider_message_id, second.provider_message_id, third.provider_message_id] == [
        "wamid.1",
        "wamid.2",
        "wamid.3",
    ]
    assert (first.text, first.profile_name, first.sent_at, first.phone) == (
        "first",
        "Ann",
        AT,
        "+15550001111",
    )
    assert second.text == "a cat"
    assert second.attachments[0].model_dump(exclude_none=True) == {
        "kind": MediaKind.IMAGE,
        "ref": "900000000001",
        "mime_type": "image/jpeg",
        "sha256": "abc=",
    }
    assert third.key.customer == "15550009999"
    assert third.attachments[0].filename == "q.pdf"
    assert third.reply_to == "wamid.1"


def test_whatsapp_builders_match_the_real_format() -> None:
    fixture = json.loads((fixtures_dir() / "whatsapp/text.json").read_text())
    built = json.loads(whatsapp_text_webhook(SECRET, PNID, "15550001111", "hi").body)
    assert keys_of(built) == keys_of(fixture)
    status = whatsapp_status_webhook(
        SECRET,
        PNID,
        "15550001111",
        "wamid.OUT",
        "failed",
        error_code=131047,
        error_title="Re-engagement",
    )
    verify_whatsapp_signature(status.body, status.headers["X-Hub-Signature-256"], SECRET)
    [event] = parse_whatsapp(status.body)
    assert isinstance(event, DeliveryStatus)
    assert (event.provider_message_id, event.status, event.error_code) == (
        "wamid.OUT",
        "failed",
        131047,
    )
    failed_fixture = json.loads((fixtures_dir() / "whatsapp/status_failed.json").read_text())
    assert keys_of(json.loads(status.body)) <= keys_of(failed_fixture)


def test_twilio_builders_sign_for_the_public_url_and_parse() -> None:
    media = [WebhookMedia(ref="https://api.twilio.com/x/Media/ME1", mime_type="image/jpeg")]
    hook = twilio_message_webhook(
        "token",
        PUBLIC,
        account_sid="AC1",
        to="whatsapp:+15550002222",
        from_="whatsapp:+15550001111",
        body="hello",
        media=media,
        message_sid="MM1",
        profile_name="Ann",
    )
    params = twilio_form_params(hook.body)
    verify_twilio_signature(PUBLIC, params, hook.headers["X-Twilio-Signature"], "token")
    [event] = parse_twilio(hook.body, received_at=AT)
    assert isinstance(event, InboundMessage)
    assert (str(event.key), event.provider_message_id, event.text, event.profile_name) == (
        "twilio:+15550002222:whatsapp:+15550001111",
        "MM1",
        "hello",
        "Ann",
    )
    assert event.attachments[0].ref == media[0].ref
    fixture = json.loads((fixtures_dir() / "twilio/whatsapp_inbound_image.json").read_text())
    assert set(fixture) <= {name for name, _ in params}
    status = twilio_status_webhook(
        "token",
        PUBLIC,
        account_sid="AC1",
        to="+15550001111",
        from_="+15550002222",
        message_sid="SM9",
        status="undelivered",
        error_code=30003,
    )
    verify_twilio_signature(
        PUBLIC, twilio_form_params(status.body), status.headers["X-Twilio-Signature"], "token"
    )
    [receipt] = parse_twilio(status.body, received_at=AT)
    assert isinstance(receipt, DeliveryStatus)
    assert (receipt.status, receipt.error_code) == ("undelivered", 30003)


def test_telegram_builder_matches_the_real_format() -> None:
    hook = telegram_message_webhook(
        "s3cret", chat_id=1111111, message_id=5, text="hi", sent_at=AT, reply_to=4
    )
    verify_telegram_secret(hook.headers["X-Telegram-Bot-Api-Secret-Token"], "s3cret")
    [event] = parse_telegram(hook.body, "7000000001")
    assert isinstance(event, InboundMessage)
    assert (event.provider_message_id, event.text, event.reply_to, event.sent_at) == (
        "1111111:5",
        "hi",
        "1111111:4",
        AT,
    )
    fixture = json.loads((fixtures_dir() / "telegram/reply.json").read_text())
    assert keys_of(json.loads(hook.body)) - keys_of(fixture) <= {"is_bot"}
    photo = WebhookMedia(ref="F1", mime_type="image/png", size=10)
    [with_photo] = parse_telegram(
        telegram_message_webhook("s", chat_id=1, message_id=6, text="cap", media=photo).body, "7"
    )
    assert isinstance(with_photo, InboundMessage)
    assert (with_photo.text, with_photo.attachments[0].kind, with_photo.attachments[0].ref) == (
        "cap",
        MediaKind.IMAGE,
        "F1",
    )


async def test_built_webhooks_reference_sandbox_media_end_to_end(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "application/pdf", "doc.pdf")
    pdf = WebhookMedia(ref=media_id, mime_type="application/pdf", filename="doc.pdf", size=len(PNG))

    [wa] = parse_whatsapp(whatsapp_text_webhook(SECRET, PNID, "15550001111", "see", media=pdf).body)
    assert isinstance(wa, InboundMessage)
    assert (
        await whatsapp(http, served).download(wa.attachments[0], max_bytes=10**6)
    ).content == PNG

    url = served.sandbox.twilio_media_url(f"{served.url}/twilio", media_id)
    hook = twilio_message_webhook(
        "t",
        PUBLIC,
        account_sid="AC1",
        to="+15550002222",
        from_="+15550001111",
        media=[WebhookMedia(ref=url, mime_type="application/pdf")],
    )
    [tw] = parse_twilio(hook.body, received_at=AT)
    assert isinstance(tw, InboundMessage)
    assert (await twilio(http, served).download(tw.attachments[0], max_bytes=10**6)).content == PNG

    [tg] = parse_telegram(
        telegram_message_webhook("s", chat_id=1, message_id=1, media=pdf).body, "7"
    )
    assert isinstance(tg, InboundMessage)
    got = await telegram(http, served).download(tg.attachments[0], max_bytes=10**6)
    assert (got.content, got.filename, got.mime_type) == (PNG, "doc.pdf", "application/pdf")
    assert tg.key.channel is Channel.TELEGRAM


# Texts the parsers take: UTF-8, no NUL (the edge refuses the rest: channels/_decode.py).
texts = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=200
).filter(lambda t: t.strip() == t and t != "")
digits = st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True)


@given(text=texts, phone=digits, mid=st.from_regex(r"wamid\.[A-Za-z0-9=]{1,40}", fullmatch=True))
def test_whatsapp_builder_parse_round_trip(text: str, phone: str, mid: str) -> None:
    hook = whatsapp_text_webhook(SECRET, PNID, phone, text, message_id=mid)
    verify_whatsapp_signature(hook.body, hook.headers["X-Hub-Signature-256"], SECRET)
    [event] = parse_whatsapp(hook.body)
    assert isinstance(event, InboundMessage)
    assert (event.text, event.phone, event.provider_message_id) == (text, f"+{phone}", mid)


@given(text=texts, phone=digits, whatsapp_sender=st.booleans())
def test_twilio_builder_parse_round_trip(text: str, phone: str, whatsapp_sender: bool) -> None:
    prefix = "whatsapp:" if whatsapp_sender else ""
    hook = twilio_message_webhook(
        "tok",
        PUBLIC,
        account_sid="AC1",
        to=f"{prefix}+15550002222",
        from_=f"{prefix}+{phone}",
        body=text,
    )
    verify_twilio_signature(
        PUBLIC, twilio_form_params(hook.body), hook.headers["X-Twilio-Signature"], "tok"
    )
    [event] = parse_twilio(hook.body, received_at=AT)
    assert isinstance(event, InboundMessage)
    assert (event.text, event.phone, event.key.customer) == (text, f"+{phone}", f"{prefix}+{phone}")


@given(text=texts, chat=st.integers(-(2**52), 2**52), mid=st.integers(1, 2**31))
def test_telegram_builder_parse_round_trip(text: str, chat: int, mid: int) -> None:
    hook = telegram_message_webhook("s", chat_id=chat, message_id=mid, text=text)
    [event] = parse_telegram(hook.body, "7000000001")
    assert isinstance(event, InboundMessage)
    assert (event.text, event.provider_message_id) == (text, f"{chat}:{mid}")


@pytest.mark.parametrize(
    ("sender", "body", "opt_out_type", "expected"),
    [
        ("+15550001111", "STOP", None, "stop"),
        ("+15550001111", "  unsubscribe\n", None, "stop"),
        ("+15550001111", "StopAll", None, "stop"),
        ("+15550001111", "cancel", None, "stop"),
        ("+15550001111", "END", None, "stop"),
        ("+15550001111", "quit", None, "stop"),
        ("+15550001111", "start", None, "start"),
        ("+15550001111", "Yes", None, "start"),
        ("+15550001111", "UNSTOP", None, "start"),
        ("+15550001111", "help", None, "help"),
        ("+15550001111", "INFO", None, "help"),
        ("+15550001111", "please stop", None, None),  # only a whole-message keyword counts
        ("+15550001111", "ARRET", "STOP", "stop"),  # Advanced Opt-Out's custom keyword
        ("+15550001111", "stop", "HELP", "help"),  # OptOutType decides
        ("whatsapp:+15550001111", "STOP", None, None),  # no keyword filtering on WhatsApp
        ("whatsapp:+15550001111", "basta", "STOP", "stop"),
    ],
)
def test_twilio_opt_out_keywords_and_opt_out_type(
    sender: str, body: str, opt_out_type: str | None, expected: str | None
) -> None:
    prefix = "whatsapp:" if sender.startswith("whatsapp:") else ""
    hook = twilio_message_webhook(
        "tok",
        PUBLIC,
        account_sid="AC1",
        to=f"{prefix}+15550002222",
        from_=sender,
        body=body,
        opt_out_type=opt_out_type,
    )
    [event] = parse_twilio(hook.body, received_at=AT)
    assert isinstance(event, InboundMessage)
    assert event.opt_out == expected
    assert event.text == body  # the message itself is bridged as written
