"""The Viber client against the sandbox Viber over real HTTP: sends (text, picture with its
caption, file with its size), the provider's limits and status codes classified into the
shared ladder, downloads of a callback's media URL."""

from __future__ import annotations

import httpx
import pytest
import trio
from pydantic import SecretStr

from channels import (
    Channel,
    MediaHostForbidden,
    MediaKind,
    MediaRef,
    OutboundMedia,
    RecipientUnavailable,
    SendInDoubt,
    SendRateLimited,
    SendRejected,
    SendTransient,
    ThreadKey,
    ViberClient,
    ViberConfig,
)
from channels.sandbox import SandboxFailure

from .conftest import Served, answering
from .test_media import PNG

USER = "xy5/5y6O81+/kbWHpLhBoA=="
KEY = ThreadKey(channel=Channel.VIBER, account="default", customer=USER)


def client(http: httpx.AsyncClient, served: Served, **overrides: object) -> ViberClient:
    values: dict[str, object] = {
        "auth_token": SecretStr(served.sandbox.credentials.viber_auth_token),
        "bot_name": "Shop",
        "base_url": f"{served.url}/viber",
        **overrides,
    }
    return ViberClient(http, ViberConfig.model_validate(values))


async def test_a_text_goes_out_from_the_bot_and_its_token_is_exact(
    served: Served, http: httpx.AsyncClient
) -> None:
    token = await client(http, served).send_text(KEY, "Hello from the shop")
    assert int(token) > 2**53
    (sent,) = served.sandbox.sent(Channel.VIBER)
    assert (sent.to, sent.account, sent.text, sent.message_id) == (
        USER, "Shop", "Hello from the shop", token,
    )  # fmt: skip


async def test_a_picture_carries_its_caption_and_a_file_its_size_and_name(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png", "receipt.png")
    url = served.sandbox.viber_media_url(f"{served.url}/viber", media_id)
    viber = client(http, served)
    picture = OutboundMedia(mime_type="image/png", url=url)
    assert viber.caption_fits(KEY, picture, "x" * 768)
    assert not viber.caption_fits(KEY, picture, "x" * 769)
    await viber.send_media(KEY, picture, caption="your receipt")
    document = OutboundMedia(mime_type="application/pdf", url=url, filename="receipt.pdf")
    assert not viber.caption_fits(KEY, document, "a caption")
    await viber.send_media(KEY, document)
    image, file = served.sandbox.sent(Channel.VIBER)
    assert (image.type, image.text, image.media_url) == ("image", "your receipt", url)
    assert (file.type, file.filename, file.text) == ("document", "receipt.pdf", None)


async def test_media_without_a_url_is_refused_before_sending(
    served: Served, http: httpx.AsyncClient
) -> None:
    with pytest.raises(SendRejected, match="by public URL only"):
        await client(http, served).send_media(
            KEY, OutboundMedia(mime_type="image/png", content=PNG)
        )
    assert served.sandbox.sent() == []


@pytest.mark.parametrize(
    ("failure", "error", "code"),
    [
        (SandboxFailure.BLOCKED, RecipientUnavailable, 6),
        (SandboxFailure.RATE_LIMITED, SendRateLimited, 12),
        (SandboxFailure.SERVER_ERROR, SendTransient, 99),
    ],
)
async def test_a_refusal_answered_with_http_200_is_classified_by_its_status(
    served: Served,
    http: httpx.AsyncClient,
    failure: SandboxFailure,
    error: type[Exception],
    code: int,
) -> None:
    served.sandbox.fail(Channel.VIBER, USER, failure, times=1)
    with pytest.raises(error) as raised:
        await client(http, served).send_text(KEY, "hi")
    assert getattr(raised.value, "code", None) == code
    assert served.sandbox.sent() == []


async def test_an_unsubscribed_user_and_a_wrong_token_are_refused_for_good(
    served: Served, http: httpx.AsyncClient
) -> None:
    served.sandbox.viber_unsubscribe(USER)
    with pytest.raises(RecipientUnavailable, match="not subscribed to the bot"):
        await client(http, served).send_text(KEY, "hi")
    served.sandbox.viber_subscribe(USER)
    wrong = client(http, served, auth_token=SecretStr("not-the-bot-token"))
    with pytest.raises(SendRejected, match="error 2: the auth token is invalid"):
        await wrong.send_text(KEY, "hi")
    await client(http, served).send_text(KEY, "hi")
    assert [m.text for m in served.sandbox.sent()] == ["hi"]


async def test_the_sandbox_enforces_viber_s_limits(served: Served, http: httpx.AsyncClient) -> None:
    viber = client(http, served)
    with pytest.raises(SendRejected, match="error 3"):  # 7,000 characters at most
        await viber.send_text(KEY, "x" * 7001)
    longest = client(http, served, bot_name="x" * 28)
    await longest.send_text(KEY, "a 28-character sender name is fine")
    token = served.sandbox.credentials.viber_auth_token
    answer = await http.post(
        f"{served.url}/viber/pa/send_message",
        json={"receiver": USER, "type": "text", "text": "hi", "sender": {"name": "x" * 29}},
        headers={"X-Viber-Auth-Token": token},
    )
    assert (answer.status_code, answer.json()["status"]) == (200, 3)
    answer = await http.post(
        f"{served.url}/viber/pa/send_message",
        json={"receiver": USER, "type": "text", "text": "hi"},  # no sender
        headers={"X-Viber-Auth-Token": token},
    )
    assert answer.json()["status"] == 4
    assert len(served.sandbox.sent()) == 1


async def test_a_callback_s_media_url_is_downloaded_from_allowed_origins_only(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png")
    url = served.sandbox.viber_media_url(f"{served.url}/viber", media_id)
    viber = client(http, served)
    got = await viber.download(MediaRef(kind=MediaKind.IMAGE, ref=url), max_bytes=10**6)
    assert (got.content, got.mime_type) == (PNG, "image/png")
    elsewhere = MediaRef(kind=MediaKind.IMAGE, ref="https://attacker.example/x.png")
    with pytest.raises(MediaHostForbidden):
        await viber.download(elsewhere, max_bytes=10**6)


@pytest.mark.parametrize(
    "answer",
    [b"<html>upstream hiccup</html>", b'{"status": 0, "status_message": "ok"}'],
    ids=["unreadable", "ok-without-token"],
)
async def test_a_send_answered_200_without_a_token_is_in_doubt_not_retried(
    nursery: trio.Nursery, http: httpx.AsyncClient, answer: bytes
) -> None:
    """Viber answers 200 also for a message it accepted: an answer the client cannot read
    may be for a sent message, so it must not be taken as "nothing went out" (transient),
    which would send it again."""
    viber, url = await answering(nursery, answer)
    config = ViberConfig(auth_token=SecretStr("t"), bot_name="Shop", base_url=url)
    with pytest.raises(SendInDoubt):
        await ViberClient(http, config).send_text(KEY, "hi")
    assert viber.requests == 1


async def test_a_send_whose_answer_times_out_is_in_doubt(nursery: trio.Nursery) -> None:
    viber, url = await answering(nursery, b'{"status": 0, "message_token": 1}', delay=2.0)
    config = ViberConfig(auth_token=SecretStr("t"), bot_name="Shop", base_url=url)
    async with httpx.AsyncClient(timeout=0.5) as http:
        with pytest.raises(SendInDoubt):
            await ViberClient(http, config).send_text(KEY, "hi")
    assert viber.requests == 1
