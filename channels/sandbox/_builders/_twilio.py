"""Signed Twilio Messaging webhooks: incoming messages and status callbacks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from urllib.parse import urlencode

from channels import twilio_signature

from ._common import SignedWebhook, WebhookMedia

__all__ = ["twilio_message_webhook", "twilio_status_webhook"]


def _twilio_signed(auth_token: str, url: str, pairs: list[tuple[str, str]]) -> SignedWebhook:
    content_type = "application/x-www-form-urlencoded"
    headers = {
        "Content-Type": content_type,
        "X-Twilio-Signature": twilio_signature(url, pairs, auth_token),
    }
    return SignedWebhook(urlencode(pairs).encode(), headers, content_type)


def twilio_message_webhook(
    auth_token: str,
    url: str,
    *,
    account_sid: str,
    to: str,
    from_: str,
    body: str = "",
    media: Sequence[WebhookMedia] = (),
    message_sid: str | None = None,
    profile_name: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
    opt_out_type: str | None = None,
) -> SignedWebhook:
    """A signed Twilio inbound-message webhook for the public ``url`` Twilio posts to.

    ``to``/``from_`` carry Twilio's ``whatsapp:`` prefix for the WhatsApp sender; ``extra``
    adds parameters (``MessageType``, ``ButtonText``, ``Latitude``, …). ``opt_out_type``
    (``STOP``/``START``/``HELP``) is the ``OptOutType`` field Twilio adds when Advanced
    Opt-Out acted on the message.
    """
    sid = message_sid or ("MM" if media else "SM") + uuid.uuid4().hex
    pairs = [("SmsMessageSid", sid), ("NumMedia", str(len(media)))]
    for index, item in enumerate(media):
        pairs += [(f"MediaContentType{index}", item.mime_type), (f"MediaUrl{index}", item.ref)]
    pairs += [("SmsSid", sid), ("SmsStatus", "received"), ("Body", body), ("To", to)]
    pairs += [("NumSegments", "1"), ("MessageSid", sid), ("AccountSid", account_sid)]
    pairs += [("From", from_), ("ApiVersion", "2010-04-01")]
    if profile_name is not None:
        pairs += [("ProfileName", profile_name), ("WaId", from_.rpartition(":")[2].lstrip("+"))]
    pairs += list(extra)
    if opt_out_type is not None:
        pairs.append(("OptOutType", opt_out_type))
    return _twilio_signed(auth_token, url, pairs)


def twilio_status_webhook(
    auth_token: str,
    url: str,
    *,
    account_sid: str,
    to: str,
    from_: str,
    message_sid: str,
    status: str,
    error_code: int | None = None,
) -> SignedWebhook:
    """A signed Twilio status callback for our outbound ``message_sid`` (``to`` = customer)."""
    pairs = [("SmsSid", message_sid), ("SmsStatus", status), ("MessageStatus", status)]
    if error_code is not None:
        pairs.append(("ErrorCode", str(error_code)))
    pairs += [("To", to), ("MessageSid", message_sid), ("AccountSid", account_sid)]
    pairs += [("From", from_), ("ApiVersion", "2010-04-01")]
    return _twilio_signed(auth_token, url, pairs)
