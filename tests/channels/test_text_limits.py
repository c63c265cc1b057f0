"""Text limits (issue 17): the sandboxes refuse over-limit text the way the providers do, the
clients send text whole (no silent cut), and Telegram styles go as UTF-16 entities."""

from __future__ import annotations

import httpx
import pytest

from channels import Channel, SendRejected, Span

from .conftest import Served
from .test_media import telegram, twilio, whatsapp
from .test_send import SMS_KEY, TG_KEY, TWA_KEY, WA_KEY

EMOJI = "😀"  # one code point, two UTF-16 units


async def test_twilio_refuses_a_body_over_1600_characters_with_21617(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = twilio(http, served)
    await client.send_text(SMS_KEY, "x" * 1600)
    for text in ("x" * 1601, EMOJI * 801, "y" * 2000):
        with pytest.raises(SendRejected) as caught:
            await client.send_text(SMS_KEY, text)
        assert (caught.value.code, caught.value.status) == (21617, 400)
        assert "1600 character limit" in str(caught.value)
    with pytest.raises(SendRejected):
        await client.send_text(TWA_KEY, "z" * 1601)
    assert [m.text for m in served.sandbox.sent(Channel.TWILIO)] == ["x" * 1600]


async def test_telegram_refuses_a_text_over_4096_utf16_units(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = telegram(http, served)
    await client.send_text(TG_KEY, EMOJI * 2048)
    for text in ("x" * 4097, EMOJI * 2049, "x" + EMOJI * 2048):
        with pytest.raises(SendRejected) as caught:
            await client.send_text(TG_KEY, text)
        assert caught.value.status == 400
        assert "message is too long" in str(caught.value)
    assert [m.text for m in served.sandbox.sent(Channel.TELEGRAM)] == [EMOJI * 2048]


async def test_whatsapp_refuses_a_text_body_over_4096_characters(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = whatsapp(http, served)
    await client.send_text(WA_KEY, EMOJI * 4096)  # characters, not UTF-16 units
    with pytest.raises(SendRejected) as caught:
        await client.send_text(WA_KEY, "x" * 4097)
    assert (caught.value.code, caught.value.status) == (100, 400)
    assert "4096 characters" in str(caught.value)
    assert [m.text for m in served.sandbox.sent(Channel.WHATSAPP)] == [EMOJI * 4096]


async def test_telegram_styles_go_as_entities_with_utf16_offsets(
    served: Served, http: httpx.AsyncClient
) -> None:
    text = f"{EMOJI} bold and {EMOJI}{EMOJI} italic"
    bold = Span("bold", text.index("bold"), text.index("bold") + 4)
    italic = Span("italic", text.index("italic"), len(text))
    await telegram(http, served).send_text(TG_KEY, text, spans=(bold, italic))
    (sent,) = served.sandbox.sent(Channel.TELEGRAM)
    assert sent.text == text
    assert list(sent.entities) == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "italic", "offset": 17, "length": 6},
    ]


async def test_telegram_refuses_entities_outside_the_text(
    served: Served, http: httpx.AsyncClient
) -> None:
    # Three emoji are six UTF-16 units: an entity at unit 6 is past the end.
    token = served.sandbox.credentials.telegram_bot_token
    url = f"{served.url}/telegram/bot{token}/sendMessage"
    for entities in (
        [{"type": "bold", "offset": 6, "length": 1}],
        [{"type": "bold", "offset": 0, "length": 0}],
        [{"type": "nonsense", "offset": 0, "length": 1}],
        "not a list",
    ):
        body = {"chat_id": TG_KEY.customer, "text": EMOJI * 3, "entities": entities}
        response = await http.post(url, json=body)
        assert response.status_code == 400
        assert response.json()["description"] == "Bad Request: can't parse entities"
    body = {"chat_id": TG_KEY.customer, "text": EMOJI * 3, "entities": [
        {"type": "bold", "offset": 4, "length": 2}
    ]}  # fmt: skip
    assert (await http.post(url, json=body)).status_code == 200
