"""The fake Telegram Bot API: sends (text with entities, files by upload, id or URL),
``getFile`` and file downloads, ``getMe`` and the webhook methods.

Checks the bot token like the real API, answers in its shapes, records sends and fails as
scripted. Handlers take the request with its path split into segments after ``/telegram``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from channels import Channel, utf16_length
from runtime import Request, Response, json_response

from ._http import LinkedFile, Upload, body_fields, is_url, media_bytes, same, sniff_media_type
from ._state import CURRENT_CREDENTIAL, SandboxFailure, SandboxState

__all__ = ["TELEGRAM_TEXT_LIMIT", "telegram", "telegram_links"]

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
# The provider's text limit, counted as it counts it (README, "Replies"): a longer text is
# refused, never cut, so a bridge that stops splitting fails a test.
TELEGRAM_TEXT_LIMIT: Final = 4096  # UTF-16 code units after entity parsing


def telegram_links(state: SandboxState, request: Request, parts: list[str]) -> list[str]:
    """The file URL an authenticated send names (the real API fetches it itself)."""
    if len(parts) != 2 or _bot(state, parts[0]) is None:
        return []
    field = _TG_METHODS.get(parts[1], ("text", "text"))[1]
    value = body_fields(request)[0].get(field) if field != "text" else None
    return [value] if value is not None and is_url(value) else []


def _bot(state: SandboxState, segment: str) -> str | None:
    """The bot id of ``bot<token>`` when the token is one the fake knows, else None."""
    for token in state.credentials.telegram_bot_tokens:
        if same(segment, f"bot{token}"):
            return token.partition(":")[0]
    return None


def _tg_error(status: int, description: str, **parameters: int) -> Response:
    body: dict[str, object] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_response(status, body)


async def telegram(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``/telegram/bot{token}/{method}`` and ``/telegram/file/bot{token}/{file_path}``."""
    if len(parts) >= 3 and parts[0] == "file" and request.method == "GET":
        if _bot(state, parts[1]) is None:
            return _tg_error(401, "Unauthorized")
        media = state.media.get(parts[-1]) if parts[2] == "media" else None
        if media is None:
            return _tg_error(404, "Not Found")
        return media_bytes(state, request, parts[-1], media.content, "application/octet-stream")
    if len(parts) != 2:
        return _tg_error(404, "Not Found")
    bot = _bot(state, parts[0])
    if bot is None:
        return _tg_error(401, "Unauthorized")
    CURRENT_CREDENTIAL.set(bot)
    try:
        fields, files = body_fields(request)
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
        return json_response(200, {"ok": True, "result": result})
    if method in _TG_METHODS:
        return _telegram_send(state, method, fields, files, linked)
    if method in ("getMe", "getWebhookInfo", "setWebhook", "deleteWebhook"):
        return _telegram_bot(state, method, fields)
    return _tg_error(404, "Not Found: method not found")


def _telegram_send(
    state: SandboxState,
    method: str,
    fields: dict[str, str],
    files: dict[str, Upload],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
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
    elif is_url(fields.get(field)):
        media_url = fields[field]
        fetched = linked.get(media_url)
        if fetched is None or fetched.size > _TG_URL_CAP.get(field, _TG_URL_CAP_OTHER):
            return _tg_error(400, "Bad Request: failed to get HTTP URL content")
        if field == "document" and fetched.mime_type not in _TG_URL_DOCUMENTS:
            return _tg_error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if field == "photo" and not fetched.mime_type.startswith("image/"):
            return _tg_error(400, "Bad Request: wrong type of the web page content")
        mime = fetched.mime_type
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
        account=CURRENT_CREDENTIAL.get() or state.credentials.telegram_bot_token.partition(":")[0],
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
    return json_response(200, {"ok": True, "result": result})


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


def _telegram_bot(state: SandboxState, method: str, fields: dict[str, str]) -> Response:
    """``getMe`` and the webhook methods (the sandbox records the webhook, delivers nothing)."""
    hook = state.telegram_webhook_of(CURRENT_CREDENTIAL.get())
    if method == "getMe":
        bot_id = int(CURRENT_CREDENTIAL.get() or state.credentials.telegram_bot_token.split(":")[0])
        me = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Threadline Sandbox",
            "username": "threadline_sandbox_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        return json_response(200, {"ok": True, "result": me})
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
        return json_response(200, {"ok": True, "result": info})
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
        return json_response(200, {"ok": True, "result": True, "description": description})
    hook.url, hook.secret_token = "", None  # deleteWebhook
    hook.last_error_date = hook.last_error_message = None
    return json_response(200, {"ok": True, "result": True, "description": "Webhook was deleted"})
