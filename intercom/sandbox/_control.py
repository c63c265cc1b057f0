"""The sandbox's control and inspection API under ``/_sandbox/`` (no auth: loopback tools).

=======  ==========================================  =========================================
method   path                                        does
=======  ==========================================  =========================================
GET      /_sandbox/config                            current switches
POST     /_sandbox/config                            change switches (partial JSON, validated)
POST     /_sandbox/reset                             forget data and counters
GET      /_sandbox/stats                             requests by endpoint/status, 429s, 5xx …
GET      /_sandbox/contacts                          every contact
GET      /_sandbox/conversations                     every conversation with its parts in order
GET      /_sandbox/conversations/{id}                one conversation (also when deleted)
POST     /_sandbox/conversations/{id}/delete         delete it (API calls then get 404)
GET      /_sandbox/parts?since=N&limit=M             parts created since cursor N, next cursor
GET      /_sandbox/webhooks                          webhook deliveries, oldest first
POST     /_sandbox/contacts/merge                    ``{"from": id, "into": id}``
POST     /_sandbox/teammates/{action}                reply, note, assign, close, open, snooze
GET      /_sandbox/files/{id}                        an uploaded attachment's bytes
=======  ==========================================  =========================================

Teammate bodies: ``{"conversation_id", "body"?, "admin_id"?, "assignee_id"?, "snoozed_until"?
(snooze: required), "attachments"?: [{"name", "content_type", "data": base64}]}``; the answer
holds the new part and the webhook delivery (status) once it has been delivered.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ._api import Reply
from ._state import SandboxApiError
from ._teammates import TeammateAction

if TYPE_CHECKING:
    from ._app import IntercomSandbox

__all__ = ["control"]


def _fail(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _action_json(action: TeammateAction) -> dict[str, Any]:
    delivery = action.delivery
    return {
        "conversation_id": action.conversation_id,
        "part": action.part,
        "webhook": None if delivery is None else delivery.as_json(),
    }


async def _teammate(sandbox: IntercomSandbox, action: str, body: dict[str, Any]) -> Reply:
    conversation_id = body.get("conversation_id")
    if not isinstance(conversation_id, str):
        return _fail(400, "conversation_id is required")
    admin_id = body.get("admin_id")
    admin_id = None if admin_id is None else str(admin_id)
    text = body.get("body")
    files: list[tuple[str, str, bytes]] = []
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list):
        return _fail(400, "attachments must be an array")
    for item in attachments:
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            return _fail(400, "attachments need base64 data")
        ctype = str(item.get("content_type") or "application/octet-stream")
        files.append((str(item.get("name") or "attachment"), ctype, data))
    team = sandbox.teammates
    if action in ("reply", "note") and not isinstance(text, str):
        return _fail(400, "body is required")
    if action == "reply":
        done = await team.reply(conversation_id, str(text), admin_id=admin_id, attachments=files)
    elif action == "note":
        done = await team.note(conversation_id, str(text), admin_id=admin_id)
    elif text is not None and not isinstance(text, str):
        return _fail(400, "body must be a string")
    elif action == "assign":
        assignee = body.get("assignee_id")
        done = await team.assign(
            conversation_id,
            None if assignee is None else str(assignee),
            admin_id=admin_id,
            body=text,
        )
    elif action == "close":
        done = await team.close(conversation_id, admin_id=admin_id, body=text)
    elif action == "open":
        done = await team.open(conversation_id, admin_id=admin_id, body=text)
    elif action == "snooze":
        until = body.get("snoozed_until")
        if type(until) is not int:
            return _fail(400, "snoozed_until is required (a UNIX time)")
        done = await team.snooze(conversation_id, until, admin_id=admin_id, body=text)
    else:
        return _fail(404, f"unknown teammate action {action!r}")
    return Reply(200, _action_json(done))


async def control(
    sandbox: IntercomSandbox, method: str, path: str, query: dict[str, str], raw: bytes
) -> Reply:
    """Answer one ``/_sandbox/...`` request."""
    parts = path.strip("/").split("/")[1:]
    body = _json(raw) if method == "POST" else {}
    if body is None:
        return _fail(400, "body must be a JSON object")
    try:
        return await _dispatch(sandbox, method, parts, query, body)
    except SandboxApiError as exc:
        return _fail(exc.status, exc.message)


async def _dispatch(
    sandbox: IntercomSandbox,
    method: str,
    parts: list[str],
    query: dict[str, str],
    body: dict[str, Any],
) -> Reply:
    match method, parts:
        case "GET", ["config"]:
            return Reply(200, sandbox.config.model_dump(mode="json"))
        case "POST", ["config"]:
            try:
                config = sandbox.configure(**body)
            except ValidationError as exc:
                return _fail(400, str(exc.errors()[0]["msg"]))
            return Reply(200, config.model_dump(mode="json"))
        case "POST", ["reset"]:
            sandbox.reset()
            return Reply(200, {"reset": True})
        case "GET", ["stats"]:
            return Reply(200, sandbox.stats())
        case "GET", ["contacts"]:
            return Reply(200, {"contacts": sandbox.contacts()})
        case "GET", ["conversations"]:
            return Reply(200, {"conversations": sandbox.conversations()})
        case "GET", ["conversations", conversation_id]:
            found = sandbox.conversation(conversation_id)
            return Reply(200, found) if found is not None else _fail(404, "no such conversation")
        case "POST", ["conversations", conversation_id, "delete"]:
            sandbox.delete_conversation(conversation_id)
            return Reply(200, {"id": conversation_id, "deleted": True})
        case "GET", ["parts"]:
            try:
                since = int(query.get("since", "0"))
                limit = int(query["limit"]) if "limit" in query else None
            except ValueError:
                return _fail(400, "since and limit must be integers")
            found_parts, cursor = sandbox.parts_since(since, limit)
            return Reply(200, {"parts": found_parts, "next": cursor})
        case "GET", ["webhooks"]:
            return Reply(200, {"deliveries": [d.as_json() for d in sandbox.core.deliveries]})
        case "POST", ["contacts", "merge"]:
            if not isinstance(body.get("from"), str) or not isinstance(body.get("into"), str):
                return _fail(400, "from and into are required")
            sandbox.merge_contacts(body["from"], body["into"])
            return Reply(200, {"merged": body["from"], "into": body["into"]})
        case "POST", ["teammates", action]:
            return await _teammate(sandbox, action, body)
        case "GET", ["files", file_id]:
            stored = sandbox.core.state.files.get(file_id)
            if stored is None:
                return _fail(404, "no such file")
            content_type, data = stored
            return Reply(200, data, {"Content-Type": content_type})
    return _fail(404, f"no sandbox route {method} /_sandbox/{'/'.join(parts)}")
