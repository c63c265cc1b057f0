"""WhatsApp templates against the sandbox Graph API over real HTTP: the account's template list
(paged), template sends, and the 24-hour window the fake enforces as Meta does."""

from __future__ import annotations

import time

import httpx
import pytest

from channels import Channel, OutsideCustomerWindow, SendRejected, ThreadKey

from .conftest import Served
from .test_media import whatsapp

KEY = ThreadKey(channel=Channel.WHATSAPP, account="106540352242922", customer="15550001111")
WABA = "200000000000001"


async def test_the_account_templates_are_listed_across_pages(
    served: Served, http: httpx.AsyncClient
) -> None:
    served.sandbox.templates[:] = served.sandbox.templates * 60  # more than a page of 100
    templates = await whatsapp(http, served).message_templates(WABA)
    assert len(templates) == 6 * 60
    statuses = {(t.name, t.language): t.status for t in templates}
    assert statuses[("order_update", "en_US")] == "APPROVED"
    assert statuses[("2023_april_promo", "en_US")] == "REJECTED"
    assert statuses[("spring_offer", "en_US")] == "PENDING"


async def test_a_template_send_is_recorded_with_its_rendered_text(
    served: Served, http: httpx.AsyncClient
) -> None:
    params = [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#1042"}]
    wamid = await whatsapp(http, served).send_template(
        KEY, "order_update", "en_US", [{"type": "body", "parameters": params}]
    )
    [sent] = served.sandbox.sent(Channel.WHATSAPP)
    assert (sent.message_id, sent.type, sent.template) == (wamid, "template", "order_update")
    assert sent.text == "Hi Ana, your order #1042 has shipped."


@pytest.mark.parametrize(
    ("name", "language", "count", "code"),
    [
        ("no_such_template", "en_US", 2, 132001),
        ("2023_april_promo", "en_US", 2, 132001),  # rejected
        ("order_update", "de_DE", 2, 132001),  # not in that language
        ("order_update", "en_US", 1, 132000),  # parameters do not match
    ],
)
async def test_a_template_that_cannot_be_sent_is_refused(
    served: Served, http: httpx.AsyncClient, name: str, language: str, count: int, code: int
) -> None:
    params = [{"type": "text", "text": str(i)} for i in range(count)]
    with pytest.raises(SendRejected) as refused:
        await whatsapp(http, served).send_template(
            KEY, name, language, [{"type": "body", "parameters": params}]
        )
    assert refused.value.code == code
    assert served.sandbox.sent() == []


async def test_free_form_is_refused_outside_the_window_and_a_template_is_not(
    served: Served, http: httpx.AsyncClient
) -> None:
    client = whatsapp(http, served)
    served.sandbox.customer_wrote(KEY.customer, time.time() - 25 * 3600)
    with pytest.raises(OutsideCustomerWindow) as refused:
        await client.send_text(KEY, "are you there?")
    assert refused.value.code == 131047
    await client.send_template(KEY, "conversation_reopen", "en_US", [])
    served.sandbox.customer_wrote(KEY.customer, time.time())  # the customer answers
    await client.send_text(KEY, "here is our reply")
    assert [m.type for m in served.sandbox.sent()] == ["template", "text"]
