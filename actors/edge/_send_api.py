"""``POST /api/messages``: the send API (bearer token) journals a message to a customer as an
``api_send`` job of the thread (docs/architecture.md §2).

Refused before the journal: a malformed body (400), a template on a channel without templates,
text outside WhatsApp's 24-hour window (422), a template WhatsApp has not approved (422), and a
thread the API may not open (404 channel not configured, 400 customer id).
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from channels import Channel, PayloadInvalid, ThreadKey, check_json_strings
from runtime import JournalUnavailable, NewEntry, Request, Response, json_response, text_response

from ..bridge import (
    ApiSendJob,
    ApiTemplate,
    OutboundAttachment,
    TemplateCatalog,
    TemplateRefused,
    TemplatesUnavailable,
    ThreadState,
    api_send_problem,
    encode_job,
    opens_thread,
    outside_window,
    render,
    thread_state_key,
)
from ._journal import IngressJournal, unavailable

__all__ = ["SendApi"]

logger = logging.getLogger("threadline.ingress")


class _ApiAttachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")
    mime_type: str = Field(default="application/octet-stream", max_length=200)
    filename: str | None = Field(default=None, max_length=255)


class _ApiMessage(BaseModel):
    """The body of ``POST /api/messages``."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    account: str = Field(min_length=1, max_length=200)
    customer: str = Field(min_length=1, max_length=200)
    text: str = Field(default="", max_length=4096)
    attachments: list[_ApiAttachment] = Field(default_factory=list, max_length=10)
    admin_id: str | None = Field(default=None, max_length=64)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    template: ApiTemplate | None = None


class SendApi:
    """The route's handler (call it with the request).

    Args:
        token: the bearer token (``THREADLINE_API_TOKEN``); None: the route answers 404.
        sendable: the channels whose clients are configured (``ChannelSpec.sends``).
        journal: where the messages go.
        templates: the WhatsApp Business Account's templates (names are checked).
    """

    def __init__(
        self,
        token: SecretStr | None,
        *,
        sendable: frozenset[Channel],
        journal: IngressJournal,
        templates: TemplateCatalog,
    ) -> None:
        self._token = token
        self._sendable = sendable
        self._journal = journal
        self._templates = templates

    async def __call__(self, request: Request) -> Response:
        token = self._token
        if token is None:
            return text_response(404, "the send API is not enabled (set THREADLINE_API_TOKEN)")
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return text_response(401, "missing or wrong bearer token")
        if request.content_type != "application/json":
            return text_response(400, "expected application/json")
        try:
            message = _ApiMessage.model_validate_json(request.body)
            check_json_strings(request.body, "api")
            key = ThreadKey(
                channel=message.channel, account=message.account, customer=message.customer
            )
        except PayloadInvalid as exc:
            return text_response(400, exc.reason)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return text_response(400, f"invalid message at {where}: {first['msg']}"[:300])
        refused = api_send_problem(
            key, message.text, bool(message.attachments), message.template, self._sendable
        )
        if refused is not None:
            return text_response(*refused)
        try:
            raw = await self._journal.journal.get_state(thread_state_key(str(key)))
        except JournalUnavailable:
            return unavailable()
        state = ThreadState.decode(raw)
        if state.conversation_id is None:
            cannot = opens_thread(key, self._sendable)
            if cannot is not None:
                return text_response(*cannot)
        if message.template is None and outside_window(key, state.last_inbound_at):
            return text_response(
                422,
                "outside WhatsApp's 24-hour customer-service window (or the customer never"
                " wrote): free-form messages are refused, send a template",
            )
        rendered: str | None = None
        if message.template is not None and self._templates.enabled_for(key.account):
            try:
                rendered = render(
                    await self._templates.approved(
                        message.template.name, message.template.language.code, key.account
                    ),
                    message.template,
                )
            except TemplateRefused as exc:
                return text_response(422, exc.reason[:300])
            except TemplatesUnavailable as exc:
                logger.warning("whatsapp templates unavailable, answering 503: %s", exc)
                return unavailable("cannot check the template with WhatsApp right now, retry later")
        job = ApiSendJob(
            text=message.text,
            attachments=tuple(
                OutboundAttachment(url=a.url, mime_type=a.mime_type, filename=a.filename)
                for a in message.attachments
            ),
            admin_id=message.admin_id,
            received_at=time.time(),
            template=message.template,
            rendered=rendered,
        )
        dedupe = f"api:{message.idempotency_key or uuid.uuid4().hex}"
        entry = NewEntry(str(key), dedupe, encode_job(job))
        failed = await self._journal.append("api", [entry])
        return failed or json_response(200, {"status": "accepted", "thread": str(key)})
