"""The ingress routes (docs/architecture.md §4): verify → parse → journal (commit) → answer.

A webhook is answered 200 only after its entries are durable in the journal (or it was
recognised as a duplicate, or as an event we do not bridge). The status table::

    200  journaled, duplicate, or ignored         401  bad or missing signature / token
    400  malformed payload (one-line reason)      413  body over the cap
    404  route of a channel that is not configured
    422  send API: a template that is not approved, or free-form text outside WhatsApp's window
    503  + Retry-After: the journal cannot commit (providers retry); the send API: WhatsApp's
         template list cannot be fetched to check a template

The provider webhooks are one template over the channel registry (``channels.CHANNELS``: each
channel's route, "configured?", verify+parse and answer); the Intercom webhook is
``actors/edge/_intercom.py``, the send API ``actors/edge/_send_api.py``, and what they share
after parsing (entries, append, 503) ``actors/edge/_journal.py``.

The ingress never waits on an actor: after the commit it wakes the dispatcher and answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from channels import (
    CHANNELS,
    AccountMismatch,
    Channel,
    ChannelSpec,
    ParsedEvent,
    PayloadInvalid,
    SignatureInvalid,
    ThreadKey,
    WebhookRejected,
)
from runtime import (
    Handler,
    Journal,
    JournalUnavailable,
    Request,
    Response,
    Router,
    text_response,
)

from ..bridge import MediaStore, TemplateCatalog, content_disposition, safe_mime_type
from ..core import WEBHOOK_ROUTES, BridgeMetrics, LogLimiter, Settings
from ._intercom import IntercomWebhook
from ._journal import IngressJournal, rejected, unavailable
from ._send_api import SendApi

__all__ = ["Ingress"]

logger = logging.getLogger("threadline.ingress")

_PATHS: Final = {
    **{channel.value: spec.route for channel, spec in CHANNELS.items()},
    "intercom": "/webhooks/intercom",
    "api": "/api/messages",
}
"""Each webhook route's path, by its metrics name (``WEBHOOK_ROUTES``)."""


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
        self._metrics = metrics
        self._media = media
        self._ready = ready
        self._max_body_bytes = settings.max_body_bytes
        self._repeats = LogLimiter()
        self._journal = IngressJournal(journal, wake=wake, metrics=metrics, repeats=self._repeats)
        router = Router(
            max_body_bytes=settings.max_body_bytes,
            body_timeout=settings.body_timeout_seconds,
            on_response=self._answered,
        )
        router.add("GET", "/healthz", "health", self._healthz)
        router.add("GET", "/readyz", "ready", self._readyz)
        sendable: set[Channel] = set()
        for channel, spec in CHANNELS.items():
            views = settings.channel_accounts(channel)
            if any(spec.sends(view) for view in views):
                sendable.add(channel)
            routes: dict[str, list[object]] = {spec.route: []}
            for view in views:  # a view with a route of its own (a bot of the accounts file)
                routes.setdefault(spec.account_route(view) or spec.route, []).append(view)
            for path, group in routes.items():
                if spec.webhook.handshake is not None:
                    router.add("GET", path, spec.name, self._handshake(spec, group))
                router.add("POST", path, spec.name, self._webhook(spec, group))
        intercom = IntercomWebhook(
            settings.intercom_client_secret,
            journal=self._journal,
            metrics=metrics,
            settle_seconds=settings.intercom_search_settle_seconds,
            retention_seconds=settings.journal_retention_seconds,
        )
        router.add("POST", _PATHS["intercom"], "intercom", intercom)
        api = SendApi(
            settings.api_token,
            sendable=frozenset(sendable),
            journal=self._journal,
            templates=templates or TemplateCatalog(None, None),
        )
        router.add("POST", _PATHS["api"], "api", api)
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
                extra={"route": _PATHS[route], "status": status, "reason": reason,
                       "channel": route if route != "api" else None},
            )  # fmt: skip

    # --- health -------------------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return text_response(200, "ok")

    async def _readyz(self, request: Request) -> Response:
        reason = self._ready()
        if reason is None:
            return text_response(200, "ready")
        return unavailable(f"not ready: {reason}")

    # --- the provider webhooks, one template over the registry --------------------------------

    def _handshake(self, spec: ChannelSpec[Any], views: list[object]) -> Handler:
        """``GET`` verification (Meta's): 200 with the challenge when any configured verify
        token matches, 403 refused (Meta expects it rather than 401), 404 when the channel or
        its handshake is not configured."""
        answer = spec.webhook.handshake
        assert answer is not None
        # Decided once: the settings do not change while the bridge runs.
        receiving = [view for view in views if spec.receives(view)]

        async def handshake(request: Request) -> Response:
            query = dict(request.query())
            refused: SignatureInvalid | None = None
            for view in receiving:
                try:
                    challenge = answer(query, view)
                except SignatureInvalid as exc:
                    refused = refused or exc
                    continue
                except PayloadInvalid as exc:
                    return text_response(400, exc.reason)
                if challenge is not None:
                    return text_response(200, challenge)
            if refused is not None:
                return text_response(403, refused.reason)
            return text_response(404, f"{spec.name} is not configured")

        return handshake

    def _webhook(self, spec: ChannelSpec[Any], views: list[object]) -> Handler:
        """``POST``: verify and parse (the channel's own), journal its messages and the failures
        of messages the bridge sent, answer as the provider expects.

        With several credential sets on one route (Meta apps posting to the same URL, Twilio
        accounts), each is tried in turn: a request is accepted by the first whose secret
        signed it and that owns every business account the payload is about. Nothing is parsed
        before a signature matched; a payload signed by one account about another's number is
        refused (401) whatever the other's secret."""
        receiving = [view for view in views if spec.receives(view)]
        if not receiving:  # decided once: the settings do not change while running

            async def not_configured(request: Request) -> Response:
                return text_response(404, f"{spec.name} is not configured")

            return not_configured

        async def webhook(request: Request) -> Response:
            events = None
            refused: SignatureInvalid | None = None
            for view in receiving:
                try:
                    events = spec.webhook.accept(request, view, self._max_body_bytes)
                except AccountMismatch as exc:  # signed by this account, about another's
                    refused = exc
                    continue
                except SignatureInvalid as exc:  # not this account's secret: the next one's?
                    refused = refused or exc
                    continue
                except WebhookRejected as exc:
                    return rejected(exc)
                stray = _stray_account(events, spec.accounts(view))
                if stray is None:
                    break
                events = None
                refused = AccountMismatch(
                    f"{stray} is not an account of the credentials that signed the webhook"
                )
            if events is None:
                assert refused is not None
                return rejected(refused)
            try:
                entries = await self._journal.event_entries(spec.channel, events)
            except JournalUnavailable:
                return unavailable()
            failed = await self._journal.append(spec.name, entries)
            if failed is not None:
                return failed
            if spec.webhook.reply is not None:
                return Response(200, *spec.webhook.reply)
            return text_response(200, "ok")

        return webhook

    # --- oversize attachments -----------------------------------------------------------------

    async def _media_file(self, request: Request) -> Response:
        token = request.path.removeprefix("/media/")
        try:
            stored = await self._media.open(token)
        except JournalUnavailable:  # the journal store's database: a passing outage
            return unavailable()
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


def _stray_account(events: list[ParsedEvent], owned: frozenset[str] | None) -> str | None:
    """The first business account the events are about that ``owned`` lacks (None: all owned,
    or the credentials own any)."""
    if owned is None:
        return None
    for event in events:
        key = getattr(event, "key", None)
        if isinstance(key, ThreadKey) and key.account not in owned:
            return key.account
    return None
