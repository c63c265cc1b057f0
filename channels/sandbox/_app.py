"""The sandbox providers: one ASGI app serving fake WhatsApp, Twilio, Telegram and Viber APIs.

Mount points (relative to wherever the app is served; a router may strip a prefix and put it
in ``root_path``)::

    /whatsapp/{version}/...     Graph API subset    THREADLINE_WHATSAPP_BASE_URL = …/whatsapp/v21.0
    /twilio/2010-04-01/...      Twilio REST subset  THREADLINE_TWILIO_BASE_URL   = …/twilio
    /telegram/bot{token}/...    Bot API subset      THREADLINE_TELEGRAM_BASE_URL = …/telegram
    /messenger/{version}/...    Send API, CDN   THREADLINE_MESSENGER_BASE_URL = …/messenger/v21.0
    /instagram/{version}/...    Send API, CDN   THREADLINE_INSTAGRAM_BASE_URL = …/instagram/v21.0
    /viber/pa/...               REST bot API subset THREADLINE_VIBER_BASE_URL    = …/viber
    /viber/media/{id}           media URLs of customers' Viber messages (no auth)
    /line/v2/bot/message/...    Messaging API       THREADLINE_LINE_BASE_URL     = …/line
    /line-data/v2/bot/...       content downloads   THREADLINE_LINE_DATA_BASE_URL = …/line-data

Control and inspection over HTTP (JSON)::

    POST   /_sandbox/media?mime_type=…&filename=…   body = bytes → {"id", "twilio_media_path"}
    GET    /_sandbox/sent[?channel=…&since=N]       recorded sends, oldest first (seq > since)
    DELETE /_sandbox/sent
    POST   /_sandbox/failures  {"channel","recipient","failure","times"?,"retry_after"?,
                                "error_code"?}
    DELETE /_sandbox/failures
    POST   /_sandbox/webhooks  {"bridge_url", "whatsapp_app_secret"?}   where status webhooks go
    GET    /_sandbox/webhooks  status webhooks posted to the bridge, with its answers
    GET    /_sandbox/health
    POST   /_sandbox/whatsapp/customer_wrote  {"wa_id", "at"}   (24-hour window; see below)

The fake WhatsApp serves ``GET /{waba-id}/message_templates`` (some approved, some rejected or
pending: ``SANDBOX_TEMPLATES``), refuses a template send whose name and language are not an
approved template (132001) or whose parameters do not match (132000), and refuses free-form
messages to a customer whose latest message (:meth:`ProviderSandbox.customer_wrote`) is more
than 24 hours old (131047 "Re-engagement message").

A send naming a media URL (a Telegram ``photo``/``document``/… URL, a WhatsApp ``link``) makes
the sandbox fetch that URL first, as the real provider does, and check what it finds: Telegram
answers 400 to ``sendDocument`` by URL unless the file is a PDF, ZIP or GIF, WhatsApp to an
``image`` that is not JPEG or PNG (or a ``sticker`` that is not WebP).

Status webhooks (``failed_later``) are posted after the send's answer, by the request's own
task, up to three times until the bridge answers 200 (the providers retry too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final, Literal

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from channels import Channel
from runtime import Request, Response, Router, json_response

from ._builders import SignedWebhook, WebhookMedia, line_message_webhook
from ._control import control, post_webhooks
from ._http import MAX_BODY, LinkedFile, fetch_linked, relative
from ._line import issue_reply_token, line, line_content, line_links
from ._messenger import cdn_url, instagram, instagram_links, messenger, messenger_links
from ._state import (
    FailureScript,
    MediaFault,
    PostedWebhook,
    SandboxCredentials,
    SandboxFailure,
    SandboxState,
    SentMessage,
    StoredMedia,
)
from ._telegram import telegram, telegram_links
from ._twilio import twilio
from ._viber import viber, viber_links, viber_media_url
from ._whatsapp import whatsapp, whatsapp_links

__all__ = ["ProviderSandbox"]

_BODY_SECONDS: Final = 60.0
"""How long a request's body may take to arrive (a 64 MiB media upload on loopback)."""

_Fake = Callable[
    [SandboxState, Request, list[str], Mapping[str, LinkedFile | None]], Awaitable[Response]
]
_PROVIDERS: Final[dict[str, _Fake]] = {
    "whatsapp": whatsapp,
    "twilio": twilio,
    "telegram": telegram,
    "messenger": messenger,
    "instagram": instagram,
    "viber": viber,
    "line": line,
    "line-data": line_content,
}
_LINKS: Final = {
    "whatsapp": whatsapp_links,
    "telegram": telegram_links,
    "messenger": messenger_links,
    "instagram": instagram_links,
    "viber": viber_links,
    "line": line_links,
}
"""The providers that fetch the media URLs a send names, and how to find them."""


class ProviderSandbox:
    """Fake WhatsApp Graph, Twilio and Telegram Bot APIs in one ASGI app (handles lifespan).

    Checks credentials like the real APIs (``credentials``), records every accepted send, lets
    callers register media and script per-recipient failures. Not thread-safe; it lives in
    one Trio run like the rest of the process.
    """

    def __init__(self, credentials: SandboxCredentials | None = None) -> None:
        self.credentials = credentials or SandboxCredentials()
        self._state = SandboxState(self.credentials)
        self._router = Router(max_body_bytes=MAX_BODY, body_timeout=_BODY_SECONDS)
        self._router.add_fallback("sandbox", self._handle)

    # --- in-process control and inspection ----------------------------------------------

    def add_media(self, content: bytes, mime_type: str, filename: str | None = None) -> str:
        """Store media; the returned id is a WhatsApp media id, a Telegram file_id and a
        Twilio media sid (see :meth:`twilio_media_url`)."""
        return self._state.add_media(content, mime_type, filename)

    def media(self, media_id: str) -> StoredMedia | None:
        """Media registered here or uploaded by a send."""
        return self._state.media.get(media_id)

    def twilio_media_path(self, media_id: str) -> str:
        """The media resource path under the Twilio base URL."""
        sid = self.credentials.twilio_account_sid
        return f"/2010-04-01/Accounts/{sid}/Messages/MM{media_id:0>32}/Media/{media_id}"

    def twilio_media_url(self, twilio_base_url: str, media_id: str) -> str:
        """A ``MediaUrlN`` for a webhook: ``{THREADLINE_TWILIO_BASE_URL}{path}``."""
        return twilio_base_url.rstrip("/") + self.twilio_media_path(media_id)

    def environment(self, base_url: str) -> dict[str, str]:
        """Bridge settings pointing at this sandbox served at ``base_url`` (its mount point):
        base URLs and the credentials the fakes accept. Webhook secrets (app secret, verify
        token, Telegram secret token) belong to the bridge and are not included."""
        base = base_url.rstrip("/")
        creds = self.credentials
        return {
            "THREADLINE_WHATSAPP_BASE_URL": f"{base}/whatsapp/v21.0",
            "THREADLINE_WHATSAPP_ACCESS_TOKEN": creds.whatsapp_access_token,
            "THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID": creds.whatsapp_business_account_id,
            "THREADLINE_TWILIO_BASE_URL": f"{base}/twilio",
            "THREADLINE_TWILIO_ACCOUNT_SID": creds.twilio_account_sid,
            "THREADLINE_TWILIO_AUTH_TOKEN": creds.twilio_auth_token,
            "THREADLINE_TELEGRAM_BASE_URL": f"{base}/telegram",
            "THREADLINE_TELEGRAM_BOT_TOKEN": creds.telegram_bot_token,
            "THREADLINE_VIBER_BASE_URL": f"{base}/viber",
            "THREADLINE_VIBER_AUTH_TOKEN": creds.viber_auth_token,
            "THREADLINE_LINE_BASE_URL": f"{base}/line",
            "THREADLINE_LINE_DATA_BASE_URL": f"{base}/line-data",
            "THREADLINE_LINE_CHANNEL_ACCESS_TOKEN": creds.line_channel_access_token,
        }

    def receive_sms(
        self, from_: str, to: str, body: str, *, opt_out_type: str | None = None
    ) -> str | None:
        """A customer's message reaching the sandbox Twilio number ``to`` (before its webhook
        goes to the bridge). As the real Twilio does, an opt-out keyword (or ``OptOutType``
        for Advanced Opt-Out's custom keywords) opts ``from_`` out of (or back in to) messages
        from ``to``: sends to an opted-out customer are refused with error 21610. Returns
        ``stop``, ``start``, ``help`` or None."""
        return self._state.receive_sms(from_, to, body, opt_out_type)

    def viber_media_url(self, viber_base_url: str, media_id: str) -> str:
        """A customer's media URL in a Viber callback (``message.media``):
        ``{THREADLINE_VIBER_BASE_URL}/media/{id}``, served without auth as Viber's CDN does."""
        return viber_media_url(viber_base_url, media_id)

    def viber_unsubscribe(self, user_id: str) -> None:
        """Viber user ``user_id`` unsubscribed from the bots (before its ``unsubscribed``
        callback goes to the bridge): sends to them are refused with status 6, as Viber
        does, until :meth:`viber_subscribe`."""
        self._state.viber_unsubscribed.add(user_id)

    def viber_subscribe(self, user_id: str) -> None:
        """Viber user ``user_id`` subscribed (again): sends reach them."""
        self._state.viber_unsubscribed.discard(user_id)

    def viber_webhook(self, auth_token: str) -> str | None:
        """The URL ``set_webhook`` set for the bot of ``auth_token`` (None: never set)."""
        return self._state.viber_webhooks.get(auth_token)

    def refused(self) -> list[tuple[str, str, int]]:
        """Sends the fakes refused because of the recipient's own opt-out:
        ``(channel, to, error code)``, oldest first."""
        return list(self._state.refused)

    def sent(self, channel: Channel | None = None, *, since: int = 0) -> list[SentMessage]:
        """Accepted sends with ``seq > since``, oldest first, optionally for one channel."""
        tail = self._state.sent[since:] if since >= 0 else self._state.sent
        return [m for m in tail if channel is None or m.channel is channel]

    @property
    def templates(self) -> list[dict[str, object]]:
        """The sandbox WhatsApp Business Account's message templates (mutable)."""
        return self._state.templates

    @property
    def template_fetches(self) -> int:
        """Requests for the template list served so far (pages count one each)."""
        return self._state.template_fetches

    @property
    def template_lookups(self) -> list[tuple[str, str]]:
        """(WABA id, access token) of each template list read (its first page), in order."""
        return list(self._state.template_lookups)

    def customer_wrote(self, wa_id: str, at: float) -> None:
        """Tell the fake WhatsApp that customer ``wa_id`` wrote at UNIX time ``at`` (the
        webhook builders do not go through it): free-form sends to them are refused with
        131047 once that is more than 24 hours ago. Customers it was never told about are not
        checked (load tests send to thousands)."""
        self._state.last_inbound[wa_id] = max(at, self._state.last_inbound.get(wa_id, at))

    def meta_customer_wrote(self, channel: Channel, account: str, customer: str, at: float) -> None:
        """Tell the fake Messenger or Instagram that ``customer`` wrote to ``account`` (Page
        or professional account) at UNIX time ``at``: the Send API answers them within 24
        hours (7 days tagged ``HUMAN_AGENT``) of their latest message, and refuses a customer
        it was never told about ("no matching user")."""
        key = (channel, account, customer)
        self._state.meta_last_inbound[key] = max(at, self._state.meta_last_inbound.get(key, at))

    def meta_media_url(
        self, base_url: str, channel: Channel, media_id: str, *, expires_at: float | None = None
    ) -> str:
        """A signed CDN URL for registered media as a Messenger (Instagram) webhook carries
        it, under the sandbox served at ``base_url``; fetched without a token, refused with
        403 after ``expires_at`` (default: an hour from now)."""
        return cdn_url(base_url, channel, media_id, expires_at=expires_at)

    def line_message(
        self,
        channel_secret: str,
        *,
        user_id: str,
        message_id: str,
        text: str | None = None,
        media: WebhookMedia | None = None,
        reply_token_seconds: float | None = None,
    ) -> SignedWebhook:
        """A customer's LINE message to the sandbox bot, signed with ``channel_secret`` (the
        bridge's), carrying a reply token this fake accepts once within
        ``reply_token_seconds`` (default :attr:`line_reply_token_seconds`; 0: already expired)."""
        token = issue_reply_token(self._state, user_id, reply_token_seconds)
        return line_message_webhook(
            channel_secret,
            destination=self.credentials.line_bot_user_id,
            user_id=user_id,
            message_id=message_id,
            text=text,
            media=media,
            reply_token=token,
        )

    def line_webhook_off(self, access_token: str | None = None) -> None:
        """Turn "Use webhook" off for the LINE channel of ``access_token`` (default: the
        sandbox's), as the console's switch does: LINE then delivers nothing."""
        token = access_token or self.credentials.line_channel_access_token
        endpoint, _ = self._state.line_webhooks.get(token, ("", False))
        self._state.line_webhooks[token] = (endpoint, False)

    def line_invalid_replies(self) -> list[str]:
        """The reply tokens the fake LINE refused (unknown, used or expired), oldest first."""
        return list(self._state.line_invalid_replies)

    @property
    def line_reply_token_seconds(self) -> float:
        """How long the fake LINE accepts a reply token after issuing it (default 60)."""
        return self._state.line_reply_token_seconds

    @line_reply_token_seconds.setter
    def line_reply_token_seconds(self, seconds: float) -> None:
        self._state.line_reply_token_seconds = seconds

    def telegram_webhook_failed(self, message: str, *, at: int) -> None:
        """Make ``getWebhookInfo`` report a failed delivery (``last_error_*``) at ``at`` (UNIX
        time), as Telegram does when the webhook URL did not answer 2xx."""
        hook = self._state.telegram_webhook
        hook.last_error_date, hook.last_error_message = at, message

    def clear_sent(self) -> None:
        """Forget recorded sends (``seq`` starts again at 1)."""
        self._state.sent.clear()

    def fail(
        self,
        channel: Channel,
        recipient: str,
        failure: SandboxFailure,
        *,
        times: int | None = None,
        retry_after: int = 1,
        after: int = 0,
        error_code: int | None = None,
    ) -> None:
        """Make sends on ``channel`` to ``recipient`` (WhatsApp ``to``, Twilio ``To`` with its
        prefix, Telegram ``chat_id``, Viber ``receiver``) fail ``times`` times (None: until
        cleared), once ``after`` more sends have succeeded (LINE: pushes to the user id
        ``recipient``). ``error_code`` is the code a ``failed_later`` status reports."""
        script = FailureScript(failure, times, retry_after, after, error_code)
        self._state.script(channel, recipient, script)

    def configure_webhooks(
        self,
        bridge_url: str,
        *,
        whatsapp_app_secret: str | None,
        messenger_app_secret: str | None = None,
    ) -> None:
        """Post status webhooks to the bridge served at ``bridge_url`` (its ``/webhooks/…``
        routes), WhatsApp's signed with ``whatsapp_app_secret`` (the Meta app's secret),
        Messenger's deliveries with ``messenger_app_secret`` (None: not posted)."""
        self._state.bridge_url = bridge_url.rstrip("/")
        self._state.whatsapp_app_secret = whatsapp_app_secret
        self._state.messenger_app_secret = messenger_app_secret

    def posted_webhooks(self) -> list[PostedWebhook]:
        """Status webhooks posted to the bridge so far, oldest first."""
        return list(self._state.posted)

    def clear_failures(self) -> None:
        """Remove every scripted failure."""
        self._state.clear_failures()

    def set_whatsapp_digest_encoding(self, encoding: Literal["base64", "hex"]) -> None:
        """Answer the WhatsApp media lookup's ``sha256`` in ``encoding`` (default base64)."""
        self._state.digest_encoding = encoding

    def break_media(
        self,
        media_id: str,
        fault: MediaFault,
        *,
        times: int | None = None,
        drip_seconds: float = 2.0,
    ) -> None:
        """Make fetching the bytes of ``media_id`` (any provider's media URL, not the WhatsApp
        lookup) fail ``times`` times (None: always)."""
        self._state.break_media(media_id, fault, times=times, drip_seconds=drip_seconds)

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await self._router(scope, receive, send)
        if scope["type"] == "http" and self._state.outbox:
            await post_webhooks(self._state)

    async def _handle(self, request: Request) -> Response:
        request = relative(request)
        segments = [s for s in request.path.split("/") if s]
        if not segments:
            return json_response(404, {"error": "not found"})
        head, rest = segments[0], segments[1:]
        try:
            if head == "_sandbox":
                return self._control(request, rest)
            handler = _PROVIDERS.get(head)
            if handler is None:
                return json_response(404, {"error": "not found"})
            urls = _linked_urls(self._state, request, head, rest)
            # the real provider fetches a send's media URL itself: so do we
            linked = {url: await fetch_linked(url) for url in urls}
            return await handler(self._state, request, rest, linked)
        except (ValueError, UnicodeDecodeError) as exc:
            return json_response(400, {"error": f"bad request: {type(exc).__name__}"})

    def _control(self, request: Request, rest: list[str]) -> Response:
        return control(self, request, rest)


def _linked_urls(state: SandboxState, request: Request, head: str, rest: list[str]) -> list[str]:
    """The media URLs an authenticated send names, which the real provider fetches itself
    (a Telegram file field, a WhatsApp media ``link``)."""
    find = _LINKS.get(head)
    if request.method != "POST" or find is None:
        return []
    try:
        return find(state, request, rest)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        return []
