"""The fake Twilio Messaging API: sends (with opt-outs and status callbacks), the account,
media resources and their CDN.

Checks credentials like the real API, answers in its shapes, records sends and fails as
scripted. Handlers take the request with its path split into segments after ``/twilio``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from channels import Channel, utf16_length
from runtime import Request, Response, json_response

from ._builders import twilio_status_webhook
from ._http import LinkedFile, base_url, basic_auth, form_pairs, media_bytes, same
from ._state import CURRENT_CREDENTIAL, PendingWebhook, SandboxFailure, SandboxState

__all__ = ["TWILIO_BODY_LIMIT", "twilio"]

# The provider's text limit, counted as it counts it (README, "Replies"): a longer text is
# refused, never cut, so a bridge that stops splitting fails a test.
TWILIO_BODY_LIMIT: Final = 1600  # characters of Body, as UTF-16 code units (UCS-2 for SMS)


def _twilio_error(status: int, code: int, message: str, **headers: str) -> Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return json_response(status, body, **headers)


_TW_FAILURES: Final = {
    SandboxFailure.BLOCKED: (400, 21610, "Attempt to send to unsubscribed recipient"),
    SandboxFailure.OUTSIDE_WINDOW: (400, 63016, "Failed to send freeform message outside window"),
    SandboxFailure.RATE_LIMITED: (429, 20429, "Too Many Requests"),
    SandboxFailure.SERVER_ERROR: (503, 20500, "Service unavailable"),
}


async def twilio(
    state: SandboxState,
    request: Request,
    parts: list[str],
    linked: Mapping[str, LinkedFile | None],
) -> Response:
    """``/twilio/2010-04-01/Accounts/{sid}/Messages.json``, the media resource
    ``…/Messages/{MM}/Media/{ME}`` (redirects to ``/twilio/_cdn/{ME}``, like Twilio's CDN)."""
    creds = state.credentials
    if len(parts) == 2 and parts[0] == "_cdn" and request.method == "GET":
        media = state.media.get(parts[1])
        if media is None:
            return _twilio_error(404, 20404, "The requested resource was not found")
        return media_bytes(state, request, parts[1], media.content, media.mime_type)
    if len(parts) < 3 or parts[:2] != ["2010-04-01", "Accounts"]:
        return _twilio_error(404, 20404, "The requested resource was not found")
    account = parts[2].removesuffix(".json") if len(parts) == 3 else parts[2]
    auth = basic_auth(request)
    tokens = creds.twilio_accounts
    if auth is None or not (
        auth[0] in tokens and same(auth[1], tokens[auth[0]]) and account == auth[0]
    ):
        return _twilio_error(401, 20003, "Authenticate")
    CURRENT_CREDENTIAL.set(auth[0])
    if len(parts) == 3:  # the account resource, Accounts/{sid}.json
        if request.method != "GET" or not parts[2].endswith(".json"):
            return _twilio_error(404, 20404, "The requested resource was not found")
        return json_response(200, _twilio_account(account))
    rest = parts[3:]
    if rest == ["Messages.json"] and request.method == "POST":
        return _twilio_send(state, request)
    if len(rest) == 4 and rest[0] == "Messages" and rest[2] == "Media" and request.method == "GET":
        if rest[3] not in state.media:
            return _twilio_error(404, 20404, "The requested resource was not found")
        location = f"{base_url(request)}/twilio/_cdn/{rest[3]}"
        return Response(307, b"", "text/plain", {"location": location})
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


def _twilio_send(state: SandboxState, request: Request) -> Response:
    try:
        pairs = form_pairs(request)
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
        return _twilio_error(status, code, message, **{"retry-after": str(script.retry_after)})
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
    account = CURRENT_CREDENTIAL.get() or state.credentials.twilio_account_sid
    callback = fields.get("StatusCallback")
    if later and script is not None and callback:
        # Signed over the URL the send asked for; posted there, or to the same path on the
        # bridge when one is configured (the sandbox cannot reach a public URL).
        receipt = twilio_status_webhook(
            state.credentials.twilio_accounts[account], callback, account_sid=account, to=to,
            from_=sender, message_sid=sid, status="undelivered",
            error_code=script.error_code or 30003,
        )  # fmt: skip
        target = callback
        if state.bridge_url:
            split = urlsplit(callback)
            target = split.path + (f"?{split.query}" if split.query else "")
        state.outbox.append(PendingWebhook(target, receipt.body, receipt.headers))
    return json_response(
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
