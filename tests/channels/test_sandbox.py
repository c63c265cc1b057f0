"""The sandbox app's HTTP control surface, lifespan, and mounting under a prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import trio
from pydantic import SecretStr

from channels import (
    Channel,
    DeliveryStatus,
    MediaKind,
    MediaRef,
    SendRateLimited,
    ThreadKey,
    TwilioClient,
    TwilioConfig,
    WhatsAppClient,
    WhatsAppConfig,
    parse_twilio,
    parse_whatsapp,
    twilio_form_params,
    verify_twilio_signature,
    verify_whatsapp_signature,
)
from channels.sandbox import ProviderSandbox, SandboxFailure
from runtime import hypercorn_config, serve_asgi

from .conftest import Served
from .test_media import PNG

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


async def test_control_endpoints_register_media_script_failures_and_list_sends(
    served: Served, http: httpx.AsyncClient
) -> None:
    base = served.url
    assert (await http.get(f"{base}/_sandbox/health")).json() == {"ok": True}
    created = await http.post(
        f"{base}/_sandbox/media?mime_type=image/png&filename=a.png", content=PNG
    )
    media_id = created.json()["id"]
    assert created.json()["twilio_media_path"].endswith(f"/Media/{media_id}")
    stored = served.sandbox.media(media_id)
    assert stored is not None
    assert (stored.content, stored.mime_type, stored.filename) == (PNG, "image/png", "a.png")

    script = {
        "channel": "twilio",
        "recipient": "+15550001111",
        "failure": "rate_limited",
        "times": 1,
        "retry_after": 9,
    }
    assert (await http.post(f"{base}/_sandbox/failures", json=script)).status_code == 200
    assert (
        await http.post(f"{base}/_sandbox/failures", json={"channel": "nope"})
    ).status_code == 400
    creds = served.sandbox.credentials
    config = TwilioConfig(
        account_sid=creds.twilio_account_sid,
        auth_token=SecretStr(creds.twilio_auth_token),
        base_url=f"{base}/twilio",
    )
    client = TwilioClient(http, config)
    key = ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="+15550001111")
    with pytest.raises(SendRateLimited) as caught:
        await client.send_text(key, "one")
    assert caught.value.retry_after == 9
    sid = await client.send_text(key, "two")

    listed = (await http.get(f"{base}/_sandbox/sent", params={"channel": "twilio"})).json()
    assert [(m["seq"], m["message_id"], m["text"]) for m in listed] == [(1, sid, "two")]
    assert (await http.get(f"{base}/_sandbox/sent", params={"since": "1"})).json() == []
    assert (await http.delete(f"{base}/_sandbox/sent")).status_code == 200
    assert served.sandbox.sent() == []
    served.sandbox.fail(Channel.TWILIO, key.customer, SandboxFailure.SERVER_ERROR)
    assert (await http.delete(f"{base}/_sandbox/failures")).status_code == 200
    await client.send_text(key, "three")


def mounted(prefix: str, app: ProviderSandbox) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A router that strips ``prefix`` from the path and records it in ``root_path``."""

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope["path"])
            assert path.startswith(prefix)
            scope = {**scope, "path": path[len(prefix) :], "root_path": prefix}
        await app(scope, receive, send)  # type: ignore[arg-type]  # an ASGI scope

    return router


async def test_mounted_under_a_prefix_hands_out_prefixed_media_urls(
    http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    sandbox = ProviderSandbox()
    addr = await nursery.start(
        serve_asgi, mounted("/providers", sandbox), hypercorn_config("127.0.0.1:0")
    )
    media_id = sandbox.add_media(PNG, "image/png")
    config = WhatsAppConfig(
        access_token=SecretStr(sandbox.credentials.whatsapp_access_token),
        base_url=f"{addr.url}/providers/whatsapp/v21.0",
    )
    token = {"Authorization": f"Bearer {sandbox.credentials.whatsapp_access_token}"}
    info = (await http.get(f"{addr.url}/providers/whatsapp/v21.0/{media_id}", headers=token)).json()
    assert info["url"] == f"{addr.url}/providers/whatsapp/_media/{media_id}"
    ref = MediaRef(kind=MediaKind.IMAGE, ref=media_id)
    assert (await WhatsAppClient(http, config).download(ref, max_bytes=10**6)).content == PNG


async def test_unknown_paths_and_credentials_are_refused(
    served: Served, http: httpx.AsyncClient
) -> None:
    assert (await http.get(f"{served.url}/")).status_code == 404
    assert (await http.get(f"{served.url}/nowhere")).status_code == 404
    assert (await http.get(f"{served.url}/twilio/2010-04-01/Accounts")).status_code == 404
    assert (await http.post(f"{served.url}/telegram/bot1:x/getMe")).status_code == 401


async def test_environment_points_clients_at_the_sandbox(
    served: Served, http: httpx.AsyncClient
) -> None:
    env = served.sandbox.environment(served.url + "/")
    assert env["THREADLINE_TWILIO_BASE_URL"] == f"{served.url}/twilio"
    client = WhatsAppClient(
        http,
        WhatsAppConfig(
            access_token=SecretStr(env["THREADLINE_WHATSAPP_ACCESS_TOKEN"]),
            base_url=env["THREADLINE_WHATSAPP_BASE_URL"],
        ),
    )
    media_id = served.sandbox.add_media(PNG, "image/png")
    ref = MediaRef(kind=MediaKind.IMAGE, ref=media_id)
    assert (await client.download(ref, max_bytes=len(PNG))).content == PNG


async def test_a_send_scripted_to_fail_later_is_accepted_then_reported_by_signed_webhooks(
    served: Served, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    """``failed_later``: the send is accepted; then the sandbox posts the provider's status
    webhook — signed as the provider signs it — to the bridge configured over HTTP."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    async def bridge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        received.append((str(scope["path"]), headers, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    addr = await nursery.start(serve_asgi, bridge, hypercorn_config("127.0.0.1:0"))
    base, creds = served.url, served.sandbox.credentials
    bad = await http.post(f"{base}/_sandbox/webhooks", json={"whatsapp_app_secret": 1})
    assert bad.status_code == 400
    target = {"bridge_url": addr.url, "whatsapp_app_secret": "app-secret-1234"}
    assert (await http.post(f"{base}/_sandbox/webhooks", json=target)).status_code == 200
    scripts: list[dict[str, Any]] = [
        {"channel": "whatsapp", "recipient": "15550001111", "failure": "failed_later"},
        {"channel": "twilio", "recipient": "+15550001111", "failure": "failed_later",
         "error_code": 30005},
    ]  # fmt: skip
    for script in scripts:
        assert (await http.post(f"{base}/_sandbox/failures", json=script)).status_code == 200
    whatsapp = WhatsAppClient(
        http,
        WhatsAppConfig(
            access_token=SecretStr(creds.whatsapp_access_token), base_url=f"{base}/whatsapp/v21.0"
        ),
    )
    callback = "https://bridge.example/webhooks/twilio?x=1"
    twilio = TwilioClient(
        http,
        TwilioConfig(
            account_sid=creds.twilio_account_sid,
            auth_token=SecretStr(creds.twilio_auth_token),
            base_url=f"{base}/twilio",
            status_callback_url=callback,
        ),
    )
    wamid = await whatsapp.send_text(
        ThreadKey(channel=Channel.WHATSAPP, account="1001", customer="15550001111"), "hi"
    )
    sid = await twilio.send_text(
        ThreadKey(channel=Channel.TWILIO, account="+15550002222", customer="+15550001111"), "hi"
    )
    assert [m.message_id for m in served.sandbox.sent()] == [wamid, sid]  # both accepted
    with trio.fail_after(10):  # posted after the send's answer
        while len(received) < 2:  # noqa: ASYNC110 - another party's requests: no event
            await trio.sleep(0.01)
    by_path = {path: (headers, body) for path, headers, body in received}
    assert sorted(by_path) == ["/webhooks/twilio", "/webhooks/whatsapp"]
    wa_headers, wa_body = by_path["/webhooks/whatsapp"]
    verify_whatsapp_signature(wa_body, wa_headers["x-hub-signature-256"], "app-secret-1234")
    (wa_status,) = parse_whatsapp(wa_body)
    assert isinstance(wa_status, DeliveryStatus)
    assert (wa_status.provider_message_id, wa_status.status) == (wamid, "failed")
    assert (wa_status.error_code, wa_status.error_title) == (131026, "Message undeliverable")
    tw_headers, tw_body = by_path["/webhooks/twilio"]  # the callback's path on the bridge...
    params = twilio_form_params(tw_body)
    verify_twilio_signature(  # ...signed over the callback URL the send gave
        callback, params, tw_headers["x-twilio-signature"], creds.twilio_auth_token
    )
    (tw_status,) = parse_twilio(tw_body, received_at=datetime.now(UTC))
    assert isinstance(tw_status, DeliveryStatus)
    assert (tw_status.provider_message_id, tw_status.status) == (sid, "undelivered")
    assert tw_status.error_code == 30005
    assert tw_status.key == ThreadKey(
        channel=Channel.TWILIO, account="+15550002222", customer="+15550001111"
    )
    with trio.fail_after(10):  # the bridge saw both; the sandbox notes each answer after it
        while len(listed := (await http.get(f"{base}/_sandbox/webhooks")).json()) < 2:  # noqa: ASYNC110 - another party's state: no event
            await trio.sleep(0.01)
    assert [w["status"] for w in listed] == [200, 200]
    assert len(served.sandbox.posted_webhooks()) == 2
