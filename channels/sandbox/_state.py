"""State of the sandbox providers: credentials, stored media, recorded sends, scripted failures.

Everything is a dict or list operation, O(1) per request, so load tests can push thousands of
sends through one sandbox.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import itertools
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from channels import Channel
from channels.twilio import twilio_opt_out

__all__ = [
    "CURRENT_CREDENTIAL",
    "FailureScript",
    "MediaFault",
    "PendingWebhook",
    "PostedWebhook",
    "SandboxCredentials",
    "SandboxFailure",
    "SandboxState",
    "SentMessage",
    "StoredMedia",
    "TelegramWebhook",
    "WHATSAPP_WINDOW_SECONDS",
]

SANDBOX_TWILIO_SID: Final = "AC" + "5a" * 16


class SandboxCredentials(BaseModel):
    """What the fake APIs accept; point the bridge's settings at the same values.

    The defaults are well-known sandbox values, not secrets.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    whatsapp_access_token: str = "sandbox-whatsapp-access-token"  # noqa: S105 - public fake
    whatsapp_business_account_id: str = "200000000000001"
    twilio_account_sid: str = SANDBOX_TWILIO_SID
    twilio_auth_token: str = "sandbox-twilio-auth-token"  # noqa: S105 - public fake
    telegram_bot_token: str = "7000000001:sandbox-telegram-bot-token"  # noqa: S105 - public fake
    whatsapp_phone_number_ids: tuple[str, ...] = ("100000000000001",)
    """The business phone numbers ``GET /{phone-number-id}`` knows (sends go from any id)."""
    more_whatsapp_access_tokens: tuple[str, ...] = ()
    """Access tokens of further Meta apps (several accounts in one deployment)."""
    more_twilio_accounts: tuple[tuple[str, str], ...] = ()
    """Further Twilio accounts, (account SID, auth token) each."""
    more_telegram_bot_tokens: tuple[str, ...] = ()
    """Tokens of further Telegram bots."""
    messenger_page_access_token: str = "sandbox-messenger-page-token"  # noqa: S105 - public fake
    instagram_access_token: str = "sandbox-instagram-access-token"  # noqa: S105 - public fake
    messenger_page_id: str = "682498302938465"
    """The Page ``GET /me`` names for the Page access token."""
    instagram_account_id: str = "17841400000000001"
    """The professional account ``GET /me`` names for the Instagram token."""
    meta_human_agent: bool = True
    """Whether the Meta app has the Human Agent permission (``MESSAGE_TAG`` ``HUMAN_AGENT``
    sends are refused with error 200 without it)."""
    viber_auth_token: str = "sandbox-viber-auth-token-0001"  # noqa: S105 - public fake
    more_viber_auth_tokens: tuple[str, ...] = ()
    """Auth tokens of further Viber bots."""
    line_channel_access_token: str = "sandbox-line-channel-access-token"  # noqa: S105 - public fake
    line_bot_user_id: str = "U" + "5a" * 16
    """The sandbox LINE bot's user id (its webhooks' ``destination``)."""
    more_line_channel_access_tokens: tuple[str, ...] = ()
    """Access tokens of further LINE channels."""
    more_whatsapp_business_accounts: tuple[tuple[str, str], ...] = ()
    """Further WhatsApp Business Accounts, (WABA id, the access token of the app that may read
    its templates) each; :attr:`whatsapp_business_account_id` is readable with any token."""

    @property
    def whatsapp_access_tokens(self) -> tuple[str, ...]:
        return (self.whatsapp_access_token, *self.more_whatsapp_access_tokens)

    def may_read_templates(self, waba_id: str, token: str) -> bool:
        """Whether ``GET /{waba_id}/message_templates`` answers ``token``."""
        if waba_id == self.whatsapp_business_account_id:
            return True
        return (waba_id, token) in self.more_whatsapp_business_accounts

    def meta_token(self, channel: Channel) -> str:
        """The access token the fake Messenger (Page) or Instagram Send API accepts."""
        if channel is Channel.INSTAGRAM:
            return self.instagram_access_token
        return self.messenger_page_access_token

    def meta_account(self, channel: Channel) -> str:
        """The Page (Instagram account) the fake's Messenger (Instagram) token is of."""
        if channel is Channel.INSTAGRAM:
            return self.instagram_account_id
        return self.messenger_page_id

    @property
    def twilio_accounts(self) -> dict[str, str]:
        """Account SID → auth token, of every account the fake accepts."""
        return {self.twilio_account_sid: self.twilio_auth_token, **dict(self.more_twilio_accounts)}

    @property
    def line_channel_access_tokens(self) -> tuple[str, ...]:
        return (self.line_channel_access_token, *self.more_line_channel_access_tokens)

    @property
    def telegram_bot_tokens(self) -> tuple[str, ...]:
        return (self.telegram_bot_token, *self.more_telegram_bot_tokens)

    @property
    def viber_auth_tokens(self) -> tuple[str, ...]:
        return (self.viber_auth_token, *self.more_viber_auth_tokens)


CURRENT_CREDENTIAL: ContextVar[str | None] = ContextVar("sandbox_credential", default=None)
"""The credential the request being answered authenticated with (each request is its own
task): the WhatsApp access token, the Twilio account SID, the Telegram bot id or the Viber auth
token."""


class SandboxFailure(enum.StrEnum):
    """Ways a scripted recipient fails, each answered in the provider's own error format."""

    BLOCKED = "blocked"
    """WhatsApp 131026, Twilio 21610, Telegram 403 "bot was blocked by the user"."""
    OUTSIDE_WINDOW = "outside_window"
    """WhatsApp 131047, Twilio 63016; Telegram has no window and answers 403."""
    RATE_LIMITED = "rate_limited"
    """HTTP 429 with Retry-After (Telegram: ``parameters.retry_after``)."""
    SERVER_ERROR = "server_error"
    """HTTP 5xx."""
    FAILED_LATER = "failed_later"
    """Accepted (recorded as sent, answered 200 with a message id), then reported failed by a
    status webhook to the bridge, as the providers do: WhatsApp ``failed`` with error 131026,
    Twilio ``undelivered`` with ``ErrorCode`` 30003 to the send's ``StatusCallback`` (another
    code with ``error_code``). Telegram reports nothing after accepting: a plain success."""
    ACCEPTED_THEN_ERROR = "accepted_then_error"
    """LINE only: the push is accepted (recorded, its ``X-Line-Retry-Key`` remembered) but
    answered 500, as a provider fault after the fact would: a retry with the same key is
    answered 409, one with another key is sent again."""
    QUOTA_SPENT = "quota_spent"
    """LINE only: a push answered 429 "You have reached your monthly limit." (any failure LINE
    has no other form for answers so too)."""
    SLOW_ANSWER = "slow_answer"
    """WhatsApp only: the message is accepted (and recorded as sent) but the answer trickles
    out a byte every few seconds — a send whose outcome a crash would lose."""
    LATE_ANSWER = "late_answer"
    """WhatsApp and LINE's push: the message is accepted (and recorded as sent; LINE remembers
    its ``X-Line-Retry-Key``) but answered only after 10 s — a send whose answer a client's
    timeout gives up on."""


class MediaFault(enum.StrEnum):
    """Ways a registered media's bytes fail when fetched (every provider's media URL)."""

    FORBIDDEN = "forbidden"
    """HTTP 403."""
    SERVER_ERROR = "server_error"
    """HTTP 503."""
    REDIRECT_LOOP = "redirect_loop"
    """A 302 back to the same URL, every time."""
    GZIP = "gzip"
    """The bytes gzip-compressed with ``Content-Encoding: gzip`` (never asked for)."""
    DRIP = "drip"
    """200, then one byte every ``drip_seconds``."""
    CORRUPT = "corrupt"
    """200 with the bytes damaged on the way (same length, last byte changed): they no longer
    match the WhatsApp lookup's ``sha256``."""


class SentMessage(BaseModel):
    """One message a fake provider accepted, in acceptance order (``seq``)."""

    model_config = ConfigDict(frozen=True)

    seq: int
    channel: Channel
    account: str = Field(description="phone_number_id, Twilio From, or Telegram bot id")
    to: str
    message_id: str
    type: str = Field(description="text, image, document, audio, video")
    text: str | None = None
    media_id: str | None = None
    media_url: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    reply_to: str | None = None
    template: str | None = None
    """A template send's name (``text`` then holds its rendered text)."""
    tag: str | None = None
    """Messenger and Instagram: the ``MESSAGE_TAG`` a send went with (``HUMAN_AGENT``), None
    for a standard (``RESPONSE``) send."""
    entities: tuple[dict[str, object], ...] = ()
    """Telegram message entities sent with a text (UTF-16 offsets), as the Bot API takes them."""
    credential: str | None = None
    """What the send authenticated with: the WhatsApp access token, the Twilio account SID or
    the Telegram bot id (sandbox values, not secrets)."""
    via: str | None = None
    """LINE: the API that sent it, ``reply`` (with a reply token) or ``push``."""


WHATSAPP_WINDOW_SECONDS: Final = 24 * 3600.0

SANDBOX_TEMPLATES: Final[tuple[dict[str, object], ...]] = (
    {
        "name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
        "id": "1192339204654487",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates"
             " your ability to send a message notification from WhatsApp Business Platform's"
             " Cloud API. Thank you for taking the time to test with us."},
            {"type": "FOOTER", "text": "WhatsApp Business API Team"},
        ],
    },
    {
        "name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
        "id": "1192339204654488",
        "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}],
    },
    {
        "name": "order_update", "language": "pt_BR", "status": "APPROVED", "category": "UTILITY",
        "id": "1192339204654489",
        "components": [{"type": "BODY", "text": "Olá {{1}}, o seu pedido {{2}} foi enviado."}],
    },
    {
        "name": "conversation_reopen", "language": "en_US", "status": "APPROVED",
        "category": "UTILITY", "id": "1192339204654490",
        "components": [{"type": "BODY", "text": "We have replied to your message. Answer this"
                        " message to read our reply."}],
    },
    {
        "name": "2023_april_promo", "language": "en_US", "status": "REJECTED",
        "category": "MARKETING", "id": "920070352646140",
        "components": [{"type": "BODY", "text": "Hi {{1}}, our Fall Sale is on! Use promo code"
                        " {{2}} Get an extra 25% off every order above $350!"}],
    },
    {
        "name": "spring_offer", "language": "en_US", "status": "PENDING",
        "category": "MARKETING", "id": "920070352646141",
        "components": [{"type": "BODY", "text": "Spring is here, {{1}}!"}],
    },
)  # fmt: skip
"""The templates the sandbox WhatsApp Business Account serves: some approved, some not."""


@dataclass(frozen=True, slots=True)
class StoredMedia:
    content: bytes
    mime_type: str
    filename: str | None
    sha256: str  # base64, as the Graph API reports it (see SandboxState.digest_encoding)


@dataclass(slots=True)
class MediaScript:
    fault: MediaFault
    remaining: int | None
    drip_seconds: float


@dataclass(slots=True)
class FailureScript:
    """How a recipient's sends fail (see :meth:`ProviderSandbox.fail`)."""

    failure: SandboxFailure
    remaining: int | None
    retry_after: int
    succeed_first: int = 0
    error_code: int | None = None


@dataclass(frozen=True, slots=True)
class PendingWebhook:
    """A webhook a fake provider will post to the bridge: ``path`` on the bridge (under
    :attr:`SandboxState.bridge_url`), or the absolute ``url`` the send asked for."""

    target: str
    body: bytes
    headers: dict[str, str]


class PostedWebhook(BaseModel):
    """A webhook the sandbox posted to the bridge, with the bridge's answer (None: no answer)."""

    model_config = ConfigDict(frozen=True)

    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None


@dataclass(slots=True)
class TelegramWebhook:
    """What ``setWebhook`` set and ``getWebhookInfo`` reports (the sandbox delivers nothing)."""

    url: str = ""
    secret_token: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


class SandboxState:
    """The mutable state behind the fake APIs (one per sandbox app)."""

    def __init__(self, credentials: SandboxCredentials) -> None:
        self.credentials = credentials
        self.media: dict[str, StoredMedia] = {}
        self.sent: list[SentMessage] = []
        self._failures: dict[tuple[Channel, str], FailureScript] = {}
        self._media_faults: dict[str, MediaScript] = {}
        self._ids = itertools.count(1)
        self._chat_ids: dict[str, itertools.count[int]] = {}
        self.bridge_url: str | None = None
        """Where the bridge's webhook routes are served (``…/webhooks/whatsapp`` under it)."""
        self.whatsapp_app_secret: str | None = None
        """Signs WhatsApp webhooks; without it (or ``bridge_url``) none are posted."""
        self.outbox: deque[PendingWebhook] = deque(maxlen=10_000)
        self.posted: list[PostedWebhook] = []

        self.digest_encoding: Literal["base64", "hex"] = "base64"
        """How the WhatsApp media lookup answers ``sha256`` (Meta documents neither)."""
        self.templates: list[dict[str, object]] = [dict(t) for t in SANDBOX_TEMPLATES]
        self.template_fetches = 0
        self.template_lookups: list[tuple[str, str]] = []
        """(WABA id, access token) of each ``GET /{waba-id}/message_templates`` answered."""
        self.last_inbound: dict[str, float] = {}
        """WhatsApp customer (wa_id) → UNIX time of their latest message, as told by
        :meth:`ProviderSandbox.customer_wrote`: free-form sends to a customer whose latest
        message is older than 24 hours are refused (131047), as the real API does."""
        self.meta_last_inbound: dict[tuple[Channel, str, str], float] = {}
        """(Messenger or Instagram, account, customer) → UNIX time of the customer's latest
        message (:meth:`ProviderSandbox.meta_customer_wrote`): the Send API's window."""
        self.messenger_app_secret: str | None = None
        """Signs the Messenger delivery webhooks; without it none are posted."""
        self.opted_out: set[tuple[str, str]] = set()  # (customer, business number) after STOP
        self.refused: list[tuple[str, str, int]] = []  # (channel, to, code) of opt-out refusals
        self.viber_unsubscribed: set[str] = set()
        """Viber users who unsubscribed from the bots (sends to them: status 6)."""
        self.viber_webhooks: dict[str, str] = {}
        """Viber auth token → the URL ``set_webhook`` set (callbacks go there)."""
        self.line_reply_tokens: dict[str, tuple[str, float]] = {}
        """LINE reply tokens not used yet: token → (the user it answers, UNIX time issued)."""
        self.line_reply_token_seconds = 60.0
        """How long a LINE reply token is accepted after it was issued."""
        self.line_webhooks: dict[str, tuple[str, bool]] = {}
        """Each LINE channel's webhook (by access token): its endpoint and whether it is on."""
        self.line_invalid_replies: list[str] = []
        """Reply tokens the fake LINE refused (unknown, used or expired), in order."""
        self.line_retry_keys: set[str] = set()
        """``X-Line-Retry-Key`` values of the pushes accepted (a repeat answers 409)."""
        self.telegram_webhook = TelegramWebhook()
        self.more_telegram_webhooks: dict[str, TelegramWebhook] = {}
        """The webhooks of the further bots (``more_telegram_bot_tokens``), by bot id."""

    def receive_sms(
        self, from_: str, to: str, body: str, opt_out_type: str | None = None
    ) -> str | None:
        """Apply Twilio's opt-out keywords to an inbound message (see ProviderSandbox)."""
        action = twilio_opt_out(from_, body, opt_out_type)
        pair = (from_, to.rpartition(":")[2])
        if action == "stop":
            self.opted_out.add(pair)
        elif action == "start":
            self.opted_out.discard(pair)
        return action

    @property
    def line_bot_user_id(self) -> str:
        return self.credentials.line_bot_user_id

    def next_id(self) -> int:
        return next(self._ids)

    def next_chat_message_id(self, chat: str) -> int:
        return next(self._chat_ids.setdefault(chat, itertools.count(1)))

    def add_media(self, content: bytes, mime_type: str, filename: str | None = None) -> str:
        media_id = f"{900000000000 + self.next_id()}"
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        self.media[media_id] = StoredMedia(content, mime_type, filename, digest)
        return media_id

    def lookup_digest(self, media: StoredMedia) -> str:
        """``sha256`` as the WhatsApp media lookup answers it, in ``digest_encoding``."""
        if self.digest_encoding == "hex":
            return base64.b64decode(media.sha256).hex()
        return media.sha256

    def script(self, channel: Channel, recipient: str, script: FailureScript) -> None:
        self._failures[(channel, recipient)] = script

    def clear_failures(self) -> None:
        self._failures.clear()

    def take_failure(self, channel: Channel, recipient: str) -> FailureScript | None:
        """The scripted failure for this recipient, counting down ``times``."""
        script = self._failures.get((channel, recipient))
        if script is None:
            return None
        if script.succeed_first > 0:
            script.succeed_first -= 1
            return None
        if script.remaining is not None:
            script.remaining -= 1
            if script.remaining <= 0:
                del self._failures[(channel, recipient)]
        return script

    def break_media(
        self, media_id: str, fault: MediaFault, *, times: int | None, drip_seconds: float
    ) -> None:
        self._media_faults[media_id] = MediaScript(fault, times, drip_seconds)

    def take_media_fault(self, media_id: str) -> MediaScript | None:
        """The scripted fault for fetching this media's bytes, counting down ``times``."""
        script = self._media_faults.get(media_id)
        if script is not None and script.remaining is not None:
            script.remaining -= 1
            if script.remaining <= 0:
                del self._media_faults[media_id]
        return script

    def telegram_webhook_of(self, bot_id: str | None) -> TelegramWebhook:
        """Bot ``bot_id``'s webhook (None: the first bot's, :attr:`telegram_webhook`)."""
        if bot_id is None or bot_id == self.credentials.telegram_bot_token.partition(":")[0]:
            return self.telegram_webhook
        return self.more_telegram_webhooks.setdefault(bot_id, TelegramWebhook())

    def record(self, **fields: object) -> SentMessage:
        fields.setdefault("credential", CURRENT_CREDENTIAL.get())
        message = SentMessage.model_validate({"seq": len(self.sent) + 1, **fields})
        self.sent.append(message)
        return message
