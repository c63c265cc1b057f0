"""The fake LINE Messaging API: reply and push (their limits, reply tokens, retry keys) and
message content.

``/line/v2/bot/message/reply|push`` (``THREADLINE_LINE_BASE_URL = …/line``) and
``/line-data/v2/bot/message/{id}/content`` (``THREADLINE_LINE_DATA_BASE_URL = …/line-data``).
Checks the channel access token like the real API, at most 5 messages per request, a text's
5,000 characters, images by a URL the fake fetches (JPEG or PNG), and reply tokens: issued by
:meth:`ProviderSandbox.line_message` with the webhook that carries them, single-use, and
refused (``400 Invalid reply token``) once used or older than
:attr:`SandboxState.line_reply_token_seconds`. A push's ``X-Line-Retry-Key`` seen before is
answered 409, as LINE does. Scripted failures (:meth:`ProviderSandbox.fail`, the recipient the
user id) apply to pushes and to replies (a reply's 500 spends its token).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Final

import trio

from channels import Channel, utf16_length
from runtime import Request, Response, json_response

from ._http import LinkedFile, bearer, is_url, media_bytes, same
from ._state import CURRENT_CREDENTIAL, SandboxFailure, SandboxState

__all__ = [
    "LINE_SANDBOX_TEXT_LIMIT",
    "issue_reply_token",
    "line",
    "line_content",
    "line_links",
]

LINE_SANDBOX_TEXT_LIMIT: Final = 5000
_MAX_MESSAGES: Final = 5
_IMAGE_CAP: Final = 10 * 1024 * 1024
_IMAGES: Final = frozenset({"image/jpeg", "image/png"})
_ACCEPTED_FIRST: Final = frozenset({SandboxFailure.ACCEPTED_THEN_ERROR, SandboxFailure.LATE_ANSWER})
"""Scripted push failures that send the message (and remember its retry key) first."""
_LATE_SECONDS: Final = 10.0
"""How late a ``LATE_ANSWER`` push is answered (after it is recorded)."""


def issue_reply_token(state: SandboxState, user_id: str, seconds_left: float | None) -> str:
    """A reply token for a message from ``user_id``, accepted once within ``seconds_left``
    (None: the full :attr:`SandboxState.line_reply_token_seconds`; 0: already expired)."""
    token = f"sandbox-reply-{state.next_id()}"
    seconds = state.line_reply_token_seconds
    left = seconds if seconds_left is None else seconds_left
    state.line_reply_tokens[token] = (user_id, time.time() - (seconds - left))
    return token


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> Response:
    body: dict[str, object] = {"message": message}
    if details:
        body["details"] = details
    return json_response(status, body)


def _token(state: SandboxState, request: Request) -> str | None:
    """The access token presented, when the fake knows it."""
    given = bearer(request)
    for token in state.credentials.line_channel_access_tokens:
        if same(given, token):
            return token
    return None


def _messages(request: Request) -> tuple[dict[str, object], list[dict[str, object]]] | None:
    try:
        body = json.loads(request.body)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return None
    return body, messages


def line_links(state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    """The image URLs an authenticated send names (LINE fetches them itself)."""
    if _token(state, request) is None:
        return []
    found = _messages(request)
    if found is None:
        return []
    urls = [m.get("originalContentUrl") for m in found[1] if m.get("type") == "image"]
    return [url for url in urls if isinstance(url, str) and is_url(url)]


def _check(
    messages: list[dict[str, object]], linked: Mapping[str, LinkedFile | None]
) -> Response | None:
    """LINE's refusal of a batch of message objects, or None."""
    if not 0 < len(messages) <= _MAX_MESSAGES:
        return _error(
            400,
            "The request body has 1 error(s)",
            [{"message": "Size must be between 1 and 5", "property": "messages"}],
        )
    for index, message in enumerate(messages):
        kind = message.get("type")
        if kind == "text":
            text = message.get("text")
            if not isinstance(text, str) or not text:
                return _error(
                    400,
                    "The request body has 1 error(s)",
                    [{"message": "May not be empty", "property": f"messages[{index}].text"}],
                )
            if utf16_length(text) > LINE_SANDBOX_TEXT_LIMIT:
                return _error(
                    400,
                    "The request body has 1 error(s)",
                    [
                        {
                            "message": "Length must be between 0 and 5000",
                            "property": f"messages[{index}].text",
                        }
                    ],
                )
        elif kind == "image":
            url, preview = message.get("originalContentUrl"), message.get("previewImageUrl")
            if not (is_url(url) and is_url(preview)):
                return _error(
                    400,
                    "The request body has 1 error(s)",
                    [{"message": "Invalid URL", "property": f"messages[{index}]"}],
                )
            assert isinstance(url, str)
            fetched = linked.get(url)
            if fetched is None or fetched.size > _IMAGE_CAP or fetched.mime_type not in _IMAGES:
                return _error(400, "The image could not be fetched or is not JPEG or PNG")
        else:
            return _error(
                400,
                "The request body has 1 error(s)",
                [
                    {
                        "message": "Must be one of the following values: [text, image]"
                        " (sandbox subset)",
                        "property": f"messages[{index}].type",
                    }
                ],
            )
    return None


def _bot(state: SandboxState, request: Request, token: str, parts: list[str]) -> Response:
    """``GET /v2/bot/info`` and ``GET|PUT /v2/bot/channel/webhook/endpoint`` (the sandbox
    records the endpoint, delivers nothing)."""
    if parts == ["v2", "bot", "info"] and request.method == "GET":
        info = {
            "userId": state.line_bot_user_id,
            "basicId": "@threadline",
            "displayName": "Threadline Sandbox",
            "chatMode": "chat",
            "markAsReadMode": "manual",
        }
        return json_response(200, info)
    if parts != ["v2", "bot", "channel", "webhook", "endpoint"]:
        return _error(404, "Not found")
    if request.method == "GET":
        endpoint, active = state.line_webhooks.get(token, ("", False))
        if not endpoint:
            return _error(404, "Not found")  # LINE: no webhook URL set
        return json_response(200, {"endpoint": endpoint, "active": active})
    if request.method != "PUT":
        return _error(405, "Method not allowed")
    try:
        body = json.loads(request.body)
    except ValueError:
        body = None
    url = body.get("endpoint") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url.startswith("https://"):
        return _error(
            400,
            "The request body has 1 error(s)",
            [{"message": "must be an HTTPS URL", "property": "endpoint"}],
        )
    state.line_webhooks[token] = (url, True)
    return json_response(200, {})


async def line(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``POST /line/v2/bot/message/reply`` and ``/push``, ``GET /line/v2/bot/info``, and the
    webhook endpoint's ``GET`` and ``PUT``."""
    token = _token(state, request)
    if token is None:
        return _error(
            401,
            "Authentication failed. Confirm that the access token in the authorization header"
            " is valid.",
        )
    CURRENT_CREDENTIAL.set(token)
    if parts[:3] == ["v2", "bot", "info"] or parts[:4] == ["v2", "bot", "channel", "webhook"]:
        return _bot(state, request, token, parts)
    if request.method != "POST" or parts[:3] != ["v2", "bot", "message"] or len(parts) != 4:
        return _error(404, "Not found")
    found = _messages(request)
    if found is None:
        return _error(400, "The request body has 1 error(s)")
    body, messages = found
    refused = _check(messages, linked)
    if refused is not None:
        return refused
    if parts[3] == "reply":
        reply_token = body.get("replyToken")
        issued = state.line_reply_tokens.get(reply_token) if isinstance(reply_token, str) else None
        if issued is None or time.time() - issued[1] > state.line_reply_token_seconds:
            state.line_invalid_replies.append(str(reply_token))
            return _error(400, "Invalid reply token")
        del state.line_reply_tokens[str(reply_token)]  # single-use
        failed = state.take_failure(Channel.LINE, issued[0])
        if failed is not None and failed.failure is SandboxFailure.SERVER_ERROR:
            return _error(500, "Internal server error")  # the token is spent all the same
        if failed is not None:
            return _error(429, "The API rate limit has been exceeded. Try again later.")
        return _accept(state, issued[0], messages, "reply")
    if parts[3] != "push":
        return _error(404, "Not found")
    to = body.get("to")
    if not isinstance(to, str) or not to or len(to) > 100:
        return _error(400, "The property, 'to', in the request body is invalid")
    retry_key = request.headers.get("x-line-retry-key")
    if retry_key is not None and retry_key in state.line_retry_keys:
        return _error(409, "The retry key is already accepted")
    script = state.take_failure(Channel.LINE, to)
    if script is not None and script.failure in _ACCEPTED_FIRST:
        if retry_key is not None:
            state.line_retry_keys.add(retry_key)
        accepted = _accept(state, to, messages, "push")
        if script.failure is SandboxFailure.LATE_ANSWER:
            await trio.sleep(_LATE_SECONDS)
            return accepted
        return _error(500, "Internal server error")
    if script is not None:
        if script.failure is SandboxFailure.RATE_LIMITED:
            return _error(429, "The API rate limit has been exceeded. Try again later.")
        if script.failure is SandboxFailure.SERVER_ERROR:
            return _error(500, "Internal server error")
        return _error(429, "You have reached your monthly limit.")
    if retry_key is not None:
        state.line_retry_keys.add(retry_key)
    return _accept(state, to, messages, "push")


def _accept(state: SandboxState, to: str, messages: list[dict[str, object]], via: str) -> Response:
    account = state.line_bot_user_id
    sent: list[dict[str, str]] = []
    for message in messages:
        message_id = str(461230966842064897 + state.next_id())
        url = message.get("originalContentUrl")
        state.record(
            channel=Channel.LINE,
            account=account,
            to=to,
            message_id=message_id,
            type=str(message.get("type")),
            text=message.get("text") if message.get("type") == "text" else None,
            media_url=url if isinstance(url, str) else None,
            via=via,
        )
        sent.append({"id": message_id, "quoteToken": f"q{message_id}"})
    return json_response(200, {"sentMessages": sent})


async def line_content(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``GET /line-data/v2/bot/message/{id}/content``: a customer's file."""
    if request.method != "GET" or len(parts) != 5 or parts[:3] != ["v2", "bot", "message"]:
        return _error(404, "Not found")
    if parts[4] != "content":
        return _error(404, "Not found")
    if _token(state, request) is None:
        return _error(401, "Authentication failed.")
    media = state.media.get(parts[3])
    if media is None:
        return _error(404, "Not found")
    return media_bytes(state, request, parts[3], media.content, media.mime_type)
