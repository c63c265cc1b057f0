"""WhatsApp Cloud API as a channel: its settings view and its registry entry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from runtime import Request

from .._errors import AccountMismatch
from .._meta import answer_meta_handshake, verify_meta_request
from .._model import Channel, ParsedEvent, ThreadKey
from .._spec import ChannelSpec, Webhook
from .._text import TextFormat, TextLimit
from ._api import GRAPH_BASE_URL, WhatsAppClient, WhatsAppConfig
from ._webhook import parse_whatsapp

__all__ = ["WHATSAPP", "WhatsAppSettings"]


@dataclass(frozen=True, slots=True)
class WhatsAppSettings:
    """What the WhatsApp channel is configured with (``THREADLINE_WHATSAPP_*``)."""

    app_secret: SecretStr | None = None
    """The Meta app's secret: verifies the webhooks' ``X-Hub-Signature-256``."""
    verify_token: SecretStr | None = None
    """Answers Meta's ``GET`` verification handshake."""
    access_token: SecretStr | None = None
    """Sends, downloads media and reads the templates."""
    base_url: str = GRAPH_BASE_URL
    business_account_id: str | None = None
    reengagement_template: str | None = None
    reengagement_language: str = "en_US"
    template_cache_seconds: float = 600.0
    account_id: str | None = None
    """The app's id in the accounts file; None: the ``THREADLINE_WHATSAPP_*`` shorthand."""
    phone_number_ids: frozenset[str] | None = None
    """The business phone numbers (phone_number_id) of this app: it sends from them, and a
    webhook it signed may be about them only. None (the shorthand): any."""


def _receives(s: WhatsAppSettings) -> bool:
    return s.app_secret is not None


def _sends(s: WhatsAppSettings) -> bool:
    return s.access_token is not None


def _accept(request: Request, s: WhatsAppSettings, max_bytes: int) -> list[ParsedEvent]:
    verify_meta_request(request, s.app_secret)
    events = parse_whatsapp(request.body, max_bytes=max_bytes)
    if s.phone_number_ids is not None:
        for phone_number_id in _payload_phone_number_ids(request.body):
            if phone_number_id not in s.phone_number_ids:
                raise AccountMismatch(
                    f"phone_number_id {phone_number_id} is not a number of the app that "
                    "signed the webhook"
                )
    return events


def _payload_phone_number_ids(body: bytes) -> Iterator[str]:
    """Every ``entry[].changes[].value.metadata.phone_number_id`` of a (verified, parsed)
    payload (a change about no number, e.g. a template's status, names none)."""
    payload = json.loads(body)
    for entry in payload.get("entry") or () if isinstance(payload, dict) else ():
        for change in (entry.get("changes") or ()) if isinstance(entry, dict) else ():
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if number is not None:
                yield str(number)


def _handshake(query: Mapping[str, str], s: WhatsAppSettings) -> str | None:
    return answer_meta_handshake(query, s.verify_token)


def _client(http: httpx.AsyncClient, s: WhatsAppSettings) -> WhatsAppClient:
    assert s.access_token is not None  # _sends
    return WhatsAppClient(http, WhatsAppConfig(access_token=s.access_token, base_url=s.base_url))


def _phone(key: ThreadKey) -> str | None:
    return f"+{key.customer}" if key.customer.isdecimal() and key.customer.isascii() else None


WHATSAPP: ChannelSpec[WhatsAppSettings] = ChannelSpec(
    channel=Channel.WHATSAPP,
    webhook=Webhook(accept=_accept, handshake=_handshake),
    receives=_receives,
    sends=_sends,
    client=_client,
    # 4,096 characters (code points), its ``*``/``_`` markers included.
    text_limit=TextLimit(4096, utf16=False),
    text_format=lambda key: TextFormat.WHATSAPP,
    windowed=lambda key: True,
    receipts=True,
    new_customer=re.compile(r"[0-9]{6,15}"),
    phone=_phone,
    templates=True,
    accounts=lambda s: s.phone_number_ids,
)
"""WhatsApp Cloud API: ``*bold*``/``_italic_`` markup, the 24-hour window, receipts."""
