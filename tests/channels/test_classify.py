"""Pure classification of provider error responses (codes the sandbox does not script)."""

from __future__ import annotations

import json

import httpx
import pytest

from channels import (
    ChannelError,
    OutsideCustomerWindow,
    RecipientUnavailable,
    SendRateLimited,
    SendRejected,
    SendTransient,
    classify_telegram_error,
    classify_twilio_error,
    classify_whatsapp_error,
)


def response(status: int, body: object, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


def graph(code: int) -> dict[str, object]:
    return {"error": {"message": f"(#{code}) x", "type": "OAuthException", "code": code}}


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 131047, OutsideCustomerWindow),
        (400, 131026, RecipientUnavailable),
        (400, 131030, RecipientUnavailable),
        (400, 131056, SendRateLimited),
        (400, 131048, SendRateLimited),
        (400, 80007, SendRateLimited),
        (429, 130429, SendRateLimited),
        (400, 4, SendRateLimited),
        (500, 131000, SendTransient),
        (503, 131016, SendTransient),
        (400, 100, SendRejected),
        (401, 190, SendRejected),
    ],
)
def test_whatsapp_codes(status: int, code: int, expected: type[ChannelError]) -> None:
    error = classify_whatsapp_error(response(status, graph(code)))
    assert type(error) is expected
    assert (error.code, error.status) == (code, status)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 63016, OutsideCustomerWindow),
        (400, 21211, RecipientUnavailable),
        (400, 21614, RecipientUnavailable),
        (400, 21610, RecipientUnavailable),
        (400, 63003, RecipientUnavailable),
        (429, 20429, SendRateLimited),
        (400, 63018, SendRateLimited),
        (500, 20500, SendTransient),
        (400, 21602, SendRejected),
        (401, 20003, SendRejected),
    ],
)
def test_twilio_codes(status: int, code: int, expected: type[ChannelError]) -> None:
    body = {"code": code, "message": "m", "more_info": "", "status": status}
    error = classify_twilio_error(response(status, body))
    assert type(error) is expected
    assert error.code == code


@pytest.mark.parametrize(
    ("status", "description", "expected"),
    [
        (429, "Too Many Requests: retry after 35", SendRateLimited),
        (403, "Forbidden: bot was blocked by the user", RecipientUnavailable),
        (403, "Forbidden: user is deactivated", RecipientUnavailable),
        (400, "Bad Request: chat not found", RecipientUnavailable),
        (400, "Bad Request: message text is empty", SendRejected),
        (401, "Unauthorized", SendRejected),
        (502, "Bad Gateway", SendTransient),
    ],
)
def test_telegram_descriptions(status: int, description: str, expected: type[ChannelError]) -> None:
    body: dict[str, object] = {"ok": False, "error_code": status, "description": description}
    if status == 429:
        body["parameters"] = {"retry_after": 35}
    error = classify_telegram_error(response(status, body))
    assert type(error) is expected
    if isinstance(error, SendRateLimited):
        assert error.retry_after == 35


@pytest.mark.parametrize("body", [b"", b"<html>busy</html>", b"[1]", b'{"error": 3}', b"[" * 5000])
def test_unreadable_error_bodies_fall_back_to_the_status(body: bytes) -> None:
    for classify in (classify_whatsapp_error, classify_twilio_error, classify_telegram_error):
        assert type(classify(response(503, body))) is SendTransient
        assert type(classify(response(404, body))) is SendRejected
        limited = classify(response(429, body, **{"Retry-After": "12"}))
        assert isinstance(limited, SendRateLimited)
        assert limited.retry_after == 12


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    limited = classify_twilio_error(response(429, b"", **{"Retry-After": "2.5"}))
    assert isinstance(limited, SendRateLimited)
    assert limited.retry_after == 2.5
    past = classify_whatsapp_error(
        response(429, b"", **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    assert isinstance(past, SendRateLimited)
    assert past.retry_after == 0.0
    garbage = classify_whatsapp_error(response(429, b"", **{"Retry-After": "soon"}))
    assert isinstance(garbage, SendRateLimited)
    assert garbage.retry_after is None
