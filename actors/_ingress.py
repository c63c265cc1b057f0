"""The ingress routes (docs/architecture.md §4): verify → parse → journal (commit) → answer.

A webhook is answered 200 only after its entries are durable in the journal (or it was
recognised as a duplicate, or as an event we do not bridge). The status table::

    200  journaled, duplicate, or ignored         401  bad or missing signature / token
    400  malformed payload (one-line reason)      413  body over the cap
    404  route of a channel that is not configured
    422  send API: a template that is not approved, or free-form text outside WhatsApp's window
    503  + Retry-After: the journal cannot commit (providers retry); the send API: WhatsApp's
         template list cannot be fetched to check a template

The ingress never waits on an actor: after the commit it wakes the dispatcher and answers.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import trio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels import (
    Channel,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    ParsedEvent,
    PayloadInvalid,
    PayloadTooLarge,
    SignatureInvalid,
    ThreadKey,
    WebhookRejected,
    check_json_strings,
    parse_telegram,
    parse_twilio,
    parse_whatsapp,
    twilio_form_params,
    verify_telegram_secret,
    verify_twilio_signature,
    verify_whatsapp_handshake,
    verify_whatsapp_signature,
)
from intercom import (
    ConversationEvent,
    NotificationInvalid,
    WebhookSignatureInvalid,
    parse_notification,
    teammate_messages,
)
from intercom import verify_signature as verify_intercom_signature
from runtime import (
    Journal,
    JournalError,
    JournalUnavailable,
    NewEntry,
    Request,
    Response,
    Router,
    json_response,
    text_response,
)

from ._jobs import (
    ApiSendJob,
    InboundJob,
    OutboundAttachment,
    SentRecord,
    StatusJob,
    ThreadState,
    conversation_index_key,
    encode_job,
    opening_key,
    reply_job,
    sent_message_key,
    thread_state_key,
)
from ._logging import LogLimiter
from ._media import MediaStore, content_disposition, safe_mime_type
from ._metrics import BridgeMetrics
from ._receipts import FAILED_STATUSES, status_label
from ._settings import Settings
from ._templates import (
    ApiTemplate,
    TemplateCatalog,
    TemplateRefused,
    TemplatesUnavailable,
    api_send_problem,
    opens_thread,
    outside_window,
    render,
)

__all__ = ["Ingress"]

logger = logging.getLogger("threadline.ingress")

TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
RETRY_AFTER_SECONDS = "5"
WEBHOOK_ROUTES = frozenset({"whatsapp", "twilio", "telegram", "intercom", "api"})
_CHANNELS = frozenset({"whatsapp", "twilio", "telegram", "intercom"})
MAX_IDENTIFIER_CHARS = 512
"""Longest journal key or dedupe id the ingress writes. Both are made of caller-supplied ids
(a phone, a message id, a notification id), a few dozen characters in practice; the bound keeps
them well inside PostgreSQL's B-tree entry limit (about 2,700 bytes)."""
CLOCK_SKEW_SECONDS = 300.0
OPENING_WAIT_SECONDS = 3.0
"""How long a teammate's reply to a conversation not bridged (yet) waits for its index when a
thread is opening a conversation for its contact at that moment (Intercom answered the create,
the bridge has not recorded the id yet: milliseconds, unless the journal is slow)."""
"""How far Intercom's clock may run ahead of ours when judging a notification's age."""


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


class Ingress:
    """The ingress ASGI app (:attr:`app`) over a journal.

    Args:
        settings: credentials decide which channel routes exist.
        journal: where webhooks go.
        wake: called after each commit (the dispatcher's ``wake``).
        metrics: request counters and commit latency.
        media: the store behind ``GET /media/<token>``.
        ready: None when the node serves, else why not in one line (for ``/readyz``).
        templates: the WhatsApp Business Account's templates (the send API checks names).
    """

    def __init__(
        self,
        settings: Settings,
        journal: Journal,
        *,
        wake: Callable[[], None],
        metrics: BridgeMetrics,
        media: MediaStore,
        ready: Callable[[], str | None],
        templates: TemplateCatalog | None = None,
    ) -> None:
        self._s = settings
        self._templates = templates or TemplateCatalog(None, None)
        self._journal = journal
        self._wake = wake
        self._metrics = metrics
        self._media = media
        self._ready = ready
        self._bot_id = settings.telegram_bot_id
        self._repeats = LogLimiter()
        router = Router(
            max_body_bytes=settings.max_body_bytes,
            body_timeout=settings.body_timeout_seconds,
            on_response=self._answered,
        )
        router.add("GET", "/healthz", "health", self._healthz)
        router.add("GET", "/readyz", "ready", self._readyz)
        router.add("GET", "/webhooks/whatsapp", "whatsapp", self._whatsapp_handshake)
        router.add("POST", "/webhooks/whatsapp", "whatsapp", self._whatsapp)
        router.add("POST", "/webhooks/twilio", "twilio", self._twilio)
        router.add("POST", "/webhooks/telegram", "telegram", self._telegram)
        router.add("POST", "/webhooks/intercom", "intercom", self._intercom)
        router.add("POST", "/api/messages", "api", self._api_messages)
        router.add_prefix("GET", "/media/", "media", self._media_file)
        self.app = router

    def _answered(self, route: str, response: Response, seconds: float) -> None:
        status = response.status
        self._metrics.request_duration.labels(route, f"{status // 100}xx").observe(seconds)
        if route not in WEBHOOK_ROUTES:
            return
        self._metrics.webhook_requests.labels(route, str(status)).inc()
        if 400 <= status < 500:
            # Refused: a misconfigured provider (a wrong secret or URL) shows up here first.
            # The reason is the one line the caller got; never a header, secret or signature.
            reason = response.body.decode("utf-8", "replace").strip()[:200]
            level = logging.WARNING if status in (401, 403) else logging.INFO
            self._repeats.log(
                logger, level, f"{route}:{status}", "%s webhook refused with %d: %s",
                route, status, reason,
                extra={"route": f"/webhooks/{route}" if route != "api" else "/api/messages",
                       "status": status, "reason": reason,
                       "channel": route if route in _CHANNELS else None},
            )  # fmt: skip

    # --- health -------------------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return text_response(200, "ok")

    async def _readyz(self, request: Request) -> Response:
        reason = self._ready()
        if reason is None:
            return text_response(200, "ready")
        return text_response(503, f"not ready: {reason}", **{"retry-after": RETRY_AFTER_SECONDS})

    # --- journaling ---------------------------------------------------------------------------

    async def _journal_entries(self, channel: str, entries: Sequence[NewEntry]) -> Response | None:
        """Append; None when durable, else the 503 to answer."""
        if not entries:
            return None
        for entry in entries:
            if max(len(entry.key), len(entry.dedupe_id)) > MAX_IDENTIFIER_CHARS:
                return text_response(
                    400, f"an identifier in the payload is over {MAX_IDENTIFIER_CHARS} characters"
                )
        started = time.perf_counter()
        try:
            results = await self._journal.append(entries)
        except JournalUnavailable as exc:
            self._repeats.log(
                logger, logging.WARNING, "journal",
                "journal cannot commit, answering 503: %s", exc, extra={"channel": channel},
            )  # fmt: skip
            return text_response(
                503, "journal unavailable, retry later", **{"retry-after": RETRY_AFTER_SECONDS}
            )
        except JournalError as exc:
            # Not transient: the store cannot hold this payload, so a retry would fail alike.
            # The checks at the edge (channels/_decode.py) are meant to make this unreachable.
            logger.error("journal refused a payload, answering 400: %s", exc)
            return text_response(400, "the payload holds a value the journal cannot store")
        self._metrics.journal_commit.observe(time.perf_counter() - started)
        fresh = sum(1 for r in results if not r.duplicate)
        if fresh:
            self._metrics.journal_appends.labels(channel).inc(fresh)
            self._wake()
        if fresh < len(results):
            self._metrics.journal_duplicates.labels(channel).inc(len(results) - fresh)
        return None

    def _inbound_entries(self, channel: str, events: list[ParsedEvent]) -> list[NewEntry]:
        received = time.time()
        entries = []
        for event in events:
            if isinstance(event, Ignored):
                self._metrics.webhook_ignored.labels(channel, event.what).inc()
            elif isinstance(event, InboundMessage):
                key = event.key
                job = InboundJob(message=event, received_at=received)
                dedupe = f"{key.channel.value}:{key.account}:{event.provider_message_id}"
                entries.append(NewEntry(str(key), dedupe, encode_job(job)))
        return entries

    async def _status_entries(self, channel: Channel, events: list[ParsedEvent]) -> list[NewEntry]:
        """Receipts for messages the bridge sent: each one counted; a failure of a message the
        bridge remembers (or of a bridged thread, whose record may be committing still) is
        journaled for the thread's actor to note, once per message; the rest acknowledged.
        Raises JournalUnavailable."""
        entries = []
        for event in events:
            if not isinstance(event, DeliveryStatus):
                continue
            self._metrics.delivery_statuses.labels(channel.value, status_label(event.status)).inc()
            if event.status.lower() not in FAILED_STATUSES:
                continue
            if len(event.provider_message_id) > MAX_IDENTIFIER_CHARS // 2:
                # Not an id the bridge was given: never a reason to refuse the whole batch.
                self._metrics.delivery_failures.labels(channel.value, "unknown").inc()
                continue
            raw = await self._journal.get_state(
                sent_message_key(channel.value, event.provider_message_id)
            )
            thread = _sent_thread(raw)
            if thread is None and event.key is not None:
                known = await self._journal.get_state(thread_state_key(str(event.key)))
                thread = str(event.key) if known is not None else None
            if thread is None:
                self._metrics.delivery_failures.labels(channel.value, "unknown").inc()
                continue
            job = StatusJob(
                provider_message_id=event.provider_message_id,
                status=event.status,
                error_code=event.error_code,
                error_title=event.error_title,
                received_at=time.time(),
            )
            # One note per message, however often (and as whichever failure) it is reported.
            dedupe = f"status:{channel.value}:{event.provider_message_id}:failed"
            entries.append(NewEntry(thread, dedupe, encode_job(job)))
        return entries

    async def _event_entries(self, channel: Channel, events: list[ParsedEvent]) -> list[NewEntry]:
        inbound = self._inbound_entries(channel.value, events)
        return [*inbound, *await self._status_entries(channel, events)]

    # --- WhatsApp -----------------------------------------------------------------------------

    async def _whatsapp_handshake(self, request: Request) -> Response:
        token = self._s.whatsapp_verify_token
        if token is None or self._s.whatsapp_app_secret is None:
            return text_response(404, "whatsapp is not configured")
        try:
            challenge = verify_whatsapp_handshake(dict(request.query()), token.get_secret_value())
        except SignatureInvalid as exc:
            return text_response(403, exc.reason)
        except PayloadInvalid as exc:
            return text_response(400, exc.reason)
        return text_response(200, challenge)

    async def _whatsapp(self, request: Request) -> Response:
        secret = self._s.whatsapp_app_secret
        if secret is None:
            return text_response(404, "whatsapp is not configured")
        try:
            verify_whatsapp_signature(
                request.body, request.headers.get("x-hub-signature-256"), secret.get_secret_value()
            )
            _require_json(request)
            events = parse_whatsapp(request.body, max_bytes=self._s.max_body_bytes)
        except WebhookRejected as exc:
            return _rejected(exc)
        try:
            entries = await self._event_entries(Channel.WHATSAPP, events)
        except JournalUnavailable:
            return text_response(503, "journal unavailable", **{"retry-after": RETRY_AFTER_SECONDS})
        failed = await self._journal_entries("whatsapp", entries)
        return failed or text_response(200, "ok")

    # --- Twilio -------------------------------------------------------------------------------

    async def _twilio(self, request: Request) -> Response:
        token = self._s.twilio_auth_token
        if token is None or not self._s.twilio_account_sid:
            return text_response(404, "twilio is not configured")
        url = self._s.public_url.rstrip("/") + "/webhooks/twilio"
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        try:
            if request.content_type != "application/x-www-form-urlencoded":
                # Twilio's JSON-bodied webhooks sign the URL (with bodySHA256) and no params.
                verify_twilio_signature(
                    url, [], request.headers.get("x-twilio-signature"),
                    token.get_secret_value(), body=request.body,
                )  # fmt: skip
                raise PayloadInvalid("expected a form-encoded Twilio Messaging webhook")
            params = twilio_form_params(request.body, max_bytes=self._s.max_body_bytes)
            verify_twilio_signature(
                url, params, request.headers.get("x-twilio-signature"), token.get_secret_value()
            )
            events = parse_twilio(
                request.body, received_at=datetime.now(UTC), max_bytes=self._s.max_body_bytes
            )
        except WebhookRejected as exc:
            return _rejected(exc)
        try:
            entries = await self._event_entries(Channel.TWILIO, events)
        except JournalUnavailable:
            return text_response(503, "journal unavailable", **{"retry-after": RETRY_AFTER_SECONDS})
        failed = await self._journal_entries("twilio", entries)
        return failed or Response(200, TWIML_EMPTY, "text/xml; charset=utf-8")

    # --- Telegram -----------------------------------------------------------------------------

    async def _telegram(self, request: Request) -> Response:
        secret = self._s.telegram_secret_token
        if secret is None or self._bot_id is None:
            return text_response(404, "telegram is not configured")
        try:
            verify_telegram_secret(
                request.headers.get("x-telegram-bot-api-secret-token"), secret.get_secret_value()
            )
            _require_json(request)
            events = parse_telegram(
                request.body,
                self._bot_id,
                max_bytes=self._s.max_body_bytes,
                groups=self._s.telegram_groups,
            )
        except WebhookRejected as exc:
            return _rejected(exc)
        failed = await self._journal_entries("telegram", self._inbound_entries("telegram", events))
        return failed or text_response(200, "ok")

    # --- Intercom -----------------------------------------------------------------------------

    async def _intercom(self, request: Request) -> Response:
        secret = self._s.intercom_client_secret
        if secret is None:
            return text_response(404, "intercom webhooks are not configured")
        try:
            verify_intercom_signature(
                request.body, request.headers.get("x-hub-signature"), secret.get_secret_value()
            )
            _require_json(request)
            notification = parse_notification(request.body)
        except WebhookSignatureInvalid as exc:
            return text_response(401, str(exc))
        except (NotificationInvalid, PayloadInvalid) as exc:
            return text_response(400, str(getattr(exc, "reason", exc)))
        if not isinstance(notification, ConversationEvent):
            return text_response(200, "ignored")
        messages = teammate_messages(notification)  # replies; close/assign/… with a message
        if not messages:
            return text_response(200, "ignored")
        if notification.created_at is None:
            return text_response(400, "notification without created_at")
        if self._older_than_retention(notification.created_at):
            # A replay of a signed notification whose dedupe id may be pruned: acknowledged
            # (so Intercom stops), counted as a redelivery, and not journaled.
            logger.warning(
                "intercom notification %s created at %d is older than the journal retention:"
                " ignored",
                notification.id[:80],
                notification.created_at,
                extra={"channel": "intercom", "notification_id": notification.id[:80]},
            )
            self._metrics.journal_duplicates.labels("intercom").inc()
            return text_response(200, "ignored: notification older than the journal retention")
        conversation = notification.conversation
        try:
            key = await self._journal.get_state(conversation_index_key(conversation.id))
            if key is None and await self._opening(conversation.contact_ids):
                key = await self._index_once_recorded(conversation.id)
                if key is None:
                    logger.warning(
                        "intercom reply to conversation %s: its contact's conversation is"
                        " being opened and was not recorded within %.0f s; answering 503",
                        conversation.id[:80], OPENING_WAIT_SECONDS,
                        extra={"channel": "intercom"},
                    )  # fmt: skip
                    return text_response(
                        503,
                        "conversation being opened by the bridge; try again",
                        **{"retry-after": RETRY_AFTER_SECONDS},
                    )
        except JournalUnavailable:
            return text_response(503, "journal unavailable", **{"retry-after": RETRY_AFTER_SECONDS})
        if key is None:
            return text_response(200, "ignored: conversation not bridged")
        received = time.time()
        entries = []
        for part in messages:  # notes stay inside Intercom
            job = reply_job(
                conversation.id,
                part,
                assignee_id=conversation.admin_assignee_id,
                received_at=received,
            )
            dedupe = f"intercom:{notification.id}:{part.id}"
            entries.append(NewEntry(key.decode(), dedupe, encode_job(job)))
        failed = await self._journal_entries("intercom", entries)
        return failed or text_response(200, "ok")

    async def _opening(self, contact_ids: Sequence[str]) -> bool:
        """Whether a thread is opening a conversation for one of these contacts right now (an
        intent younger than the search settle time: an older one was cut off by a crash)."""
        for contact_id in contact_ids[:5]:
            raw = await self._journal.get_state(opening_key(contact_id))
            if raw is None:
                continue
            try:
                since = float(raw.decode())
            except (UnicodeDecodeError, ValueError):
                continue
            if time.time() - since < self._s.intercom_search_settle_seconds:
                return True
        return False

    async def _index_once_recorded(self, conversation_id: str) -> bytes | None:
        """The conversation's thread once its opener records it, within OPENING_WAIT_SECONDS."""
        deadline = trio.current_time() + OPENING_WAIT_SECONDS
        while trio.current_time() < deadline:
            await trio.sleep(0.05)
            key = await self._journal.get_state(conversation_index_key(conversation_id))
            if key is not None:
                return key
        return None

    def _older_than_retention(self, created_at: int) -> bool:
        """Whether a notification created at ``created_at`` (Intercom's clock) may be past its
        dedupe id's life in the journal. A done entry is pruned ``retention`` seconds after it
        finished, and it finished after it was created; the margin covers Intercom's clock
        running ahead of ours."""
        retention = self._s.journal_retention_seconds
        max_age = retention - min(CLOCK_SKEW_SECONDS, retention / 2)
        return time.time() - created_at > max_age

    # --- the send API -------------------------------------------------------------------------

    async def _api_messages(self, request: Request) -> Response:
        token = self._s.api_token
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
            key, message.text, bool(message.attachments), message.template, self._s
        )
        if refused is not None:
            return text_response(*refused)
        try:
            raw = await self._journal.get_state(thread_state_key(str(key)))
        except JournalUnavailable:
            return text_response(503, "journal unavailable", **{"retry-after": RETRY_AFTER_SECONDS})
        state = ThreadState.decode(raw)
        if state.conversation_id is None:
            cannot = opens_thread(key, self._s)
            if cannot is not None:
                return text_response(*cannot)
        if message.template is None and outside_window(key, state.last_inbound_at):
            return text_response(
                422,
                "outside WhatsApp's 24-hour customer-service window (or the customer never"
                " wrote): free-form messages are refused, send a template",
            )
        rendered: str | None = None
        if message.template is not None and self._templates.enabled:
            try:
                rendered = render(
                    await self._templates.approved(
                        message.template.name, message.template.language.code
                    ),
                    message.template,
                )
            except TemplateRefused as exc:
                return text_response(422, exc.reason[:300])
            except TemplatesUnavailable as exc:
                logger.warning("whatsapp templates unavailable, answering 503: %s", exc)
                return text_response(
                    503,
                    "cannot check the template with WhatsApp right now, retry later",
                    **{"retry-after": RETRY_AFTER_SECONDS},
                )
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
        failed = await self._journal_entries("api", [NewEntry(str(key), dedupe, encode_job(job))])
        return failed or json_response(200, {"status": "accepted", "thread": str(key)})

    # --- oversize attachments -----------------------------------------------------------------

    async def _media_file(self, request: Request) -> Response:
        token = request.path.removeprefix("/media/")
        try:
            stored = await self._media.open(token)
        except JournalUnavailable:  # the journal store's database: a passing outage
            return text_response(503, "journal unavailable", **{"retry-after": RETRY_AFTER_SECONDS})
        if stored is None:
            return text_response(404, "not found")
        return Response(
            200,
            stored.content,
            safe_mime_type(stored.mime_type),
            {
                "content-disposition": content_disposition(stored.filename),
                "x-content-type-options": "nosniff",
                "content-security-policy": "sandbox",
            },
        )


_REJECTION_STATUS: dict[type[WebhookRejected], int] = {
    SignatureInvalid: 401,
    PayloadTooLarge: 413,
    PayloadInvalid: 400,
}


def _rejected(exc: WebhookRejected) -> Response:
    """The one table from a refused webhook to its status (docs/architecture.md §4), with its
    reason."""
    return text_response(_REJECTION_STATUS.get(type(exc), 400), exc.reason)


def _sent_thread(raw: bytes | None) -> str | None:
    """The thread of a sent-message record (None: no record, or one that cannot be read)."""
    if raw is None:
        return None
    try:
        return SentRecord.decode(raw).thread
    except ValidationError:
        return None


def _require_json(request: Request) -> None:
    if request.content_type != "application/json":
        raise PayloadInvalid(f"expected application/json, got {request.content_type or 'none'}")
