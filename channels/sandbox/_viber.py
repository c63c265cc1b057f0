"""The fake Viber REST bot API: ``send_message`` (text, picture, video, file by URL),
``get_account_info``, ``set_webhook`` (followed by a signed ``webhook`` check callback, as
Viber does, to the URL's path on the bridge the sandbox was told about) and the media URLs of
customers' messages (``/viber/media/{id}``, no auth).

Like the real API it answers HTTP 200 with a JSON ``status`` (0 ok; 2 invalidAuthToken,
3 badData, 4 missingData, 6 notSubscribed, 12 tooManyRequests, 99 general error), checks the
auth token (``X-Viber-Auth-Token``), the sender name (1-28 characters), the text limit (7,000)
and the media limits, and refuses sends to a user who unsubscribed
(:meth:`ProviderSandbox.viber_unsubscribe`). Message tokens are above 2**53.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from channels import Channel, utf16_length
from runtime import Request, Response, json_response

from ._builders import viber_event_webhook
from ._http import LinkedFile, is_url, media_bytes, same
from ._state import CURRENT_CREDENTIAL, PendingWebhook, SandboxFailure, SandboxState

__all__ = ["VIBER_TEXT_LIMIT", "viber", "viber_links", "viber_media_url"]

VIBER_TEXT_LIMIT: Final = 7000
_NAME_LIMIT: Final = 28
_CAPTION_LIMIT: Final = 768
_PICTURE_BYTES: Final = 1024 * 1024
_VIDEO_BYTES: Final = 26 * 1024 * 1024
_FILE_BYTES: Final = 50 * 1024 * 1024
_PICTURES: Final = frozenset({"image/jpeg", "image/png", "image/gif"})
_USER: Final = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")
_TOKEN_BASE: Final = 5_000_000_000_000_000_000
"""Message tokens start here: above 2**53, as Viber's are."""
_FAILURES: Final = {
    SandboxFailure.BLOCKED: (6, "notSubscribed"),
    SandboxFailure.OUTSIDE_WINDOW: (6, "notSubscribed"),
    SandboxFailure.RATE_LIMITED: (12, "tooManyRequests"),
    SandboxFailure.SERVER_ERROR: (99, "General error"),
}


def viber_media_url(viber_base_url: str, media_id: str) -> str:
    """A customer's media URL in a callback, served by ``GET /viber/media/{id}`` without auth."""
    return f"{viber_base_url.rstrip('/')}/media/{media_id}"


def _status(code: int, message: str) -> Response:
    return json_response(200, {"status": code, "status_message": message})


def _token(state: SandboxState, request: Request) -> str | None:
    given = request.headers.get("x-viber-auth-token")
    for token in state.credentials.viber_auth_tokens:
        if same(given, token):
            return token
    return None


def _body(request: Request) -> dict[str, object] | None:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def viber_links(state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    """The media URL an authenticated ``send_message`` names (Viber fetches it itself)."""
    if parts != ["pa", "send_message"] or _token(state, request) is None:
        return []
    body = _body(request)
    media = body.get("media") if body is not None else None
    return [media] if isinstance(media, str) and is_url(media) else []


async def viber(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``/viber/pa/{method}`` and ``GET /viber/media/{id}``."""
    if len(parts) == 2 and parts[0] == "media" and request.method == "GET":
        media = state.media.get(parts[1])
        if media is None:
            return Response(404, b"not found", "text/plain")
        return media_bytes(state, request, parts[1], media.content, media.mime_type)
    if len(parts) != 2 or parts[0] != "pa" or request.method != "POST":
        return json_response(404, {"error": "not found"})
    token = _token(state, request)
    if token is None:
        return _status(2, "invalidAuthToken")
    CURRENT_CREDENTIAL.set(token)
    body = _body(request)
    if body is None:
        return _status(3, "badData")
    if parts[1] == "send_message":
        return _send(state, token, body, linked)
    if parts[1] == "get_account_info":
        index = state.credentials.viber_auth_tokens.index(token)
        info = {
            "status": 0,
            "status_message": "ok",
            "id": f"pa:{5_000_000_000_000_000_000 + index}",
            "name": f"Threadline Sandbox {index + 1}",
            "uri": f"threadline-sandbox-{index + 1}",
            "category": "Business",
            "webhook": state.viber_webhooks.get(token, ""),
            "event_types": ["delivered", "seen", "failed", "subscribed", "unsubscribed"],
            "subscribers_count": 0,
        }
        return json_response(200, info)
    if parts[1] == "set_webhook":
        url = body.get("url")
        if not isinstance(url, str):
            return _status(4, "missingData")
        if url and not url.startswith("https://") and not url.startswith("/"):
            return _status(1, "invalidUrl")
        state.viber_webhooks[token] = url
        if url and state.bridge_url:  # Viber checks the URL with a signed ``webhook`` callback
            check = viber_event_webhook(token, "webhook", message_token=state.next_id())
            state.outbox.append(PendingWebhook(_on_bridge(url), check.body, check.headers))
        return json_response(200, {"status": 0, "status_message": "ok", "event_types": []})
    return json_response(404, {"error": "not found"})


def _on_bridge(url: str) -> str:
    """The path of a webhook URL: callbacks go to that path on the bridge the sandbox was told
    about (``bridge_url``), never to a public URL."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _send(
    state: SandboxState,
    token: str,
    body: dict[str, object],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    receiver, kind, sender = body.get("receiver"), body.get("type"), body.get("sender")
    name = sender.get("name") if isinstance(sender, dict) else None
    if not isinstance(receiver, str) or not isinstance(kind, str) or not isinstance(name, str):
        return _status(4, "missingData")
    if not _USER.fullmatch(receiver) or not 0 < len(name) <= _NAME_LIMIT:
        return _status(3, "badData")
    text = body.get("text")
    media_url = body.get("media")
    mime: str | None = None
    if kind == "text":
        if not isinstance(text, str) or not text.strip():
            return _status(4, "missingData")
        if utf16_length(text) > VIBER_TEXT_LIMIT:
            return _status(3, "badData")
    elif kind in ("picture", "video", "file"):
        if not isinstance(media_url, str) or not is_url(media_url):
            return _status(4, "missingData")
        fetched = linked.get(media_url)
        if fetched is None:
            return _status(3, "badData")
        mime = fetched.mime_type
        if kind == "picture":
            caption = text if isinstance(text, str) else ""
            if mime not in _PICTURES or fetched.size > _PICTURE_BYTES:
                return _status(3, "badData")
            if len(caption) > _CAPTION_LIMIT:
                return _status(3, "badData")
        else:
            size, file_name = body.get("size"), body.get("file_name")
            if not isinstance(size, int) or isinstance(size, bool) or size != fetched.size:
                return _status(4, "missingData")
            if size > (_VIDEO_BYTES if kind == "video" else _FILE_BYTES):
                return _status(3, "badData")
            if kind == "video" and not mime.startswith("video/"):
                return _status(3, "badData")
            if kind == "file" and not (isinstance(file_name, str) and file_name):
                return _status(4, "missingData")
            if text is not None:
                return _status(3, "badData")
    else:
        return _status(3, "badData")
    if receiver in state.viber_unsubscribed:
        state.refused.append((Channel.VIBER.value, receiver, 6))
        return _status(6, "notSubscribed")
    script = state.take_failure(Channel.VIBER, receiver)
    later = script is not None and script.failure is SandboxFailure.FAILED_LATER
    if script is not None and not later:
        code, message = _FAILURES.get(script.failure, (6, "notSubscribed"))
        return _status(code, message)
    message_token = _TOKEN_BASE + state.next_id()
    file_name = body.get("file_name")
    state.record(
        channel=Channel.VIBER,
        account=name,
        to=receiver,
        message_id=str(message_token),
        type={"picture": "image", "file": "document"}.get(kind, kind),
        text=text if isinstance(text, str) and text else None,
        media_url=media_url if isinstance(media_url, str) else None,
        mime_type=mime,
        filename=file_name if isinstance(file_name, str) else None,
    )
    target = _on_bridge(state.viber_webhooks.get(token) or "/webhooks/viber")
    if later and script is not None and state.bridge_url:
        failed = viber_event_webhook(
            token, "failed", user_id=receiver, message_token=message_token,
            desc="the message could not be delivered (sandbox)",
        )  # fmt: skip
        state.outbox.append(PendingWebhook(target, failed.body, failed.headers))
    answer = {
        "status": 0,
        "status_message": "ok",
        "message_token": message_token,
        "chat_hostname": "SN-CHAT-01_",
        "billing_status": 1,
    }
    return Response(200, json.dumps(answer).encode(), "application/json")
