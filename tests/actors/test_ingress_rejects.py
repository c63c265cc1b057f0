"""Bad input on every route gets its documented 4xx and changes nothing (docs/architecture.md
§4)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from actors.tools import PUBLIC_URL, SANDBOX_SECRETS, Stack
from channels import twilio_signature
from tests.quirks import HTTPX_3686


def wa_sig(body: bytes, secret: str = SANDBOX_SECRETS.whatsapp_app_secret) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def ic_sig(body: bytes, secret: str = SANDBOX_SECRETS.intercom_client_secret) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


async def nothing_journaled(stack: Stack) -> None:
    assert await stack.node.journal.read_pending(after_id=0, limit=10) == []
    assert await stack.node.journal.dead_letters() == []


JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
TG_SECRET = "x-telegram-bot-api-secret-token"
TG = {**JSON, TG_SECRET: "sandbox-telegram-secret"}
API = {**JSON, "authorization": "Bearer sandbox-api-token"}
Case = tuple[str, bytes, dict[str, str], int]


def wa(body: bytes, *, secret: str | None = None, ctype: str = "application/json") -> Case:
    """A WhatsApp request correctly signed (or with ``secret``) that must still fail with 400."""
    signature = wa_sig(body, secret or SANDBOX_SECRETS.whatsapp_app_secret)
    return (
        "/webhooks/whatsapp",
        body,
        {"content-type": ctype, "x-hub-signature-256": signature},
        400,
    )


def ic(body: bytes) -> Case:
    return ("/webhooks/intercom", body, {**JSON, "x-hub-signature": ic_sig(body)}, 400)


CASES: list[Case] = [
    # WhatsApp: missing, malformed, wrong signature; then signed garbage
    ("/webhooks/whatsapp", b"{}", JSON, 401),
    ("/webhooks/whatsapp", b"{}", {**JSON, "x-hub-signature-256": "sha256=00"}, 401),
    (*wa(b"{}", secret="wrong")[:3], 401),
    wa(b"{not json"),
    wa(b'{"object": 1}'),
    wa(b"[]"),
    wa(b"{}", ctype="text/plain"),
    # Telegram
    ("/webhooks/telegram", b'{"update_id": 1}', JSON, 401),
    ("/webhooks/telegram", b'{"update_id": 1}', {**TG, TG_SECRET: "no"}, 401),
    ("/webhooks/telegram", b"\xff\xfe", TG, 400),
    ("/webhooks/telegram", b'{"update_id": "x"}', TG, 400),
    ("/webhooks/telegram", b'{"update_id": 1}', {**TG, "content-type": "text/xml"}, 400),
    # Twilio
    ("/webhooks/twilio", b"Body=hi", FORM, 401),
    ("/webhooks/twilio", b"Body=hi", {**FORM, "x-twilio-signature": "bad"}, 401),
    # Intercom
    ("/webhooks/intercom", b"{}", JSON, 401),
    ("/webhooks/intercom", b"{}", {**JSON, "x-hub-signature": "sha1=00"}, 401),
    ic(b"{}"),
    ic(b"nope"),
    # Send API
    ("/api/messages", b"{}", JSON, 401),
    ("/api/messages", b"{}", {**JSON, "authorization": "Bearer wrong"}, 401),
    ("/api/messages", b"{", API, 400),
    ("/api/messages", b'{"channel": "fax"}', API, 400),
    ("/api/messages", b"{}", {**API, "content-type": "text/plain"}, 400),
]


@pytest.mark.parametrize(("path", "body", "headers", "status"), CASES)
async def test_bad_input_gets_its_4xx_and_journals_nothing(
    stack: Stack, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = await stack.http.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.text.strip()  # a one-line reason
    assert "\n" not in response.text.strip()
    await nothing_journaled(stack)


async def test_signed_twilio_with_garbage_params_is_400(stack: Stack) -> None:
    token = stack.sandbox.providers.credentials.twilio_auth_token
    params = [("Body", "no sid, no from")]
    signature = twilio_signature(f"{PUBLIC_URL}/webhooks/twilio", params, token)
    response = await stack.http.post(
        "/webhooks/twilio",
        content=b"Body=no+sid%2C+no+from",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
        },
    )
    assert response.status_code == 400
    await nothing_journaled(stack)


@HTTPX_3686
@pytest.mark.parametrize("path", ["/webhooks/whatsapp", "/webhooks/telegram", "/api/messages"])
async def test_oversize_bodies_are_413(stack: Stack, path: str) -> None:
    big = b"{" + b" " * (stack.settings.max_body_bytes + 10) + b"}"
    response = await stack.http.post(path, content=big, headers=JSON)
    assert response.status_code == 413
    await nothing_journaled(stack)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # httpx#3686
async def test_oversize_chunked_body_is_413(stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 64 * 1024

    response = await stack.http.post("/webhooks/whatsapp", content=chunks(), headers=JSON)
    assert response.status_code == 413
    await nothing_journaled(stack)


async def test_unknown_routes_and_methods(stack: Stack) -> None:
    assert (await stack.http.get("/nope")).status_code == 404
    assert (await stack.http.get("/webhooks/telegram")).status_code == 405
    assert (await stack.http.put("/api/messages")).status_code == 405


async def test_whatsapp_verification_handshake(stack: Stack) -> None:
    ok = await stack.http.get(
        "/webhooks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": SANDBOX_SECRETS.whatsapp_verify_token,
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200
    assert ok.text.strip() == "1158201444"
    wrong = await stack.http.get(
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "no", "hub.challenge": "1"},
    )
    assert wrong.status_code == 403


async def test_health_and_readiness(stack: Stack) -> None:
    assert (await stack.http.get("/healthz")).status_code == 200
    assert (await stack.http.get("/readyz")).status_code == 200


async def test_send_api_starts_a_thread_only_with_a_customer_id_it_can_reach(
    stack: Stack,
) -> None:
    """A customer without a conversation gets one (tests/actors/test_templates_e2e.py), but
    only by a phone number (WhatsApp, SMS) or a Telegram chat id: anything else is 400."""
    for channel, account, customer in [
        ("telegram", "7000000001", "@someone"),
        ("whatsapp", "100000000000001", "not-a-number"),
        ("twilio", "+15550002222", "15550001111"),  # E.164 needs its "+"
    ]:
        response = await stack.http.post(
            "/api/messages",
            content=json.dumps(
                {"channel": channel, "account": account, "customer": customer, "text": "hi"}
            ),
            headers={**JSON, "authorization": "Bearer sandbox-api-token"},
        )
        assert response.status_code == 400, response.text
        assert "customer id" in response.text
    await nothing_journaled(stack)


async def test_channels_without_credentials_answer_404(database_url: str) -> None:
    from actors.tools import open_stack

    async with open_stack(
        database_url=database_url, telegram_bot_token=None, telegram_secret_token=None
    ) as s:
        response = await s.telegram(1, "hi")
        assert response.status_code == 404
        await nothing_journaled(s)


async def test_metrics_endpoint_serves_prometheus_text(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.node.metrics.url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "threadline_webhook_requests_total" in response.text
    assert "threadline_actors_live" in response.text


async def test_oversize_headers_are_refused_by_the_server(stack: Stack) -> None:
    headers = {**JSON, "x-filler": "a" * 20_000}  # over h11's 16 KiB incomplete-event limit
    try:
        response = await stack.http.post("/webhooks/whatsapp", content=b"{}", headers=headers)
    except httpx.RemoteProtocolError:
        pass  # the server closed the connection: also a refusal
    else:
        assert 400 <= response.status_code < 500
    await nothing_journaled(stack)
    assert (await stack.http.get("/readyz")).status_code == 200


async def test_a_slow_client_does_not_hold_the_ingress(stack: Stack) -> None:
    """A client that sends headers and then trickles nothing is cut off; others are served."""
    host, port = stack.node.ingress.host, stack.node.ingress.port
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(
        b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    for _ in range(5):  # meanwhile the ingress answers everyone else
        assert (await stack.http.get("/healthz")).status_code == 200
    await stream.aclose()
    await nothing_journaled(stack)
