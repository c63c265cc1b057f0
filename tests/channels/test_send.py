"""Sends to the sandbox providers over real HTTP: success paths and every classified failure."""

from __future__ import annotations

import httpx
import pytest
import trio
from pydantic import SecretStr

from channels import (
    Channel,
    ChannelError,
    OutboundMedia,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendInDoubt,
    SendRateLimited,
    SendRejected,
    SendTransient,
    TelegramClient,
    TelegramConfig,
    ThreadKey,
    TwilioClient,
    TwilioConfig,
    WhatsAppClient,
    WhatsAppConfig,
)
from channels.sandbox import SandboxFailure

from .conftest import Served, answering
from .test_media import PNG, telegram, twilio, whatsapp

WA_KEY = ThreadKey(channel=Channel.WHATSAPP, account="106540352242922", customer="15550001111")
SMS_KEY = ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="+15550001111")
TWA_KEY = ThreadKey(
    channel=Channel.TWILIO, account="+15550002222", customer="whatsapp:+15550001111"
)
TG_KEY = ThreadKey(channel=Channel.TELEGRAM, account="7000000001", customer="1111111")

FAILURES: list[tuple[SandboxFailure, type[ChannelError]]] = [
    (SandboxFailure.BLOCKED, RecipientUnavailable),
    (SandboxFailure.OUTSIDE_WINDOW, OutsideCustomerWindow),
    (SandboxFailure.RATE_LIMITED, SendRateLimited),
    (SandboxFailure.SERVER_ERROR, SendTransient),
]


async def test_whatsapp_text_send_is_recorded(served: Served, http: httpx.AsyncClient) -> None:
    wamid = await whatsapp(http, served).send_text(
        WA_KEY, "Hello from Intercom", reply_to="wamid.X"
    )
    [sent] = served.sandbox.sent(Channel.WHATSAPP)
    assert sent.message_id == wamid
    assert (sent.account, sent.to, sent.type) == ("106540352242922", "15550001111", "text")
    assert sent.text == "Hello from Intercom"
    assert sent.reply_to == "wamid.X"


async def test_whatsapp_media_by_link_and_by_upload(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = whatsapp(http, served)
    link = OutboundMedia(mime_type="image/png", url="https://files.example/a.png")
    await client.send_media(WA_KEY, link, caption="by link")
    upload = OutboundMedia(mime_type="application/pdf", filename="q.pdf", content=PNG)
    await client.send_media(WA_KEY, upload, caption="by upload")
    by_link, by_upload = served.sandbox.sent(Channel.WHATSAPP)
    assert (by_link.type, by_link.media_url, by_link.text) == ("image", link.url, "by link")
    assert (by_upload.type, by_upload.filename, by_upload.text) == (
        "document",
        "q.pdf",
        "by upload",
    )
    assert by_upload.media_id is not None
    stored = served.sandbox.media(by_upload.media_id)
    assert stored is not None
    assert stored.content == PNG


async def test_twilio_text_and_media_sends(served: Served, http: httpx.AsyncClient) -> None:
    client = twilio(http, served)
    sid = await client.send_text(SMS_KEY, "sms reply")
    await client.send_text(TWA_KEY, "whatsapp reply")
    media = OutboundMedia(mime_type="image/png", url="https://files.example/a.png")
    await client.send_media(TWA_KEY, media, caption="look")
    sms, wa, pic = served.sandbox.sent(Channel.TWILIO)
    assert sms.message_id == sid
    assert sid.startswith("SM")
    assert (sms.account, sms.to, sms.text) == ("+15550002222", "+15550001111", "sms reply")
    assert (wa.account, wa.to) == ("whatsapp:+15550002222", "whatsapp:+15550001111")
    assert (pic.media_url, pic.text) == (media.url, "look")


async def test_twilio_media_needs_a_public_url(served: Served, http: httpx.AsyncClient) -> None:
    with pytest.raises(SendRejected):
        await twilio(http, served).send_media(
            SMS_KEY, OutboundMedia(mime_type="image/png", content=PNG)
        )
    assert served.sandbox.sent() == []


async def test_telegram_text_photo_upload_and_document_url(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = telegram(http, served)
    first = await client.send_text(TG_KEY, "hi", reply_to="1111111:1365")
    photo = OutboundMedia(mime_type="image/png", filename="p.png", content=PNG)
    second = await client.send_media(TG_KEY, photo, caption="a photo")
    pdf = served.sandbox.add_media(b"%PDF-1.4 " + b"d" * 100, "application/pdf", "d.pdf")
    doc = OutboundMedia(mime_type="application/pdf", url=f"{served.url}/twilio/_cdn/{pdf}")
    third = await client.send_media(TG_KEY, doc)
    assert [first, second, third] == ["1111111:1", "1111111:2", "1111111:3"]
    text, pic, document = served.sandbox.sent(Channel.TELEGRAM)
    assert (text.text, text.reply_to, text.account) == ("hi", "1111111:1365", "7000000001")
    assert (pic.type, pic.text, pic.filename, pic.mime_type) == (
        "image",
        "a photo",
        "p.png",
        "image/png",
    )
    assert pic.media_id is not None
    stored = served.sandbox.media(pic.media_id)
    assert stored is not None
    assert stored.content == PNG
    assert (document.type, document.media_url) == ("document", doc.url)


@pytest.mark.parametrize(("failure", "expected"), FAILURES)
async def test_whatsapp_failures_are_classified(
    served: Served, http: httpx.AsyncClient, failure: SandboxFailure, expected: type[ChannelError]
) -> None:
    served.sandbox.fail(Channel.WHATSAPP, WA_KEY.customer, failure, times=1, retry_after=7)
    client = whatsapp(http, served)
    with pytest.raises(expected) as caught:
        await client.send_text(WA_KEY, "hello")
    code = {"blocked": 131026, "outside_window": 131047, "rate_limited": 130429}.get(failure)
    assert caught.value.code == (code or 131000)
    if isinstance(caught.value, SendRateLimited):
        assert caught.value.retry_after == 7
    await client.send_text(WA_KEY, "hello again")  # times=1: the next one goes through
    assert len(served.sandbox.sent()) == 1


@pytest.mark.parametrize(("failure", "expected"), FAILURES)
async def test_twilio_failures_are_classified(
    served: Served, http: httpx.AsyncClient, failure: SandboxFailure, expected: type[ChannelError]
) -> None:
    served.sandbox.fail(Channel.TWILIO, TWA_KEY.customer, failure, retry_after=3)
    with pytest.raises(expected) as caught:
        await twilio(http, served).send_text(TWA_KEY, "hello")
    code = {"blocked": 21610, "outside_window": 63016, "rate_limited": 20429}.get(failure)
    assert caught.value.code == (code or 20500)
    if isinstance(caught.value, SendRateLimited):
        assert caught.value.retry_after == 3
    await twilio(http, served).send_text(SMS_KEY, "the SMS thread is not scripted")


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (SandboxFailure.BLOCKED, RecipientUnavailable),
        (SandboxFailure.OUTSIDE_WINDOW, RecipientUnavailable),  # Telegram has no window
        (SandboxFailure.RATE_LIMITED, SendRateLimited),
        (SandboxFailure.SERVER_ERROR, SendTransient),
    ],
)
async def test_telegram_failures_are_classified(
    served: Served, http: httpx.AsyncClient, failure: SandboxFailure, expected: type[ChannelError]
) -> None:
    served.sandbox.fail(Channel.TELEGRAM, TG_KEY.customer, failure, retry_after=35)
    with pytest.raises(expected) as caught:
        await telegram(http, served).send_text(TG_KEY, "hello")
    if isinstance(caught.value, SendRateLimited):
        assert caught.value.retry_after == 35


async def test_bad_credentials_are_rejected_without_leaking_them(
    served: Served, http: httpx.AsyncClient
) -> None:
    clients: list[tuple[WhatsAppClient | TwilioClient | TelegramClient, ThreadKey]] = [
        (whatsapp(http, served, access_token=SecretStr("leak-1")), WA_KEY),
        (twilio(http, served, auth_token=SecretStr("leak-2")), SMS_KEY),
        (telegram(http, served, bot_token=SecretStr("1:leak-3")), TG_KEY),
    ]
    for client, key in clients:
        with pytest.raises(SendRejected) as caught:
            await client.send_text(key, "x")
        assert caught.value.status == 401
        assert "leak" not in str(caught.value)


async def test_unreachable_provider_is_transient(http: httpx.AsyncClient) -> None:
    config = TelegramConfig(bot_token=SecretStr("1:secret"), base_url="http://127.0.0.1:9")
    with pytest.raises(SendTransient) as caught:
        await TelegramClient(http, config).send_text(TG_KEY, "x")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "answer", [b"<html>upstream hiccup</html>", b'{"messaging_product": "whatsapp"}']
)
async def test_a_whatsapp_send_accepted_with_an_unreadable_answer_is_in_doubt_not_retried(
    nursery: trio.Nursery, http: httpx.AsyncClient, answer: bytes
) -> None:
    """A 2xx is the Cloud API accepting the message: an answer without its wamid is not
    "nothing went out" (transient), which would send it again."""
    graph, url = await answering(nursery, answer)
    client = WhatsAppClient(http, WhatsAppConfig(access_token=SecretStr("t"), base_url=url))
    with pytest.raises(SendInDoubt):
        await client.send_text(WA_KEY, "hello")
    assert graph.requests == 1


@pytest.mark.parametrize("answer", [b"<html>upstream hiccup</html>", b'{"ok": true}'])
async def test_a_telegram_or_twilio_send_accepted_with_an_unreadable_answer_is_in_doubt(
    nursery: trio.Nursery, http: httpx.AsyncClient, answer: bytes
) -> None:
    provider, url = await answering(nursery, answer)
    sms = TwilioClient(
        http,
        TwilioConfig(account_sid="AC" + "0" * 32, auth_token=SecretStr("t"), base_url=url),
    )
    with pytest.raises(SendInDoubt):
        await sms.send_text(SMS_KEY, "hello")
    bot = TelegramClient(http, TelegramConfig(bot_token=SecretStr("1:t"), base_url=url))
    with pytest.raises(SendInDoubt):
        await bot.send_text(TG_KEY, "hello")
    assert provider.requests == 2
