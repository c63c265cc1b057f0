"""Hostile input at every ingress route, signed and unsigned, on both stores.

A whole bridge runs per store for the module (``tests/fuzz_bridge.py``): ``threadline serve`` as
a child process, pointed at the sandboxes served in this process, real HTTP on loopback;
Hypothesis drives requests into it over httpx. Signed cases start from real-format payloads
(recorded fixtures, the builders, the Intercom sandbox's own notification for a bridged
conversation) with fields mutated by a hazard family (``tests/fuzz_payloads.py``) and are then
signed as the provider would, so they reach parsing, validation and the journal.

Each Hypothesis example is a batch of cases sent concurrently over a few keep-alive
connections. Every case: no 5xx; an unsigned or mis-signed request is never 200. Every batch:
a 4xx or unauthenticated case journaled nothing (the journal's newest id, read through a
separate database connection once per batch; when it grew, the refused cases are sent again
to name the one that journaled). Every ``HEALTH_EVERY`` batches, and after each test,
``/healthz`` answers within 1 s.

Tiers: each route runs every family that applies to it, its cases split evenly across them.
The fast tier runs about ``FUZZ_FAST_EXAMPLES`` (60) cases per route and store in batches of 4,
with shrinking, so a failure is a short batch. The slow tier (``@pytest.mark.slow``, which CI
runs) ``FUZZ_EXAMPLES`` (10,000) per route and store in batches of ``FUZZ_BATCH`` (40), without
shrinking, the two stores at once. Each (route, family) is its own test id, so a failure names
its hazard. ``FUZZ_TIMING=1`` (with ``pytest -s``) prints each test's rate.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from actors.tools import PUBLIC_URL, SANDBOX_SECRETS, meta_settings
from channels import line_signature, twilio_signature
from channels.sandbox import (
    SandboxCredentials,
    WhatsAppInbound,
    line_message_webhook,
    telegram_message_webhook,
    twilio_message_webhook,
    viber_message_webhook,
    whatsapp_webhook,
)
from intercom import sign as intercom_sign
from tests.fuzz_bridge import LiveBridge, Reply, Request
from tests.fuzz_payloads import (
    encode_form,
    encode_json,
    hostile_text,
    json_bodies,
    mutated_form,
    mutated_json,
)
from tests.postgres import PostgresServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "channels"
SLOW_PER_ROUTE = int(os.environ.get("FUZZ_EXAMPLES", "10000"))
FAST_PER_ROUTE = int(os.environ.get("FUZZ_FAST_EXAMPLES", "60"))
BODY_CAP = 256 * 1024
"""``THREADLINE_MAX_BODY_BYTES`` of the fuzzed bridge (a quarter of the default, to keep the
huge cases quick; the huge family goes up to it and just past it)."""
URL_CAP = 8 * 1024
HEALTH_EVERY = 10
"""``/healthz`` is checked after every this many batches (and after each test)."""
SLOW_BATCH = int(os.environ.get("FUZZ_BATCH", "40"))
CREDS = SandboxCredentials()
WA_ID = "15550001111"
API_TOKEN = "sandbox-api-token"

JSON_FAMILIES = ("fields", "surrogate", "nul", "deep", "huge", "html", "mixed")
FORM_FAMILIES = ("fields", "surrogate", "nul", "huge", "html", "mixed")
URL_FAMILIES = ("fields", "surrogate", "nul", "huge", "html", "mixed")
ROUTE_FAMILIES: dict[str, tuple[str, ...]] = {
    "whatsapp": ("unsigned", *JSON_FAMILIES),
    "telegram": ("unsigned", *JSON_FAMILIES),
    "messenger": ("unsigned", *JSON_FAMILIES),
    "instagram": ("unsigned", *JSON_FAMILIES),
    "viber": ("unsigned", *JSON_FAMILIES),
    "line": ("unsigned", *JSON_FAMILIES),
    "intercom": ("unsigned", *JSON_FAMILIES),
    "api": ("unsigned", *JSON_FAMILIES),
    "twilio": ("unsigned", *FORM_FAMILIES),
    "whatsapp_handshake": URL_FAMILIES,
    "messenger_handshake": URL_FAMILIES,
    "media": URL_FAMILIES,
    "probes": URL_FAMILIES,
}
CASES = [(route, family) for route, families in ROUTE_FAMILIES.items() for family in families]


# --- the bridge, one per store for the module -------------------------------------------------


@dataclass
class Target:
    """A running bridge with a bridged WhatsApp thread to aim structured payloads at."""

    bridge: LiveBridge
    conversation_id: str
    intercom_template: dict[str, Any]


class Bridges:
    """One bridge per store for the module, replaced only when a test left it wedged or
    unhealthy."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._current: dict[str, Target] = {}

    def get(self, store: str, pg: PostgresServer | None) -> Target:
        current = self._current.get(store)
        if current is not None and current.bridge.wedged_by is None:
            try:
                current.bridge.check_health()
                return current
            except (AssertionError, httpx.HTTPError):
                pass
        self.close(store)
        tmp = self._tmp.mktemp(f"fuzz-{store}")
        url = f"sqlite:///{tmp / 'threadline.db'}" if pg is None else pg.create_database()
        meta = {k.removeprefix("THREADLINE_").lower(): v for k, v in meta_settings().items()}
        bridge = LiveBridge(url, tmp, max_body_bytes=BODY_CAP, **meta).__enter__()
        try:
            conversation_id = bridge.bridged_whatsapp_thread(WA_ID)
            template = bridge.admin_reply_notification(conversation_id, "<p>Hi <b>there</b></p>")
        except BaseException:
            bridge.__exit__(None, None, None)
            raise
        self._current[store] = Target(bridge, conversation_id, template)
        return self._current[store]

    def close(self, *stores: str) -> None:
        """Stop the bridges of ``stores`` (all when none is named), each whatever the others
        raise."""
        names = list(stores or self._current)
        while names:
            current = self._current.pop(names.pop(), None)
            if current is not None:
                try:
                    current.bridge.__exit__(None, None, None)
                finally:
                    self.close(*names)
                    names = []


@pytest.fixture(scope="module")
def bridges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridges]:
    pool = Bridges(tmp_path_factory)
    try:
        yield pool
    finally:  # the serve children go whatever ended the module (a failure, Ctrl-C)
        pool.close()


def _still_healthy(target: Target) -> None:
    target.bridge.check_health()
    assert target.bridge.request("GET", "/readyz").status == 200


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, bridges: Bridges) -> Iterator[Target]:
    pg = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    current = bridges.get(request.param, pg)
    yield current
    _still_healthy(current)


@pytest.fixture
def targets(request: pytest.FixtureRequest, bridges: Bridges) -> Iterator[dict[str, Target]]:
    """Both stores' bridges (SQLite alone where PostgreSQL is missing, outside CI)."""
    found = {"sqlite": bridges.get("sqlite", None)}
    with contextlib.suppress(pytest.skip.Exception):
        found["postgres"] = bridges.get("postgres", request.getfixturevalue("postgres_server"))
    yield found
    for current in found.values():
        _still_healthy(current)


# --- real-format templates --------------------------------------------------------------------


def _load(channel: str) -> list[dict[str, Any]]:
    skip = ("signature_vector", "verify_handshake", "error_", "send_")
    return [
        json.loads(path.read_text())
        for path in sorted((FIXTURES / channel).glob("*.json"))
        if not path.name.startswith(skip)
    ]


def _whatsapp_templates() -> list[dict[str, Any]]:
    templates = _load("whatsapp")
    for doc in templates:  # aim the recorded payloads at the sandbox's number
        for entry in doc.get("entry", []):
            for change in entry.get("changes", []):
                change.get("value", {}).get("metadata", {})["phone_number_id"] = (
                    SANDBOX_SECRETS.whatsapp_phone_number_id
                )
    built = whatsapp_webhook(
        SANDBOX_SECRETS.whatsapp_app_secret,
        SANDBOX_SECRETS.whatsapp_phone_number_id,
        [WhatsAppInbound(from_phone=WA_ID, text="hello", message_id="wamid.fuzz1", name="Fuzz")],
    )
    return [*templates, json.loads(built.body)]


def _telegram_templates() -> list[dict[str, Any]]:
    built = telegram_message_webhook(
        SANDBOX_SECRETS.telegram_secret_token, chat_id=4242, message_id=7, text="hello"
    )
    return [*_load("telegram"), json.loads(built.body)]


def _viber_templates() -> list[dict[str, Any]]:
    built = viber_message_webhook(
        CREDS.viber_auth_token, user_id="xy5/5y6O81+/kbWHpLhBoA==", message_token=2**62, text="hi"
    )
    return [*_load("viber"), json.loads(built.body)]


def _twilio_templates() -> list[list[tuple[str, str]]]:
    templates = []
    for doc in _load("twilio"):
        pairs = [(str(k), str(v)) for k, v in doc.items()]
        fixed = []
        for name, value in pairs:
            if name == "AccountSid":
                value = CREDS.twilio_account_sid
            elif name == "To":
                prefix = "whatsapp:" if value.startswith("whatsapp:") else ""
                value = prefix + SANDBOX_SECRETS.twilio_number
            fixed.append((name, value))
        templates.append(fixed)
    built = twilio_message_webhook(
        CREDS.twilio_auth_token,
        f"{PUBLIC_URL}/webhooks/twilio",
        account_sid=CREDS.twilio_account_sid,
        to=SANDBOX_SECRETS.twilio_number,
        from_="+" + WA_ID,
        body="hello",
    )
    templates.append([tuple(p.split("=", 1)) for p in built.body.decode().split("&")])  # type: ignore[misc]
    return templates


def _meta_templates(channel: str, account: str) -> list[dict[str, Any]]:
    templates = _load(channel)
    for doc in templates:  # aim the recorded payloads at the sandbox's Page / account
        for entry in doc.get("entry", []):
            entry["id"] = account
            for event in entry.get("messaging", []):
                event.get("recipient", {})["id"] = account
    return templates


def _line_templates() -> list[dict[str, Any]]:
    webhooks = [
        doc
        for doc in _load("line")
        if "events" in doc  # not the error and send fixtures
    ]
    built = line_message_webhook(
        SANDBOX_SECRETS.line_channel_secret,
        destination=CREDS.line_bot_user_id,
        user_id="U" + "4a" * 16,
        message_id="700000000001",
        text="hello",
        reply_token="fuzz-reply-token",
    )
    return [*webhooks, json.loads(built.body)]


WHATSAPP_TEMPLATES = _whatsapp_templates()
MESSENGER_TEMPLATES = _meta_templates("messenger", SANDBOX_SECRETS.messenger_page_id)
INSTAGRAM_TEMPLATES = _meta_templates("instagram", SANDBOX_SECRETS.instagram_account_id)
TELEGRAM_TEMPLATES = _telegram_templates()
VIBER_TEMPLATES = _viber_templates()
LINE_TEMPLATES = _line_templates()
TWILIO_TEMPLATES = _twilio_templates()
API_TEMPLATES: list[dict[str, Any]] = [
    {"channel": "whatsapp", "account": SANDBOX_SECRETS.whatsapp_phone_number_id,
     "customer": WA_ID, "text": "hello from the API", "idempotency_key": "fuzz-1"},
    {"channel": "whatsapp", "account": SANDBOX_SECRETS.whatsapp_phone_number_id,
     "customer": WA_ID, "text": "", "admin_id": "991267601",
     "attachments": [{"url": "https://example.com/a.pdf", "mime_type": "application/pdf",
                      "filename": "a.pdf"}]},
    {"channel": "whatsapp", "account": SANDBOX_SECRETS.whatsapp_phone_number_id,
     "customer": WA_ID, "template": {"name": "order_update", "language": {"code": "en_US"},
     "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                    {"type": "text", "text": "#1"}]}]}},
]  # fmt: skip


# --- requests ---------------------------------------------------------------------------------


class Case:
    """One request. A plain class (not a dataclass) so Hypothesis prints it with the short
    ``__repr__`` below rather than the whole body, which can be a megabyte."""

    def __init__(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        query: bytes = b"",
        *,
        authentic: bool = True,
    ) -> None:
        self.method, self.path, self.headers = method, path, headers
        self.body, self.query = body, query
        self.authentic = authentic
        """False when the signature, secret or token is wrong or missing (never 200)."""

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 400 else self.body[:400] + b"..."
        query = self.query if len(self.query) <= 200 else self.query[:200] + b"..."
        return (
            f"Case({self.method} {self.path}?{query!r} headers={self.headers} "
            f"authentic={self.authentic} body[{len(self.body)}]={body!r})"
        )


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(
    str.strip
)  # httpx sends no padded values
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
     "text/plain", "multipart/form-data; boundary=x", ""]
)  # fmt: skip
garbage = st.one_of(st.binary(max_size=2000), st.just(b""), json_bodies("fields", 2000))


def _wa_signature(body: bytes) -> str:
    secret = SANDBOX_SECRETS.whatsapp_app_secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _meta_signer(secret: str) -> Any:  # noqa: ANN401 - a signing function
    def sign(body: bytes) -> str:
        return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    return sign


def _viber_signature(body: bytes) -> str:
    return hmac.new(CREDS.viber_auth_token.encode(), body, hashlib.sha256).hexdigest()


def _signer(route: str) -> tuple[str, str, Any]:
    """(path, header, sign(body) -> header value) of a JSON route."""
    if route == "whatsapp":
        return "/webhooks/whatsapp", "X-Hub-Signature-256", _wa_signature
    if route in ("messenger", "instagram"):
        secret = getattr(SANDBOX_SECRETS, f"{route}_app_secret")
        return f"/webhooks/{route}", "X-Hub-Signature-256", _meta_signer(secret)
    if route == "telegram":
        return (
            "/webhooks/telegram",
            "X-Telegram-Bot-Api-Secret-Token",
            lambda body: SANDBOX_SECRETS.telegram_secret_token,
        )
    if route == "viber":
        return "/webhooks/viber", "X-Viber-Content-Signature", _viber_signature
    if route == "line":
        return (
            "/webhooks/line",
            "x-line-signature",
            lambda body: line_signature(body, SANDBOX_SECRETS.line_channel_secret),
        )
    if route == "intercom":
        return (
            "/webhooks/intercom",
            "X-Hub-Signature",
            lambda body: intercom_sign(body, SANDBOX_SECRETS.intercom_client_secret),
        )
    return "/api/messages", "Authorization", lambda body: f"Bearer {API_TOKEN}"


def _intercom_templates(target: Target) -> list[dict[str, Any]]:
    base = target.intercom_template
    note = json.loads(json.dumps(base))
    note["topic"] = "conversation.admin.noted"
    return [base, note]


def json_route_cases(route: str, family: str, target: Target) -> st.SearchStrategy[Case]:
    path, header, sign = _signer(route)
    templates = {
        "whatsapp": WHATSAPP_TEMPLATES,
        "telegram": TELEGRAM_TEMPLATES,
        "messenger": MESSENGER_TEMPLATES,
        "instagram": INSTAGRAM_TEMPLATES,
        "viber": VIBER_TEMPLATES,
        "line": LINE_TEMPLATES,
        "intercom": _intercom_templates(target),
        "api": API_TEMPLATES,
    }[route]

    def signed(body: bytes) -> Case:
        headers = {"Content-Type": "application/json", header: sign(body)}
        return Case("POST", path, headers, body)

    if family == "unsigned":
        bodies = st.one_of(
            garbage,
            st.sampled_from(templates).map(encode_json),
            mutated_json(templates, "fields", 2000).map(encode_json),
        )
        # Strategies built once (building one per draw costs more than drawing from it).
        forgeries = st.sampled_from(["none", "text", "short", "long", "other"])

        @st.composite
        def unsigned(draw: st.DrawFn) -> Case:
            body = draw(bodies)
            good = sign(body)
            forgery = draw(forgeries)
            given: str | None = None
            if forgery == "text":
                given = draw(header_text)
            elif forgery == "short":
                given = good[:-1]
            elif forgery == "long":
                given = good + "0"
            elif forgery == "other":
                given = sign(body + b" ")
            headers = {"Content-Type": draw(content_types)}
            if given is not None:
                headers[header] = given
            return Case("POST", path, headers, body, authentic=given == good)

        return unsigned()
    structured = mutated_json(templates, family, BODY_CAP).map(encode_json)
    documents = json_bodies(family, BODY_CAP)
    return st.one_of(structured, structured, structured, documents).map(signed)


def twilio_cases(family: str) -> st.SearchStrategy[Case]:
    url = f"{PUBLIC_URL}/webhooks/twilio"
    forms = mutated_form(TWILIO_TEMPLATES, family, BODY_CAP)
    queries = st.one_of(
        st.just(b""),
        st.just(b"a=1"),
        hostile_text("fields", 40).map(lambda q: quote(q, safe="=&").encode()),
    )

    @st.composite
    def case(draw: st.DrawFn) -> Case:
        if family == "unsigned":
            pairs = draw(st.sampled_from(TWILIO_TEMPLATES))
            body = draw(st.one_of(garbage, st.just(encode_form(pairs))))
            signature = draw(
                st.one_of(st.none(), header_text, st.just(twilio_signature(url, pairs, "x")))
            )
            headers = {"Content-Type": draw(content_types)}
            if signature is not None:
                headers["X-Twilio-Signature"] = signature
            query = draw(st.one_of(st.just(b""), st.binary(max_size=50)))
            return Case("POST", "/webhooks/twilio", headers, body, query, authentic=False)
        pairs = draw(forms)
        query = draw(queries)
        signed_url = url + ("?" + query.decode() if query else "")
        try:
            signature = twilio_signature(signed_url, pairs, CREDS.twilio_auth_token)
        except UnicodeEncodeError:  # a lone surrogate: the body will not decode anyway
            signature = base64.b64encode(b"\0" * 20).decode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        return Case("POST", "/webhooks/twilio", headers, encode_form(pairs), query)

    return case()


def _url_text(family: str) -> st.SearchStrategy[str]:
    return hostile_text(family, URL_CAP)


def _q(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def handshake_cases(family: str, channel: str = "whatsapp") -> st.SearchStrategy[Case]:
    token = getattr(SANDBOX_SECRETS, f"{channel}_verify_token")

    @st.composite
    def case(draw: st.DrawFn) -> Case:
        text = _url_text(family)
        mode = draw(st.one_of(st.just("subscribe"), text))
        given = draw(st.one_of(st.just(token), text))
        challenge = draw(st.one_of(st.integers(0, 2**64).map(str), text))
        fields = [("hub.mode", mode), ("hub.verify_token", given), ("hub.challenge", challenge)]
        fields = draw(st.permutations(fields))[: draw(st.integers(0, 3))]
        query = "&".join(f"{_q(k)}={_q(v)}" for k, v in fields).encode()
        query = draw(st.one_of(st.just(query), st.binary(max_size=300)))
        return Case("GET", f"/webhooks/{channel}", {}, b"", query, authentic=given == token)

    return case()


def media_cases(family: str) -> st.SearchStrategy[Case]:
    return _url_text(family).map(lambda t: Case("GET", "/media/" + _q(t), {}))


def probe_cases(family: str) -> st.SearchStrategy[Case]:
    @st.composite
    def case(draw: st.DrawFn) -> Case:
        method = draw(st.sampled_from(["GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]))
        path = draw(
            st.sampled_from(
                ["/healthz", "/readyz", "/metrics", "/", "/webhooks", "/api/messages/x"]
            )
        )
        query = _q(draw(_url_text(family))).encode()
        body = draw(st.one_of(st.just(b""), garbage))
        return Case(method, path, {"Content-Type": draw(content_types)}, body, query)

    return case()


def cases(route: str, family: str, target: Target) -> st.SearchStrategy[Case]:
    if route in (
        "whatsapp",
        "telegram",
        "messenger",
        "instagram",
        "viber",
        "line",
        "intercom",
        "api",
    ):
        return json_route_cases(route, family, target)
    if route == "twilio":
        return twilio_cases(family)
    if route == "whatsapp_handshake":
        return handshake_cases(family)
    if route == "messenger_handshake":
        return handshake_cases(family, "messenger")
    if route == "media":
        return media_cases(family)
    return probe_cases(family)


# --- the checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    per_route: int
    """Cases per route and store, split evenly across the route's families."""
    batch: int
    """Cases per Hypothesis example, sent concurrently."""
    phases: tuple[Phase, ...]


FAST = Tier(FAST_PER_ROUTE, batch=4, phases=(Phase.generate, Phase.shrink))
"""Small batches and shrinking: a failure is reported as a short, readable batch."""
SLOW = Tier(SLOW_PER_ROUTE, batch=SLOW_BATCH, phases=(Phase.generate,))
"""Large batches, no shrinking (a failing batch is reported whole, the case named)."""


def _request(case: Case) -> Request:
    return Request(case.method, case.path, case.headers, case.body, case.query)


def _check_batch(bridge: LiveBridge, batch: list[Case], before: int) -> int:
    """Send ``batch`` concurrently and check every reply; return the newest journal id after.

    The journal is read once per batch. When it grew, the batch's refused and unauthenticated
    cases are sent again together, and when that grew it too, one at a time with a read after
    each, to name the one that journaled (a batch where nothing was accepted cannot have grown
    it at all).
    """
    replies = bridge.send([_request(case) for case in batch])
    for case, reply in zip(batch, replies, strict=True):
        assert reply.status < 500, (
            f"{reply.status} {reply.text!r} for {case!r}\nserve log: {bridge.log_tail()}"
        )
        if not case.authentic:
            assert reply.status != 200, f"unauthenticated request accepted: {case!r}"
    after = bridge.last_entry()
    if after == before:
        return after
    refused = [
        (case, reply)
        for case, reply in zip(batch, replies, strict=True)
        if 400 <= reply.status < 500 or not case.authentic
    ]
    accepted = len(batch) - len(refused)
    assert accepted > 0, f"journaled with every case refused: {refused!r}"
    bridge.resent += len(refused)
    # Again, all together (usually nothing journals: one read), then one at a time to name it.
    agains = bridge.send([_request(case) for case, _ in refused])
    latest = bridge.last_entry()
    if latest == after:
        return after
    culprits: list[tuple[Case, Reply]] = []
    for case, reply in refused:
        before_one = bridge.last_entry()
        again = bridge.send([_request(case)])[0]
        if again.status < 400 and case.authentic:  # accepted this time: it may journal
            continue
        if bridge.last_entry() != before_one:
            culprits.append((case, reply))
    if not culprits and all(
        again.status >= 400 or not case.authentic
        for (case, _), again in zip(refused, agains, strict=True)
    ):
        culprits = refused  # the refused cases journaled together; alone, deduplicated
    assert not culprits, f"refused but journaled: {culprits!r}"
    return bridge.last_entry()


class Stopped(Exception):
    """Another store's run failed, or the test was interrupted."""


def run_fuzz(
    target: Target, route: str, family: str, tier: Tier, stop: threading.Event | None = None
) -> None:
    bridge = target.bridge
    bridge.sending, bridge.resent = 0.0, 0
    last = [bridge.last_entry()]
    batches = [0]
    started = time.perf_counter()
    per_family = max(1, math.ceil(tier.per_route / len(ROUTE_FAMILIES[route])))

    @settings(
        max_examples=max(1, math.ceil(per_family / tier.batch)),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,  # the bridge's state differs between runs; replaying is not meaningful
        phases=tier.phases,
    )
    @given(batch=st.lists(cases(route, family, target), min_size=tier.batch, max_size=tier.batch))
    def check(batch: list[Case]) -> None:
        if stop is not None and stop.is_set():
            raise Stopped
        last[0] = _check_batch(bridge, batch, last[0])
        batches[0] += 1
        if batches[0] % HEALTH_EVERY == 0:
            bridge.check_health()

    check()
    bridge.check_health()
    if os.environ.get("FUZZ_TIMING"):
        total = time.perf_counter() - started
        sent = batches[0] * tier.batch
        print(  # noqa: T201 - opt-in timing report (FUZZ_TIMING=1, with pytest -s)
            f"\n{route}-{family}: {sent} cases in {total:.1f} s ({sent / total:.0f}/s), "
            f"{bridge.sending:.1f} s sending, {bridge.resent} resent"
        )


@pytest.mark.parametrize(("route", "family"), CASES)
def test_fuzz(target: Target, route: str, family: str) -> None:
    """The fast tier: about FUZZ_FAST_EXAMPLES cases per route and store."""
    run_fuzz(target, route, family, FAST)


@pytest.mark.slow
@pytest.mark.parametrize(("route", "family"), CASES)
def test_fuzz_thoroughly(targets: dict[str, Target], route: str, family: str) -> None:
    """The slow tier: FUZZ_EXAMPLES (10,000) cases per route and store, both stores at once
    (a thread each: each bridge is its own process, and a thread spends most of its time
    waiting for the bridge's answers)."""
    stop = threading.Event()
    with ThreadPoolExecutor(len(targets), thread_name_prefix="fuzz") as pool:
        try:
            runs = {
                store: pool.submit(run_fuzz, target, route, family, SLOW, stop)
                for store, target in targets.items()
            }
            wait(runs.values(), return_when=FIRST_EXCEPTION)
        finally:  # a failure or Ctrl-C ends the other store's run at its next batch
            stop.set()
    for store, run in runs.items():
        error = run.exception()
        if error is not None and not isinstance(error, Stopped):
            raise AssertionError(f"{store}: {error}") from error


def test_the_harness_can_see_a_journaled_webhook(target: Target) -> None:
    """Signed, well-formed payloads are journaled (200 and one more entry): the fuzz cases'
    structured payloads reach the journal, and the entry count can see it."""
    bridge = target.bridge
    before = bridge.entries()
    doc = json.loads(json.dumps(WHATSAPP_TEMPLATES[-1]))
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.harness{before}"
    body = encode_json(doc)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": _wa_signature(body)}
    assert bridge.request("POST", "/webhooks/whatsapp", headers=headers, body=body).status == 200
    assert bridge.entries() == before + 1
    reply = json.loads(json.dumps(target.intercom_template))
    reply["id"] = f"notif_harness{before}"
    reply["data"]["item"]["conversation_parts"]["conversation_parts"][0]["id"] = f"9{before}"
    body = encode_json(reply)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature": intercom_sign(body, SANDBOX_SECRETS.intercom_client_secret),
    }
    answer = bridge.request("POST", "/webhooks/intercom", headers=headers, body=body)
    assert answer.status == 200, answer
    assert bridge.entries() == before + 2


def test_a_413_closes_the_connection_it_did_not_read_to_the_end(target: Target) -> None:
    """Found by the huge family: a body over the cap is answered 413 without reading it, and
    Hypercorn then drops the connection; the answer must say ``Connection: close``, or the
    client reuses the connection and its next request meets a disconnect instead of an answer.
    """
    bridge = target.bridge
    body = b"x" * (BODY_CAP * 3)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": _wa_signature(body)}
    reply = bridge.request("POST", "/webhooks/whatsapp", headers=headers, body=body)
    assert reply.status == 413
    assert reply.headers.get("connection") == "close"
    bridge.check_health()  # the same client: a fresh connection, answered


def test_a_404_or_405_closes_the_connection_it_did_not_read_the_body_of(target: Target) -> None:
    """Found by the probes family: a request with a body to an unknown path (404) or with a
    method the path does not take (405) is answered without reading the body, and Hypercorn
    then drops the connection; as for a 413, the answer must say ``Connection: close``, or a
    keep-alive client's next request meets a closed socket ("Server disconnected")."""
    bridge = target.bridge
    for method, path, status in [("POST", "/nowhere", 404), ("PUT", "/healthz", 405)]:
        reply = bridge.request(method, path, headers={"Content-Type": "text/plain"}, body=b"x")
        assert reply.status == status
        assert reply.headers.get("connection") == "close", (method, path)
        bridge.check_health()
    assert bridge.request("GET", "/nowhere").headers.get("connection") != "close"  # no body
