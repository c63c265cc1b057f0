"""Messenger and Instagram clients against the sandbox Send API over real HTTP, and the Graph
error ladder: the window (24 hours, then HUMAN_AGENT up to 7 days), the token, failures, CDN
media that expires, and the download allow-list."""

from __future__ import annotations

import json
import time
import tracemalloc

import httpx
import pytest
import trio
from pydantic import SecretStr

from channels import (
    Channel,
    InstagramSettings,
    MediaHostForbidden,
    MediaKind,
    MediaRef,
    MediaUnavailable,
    MessengerSettings,
    MetaMessagingClient,
    OutboundMedia,
    OutsideCustomerWindow,
    PayloadInvalid,
    RecipientUnavailable,
    SendInDoubt,
    SendRateLimited,
    SendRejected,
    SendTransient,
    ThreadKey,
    channel_spec,
    classify_instagram_error,
    classify_messenger_error,
    parse_instagram,
    parse_messenger,
)
from channels.sandbox import ProviderSandbox, SandboxCredentials, SandboxFailure
from runtime import hypercorn_config, serve_asgi

from .conftest import Served, answering

PAGE, PSID = "682498302938465", "5550001111000001"
HOUR = 3600.0
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 100


def client(
    served: Served,
    http: httpx.AsyncClient,
    channel: Channel = Channel.MESSENGER,
    human_agent: bool = True,
) -> MetaMessagingClient:
    """The registry's client for ``channel``, pointed at the sandbox with its token."""
    token = SecretStr(served.sandbox.credentials.meta_token(channel))
    base = f"{served.url}/{channel.value}/v21.0"
    view: MessengerSettings | InstagramSettings
    if channel is Channel.MESSENGER:
        view = MessengerSettings(page_access_token=token, base_url=base, human_agent=human_agent)
    else:
        view = InstagramSettings(access_token=token, base_url=base, human_agent=human_agent)
    made = channel_spec(channel).client(http, view)
    assert isinstance(made, MetaMessagingClient)
    return made


@pytest.fixture
async def served_without_permission(nursery: trio.Nursery) -> Served:
    sandbox = ProviderSandbox(SandboxCredentials(meta_human_agent=False))
    addr = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
    return Served(sandbox, addr.url)


def key(channel: Channel = Channel.MESSENGER, customer: str = PSID) -> ThreadKey:
    return ThreadKey(channel=channel, account=PAGE, customer=customer)


async def test_text_within_24_hours_goes_as_a_response(
    served: Served, http: httpx.AsyncClient
) -> None:
    served.sandbox.meta_customer_wrote(Channel.MESSENGER, PAGE, PSID, time.time() - 60)
    message_id = await client(served, http).send_text(key(), "hello")
    (sent,) = served.sandbox.sent()
    assert (sent.message_id, sent.to, sent.text, sent.tag) == (message_id, PSID, "hello", None)


async def test_past_24_hours_a_reply_goes_tagged_and_past_7_days_not_at_all(
    served: Served, http: httpx.AsyncClient
) -> None:
    sandbox = served.sandbox
    sandbox.meta_customer_wrote(Channel.MESSENGER, PAGE, PSID, time.time() - 30 * HOUR)
    await client(served, http).send_text(key(), "late but human")
    assert [m.tag for m in sandbox.sent()] == ["HUMAN_AGENT"]
    with pytest.raises(OutsideCustomerWindow):  # not allowed to tag: refused as Meta answers
        await client(served, http, human_agent=False).send_text(key(), "tagless")
    other = "5550001111000002"
    sandbox.meta_customer_wrote(Channel.MESSENGER, PAGE, other, time.time() - 8 * 24 * HOUR)
    with pytest.raises(OutsideCustomerWindow) as closed:
        await client(served, http).send_text(key(customer=other), "too late")
    assert closed.value.code == 10
    assert len(sandbox.sent()) == 1


async def test_without_the_human_agent_permission_the_tagged_send_is_refused(
    http: httpx.AsyncClient, served_without_permission: Served
) -> None:
    served = served_without_permission
    served.sandbox.meta_customer_wrote(Channel.MESSENGER, PAGE, PSID, time.time() - 30 * HOUR)
    with pytest.raises(SendRejected) as refused:
        await client(served, http).send_text(key(), "needs the permission")
    assert refused.value.code == 200


async def test_instagram_window_and_limit(served: Served, http: httpx.AsyncClient) -> None:
    ig = key(Channel.INSTAGRAM, "1789")
    served.sandbox.meta_customer_wrote(Channel.INSTAGRAM, PAGE, "1789", time.time() - 10)
    ig_client = client(served, http, Channel.INSTAGRAM)
    await ig_client.send_text(ig, "x" * 1000)
    with pytest.raises(SendRejected):  # the sandbox refuses what the bridge must split
        await ig_client.send_text(ig, "x" * 1001)
    served.sandbox.meta_customer_wrote(Channel.INSTAGRAM, PAGE, "1790", time.time() - 9 * 86400)
    with pytest.raises(OutsideCustomerWindow) as closed:
        await ig_client.send_text(key(Channel.INSTAGRAM, "1790"), "late")
    assert closed.value.status == 403


async def test_attachment_by_url_and_scripted_failures(
    served: Served, http: httpx.AsyncClient
) -> None:
    sandbox = served.sandbox
    sandbox.meta_customer_wrote(Channel.MESSENGER, PAGE, PSID, time.time())
    media_id = sandbox.add_media(PNG, "image/png", "a.png")
    url = sandbox.meta_media_url(served.url, Channel.MESSENGER, media_id)
    meta = client(served, http)
    await meta.send_media(key(), OutboundMedia(mime_type="image/png", url=url))
    assert [(m.type, m.media_url, m.mime_type) for m in sandbox.sent()] == [
        ("image", url, "image/png")
    ]
    assert not meta.caption_fits(key(), OutboundMedia(mime_type="image/png", url=url), "hi")
    with pytest.raises(SendRejected):  # Meta cannot fetch it
        await meta.send_media(
            key(), OutboundMedia(mime_type="application/pdf", url=f"{served.url}/nowhere.pdf")
        )
    for failure, error in (
        (SandboxFailure.BLOCKED, RecipientUnavailable),
        (SandboxFailure.RATE_LIMITED, SendRateLimited),
        (SandboxFailure.SERVER_ERROR, SendTransient),
    ):
        sandbox.fail(Channel.MESSENGER, PSID, failure, times=1)
        with pytest.raises(error):
            await meta.send_text(key(), "scripted")


async def test_a_wrong_token_is_rejected_without_leaking_it(
    served: Served, http: httpx.AsyncClient
) -> None:
    base = f"{served.url}/messenger/v21.0"
    view = MessengerSettings(page_access_token=SecretStr("EAAG-wrong-token-1234"), base_url=base)
    meta = channel_spec(Channel.MESSENGER).client(http, view)
    with pytest.raises(SendRejected) as refused:
        await meta.send_text(key(), "hello")
    assert refused.value.code == 190
    assert "EAAG-wrong-token" not in str(refused.value)


async def test_cdn_media_downloads_until_it_expires(
    served: Served, http: httpx.AsyncClient
) -> None:
    sandbox = served.sandbox
    media_id = sandbox.add_media(PNG, "image/png")
    meta = client(served, http)
    fresh = sandbox.meta_media_url(served.url, Channel.MESSENGER, media_id)
    got = await meta.download(MediaRef(kind=MediaKind.IMAGE, ref=fresh), max_bytes=10_000)
    assert (got.content, got.mime_type) == (PNG, "image/png")
    expired = sandbox.meta_media_url(
        served.url, Channel.MESSENGER, media_id, expires_at=time.time() - 1
    )
    with pytest.raises(MediaUnavailable):
        await meta.download(MediaRef(kind=MediaKind.IMAGE, ref=expired), max_bytes=10_000)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/x.png",
        "http://scontent.xx.fbcdn.net/v/x.png",  # not https
        "https://scontent.xx.fbcdn.net.evil.example/v/x.png",
        "https://notfbcdn.net/v/x.png",
        "https://scontent.xx.fbcdn.net:8443/v/x.png",
        "file:///etc/passwd",
        # Punycode that httpx parses but cannot decode (IDNA): refused, not a ValueError.
        "https://xn--ls8h.fbcdn.net/v/x.png",
        "https://xn--zz.fbcdn.net/v/x.png",
    ],
)
async def test_media_outside_the_allow_list_is_never_fetched(
    served: Served, http: httpx.AsyncClient, url: str
) -> None:
    with pytest.raises(MediaHostForbidden):
        await client(served, http).download(MediaRef(kind=MediaKind.IMAGE, ref=url), max_bytes=10)


def response(status: int, error: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error}, headers=headers)


def test_graph_errors_climb_the_ladder_by_code_and_subcode() -> None:
    permission = response(
        400, {"message": "(#10) Application does not have permission", "code": 10}
    )
    assert type(classify_messenger_error(permission)) is SendRejected  # code 10, no window
    ig_window = response(403, {"code": 10, "error_subcode": 2534022})
    assert type(classify_messenger_error(ig_window)) is SendRejected  # Instagram's subcode
    assert type(classify_instagram_error(ig_window)) is OutsideCustomerWindow
    no_user = response(400, {"code": 100, "error_subcode": 2018001})
    assert type(classify_messenger_error(no_user)) is RecipientUnavailable
    usage = '{"682498302938465": [{"type": "pages", "estimated_time_to_regain_access": 5}]}'
    throttled = classify_messenger_error(
        response(400, {"code": 613}, **{"x-business-use-case-usage": usage})
    )
    assert isinstance(throttled, SendRateLimited)
    assert throttled.retry_after == 300
    assert type(classify_messenger_error(httpx.Response(502, text="<html>"))) is SendTransient
    assert type(classify_messenger_error(response(400, {"code": 2}))) is SendTransient


@pytest.mark.parametrize("answer", [b"<html>upstream hiccup</html>", b'{"recipient_id": "1"}'])
async def test_a_send_accepted_with_an_unreadable_answer_is_in_doubt_not_retried(
    nursery: trio.Nursery, http: httpx.AsyncClient, answer: bytes
) -> None:
    """A 2xx is Meta accepting the message: an answer without its ``message_id`` is not
    "nothing went out" (transient), which would send it again."""
    meta, url = await answering(nursery, answer)
    view = MessengerSettings(page_access_token=SecretStr("t"), base_url=url)
    messenger = channel_spec(Channel.MESSENGER).client(http, view)
    with pytest.raises(SendInDoubt):
        await messenger.send_text(key(), "hello")
    assert meta.requests == 1


async def test_a_send_whose_answer_times_out_is_in_doubt(nursery: trio.Nursery) -> None:
    meta, url = await answering(nursery, b'{"message_id": "m.1"}', delay=2.0)
    view = InstagramSettings(access_token=SecretStr("t"), base_url=url)
    async with httpx.AsyncClient(timeout=0.5) as http:
        instagram = channel_spec(Channel.INSTAGRAM).client(http, view)
        with pytest.raises(SendInDoubt):
            await instagram.send_text(key(Channel.INSTAGRAM), "hello")
    assert meta.requests == 1


# --- a signed body of many tiny items costs about its own size --------------------------------


def _peak_bytes(parse: object, body: bytes) -> tuple[int, object]:
    """Python's peak allocation while ``parse(body)`` runs, and its result or exception."""
    assert callable(parse)
    tracemalloc.start()
    try:
        result: object = parse(body)
    except PayloadInvalid as exc:
        result = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, result


def _envelope(obj: str, entries: list[object]) -> bytes:
    return json.dumps({"object": obj, "entry": entries}, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("parse", "obj"), [(parse_messenger, "page"), (parse_instagram, "instagram")]
)
def test_a_megabyte_of_invalid_items_is_refused_for_the_first_one(parse: object, obj: str) -> None:
    # Every item invalid: validation used to collect (and describe) all 500,000 errors, seconds
    # and over 500 MB for one 1 MB body; now the first one ends it.
    body = _envelope(obj, [1] * 500_000)
    peak, result = _peak_bytes(parse, body)
    assert isinstance(result, PayloadInvalid)
    assert "more)" not in result.reason  # one error, not "(and 499999 more)"
    assert peak < 40 * len(body)


def test_many_ignored_changes_are_one_event_per_entry() -> None:
    entries: list[object] = [{"id": PAGE, "changes": [{"field": "feed"}] * 999} for _ in range(30)]
    events = parse_messenger(_envelope("page", entries))
    assert len(events) == 30
    assert all(e.kind == "ignored" for e in events)
    assert "'feed' (and 998 more)" in events[0].reason  # type: ignore[union-attr]


def test_a_body_naming_too_many_delivered_messages_is_refused_before_they_are_built() -> None:
    delivery = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE},
        "delivery": {"mids": [f"m{i}" for i in range(999)]},
    }
    entries: list[object] = [{"id": PAGE, "messaging": [delivery]} for _ in range(100)]
    body = _envelope("page", entries)
    peak, result = _peak_bytes(parse_messenger, body)
    assert isinstance(result, PayloadInvalid)
    assert "over 10000 events" in result.reason
    assert peak < 40 * len(body)
    within = _envelope("page", entries[:10])  # 9,990 receipts: a batch Meta could send
    assert len(parse_messenger(within)) == 9_990
