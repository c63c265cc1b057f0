"""The sandbox's own HTTP: the ``/_sandbox/...`` control and inspection routes
(:func:`control`) and the status webhooks it posts to the bridge (:func:`post_webhooks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import httpx
import trio
from pydantic import BaseModel, ConfigDict, ValidationError

from channels import Channel
from runtime import Request, Response, json_response

from ._http import query_params
from ._state import PostedWebhook, SandboxFailure, SandboxState

if TYPE_CHECKING:
    from ._app import ProviderSandbox

__all__ = ["WEBHOOK_ATTEMPTS", "control", "post_webhooks"]

WEBHOOK_ATTEMPTS: Final = 3


class _FailureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    recipient: str
    failure: SandboxFailure
    times: int | None = None
    retry_after: int = 1
    error_code: int | None = None


class _WebhookTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bridge_url: str
    whatsapp_app_secret: str | None = None


class _CustomerWrote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wa_id: str
    at: float


def control(sandbox: ProviderSandbox, request: Request, rest: list[str]) -> Response:
    """Answer a ``/_sandbox/...`` control or inspection request (the module docstring of
    ``_app.py`` lists the routes) with ``sandbox``'s own methods."""
    route = (request.method, "/".join(rest))
    if route == ("GET", "health"):
        return json_response(200, {"ok": True})
    if route == ("POST", "media"):
        query = query_params(request)
        mime = query.get("mime_type") or request.headers.get("content-type")
        media_id = sandbox.add_media(
            request.body, mime or "application/octet-stream", query.get("filename")
        )
        return json_response(
            200, {"id": media_id, "twilio_media_path": sandbox.twilio_media_path(media_id)}
        )
    if route == ("GET", "sent"):
        query = query_params(request)
        channel = query.get("channel")
        since = query.get("since", "0")
        sent = sandbox.sent(Channel(channel) if channel else None, since=int(since))
        return json_response(200, [m.model_dump(mode="json") for m in sent])
    if route == ("DELETE", "sent"):
        sandbox.clear_sent()
        return json_response(200, {"ok": True})
    if route == ("POST", "failures"):
        try:
            script = _FailureRequest.model_validate_json(request.body)
        except ValidationError:
            return json_response(400, {"error": "expected channel, recipient, failure"})
        sandbox.fail(
            script.channel,
            script.recipient,
            script.failure,
            times=script.times,
            retry_after=script.retry_after,
            error_code=script.error_code,
        )
        return json_response(200, {"ok": True})
    if route == ("POST", "webhooks"):
        try:
            target = _WebhookTarget.model_validate_json(request.body)
        except ValidationError:
            return json_response(400, {"error": "expected bridge_url, whatsapp_app_secret"})
        sandbox.configure_webhooks(
            target.bridge_url, whatsapp_app_secret=target.whatsapp_app_secret
        )
        return json_response(200, {"ok": True})
    if route == ("GET", "webhooks"):
        posted = [
            {"url": w.url, "body": w.body.decode("utf-8", "replace"), "status": w.status}
            for w in sandbox.posted_webhooks()
        ]
        return json_response(200, posted)
    if route == ("POST", "whatsapp/customer_wrote"):
        try:
            told = _CustomerWrote.model_validate_json(request.body)
        except ValidationError:
            return json_response(400, {"error": "expected wa_id, at"})
        sandbox.customer_wrote(told.wa_id, told.at)
        return json_response(200, {"ok": True})
    if route == ("DELETE", "failures"):
        sandbox.clear_failures()
        return json_response(200, {"ok": True})
    return json_response(404, {"error": "not found"})


async def post_webhooks(state: SandboxState) -> None:
    """Post the queued status webhooks, each until the bridge answers 200 (at most
    :data:`WEBHOOK_ATTEMPTS` times)."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        while state.outbox:
            webhook = state.outbox.popleft()
            url = webhook.target
            if state.bridge_url and url.startswith("/"):
                url = state.bridge_url + url
            status: int | None = None
            for attempt in range(WEBHOOK_ATTEMPTS):
                if attempt:
                    await trio.sleep(0.5 * attempt)
                try:
                    response = await http.post(url, content=webhook.body, headers=webhook.headers)
                except httpx.HTTPError:
                    status = None
                    continue
                status = response.status_code
                if status == 200:
                    break
            state.posted.append(
                PostedWebhook(url=url, body=webhook.body, headers=webhook.headers, status=status)
            )
