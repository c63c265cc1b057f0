"""Media download from the sandbox providers over real HTTP: success, allow-list, size cap."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
import trio
from pydantic import SecretStr

from channels import (
    MediaHostForbidden,
    MediaKind,
    MediaRef,
    MediaTooLarge,
    MediaUnavailable,
    SendRejected,
    SendTransient,
    TelegramClient,
    TelegramConfig,
    TwilioClient,
    TwilioConfig,
    WhatsAppClient,
    WhatsAppConfig,
)
from channels.whatsapp import declared_digest

from .conftest import Served, serve_elsewhere

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def whatsapp(http: httpx.AsyncClient, served: Served, **kw: object) -> WhatsAppClient:
    creds = served.sandbox.credentials
    config = WhatsAppConfig.model_validate(
        {
            "access_token": creds.whatsapp_access_token,
            "base_url": f"{served.url}/whatsapp/v21.0",
            **kw,
        }
    )
    return WhatsAppClient(http, config)


def twilio(http: httpx.AsyncClient, served: Served, **kw: object) -> TwilioClient:
    creds = served.sandbox.credentials
    config = TwilioConfig.model_validate(
        {
            "account_sid": creds.twilio_account_sid,
            "auth_token": creds.twilio_auth_token,
            "base_url": f"{served.url}/twilio",
            **kw,
        }
    )
    return TwilioClient(http, config)


def telegram(http: httpx.AsyncClient, served: Served, **kw: object) -> TelegramClient:
    config = TelegramConfig.model_validate(
        {
            "bot_token": served.sandbox.credentials.telegram_bot_token,
            "base_url": f"{served.url}/telegram",
            **kw,
        }
    )
    return TelegramClient(http, config)


def image(ref: str, size: int | None = None) -> MediaRef:
    return MediaRef(kind=MediaKind.IMAGE, ref=ref, mime_type="image/png", size=size)


# --- WhatsApp --------------------------------------------------------------------------------


async def test_whatsapp_download_resolves_the_id_then_fetches_bytes(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png", "pic.png")
    ref = MediaRef(kind=MediaKind.IMAGE, ref=media_id, mime_type="image/png", filename="pic.png")
    got = await whatsapp(http, served).download(ref, max_bytes=len(PNG))
    assert got.content == PNG
    assert got.mime_type == "image/png"
    assert got.filename == "pic.png"


async def test_whatsapp_download_refuses_declared_oversize(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png")
    with pytest.raises(MediaTooLarge):
        await whatsapp(http, served).download(image(media_id), max_bytes=len(PNG) - 1)


async def test_whatsapp_unknown_media_is_unavailable(
    served: Served, http: httpx.AsyncClient
) -> None:
    with pytest.raises(MediaUnavailable):
        await whatsapp(http, served).download(image("424242"), max_bytes=1000)
    traversal = image("../../etc/passwd")  # deliberate-escape: a hostile media id
    with pytest.raises(MediaUnavailable):
        await whatsapp(http, served).download(traversal, max_bytes=1000)


async def test_whatsapp_wrong_token_is_rejected(served: Served, http: httpx.AsyncClient) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png")
    client = whatsapp(http, served, access_token=SecretStr("wrong"))
    with pytest.raises(SendRejected) as caught:
        await client.download(image(media_id), max_bytes=len(PNG))
    assert caught.value.code == 190
    assert "wrong" not in str(caught.value)


async def test_whatsapp_media_url_outside_the_allow_list_is_not_fetched(
    http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    graph = await serve_elsewhere(nursery)
    foreign = await serve_elsewhere(nursery)
    graph.graph_media_url = f"{foreign.url}/stream/10"
    config = WhatsAppConfig(access_token=SecretStr("t"), base_url=f"{graph.url}/graph")
    with pytest.raises(MediaHostForbidden):
        await WhatsAppClient(http, config).download(image("123"), max_bytes=100)
    assert graph.paths == ["/graph/123"]
    assert foreign.paths == []
    # Listing the origin explicitly allows it (and only then is the bearer token sent there).
    listed = config.model_copy(update={"media_origins": (foreign.url,)})
    got = await WhatsAppClient(http, listed).download(image("123"), max_bytes=100)
    assert got.content == b"x" * 10
    assert foreign.paths == ["/stream/10"]


def test_default_allow_lists_derive_from_the_base_urls() -> None:
    token = SecretStr("t")
    assert {str(o) for o in WhatsAppConfig(access_token=token).allowed_origins()} == {
        "https://graph.facebook.com:443",
        "https://lookaside.fbsbx.com:443",
    }
    assert {str(o) for o in TwilioConfig(account_sid="AC", auth_token=token).allowed_origins()} == {
        "https://api.twilio.com:443",
        "https://mms.twiliocdn.com:443",
        "https://s3-external-1.amazonaws.com:443",
    }
    assert {str(o) for o in TelegramConfig(bot_token=token).allowed_origins()} == {
        "https://api.telegram.org:443"
    }
    sandbox = WhatsAppConfig(access_token=token, base_url="http://127.0.0.1:9/whatsapp/v21.0")
    assert {str(o) for o in sandbox.allowed_origins()} == {"http://127.0.0.1:9"}


# --- Twilio ----------------------------------------------------------------------------------


async def test_twilio_download_follows_the_redirect_to_the_cdn(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png")
    url = served.sandbox.twilio_media_url(f"{served.url}/twilio", media_id)
    got = await twilio(http, served).download(image(url), max_bytes=len(PNG))
    assert got.content == PNG
    assert got.mime_type == "image/png"


async def test_twilio_download_needs_basic_auth(served: Served, http: httpx.AsyncClient) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png")
    url = served.sandbox.twilio_media_url(f"{served.url}/twilio", media_id)
    with pytest.raises(SendRejected) as caught:
        await twilio(http, served, auth_token=SecretStr("nope")).download(
            image(url), max_bytes=10**6
        )
    assert caught.value.status == 401


async def test_twilio_crafted_media_url_to_another_host_is_refused_without_a_request(
    served: Served, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    elsewhere = await serve_elsewhere(nursery)
    client = twilio(http, served)
    for url in (
        f"{elsewhere.url}/stream/10",
        "cat.jpg",  # the relative URL of the two-media fixture
        "file:///etc/passwd",
        f"{served.url.replace('127.0.0.1', 'localhost')}/twilio/x",  # same port, other host
        f"{served.url.replace('http:', 'https:')}/twilio/x",  # other scheme
        "http://[::1",  # malformed
    ):
        with pytest.raises(MediaHostForbidden):
            await client.download(image(url), max_bytes=10**6)
    assert elsewhere.paths == []


async def test_twilio_redirect_to_a_foreign_origin_is_not_followed(
    http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    allowed = await serve_elsewhere(nursery)
    foreign = await serve_elsewhere(nursery)
    config = TwilioConfig(account_sid="AC1", auth_token=SecretStr("t"), base_url=allowed.url)
    client = TwilioClient(http, config)
    with pytest.raises(MediaHostForbidden):
        await client.download(
            image(f"{allowed.url}/redirect?to={foreign.url}/stream/10"), max_bytes=100
        )
    assert allowed.paths == ["/redirect"]
    assert foreign.paths == []


# Stopping mid-body abandons httpcore's internal async generators; trio finalizes them but warns
# (encode/httpx#3686, fix pending in encode/httpx#3777). Our own generator is closed explicitly.
@pytest.mark.filterwarnings("ignore:Async generator 'http(x|core)\\.:ResourceWarning")
async def test_streamed_body_over_the_cap_stops_reading(
    http: httpx.AsyncClient, nursery: trio.Nursery, served: Served
) -> None:
    media = await serve_elsewhere(nursery)
    client = twilio(http, served, media_origins=(media.url,))
    got = await client.download(image(f"{media.url}/stream/10000"), max_bytes=10000)
    assert got.content == b"x" * 10000
    with pytest.raises(MediaTooLarge):
        await client.download(image(f"{media.url}/stream/50000000"), max_bytes=10000)


async def test_twilio_declared_content_length_over_the_cap(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png")
    url = served.sandbox.twilio_media_url(f"{served.url}/twilio", media_id)
    with pytest.raises(MediaTooLarge):
        await twilio(http, served).download(image(url), max_bytes=100)


async def test_unreachable_media_host_is_transient(http: httpx.AsyncClient) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens on this port now
    base = f"http://127.0.0.1:{port}"
    client = TwilioClient(
        http, TwilioConfig(account_sid="AC1", auth_token=SecretStr("t"), base_url=base)
    )
    with pytest.raises(SendTransient):
        await client.download(image(f"{base}/media"), max_bytes=100)


# --- Telegram --------------------------------------------------------------------------------


async def test_telegram_download_uses_get_file_then_the_file_path(
    served: Served, http: httpx.AsyncClient
) -> None:
    file_id = served.sandbox.add_media(PNG, "image/png")
    got = await telegram(http, served).download(image(file_id), max_bytes=len(PNG))
    assert got.content == PNG
    assert got.mime_type == "image/png"


async def test_telegram_declared_file_size_over_the_cap(
    served: Served, http: httpx.AsyncClient
) -> None:
    file_id = served.sandbox.add_media(PNG, "image/png")
    client = telegram(http, served)
    with pytest.raises(MediaTooLarge):
        await client.download(image(file_id, size=10**9), max_bytes=1000)  # from the webhook
    with pytest.raises(MediaTooLarge):
        await client.download(image(file_id), max_bytes=1000)  # from getFile


async def test_telegram_unknown_file_and_wrong_token(
    served: Served, http: httpx.AsyncClient
) -> None:
    with pytest.raises(MediaUnavailable):
        await telegram(http, served).download(image("nope"), max_bytes=1000)
    file_id = served.sandbox.add_media(PNG, "image/png")
    with pytest.raises(SendRejected) as caught:
        await telegram(http, served, bot_token=SecretStr("1:bad")).download(
            image(file_id), max_bytes=10**6
        )
    assert "1:bad" not in str(caught.value)


def test_the_declared_digest_is_read_as_hex_or_base64() -> None:
    digest = hashlib.sha256(PNG).digest()
    standard = base64.b64encode(digest).decode()
    for written in (
        digest.hex(),
        digest.hex().upper(),
        standard,
        standard.rstrip("="),
        base64.urlsafe_b64encode(digest).decode(),
        f" {standard} ",
    ):
        assert declared_digest(written) == digest, written
    for unreadable in ("", "not a digest", digest.hex()[:-2], base64.b64encode(b"short").decode()):
        assert declared_digest(unreadable) is None, unreadable
