"""Twilio Messaging webhooks (SMS/MMS and the WhatsApp sender), sans-io.

The signature (``X-Twilio-Signature``) covers the public URL Twilio was configured with, so
the ingress passes ``THREADLINE_PUBLIC_URL + "/webhooks/twilio"`` plus the query string it
received, never the URL the app server sees behind a proxy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import mimetypes
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .._decode import MAX_WEBHOOK_BYTES, check_size, constant_time_equal, form_pairs, require_header
from .._errors import PayloadInvalid, SignatureInvalid
from .._model import (
    Channel,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    Location,
    MediaKind,
    MediaRef,
    ParsedEvent,
    ThreadKey,
)

__all__ = [
    "OPT_OUT_KEYWORDS",
    "parse_twilio",
    "twilio_opt_out",
    "twilio_form_params",
    "twilio_signature",
    "verify_twilio_signature",
]

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_MAX_MEDIA: Final = 10

#: Twilio's default SMS keywords (a message that is only the keyword, in any case, surrounding
#: blanks ignored), by what Twilio does: ``stop`` opts the sender out of messages from the
#: number (sends to them then fail with error 21610), ``start`` opts them back in, ``help``
#: gets Twilio's help reply.
OPT_OUT_KEYWORDS: Final = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), "stop"
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), "start"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
_OPT_OUT_TYPES: Final = {"STOP": "stop", "START": "start", "HELP": "help"}


def twilio_opt_out(
    sender: str, body: str | None, opt_out_type: str | None = None
) -> Literal["stop", "start", "help"] | None:
    """What Twilio did with an inbound message's opt-out keyword, if anything (pure).

    ``OptOutType`` (``STOP``/``START``/``HELP``, sent with Advanced Opt-Out, custom keywords
    included) decides when present; otherwise the body is matched against
    :data:`OPT_OUT_KEYWORDS`, for SMS only (a ``whatsapp:`` sender has no keyword filtering).
    """
    if opt_out_type:
        found = _OPT_OUT_TYPES.get(opt_out_type.strip().upper())
    elif sender.startswith("whatsapp:") or not body:
        return None
    else:
        found = OPT_OUT_KEYWORDS.get(body.strip().upper())
    if found == "stop":
        return "stop"
    if found == "start":
        return "start"
    return "help" if found == "help" else None


def twilio_form_params(body: bytes, *, max_bytes: int = MAX_WEBHOOK_BYTES) -> list[tuple[str, str]]:
    """Decode a Twilio form body into ordered ``(name, value)`` pairs (blanks kept).

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: not UTF-8 or not a form body.
    """
    check_size(body, max_bytes, "twilio")
    return form_pairs(body, "twilio")


def _pairs(params: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def twilio_signature(
    url: str, params: Iterable[tuple[str, str]] | Mapping[str, str], auth_token: str
) -> str:
    """``base64(HMAC-SHA1(auth_token, url + sorted name+value pairs))`` as Twilio computes it.

    Names sort in byte order; a repeated name contributes each of its distinct values, sorted.
    """
    by_name: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        by_name.setdefault(name, set()).add(value)
    message = url + "".join(
        name + value for name in sorted(by_name) for value in sorted(by_name[name])
    )
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with the scheme's default port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    variants = [url, urlunsplit(parts._replace(netloc=prefix + host))]
    default = _DEFAULT_PORTS.get(parts.scheme)
    if port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    return variants


def verify_twilio_signature(
    url: str,
    params: Iterable[tuple[str, str]] | Mapping[str, str],
    signature: str | None,
    auth_token: str,
    *,
    body: bytes | None = None,
) -> None:
    """Check ``X-Twilio-Signature`` for a webhook to ``url`` (public URL incl. query string).

    For form posts pass the decoded form pairs as ``params``. For JSON-bodied webhooks
    Twilio puts ``bodySHA256`` in the query string and signs the URL alone: pass the raw
    ``body`` and no params; its hash is checked too. The header is accepted when it matches
    the URL as given, without its port, or with the scheme's default port (Twilio signs both
    ways). Constant-time compare.

    Raises:
        SignatureInvalid: missing or wrong signature, or a body hash mismatch.
    """
    given = require_header(signature, SIGNATURE_HEADER).strip()
    pairs = _pairs(params)
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    if "bodySHA256" in query:
        if body is None:
            raise SignatureInvalid("bodySHA256 in the URL but no body to check")
        if not constant_time_equal(query["bodySHA256"].lower(), hashlib.sha256(body).hexdigest()):
            raise SignatureInvalid("bodySHA256 does not match the body")
        pairs = []
    matched = False
    for candidate in _url_variants(url):
        # Evaluate every variant so timing does not reveal which one matched.
        matched |= constant_time_equal(given, twilio_signature(candidate, pairs, auth_token))
    if not matched:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the URL and parameters")


def parse_twilio(
    body: bytes, *, received_at: datetime, max_bytes: int = MAX_WEBHOOK_BYTES
) -> list[ParsedEvent]:
    """Parse a Twilio Messaging webhook (inbound message or status callback).

    Twilio's inbound webhook carries no timestamp, so ``received_at`` (aware) becomes
    ``sent_at``. A form with ``MessageStatus`` is a status callback for one of our messages;
    one with ``SmsStatus=received`` (or a body/media and no status) is an inbound message.
    The ``whatsapp:`` prefix stays in the customer id and is stripped from the account.

    Raises:
        PayloadTooLarge: the body is over ``max_bytes``.
        PayloadInvalid: not a readable Twilio webhook (missing MessageSid, From or To, …).
    """
    fields = dict(twilio_form_params(body, max_bytes=max_bytes))
    sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid")
    if not sid:
        raise PayloadInvalid("twilio webhook without MessageSid")
    if "MessageStatus" in fields:
        return [_status(sid, fields)]
    if fields.get("SmsStatus", "received") != "received":
        return [Ignored(reason=f"twilio SmsStatus {fields['SmsStatus'][:30]!r} is not bridged")]
    return [_message(sid, fields, received_at)]


def _account(address: str) -> str:
    """The business address without Twilio's channel prefix (``whatsapp:+1555…`` → ``+1555…``)."""
    return address.rpartition(":")[2]


def _phone(address: str) -> str | None:
    number = address.rpartition(":")[2]
    digits = number[1:]
    if number.startswith("+") and digits.isdecimal() and digits.isascii() and len(digits) <= 15:
        return number
    return None


def _key(account_address: str, customer: str) -> ThreadKey | None:
    account = _account(account_address)
    if not account or not customer:
        return None
    return ThreadKey(channel=Channel.TWILIO, account=account, customer=customer)


_ERROR_TITLES: Final = {
    21610: "Attempt to send to unsubscribed recipient",
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered by the carrier",
    30008: "Unknown error",
    30034: "Message from an unregistered number",
    63016: "Outside the WhatsApp 24-hour window (a template is needed)",
}
"""Titles of Twilio's common delivery error codes: status callbacks carry ``ErrorCode`` but
rarely ``ErrorMessage`` (https://www.twilio.com/docs/api/errors)."""


def _status(sid: str, fields: Mapping[str, str]) -> DeliveryStatus:
    code_text = fields.get("ErrorCode", "")
    code = int(code_text) if code_text.isdecimal() and len(code_text) <= 9 else None
    return DeliveryStatus(
        key=_key(fields.get("From", ""), fields.get("To", "")),
        provider_message_id=sid,
        status=fields["MessageStatus"] or "unknown",
        error_code=code,
        error_title=fields.get("ErrorMessage") or _ERROR_TITLES.get(code or 0),
        at=None,
    )


def _coordinate(text: str, limit: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and abs(value) <= limit else None


def _message(sid: str, fields: Mapping[str, str], received_at: datetime) -> InboundMessage:
    sender = fields.get("From", "")
    key = _key(fields.get("To", ""), sender)
    if key is None:
        raise PayloadInvalid("twilio message without From or To")
    num_text = fields.get("NumMedia", "0") or "0"
    if not (num_text.isdecimal() and num_text.isascii() and int(num_text) <= _MAX_MEDIA):
        raise PayloadInvalid(f"twilio NumMedia {num_text[:20]!r} is not 0..{_MAX_MEDIA}")
    attachments = []
    for index in range(int(num_text)):
        url = fields.get(f"MediaUrl{index}")
        if not url:
            raise PayloadInvalid(f"twilio NumMedia={num_text} but MediaUrl{index} is missing")
        mime = fields.get(f"MediaContentType{index}") or None
        # Real requests always name the type; without it, guess the kind from the URL only.
        kind = MediaKind.from_mime(mime or mimetypes.guess_type(url, strict=False)[0])
        attachments.append(MediaRef(kind=kind, ref=url, mime_type=mime))
    location = None
    latitude = _coordinate(fields.get("Latitude", ""), 90)
    longitude = _coordinate(fields.get("Longitude", ""), 180)
    if latitude is not None and longitude is not None:
        location = Location(
            latitude=latitude,
            longitude=longitude,
            name=fields.get("Label") or None,
            address=fields.get("Address") or None,
        )
    # A WhatsApp quick-reply button sends its label as ButtonText (and Body, usually).
    text = fields.get("Body") or fields.get("ButtonText") or None
    unsupported = None
    if text is None and not attachments and location is None:
        # Nothing Twilio gives us to carry (a WhatsApp type Twilio does not pass on, or an
        # empty SMS): say so rather than add an empty part.
        message_type = fields.get("MessageType") or "text"
        unsupported = "" if message_type == "text" else message_type[:40]
    return InboundMessage(
        key=key,
        provider_message_id=sid,
        phone=_phone(sender),
        profile_name=fields.get("ProfileName") or None,
        sent_at=received_at,
        text=text,
        attachments=tuple(attachments),
        location=location,
        reply_to=fields.get("OriginalRepliedMessageSid") or None,
        unsupported=unsupported,
        opt_out=twilio_opt_out(sender, fields.get("Body"), fields.get("OptOutType")),
    )
