"""Hostile input at every route: random and mutated bodies, headers and signatures.

Only documented answers (4xx, or 200 for a correctly signed event we ignore), never a 5xx,
nothing journaled, and the ingress stays ready. The real ingress app and a real SQLite journal
run in one Trio loop on a helper thread; Hypothesis drives requests into it synchronously, so
10,000 cases per route (the CI profile) take seconds, not a Trio run each.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from actors._embedded import PUBLIC_URL
from actors._ingress import Ingress
from actors._media import MediaStore
from actors._metrics import BridgeMetrics
from actors._sandbox import SANDBOX_SECRETS, sandbox_settings_env
from actors._settings import Settings
from channels import WhatsAppInbound, twilio_message_webhook, whatsapp_webhook
from runtime import SQLiteJournal

CI = os.environ.get("CI") == "true"
FUZZ = settings(  # 10,000 cases per route in CI; a quick sample locally
    max_examples=10_000 if CI else 300, deadline=None, suppress_health_check=list(HealthCheck)
)
EXTRA = settings(FUZZ, max_examples=2_000 if CI else 100)
DOCUMENTED = {400, 401, 403, 404, 405, 413}


class LiveIngress:
    """The ingress app over a real journal, in a Trio loop on another thread."""

    def __init__(self, tmp: Path) -> None:
        env = sandbox_settings_env("http://127.0.0.1:1", PUBLIC_URL)
        values: dict[str, Any] = {k.removeprefix("THREADLINE_").lower(): v for k, v in env.items()}
        values.update(api_token="sandbox-api-token", max_body_bytes=4096)
        self.settings = Settings(_env_file=None, **values)
        self.journal = SQLiteJournal(tmp / "fuzz.db")
        self.ingress = Ingress(
            self.settings,
            self.journal,
            wake=lambda: None,
            metrics=BridgeMetrics(CollectorRegistry()),
            media=MediaStore(tmp / "media"),
            ready=lambda: True,
        )
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.journal.run)
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def __enter__(self) -> LiveIngress:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, query: bytes = b""
    ) -> int:
        return trio.from_thread.run(self._call, method, path, headers, body, query,
                                    trio_token=self._token)  # fmt: skip

    async def _call(
        self, method: str, path: str, headers: dict[str, str], body: bytes, query: bytes
    ) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8080), "extensions": {},
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        }  # fmt: skip
        sent = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await trio.sleep_forever()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(event: dict[str, Any]) -> None:
            if event["type"] == "http.response.start":
                status.append(event["status"])

        await self.ingress.app(scope, receive, send)  # type: ignore[arg-type]  # an ASGI dict
        return status[0]

    def journaled(self) -> int:
        async def count() -> int:
            stats = await self.journal.statistics()
            return stats.pending + stats.dead

        return trio.from_thread.run(count, trio_token=self._token)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIngress]:
    with LiveIngress(tmp_path_factory.mktemp("fuzz")) as ingress:
        yield ingress
        assert ingress.journaled() == 0, "hostile input was journaled"
        assert ingress.request("GET", "/readyz", {}, b"") == 200


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b""),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ]
)


def _valid_whatsapp() -> bytes:
    return whatsapp_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret,
        SANDBOX_SECRETS.whatsapp_phone_number_id,
        [WhatsAppInbound(from_phone="15550001111", text="hello", message_id="wamid.fuzz")],
    ).body


VALID_WA = _valid_whatsapp()


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """A valid body with a byte flipped, a slice cut or junk inserted."""
    data = bytearray(original)
    kind = draw(st.sampled_from(["flip", "cut", "insert"]))
    at = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        data[at] ^= draw(st.integers(1, 255))
    elif kind == "cut":
        del data[at : at + draw(st.integers(1, 40))]
    else:
        data[at:at] = draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


def _wa_sig(body: bytes) -> str:
    secret = SANDBOX_SECRETS.whatsapp_app_secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@pytest.mark.slow
@FUZZ
@given(
    body=st.one_of(bodies, mutated(VALID_WA)),
    signature=st.one_of(st.none(), header_text, st.just(_wa_sig(VALID_WA))),
    ctype=content_types,
)
def test_whatsapp_post(live: LiveIngress, body: bytes, signature: str | None, ctype: str) -> None:
    headers = {"content-type": ctype}
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    status = live.request("POST", "/webhooks/whatsapp", headers, body)
    assert status in DOCUMENTED
    if body != VALID_WA:
        assert status != 200


@pytest.mark.slow
@EXTRA
@given(body=bodies, ctype=content_types)
def test_whatsapp_post_signed_garbage(live: LiveIngress, body: bytes, ctype: str) -> None:
    """Correctly signed, but not a webhook: 400 (or 200 for a readable event we ignore)."""
    headers = {"content-type": ctype, "x-hub-signature-256": _wa_sig(body)}
    assert live.request("POST", "/webhooks/whatsapp", headers, body) in DOCUMENTED | {200}


@pytest.mark.slow
@EXTRA
@given(query=st.binary(max_size=300))
def test_whatsapp_handshake(live: LiveIngress, query: bytes) -> None:
    assert live.request("GET", "/webhooks/whatsapp", {}, b"", query) in DOCUMENTED


@pytest.mark.slow
@FUZZ
@given(
    body=st.one_of(bodies, st.just(b"MessageSid=SM1&From=%2B1&To=%2B2&Body=x")),
    signature=st.one_of(st.none(), header_text),
    ctype=content_types,
    query=st.binary(max_size=50),
)
def test_twilio(
    live: LiveIngress, body: bytes, signature: str | None, ctype: str, query: bytes
) -> None:
    headers = {"content-type": ctype}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    assert live.request("POST", "/webhooks/twilio", headers, body, query) in DOCUMENTED


@pytest.mark.slow
@FUZZ
@given(body=bodies, secret=st.one_of(st.none(), header_text), ctype=content_types)
def test_telegram(live: LiveIngress, body: bytes, secret: str | None, ctype: str) -> None:
    headers = {"content-type": ctype}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    status = live.request("POST", "/webhooks/telegram", headers, body)
    assert status in DOCUMENTED | {200}
    if secret != SANDBOX_SECRETS.telegram_secret_token:
        assert status == 401


@pytest.mark.slow
@FUZZ
@given(body=bodies, signature=st.one_of(st.none(), header_text), ctype=content_types)
def test_intercom(live: LiveIngress, body: bytes, signature: str | None, ctype: str) -> None:
    headers = {"content-type": ctype}
    if signature is not None:
        headers["x-hub-signature"] = signature
    assert live.request("POST", "/webhooks/intercom", headers, body) in DOCUMENTED


@pytest.mark.slow
@FUZZ
@given(
    body=bodies,
    auth=st.one_of(st.none(), header_text, st.just("Bearer sandbox-api-token")),
    ctype=content_types,
)
def test_send_api(live: LiveIngress, body: bytes, auth: str | None, ctype: str) -> None:
    headers = {"content-type": ctype}
    if auth is not None:
        headers["authorization"] = auth
    assert live.request("POST", "/api/messages", headers, body) in DOCUMENTED


def test_a_signed_valid_twilio_webhook_is_accepted_by_the_harness(tmp_path: Path) -> None:
    """The harness can say 200: the fuzz tests' 4xx answers are the ingress, not the harness."""
    with LiveIngress(tmp_path) as live:
        webhook = twilio_message_webhook(
            live.settings.twilio_auth_token.get_secret_value()
            if live.settings.twilio_auth_token
            else "",
            f"{PUBLIC_URL}/webhooks/twilio",
            account_sid=live.settings.twilio_account_sid or "",
            to="+15550002222",
            from_="+15550001111",
            body="hello",
        )
        status = live.request("POST", "/webhooks/twilio", webhook.headers, webhook.body)
        assert status == 200
        assert live.journaled() == 1
