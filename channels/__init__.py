"""Channel adapters for WhatsApp Cloud API, Twilio Messaging, Telegram bots, Facebook Messenger,
Instagram messaging and Viber bots.

One subpackage per provider — ``whatsapp/``, ``twilio/``, ``telegram/``, ``messenger/``,
``instagram/``, ``viber/`` — holds its webhook side (``_webhook.py``), its API side
(``_api.py``) and its registry entry (``_channel.py``: the settings view and the
:class:`ChannelSpec`); the shared pieces (the model, the text model and its splitting,
decoding, the httpx edge, the error ladder, the errors, and Meta's messaging platform
``_meta/``, whose webhook and Send API Messenger and Instagram are, and whose signature and
handshake WhatsApp uses) stay at this level.
:data:`CHANNELS` (``_registry.py``, one line per channel) is what the bridge reads a channel's
rules from: its route, whether it receives and sends with its settings view, its webhook's
verify+parse and answer, its client, text limit and markup, WhatsApp's window and receipts.

Layers, bottom up:

- **Pure, sans-io** functions per provider: ``verify_*`` (signature / secret / handshake,
  constant-time, raising :class:`SignatureInvalid`), ``parse_*`` (webhook bytes → a list of
  :data:`ParsedEvent` in payload order: :class:`InboundMessage`, :class:`DeliveryStatus` or
  :class:`Ignored` with a one-line reason; any malformed input raises :class:`PayloadInvalid`,
  an oversized one :class:`PayloadTooLarge`, never anything else), and ``classify_*_error``
  (a failed provider response → the :class:`ChannelError` tree).
- **Thin httpx edges**: :class:`WhatsAppClient`, :class:`TwilioClient`,
  :class:`TelegramClient`, each built from an injected ``httpx.AsyncClient`` and a frozen
  config (credentials as ``SecretStr``, base URL, explicit media-origin allow-list). Each has
  ``download(media, max_bytes=…)``, ``send_text(key, text)``,
  ``send_media(key, media, caption=…)`` (the provider's method and type for the MIME type) and
  ``caption_fits(key, media, caption)``. Give them their own client (timeouts set, no default
  auth headers — never the Intercom client). No retries and no sleeps inside: the caller's retry
  policy classifies :class:`SendRateLimited` / :class:`SendTransient` (retry) versus
  :class:`RecipientUnavailable` / :class:`OutsideCustomerWindow` / :class:`SendRejected` /
  :class:`MediaUnavailable` / :class:`MediaTooLarge` / :class:`MediaHostForbidden` (give up).
- **Outgoing text** (pure): :func:`compose` turns neutral :class:`TextBlock` /
  :class:`InlineImage` data into each channel's markup (WhatsApp ``*bold*``/``_italic_``,
  Telegram entities, plain SMS), split at the provider's limit as it counts it
  (:func:`text_limit`, :func:`split_text`); the clients never truncate.
- **Sandbox and builders** live in :mod:`channels.sandbox` (for the demo, load test and tests;
  no module here imports it): :class:`~channels.sandbox.ProviderSandbox` is one ASGI app
  serving fake Graph, Twilio and Bot APIs; the ``*_webhook`` builders produce correctly signed
  provider webhooks.

Ingress wiring (one row per route, each a channel's ``ChannelSpec.webhook``; every
rejection's ``reason`` is one line)::

    GET  /webhooks/whatsapp  verify_whatsapp_handshake(query, verify_token) → 200 text/plain
    POST /webhooks/whatsapp  verify_whatsapp_signature(body, X-Hub-Signature-256, app_secret)
                             parse_whatsapp(body)
    POST /webhooks/twilio    params = twilio_form_params(body)
                             verify_twilio_signature(PUBLIC_URL + "/webhooks/twilio" + ?query,
                                                     params, X-Twilio-Signature, auth_token)
                             parse_twilio(body, received_at=now)  → reply <Response/> text/xml
    POST /webhooks/telegram  verify_telegram_secret(X-Telegram-Bot-Api-Secret-Token, secret)
                             parse_telegram(body, telegram_bot_id(bot_token),
                                            groups=THREADLINE_TELEGRAM_GROUPS)
    POST /webhooks/viber     verify_viber_signature(body, X-Viber-Content-Signature, auth_token)
                             parse_viber(body, account)

    POST /webhooks/line      verify_line_signature(body, x-line-signature, channel_secret)
                             parse_line(body, groups=THREADLINE_LINE_GROUPS)

    GET  /webhooks/messenger  verify_meta_handshake(query, verify_token) → 200 text/plain
    POST /webhooks/messenger  verify_meta_signature(body, X-Hub-Signature-256, app_secret)
                              parse_messenger(body)   (Messenger and Instagram share
    GET, POST /webhooks/instagram  … parse_instagram(body)  channels/_meta/)

    SignatureInvalid → 401 (Meta expects 403 for a refused handshake), PayloadInvalid → 400,
    PayloadTooLarge → 413; events go to the journal keyed by ``str(event.key)`` and deduped
    on ``provider_message_id`` (statuses on ``(provider_message_id, status)``).

Identity: :class:`ThreadKey` ``"{channel}:{account}:{customer}"`` — WhatsApp
``whatsapp:{phone_number_id}:{wa_id}``, Twilio ``twilio:{business E.164}:{From}`` (``From``
keeps ``whatsapp:`` so SMS and Twilio-WhatsApp threads differ), Telegram
``telegram:{bot id}:{chat id}`` (a group member's, with ``groups="per-member"``:
``telegram:{bot id}:{user id}``), Viber ``viber:{account id}:{user id}`` (the user id is
base64: escape it in URLs). Viber message ids are the ``message_token`` digits. Telegram
message ids are ``"{chat_id}:{message_id}"``, an edit's
``"{chat_id}:{message_id}:edited:{edit_date}"``. :func:`render_inbound` is the one place that
turns a parsed message (reaction, contact card, quote, edit, unsupported type) into text.

Imports only the standard library, httpx, pydantic, trio and ``runtime`` (import-linter).
"""

from ._decode import check_json_strings as check_json_strings
from ._decode import require_json as require_json
from ._errors import AccountMismatch as AccountMismatch
from ._errors import ChannelError as ChannelError
from ._errors import MediaHostForbidden as MediaHostForbidden
from ._errors import MediaTooLarge as MediaTooLarge
from ._errors import MediaUnavailable as MediaUnavailable
from ._errors import OutsideCustomerWindow as OutsideCustomerWindow
from ._errors import PayloadInvalid as PayloadInvalid
from ._errors import PayloadTooLarge as PayloadTooLarge
from ._errors import RecipientUnavailable as RecipientUnavailable
from ._errors import SendInDoubt as SendInDoubt
from ._errors import SendRateLimited as SendRateLimited
from ._errors import SendRejected as SendRejected
from ._errors import SendTransient as SendTransient
from ._errors import SignatureInvalid as SignatureInvalid
from ._errors import WebhookRejected as WebhookRejected
from ._markup import compose as compose
from ._markup import encode_text as encode_text
from ._markup import provider_length as provider_length
from ._markup import split_text as split_text
from ._markup import text_format as text_format
from ._markup import text_limit as text_limit
from ._meta import MetaMessagingClient as MetaMessagingClient
from ._meta import MetaMessagingConfig as MetaMessagingConfig
from ._meta import classify_instagram_error as classify_instagram_error
from ._meta import classify_messenger_error as classify_messenger_error
from ._meta import message_body as meta_message_body
from ._meta import parse_instagram as parse_instagram
from ._meta import parse_messenger as parse_messenger
from ._meta import verify_meta_handshake as verify_meta_handshake
from ._meta import verify_meta_signature as verify_meta_signature
from ._model import Channel as Channel
from ._model import DeliveryStatus as DeliveryStatus
from ._model import DownloadedMedia as DownloadedMedia
from ._model import Ignored as Ignored
from ._model import InboundMessage as InboundMessage
from ._model import Location as Location
from ._model import MediaKind as MediaKind
from ._model import MediaRef as MediaRef
from ._model import OutboundMedia as OutboundMedia
from ._model import ParsedEvent as ParsedEvent
from ._model import SharedContact as SharedContact
from ._model import ThreadKey as ThreadKey
from ._model import render_inbound as render_inbound
from ._model import shorten as shorten
from ._registry import CHANNELS as CHANNELS
from ._registry import channel_spec as channel_spec
from ._reply import REPLY_TOKEN as REPLY_TOKEN
from ._reply import SEND_ID as SEND_ID
from ._reply import ReplyToken as ReplyToken
from ._reply import replying_with as replying_with
from ._reply import sending_as as sending_as
from ._spec import ChannelClient as ChannelClient
from ._spec import ChannelSpec as ChannelSpec
from ._spec import Webhook as Webhook
from ._spec import webhook_path as webhook_path
from ._text import InlineImage as InlineImage
from ._text import OutgoingText as OutgoingText
from ._text import Span as Span
from ._text import StyledText as StyledText
from ._text import TextBlock as TextBlock
from ._text import TextFormat as TextFormat
from ._text import TextLimit as TextLimit
from ._text import TextRun as TextRun
from ._text import render_blocks as render_blocks
from ._text import utf16_length as utf16_length
from .instagram import InstagramSettings as InstagramSettings
from .line import LineClient as LineClient
from .line import LineConfig as LineConfig
from .line import LineSettings as LineSettings
from .line import classify_line_error as classify_line_error
from .line import line_signature as line_signature
from .line import parse_line as parse_line
from .line import verify_line_signature as verify_line_signature
from .messenger import MessengerSettings as MessengerSettings
from .telegram import TelegramClient as TelegramClient
from .telegram import TelegramConfig as TelegramConfig
from .telegram import TelegramSettings as TelegramSettings
from .telegram import classify_telegram_error as classify_telegram_error
from .telegram import parse_telegram as parse_telegram
from .telegram import telegram_bot_id as telegram_bot_id
from .telegram import telegram_entities as telegram_entities
from .telegram import verify_telegram_secret as verify_telegram_secret
from .twilio import TwilioClient as TwilioClient
from .twilio import TwilioConfig as TwilioConfig
from .twilio import TwilioSettings as TwilioSettings
from .twilio import classify_twilio_error as classify_twilio_error
from .twilio import parse_twilio as parse_twilio
from .twilio import twilio_form_params as twilio_form_params
from .twilio import twilio_signature as twilio_signature
from .twilio import verify_twilio_signature as verify_twilio_signature
from .viber import ViberClient as ViberClient
from .viber import ViberConfig as ViberConfig
from .viber import ViberSettings as ViberSettings
from .viber import classify_viber_error as classify_viber_error
from .viber import parse_viber as parse_viber
from .viber import verify_viber_signature as verify_viber_signature
from .whatsapp import WhatsAppClient as WhatsAppClient
from .whatsapp import WhatsAppConfig as WhatsAppConfig
from .whatsapp import WhatsAppSettings as WhatsAppSettings
from .whatsapp import WhatsAppTemplate as WhatsAppTemplate
from .whatsapp import classify_whatsapp_error as classify_whatsapp_error
from .whatsapp import parse_whatsapp as parse_whatsapp
from .whatsapp import verify_whatsapp_handshake as verify_whatsapp_handshake
from .whatsapp import verify_whatsapp_signature as verify_whatsapp_signature

__all__ = [
    "AccountMismatch",
    "CHANNELS",
    "Channel",
    "ChannelClient",
    "ChannelError",
    "ChannelSpec",
    "DeliveryStatus",
    "DownloadedMedia",
    "Ignored",
    "InboundMessage",
    "InlineImage",
    "InstagramSettings",
    "LineClient",
    "LineConfig",
    "LineSettings",
    "Location",
    "MediaHostForbidden",
    "MediaKind",
    "MediaRef",
    "MediaTooLarge",
    "MediaUnavailable",
    "MessengerSettings",
    "MetaMessagingClient",
    "MetaMessagingConfig",
    "OutboundMedia",
    "OutgoingText",
    "OutsideCustomerWindow",
    "ParsedEvent",
    "PayloadInvalid",
    "PayloadTooLarge",
    "REPLY_TOKEN",
    "RecipientUnavailable",
    "ReplyToken",
    "SEND_ID",
    "SendInDoubt",
    "SendRateLimited",
    "SendRejected",
    "SendTransient",
    "SharedContact",
    "SignatureInvalid",
    "Span",
    "StyledText",
    "TelegramClient",
    "TelegramConfig",
    "TelegramSettings",
    "TextBlock",
    "TextFormat",
    "TextLimit",
    "TextRun",
    "ThreadKey",
    "TwilioClient",
    "TwilioConfig",
    "TwilioSettings",
    "ViberClient",
    "ViberConfig",
    "ViberSettings",
    "Webhook",
    "WebhookRejected",
    "WhatsAppClient",
    "WhatsAppConfig",
    "WhatsAppSettings",
    "WhatsAppTemplate",
    "channel_spec",
    "check_json_strings",
    "classify_instagram_error",
    "classify_line_error",
    "classify_messenger_error",
    "classify_telegram_error",
    "classify_twilio_error",
    "classify_viber_error",
    "classify_whatsapp_error",
    "compose",
    "encode_text",
    "line_signature",
    "meta_message_body",
    "parse_instagram",
    "parse_line",
    "parse_messenger",
    "parse_telegram",
    "parse_twilio",
    "parse_viber",
    "parse_whatsapp",
    "provider_length",
    "render_blocks",
    "render_inbound",
    "replying_with",
    "require_json",
    "sending_as",
    "shorten",
    "split_text",
    "telegram_bot_id",
    "telegram_entities",
    "text_format",
    "text_limit",
    "twilio_form_params",
    "twilio_signature",
    "utf16_length",
    "verify_line_signature",
    "verify_meta_handshake",
    "verify_meta_signature",
    "verify_telegram_secret",
    "verify_twilio_signature",
    "verify_viber_signature",
    "verify_whatsapp_handshake",
    "verify_whatsapp_signature",
    "webhook_path",
]
