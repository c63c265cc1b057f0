"""Meta's Graph errors of a failed send (:func:`classify_meta_error`): the error body's ``code``
and ``error_subcode`` (not the HTTP status, mostly 400) on the shared ladder."""

from __future__ import annotations

import json
from typing import Final

import httpx

from .._classify import ErrorCodes, classify_error
from .._errors import ChannelError, OutsideCustomerWindow, RecipientUnavailable
from ._apps import INSTAGRAM, MESSENGER

__all__ = ["classify_instagram_error", "classify_meta_error", "classify_messenger_error"]

_CODES: Final = ErrorCodes(
    window=frozenset(),  # by subcode: code 10 is also "permission denied"
    rate=frozenset({4, 17, 32, 613, 80006}),
    recipient=frozenset({551}),
    transient=frozenset({1, 2, 1200}),
)
_RECIPIENT_SUBCODES: Final = frozenset({1545041, 2018001, 2018108})
"""This person isn't available; no matching user; a user who cannot receive messages."""


def _graph_error(body: bytes) -> tuple[int | None, int | None, str]:
    try:
        error = json.loads(body)["error"]
        code, subcode = error.get("code"), error.get("error_subcode")
        return (
            code if isinstance(code, int) else None,
            subcode if isinstance(subcode, int) else None,
            str(error.get("message", ""))[:200],
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None, None, ""


def _regain_seconds(response: httpx.Response) -> float | None:
    """``estimated_time_to_regain_access`` (minutes) of the usage headers, in seconds."""
    minutes = 0.0
    for header in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        items = [usage] if isinstance(usage, dict) else []
        for value in usage.values() if isinstance(usage, dict) else ():
            items.extend(v for v in value if isinstance(v, dict)) if isinstance(value, list) else ()
        for item in items:
            wait = item.get("estimated_time_to_regain_access")
            if isinstance(wait, (int, float)) and 0 <= wait < 24 * 60:
                minutes = max(minutes, float(wait))
    return minutes * 60 if minutes else None


def classify_meta_error(
    response: httpx.Response, provider: str, window_subcodes: frozenset[int]
) -> ChannelError:
    """Map a failed Send API response to the ChannelError tree (pure).

    ``error_subcode`` in ``window_subcodes`` (Messenger 2018278, Instagram 2534022) →
    OutsideCustomerWindow; 4/17/32/613/80006 or HTTP 429 → SendRateLimited (the usage
    headers' ``estimated_time_to_regain_access`` as ``retry_after``); 551, or subcode
    1545041/2018001/2018108 → RecipientUnavailable; 5xx or 1/2/1200 → SendTransient; anything
    else (190 token, 200 permission, 100 bad parameter) → SendRejected.
    """
    code, subcode, message = _graph_error(response.content)
    status = response.status_code
    if subcode is not None and subcode in window_subcodes:
        text = f"{provider} HTTP {status} error {code}/{subcode}: {message}"
        return OutsideCustomerWindow(text, code=code, status=status)
    if subcode is not None and subcode in _RECIPIENT_SUBCODES:
        text = f"{provider} HTTP {status} error {code}/{subcode}: {message}"
        return RecipientUnavailable(text, code=code, status=status)
    retry_after = _regain_seconds(response) if code in _CODES.rate or status == 429 else None
    return classify_error(provider, response, code, message, _CODES, retry_after=retry_after)


def classify_messenger_error(response: httpx.Response) -> ChannelError:
    """:func:`classify_meta_error` for Messenger (window closed: subcode 2018278)."""
    return classify_meta_error(response, MESSENGER.name, MESSENGER.window_subcodes)


def classify_instagram_error(response: httpx.Response) -> ChannelError:
    """:func:`classify_meta_error` for Instagram (window closed: subcode 2534022)."""
    return classify_meta_error(response, INSTAGRAM.name, INSTAGRAM.window_subcodes)
