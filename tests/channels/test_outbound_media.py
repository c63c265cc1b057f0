"""Outbound attachments by the provider's method and type for their MIME type (issue 17), against
the sandbox providers over real HTTP. The sandboxes fetch a media URL a send names, as the real
providers do, and refuse what they refuse: Telegram's ``sendDocument`` by URL for anything but
PDF, ZIP and GIF, WhatsApp's ``image`` for anything but JPEG and PNG."""

from __future__ import annotations

import httpx
import pytest

from channels import Channel, MediaTooLarge, OutboundMedia, ThreadKey

from .conftest import Served
from .test_media import PNG, telegram, twilio, whatsapp

WA_KEY = ThreadKey(channel=Channel.WHATSAPP, account="106540352242922", customer="15550001111")
TG_KEY = ThreadKey(channel=Channel.TELEGRAM, account="7000000001", customer="1111111")
TWA_KEY = ThreadKey(
    channel=Channel.TWILIO, account="+15550002222", customer="whatsapp:+15550001111"
)
SMS_KEY = ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="+15550001111")

GIF = b"GIF89a" + b"g" * 500
WEBP = b"RIFF\x00\x01\x00\x00WEBPVP8 " + b"w" * 500
NOTES = b"meeting notes\n" * 40
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"v" * 500
MP3 = b"ID3\x03" + b"a" * 500
PDF = b"%PDF-1.4 " + b"d" * 500


def hosted(served: Served, content: bytes, mime_type: str, name: str) -> str:
    """A public URL of ``content`` (the sandbox's Twilio CDN path, served without credentials)."""
    return f"{served.url}/twilio/_cdn/{served.sandbox.add_media(content, mime_type, name)}"


async def test_sandbox_telegram_refuses_send_document_by_url_unless_pdf_zip_or_gif(
    served: Served, http: httpx.AsyncClient
) -> None:
    token = served.sandbox.credentials.telegram_bot_token
    url = f"{served.url}/telegram/bot{token}/sendDocument"
    for content, mime, status in [
        (NOTES, "text/plain", 400),
        (PNG, "image/png", 400),
        (PDF, "application/pdf", 200),
        (GIF, "image/gif", 200),
        (b"PK\x03\x04" + b"z" * 100, "application/zip", 200),
    ]:
        body = {"chat_id": "1111111", "document": hosted(served, content, mime, "f")}
        answer = await http.post(url, json=body)
        assert answer.status_code == status, (mime, answer.text)
        if status == 400:
            assert answer.json()["description"] == (
                "Bad Request: wrong file identifier/HTTP URL specified"
            )
    unreachable = {"chat_id": "1111111", "document": f"{served.url}/twilio/_cdn/404"}
    answer = await http.post(url, json=unreachable)
    assert answer.json()["description"] == "Bad Request: failed to get HTTP URL content"
    assert [m.mime_type for m in served.sandbox.sent()] == [
        "application/pdf",
        "image/gif",
        "application/zip",
    ]


async def test_sandbox_whatsapp_refuses_an_image_that_is_not_jpeg_or_png(
    served: Served, http: httpx.AsyncClient
) -> None:
    token = served.sandbox.credentials.whatsapp_access_token
    url = f"{served.url}/whatsapp/v21.0/106540352242922/messages"
    for content, mime, status in [(GIF, "image/gif", 400), (WEBP, "image/webp", 400),
                                  (PNG, "image/png", 200)]:  # fmt: skip
        body = {
            "messaging_product": "whatsapp",
            "to": "15550001111",
            "type": "image",
            "image": {"link": hosted(served, content, mime, "i")},
        }
        answer = await http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == status, (mime, answer.text)
        if status == 400:
            assert answer.json()["error"]["code"] == 131053
    uploaded = served.sandbox.add_media(GIF, "image/gif")
    body = {"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {"id": uploaded}}
    answer = await http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400


async def test_telegram_uploads_a_document_it_will_not_take_by_url(
    served: Served, http: httpx.AsyncClient
) -> None:
    """Regression: every non-image went to ``sendDocument`` by URL, which Telegram refuses for
    anything but PDF, ZIP and GIF."""
    notes = OutboundMedia(
        mime_type="text/plain", filename="notes.txt", url=hosted(served, NOTES, "text/plain", "n")
    )
    await telegram(http, served).send_media(TG_KEY, notes, caption="the notes")
    (sent,) = served.sandbox.sent(Channel.TELEGRAM)
    assert (sent.type, sent.text, sent.filename, sent.media_url) == (
        "document",
        "the notes",
        "notes.txt",
        None,
    )
    assert sent.media_id is not None
    stored = served.sandbox.media(sent.media_id)
    assert stored is not None
    assert stored.content == NOTES


async def test_telegram_method_by_mime_type_and_url_where_taken(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = telegram(http, served)
    cases = [
        (PNG, "image/png", "image"),
        (MP4, "video/mp4", "video"),
        (MP3, "audio/mpeg", "audio"),
        (PDF, "application/pdf", "document"),
        (GIF, "image/gif", "document"),
        (WEBP, "image/webp", "document"),
    ]
    for content, mime, _ in cases:
        media = OutboundMedia(mime_type=mime, url=hosted(served, content, mime, "m"))
        await client.send_media(TG_KEY, media, caption=f"a {mime}")
    sent = served.sandbox.sent(Channel.TELEGRAM)
    assert [(m.type, m.text) for m in sent] == [(kind, f"a {mime}") for _, mime, kind in cases]
    # By URL wherever Telegram takes one; the WebP document is uploaded.
    assert [m.media_url is not None for m in sent] == [True] * 5 + [False]


async def test_telegram_upload_fetch_is_capped(served: Served, http: httpx.AsyncClient) -> None:
    notes = OutboundMedia(mime_type="text/plain", url=hosted(served, NOTES, "text/plain", "n"))
    client = telegram(http, served, upload_max_bytes=100)
    with pytest.raises(MediaTooLarge):
        await client.send_media(TG_KEY, notes)
    assert served.sandbox.sent() == []


async def test_whatsapp_type_by_mime_and_captions_where_the_type_takes_one(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = whatsapp(http, served)
    cases = [
        (PNG, "image/png", "image", "an image"),
        (GIF, "image/gif", "document", "a gif"),
        (WEBP, "image/webp", "sticker", None),
        (MP4, "video/mp4", "video", "a video"),
        (MP3, "audio/mpeg", "audio", None),
        (NOTES, "text/plain", "document", "notes"),
    ]
    for content, mime, _, caption in cases:
        media = OutboundMedia(mime_type=mime, filename="f", url=hosted(served, content, mime, "f"))
        assert client.caption_fits(WA_KEY, media, "x") is (caption is not None)
        await client.send_media(WA_KEY, media, caption=caption or "dropped")
    sent = served.sandbox.sent(Channel.WHATSAPP)
    assert [(m.type, m.text) for m in sent] == [(k, c) for _, _, k, c in cases]


async def test_caption_limits(served: Served, http: httpx.AsyncClient) -> None:
    photo = OutboundMedia(mime_type="image/png", url="https://files.example/p.png")
    pdf = OutboundMedia(mime_type="application/pdf", url="https://files.example/p.pdf")
    tg, wa, tw = telegram(http, served), whatsapp(http, served), twilio(http, served)
    assert tg.caption_fits(TG_KEY, photo, "x" * 1024)
    assert not tg.caption_fits(TG_KEY, photo, "x" * 1025)
    assert not tg.caption_fits(TG_KEY, photo, "😀" * 513)  # 1,026 UTF-16 code units
    assert wa.caption_fits(WA_KEY, pdf, "x" * 1024)
    assert not wa.caption_fits(WA_KEY, pdf, "x" * 1025)
    assert tw.caption_fits(SMS_KEY, pdf, "x" * 1600)
    assert not tw.caption_fits(SMS_KEY, pdf, "x" * 1601)
    assert tw.caption_fits(TWA_KEY, photo, "x")
    assert not tw.caption_fits(TWA_KEY, pdf, "x")  # Twilio sets no caption on WhatsApp files


async def test_twilio_body_is_the_caption(served: Served, http: httpx.AsyncClient) -> None:
    photo = OutboundMedia(mime_type="image/png", url=hosted(served, PNG, "image/png", "p"))
    await twilio(http, served).send_media(SMS_KEY, photo, caption="your receipt")
    (sent,) = served.sandbox.sent(Channel.TWILIO)
    assert (sent.text, sent.media_url) == ("your receipt", photo.url)


async def test_whatsapp_sticker_must_be_webp(served: Served, http: httpx.AsyncClient) -> None:
    token = served.sandbox.credentials.whatsapp_access_token
    body = {
        "messaging_product": "whatsapp",
        "to": "15550001111",
        "type": "sticker",
        "sticker": {"link": hosted(served, PNG, "image/png", "s")},
    }
    answer = await http.post(
        f"{served.url}/whatsapp/v21.0/106540352242922/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400
    assert served.sandbox.sent() == []


async def test_telegram_uploads_a_photo_too_large_to_take_by_url(
    served: Served, http: httpx.AsyncClient
) -> None:
    """Telegram fetches photos by URL only up to 5 MB: a larger one is fetched and uploaded."""
    large = PNG + b"p" * (5 * 1024 * 1024)
    photo = OutboundMedia(mime_type="image/png", url=hosted(served, large, "image/png", "l"))
    await telegram(http, served).send_media(TG_KEY, photo, caption="big")
    (sent,) = served.sandbox.sent(Channel.TELEGRAM)
    assert (sent.type, sent.text, sent.media_url) == ("image", "big", None)
    assert sent.media_id is not None
    stored = served.sandbox.media(sent.media_id)
    assert stored is not None
    assert stored.content == large
