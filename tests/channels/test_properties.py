"""Hypothesis properties of the pure verify and parse functions."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import (
    Channel,
    InboundMessage,
    PayloadInvalid,
    PayloadTooLarge,
    SignatureInvalid,
    ThreadKey,
    WebhookRejected,
    parse_instagram,
    parse_messenger,
    parse_telegram,
    parse_twilio,
    parse_viber,
    parse_whatsapp,
    twilio_form_params,
    twilio_signature,
    verify_telegram_secret,
    verify_twilio_signature,
    verify_viber_signature,
    verify_whatsapp_signature,
)

from .conftest import fixtures_dir

META_PARSERS = {"messenger": parse_messenger, "instagram": parse_instagram}

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]
NOW = datetime(2026, 11, 25, tzinfo=UTC)
secrets = st.text(min_size=1, max_size=40)
bodies = st.binary(max_size=2000)


def wa_sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- WhatsApp ------------------------------------------------------------------------------


@given(body=bodies, secret=secrets)
def test_whatsapp_signature_round_trip(body: bytes, secret: str) -> None:
    verify_whatsapp_signature(body, wa_sign(body, secret), secret)


@given(body=bodies, secret=secrets, data=st.data())
def test_whatsapp_any_changed_byte_is_rejected(
    body: bytes, secret: str, data: st.DataObject
) -> None:
    header = wa_sign(body, secret)
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        flip = data.draw(st.integers(1, 255))
        changed = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    else:
        changed = b"x"
    with pytest.raises(SignatureInvalid):
        verify_whatsapp_signature(changed, header, secret)


@given(body=bodies, secret=secrets, other=secrets)
def test_whatsapp_other_secret_is_rejected(body: bytes, secret: str, other: str) -> None:
    if other != secret:
        with pytest.raises(SignatureInvalid):
            verify_whatsapp_signature(body, wa_sign(body, other), secret)


@given(header=st.one_of(st.none(), st.text(max_size=80)), body=bodies)
def test_whatsapp_garbage_headers_are_rejected(header: str | None, body: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        verify_whatsapp_signature(body, header, "secret")


# --- Twilio --------------------------------------------------------------------------------

# What a form may carry: UTF-8 without NUL (the edge refuses the rest: channels/_decode.py).
form_text = st.characters(codec="utf-8", exclude_characters="\x00")
names = st.text(form_text, min_size=1, max_size=12)
values = st.text(form_text, max_size=20)
params_lists = st.lists(st.tuples(names, values), max_size=8)
urls = st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}/{path}" + (f"?{query}" if query else ""),
    st.sampled_from(["https", "http"]),
    st.sampled_from(["bridge.example.com", "example.org:8443", "127.0.0.1:8080"]),
    st.from_regex(r"[a-z0-9/_-]{0,20}", fullmatch=True),
    st.from_regex(r"([a-z]{1,5}=[a-z0-9]{0,5}&?){0,3}", fullmatch=True),
)


@given(url=urls, params=params_lists, token=secrets)
def test_twilio_signature_round_trip(url: str, params: list[tuple[str, str]], token: str) -> None:
    verify_twilio_signature(url, params, twilio_signature(url, params, token), token)


@given(url=urls, params=params_lists, token=secrets)
def test_twilio_form_body_round_trip(url: str, params: list[tuple[str, str]], token: str) -> None:
    body = urlencode(params).encode()
    assert twilio_form_params(body) == params
    verify_twilio_signature(
        url, twilio_form_params(body), twilio_signature(url, params, token), token
    )


@given(url=urls, params=params_lists, token=secrets, data=st.data())
def test_twilio_any_changed_param_or_url_is_rejected(
    url: str, params: list[tuple[str, str]], token: str, data: st.DataObject
) -> None:
    signature = twilio_signature(url, params, token)
    mutation = data.draw(st.sampled_from(["value", "add", "drop", "url"]))
    changed_url, changed = url, list(params)
    if mutation == "value" and params:
        index = data.draw(st.integers(0, len(params) - 1))
        name, value = params[index]
        changed[index] = (name, value + data.draw(st.characters()))
        if any(p == changed[index] for p in params):
            return  # a duplicate pair collapses, as Twilio's own algorithm does
    elif mutation == "drop" and params:
        dropped = changed.pop(data.draw(st.integers(0, len(params) - 1)))
        if dropped in changed:
            return
    elif mutation == "url":
        changed_url = url + data.draw(st.sampled_from(["x", "/", "&a=1", "%20"]))
    else:
        changed.append((data.draw(names), data.draw(values)))
        if changed[-1] in params:
            return
    with pytest.raises(SignatureInvalid):
        verify_twilio_signature(changed_url, changed, signature, token)


@given(body=bodies, token=secrets)
def test_twilio_json_body_hash_is_checked(body: bytes, token: str) -> None:
    url = "https://bridge.example.com/hook?bodySHA256=" + hashlib.sha256(body).hexdigest()
    signature = twilio_signature(url, [], token)
    verify_twilio_signature(url, [], signature, token, body=body)
    with pytest.raises(SignatureInvalid):
        verify_twilio_signature(url, [], signature, token, body=body + b"x")


def test_twilio_signature_is_base64_of_hmac_sha1() -> None:
    expected = base64.b64encode(hmac.new(b"t", b"https://a/bx1y2", hashlib.sha1).digest()).decode()
    assert twilio_signature("https://a/b", [("y", "2"), ("x", "1")], "t") == expected


# --- Telegram ------------------------------------------------------------------------------


@given(secret=st.from_regex(r"[A-Za-z0-9_-]{1,256}", fullmatch=True), other=st.text(max_size=40))
def test_telegram_secret_round_trip_and_mismatch(secret: str, other: str) -> None:
    verify_telegram_secret(secret, secret)
    if other != secret:
        with pytest.raises(SignatureInvalid):
            verify_telegram_secret(other, secret)
    with pytest.raises(SignatureInvalid):
        verify_telegram_secret(None, secret)


# --- Viber ---------------------------------------------------------------------------------


@given(body=st.binary(max_size=200), token=st.text(min_size=1, max_size=60), other=st.text())
def test_viber_signature_round_trip_and_mismatch(body: bytes, token: str, other: str) -> None:
    good = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    verify_viber_signature(body, good, token)
    verify_viber_signature(body, good.upper(), token)  # hex: either case
    if other.strip().lower() != good:
        with pytest.raises(SignatureInvalid):
            verify_viber_signature(body, other, token)
    with pytest.raises(SignatureInvalid):
        verify_viber_signature(body, None, token)
    with pytest.raises(SignatureInvalid):
        verify_viber_signature(body + b"x", good, token)


@given(token=st.integers(min_value=2**53 + 1, max_value=2**63))
def test_viber_message_tokens_above_2_53_are_kept_exact(token: int) -> None:
    body = (
        b'{"event":"message","timestamp":1481142112807,"message_token":%d,'
        b'"sender":{"id":"01234567890A="},"message":{"type":"text","text":"hi"}}' % token
    )
    (message,) = parse_viber(body, "default")
    assert isinstance(message, InboundMessage)
    assert message.provider_message_id == str(token)
    with pytest.raises(PayloadInvalid):  # the same token as a float: refused, never rounded
        parse_viber(body.replace(b"%d," % token, b"%d.0," % token), "default")


# --- parsers never raise anything but WebhookRejected --------------------------------------


def parse_all(body: bytes) -> None:
    for parse in (
        parse_whatsapp,
        lambda b: parse_telegram(b, "7000000001"),
        lambda b: parse_twilio(b, received_at=NOW),
        parse_messenger,
        parse_instagram,
        lambda b: parse_viber(b, "default"),
    ):
        reasons: list[str] = []
        try:
            assert parse(body)
        except WebhookRejected as exc:
            reasons.append(exc.reason)
        assert all(reason and "\n" not in reason for reason in reasons)


@given(body=bodies)
def test_random_bytes_only_ever_raise_webhook_rejected(body: bytes) -> None:
    parse_all(body)


json_values: st.SearchStrategy[Json] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(value=json_values)
def test_random_json_only_ever_raises_webhook_rejected(value: Json) -> None:
    parse_all(json.dumps(value).encode())


def _fixture_documents() -> list[tuple[str, Json]]:
    root = fixtures_dir()
    docs = []
    for provider in ("whatsapp", "telegram", "messenger", "instagram", "viber"):
        for path in sorted((root / provider).glob("*.json")):
            if not path.name.startswith(("signature_", "verify_", "error_", "send_")):
                docs.append((provider, json.loads(path.read_text())))
    return docs


def _paths(doc: Json, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


def _replace(doc: Json, path: tuple[str | int, ...], new: Json) -> Json:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(doc, dict) and isinstance(head, str):
        return {**doc, head: _replace(doc[head], rest, new)}
    assert isinstance(doc, list)
    assert isinstance(head, int)
    copy = list(doc)
    copy[head] = _replace(doc[head], rest, new)
    return copy


@given(data=st.data(), new=json_values)
def test_mutated_fixture_json_only_ever_raises_webhook_rejected(
    data: st.DataObject, new: Json
) -> None:
    provider, doc = data.draw(st.sampled_from(_fixture_documents()))
    path = data.draw(st.sampled_from(_paths(doc)))
    mutated = json.dumps(_replace(doc, path, new)).encode()
    with contextlib.suppress(WebhookRejected):
        if provider == "whatsapp":
            assert parse_whatsapp(mutated)
        elif provider in META_PARSERS:
            assert META_PARSERS[provider](mutated)
        elif provider == "viber":
            assert parse_viber(mutated, "default")
        else:
            assert parse_telegram(mutated, "7000000001")


@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(
                _TWILIO_NAMES := [
                    "MessageSid",
                    "SmsSid",
                    "From",
                    "To",
                    "Body",
                    "NumMedia",
                    "MediaUrl0",
                    "MediaContentType0",
                    "MessageStatus",
                    "ErrorCode",
                    "Latitude",
                    "Longitude",
                    "SmsStatus",
                    "ProfileName",
                ]
            )
            | names,
            values,
        ),
        max_size=10,
    )
)
def test_random_twilio_forms_only_ever_raise_webhook_rejected(pairs: list[tuple[str, str]]) -> None:
    with contextlib.suppress(WebhookRejected):
        assert parse_twilio(urlencode(pairs).encode(), received_at=NOW)


def test_deeply_nested_and_huge_inputs_are_rejected_cleanly() -> None:
    with pytest.raises(PayloadInvalid):
        parse_whatsapp(b"[" * 100_000 + b"]" * 100_000, max_bytes=10**6)
    with pytest.raises(PayloadInvalid):
        parse_telegram(b'{"update_id": 1' + b"0" * 5000 + b"}", "1")
    with pytest.raises(PayloadTooLarge):
        parse_whatsapp(b" " * 2048, max_bytes=1024)
    with pytest.raises(PayloadTooLarge):
        parse_twilio(b"a=1" * 1000, received_at=NOW, max_bytes=100)
    with pytest.raises(PayloadInvalid):
        parse_twilio(b"&".join(b"a=%d" % i for i in range(5000)), received_at=NOW)


# --- thread keys -----------------------------------------------------------------------------


@given(
    channel=st.sampled_from(Channel),
    account=st.text(min_size=1, max_size=20).filter(lambda a: ":" not in a),
    customer=st.text(min_size=1, max_size=30),
)
def test_thread_key_string_form_round_trips(channel: Channel, account: str, customer: str) -> None:
    key = ThreadKey(channel=channel, account=account, customer=customer)
    assert str(key) == f"{channel.value}:{account}:{customer}"
    assert ThreadKey.parse(str(key)) == key


@given(text=st.text(max_size=40))
def test_thread_key_parse_only_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert str(ThreadKey.parse(text)) == text
