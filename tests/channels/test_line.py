"""LINE (issue 21): signature vectors, error fixtures on the shared ladder, the client against the
sandbox LINE over real HTTP (reply while the token is fresh, one push otherwise, the recorded
request shapes), content downloads, and garbage into the parser."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from channels import (
    Channel,
    ChannelError,
    LineClient,
    LineConfig,
    MediaHostForbidden,
    MediaKind,
    MediaRef,
    OutboundMedia,
    PayloadInvalid,
    PayloadTooLarge,
    ReplyToken,
    SendInDoubt,
    SendRateLimited,
    SendRejected,
    SendTransient,
    SignatureInvalid,
    ThreadKey,
    classify_line_error,
    line_signature,
    parse_line,
    replying_with,
    sending_as,
    verify_line_signature,
)
from channels.sandbox import SandboxFailure, line_event, line_events_webhook

from .conftest import Served, fixtures_dir

USER = "U206d25c2ea6bd87c17655609a1c37cb8"
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 2048


def _load(name: str) -> dict[str, Any]:
    data = json.loads((fixtures_dir() / "line" / name).read_text())
    assert isinstance(data, dict)
    return data


def key(served: Served, customer: str = USER) -> ThreadKey:
    bot = served.sandbox.credentials.line_bot_user_id
    return ThreadKey(channel=Channel.LINE, account=bot, customer=customer)


def line(http: httpx.AsyncClient, served: Served, token: str | None = None) -> LineClient:
    access = token or served.sandbox.credentials.line_channel_access_token
    config = LineConfig(
        channel_access_token=SecretStr(access),
        base_url=f"{served.url}/line",
        data_base_url=f"{served.url}/line-data",
    )
    return LineClient(http, config)


def issue(served: Served, customer: str = USER, age: float = 0.0) -> ReplyToken:
    """A reply token the sandbox LINE issued ``age`` seconds ago, as the bridge keeps it."""
    webhook = served.sandbox.line_message(
        "secret-of-the-channel", user_id=customer, message_id="1", text="hi"
    )
    (event,) = json.loads(webhook.body)["events"]
    return ReplyToken(event["replyToken"], customer, time.time() - age)


# --- signatures ---------------------------------------------------------------------------------


def test_line_signature_vectors() -> None:
    data = _load("signature_vectors.json")
    for vector in [*data["published_vectors"], *data["vectors"]]:
        body, secret = vector["raw_body"].encode(), vector["channel_secret"]
        header = vector["header_value"]
        if vector["expected_valid"]:
            assert line_signature(body, secret) == header
            verify_line_signature(body, header, secret)
            with pytest.raises(SignatureInvalid):
                verify_line_signature(body, header, secret + "x")
            with pytest.raises(SignatureInvalid):
                verify_line_signature(body + b" ", header, secret)
        else:
            with pytest.raises(SignatureInvalid):
                verify_line_signature(body, header, secret)
    with pytest.raises(SignatureInvalid):
        verify_line_signature(b"{}", None, "channel_secret")


@given(body=st.binary(max_size=300), secret=st.text(min_size=1, max_size=40))
def test_line_signature_round_trip_and_any_other_secret_fails(body: bytes, secret: str) -> None:
    verify_line_signature(body, line_signature(body, secret), secret)
    with pytest.raises(SignatureInvalid):
        verify_line_signature(body, line_signature(body, secret + "0"), secret)


# --- garbage in -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
event_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "follow", "unfollow", "postback", "x"]) | json_values,
        "mode": st.sampled_from(["active", "standby"]) | json_values,
        "timestamp": st.integers(min_value=-10, max_value=2**64) | json_values,
        "source": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["user", "group", "room"]) | json_values,
                "userId": st.sampled_from([USER, "", "a:b", "U" * 200]) | json_values,
                "groupId": json_values,
            },
        )
        | json_values,
        "replyToken": json_values,
        "message": st.fixed_dictionaries(
            {},
            optional={
                "id": st.sampled_from(["1", "", "." * 2 + "/x", "1/2"]) | json_values,
                "type": st.sampled_from(["text", "image", "file", "location", "sticker"]),
                "text": json_values,
                "fileName": json_values,
                "fileSize": json_values,
                "latitude": json_values,
                "longitude": json_values,
                "contentProvider": json_values,
            },
        )
        | json_values,
        "follow": json_values,
        "unsend": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"destination": st.sampled_from(["U123", "", "a:b"]) | json_values},
        optional={"events": st.lists(event_fields, max_size=3) | json_values},
    ).map(lambda v: json.dumps(v).encode()),
)


@given(body=bodies)
def test_garbage_is_parsed_or_refused_as_a_payload_never_anything_else(body: bytes) -> None:
    try:
        events = parse_line(body, max_bytes=4096, groups="per-member")
    except (PayloadInvalid, PayloadTooLarge):
        return
    for event in events:
        assert event.kind in ("message", "ignored")
        if event.kind == "message":
            assert ":" not in event.key.account
            assert event.key.customer


def test_an_oversize_body_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_line(b"{" * 5000, max_bytes=4096)


def test_the_consoles_verify_request_has_no_events() -> None:
    assert parse_line(b'{"destination":"U123","events":[]}') == []


def test_groups_per_member_bridges_a_named_member_without_the_reply_token() -> None:
    event = line_event("message", USER, reply_token="t", message={"id": "9", "type": "text"})
    event["source"] = {"type": "group", "groupId": "Cgroup", "userId": USER}
    event["message"] = {"id": "9", "type": "text", "text": "hi all"}
    body = line_events_webhook("s", "U123", [event]).body
    (ignored,) = parse_line(body)
    assert ignored.kind == "ignored"
    (message,) = parse_line(body, groups="per-member")
    assert message.kind == "message"
    assert (message.key.customer, message.group, message.reply_token) == (
        USER,
        "group Cgroup",
        None,
    )


# --- errors on the shared ladder -----------------------------------------------------------------

ERRORS: dict[str, type[ChannelError]] = {
    "error_invalid_token.json": SendRejected,
    "error_monthly_limit.json": SendRejected,
    "error_rate_limit.json": SendRateLimited,
    "error_validation.json": SendRejected,
    # The client answers it by pushing; were it ever classified, it is not retried.
    "error_invalid_reply_token.json": SendRejected,
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_line_error_fixture_is_classified(name: str) -> None:
    fixture = _load(name)
    response = httpx.Response(fixture["status"], json=fixture["json"])
    error = classify_line_error(response)
    assert type(error) is ERRORS[name]
    assert error.status == fixture["status"]
    assert str(fixture["json"]["message"]) in str(error)


def test_a_spent_monthly_quota_is_not_retried_but_a_5xx_is() -> None:
    spent = classify_line_error(_response(429, "You have reached your monthly limit."))
    assert not spent.transient
    assert classify_line_error(_response(500, "Internal server error")).transient
    assert classify_line_error(_response(429, "The API rate limit has been exceeded.")).transient


def _response(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message})


# --- the client against the sandbox LINE ---------------------------------------------------------


def _recorder(http: httpx.AsyncClient) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    http.event_hooks["request"].append(hook)
    return seen


async def test_line_send_matches_the_fixture(served: Served, http: httpx.AsyncClient) -> None:
    seen = _recorder(http)
    client = line(http, served)
    token = issue(served)
    with replying_with(token):
        message_id = await client.send_text(key(served), "Simple Message")
    assert token.used
    reply = _load("send_reply_text.json")["request"]
    assert seen[-1].url.path.endswith("/v2/bot/message/reply")
    assert json.loads(seen[-1].content) == {**reply["json"], "replyToken": token.token}
    assert seen[-1].headers["authorization"].startswith("Bearer ")
    (sent,) = served.sandbox.sent(Channel.LINE)
    assert (sent.message_id, sent.via, sent.text) == (message_id, "reply", "Simple Message")

    media_id = served.sandbox.add_media(PNG, "image/png")
    token_path = f"bot{served.sandbox.credentials.telegram_bot_token}"
    url = f"{served.url}/telegram/file/{token_path}/media/{media_id}"
    image = OutboundMedia(mime_type="image/png", url=url)
    await client.send_media(key(served), image, caption="This is a longer message")
    push = _load("send_push_image_and_text.json")["request"]
    body = json.loads(seen[-1].content)
    assert seen[-1].url.path.endswith("/v2/bot/message/push")
    assert [m["type"] for m in body["messages"]] == [m["type"] for m in push["json"]["messages"]]
    assert body["messages"][0]["originalContentUrl"] == url
    assert body["messages"][1] == push["json"]["messages"][1]
    assert seen[-1].headers["x-line-retry-key"]
    assert [(m.via, m.type) for m in served.sandbox.sent(Channel.LINE)[1:]] == [
        ("push", "image"),
        ("push", "text"),
    ]


async def test_a_refused_reply_token_is_pushed_exactly_once(
    served: Served, http: httpx.AsyncClient
) -> None:
    served.sandbox.line_reply_token_seconds = 0.0  # every token LINE issued is expired
    token = issue(served)
    with replying_with(token):
        await line(http, served).send_text(key(served), "late answer")
        await line(http, served).send_text(key(served), "and more")
    assert [(m.via, m.text) for m in served.sandbox.sent(Channel.LINE)] == [
        ("push", "late answer"),
        ("push", "and more"),
    ]
    assert served.sandbox.line_invalid_replies() == [token.token]  # tried once only


async def test_an_old_or_foreign_token_is_not_tried(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = line(http, served)
    with replying_with(issue(served, age=120.0)):
        await client.send_text(key(served), "old")
    with replying_with(issue(served, customer="U" + "0" * 32)):
        await client.send_text(key(served), "someone else's")
    assert [m.via for m in served.sandbox.sent(Channel.LINE)] == ["push", "push"]
    assert served.sandbox.line_invalid_replies() == []


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (SandboxFailure.RATE_LIMITED, SendRateLimited),
        (SandboxFailure.SERVER_ERROR, SendTransient),
        (SandboxFailure.QUOTA_SPENT, SendRejected),
    ],
)
async def test_push_failures_are_classified(
    served: Served, http: httpx.AsyncClient, failure: SandboxFailure, error: type[ChannelError]
) -> None:
    served.sandbox.fail(Channel.LINE, USER, failure, times=1)
    with pytest.raises(error):
        await line(http, served).send_text(key(served), "hello")
    assert served.sandbox.sent(Channel.LINE) == []


async def test_the_sandbox_enforces_the_text_limit_and_the_token(
    served: Served, http: httpx.AsyncClient
) -> None:
    with pytest.raises(SendRejected, match="5000"):
        await line(http, served).send_text(key(served), "x" * 5001)
    with pytest.raises(SendRejected, match="HTTP 401"):
        await line(http, served, token="not-the-token").send_text(key(served), "hi")
    await line(http, served).send_text(key(served), "x" * 5000)
    assert len(served.sandbox.sent(Channel.LINE)) == 1


async def test_a_file_that_is_not_an_image_goes_as_its_link(
    served: Served, http: httpx.AsyncClient
) -> None:
    pdf = OutboundMedia(
        mime_type="application/pdf", filename="invoice.pdf", url="https://files.example/i.pdf"
    )
    await line(http, served).send_media(key(served), pdf)
    (sent,) = served.sandbox.sent(Channel.LINE)
    assert (sent.type, sent.text) == ("text", "📎 invoice.pdf: https://files.example/i.pdf")


async def test_content_is_downloaded_with_the_token_from_the_data_host(
    served: Served, http: httpx.AsyncClient
) -> None:
    media_id = served.sandbox.add_media(PNG, "image/png")
    ref = MediaRef(kind=MediaKind.IMAGE, ref=media_id, mime_type="image/jpeg")
    got = await line(http, served).download(ref, max_bytes=10_000)
    assert got.content == PNG
    assert got.mime_type == "image/png"
    with pytest.raises(ChannelError):
        await line(http, served, token="not-the-token").download(ref, max_bytes=10_000)
    with pytest.raises(ChannelError):
        await line(http, served).download(ref, max_bytes=100)


async def test_a_retried_push_is_not_sent_twice(served: Served, http: httpx.AsyncClient) -> None:
    # LINE took the push but answered 500: the retry of the same send (the same SEND_ID) carries
    # the same X-Line-Retry-Key, which LINE answers 409: sent already.
    served.sandbox.fail(Channel.LINE, USER, SandboxFailure.ACCEPTED_THEN_ERROR, times=1)
    client = line(http, served)
    with sending_as("thread|steps:1|text:0"):
        with pytest.raises(SendTransient):
            await client.send_text(key(served), "once")
        await client.send_text(key(served), "once")
    assert [m.text for m in served.sandbox.sent(Channel.LINE)] == ["once"]
    with sending_as("thread|steps:2|text:0"):  # another send: another key
        await client.send_text(key(served), "once")
    assert len(served.sandbox.sent(Channel.LINE)) == 2


async def test_a_reply_answered_5xx_is_in_doubt_and_never_pushed(
    served: Served, http: httpx.AsyncClient
) -> None:
    # A reply has no retry key: after a 5xx it may have gone out, and a retry would find the
    # token used and push the message again.
    token = issue(served)
    served.sandbox.fail(Channel.LINE, USER, SandboxFailure.SERVER_ERROR, times=1)
    with replying_with(token), pytest.raises(SendInDoubt):
        await line(http, served).send_text(key(served), "maybe sent")
    assert token.used
    assert served.sandbox.sent(Channel.LINE) == []


async def test_external_content_must_be_https(served: Served, http: httpx.AsyncClient) -> None:
    ref = MediaRef(kind=MediaKind.VIDEO, ref=f"{served.url}/line-data/x", mime_type="video/mp4")
    with pytest.raises(MediaHostForbidden):
        await line(http, served).download(ref, max_bytes=10_000)
