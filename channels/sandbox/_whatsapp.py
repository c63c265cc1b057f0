"""The fake WhatsApp Cloud API (Graph): sends, media, templates, phone numbers.

Checks credentials like the real API, answers in its shapes, records sends and fails as
scripted. Handlers take the request with its path split into segments after ``/whatsapp``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Final

import trio

from channels import Channel
from channels._model import media_type
from runtime import Request, Response, json_response

from ._builders import whatsapp_status_webhook
from ._http import (
    LinkedFile,
    base_url,
    bearer,
    body_fields,
    is_url,
    media_bytes,
    query_params,
    same,
)
from ._state import (
    CURRENT_CREDENTIAL,
    WHATSAPP_WINDOW_SECONDS,
    PendingWebhook,
    SandboxFailure,
    SandboxState,
)

__all__ = ["WHATSAPP_TEXT_LIMIT", "whatsapp", "whatsapp_links"]

_KINDS: Final = ("text", "image", "video", "audio", "document", "sticker", "template")
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_WA_MEDIA_TYPES: Final = {
    "image": frozenset({"image/jpeg", "image/png"}),
    "sticker": frozenset({"image/webp"}),
}
"""Message types whose media the Cloud API restricts, as checked here (image: JPEG and PNG only;
sticker: WebP)."""
# The provider's text limit, counted as it counts it (README, "Replies"): a longer text is
# refused, never cut, so a bridge that stops splitting fails a test.
WHATSAPP_TEXT_LIMIT: Final = 4096  # characters (code points) of text.body
_LATE_SECONDS: Final = 10.0
"""How late a ``LATE_ANSWER`` send is answered (after the send is recorded)."""


def whatsapp_links(state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    """The media ``link`` an authenticated send names (the real API fetches it itself)."""
    if len(parts) != 3 or parts[2] != "messages":
        return []
    if _token(state, request) is None:
        return []
    body = json.loads(request.body)
    payload = body.get(body.get("type")) if isinstance(body, dict) else None
    link = payload.get("link") if isinstance(payload, dict) else None
    return [link] if isinstance(link, str) and is_url(link) else []


def _token(state: SandboxState, request: Request) -> str | None:
    """The access token the request authenticated with, or None when it is none of them."""
    given = bearer(request)
    for token in state.credentials.whatsapp_access_tokens:
        if same(given, token):
            return token
    return None


def _graph_error(status: int, code: int, message: str, **headers: str) -> Response:
    error = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code}
    return json_response(status, {"error": {**error, "fbtrace_id": "Sandbox"}}, **headers)


_WA_FAILURES: Final = {
    SandboxFailure.BLOCKED: (400, 131026, "Message undeliverable"),
    SandboxFailure.OUTSIDE_WINDOW: (400, 131047, "Re-engagement message"),
    SandboxFailure.RATE_LIMITED: (429, 130429, "Rate limit hit"),
    SandboxFailure.SERVER_ERROR: (500, 131000, "Something went wrong"),
}


_WA_ERROR_TITLES: Final = {
    131026: "Message undeliverable",
    131049: "Meta chose not to deliver",
    131047: "Re-engagement message",
    130472: "User's number is part of an experiment",
}


async def whatsapp(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``/whatsapp/{version}/{media_id}``, ``/whatsapp/{version}/{phone_number_id}/messages``,
    ``/whatsapp/{version}/{phone_number_id}/media`` and the media bytes ``/whatsapp/_media/{id}``.
    """
    token = _token(state, request)
    if token is None:
        return _graph_error(401, 190, "Invalid OAuth access token")
    CURRENT_CREDENTIAL.set(token)
    if len(parts) == 2 and parts[0] == "_media" and request.method == "GET":
        media = state.media.get(parts[1])
        if media is None:
            return _graph_error(404, 100, "Unknown media")
        return media_bytes(state, request, parts[1], media.content, media.mime_type)
    if len(parts) == 3 and parts[2] == "message_templates" and request.method == "GET":
        if not state.credentials.may_read_templates(parts[1], token):
            return _graph_error(400, 100, "Unsupported get request. Object does not exist")
        if "after" not in query_params(request):  # a lookup's first page
            state.template_lookups.append((parts[1], token))
        return _whatsapp_templates(state, request)
    if parts[1:] == ["me"] and request.method == "GET":  # the token's (system) user
        return json_response(200, {"id": "100000000000900", "name": "Threadline Sandbox"})
    if len(parts) == 2 and request.method == "GET":
        media = state.media.get(parts[1])
        if media is None and parts[1] in state.credentials.whatsapp_phone_number_ids:
            return json_response(200, _phone_number(parts[1]))
        if media is None:
            return _graph_error(400, 100, "Unsupported get request. Object does not exist")
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{base_url(request)}/whatsapp/_media/{parts[1]}",
                "mime_type": media.mime_type,
                "sha256": state.lookup_digest(media),
                "file_size": len(media.content),
                "id": parts[1],
            },
        )
    if len(parts) == 3 and parts[2] == "media" and request.method == "POST":
        fields, files = body_fields(request)
        upload = files.get("file")
        if upload is None or fields.get("messaging_product") != "whatsapp":
            return _graph_error(400, 100, "Invalid parameter")
        mime = fields.get("type") or upload.content_type or "application/octet-stream"
        return json_response(200, {"id": state.add_media(upload.content, mime, upload.filename)})
    if len(parts) == 3 and parts[2] == "messages" and request.method == "POST":
        return await _whatsapp_send(state, parts[1], request.body, linked)
    return _graph_error(404, 100, "Unknown path components")


def _phone_number(phone_number_id: str) -> dict[str, object]:
    """``GET /{phone-number-id}`` as the Graph API answers it (default fields)."""
    return {
        "verified_name": "Threadline Sandbox",
        "code_verification_status": "VERIFIED",
        "display_phone_number": f"+1 555-{phone_number_id[-7:-4]}-{phone_number_id[-4:]}",
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "id": phone_number_id,
    }


async def _whatsapp_send(
    state: SandboxState,
    phone_number_id: str,
    raw: bytes,
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    try:
        body = json.loads(raw)
        assert isinstance(body, dict)
        to, kind = body["to"], body["type"]
        assert body.get("messaging_product") == "whatsapp"
        assert isinstance(to, str)
        assert to
        assert kind in _KINDS
        payload = body[kind]
        assert isinstance(payload, dict)
    except (ValueError, KeyError, AssertionError):
        return _graph_error(400, 100, "Invalid parameter")
    script = state.take_failure(Channel.WHATSAPP, to)
    slow = script is not None and script.failure is SandboxFailure.SLOW_ANSWER
    late = script is not None and script.failure is SandboxFailure.LATE_ANSWER
    later = script is not None and script.failure is SandboxFailure.FAILED_LATER
    if script is not None and not (slow or late or later):
        status, code, message = _WA_FAILURES[script.failure]
        return _graph_error(status, code, message, **{"retry-after": str(script.retry_after)})
    if kind == "template":
        reply = _whatsapp_template_send(state, phone_number_id, to, payload, slow=slow)
        if later and script is not None and reply.status == 200:
            _whatsapp_fails_later(
                state, phone_number_id, to, state.sent[-1].message_id, script.error_code
            )
        if late and reply.status == 200:
            await trio.sleep(_LATE_SECONDS)  # the send is recorded already
        return reply
    last = state.last_inbound.get(to)
    if last is not None and time.time() - last > WHATSAPP_WINDOW_SECONDS:
        return _graph_error(400, 131047, "Re-engagement message")
    media_id = payload.get("id")
    if kind == "text":
        text = payload.get("body")
        if not isinstance(text, str) or not text:
            return _graph_error(400, 100, "Invalid parameter: text.body is required")
        if len(text) > WHATSAPP_TEXT_LIMIT:
            return _graph_error(
                400,
                100,
                f"Param text['body'] must be at most {WHATSAPP_TEXT_LIMIT} characters long.",
            )
    else:
        text = payload.get("caption")
        if media_id is None and not payload.get("link"):
            return _graph_error(400, 100, "Invalid parameter: media id or link is required")
        if media_id is not None and media_id not in state.media:
            return _graph_error(400, 131053, "Media upload error")
    stored = state.media.get(str(media_id)) if media_id is not None else None
    fetched = linked.get(payload.get("link", "")) if stored is None else None
    found = stored.mime_type if stored else fetched.mime_type if fetched else None
    allowed = _WA_MEDIA_TYPES.get(kind)
    if allowed is not None and found is not None and media_type(found) not in allowed:
        # (A link that could not be fetched is accepted: the real API then fails it later.)
        expected = ", ".join(sorted(allowed))
        return _graph_error(
            400, 131053, f"Media upload error: unsupported {kind} type {found} (use {expected})"
        )
    message_id = f"wamid.SANDBOX{state.next_id():012d}"
    context = body.get("context")
    state.record(
        channel=Channel.WHATSAPP,
        account=phone_number_id,
        to=to,
        message_id=message_id,
        type=kind,
        text=text,
        media_id=media_id,
        media_url=payload.get("link"),
        mime_type=found,
        filename=payload.get("filename"),
        reply_to=context.get("message_id") if isinstance(context, dict) else None,
    )
    if later and script is not None:
        _whatsapp_fails_later(state, phone_number_id, to, message_id, script.error_code)
    reply = json_response(
        200,
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": message_id}],
        },
    )
    if slow:
        reply.drip_seconds = 5.0
    if late:
        await trio.sleep(_LATE_SECONDS)  # the send is recorded already
    return reply


def _whatsapp_templates(state: SandboxState, request: Request) -> Response:
    """``GET /{waba-id}/message_templates``: pages of ``limit`` (default 25), cursor ``after``."""
    state.template_fetches += 1
    query = query_params(request)
    limit = max(1, min(int(query.get("limit") or "25"), 100))
    start = int(query.get("after") or "0")
    page = state.templates[start : start + limit]
    body: dict[str, object] = {"data": page}
    end = start + len(page)
    cursors = {"before": str(start), "after": str(end)}
    body["paging"] = {"cursors": cursors}
    if end < len(state.templates):
        next_url = f"{base_url(request)}{request.path}?limit={limit}&after={end}"
        body["paging"] = {"cursors": cursors, "next": next_url}
    return json_response(200, body)


def _whatsapp_fails_later(
    state: SandboxState, phone_number_id: str, to: str, message_id: str, error_code: int | None
) -> None:
    """Queue the signed ``failed`` status a send accepted now is reported with later."""
    if not (state.bridge_url and state.whatsapp_app_secret):
        return
    code = error_code or 131026
    receipt = whatsapp_status_webhook(
        state.whatsapp_app_secret, phone_number_id, to, message_id, "failed",
        error_code=code, error_title=_WA_ERROR_TITLES.get(code, "Message failed to send"),
    )  # fmt: skip
    state.outbox.append(PendingWebhook("/webhooks/whatsapp", receipt.body, receipt.headers))


def _whatsapp_template_send(
    state: SandboxState, phone_number_id: str, to: str, payload: dict[str, object], *, slow: bool
) -> Response:
    name, language = payload.get("name"), payload.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    approved = next(
        (
            t for t in state.templates
            if t["name"] == name and t["language"] == code and t["status"] == "APPROVED"
        ),
        None,
    )  # fmt: skip
    if approved is None:
        return _graph_error(404, 132001, "Template name does not exist in the translation")
    given = payload.get("components") or []
    if not isinstance(given, list):
        return _graph_error(400, 100, "Invalid parameter")
    lines: list[str] = []
    for component in approved["components"]:  # type: ignore[attr-defined]
        text = component.get("text")
        kind = str(component.get("type", "")).lower()
        if kind not in ("header", "body", "footer") or not isinstance(text, str):
            continue
        wanted = {m.group(1) for m in _PLACEHOLDER.finditer(text)}
        params = [
            p for c in given if isinstance(c, dict) and c.get("type") == kind
            for p in (c.get("parameters") or [])
        ]  # fmt: skip
        if len(params) != len(wanted):
            return _graph_error(
                400, 132000, "Number of parameters does not match the expected number of params"
            )
        values = {str(i + 1): p for i, p in enumerate(params)}
        values.update({str(p["parameter_name"]): p for p in params if "parameter_name" in p})

        def value(match: re.Match[str], values: dict[str, dict[str, object]] = values) -> str:
            param = values.get(match.group(1), {})
            shown = param.get("text")
            return str(shown) if shown is not None else match.group(0)

        lines.append(_PLACEHOLDER.sub(value, text))
    message_id = f"wamid.SANDBOX{state.next_id():012d}"
    state.record(
        channel=Channel.WHATSAPP,
        account=phone_number_id,
        to=to,
        message_id=message_id,
        type="template",
        text="\n".join(lines),
        template=str(name),
    )
    reply = json_response(
        200,
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": message_id, "message_status": "accepted"}],
        },
    )
    if slow:
        reply.drip_seconds = 5.0
    return reply
