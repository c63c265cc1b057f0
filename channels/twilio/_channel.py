"""Twilio Messaging as a channel (SMS/MMS and the WhatsApp sender): its settings view and its
registry entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from runtime import Request

from .._errors import PayloadInvalid, SignatureInvalid
from .._model import Channel, ParsedEvent, ThreadKey
from .._spec import ChannelSpec, Webhook, webhook_path
from .._text import TextFormat, TextLimit
from ._api import TWILIO_BASE_URL, TwilioClient, TwilioConfig
from ._webhook import parse_twilio, twilio_form_params, verify_twilio_signature

__all__ = ["TWILIO", "TwilioSettings"]

TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """What the Twilio channel is configured with (``THREADLINE_TWILIO_*``)."""

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    """Signs the webhooks (``X-Twilio-Signature``) and authenticates the sends."""
    base_url: str = TWILIO_BASE_URL
    public_url: str = "http://127.0.0.1:8080"
    """The bridge's external base URL (``THREADLINE_PUBLIC_URL``): Twilio signs the webhook's
    URL under it, and status callbacks are sent there."""
    account_id: str | None = None
    """The account's id in the accounts file; None: the ``THREADLINE_TWILIO_*`` shorthand."""
    numbers: frozenset[str] | None = None
    """The business numbers (E.164, without ``whatsapp:``) of this account: it sends from
    them, and a webhook it signed may be about them only. None (the shorthand): any."""
    subaccount_sid: str | None = None
    """A subaccount of ``account_sid`` the numbers belong to: messages are sent under it (with
    the account's credentials) and its webhooks carry it as ``AccountSid``."""

    @property
    def messaging_sid(self) -> str | None:
        """The account the numbers belong to: the subaccount when there is one."""
        return self.subaccount_sid or self.account_sid

    @property
    def webhook_url(self) -> str:
        """The URL Twilio calls and signs (without the query string)."""
        return self.public_url.rstrip("/") + webhook_path(Channel.TWILIO)


def _configured(s: TwilioSettings) -> bool:
    return bool(s.account_sid) and s.auth_token is not None


def _accept(request: Request, s: TwilioSettings, max_bytes: int) -> list[ParsedEvent]:
    assert s.auth_token is not None  # _configured
    url = s.webhook_url
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    signature = request.headers.get("x-twilio-signature")
    token = s.auth_token.get_secret_value()
    if request.content_type != "application/x-www-form-urlencoded":
        # Twilio's JSON-bodied webhooks sign the URL (with bodySHA256) and no params.
        verify_twilio_signature(url, [], signature, token, body=request.body)
        raise PayloadInvalid("expected a form-encoded Twilio Messaging webhook")
    params = twilio_form_params(request.body, max_bytes=max_bytes)
    if s.account_id is not None and dict(params).get("AccountSid") != s.messaging_sid:
        # An account of the accounts file is picked by the AccountSid its webhooks carry.
        raise SignatureInvalid("AccountSid is not a configured Twilio account")
    verify_twilio_signature(url, params, signature, token)
    return parse_twilio(request.body, received_at=datetime.now(UTC), max_bytes=max_bytes)


def _client(http: httpx.AsyncClient, s: TwilioSettings) -> TwilioClient:
    assert s.account_sid
    assert s.auth_token is not None
    return TwilioClient(
        http,
        TwilioConfig(
            account_sid=s.account_sid,
            auth_token=s.auth_token,
            subaccount_sid=s.subaccount_sid,
            base_url=s.base_url,
            status_callback_url=s.webhook_url,
        ),
    )


def is_whatsapp_customer(key: ThreadKey) -> bool:
    """Whether the thread's customer is on WhatsApp through Twilio (``From`` keeps the
    ``whatsapp:`` prefix): WhatsApp's markup and 24-hour window apply."""
    return key.customer.startswith("whatsapp:")


_NEW_CUSTOMER = re.compile(r"(whatsapp:)?\+[0-9]{6,15}")


def _phone(key: ThreadKey) -> str | None:
    number = key.customer.removeprefix("whatsapp:")
    return number if _NEW_CUSTOMER.fullmatch(number) else None


TWILIO: ChannelSpec[TwilioSettings] = ChannelSpec(
    channel=Channel.TWILIO,
    webhook=Webhook(accept=_accept, reply=(TWIML_EMPTY, "text/xml; charset=utf-8")),
    receives=_configured,
    sends=_configured,
    client=_client,
    # 1,600 characters counted as UTF-16 code units (how an SMS is encoded; an emoji counts 2).
    text_limit=TextLimit(1600, utf16=True),
    text_format=lambda key: TextFormat.WHATSAPP if is_whatsapp_customer(key) else TextFormat.PLAIN,
    windowed=is_whatsapp_customer,
    receipts=True,
    new_customer=_NEW_CUSTOMER,
    phone=_phone,
    accounts=lambda s: s.numbers,
)
"""Twilio: plain SMS (WhatsApp's markup and window for ``whatsapp:`` customers), receipts."""
