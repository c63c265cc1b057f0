"""The fake Messenger and Instagram Send APIs (Meta's messaging platform), and their CDN.

``POST /{messenger|instagram}/{version}/{account}/messages`` with the Page (Instagram) access
token as a bearer header (or ``access_token`` in the query), body ``{"recipient": {"id"},
"messaging_type", "tag"?, "message": {"text"} | {"attachment": {"type", "payload": {"url"}}}}``.
Checked as Meta does: the token; the 24-hour window after the customer's latest message
(:meth:`ProviderSandbox.meta_customer_wrote`; a customer who never wrote is "no matching
user"), beyond it ``MESSAGE_TAG`` / ``HUMAN_AGENT`` up to 7 days when the app has the Human
Agent permission (``SandboxCredentials.meta_human_agent``); the text limit (Messenger 2,000,
Instagram 1,000, in UTF-16 units); an attachment's URL must be fetchable. Errors are Graph
errors with ``code`` and ``error_subcode``, Messenger's window closed 10/2018278, Instagram's
10/2534022 (HTTP 403, ``IGApiException``).

``GET /{messenger|instagram}/cdn/{media_id}?oe=<hex expiry>`` serves registered media without
a token, as Meta's signed CDN URLs are (:meth:`ProviderSandbox.meta_media_url`); past its
expiry, 403 "URL signature expired".

An accepted Messenger send is followed by a signed ``delivery`` webhook to the bridge (when
:meth:`ProviderSandbox.configure_webhooks` gave a Messenger app secret).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Final

from channels import Channel, utf16_length
from runtime import Request, Response, json_response

from ._builders import messenger_delivery_webhook
from ._http import LinkedFile, bearer, is_url, media_bytes, query_params, same
from ._state import CURRENT_CREDENTIAL, PendingWebhook, SandboxFailure, SandboxState

__all__ = [
    "META_HUMAN_AGENT_SECONDS",
    "META_TEXT_LIMITS",
    "META_WINDOW_SECONDS",
    "cdn_url",
    "instagram",
    "instagram_links",
    "messenger",
    "messenger_links",
]

META_WINDOW_SECONDS: Final = 24 * 3600.0
META_HUMAN_AGENT_SECONDS: Final = 7 * 24 * 3600.0
META_TEXT_LIMITS: Final = {Channel.MESSENGER: 2000, Channel.INSTAGRAM: 1000}
_WINDOW_SUBCODES: Final = {Channel.MESSENGER: 2018278, Channel.INSTAGRAM: 2534022}
_ATTACHMENT_TYPES: Final = frozenset({"image", "video", "audio", "file"})


def cdn_url(
    base_url: str, channel: Channel, media_id: str, *, expires_at: float | None = None
) -> str:
    """The signed CDN URL of registered media under the sandbox served at ``base_url``, as
    served by ``GET /{channel}/cdn/{id}?oe=<hex expiry>`` (default: an hour from now)."""
    expiry = int(expires_at if expires_at is not None else time.time() + 3600)
    return f"{base_url.rstrip('/')}/{channel.value}/cdn/{media_id}?oe={expiry:x}"


def _token(state: SandboxState, channel: Channel, request: Request) -> str | None:
    given = bearer(request) or query_params(request).get("access_token")
    expected = state.credentials.meta_token(channel)
    return expected if same(given, expected) else None


def _error(
    channel: Channel, status: int, code: int, message: str, subcode: int | None = None
) -> Response:
    kind = "IGApiException" if channel is Channel.INSTAGRAM else "OAuthException"
    error: dict[str, object] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return json_response(status, {"error": {**error, "fbtrace_id": "Sandbox"}})


def _window_closed(channel: Channel) -> Response:
    status = 403 if channel is Channel.INSTAGRAM else 400
    return _error(
        channel, status, 10, "(#10) This message is sent outside of allowed window.",
        _WINDOW_SUBCODES[channel],
    )  # fmt: skip


def messenger_links(state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    """The attachment URL an authenticated Messenger send names (Meta fetches it itself)."""
    return _links(Channel.MESSENGER, state, request, parts)


def instagram_links(state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    """The attachment URL an authenticated Instagram send names (Meta fetches it itself)."""
    return _links(Channel.INSTAGRAM, state, request, parts)


def _links(channel: Channel, state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    if len(parts) != 3 or parts[2] != "messages":
        return []
    if _token(state, channel, request) is None:
        return []
    body = json.loads(request.body)
    message = body.get("message") if isinstance(body, dict) else None
    attachment = message.get("attachment") if isinstance(message, dict) else None
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    url = payload.get("url") if isinstance(payload, dict) else None
    return [url] if isinstance(url, str) and is_url(url) else []


async def messenger(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``/messenger/...``: the Send API and the CDN."""
    return _meta(Channel.MESSENGER, state, request, parts, linked)


async def instagram(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``/instagram/...``: the Send API and the CDN."""
    return _meta(Channel.INSTAGRAM, state, request, parts, linked)


def _meta(
    channel: Channel,
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    if len(parts) == 2 and parts[0] == "cdn" and request.method == "GET":
        media = state.media.get(parts[1])
        expiry = query_params(request).get("oe", "")
        try:
            expired = int(expiry, 16) < time.time()
        except ValueError:
            return Response(403, b"Bad URL hash", "text/plain")
        if media is None:
            return Response(404, b"not found", "text/plain")
        if expired:
            return Response(403, b"URL signature expired", "text/plain")
        return media_bytes(state, request, parts[1], media.content, media.mime_type)
    token = _token(state, channel, request)
    if token is None:
        return _error(channel, 400, 190, "Invalid OAuth access token - Cannot parse access token")
    CURRENT_CREDENTIAL.set(token)
    if len(parts) == 3 and parts[2] == "messages" and request.method == "POST":
        return _send(channel, state, parts[1], request.body, linked)
    if len(parts) == 2 and parts[1] == "me" and request.method == "GET":  # the token's Page
        account = state.credentials.meta_account(channel)
        return json_response(200, {"id": account, "name": "Threadline Sandbox"})
    return _error(channel, 400, 100, "Unsupported post request. Object does not exist")


def _send(
    channel: Channel,
    state: SandboxState,
    account: str,
    raw: bytes,
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    try:
        body = json.loads(raw)
        assert isinstance(body, dict)
        to = body["recipient"]["id"]
        assert isinstance(to, str)
        assert to
        message = body["message"]
        assert isinstance(message, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        return _error(channel, 400, 100, "(#100) Invalid parameter")
    messaging_type = body.get("messaging_type", "RESPONSE")
    tag = body.get("tag")
    if messaging_type not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return _error(channel, 400, 100, "(#100) Invalid messaging_type")
    if messaging_type == "MESSAGE_TAG" and tag != "HUMAN_AGENT":
        return _error(channel, 400, 100, "(#100) The sandbox knows the HUMAN_AGENT tag only")
    script = state.take_failure(channel, to)
    if script is not None:
        if script.failure is SandboxFailure.BLOCKED:
            return _error(channel, 400, 551, "(#551) This person isn't available right now.",
                          1545041)  # fmt: skip
        if script.failure is SandboxFailure.OUTSIDE_WINDOW:
            return _window_closed(channel)
        if script.failure is SandboxFailure.RATE_LIMITED:
            return _error(
                channel, 400, 613, "(#613) Calls to this api have exceeded the rate limit."
            )
        if script.failure is SandboxFailure.SERVER_ERROR:
            return _error(channel, 500, 1200, "(#1200) Temporary send message failure.")
    last = state.meta_last_inbound.get((channel, account, to))
    if last is None:
        return _error(channel, 400, 100, "(#100) No matching user found", 2018001)
    age = time.time() - last
    if messaging_type == "MESSAGE_TAG":
        if not state.credentials.meta_human_agent:
            return _error(channel, 400, 200, "(#200) The Human Agent permission is required")
        if age > META_HUMAN_AGENT_SECONDS:
            return _window_closed(channel)
    elif age > META_WINDOW_SECONDS:
        return _window_closed(channel)
    text = message.get("text")
    attachment = message.get("attachment")
    media_url: str | None = None
    mime: str | None = None
    kind = "text"
    if text is not None:
        limit = META_TEXT_LIMITS[channel]
        if not isinstance(text, str) or not text:
            return _error(channel, 400, 100, "(#100) message[text] must be a non-empty string")
        if utf16_length(text) > limit:
            return _error(
                channel, 400, 100,
                f"(#100) Length of param message[text] must be less than or equal to {limit}",
            )  # fmt: skip
    elif isinstance(attachment, dict):
        kind = str(attachment.get("type"))
        payload = attachment.get("payload")
        url = payload.get("url") if isinstance(payload, dict) else None
        if kind not in _ATTACHMENT_TYPES or not is_url(url):
            return _error(channel, 400, 100, "(#100) Invalid attachment")
        assert isinstance(url, str)
        fetched = linked.get(url)
        if fetched is None:
            return _error(channel, 400, 100, "(#100) Failed to fetch the file from the url",
                          2018008)  # fmt: skip
        media_url, mime = url, fetched.mime_type
    else:
        return _error(channel, 400, 100, "(#100) Must send either message text or attachment")
    message_id = f"m_SANDBOX{state.next_id():012d}"
    state.record(
        channel=channel,
        account=account,
        to=to,
        message_id=message_id,
        type=kind,
        text=text,
        media_url=media_url,
        mime_type=mime,
        tag=tag if messaging_type == "MESSAGE_TAG" else None,
    )
    if channel is Channel.MESSENGER and state.bridge_url and state.messenger_app_secret:
        receipt = messenger_delivery_webhook(state.messenger_app_secret, account, to, [message_id])
        state.outbox.append(PendingWebhook("/webhooks/messenger", receipt.body, receipt.headers))
    return json_response(200, {"recipient_id": to, "message_id": message_id})
