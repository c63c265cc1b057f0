"""The three fake provider APIs: WhatsApp Graph, Twilio Messages, Telegram Bot API.

Each checks credentials like the real API, answers in the real shapes, records sends and
fails as scripted. Handlers take the request with its path split into segments after the
provider prefix.
"""

from __future__ import annotations

import gzip
import hmac
import json
import re
import time
from typing import Final
from urllib.parse import urlsplit

from ._builders import twilio_status_webhook, whatsapp_status_webhook
from ._model import Channel, media_type
from ._sandbox_http import Reply, Request, Upload, sniff_media_type
from ._sandbox_state import (
    WHATSAPP_WINDOW_SECONDS,
    MediaFault,
    PendingWebhook,
    SandboxFailure,
    SandboxState,
)
from ._text import utf16_length

__all__ = ["linked_urls", "telegram", "twilio", "whatsapp"]

_KINDS: Final = ("text", "image", "video", "audio", "document", "sticker", "template")
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_WA_MEDIA_TYPES: Final = {
    "image": frozenset({"image/jpeg", "image/png"}),
    "sticker": frozenset({"image/webp"}),
}
"""Message types whose media the Cloud API restricts, as checked here (image: JPEG and PNG only;
sticker: WebP)."""
_TG_METHODS: Final = {
    "sendMessage": ("text", "text"),
    "sendPhoto": ("image", "photo"),
    "sendVideo": ("video", "video"),
    "sendAudio": ("audio", "audio"),
    "sendDocument": ("document", "document"),
}
_TG_URL_DOCUMENTS: Final = frozenset({"application/pdf", "application/zip", "image/gif"})
"""The Bot API: "In sendDocument, sending by URL will currently only work for GIF, PDF and ZIP
files"."""
_TG_URL_CAP: Final = {"photo": 5 * 1024 * 1024}
_TG_URL_CAP_OTHER: Final = 20 * 1024 * 1024
_TG_CAPTION_LIMIT: Final = 1024
# The providers' text limits, counted as they count them (README, "Replies"): a longer text is
# refused, never cut, so a bridge that stops splitting fails a test.
WHATSAPP_TEXT_LIMIT: Final = 4096  # characters (code points) of text.body
TWILIO_BODY_LIMIT: Final = 1600  # characters of Body, as UTF-16 code units (UCS-2 for SMS)
TELEGRAM_TEXT_LIMIT: Final = 4096  # UTF-16 code units after entity parsing


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def linked_urls(state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    """The media URLs an authenticated send names, which the real provider fetches itself
    (a Telegram file field, a WhatsApp media ``link``); ``parts`` is the whole path."""
    if request.method != "POST" or len(parts) < 3:
        return []
    try:
        if parts[0] == "telegram" and len(parts) == 3:
            if not _same(parts[1], f"bot{state.credentials.telegram_bot_token}"):
                return []
            field = _TG_METHODS.get(parts[2], ("text", "text"))[1]
            value = request.fields()[0].get(field) if field != "text" else None
            return [value] if value is not None and _is_url(value) else []
        if parts[0] == "whatsapp" and len(parts) == 4 and parts[3] == "messages":
            if not _same(request.bearer(), state.credentials.whatsapp_access_token):
                return []
            body = json.loads(request.body)
            payload = body.get(body.get("type")) if isinstance(body, dict) else None
            link = payload.get("link") if isinstance(payload, dict) else None
            return [link] if isinstance(link, str) and _is_url(link) else []
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        return []
    return []


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _media_bytes(
    state: SandboxState, request: Request, media_id: str, content: bytes, content_type: str
) -> Reply:
    """A media download, or the fault scripted for it (:meth:`ProviderSandbox.break_media`)."""
    script = state.take_media_fault(media_id)
    if script is None:
        return Reply.raw(content, content_type)
    if script.fault is MediaFault.FORBIDDEN:
        return Reply(403, b"forbidden", "text/plain")
    if script.fault is MediaFault.SERVER_ERROR:
        return Reply(503, b"unavailable", "text/plain")
    if script.fault is MediaFault.REDIRECT_LOOP:
        location = request.base_url + request.path
        return Reply(302, content_type="text/plain", headers={"Location": location})
    if script.fault is MediaFault.GZIP:
        return Reply(200, gzip.compress(content), content_type, {"Content-Encoding": "gzip"})
    if script.fault is MediaFault.CORRUPT:
        damaged = content[:-1] + bytes([(content[-1:] or b"\0")[0] ^ 0xFF])
        return Reply.raw(damaged, content_type)
    return Reply(200, content, content_type, drip_seconds=script.drip_seconds)


# --- WhatsApp Graph ------------------------------------------------------------------------


def _graph_error(status: int, code: int, message: str, **headers: str) -> Reply:
    error = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code}
    return Reply.json(status, {"error": {**error, "fbtrace_id": "Sandbox"}}, **headers)


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


def whatsapp(state: SandboxState, request: Request, parts: list[str]) -> Reply:
    """``/whatsapp/{version}/{media_id}``, ``/whatsapp/{version}/{phone_number_id}/messages``,
    ``/whatsapp/{version}/{phone_number_id}/media`` and the media bytes ``/whatsapp/_media/{id}``.
    """
    if not _same(request.bearer(), state.credentials.whatsapp_access_token):
        return _graph_error(401, 190, "Invalid OAuth access token")
    if len(parts) == 2 and parts[0] == "_media" and request.method == "GET":
        media = state.media.get(parts[1])
        if media is None:
            return _graph_error(404, 100, "Unknown media")
        return _media_bytes(state, request, parts[1], media.content, media.mime_type)
    if len(parts) == 3 and parts[2] == "message_templates" and request.method == "GET":
        if parts[1] != state.credentials.whatsapp_business_account_id:
            return _graph_error(400, 100, "Unsupported get request. Object does not exist")
        return _whatsapp_templates(state, request)
    if parts[1:] == ["me"] and request.method == "GET":  # the token's (system) user
        return Reply.json(200, {"id": "100000000000900", "name": "Threadline Sandbox"})
    if len(parts) == 2 and request.method == "GET":
        media = state.media.get(parts[1])
        if media is None and parts[1] in state.credentials.whatsapp_phone_number_ids:
            return Reply.json(200, _phone_number(parts[1]))
        if media is None:
            return _graph_error(400, 100, "Unsupported get request. Object does not exist")
        return Reply.json(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{request.base_url}/whatsapp/_media/{parts[1]}",
                "mime_type": media.mime_type,
                "sha256": state.lookup_digest(media),
                "file_size": len(media.content),
                "id": parts[1],
            },
        )
    if len(parts) == 3 and parts[2] == "media" and request.method == "POST":
        fields, files = request.fields()
        upload = files.get("file")
        if upload is None or fields.get("messaging_product") != "whatsapp":
            return _graph_error(400, 100, "Invalid parameter")
        mime = fields.get("type") or upload.content_type or "application/octet-stream"
        return Reply.json(200, {"id": state.add_media(upload.content, mime, upload.filename)})
    if len(parts) == 3 and parts[2] == "messages" and request.method == "POST":
        return _whatsapp_send(state, request, parts[1])
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


def _whatsapp_send(state: SandboxState, request: Request, phone_number_id: str) -> Reply:
    try:
        body = json.loads(request.body)
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
        return _graph_error(status, code, message, **{"Retry-After": str(script.retry_after)})
    if kind == "template":
        reply = _whatsapp_template_send(state, phone_number_id, to, payload, slow=slow)
        if late and reply.status == 200:
            reply.delay_seconds = 10.0
        if later and script is not None and reply.status == 200:
            _whatsapp_fails_later(
                state, phone_number_id, to, state.sent[-1].message_id, script.error_code
            )
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
    linked = request.linked.get(payload.get("link", "")) if stored is None else None
    found = stored.mime_type if stored else linked.mime_type if linked else None
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
    reply = Reply.json(
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
        reply.delay_seconds = 10.0
    return reply


def _whatsapp_templates(state: SandboxState, request: Request) -> Reply:
    """``GET /{waba-id}/message_templates``: pages of ``limit`` (default 25), cursor ``after``."""
    state.template_fetches += 1
    limit = max(1, min(int(request.query.get("limit") or "25"), 100))
    start = int(request.query.get("after") or "0")
    page = state.templates[start : start + limit]
    body: dict[str, object] = {"data": page}
    end = start + len(page)
    cursors = {"before": str(start), "after": str(end)}
    body["paging"] = {"cursors": cursors}
    if end < len(state.templates):
        next_url = f"{request.base_url}{request.path}?limit={limit}&after={end}"
        body["paging"] = {"cursors": cursors, "next": next_url}
    return Reply.json(200, body)


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
) -> Reply:
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
    reply = Reply.json(
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


# --- Twilio --------------------------------------------------------------------------------


def _twilio_error(status: int, code: int, message: str, **headers: str) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply.json(status, body, **headers)


_TW_FAILURES: Final = {
    SandboxFailure.BLOCKED: (400, 21610, "Attempt to send to unsubscribed recipient"),
    SandboxFailure.OUTSIDE_WINDOW: (400, 63016, "Failed to send freeform message outside window"),
    SandboxFailure.RATE_LIMITED: (429, 20429, "Too Many Requests"),
    SandboxFailure.SERVER_ERROR: (503, 20500, "Service unavailable"),
}


def twilio(state: SandboxState, request: Request, parts: list[str]) -> Reply:
    """``/twilio/2010-04-01/Accounts/{sid}/Messages.json``, the media resource
    ``…/Messages/{MM}/Media/{ME}`` (redirects to ``/twilio/_cdn/{ME}``, like Twilio's CDN)."""
    creds = state.credentials
    if len(parts) == 2 and parts[0] == "_cdn" and request.method == "GET":
        media = state.media.get(parts[1])
        if media is None:
            return _twilio_error(404, 20404, "The requested resource was not found")
        return _media_bytes(state, request, parts[1], media.content, media.mime_type)
    if len(parts) < 3 or parts[:2] != ["2010-04-01", "Accounts"]:
        return _twilio_error(404, 20404, "The requested resource was not found")
    account = parts[2].removesuffix(".json") if len(parts) == 3 else parts[2]
    auth = request.basic_auth()
    if auth is None or not (
        _same(auth[0], creds.twilio_account_sid)
        and _same(auth[1], creds.twilio_auth_token)
        and account == creds.twilio_account_sid
    ):
        return _twilio_error(401, 20003, "Authenticate")
    if len(parts) == 3:  # the account resource, Accounts/{sid}.json
        if request.method != "GET" or not parts[2].endswith(".json"):
            return _twilio_error(404, 20404, "The requested resource was not found")
        return Reply.json(200, _twilio_account(account))
    rest = parts[3:]
    if rest == ["Messages.json"] and request.method == "POST":
        return _twilio_send(state, request)
    if len(rest) == 4 and rest[0] == "Messages" and rest[2] == "Media" and request.method == "GET":
        if rest[3] not in state.media:
            return _twilio_error(404, 20404, "The requested resource was not found")
        location = f"{request.base_url}/twilio/_cdn/{rest[3]}"
        return Reply(307, content_type="text/plain", headers={"Location": location})
    return _twilio_error(404, 20404, "The requested resource was not found")


def _twilio_account(sid: str) -> dict[str, object]:
    return {
        "sid": sid,
        "owner_account_sid": sid,
        "friendly_name": "Threadline Sandbox",
        "status": "active",
        "type": "Full",
        "auth_token": "[redacted]",
        "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
        "date_updated": "Thu, 01 Jan 2026 00:00:00 +0000",
        "uri": f"/2010-04-01/Accounts/{sid}.json",
        "subresource_uris": {"messages": f"/2010-04-01/Accounts/{sid}/Messages.json"},
    }


def _twilio_send(state: SandboxState, request: Request) -> Reply:
    try:
        pairs = request.form_pairs()
    except UnicodeDecodeError:
        return _twilio_error(400, 21602, "Message body is required")
    fields = dict(pairs)
    media_urls = [v for k, v in pairs if k == "MediaUrl"]
    to, sender = fields.get("To", ""), fields.get("From") or fields.get("MessagingServiceSid", "")
    if not to:
        return _twilio_error(400, 21604, "A 'To' phone number is required")
    if not sender:
        return _twilio_error(400, 21603, "A 'From' phone number is required")
    if not fields.get("Body") and not media_urls:
        return _twilio_error(400, 21602, "Message body is required")
    if (to, sender.rpartition(":")[2]) in state.opted_out:
        state.refused.append((Channel.TWILIO.value, to, 21610))
        return _twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    if utf16_length(fields.get("Body", "")) > TWILIO_BODY_LIMIT:
        return _twilio_error(
            400, 21617, "The concatenated message body exceeds the 1600 character limit"
        )
    script = state.take_failure(Channel.TWILIO, to)
    later = script is not None and script.failure is SandboxFailure.FAILED_LATER
    if script is not None and not later:
        status, code, message = _TW_FAILURES[script.failure]
        return _twilio_error(status, code, message, **{"Retry-After": str(script.retry_after)})
    sid = f"SM{state.next_id():032x}"
    state.record(
        channel=Channel.TWILIO,
        account=sender,
        to=to,
        message_id=sid,
        type="image" if media_urls else "text",
        text=fields.get("Body") or None,
        media_url=media_urls[0] if media_urls else None,
    )
    account = state.credentials.twilio_account_sid
    callback = fields.get("StatusCallback")
    if later and script is not None and callback:
        # Signed over the URL the send asked for; posted there, or to the same path on the
        # bridge when one is configured (the sandbox cannot reach a public URL).
        receipt = twilio_status_webhook(
            state.credentials.twilio_auth_token, callback, account_sid=account, to=to,
            from_=sender, message_sid=sid, status="undelivered",
            error_code=script.error_code or 30003,
        )  # fmt: skip
        target = callback
        if state.bridge_url:
            split = urlsplit(callback)
            target = split.path + (f"?{split.query}" if split.query else "")
        state.outbox.append(PendingWebhook(target, receipt.body, receipt.headers))
    return Reply.json(
        201,
        {
            "sid": sid,
            "account_sid": account,
            "to": to,
            "from": sender,
            "body": fields.get("Body", ""),
            "status": "queued",
            "num_media": str(len(media_urls)),
            "num_segments": "1",
            "error_code": None,
            "error_message": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        },
    )


# --- Telegram ------------------------------------------------------------------------------


def _tg_error(status: int, description: str, **parameters: int) -> Reply:
    body: dict[str, object] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply.json(status, body)


def telegram(state: SandboxState, request: Request, parts: list[str]) -> Reply:
    """``/telegram/bot{token}/{method}`` and ``/telegram/file/bot{token}/{file_path}``."""
    token = state.credentials.telegram_bot_token
    if len(parts) >= 3 and parts[0] == "file" and request.method == "GET":
        if not _same(parts[1], f"bot{token}"):
            return _tg_error(401, "Unauthorized")
        media = state.media.get(parts[-1]) if parts[2] == "media" else None
        if media is None:
            return _tg_error(404, "Not Found")
        return _media_bytes(state, request, parts[-1], media.content, "application/octet-stream")
    if len(parts) != 2:
        return _tg_error(404, "Not Found")
    if not _same(parts[0], f"bot{token}"):
        return _tg_error(401, "Unauthorized")
    try:
        fields, files = request.fields()
    except (ValueError, UnicodeDecodeError):
        return _tg_error(400, "Bad Request: can't parse request body")
    method = parts[1]
    if method == "getFile":
        file_id = fields.get("file_id", "")
        media = state.media.get(file_id)
        if media is None:
            return _tg_error(400, "Bad Request: invalid file_id")
        result = {
            "file_id": file_id,
            "file_unique_id": f"U{file_id}",
            "file_size": len(media.content),
            "file_path": f"media/{file_id}",
        }
        return Reply.json(200, {"ok": True, "result": result})
    if method in _TG_METHODS:
        return _telegram_send(state, request, method, fields, files)
    if method in ("getMe", "getWebhookInfo", "setWebhook", "deleteWebhook"):
        return _telegram_bot(state, method, fields)
    return _tg_error(404, "Not Found: method not found")


def _telegram_send(
    state: SandboxState,
    request: Request,
    method: str,
    fields: dict[str, str],
    files: dict[str, Upload],
) -> Reply:
    chat = fields.get("chat_id", "")
    if not chat.lstrip("-").isdecimal():
        return _tg_error(400, "Bad Request: chat not found")
    kind, field = _TG_METHODS[method]
    upload = files.get(field)
    media_id: str | None = None
    media_url: str | None = None
    mime: str | None = None
    filename: str | None = None
    entities: list[dict[str, object]] = []
    if kind == "text":
        text = fields.get("text", "")
        if not text.strip():
            return _tg_error(400, "Bad Request: message text is empty")
        if fields.get("parse_mode"):
            return _tg_error(400, "Bad Request: the sandbox takes entities, not a parse_mode")
        if utf16_length(text) > TELEGRAM_TEXT_LIMIT:
            return _tg_error(400, "Bad Request: message is too long")
        parsed = _entities(fields.get("entities"), utf16_length(text))
        if parsed is None:
            return _tg_error(400, "Bad Request: can't parse entities")
        entities = parsed
    elif upload is not None:
        mime = upload.content_type or "application/octet-stream"
        if kind == "image" and not sniff_media_type(upload.content, None).startswith("image/"):
            return _tg_error(400, "Bad Request: IMAGE_PROCESS_FAILED")
        filename = upload.filename
        media_id = state.add_media(upload.content, mime, filename)
    elif _is_url(fields.get(field)):
        media_url = fields[field]
        linked = request.linked.get(media_url)
        if linked is None or linked.size > _TG_URL_CAP.get(field, _TG_URL_CAP_OTHER):
            return _tg_error(400, "Bad Request: failed to get HTTP URL content")
        if field == "document" and linked.mime_type not in _TG_URL_DOCUMENTS:
            return _tg_error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if field == "photo" and not linked.mime_type.startswith("image/"):
            return _tg_error(400, "Bad Request: wrong type of the web page content")
        mime = linked.mime_type
    elif fields.get(field):
        if fields[field] not in state.media:  # a file_id
            return _tg_error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        media_id = fields[field]
        mime = state.media[media_id].mime_type
    else:
        return _tg_error(400, f"Bad Request: there is no {field} in the request")
    caption = fields.get("caption", "")
    if len(caption.encode("utf-16-le")) // 2 > _TG_CAPTION_LIMIT:
        return _tg_error(400, "Bad Request: message caption is too long")
    script = state.take_failure(Channel.TELEGRAM, chat)
    if script is not None:
        if script.failure is SandboxFailure.RATE_LIMITED:
            return _tg_error(
                429,
                f"Too Many Requests: retry after {script.retry_after}",
                retry_after=script.retry_after,
            )
        if script.failure is SandboxFailure.SERVER_ERROR:
            return _tg_error(502, "Bad Gateway")
        return _tg_error(403, "Forbidden: bot was blocked by the user")
    message_id = state.next_chat_message_id(chat)
    reply_to = _reply_to(fields.get("reply_parameters"))
    state.record(
        channel=Channel.TELEGRAM,
        account=state.credentials.telegram_bot_token.partition(":")[0],
        to=chat,
        message_id=f"{chat}:{message_id}",
        type=kind,
        text=fields.get("text") if kind == "text" else fields.get("caption"),
        media_id=media_id,
        media_url=media_url,
        mime_type=mime,
        filename=filename,
        reply_to=f"{chat}:{reply_to}" if reply_to is not None else None,
        entities=tuple(entities),
    )
    result = {"message_id": message_id, "date": 0, "chat": {"id": int(chat), "type": "private"}}
    return Reply.json(200, {"ok": True, "result": result})


_ENTITY_TYPES: Final = frozenset(
    {"bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link"}
)


def _entities(raw: str | None, units: int) -> list[dict[str, object]] | None:
    """The ``entities`` of a sendMessage, checked as Telegram does (offsets and lengths in
    UTF-16 code units within the text), or None when they cannot be parsed."""
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    for entity in value:
        if not isinstance(entity, dict) or entity.get("type") not in _ENTITY_TYPES:
            return None
        offset, length = entity.get("offset"), entity.get("length")
        if not (isinstance(offset, int) and isinstance(length, int)):
            return None
        if offset < 0 or length <= 0 or offset + length > units:
            return None
    return value


def _reply_to(parameters: str | None) -> int | None:
    try:
        value = json.loads(parameters or "null")
        reply = value.get("message_id") if isinstance(value, dict) else None
    except ValueError:
        return None
    return reply if isinstance(reply, int) else None


def _telegram_bot(state: SandboxState, method: str, fields: dict[str, str]) -> Reply:
    """``getMe`` and the webhook methods (the sandbox records the webhook, delivers nothing)."""
    hook = state.telegram_webhook
    if method == "getMe":
        bot_id = int(state.credentials.telegram_bot_token.partition(":")[0])
        me = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Threadline Sandbox",
            "username": "threadline_sandbox_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        return Reply.json(200, {"ok": True, "result": me})
    if method == "getWebhookInfo":
        info: dict[str, object] = {
            "url": hook.url,
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if hook.url:
            info["max_connections"] = 40
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message or ""
        return Reply.json(200, {"ok": True, "result": info})
    if method == "setWebhook":
        url = fields.get("url")
        if url is None:
            return _tg_error(400, "Bad Request: url is required")
        if url and not url.startswith("https://"):
            return _tg_error(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        secret = fields.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            return _tg_error(400, "Bad Request: secret token contains unallowed characters")
        hook.url, hook.secret_token = url, secret
        hook.last_error_date = hook.last_error_message = None
        description = "Webhook was set" if url else "Webhook was deleted"
        return Reply.json(200, {"ok": True, "result": True, "description": description})
    hook.url, hook.secret_token = "", None  # deleteWebhook
    hook.last_error_date = hook.last_error_message = None
    return Reply.json(200, {"ok": True, "result": True, "description": "Webhook was deleted"})
