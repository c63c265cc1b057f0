"""A signed body can be hostile too: a 1 MB list of invalid items costs one validation error
and a bounded list costs nothing to refuse, on every JSON webhook. Before, WhatsApp's
``entry``/``statuses`` and Telegram's ``photo`` made pydantic collect (and describe) 500,000
errors: 8 to 13 s of a blocked event loop and over 450 MB for one body."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable

import pytest

from channels import (
    ParsedEvent,
    PayloadInvalid,
    parse_line,
    parse_telegram,
    parse_whatsapp,
)

ITEMS = 500_000  # a 1 MB body of "1,"
WA_VALUE = {
    "messaging_product": "whatsapp",
    "metadata": {"display_phone_number": "15550000000", "phone_number_id": "100000000000001"},
}


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _whatsapp(value: dict[str, object]) -> bytes:
    change = {"field": "messages", "value": {**WA_VALUE, **value}}
    entry = {"id": "200000000000001", "changes": [change]}
    return _json({"object": "whatsapp_business_account", "entry": [entry]})


def _telegram_photo(photo: list[object]) -> bytes:
    message = {"message_id": 1, "date": 1_700_000_000, "chat": {"id": 1, "type": "private"},
               "from": {"id": 1, "is_bot": False, "first_name": "A"}, "photo": photo}  # fmt: skip
    return _json({"update_id": 1, "message": message})


BODIES: dict[str, tuple[Callable[[bytes], list[ParsedEvent]], bytes]] = {
    "whatsapp entry": (
        parse_whatsapp,
        _json({"object": "whatsapp_business_account", "entry": [1] * ITEMS}),
    ),
    "whatsapp statuses": (parse_whatsapp, _whatsapp({"statuses": [1] * ITEMS})),
    "whatsapp messages": (parse_whatsapp, _whatsapp({"messages": [1] * ITEMS})),
    "whatsapp contacts": (parse_whatsapp, _whatsapp({"contacts": [1] * ITEMS})),
    "telegram photo": (lambda b: parse_telegram(b, "1"), _telegram_photo([1] * ITEMS)),
    "line events": (parse_line, _json({"destination": "U" + "0" * 32, "events": [1] * ITEMS})),
}


@pytest.mark.parametrize("name", BODIES)
def test_a_megabyte_of_invalid_items_is_refused_for_the_first_one(name: str) -> None:
    parse, body = BODIES[name]
    assert len(body) > 900_000
    tracemalloc.start()
    try:
        with pytest.raises(PayloadInvalid) as raised:
            parse(body)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert "more)" not in raised.value.reason  # one error, not "(and 499999 more)"
    assert peak < 40 * len(body)  # was over 450 MB


def test_a_list_over_the_bound_is_refused_even_when_every_item_is_valid() -> None:
    status = {"id": "wamid.x", "status": "delivered", "recipient_id": "15550001111"}
    with pytest.raises(PayloadInvalid, match="at most 1000"):
        parse_whatsapp(_whatsapp({"statuses": [status] * 1001}))
    assert len(parse_whatsapp(_whatsapp({"statuses": [status] * 1000}))) == 1000
